//! The TCP kind of tube: a connection, and what only TCP has (addresses,
//! the kernel's state, the goodbye the kernel finishes after a close).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use socket2::{SockRef, Socket};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::error::{NetError, Result};
use crate::model::{Family, TlsFacts};
use crate::settle::{lock, KERNEL_SETTLE};
use crate::sys;
use crate::tcp::{self, TableRow, TcpState};
use crate::tube::{Tube, Wire};
pub(crate) use crate::wire::TcpWire;

/// How many reported accepts a server remembers by client address.
const ANNOUNCED_MEMORY: usize = 4096;

/// Who a server's client is, to settle on: a TCP client's address, or a
/// UNIX client's socket inode (a UNIX client is usually unnamed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    /// A TCP client, by address.
    Ip(SocketAddr),
    /// A UNIX client, by the inode of its socket.
    Unix(u64),
}

impl From<SocketAddr> for Client {
    fn from(a: SocketAddr) -> Client {
        Client::Ip(a)
    }
}

impl PartialEq<SocketAddr> for Client {
    fn eq(&self, other: &SocketAddr) -> bool {
        *self == Client::Ip(*other)
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Client::Ip(a) => write!(f, "{a}"),
            Client::Unix(ino) => write!(f, "UNIX socket {ino}"),
        }
    }
}

/// What a self-accepting server has reported of its accepts, for the lab's
/// clients to settle on, and what a connection it accepted knows of it:
/// the lab's clients waiting in its backlog (an iterative server takes the
/// next one when this one closes).
pub(crate) struct Accepts {
    /// Accepts reported so far.
    announced: AtomicU64,
    /// The clients of the latest accepts reported, newest last.
    recent: Mutex<VecDeque<Client>>,
    /// Clients of this lab that connected while the server was busy.
    queued: AtomicU64,
    /// An iterative server's client being served (the next waits in the
    /// backlog until it is done).
    serving: Mutex<Option<Client>>,
    /// Bumped with every report, so waiters can settle on it.
    changed: watch::Sender<u64>,
}

impl Default for Accepts {
    fn default() -> Accepts {
        Accepts {
            announced: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
            queued: AtomicU64::new(0),
            serving: Mutex::new(None),
            changed: watch::Sender::new(0),
        }
    }
}

impl Accepts {
    /// Records one more reported accept, of `client` (call after the
    /// accept event was sent).
    pub(crate) fn announce(&self, client: impl Into<Client>) {
        let client = client.into();
        {
            let mut recent = lock(&self.recent);
            recent.push_back(client);
            if recent.len() > ANNOUNCED_MEMORY {
                recent.pop_front();
            }
        }
        self.announced.fetch_add(1, Ordering::SeqCst);
        self.changed.send_modify(|g| *g += 1);
    }

    /// Records that `client` was let go without an accept (its TLS
    /// handshake failed, and that was reported): a lab client that waits
    /// for its accept settles on this.
    pub(crate) fn refuse(&self, client: impl Into<Client>) {
        let client = client.into();
        {
            let mut recent = lock(&self.recent);
            recent.push_back(client);
            if recent.len() > ANNOUNCED_MEMORY {
                recent.pop_front();
            }
        }
        self.changed.send_modify(|g| *g += 1);
    }

    /// Accepts reported so far.
    pub(crate) fn announced(&self) -> u64 {
        self.announced.load(Ordering::SeqCst)
    }

    /// Whether the accept of `client` was reported.
    pub(crate) fn has_announced(&self, client: impl Into<Client>) -> bool {
        lock(&self.recent).contains(&client.into())
    }

    /// A receiver that changes with every report.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// An iterative server serves `client` now (set before its accept is
    /// reported, so a client that connects next knows it must wait).
    pub(crate) fn serve(&self, client: impl Into<Client>) {
        *lock(&self.serving) = Some(client.into());
    }

    /// The client an iterative server serves now.
    pub(crate) fn serving(&self) -> Option<Client> {
        *lock(&self.serving)
    }

    /// The server is done with `client` (its connection closed or was
    /// taken): the next client may be served.
    pub(crate) fn done_with(&self, client: impl Into<Client>) {
        let client = client.into();
        let mut serving = lock(&self.serving);
        if *serving == Some(client) {
            *serving = None;
        }
    }

    /// A client of the lab waits in the backlog.
    pub(crate) fn queue(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes one queued client off the count; `false` when none waits.
    pub(crate) fn dequeue(&self) -> bool {
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| q.checked_sub(1))
            .is_ok()
    }
}

