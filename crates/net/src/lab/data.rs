//! Data: `send`, `recv`, `expect`, framing, `shutdown`, `close`, and UDP's
//! `sendto`/`recvfrom`; each settles on the lab's own peers.

use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use socklab_frame::Framing;

use super::{check_family, Entry, Kind, Lab};
use crate::conn::{settle_close, Conn};
use crate::error::{NetError, Result};
use crate::event::Event;
use crate::model::{ReadOutcome, SocketInfo};
use crate::netns::{self, Place};
use crate::settle::{lock, wait_until, SETTLE_LIMIT};
use crate::tube::{Progress, Tube};
use crate::udp::{Datagram, UdpSock};

/// How much of what a stream received and nothing took `close_unread`
/// returns.
const UNREAD_SHOWN: usize = 1 << 20;

/// Waits until the lab peer `peer` has published progress `done` accepts,
/// or stopped being read.
pub(super) async fn settle_peer(peer: &Tube, done: impl Fn(&Progress) -> bool) -> Result<()> {
    let what = || format!("waiting for {} to report", peer.name);
    wait_until(what, SETTLE_LIMIT, peer.watch_progress(), |p| {
        !p.watched || done(p)
    })
    .await
    .map(|_| ())
}

impl Lab {
    /// `sendall()`: writes every byte of `data`, then, when the peer is a
    /// watched socket of this lab, waits until it has reported them.
    /// Returns the bytes written. On a connected UDP socket: one datagram.
    ///
    /// # Errors
    /// Not a connection; the OS refused part way ([`NetError::PartialSend`]
    /// says how much went).
    pub async fn send(&self, name: &str, data: &[u8]) -> Result<usize> {
        let e = self.get(name)?;
        if let Ok(u) = e.udp() {
            let peer = u.peer().ok_or_else(|| {
                NetError::os("send")(std::io::Error::from_raw_os_error(libc::ENOTCONN))
            })?;
            return self.send_datagram(&u, None, peer, data).await;
        }
        let tube = e.tube()?;
        let sent = tube.send(data).await?;
        self.settle_sent(&e, &tube).await?;
        Ok(sent)
    }

    /// `sendall()` of `total` bytes of `byte` (`send NAME fill:SIZE`) on a
    /// byte stream, written from a buffer of at most 1 MiB whatever the
    /// size; settles as [`Lab::send`] does. Returns the bytes written.
    ///
    /// # Errors
    /// Not a byte stream (a UDP socket); the OS refused part way
    /// ([`NetError::PartialSend`] says how much went).
    pub async fn send_fill(&self, name: &str, byte: u8, total: u64) -> Result<u64> {
        let e = self.get(name)?;
        let tube = e.tube()?;
        let sent = tube.send_fill(byte, total).await?;
        self.settle_sent(&e, &tube).await?;
        Ok(sent)
    }

    /// Whether `name` is a byte stream (a connection, a UNIX stream, a
    /// program), which [`Lab::send_fill`] writes to.
    pub fn is_stream(&self, name: &str) -> bool {
        self.get(name).is_ok_and(|e| e.tube().is_ok())
    }

    /// When the peer of stream `e` is a watched socket of this lab (or
    /// beyond a relay of it), waits until it has reported every byte sent.
    async fn settle_sent(&self, e: &Entry, tube: &Tube) -> Result<()> {
        let total = tube.bytes_out();
        if let Ok(c) = e.conn() {
            if let Some(peer) = self.lab_peer(&c) {
                settle_peer(&peer.tube, |p| p.bytes_in >= total).await?;
            } else if let Some(flow) = self.brokered_flow(&c) {
                super::relay::settle_flow(&c, flow, Some(total)).await?;
            }
        } else if let Some(c) = e.unix() {
            if let Some(peer) = self.unix_lab_peer(&c) {
                settle_peer(&peer.tube, |p| p.bytes_in >= total).await?;
            }
        }
        Ok(())
    }

