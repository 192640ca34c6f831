//! Step by step: `socket`, options, `bind`, `listen`, `accept`,
//! `connect`, one system call each, as the lecture writes them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{SockRef, Type};
use tokio::net::TcpListener;

use super::{check_family, Entry, Fresh, Kind, Lab, NOT_A_SOCKET, NO_CONNECTIONS};
use crate::conn::{connect_socket, Conn};
use crate::error::{NetError, Result};
use crate::listener::{Accepted, Listener, Service};
use crate::model::{Family, Proto, SocketInfo};
use crate::netns::{self, Place};
use crate::options::{OptValue, SockOpt};
use crate::settle::{lock, wait_until, SETTLE_LIMIT};
use crate::tcp;
use crate::udp::UdpSock;
use crate::unix::UnixConn;

impl Entry {
    /// Runs `f` on the socket under any kind, with whether it is IPv6.
    fn with_sockref<T>(&self, f: impl FnOnce(SockRef<'_>, bool) -> T) -> Result<T> {
        match &*lock(&self.kind) {
            Kind::Fresh(s) => Ok(f(SockRef::from(&s.socket), s.family == Family::V6)),
            Kind::Listener(l) => Ok(f(l.sockref(), l.family() == Family::V6)),
            Kind::Conn(c) => c.with_sockref(|s| f(s, c.family() == Family::V6)),
            Kind::Udp(u) => Ok(f(u.sockref(), u.family == Family::V6)),
            Kind::UnixFresh(s) => Ok(f(SockRef::from(&s.socket), false)),
            Kind::Unix(c) => c.with_sockref(|s| f(s, false)),
            Kind::UnixDgram(d) => Ok(f(d.sockref(), false)),
            Kind::Program(_) => Err(NetError::state(&self.name, NOT_A_SOCKET)),
            Kind::Pair(_) => Err(NetError::state(
                &self.name,
                "is a relay pair (two connections): options apply to one socket",
            )),
            Kind::Busy => Err(NetError::state(&self.name, "is busy")),
        }
    }
}

/// Why multicast is refused on a socket of the shell's own namespace.
pub(super) const ROOT_MULTICAST: &str =
    "is a socket of this shell's own network: multicast is for the lab's hosts only (make the socket with `on HOST …`)";

impl Lab {
    /// `socket()`: a new TCP or UDP socket of `family`, not yet bound.
    ///
    /// # Errors
    /// The name is taken, or the OS refused (too many open files, …).
    pub fn socket(&self, proto: Proto, family: Family, name: Option<&str>) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let kind = match proto {
            Proto::Tcp => {
                let socket = crate::netns::socket(family.domain(), Type::STREAM, None)
                    .map_err(NetError::os("socket"))?;
                socket
                    .set_nonblocking(true)
                    .map_err(NetError::os("socket"))?;
                Kind::Fresh(Fresh { socket, family })
            }
            Proto::Udp => Kind::Udp(Arc::new(UdpSock::new(name.clone(), family, None)?)),
        };
        Ok(self.add(name, kind)?.info())
    }

    /// `setsockopt()`.
    ///
    /// # Errors
    /// No such socket, or the OS refused.
    pub fn set_opt(&self, name: &str, opt: SockOpt, value: OptValue) -> Result<()> {
        let e = self.get(name)?;
        if opt.is_multicast() && e.place.is_none() {
            return Err(NetError::state(name, ROOT_MULTICAST));
        }
        e.with_sockref(|s, v6| opt.set(s, value, v6))?
            .map_err(NetError::os("setsockopt"))
    }

    /// `getsockopt()`.
    ///
    /// # Errors
    /// No such socket, or the OS refused.
    pub fn get_opt(&self, name: &str, opt: SockOpt) -> Result<OptValue> {
        self.get(name)?
            .with_sockref(|s, v6| opt.get(s, v6))?
            .map_err(NetError::os("getsockopt"))
    }

    /// `TCP_INFO` of a TCP socket, decoded.
    ///
    /// # Errors
    /// No such socket, a UDP or UNIX socket, or the OS refused.
    pub fn tcp_info(&self, name: &str) -> Result<tcp::TcpInfo> {
        let e = self.get(name)?;
        if e.info().unix.is_some() {
            return Err(NetError::state(
                name,
                "is a UNIX-domain socket: TCP_INFO is for TCP",
            ));
        }
        if e.is_udp() {
            return Err(NetError::state(
                name,
                "is a UDP socket: TCP_INFO is for TCP",
            ));
        }
        e.with_sockref(|s, _| tcp::tcp_info(std::os::fd::AsRawFd::as_raw_fd(&*s)))?
            .map_err(NetError::os("getsockopt(TCP_INFO)"))
    }

