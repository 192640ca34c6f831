//! UDP in the lab: datagrams sent and received one at a time, each keeping
//! its edges, with the sender's address.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::budget::Payload;
use crate::error::{NetError, Result};
use crate::event::{Event, Sink};
use crate::inbox::{Inbox, Scan};
use crate::model::{Family, Mode};
use crate::settle::lock;
use crate::tap::{self, Direction};
use crate::tube::{Background, Reader};

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

/// What a UDP socket's readers have published.
#[derive(Debug, Clone, Default)]
pub(crate) struct UdpProgress {
    /// Bytes received.
    pub(crate) bytes_in: u64,
    /// Datagrams received.
    pub(crate) datagrams: u64,
    /// The background reader is running.
    pub(crate) watched: bool,
}

/// A UDP socket of the lab (bound or not, connected or not).
pub(crate) struct UdpSock {
    /// The name in the lab.
    pub(crate) name: Arc<str>,
    /// The socket.
    socket: Arc<UdpSocket>,
    /// Its family.
    pub(crate) family: Family,
    /// Who reads: a background reader (events) or commands.
    reader: Reader,
    /// What the readers have published.
    progress: watch::Sender<UdpProgress>,
    /// Bytes sent.
    bytes_out: AtomicU64,
    /// Datagrams sent.
    datagrams_out: AtomicU64,
    /// Received data no `expect` consumed yet.
    inbox: Inbox,
    /// The lab host it was made on (`None`: this shell's namespace).
    place: Option<Arc<crate::netns::Place>>,
    /// The multicast groups it joined.
    groups: Mutex<Vec<Ipv4Addr>>,
}

impl UdpSock {
    /// A new UDP socket of `family`, bound to `bind` when given.
    ///
    /// # Errors
    /// The OS refused.
    pub(crate) fn new(name: Arc<str>, family: Family, bind: Option<SocketAddr>) -> Result<UdpSock> {
        let sock = crate::netns::socket(family.domain(), socket2::Type::DGRAM, None)
            .map_err(NetError::os("socket"))?;
        sock.set_nonblocking(true).map_err(NetError::os("socket"))?;
        if let Some(addr) = bind {
            sock.bind(&addr.into()).map_err(NetError::os("bind"))?;
        }
        let socket = UdpSocket::from_std(sock.into()).map_err(NetError::os("socket"))?;
        Ok(UdpSock {
            name,
            socket: Arc::new(socket),
            family,
            reader: Reader::new(),
            progress: watch::Sender::new(UdpProgress::default()),
            bytes_out: AtomicU64::new(0),
            datagrams_out: AtomicU64::new(0),
            inbox: Inbox::default(),
            place: crate::netns::current(),
            groups: Mutex::new(Vec::new()),
        })
    }