    /// One `recv()` of at most `max` bytes on a manual connection.
    ///
    /// When the peer is a socket of this lab, the read waits until every
    /// byte the peer has sent so far (up to `max`) has arrived, so what one
    /// read returns does not depend on timing.
    ///
    /// # Errors
    /// Not a manual connection, or the OS reported an error (reset).
    pub async fn recv(&self, name: &str, max: usize) -> Result<ReadOutcome> {
        let e = self.get(name)?;
        if e.is_udp() {
            return Ok(ReadOutcome::Data(self.recvfrom(name, max).await?.data));
        }
        let tube = e.tube()?;
        tube.check_manual()?;
        if let Some(c) = e.unix() {
            return self.recv_unix(&c, max).await;
        }
        // A TLS stream's reads wait for whole records; what the peer
        // handed to the network is counted in plaintext, so the kernel's
        // count of bytes queued cannot be compared with it.
        if let Ok(c) = e.conn().and_then(|c| match c.tls() {
            None => Ok(c),
            Some(_) => Err(NetError::state(name, "carries TLS")),
        }) {
            c.await_arrival(|| self.pending_from_peer(&c).min(max as u64) as usize)
                .await?;
        }
        tube.recv(max).await
    }

    /// Waits until data received by `name` satisfies `find`, which returns
    /// how many bytes the match consumes; returns those bytes.
    ///
    /// On a watched socket this looks at data reported since the last match;
    /// on a manual one it reads.
    ///
    /// # Errors
    /// The peer closed or the connection failed before a match.
    pub async fn expect(
        &self,
        name: &str,
        find: impl FnMut(&[u8]) -> Option<usize>,
    ) -> Result<Bytes> {
        self.expect_bounded(name, find, None).await
    }

    /// [`Lab::expect`] for a `find` whose matches are at most `longest`
    /// bytes long (a text: its length), which returns where the first
    /// match ends: each read is then searched once, where it lies, with
    /// the `longest - 1` bytes before it, and never joined to the others
    /// (a flood `expect` waits through costs one pass). `None` is
    /// [`Lab::expect`]: everything held is searched at each look.
    ///
    /// # Errors
    /// The peer closed or the connection failed before a match.
    pub async fn expect_bounded(
        &self,
        name: &str,
        find: impl FnMut(&[u8]) -> Option<usize>,
        longest: Option<usize>,
    ) -> Result<Bytes> {
        let e = self.get(name)?;
        if let Ok(u) = e.udp() {
            return u.expect(find, longest).await;
        }
        e.tube()?.expect(find, longest).await
    }

    /// Data a socket received that no `expect` has consumed yet (the last
    /// `max` bytes of it).
    ///
    /// # Errors
    /// No such socket.
    pub fn unmatched(&self, name: &str, max: usize) -> Result<Bytes> {
        let e = self.get(name)?;
        if let Ok(u) = e.udp() {
            return Ok(u.unmatched(max));
        }
        Ok(e.tube().map(|t| t.unmatched(max)).unwrap_or_default())
    }

    /// Chooses how a connection's incoming bytes are cut into messages
    /// (shown one event per message) and how [`Lab::frame`] frames what is
    /// sent. Bytes already buffered for a half message are dropped.
    ///
    /// # Errors
    /// Not a connection.
    pub fn set_framing(&self, name: &str, framing: Framing) -> Result<()> {
        self.get(name)?.tube()?.set_framing(framing);
        Ok(())
    }

    /// The framing a connection uses.
    ///
    /// # Errors
    /// No such socket.
    pub fn framing(&self, name: &str) -> Result<Framing> {
        let e = self.get(name)?;
        Ok(e.tube().map_or(Framing::Raw, |t| t.framing()))
    }

    /// `msg` framed as the connection's framing says (a line gets its LF, a
    /// `len` message its length prefix).
    ///
    /// # Errors
    /// The message does not fit the framing (a line with a LF in it, a
    /// message over the maximum).
    pub fn frame(&self, name: &str, msg: &[u8]) -> Result<Vec<u8>> {
        let framing = self.framing(name)?;
        let mut out = Vec::with_capacity(msg.len() + 4);
        framing
            .encode(msg, &mut out)
            .map_err(|e| NetError::state(name, format!("frames with {}: {e}", framing.name())))?;
        Ok(out)
    }

