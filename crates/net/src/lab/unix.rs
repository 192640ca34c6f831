//! UNIX-domain sockets in the lab: `socket unix`, bind, listen, connect
//! (step by step and practical), datagrams, and the settlement between two
//! UNIX sockets of the lab. A UNIX client is usually unnamed, so the lab
//! pairs the two ends of a connection by inode (`UnixConn::peer_inode`),
//! not by address as TCP does.

use std::sync::Arc;

use socket2::Type;

use super::{Entry, Kind, Lab};
use crate::conn::Client;
use crate::error::{NetError, Result};
use crate::event::Event;
use crate::exec::Command;
use crate::listener::{Listener, ServeMode, Service};
use crate::model::{ReadOutcome, Role, SocketInfo, UnixAddr, UnixInfo};
use crate::settle::{lock, wait_until, SETTLE_LIMIT};
use crate::unix::{self, UnixConn, UnixDatagramIn, UnixDgram, UnixFresh};

/// Why an IP address does not apply to a UNIX socket.
pub(super) const NOT_IP: &str =
    "is a UNIX-domain socket: its addresses are unix:PATH or unix:@NAME, not a host and port";
/// Why listen and accept do not apply to a UNIX datagram socket.
pub(super) const NO_UNIX_CONNECTIONS: &str =
    "is a UNIX datagram socket: it has no connections to listen for or accept; datagrams just arrive (recvfrom)";

pub(super) fn fresh_info(f: &UnixFresh, info: &mut SocketInfo) {
    let local = f.local();
    info.fd = std::os::fd::AsRawFd::as_raw_fd(&f.socket);
    info.state = if local == UnixAddr::Unnamed {
        "created"
    } else {
        "bound"
    }
    .to_string();
    info.unix = Some(UnixInfo {
        dgram: false,
        local,
        peer: None,
        cred: None,
    });
}

pub(super) fn conn_info(c: &UnixConn, info: &mut SocketInfo) {
    info.role = Role::Stream;
    info.fd = c.fd();
    info.mode = c.tube.mode();
    let words = c.tube.state_words();
    info.state = if words.is_empty() {
        "connected".to_string()
    } else {
        words.join(", ")
    };
    info.bytes_in = c.tube.progress().bytes_in;
    info.bytes_out = c.tube.bytes_out();
    info.outside = c.tube.outside;
    info.unix = Some(UnixInfo {
        dgram: false,
        local: c.local.clone(),
        peer: Some(c.peer.clone()),
        cred: c.cred,
    });
}

pub(super) fn dgram_info(d: &UnixDgram, info: &mut SocketInfo) {
    use std::sync::atomic::Ordering::SeqCst;
    let local = d.local();
    info.role = Role::Datagram;
    info.fd = d.fd();
    info.state = if local == UnixAddr::Unnamed {
        "created"
    } else {
        "bound"
    }
    .to_string();
    info.bytes_in = d.received.0.load(SeqCst);
    info.datagrams_in = d.received.1.load(SeqCst);
    info.bytes_out = d.sent.0.load(SeqCst);
    info.datagrams_out = d.sent.1.load(SeqCst);
    info.unix = Some(UnixInfo {
        dgram: true,
        local,
        peer: None,
        cred: None,
    });
}