    /// A reference for options, bind and connect.
    pub(crate) fn sockref(&self) -> SockRef<'_> {
        SockRef::from(&*self.socket)
    }

    /// The descriptor.
    pub(crate) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The local address, when the OS can say.
    pub(crate) fn local(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }

    /// The fixed peer of a connected UDP socket.
    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        self.socket.peer_addr().ok()
    }

    /// Who reads it.
    pub(crate) fn mode(&self) -> Mode {
        self.reader.mode()
    }

    /// What the readers have published.
    pub(crate) fn progress(&self) -> UdpProgress {
        self.progress.borrow().clone()
    }

    /// A receiver of the progress, to settle on.
    pub(crate) fn watch_progress(&self) -> watch::Receiver<UdpProgress> {
        self.progress.subscribe()
    }

    /// (bytes, datagrams) sent.
    pub(crate) fn sent(&self) -> (u64, u64) {
        (
            self.bytes_out.load(Ordering::SeqCst),
            self.datagrams_out.load(Ordering::SeqCst),
        )
    }

    /// Whether datagrams that `from` sends to `to` reach this socket's
    /// reader (a multicast group only once this socket joined it, and not
    /// on the sender's own host when `from` has multicast loop off).
    pub(crate) fn receives(&self, from: &UdpSock, to: SocketAddr) -> bool {
        if self.mode() != Mode::Watched
            || !self.local().is_some_and(|a| {
                crate::netns::delivers(self.place.as_deref(), a, from.place.as_deref(), to)
            })
        {
            return false;
        }
        match to.ip() {
            std::net::IpAddr::V4(group) if group.is_multicast() => {
                let looped = from.sockref().multicast_loop_v4().unwrap_or(true);
                lock(&self.groups).contains(&group)
                    && (looped || !crate::netns::same(self.place.as_deref(), from.place.as_deref()))
            }
            _ => true,
        }
    }

    /// The lab host it was made on.
    pub(crate) fn place(&self) -> Option<&Arc<crate::netns::Place>> {
        self.place.as_ref()
    }

    /// `IP_ADD_MEMBERSHIP` (`join`) or `IP_DROP_MEMBERSHIP` (`leave`) of
    /// `group` on the interface with address `iface` (any when
    /// unspecified).
    ///
    /// # Errors
    /// The OS refused (not a multicast address, not joined, …).
    pub(crate) fn membership(&self, group: Ipv4Addr, iface: Ipv4Addr, join: bool) -> Result<()> {
        let s = self.sockref();
        if join {
            s.join_multicast_v4(&group, &iface)
                .map_err(NetError::os("join (IP_ADD_MEMBERSHIP)"))?;
            lock(&self.groups).push(group);
        } else {
            s.leave_multicast_v4(&group, &iface).map_err(|e| {
                if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
                    NetError::state(&self.name, format!("has not joined {group} (on {iface})"))
                } else {
                    NetError::os("leave (IP_DROP_MEMBERSHIP)")(e)
                }
            })?;
            lock(&self.groups).retain(|g| *g != group);
        }
        Ok(())
    }

    /// `sendto()` (`to` given) or `send()` on a connected socket: one
    /// datagram.
    ///
    /// # Errors
    /// The OS refused (too long: EMSGSIZE; broadcast without
    /// SO_BROADCAST: EACCES; not connected).
    pub(crate) async fn send(&self, to: Option<SocketAddr>, data: &[u8]) -> Result<usize> {
        // Logged before it goes, so the log shows it before its receipt.
        tap::datagram(&self.name, Direction::Out, to.or_else(|| self.peer()), data);
        let sent = match to {
            Some(to) => self
                .socket
                .send_to(data, to)
                .await
                .map_err(NetError::os("sendto")),
            None => self.socket.send(data).await.map_err(NetError::os("send")),
        };
        let n = match sent {
            Ok(n) => n,
            Err(e) => {
                tap::note(&self.name, &format!("the datagram above was not sent: {e}"));
                return Err(e);
            }
        };
        self.bytes_out.fetch_add(n as u64, Ordering::SeqCst);
        self.datagrams_out.fetch_add(1, Ordering::SeqCst);
        Ok(n)
    }

    /// `recvfrom()`: one datagram, at most `max` bytes of it.
    ///
    /// # Errors
    /// Watched, or the OS reported an error (a connected socket learns
    /// "connection refused" from an ICMP port-unreachable).
    pub(crate) async fn recvfrom(&self, max: usize) -> Result<Datagram> {
        if self.mode() == Mode::Watched {
            return Err(NetError::state(
                &self.name,
                "is read in the background (its datagrams show as events); `watch NAME off` to read it yourself",
            ));
        }
        let d = self.recv_one(max.clamp(1, DATAGRAM_MAX)).await?;
        let n = d.data.len() as u64;
        self.progress.send_modify(|p| {
            p.bytes_in += n;
            p.datagrams += 1;
        });
        Ok(d)
    }

    /// Every datagram read, by the background reader or by a command,
    /// passes here: the traffic log sees it.
    async fn recv_one(&self, max: usize) -> Result<Datagram> {
        let d = recv_one(&self.socket, max).await?;
        tap::datagram(&self.name, Direction::In, Some(d.from), &d.data);
        Ok(d)
    }

    /// Waits until received data satisfies `find`; see [`crate::Lab::expect`].
    ///
    /// # Errors
    /// The socket failed.
    pub(crate) async fn expect(
        &self,
        mut find: impl FnMut(&[u8]) -> Option<usize>,
        longest: Option<usize>,
    ) -> Result<Bytes> {
        let mut rx = self.progress.subscribe();
        let mut scan = Scan::new(longest);
        loop {
            // Marked seen before the inbox is looked at: a push published
            // after this wakes the wait below.
            rx.borrow_and_update();
            if let Some(m) = self.inbox.take_scanned(&mut find, &mut scan) {
                return Ok(m);
            }
            if self.mode() == Mode::Watched {
                if rx.changed().await.is_err() {
                    return Err(NetError::state(&self.name, "is closed"));
                }
            } else {
                let d = self.recvfrom(DATAGRAM_MAX).await?;
                self.inbox.push(Bytes::copy_from_slice(&d.data));
            }
        }
    }

    /// The last `max` bytes of data no `expect` consumed.
    pub(crate) fn unmatched(&self, max: usize) -> Bytes {
        self.inbox.tail(max)
    }

    /// Starts a background reader: every datagram is an event.
    pub(crate) fn start_reader(self: &Arc<Self>, events: Sink) {
        let me = self.clone();
        let _ = self.reader.start(|| {
            self.progress.send_modify(|p| p.watched = true);
            Ok(Background::spawn(move |cancel| async move {
                me.read_loop(events, cancel).await;
            }))
        });
    }

    /// Whether a background reader was started and not stopped.
    pub(crate) fn has_reader(&self) -> bool {
        self.reader.started()
    }

    /// Stops the background reader; reads happen on request from then on.
    pub(crate) async fn stop_reader(&self) {
        self.reader.stop().await;
        self.progress.send_modify(|p| p.watched = false);
    }
}