/// A TCP connection of the lab: a tube, its addresses, and the server
/// that accepted it, if one of the lab's did.
pub(crate) struct Conn {
    /// The byte stream.
    pub(crate) tube: Arc<Tube>,
    /// The same stream, as TCP.
    wire: Arc<TcpWire>,
    /// Local address.
    pub(crate) local: SocketAddr,
    /// Peer address.
    pub(crate) peer: SocketAddr,
    /// The accepting server's record, for a connection a self-accepting
    /// listener of the lab accepted.
    pub(crate) parent: Option<Arc<Accepts>>,
    /// What its TLS handshake agreed, once the stream carries TLS (from
    /// the start, or after `starttls`; never back).
    tls: OnceLock<Arc<TlsFacts>>,
}

impl Conn {
    /// A connection named `name` over `stream`; `outside` when its peer
    /// is no socket of this lab.
    ///
    /// # Errors
    /// The OS cannot say the connection's addresses (it failed already).
    pub(crate) fn new(
        name: Arc<str>,
        stream: TcpStream,
        parent: Option<Arc<Accepts>>,
        outside: bool,
    ) -> Result<Conn> {
        let local = stream.local_addr().map_err(NetError::os("getsockname"))?;
        let peer = stream.peer_addr().map_err(NetError::os("getpeername"))?;
        let wire = Arc::new(TcpWire::new(stream));
        Ok(Conn {
            tube: Arc::new(Tube::new(name, wire.clone(), outside)),
            wire,
            local,
            peer,
            parent,
            tls: OnceLock::new(),
        })
    }

    /// From now on the stream moves its bytes through the wire `wire`
    /// makes over the TCP stream (a TLS session whose handshake is done),
    /// and `facts` say what that handshake agreed. The caller stopped the
    /// tube's reader first.
    ///
    /// # Errors
    /// It carries TLS already.
    pub(crate) fn upgrade(
        &self,
        wire: impl FnOnce(Arc<TcpWire>) -> Arc<dyn Wire>,
        facts: TlsFacts,
    ) -> Result<()> {
        self.tls
            .set(Arc::new(facts))
            .map_err(|_| NetError::state(&self.tube.name, "carries TLS already"))?;
        self.tube.rewire(wire(self.wire.clone()));
        Ok(())
    }

    /// What its TLS handshake agreed, when it carries TLS.
    pub(crate) fn tls(&self) -> Option<Arc<TlsFacts>> {
        self.tls.get().cloned()
    }

    /// The address family.
    pub(crate) fn family(&self) -> Family {
        Family::of(&self.local)
    }

    /// The stream, unless closed.
    ///
    /// # Errors
    /// It is closed.
    pub(crate) fn stream(&self) -> Result<Arc<TcpStream>> {
        self.wire
            .stream()
            .ok_or_else(|| NetError::state(&self.tube.name, "is closed"))
    }

    /// The descriptor, or -1 once closed.
    pub(crate) fn fd(&self) -> RawFd {
        self.wire.stream().map_or(-1, |s| s.as_raw_fd())
    }

    /// The kernel's state of the connection.
    pub(crate) fn kernel_state(&self) -> Option<TcpState> {
        let s = self.wire.stream()?;
        tcp::state_of(s.as_raw_fd()).ok()
    }

    /// Bytes handed to the network so far: written, less what is still in
    /// the send queue unsent (SIOCOUTQNSD).
    pub(crate) fn handed(&self) -> u64 {
        let unsent = self
            .wire
            .stream()
            .and_then(|s| sys::notsent(s.as_raw_fd()).ok())
            .unwrap_or(0) as u64;
        self.tube.bytes_out().saturating_sub(unsent)
    }

