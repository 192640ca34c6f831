//! UDP in the lab: datagrams sent and received one at a time, each keeping
//! its edges, with the sender's address.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{NetError, Result};
use crate::event::Event;
use crate::lab::{check_family, lock, push_inbox, reaches, settle, Entry, Lab, Mode, State};
use crate::{Family, SocketInfo};

/// The largest datagram socklab reads (the largest a UDP/IP packet can carry).
const DATAGRAM_MAX: usize = 65_535;

/// One datagram as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The bytes read (at most what was asked for).
    pub data: Bytes,
    /// Who sent it.
    pub from: SocketAddr,
    /// The datagram's full size; more than `data.len()` when it was cut to
    /// fit (the rest is lost: a datagram is read whole or not at all).
    pub size: usize,
}

impl Entry {
    fn udp(&self) -> Result<Arc<UdpSocket>> {
        match &*lock(&self.state) {
            State::Udp(u) => Ok(u.clone()),
            State::Closed => Err(NetError::state(&self.name, "is closed")),
            _ => Err(NetError::state(
                &self.name,
                "is a TCP socket: sendto/recvfrom are for UDP (use send/recv)",
            )),
        }
    }

    pub(crate) fn is_udp(&self) -> bool {
        matches!(&*lock(&self.state), State::Udp(_))
    }
}

impl Lab {
    /// `sendto()`: one datagram to `to`. When a watched UDP socket of this
    /// lab has that address, waits until it has reported the datagram.
    ///
    /// # Errors
    /// Not a UDP socket; the OS refused (too long: EMSGSIZE; broadcast
    /// without SO_BROADCAST: EACCES).
    pub async fn sendto(&self, name: &str, to: SocketAddr, data: &[u8]) -> Result<usize> {
        let e = self.get(name)?;
        let udp = e.udp()?;
        check_family(&e, to)?;
        let receiver = self.udp_receiver(to);
        let before = receiver.as_ref().map(|r| r.progress.borrow().datagrams);
        let n = udp
            .send_to(data, to)
            .await
            .map_err(NetError::os("sendto"))?;
        self.count_out(&e, n);
        if let (Some(r), Some(before)) = (receiver, before) {
            settle(&r, |p| p.datagrams > before).await?;
        }
        Ok(n)
    }

    /// `send()` on a connected UDP socket: one datagram to its peer.
    pub(crate) async fn udp_send(&self, e: &Entry, data: &[u8]) -> Result<usize> {
        let udp = e.udp()?;
        let peer = udp.peer_addr().map_err(NetError::os("send"))?;
        let receiver = self.udp_receiver(peer);
        let before = receiver.as_ref().map(|r| r.progress.borrow().datagrams);
        let n = udp.send(data).await.map_err(NetError::os("send"))?;
        self.count_out(e, n);
        if let (Some(r), Some(before)) = (receiver, before) {
            settle(&r, |p| p.datagrams > before).await?;
        }
        Ok(n)
    }

    fn count_out(&self, e: &Entry, n: usize) {
        e.bytes_out.fetch_add(n as u64, Ordering::SeqCst);
        e.datagrams_out.fetch_add(1, Ordering::SeqCst);
    }

    /// `recvfrom()`: one datagram, at most `max` bytes of it.
    ///
    /// # Errors
    /// Not a UDP socket, watched, or the OS reported an error (a connected
    /// socket learns "connection refused" from an ICMP port-unreachable).
    pub async fn recvfrom(&self, name: &str, max: usize) -> Result<Datagram> {
        let e = self.get(name)?;
        let udp = e.udp()?;
        if e.mode() == Mode::Watched {
            return Err(NetError::state(
                name,
                "is read in the background (its datagrams show as events); `watch NAME off` to read it yourself",
            ));
        }
        let d = recv_one(&udp, max.clamp(1, DATAGRAM_MAX)).await?;
        e.add_in(d.data.len());
        e.progress.send_modify(|p| p.datagrams += 1);
        Ok(d)
    }

    /// `connect()` on a UDP socket: fixes its peer (send/recv then need no
    /// address, and datagrams from anyone else are dropped). No packet is
    /// sent.
    pub(crate) fn udp_connect(&self, e: &Entry, to: SocketAddr) -> Result<SocketInfo> {
        check_family(e, to)?;
        let udp = e.udp()?;
        SockRef::from(&*udp)
            .connect(&to.into())
            .map_err(NetError::os("connect"))?;
        Ok(e.info())
    }