/// Reads one datagram, learning its full size (MSG_TRUNC) when it is cut.
async fn recv_one(udp: &UdpSocket, max: usize) -> Result<Datagram> {
    let mut buf = vec![0u8; max];
    let would_block = || io::Error::from(io::ErrorKind::WouldBlock);
    // The first try needs no wait.
    let mut got = recv_trunc(udp, &mut buf);
    loop {
        match got {
            Ok((size, from)) => {
                // Exactly the datagram's bytes: the buffer has room for the
                // largest, and an event must not keep all of it.
                return Ok(Datagram {
                    data: Bytes::copy_from_slice(&buf[..size.min(max)]),
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
            udp.try_io(Interest::ERROR, || -> io::Result<(usize, SocketAddr)> {
                Err(SockRef::from(udp).take_error()?.unwrap_or_else(would_block))
            })
        } else {
            udp.try_io(Interest::READABLE, || recv_trunc(udp, &mut buf))
        };
    }
}

/// One `recvmsg(MSG_TRUNC)`: the bytes that fit into `buf`, the datagram's
/// full size (more than `buf` when it was cut), and its sender.
fn recv_trunc(udp: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    use nix::sys::socket::{recvmsg, MsgFlags, SockaddrStorage};
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(udp.as_raw_fd(), &mut iov, None, MsgFlags::MSG_TRUNC)?;
    let from = msg.address.and_then(|a| {
        if let Some(v4) = a.as_sockaddr_in() {
            Some(SocketAddr::V4((*v4).into()))
        } else {
            a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
        }
    });
    let from = from.ok_or_else(|| io::Error::other("sender without an IP address"))?;
    Ok((msg.bytes, from))
}

impl UdpSock {
    async fn read_loop(&self, events: Sink, cancel: CancellationToken) {
        let mut dropped = 0u64;
        loop {
            let got = tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.recv_one(DATAGRAM_MAX) => r,
                // Datagrams were dropped and the budget has room again: say
                // how many now, not only when the next datagram comes.
                _ = events.budget.take(1), if dropped > 0 => {
                    let ev = Event::Dropped {
                        socket: self.name.clone(),
                        datagrams: std::mem::take(&mut dropped),
                    };
                    let _ = events.send(ev).await;
                    continue;
                }
            };
            match got {
                Ok(d) => {
                    let n = d.data.len() as u64;
                    let data = d.data.clone();
                    // A datagram is shown only while the budget has room;
                    // past it, it is dropped from view (and counted), so a
                    // flood cannot grow memory. It still counts as received.
                    match events.budget.try_take(data.len()) {
                        Some(charge) => {
                            if dropped > 0 {
                                let ev = Event::Dropped {
                                    socket: self.name.clone(),
                                    datagrams: std::mem::take(&mut dropped),
                                };
                                let _ = events.send(ev).await;
                            }
                            let ev = Event::Datagram {
                                socket: self.name.clone(),
                                from: d.from,
                                data: Payload::new(d.data, charge),
                            };
                            let _ = events.send(ev).await;
                        }
                        None => dropped += 1,
                    }
                    // Published after the event was sent.
                    self.inbox.push(Bytes::copy_from_slice(&data));
                    self.progress.send_modify(|p| {
                        p.bytes_in += n;
                        p.datagrams += 1;
                    });
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
                            socket: self.name.clone(),
                            error,
                        })
                        .await;
                    if !refused {
                        break;
                    }
                }
            }
        }
        self.progress.send_modify(|p| p.watched = false);
    }
}