    /// `shutdown()`. After shutting the write side, waits until a watched
    /// peer in this lab has reported the close. On a program, shutting the
    /// write side closes its stdin.
    ///
    /// # Errors
    /// Not a connection, or the OS refused (not connected).
    pub async fn shutdown(&self, name: &str, how: Shutdown) -> Result<()> {
        let e = self.get(name)?;
        let tube = e.tube()?;
        tube.shutdown(how).await?;
        if let (Ok(c), Shutdown::Write | Shutdown::Both) = (e.conn(), how) {
            if let Some(peer) = self.lab_peer(&c) {
                settle_peer(&peer.tube, |p| p.eof || p.failed).await?;
            } else if let Some(flow) = self.brokered_flow(&c) {
                super::relay::settle_flow(&c, flow, None).await?;
            }
            // Until the peer's kernel acknowledges our FIN we are in
            // FIN_WAIT_1 (CLOSING, LAST_ACK); it may delay that ACK.
            c.settle_fin().await;
        }
        if let (Some(c), Shutdown::Write | Shutdown::Both) = (e.unix(), how) {
            if let Some(peer) = self.unix_lab_peer(&c) {
                settle_peer(&peer.tube, |p| p.eof || p.failed).await?;
            }
        }
        Ok(())
    }

    /// `close()`: the socket leaves the lab. When its peer is a watched
    /// socket of this lab, waits until the peer has reported the close; a
    /// program is ended and reaped (its exit reported).
    ///
    /// # Errors
    /// No such socket.
    pub async fn close(&self, name: &str) -> Result<SocketInfo> {
        Ok(self.close_with(name, true).await?.0)
    }

    /// `close`, also returning what the stream received that nothing took
    /// (no `expect` matched it; the last 1 MiB at most), read to its end
    /// when the close settled it (a program's output up to its exit).
    ///
    /// # Errors
    /// No such socket.
    pub async fn close_unread(&self, name: &str) -> Result<(SocketInfo, Bytes)> {
        self.close_with(name, true).await
    }