    /// A UDP socket bound to `addr` whose datagrams arrive as events.
    ///
    /// # Errors
    /// The name is taken, or the OS refused (address in use, …).
    pub fn udp_serve(&self, addr: SocketAddr, name: Option<&str>) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let family = Family::of(&addr);
        let sock = socket2::Socket::new(family.domain(), socket2::Type::DGRAM, None)
            .map_err(NetError::os("socket"))?;
        sock.set_nonblocking(true).map_err(NetError::os("socket"))?;
        sock.bind(&addr.into()).map_err(NetError::os("bind"))?;
        let udp = Arc::new(UdpSocket::from_std(sock.into()).map_err(NetError::os("socket"))?);
        let e = self.new_entry(name, family, State::Udp(udp), Mode::Manual);
        self.insert(e.clone())?;
        self.start_udp_reader(&e)?;
        self.bump();
        Ok(e.info())
    }

    pub(crate) fn start_udp_reader(&self, e: &Arc<Entry>) -> Result<()> {
        let udp = e.udp()?;
        let events = self.inner.events.clone();
        let entry = e.clone();
        e.watch_with(move |cancel| udp_read_loop(entry, udp, events, cancel));
        Ok(())
    }

    /// The watched UDP socket of this lab that datagrams to `to` reach.
    fn udp_receiver(&self, to: SocketAddr) -> Option<Arc<Entry>> {
        lock(&self.inner.sockets)
            .values()
            .find(|e| {
                e.mode() == Mode::Watched
                    && matches!(&*lock(&e.state), State::Udp(u) if u.local_addr().is_ok_and(|a| reaches(a, to)))
            })
            .cloned()
    }
}

/// Reads one datagram, learning its full size (MSG_TRUNC) when it is cut.
async fn recv_one(udp: &UdpSocket, max: usize) -> Result<Datagram> {
    let mut buf: Vec<MaybeUninit<u8>> = vec![MaybeUninit::uninit(); max];
    let would_block = || io::Error::from(io::ErrorKind::WouldBlock);
    // The first try needs no wait.
    let mut got = SockRef::from(udp).recv_from_with_flags(&mut buf, libc::MSG_TRUNC);
    loop {
        match got {
            Ok((size, from)) => {
                let n = size.min(max);
                // SAFETY: the kernel initialised the first `n` bytes
                // (recvfrom wrote min(size, max) bytes into `buf`).
                let data: Vec<u8> = buf[..n]
                    .iter()
                    .map(|b| unsafe { b.assume_init() })
                    .collect();
                let from = from.as_socket().ok_or_else(|| {
                    NetError::os("recvfrom")(io::Error::other("sender without an IP address"))
                })?;
                return Ok(Datagram {
                    data: Bytes::from(data),
                    from,
                    size,
                });
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(NetError::os("recvfrom")(err)),
        }
        // An error queued on the socket (ICMP port unreachable, on a
        // connected socket) is error readiness, not read readiness. Wait
        // for either; tokio cannot wait on both as one interest.
        let error = tokio::select! {
            r = udp.readable() => { r.map_err(NetError::os("recvfrom"))?; false }
            r = udp.ready(Interest::ERROR) => { r.map_err(NetError::os("recvfrom"))?; true }
        };
        // Reads go through try_io, which clears readiness only if nothing new
        // arrived meanwhile, so no wake-up is lost.
        got = if error {
            // The queued error, or "nothing after all" (which clears it).
            udp.try_io(
                Interest::ERROR,
                || -> io::Result<(usize, socket2::SockAddr)> {
                    Err(SockRef::from(udp).take_error()?.unwrap_or_else(would_block))
                },
            )
        } else {
            udp.try_io(Interest::READABLE, || {
                SockRef::from(udp).recv_from_with_flags(&mut buf, libc::MSG_TRUNC)
            })
        };
    }
}

async fn udp_read_loop(
    e: Arc<Entry>,
    udp: Arc<UdpSocket>,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    loop {
        let got = tokio::select! {
            _ = cancel.cancelled() => break,
            r = recv_one(&udp, DATAGRAM_MAX) => r,
        };
        match got {
            Ok(d) => {
                push_inbox(&e, &d.data);
                let n = d.data.len();
                let _ = events
                    .send(Event::Datagram {
                        socket: e.name.clone(),
                        from: d.from,
                        data: d.data,
                    })
                    .await;
                e.add_in(n);
                e.progress.send_modify(|p| p.datagrams += 1);
            }
            Err(err) => {
                // An ICMP error (an earlier datagram refused) is reported and
                // the socket keeps receiving; any other error ends the reader.
                let error = match err {
                    NetError::Os { source, .. } => source,
                    other => io::Error::other(other.to_string()),
                };
                let refused = error.kind() == io::ErrorKind::ConnectionRefused;
                let _ = events
                    .send(Event::Failed {
                        socket: e.name.clone(),
                        error,
                    })
                    .await;
                if !refused {
                    break;
                }
            }
        }
    }
    e.progress.send_modify(|p| p.watched = false);
}