    /// Before a manual read: waits until the stream is readable and at
    /// least `want()` bytes (what a lab peer has sent so far, capped by the
    /// read's size) have arrived, so what one read returns does not depend
    /// on timing. A reset or end of stream ends the wait at once.
    ///
    /// # Errors
    /// The connection is closed or the OS refused.
    pub(crate) async fn await_arrival(&self, want: impl Fn() -> usize) -> Result<()> {
        let stream = self.stream()?;
        let fd = stream.as_raw_fd();
        loop {
            stream.readable().await.map_err(NetError::os("recv"))?;
            let want = want();
            let avail = sys::inq(fd).unwrap_or(0);
            // A reset shows as the kernel's CLOSED state; reading the pending
            // error (SO_ERROR) here would clear it, and the read would then
            // see a clean end of stream instead of the reset.
            let over = !matches!(
                tcp::state_of(fd),
                Ok(TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2)
            );
            if avail >= want.max(1) || want == 0 || over {
                return Ok(());
            }
            // More is on its way: clear readiness, wait for the next arrival.
            let _ = stream.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
    }

    /// Whether this connection ended, or will end when closed now, with a
    /// reset rather than a FIN: it was reset by its peer, it has data it
    /// never read (the kernel answers a close with RST then), or SO_LINGER
    /// is 0 (an abortive close).
    pub(crate) fn ends_in_reset(&self) -> bool {
        if self.tube.progress().reset {
            return true;
        }
        let Some(stream) = self.wire.stream() else {
            return false;
        };
        let unread = sys::inq(stream.as_raw_fd()).unwrap_or(0) > 0;
        let abortive = SockRef::from(&*stream)
            .linger()
            .is_ok_and(|l| l.is_some_and(|d| d.is_zero()));
        unread || abortive
    }

    /// After our FIN: waits until the peer's kernel acknowledged it (we
    /// leave FIN_WAIT_1, CLOSING or LAST_ACK), so what `sockets` shows does
    /// not depend on a delayed ACK. Best effort.
    pub(crate) async fn settle_fin(&self) {
        let Some(stream) = self.wire.stream() else {
            return;
        };
        let _ = tcp::wait_info(
            stream.as_raw_fd(),
            "our FIN acknowledged",
            KERNEL_SETTLE,
            |i| {
                !matches!(
                    i.state,
                    TcpState::FinWait1 | TcpState::Closing | TcpState::LastAck
                )
            },
        )
        .await;
    }

    /// A reference for socket options and `TCP_INFO`.
    pub(crate) fn with_sockref<T>(&self, f: impl FnOnce(SockRef<'_>) -> T) -> Result<T> {
        let s = self.stream()?;
        Ok(f(SockRef::from(&*s)))
    }

    /// Takes the stream out, for a transfer to own.
    ///
    /// # Errors
    /// Something else still holds the stream.
    pub(crate) fn into_stream(self) -> Result<TcpStream> {
        let arc = self
            .wire
            .take()
            .ok_or_else(|| NetError::state(&self.tube.name, "is closed"))?;
        Arc::try_unwrap(arc).map_err(|_| NetError::state(&self.tube.name, "is in use"))
    }
}

/// After closing a connection that was in `before`: waits until the
/// kernel's socket table shows where the goodbye leads, so a `sockets` that
/// follows does not depend on timing. The first to close waits for its FIN
/// to be acknowledged (FIN_WAIT_2, or TIME_WAIT if the peer closed too);
/// the second to close waits for its own row to go (LAST_ACK ends with the
/// peer's ACK) and, when the peer's side is on this machine, for that side
/// to reach TIME_WAIT. Best effort: a timeout changes nothing but the wait.
pub(crate) async fn settle_close(before: TcpState, local: SocketAddr, remote: SocketAddr) {
    let ours = |r: &TableRow| r.local == local && r.remote == remote;
    let theirs = |r: &TableRow| r.local == remote && r.remote == local;
    let _ = match before {
        TcpState::Established => {
            tcp::wait_table("our FIN acknowledged", KERNEL_SETTLE, |rows| {
                rows.iter()
                    .filter(|r| ours(r))
                    .all(|r| matches!(r.state, TcpState::FinWait2 | TcpState::TimeWait))
            })
            .await
        }
        TcpState::CloseWait => {
            tcp::wait_table("the goodbye finished", KERNEL_SETTLE, |rows| {
                !rows.iter().any(ours)
                    && rows
                        .iter()
                        .filter(|r| theirs(r))
                        .all(|r| r.state == TcpState::TimeWait)
            })
            .await
        }
        _ => return,
    };
}

/// Connects a socket2 socket without blocking a thread: non-blocking
/// connect, then wait for writability. On failure the socket comes back
/// (when it still exists) so the caller can keep it.
pub(crate) async fn connect_socket(
    sock: Socket,
    to: SocketAddr,
    timeout: Option<Duration>,
) -> std::result::Result<TcpStream, (NetError, Option<Socket>)> {
    if let Err(e) = sock.set_nonblocking(true) {
        return Err((NetError::os("connect")(e), Some(sock)));
    }
    // A pcap log keeps the segments of the port connected to from the SYN
    // on (the local port is known only after the connect).
    crate::tap::track_ports(&[to.port()]);
    match sock.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err((NetError::os("connect")(e), Some(sock))),
    }
    let stream =
        TcpStream::from_std(sock.into()).map_err(|e| (NetError::os("connect")(e), None))?;
    let wait = async {
        stream.writable().await?;
        if let Some(err) = stream.take_error()? {
            return Err(err);
        }
        // Writable without an error means connected; peer_addr proves it.
        stream.peer_addr().map(|_| ())
    };
    let outcome = match timeout {
        Some(t) => match tokio::time::timeout(t, wait).await {
            Ok(r) => r.map_err(NetError::os("connect")),
            Err(_) => Err(NetError::Timeout {
                what: format!("connect to {to}"),
                after: t,
            }),
        },
        None => wait.await.map_err(NetError::os("connect")),
    };
    match outcome {
        Ok(()) => Ok(stream),
        Err(err) => Err((err, stream.into_std().ok().map(Socket::from))),
    }
}