    /// Closes many sockets (`close srv.*`), one after another in the order
    /// given (so what their peers report comes in that order), each as
    /// `close` does but without waiting for the kernel's part of each
    /// goodbye (which reads the kernel's socket table: too slow for
    /// thousands). Returns what each close gave.
    pub async fn close_many(&self, names: &[String]) -> Vec<Result<SocketInfo>> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(self.close_with(name, false).await.map(|c| c.0));
        }
        out
    }

    async fn close_with(&self, name: &str, kernel: bool) -> Result<(SocketInfo, Bytes)> {
        let e = lock(&self.inner.sockets)
            .remove(name)
            .ok_or_else(|| NetError::NoSuchSocket(name.to_string()))?;
        let info = e.info();
        if let Some(local) = info.local {
            self.remember_addr(&e.name, local);
        }
        if info.outside {
            self.remember_outside(&e.name);
        }
        let kind = std::mem::replace(&mut *lock(&e.kind), Kind::Busy);
        let unread = match kind {
            Kind::Conn(c) => {
                self.close_conn(&c, e.place.as_deref(), kernel).await?;
                c.tube.unmatched(UNREAD_SHOWN)
            }
            Kind::Program(p) => {
                p.close().await?;
                p.tube.unmatched(UNREAD_SHOWN)
            }
            Kind::Listener(l) => {
                l.stop().await;
                Bytes::new()
            }
            Kind::Udp(u) => {
                u.stop_reader().await;
                u.unmatched(UNREAD_SHOWN)
            }
            Kind::Pair(p) => {
                p.end(false).await;
                Bytes::new()
            }
            Kind::Unix(c) => {
                self.close_unix(&c).await?;
                c.tube.unmatched(UNREAD_SHOWN)
            }
            Kind::Fresh(_) | Kind::UnixFresh(_) | Kind::UnixDgram(_) | Kind::Busy => Bytes::new(),
        };
        Ok((info, unread))
    }

    /// Closes a connection and settles what the close causes in the lab:
    /// the peer's report, a file or exec server's report, the kernel's
    /// goodbye, and an iterative server's next accept.
    async fn close_conn(&self, c: &Conn, place: Option<&Place>, kernel: bool) -> Result<()> {
        let announced = c.parent.as_ref().map(|p| p.announced());
        let kernel_before = c.kernel_state();
        c.tube.stop_reader().await;
        let peer = self.lab_peer(c);
        let brokered = self.brokered_flow(c);
        self.remember_departed(c);
        c.tube.close().await;
        if let Some(peer) = peer {
            settle_peer(&peer.tube, |p| p.eof || p.failed).await?;
        } else if let Some(flow) = brokered {
            super::relay::settle_flow(c, flow, None).await?;
        }
        // Published after the peer reported the close, so an iterative
        // server's next accept (which waits for it) comes after that event;
        // a connect that follows is served, not queued.
        if let Some(parent) = &c.parent {
            parent.done_with(c.peer);
        }
        c.tube.mark_closed();
        // A file or exec server of this lab reports the end of this client.
        let server = self
            .listeners()
            .into_iter()
            .find(|l| l.listens_at(place, c.peer));
        if let Some(server) = server {
            server.settle_finished(c.local, SETTLE_LIMIT).await?;
        }
        if let (Some(before), true) = (kernel_before, kernel) {
            settle_close(before, c.local, c.peer).await;
        }
        // An iterative server now takes the next client from its backlog;
        // when that is a client of this lab, the accept is part of this close.
        if let (Some(parent), Some(before)) = (&c.parent, announced) {
            if parent.dequeue() {
                let what = || format!("waiting for {} to accept its next client", c.peer);
                wait_until(what, SETTLE_LIMIT, parent.watch(), |_| {
                    parent.announced() > before
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Closes a connection a server accepted whose client left, when the
    /// server keeps too many such: it leaves the lab, and an event says so.
    pub(crate) async fn retire_conn(&self, c: Arc<Conn>, listener: Arc<str>) {
        let still_ours = {
            let mut sockets = lock(&self.inner.sockets);
            let ours = sockets
                .get(&c.tube.name)
                .is_some_and(|e| matches!(&*lock(&e.kind), Kind::Conn(k) if Arc::ptr_eq(k, &c)));
            if ours {
                sockets.remove(&c.tube.name);
            }
            ours
        };
        if !still_ours {
            return;
        }
        self.remember_addr(&c.tube.name, c.local);
        c.tube.stop_reader().await;
        self.remember_departed(&c);
        c.tube.close().await;
        if let Some(parent) = &c.parent {
            parent.done_with(c.peer);
        }
        c.tube.mark_closed();
        let ev = Event::Retired {
            socket: c.tube.name.clone(),
            listener,
        };
        let _ = self.inner.events.send(ev).await;
    }

    /// Closes every socket and ends every program without settling
    /// anything, and finishes every traffic log. Returns how many sockets
    /// there were.
    pub async fn close_all(&self) -> usize {
        let all: Vec<_> = std::mem::take(&mut *lock(&self.inner.sockets))
            .into_values()
            .collect();
        let kinds: Vec<Kind> = all
            .iter()
            .map(|e| std::mem::replace(&mut *lock(&e.kind), Kind::Busy))
            .collect();
        // Readers stop first, so the closes below raise no events.
        for kind in &kinds {
            match kind {
                Kind::Conn(c) => c.tube.stop_reader().await,
                Kind::Listener(l) => l.stop().await,
                Kind::Udp(u) => u.stop_reader().await,
                Kind::Program(p) => p.tube.stop_reader().await,
                Kind::Unix(c) => c.tube.stop_reader().await,
                Kind::Fresh(_)
                | Kind::Pair(_)
                | Kind::UnixFresh(_)
                | Kind::UnixDgram(_)
                | Kind::Busy => {}
            }
        }
        let mut programs = Vec::new();
        for kind in kinds {
            match kind {
                Kind::Conn(c) => c.tube.close().await,
                Kind::Unix(c) => c.tube.close().await,
                Kind::Program(p) => programs.push(p),
                Kind::Pair(p) => p.end(false).await,
                _ => {}
            }
        }
        // Every program is told at once, then each is waited for.
        for p in &programs {
            p.signal_kill();
        }
        for p in programs {
            p.kill().await;
        }
        // What the traffic logs hold is written out before the session ends.
        let _ = self.log_off(None).await;
        all.len()
    }

    // ----- UDP -------------------------------------------------------------

    /// `sendto()`: one datagram to `to`. When a watched UDP socket of this
    /// lab has that address, waits until it has reported the datagram.
    ///
    /// # Errors
    /// Not a UDP socket; the OS refused (too long: EMSGSIZE; broadcast
    /// without SO_BROADCAST: EACCES).
    pub async fn sendto(&self, name: &str, to: SocketAddr, data: &[u8]) -> Result<usize> {
        let e = self.get(name)?;
        netns::guard(e.place.as_deref(), to.ip())?;
        let u = e.udp()?;
        check_family(name, u.family, to)?;
        self.send_datagram(&u, Some(to), to, data).await
    }

    /// Sends one datagram (to `to`, or to the connected peer) and settles
    /// on the lab's receiver at `dest`.
    async fn send_datagram(
        &self,
        u: &UdpSock,
        to: Option<SocketAddr>,
        dest: SocketAddr,
        data: &[u8],
    ) -> Result<usize> {
        // A broadcast or multicast datagram reaches every receiver on the
        // LAN: the send settles on each of them, in turn.
        let receivers: Vec<(Arc<UdpSock>, u64)> = self
            .udp_receivers(u, dest)
            .into_iter()
            .map(|r| {
                let before = r.progress().datagrams;
                (r, before)
            })
            .collect();
        let n = u.send(to, data).await?;
        for (r, before) in receivers {
            let what = || format!("waiting for {} to report", r.name);
            wait_until(what, SETTLE_LIMIT, r.watch_progress(), |p| {
                !p.watched || p.datagrams > before
            })
            .await?;
        }
        Ok(n)
    }

    /// `recvfrom()`: one datagram, at most `max` bytes of it.
    ///
    /// # Errors
    /// Not a UDP socket, watched, or the OS reported an error (a connected
    /// socket learns "connection refused" from an ICMP port-unreachable).
    pub async fn recvfrom(&self, name: &str, max: usize) -> Result<Datagram> {
        self.get(name)?.udp()?.recvfrom(max).await
    }

    /// `join` (IP_ADD_MEMBERSHIP) or `leave` (IP_DROP_MEMBERSHIP) a
    /// multicast group, on the host's LAN interface unless `iface` names
    /// another address. Only sockets of the lab's hosts may.
    ///
    /// # Errors
    /// No such UDP socket, a socket of the root namespace, or the OS
    /// refused.
    pub fn membership(
        &self,
        name: &str,
        group: std::net::Ipv4Addr,
        iface: Option<std::net::Ipv4Addr>,
        join: bool,
    ) -> Result<SocketInfo> {
        let e = self.get(name)?;
        let Some(place) = e.place.clone() else {
            return Err(NetError::state(name, super::steps::ROOT_MULTICAST));
        };
        let u = e.udp()?;
        u.membership(group, iface.unwrap_or(place.addr), join)?;
        Ok(e.info())
    }

    /// A UDP socket bound to `addr` whose datagrams arrive as events.
    ///
    /// # Errors
    /// The name is taken, or the OS refused (address in use, …).
    pub fn udp_serve(&self, addr: SocketAddr, name: Option<&str>) -> Result<SocketInfo> {
        netns::guard(netns::current().as_deref(), addr.ip())?;
        let name = self.claim_name(name)?;
        let family = crate::model::Family::of(&addr);
        let u = Arc::new(UdpSock::new(name.clone(), family, Some(addr))?);
        let e = self.add(name, Kind::Udp(u.clone()))?;
        u.start_reader(self.inner.events.clone());
        Ok(e.info())
    }
}