    /// `bind()` a fresh socket.
    ///
    /// # Errors
    /// Not a fresh socket, wrong family, or the OS refused (address in use).
    pub fn bind(&self, name: &str, addr: SocketAddr) -> Result<SocketInfo> {
        let e = self.get(name)?;
        netns::guard(e.place.as_deref(), addr.ip())?;
        match &*lock(&e.kind) {
            Kind::Fresh(s) => {
                check_family(name, s.family, addr)?;
                s.socket.bind(&addr.into()).map_err(NetError::os("bind"))?;
            }
            Kind::Udp(u) => {
                check_family(name, u.family, addr)?;
                u.sockref()
                    .bind(&addr.into())
                    .map_err(NetError::os("bind"))?;
            }
            Kind::Program(_) => return Err(NetError::state(name, NOT_A_SOCKET)),
            Kind::UnixFresh(_) | Kind::UnixDgram(_) => {
                return Err(NetError::state(name, super::unix::NOT_IP))
            }
            _ => {
                return Err(NetError::state(
                    name,
                    "is already listening or connected; bind comes first",
                ))
            }
        }
        Ok(e.info())
    }

    /// `listen()` on a fresh socket. Connections then wait in the accept
    /// queue until [`Lab::accept`] takes them.
    ///
    /// # Errors
    /// Not a fresh socket, or the OS refused.
    pub fn listen(&self, name: &str, backlog: i32) -> Result<SocketInfo> {
        let e = self.get(name)?;
        let mut kind = lock(&e.kind);
        let fresh = match std::mem::replace(&mut *kind, Kind::Busy) {
            Kind::Fresh(f) => f,
            Kind::UnixFresh(f) => {
                if let Err(err) = f.socket.listen(backlog) {
                    *kind = Kind::UnixFresh(f);
                    return Err(NetError::os("listen")(err));
                }
                let listener = crate::unix::listener_of(f.socket)?;
                let l = Listener::new_unix(
                    e.name.clone(),
                    e.order.0,
                    listener,
                    f.file,
                    Service::Manual,
                );
                *kind = Kind::Listener(Arc::new(l));
                drop(kind);
                self.index(&e);
                return Ok(e.info());
            }
            other => {
                let why = match &other {
                    Kind::Udp(_) => NO_CONNECTIONS,
                    Kind::UnixDgram(_) => super::unix::NO_UNIX_CONNECTIONS,
                    Kind::Program(_) => NOT_A_SOCKET,
                    _ => "is already listening or connected",
                };
                *kind = other;
                return Err(NetError::state(name, why));
            }
        };
        if let Err(err) = fresh.socket.listen(backlog) {
            *kind = Kind::Fresh(fresh);
            return Err(NetError::os("listen")(err));
        }
        let listener =
            TcpListener::from_std(fresh.socket.into()).map_err(NetError::os("listen"))?;
        let l = Listener::new(
            e.name.clone(),
            e.order.0,
            listener,
            Service::Manual,
            e.place.clone(),
        );
        *kind = Kind::Listener(Arc::new(l));
        drop(kind);
        self.index(&e);
        Ok(e.info())
    }