impl Lab {
    /// `socket(AF_UNIX, SOCK_STREAM or SOCK_DGRAM)`: a new UNIX socket,
    /// not yet bound.
    ///
    /// # Errors
    /// The name is taken, or the OS refused.
    pub fn socket_unix(&self, dgram: bool, name: Option<&str>) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let kind = if dgram {
            let sock = unix::new_socket(Type::DGRAM)?;
            Kind::UnixDgram(Arc::new(UnixDgram::new(sock, None)?))
        } else {
            Kind::UnixFresh(UnixFresh {
                socket: unix::new_socket(Type::STREAM)?,
                file: None,
            })
        };
        Ok(self.add(name, kind)?.info())
    }

    /// `bind()` a UNIX socket to a path (which makes the socket file,
    /// removed again when the socket closes) or an abstract name.
    ///
    /// # Errors
    /// Not a fresh UNIX socket, or the address is taken (a stale socket
    /// file is named as such, and left alone).
    pub fn bind_unix(&self, name: &str, addr: &UnixAddr) -> Result<SocketInfo> {
        let e = self.get(name)?;
        match &mut *lock(&e.kind) {
            Kind::UnixFresh(f) => f.file = unix::bind(&f.socket, addr)?,
            Kind::UnixDgram(d) => d.bind(addr)?,
            Kind::Fresh(_) | Kind::Udp(_) => {
                return Err(NetError::state(
                    name,
                    "is an IP socket: a unix: address needs a socket made by `socket unix`",
                ))
            }
            _ => {
                return Err(NetError::state(
                    name,
                    "is not a fresh socket (bind comes before listen or connect)",
                ))
            }
        }
        Ok(e.info())
    }

    /// `connect()` a fresh UNIX stream socket (read on request from then
    /// on), or fix a UNIX datagram socket's peer.
    ///
    /// # Errors
    /// Not a UNIX socket; nothing listens there (ENOENT, ECONNREFUSED);
    /// the listener's backlog is full (EAGAIN).
    pub async fn connect_unix(&self, name: &str, to: &UnixAddr) -> Result<SocketInfo> {
        let e = self.get(name)?;
        let fresh = {
            let mut kind = lock(&e.kind);
            match std::mem::replace(&mut *kind, Kind::Busy) {
                Kind::UnixFresh(f) => f,
                other => {
                    let why = match &other {
                        Kind::UnixDgram(_) => {
                            "is a UNIX datagram socket: send to an address with sendto"
                        }
                        Kind::Fresh(_) | Kind::Udp(_) => {
                            "is an IP socket: a unix: address needs a socket made by `socket unix`"
                        }
                        _ => "is already listening or connected",
                    };
                    *kind = other;
                    return Err(NetError::state(name, why));
                }
            }
        };
        let UnixFresh { socket, file } = fresh;
        let stream = match unix::connect(socket, to) {
            Ok(s) => s,
            Err((err, sock)) => {
                if let Some(socket) = sock {
                    *lock(&e.kind) = Kind::UnixFresh(UnixFresh { socket, file });
                }
                return Err(err);
            }
        };
        // A bound client keeps its socket file until it is closed.
        drop(file);
        let outside = !self.lab_tubes_at_unix(to);
        let c = Arc::new(UnixConn::new(e.name.clone(), stream, None, outside));
        *lock(&e.kind) = Kind::Unix(c.clone());
        self.settle_unix_accept(&c).await?;
        Ok(e.info())
    }

    /// socket + bind + listen on `addr`, then accept every client in the
    /// background; clients are named `NAME.1`, `NAME.2`, ….
    ///
    /// # Errors
    /// The name is taken, or the address is (a stale socket file is named
    /// as such, and left alone).
    pub fn serve_unix(
        &self,
        addr: &UnixAddr,
        backlog: i32,
        name: Option<&str>,
        how: ServeMode,
    ) -> Result<SocketInfo> {
        self.unix_server(addr, backlog, name, Service::events(how))
    }

    /// A UNIX server whose every client is wired to its own run of
    /// `command`, as `ncat -U --exec` does.
    ///
    /// # Errors
    /// As [`Lab::serve_unix`].
    pub fn serve_unix_exec(
        &self,
        addr: &UnixAddr,
        backlog: i32,
        name: Option<&str>,
        command: Command,
    ) -> Result<SocketInfo> {
        self.unix_server(addr, backlog, name, Service::exec(command))
    }

    fn unix_server(
        &self,
        addr: &UnixAddr,
        backlog: i32,
        name: Option<&str>,
        service: Service,
    ) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let (socket, file) = unix::listen_at(addr, backlog)?;
        let order = self.next_order();
        let l = Arc::new(Listener::new_unix(
            name.clone(),
            order,
            socket,
            file,
            service,
        ));
        let e = Entry::new(name, (order, 0), Kind::Listener(l.clone()));
        self.insert(e.clone())?;
        self.index(&e);
        l.start(Arc::new(self.clone()));
        Ok(e.info())
    }

    /// Connects a new UNIX stream socket to `to`; its data arrives as
    /// events.
    ///
    /// # Errors
    /// The name is taken; nothing listens there; the backlog is full.
    pub async fn dial_unix(&self, to: &UnixAddr, name: Option<&str>) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let sock = unix::new_socket(Type::STREAM)?;
        let stream = unix::connect(sock, to).map_err(|(e, _)| e)?;
        let outside = !self.lab_tubes_at_unix(to);
        let c = Arc::new(UnixConn::new(name.clone(), stream, None, outside));
        let e = self.add(name, Kind::Unix(c.clone()))?;
        c.tube.start_reader(self.inner.events.clone());
        self.settle_unix_accept(&c).await?;
        Ok(e.info())
    }

    /// `sendto()` one datagram from a UNIX datagram socket.
    ///
    /// # Errors
    /// Not a UNIX datagram socket, or the OS refused (nobody at `to`).
    pub async fn sendto_unix(&self, name: &str, to: &UnixAddr, data: &[u8]) -> Result<usize> {
        self.unix_dgram(name)?.sendto(to, data).await
    }

    /// `recvfrom()` on a UNIX datagram socket: one datagram, at most `max`
    /// bytes, and who sent it.
    ///
    /// # Errors
    /// Not a UNIX datagram socket, or the OS refused.
    pub async fn recvfrom_unix(&self, name: &str, max: usize) -> Result<UnixDatagramIn> {
        self.unix_dgram(name)?.recvfrom(max).await
    }

    /// Whether `name` is a UNIX-domain socket.
    pub fn is_unix(&self, name: &str) -> bool {
        self.get(name).is_ok_and(|e| e.info().unix.is_some())
    }

    fn unix_dgram(&self, name: &str) -> Result<Arc<UnixDgram>> {
        match &*lock(&self.get(name)?.kind) {
            Kind::UnixDgram(d) => Ok(d.clone()),
            _ => Err(NetError::state(
                name,
                "is not a UNIX datagram socket (`socket unix dgram` makes one)",
            )),
        }
    }

    // ----- settlement between UNIX sockets of the lab ----------------------

    /// Whether a connection to `to` reaches a listener of this lab whose
    /// clients become tubes of the lab.
    fn lab_tubes_at_unix(&self, to: &UnixAddr) -> bool {
        self.listeners().iter().any(|l| {
            matches!(l.service, Service::Manual | Service::Events(_)) && l.listens_at_unix(to)
        })
    }

    /// After a connect: when the listener at the other end is one of this
    /// lab's that accepts by itself, waits until it has reported this
    /// client (a busy iterative server queues it instead).
    async fn settle_unix_accept(&self, c: &UnixConn) -> Result<()> {
        let listener = self
            .listeners()
            .into_iter()
            .find(|l| l.accepts().is_some() && l.listens_at_unix(&c.peer));
        let Some(accepts) = listener.as_ref().and_then(|l| l.accepts()) else {
            return Ok(());
        };
        let me = Client::Unix(c.inode);
        if accepts.serving().is_some_and(|s| s != me) {
            accepts.queue();
            return Ok(());
        }
        let what = || format!("waiting for the listener on {} to accept", c.peer);
        wait_until(what, SETTLE_LIMIT, accepts.watch(), |_| {
            accepts.has_announced(me)
        })
        .await
        .map(|_| ())
    }

    /// A UNIX connection to a listener of this lab that nobody accepted
    /// yet waits in its accept queue; says so in its state.
    pub(super) fn annotate_unix(&self, mut info: SocketInfo) -> SocketInfo {
        let Some(peer) = info.unix.as_ref().and_then(|u| u.peer.clone()) else {
            return info;
        };
        if info.role != Role::Stream || info.state != "connected" {
            return info;
        }
        let Some(c) = self.get(&info.name).ok().and_then(|e| e.unix()) else {
            return info;
        };
        if self.unix_peer(&c).is_some() {
            return info;
        }
        let queue = self.listeners().into_iter().find(|l| {
            matches!(l.service, Service::Manual | Service::Events(_)) && l.listens_at_unix(&peer)
        });
        if let Some(l) = queue {
            info.state = format!("connected, in {}'s accept queue", l.name);
        }
        info
    }

    /// The UNIX connection of this lab at the other end of `c`.
    pub(super) fn unix_peer(&self, c: &UnixConn) -> Option<Arc<UnixConn>> {
        let want = c.peer_inode()?;
        lock(&self.inner.sockets)
            .values()
            .find_map(|e| match &*lock(&e.kind) {
                Kind::Unix(u) if u.inode == want => Some(u.clone()),
                _ => None,
            })
    }

    /// The watched UNIX connection of this lab at the other end of `c`.
    pub(super) fn unix_lab_peer(&self, c: &UnixConn) -> Option<Arc<UnixConn>> {
        self.unix_peer(c).filter(|p| p.tube.progress().watched)
    }

    /// One manual read of a UNIX connection; when its peer is in this lab,
    /// first waits until what the peer wrote so far (up to `max`) arrived.
    pub(super) async fn recv_unix(&self, c: &UnixConn, max: usize) -> Result<ReadOutcome> {
        c.await_arrival(|| {
            let read = c.tube.progress().bytes_in;
            let pending = self
                .unix_peer(c)
                .map_or(0, |p| p.tube.bytes_out().saturating_sub(read));
            pending.min(max as u64) as usize
        })
        .await?;
        c.tube.recv(max).await
    }

    /// Closes a UNIX connection and settles what the close causes in the
    /// lab: the peer's report, an exec server's report, and an iterative
    /// server's next accept.
    pub(super) async fn close_unix(&self, c: &UnixConn) -> Result<()> {
        let announced = c.parent.as_ref().map(|p| p.announced());
        c.tube.stop_reader().await;
        let peer = self.unix_lab_peer(c);
        c.tube.close().await;
        if let Some(peer) = peer {
            super::data::settle_peer(&peer.tube, |p| p.eof || p.failed).await?;
        }
        if let Some(parent) = &c.parent {
            parent.done_with(Client::Unix(c.peer_inode().unwrap_or(0)));
        }
        c.tube.mark_closed();
        let server = self
            .listeners()
            .into_iter()
            .find(|l| l.listens_at_unix(&c.peer));
        if let Some(server) = server {
            server
                .settle_finished(Client::Unix(c.inode), SETTLE_LIMIT)
                .await?;
        }
        if let (Some(parent), Some(before)) = (&c.parent, announced) {
            if parent.dequeue() {
                let what = || format!("waiting for {} to accept its next client", c.local);
                wait_until(what, SETTLE_LIMIT, parent.watch(), |_| {
                    parent.announced() > before
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Closes a UNIX connection a server accepted whose client left, when
    /// the server keeps too many such.
    pub(crate) async fn retire_unix_conn(&self, c: Arc<UnixConn>, listener: Arc<str>) {
        let still_ours = {
            let mut sockets = lock(&self.inner.sockets);
            let ours = sockets
                .get(&c.tube.name)
                .is_some_and(|e| matches!(&*lock(&e.kind), Kind::Unix(k) if Arc::ptr_eq(k, &c)));
            if ours {
                sockets.remove(&c.tube.name);
            }
            ours
        };
        if !still_ours {
            return;
        }
        c.tube.stop_reader().await;
        c.tube.close().await;
        if let Some(parent) = &c.parent {
            parent.done_with(Client::Unix(c.peer_inode().unwrap_or(0)));
        }
        c.tube.mark_closed();
        let ev = Event::Retired {
            socket: c.tube.name.clone(),
            listener,
        };
        let _ = self.inner.events.send(ev).await;
    }
}