    /// `accept()` one connection from a listener's queue; the connection is
    /// read manually.
    ///
    /// On a listener that accepts by itself (`listen PORT`) this waits
    /// until the next client not yet claimed by an `accept` has been
    /// accepted and reported, and returns it.
    ///
    /// # Errors
    /// Not a listener, the name is taken, or the OS refused.
    pub async fn accept(&self, name: &str, conn: Option<&str>) -> Result<SocketInfo> {
        let e = self.get(name)?;
        if e.is_udp() {
            return Err(NetError::state(name, NO_CONNECTIONS));
        }
        if matches!(&*lock(&e.kind), Kind::UnixDgram(_)) {
            return Err(NetError::state(name, super::unix::NO_UNIX_CONNECTIONS));
        }
        let Some(l) = e.listener() else {
            return Err(NetError::state(
                name,
                "is not listening (listen on it first)",
            ));
        };
        match &l.service {
            Service::Manual => {}
            Service::Events(_) => {
                if conn.is_some() {
                    return Err(NetError::state(
                        name,
                        format!("names its clients itself ({name}.1, {name}.2, …); drop the `as`"),
                    ));
                }
                // The next client still open: one closed before anyone
                // accepted it is skipped (each claim takes a client for
                // good, so this ends).
                loop {
                    let child = l
                        .claim()
                        .await
                        .ok_or_else(|| NetError::state(name, "is closed"))?;
                    if let Ok(info) = self.info(&child) {
                        return Ok(info);
                    }
                }
            }
            Service::Files(_)
            | Service::Exec(_)
            | Service::Relay(_)
            | Service::Chat(_)
            | Service::Bench(_) => {
                return Err(NetError::state(
                    name,
                    "serves each client itself (its clients are reported as events); accept does not apply",
                ))
            }
        }
        let conn_name = self.claim_name(conn)?;
        let kind = match l.accept_one().await? {
            Accepted::Tcp(stream) => {
                Kind::Conn(Arc::new(Conn::new(conn_name.clone(), stream, None, false)?))
            }
            Accepted::Unix(stream) => Kind::Unix(Arc::new(UnixConn::new(
                conn_name.clone(),
                stream,
                None,
                false,
            ))),
        };
        Ok(self.add(conn_name, kind)?.info())
    }

    /// `connect()` a fresh socket; the connection is read manually.
    ///
    /// # Errors
    /// Not a fresh socket, wrong family, refused, or timed out.
    pub async fn connect(
        &self,
        name: &str,
        to: SocketAddr,
        timeout: Option<Duration>,
    ) -> Result<SocketInfo> {
        let e = self.get(name)?;
        netns::guard(e.place.as_deref(), to.ip())?;
        if let Ok(u) = e.udp() {
            // UDP: fixes the peer (send/recv then need no address, and
            // datagrams from anyone else are dropped). No packet is sent.
            check_family(name, u.family, to)?;
            u.sockref()
                .connect(&to.into())
                .map_err(NetError::os("connect"))?;
            return Ok(e.info());
        }
        if let Some(family) = e.info().family {
            check_family(name, family, to)?;
        }
        let fresh = {
            let mut kind = lock(&e.kind);
            match std::mem::replace(&mut *kind, Kind::Busy) {
                Kind::Fresh(f) => f,
                other => {
                    let why = match &other {
                        Kind::Program(_) => NOT_A_SOCKET,
                        Kind::UnixFresh(_) | Kind::UnixDgram(_) => super::unix::NOT_IP,
                        _ => "is already listening or connected",
                    };
                    *kind = other;
                    return Err(NetError::state(name, why));
                }
            }
        };
        let family = fresh.family;
        let stream = match connect_socket(fresh.socket, to, timeout).await {
            Ok(s) => s,
            Err((err, sock)) => {
                // The socket stays, unconnected, as a real one would.
                if let Some(socket) = sock {
                    *lock(&e.kind) = Kind::Fresh(Fresh { socket, family });
                }
                return Err(err);
            }
        };
        let outside = !self.lab_tubes_at(e.place.as_deref(), to);
        let c = Arc::new(Conn::new(e.name.clone(), stream, None, outside)?);
        let (local, peer) = (c.local, c.peer);
        *lock(&e.kind) = Kind::Conn(c);
        self.index(&e);
        self.settle_accept(e.place.as_deref(), local, peer).await?;
        Ok(e.info())
    }

    /// After a connect from `local` to `peer`: when `peer` is a listener of
    /// this lab that accepts by itself, waits until it has reported the
    /// accept (an iterative server that is busy queues the client instead).
    pub(super) async fn settle_accept(
        &self,
        from: Option<&Place>,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Result<()> {
        let listener = self
            .listeners()
            .into_iter()
            .find(|l| l.accepts().is_some() && l.listens_at(from, peer));
        let Some(l) = listener else {
            return Ok(());
        };
        let Some(accepts) = l.accepts() else {
            return Ok(());
        };
        if accepts.serving().is_some_and(|s| s != local) {
            // An iterative server serving someone else: this client waits
            // in the backlog, handshake done, not accepted.
            accepts.queue();
            return Ok(());
        }
        let what = || format!("waiting for the listener on {peer} to accept");
        wait_until(what, SETTLE_LIMIT, accepts.watch(), |_| {
            accepts.has_announced(local)
        })
        .await
        .map(|_| ())
    }
}
