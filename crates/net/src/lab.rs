//! The lab: every named socket of one session, and what can be done to them.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use socket2::{Domain, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{NetError, Result};
use crate::event::Event;
use crate::options::{OptValue, SockOpt};
use crate::serve::ServeMode;
use crate::sys;

/// How much one background read takes at most.
const READ_CHUNK: usize = 16 * 1024;
/// How many bytes of not-yet-expected data a watched socket keeps (the
/// oldest are dropped beyond this).
const INBOX_MAX: usize = 1024 * 1024;
/// How many closed connections the lab remembers, to settle reads of data
/// they sent before closing.
const DEPARTED_MAX: usize = 4096;
/// The most clients a `mode thread` server reads at once (a thread each).
pub const MAX_THREAD_CLIENTS: usize = 512;
/// What all watched sockets together keep of data no `expect` consumed;
/// past it, a socket that receives keeps only its last [`INBOX_FLOOR`]
/// bytes, so a flood of connections cannot grow memory without bound.
const INBOX_BUDGET: usize = 64 * 1024 * 1024;
/// What a socket keeps when the budget is spent.
const INBOX_FLOOR: usize = 4 * 1024;
/// Bytes held in all inboxes.
static INBOX_TOTAL: AtomicUsize = AtomicUsize::new(0);

/// Why listen and accept do not apply to UDP.
const NO_CONNECTIONS: &str =
    "is a UDP socket: UDP has no connections to listen for or accept; datagrams just arrive (recvfrom)";
/// The longest a settlement waits for another socket of the lab to report.
/// Reaching it means something is stuck, and is reported as an error.
pub(crate) const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// AF_INET.
    V4,
    /// AF_INET6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// `AF_INET` or `AF_INET6`.
    pub fn c_name(self) -> &'static str {
        match self {
            Family::V4 => "AF_INET",
            Family::V6 => "AF_INET6",
        }
    }

    /// `IPv4` or `IPv6`.
    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    pub(crate) fn domain(self) -> Domain {
        match self {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        }
    }

    /// The unspecified address of the family, port 0 (what an unbound socket
    /// reports as its local address).
    pub fn unspecified(self) -> SocketAddr {
        match self {
            Family::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            Family::V6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        }
    }
}

/// What a socket is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A TCP socket made by `socket`, not yet listening or connected.
    Fresh,
    /// Listening for connections.
    Listener,
    /// A TCP connection.
    Stream,
    /// A UDP socket (bound or not, connected or not).
    Datagram,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP: a connection, a byte stream.
    Tcp,
    /// UDP: no connection, datagrams.
    Udp,
}

/// Who reads a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A background task reads (or accepts) and reports events.
    Watched,
    /// Reads (or accepts) happen only when a command asks.
    Manual,
}

/// A snapshot of one socket, for display.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// The socket's name in the lab.
    pub name: String,
    /// The file descriptor.
    pub fd: RawFd,
    /// Address family.
    pub family: Family,
    /// Fresh, listener or connection.
    pub role: Role,
    /// Who reads it.
    pub mode: Mode,
    /// Local address (`None` when the OS cannot say).
    pub local: Option<SocketAddr>,
    /// Peer address of a connection.
    pub peer: Option<SocketAddr>,
    /// The state in words: `created`, `bound`, `listening`, `connected`,
    /// `peer closed`, `write shut`, `failed`.
    pub state: String,
    /// Bytes read from the socket.
    pub bytes_in: u64,
    /// Bytes written to the socket.
    pub bytes_out: u64,
    /// Connections accepted (listeners).
    pub accepted: u64,
    /// Datagrams received (UDP).
    pub datagrams_in: u64,
    /// Datagrams sent (UDP).
    pub datagrams_out: u64,
    /// The kernel's TCP state (TCP_INFO), for TCP sockets.
    pub tcp_state: Option<crate::tcp::TcpState>,
}

/// What one read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// These bytes.
    Data(Bytes),
    /// Zero bytes: the peer closed its sending side.
    Eof,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    /// Bytes read from the socket so far (by the background reader or by
    /// commands).
    bytes_in: u64,
    /// The background reader is running.
    pub(crate) watched: bool,
    /// End of stream was read.
    pub(crate) eof: bool,
    /// `close` closed it.
    pub(crate) closed: bool,
    /// The connection failed.
    pub(crate) failed: bool,
    /// Datagrams received (UDP).
    pub(crate) datagrams: u64,
}

pub(crate) enum State {
    Fresh(Socket),
    Udp(Arc<UdpSocket>),
    Listener(Arc<TcpListener>),
    Stream(Arc<TcpStream>),
    Closed,
}

pub(crate) struct Background {
    pub(crate) cancel: CancellationToken,
    pub(crate) task: JoinHandle<()>,
    /// Written to wake a reader thread blocked in poll (thread mode).
    pub(crate) wake: Option<std::os::fd::OwnedFd>,
}

pub(crate) struct Entry {
    pub(crate) id: u64,
    /// Where the socket stands in listings: (id, 0), or for a connection a
    /// watched listener accepted, (the listener's id, accept number), so
    /// the order never depends on which of two concurrent tasks ran first.
    order: Mutex<(u64, u64)>,
    pub(crate) name: Arc<str>,
    pub(crate) family: Family,
    pub(crate) state: Mutex<State>,
    pub(crate) mode: Mutex<Mode>,
    pub(crate) progress: watch::Sender<Progress>,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) accepted: AtomicU64,
    /// Datagrams sent (UDP).
    pub(crate) datagrams_out: AtomicU64,
    /// Accepted connections whose accept has been reported (listeners).
    announced: AtomicU64,
    /// Accepted connections handed to `accept` callers (watched listeners).
    claimed: AtomicU64,
    /// An iterative server is serving a client (the next waits).
    busy: std::sync::atomic::AtomicBool,
    /// The client an iterative server is serving (set before `busy`).
    serving: Mutex<Option<SocketAddr>>,
    /// Clients of this lab that connected while the server was busy, and
    /// wait in its backlog.
    queued: AtomicU64,
    /// The server that accepted this connection, if one did.
    parent: Mutex<Option<Arc<Entry>>>,
    /// How incoming bytes are cut into messages (watched connections).
    pub(crate) framing: Mutex<socklab_frame::Framing>,
    /// Bytes of a message not yet complete.
    pub(crate) framebuf: Mutex<BytesMut>,
    /// A file server (`serve files`, `serve raw`).
    pub(crate) file_server: Mutex<bool>,
    /// A file server's clients whose transfer has been reported.
    pub(crate) served: Mutex<Vec<SocketAddr>>,
    write_shut: Mutex<bool>,
    read_shut: Mutex<bool>,
    /// Data a watched socket received that `expect` has not consumed yet.
    pub(crate) inbox: Mutex<BytesMut>,
    pub(crate) background: Mutex<Option<Background>>,
    /// Addresses of a connection: (local, peer), known once connected.
    pub(crate) addrs: Mutex<Option<(SocketAddr, SocketAddr)>>,
}

/// Whether a socket bound at `local` receives what is sent to `to`: the
/// same port and family, and the same address or the unspecified one.
pub(crate) fn reaches(local: SocketAddr, to: SocketAddr) -> bool {
    local.port() == to.port()
        && Family::of(&local) == Family::of(&to)
        && (local.ip() == to.ip() || local.ip().is_unspecified())
}

impl Entry {
    /// This socket is a listener bound where `to` reaches.
    pub(crate) fn listens_at(&self, to: SocketAddr) -> bool {
        matches!(&*lock(&self.state), State::Listener(l) if l.local_addr().is_ok_and(|a| reaches(a, to)))
    }
}

/// After an accept failed: reports it, waits `backoff` (cancellable), and
/// doubles it up to a second. `false` when cancelled meanwhile.
pub(crate) async fn accept_backoff(
    events: &mpsc::Sender<Event>,
    listener: &Arc<str>,
    error: io::Error,
    backoff: &mut Duration,
    cancel: &CancellationToken,
) -> bool {
    let _ = events
        .send(Event::AcceptFailed {
            listener: listener.clone(),
            error,
            retry_in: *backoff,
        })
        .await;
    tokio::select! {
        _ = cancel.cancelled() => return false,
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(1));
    true
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere; the data is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Entry {
    fn new(id: u64, name: Arc<str>, family: Family, state: State, mode: Mode) -> Arc<Entry> {
        Arc::new(Entry {
            id,
            order: Mutex::new((id, 0)),
            name,
            family,
            state: Mutex::new(state),
            mode: Mutex::new(mode),
            progress: watch::Sender::new(Progress::default()),
            bytes_out: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            datagrams_out: AtomicU64::new(0),
            announced: AtomicU64::new(0),
            claimed: AtomicU64::new(0),
            busy: std::sync::atomic::AtomicBool::new(false),
            serving: Mutex::new(None),
            queued: AtomicU64::new(0),
            parent: Mutex::new(None),
            framing: Mutex::new(socklab_frame::Framing::Raw),
            framebuf: Mutex::new(BytesMut::new()),
            file_server: Mutex::new(false),
            served: Mutex::new(Vec::new()),
            write_shut: Mutex::new(false),
            read_shut: Mutex::new(false),
            inbox: Mutex::new(BytesMut::new()),
            background: Mutex::new(None),
            addrs: Mutex::new(None),
        })
    }

    pub(crate) fn stream(&self) -> Result<Arc<TcpStream>> {
        match &*lock(&self.state) {
            State::Stream(s) => Ok(s.clone()),
            State::Fresh(_) => Err(NetError::state(
                &self.name,
                "is not connected (connect it first)",
            )),
            State::Listener(_) => Err(NetError::state(
                &self.name,
                "is a listener; it accepts connections but carries no data",
            )),
            State::Udp(_) => Err(NetError::state(
                &self.name,
                "is a UDP socket: use sendto/recvfrom (or send/recv after connect)",
            )),
            State::Closed => Err(NetError::state(&self.name, "is closed")),
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        *lock(&self.mode)
    }

    fn with_sockref<T>(
        &self,
        f: impl FnOnce(SockRef<'_>) -> io::Result<T>,
    ) -> Result<io::Result<T>> {
        match &*lock(&self.state) {
            State::Fresh(s) => Ok(f(SockRef::from(s))),
            State::Listener(l) => Ok(f(SockRef::from(&**l))),
            State::Stream(s) => Ok(f(SockRef::from(&**s))),
            State::Udp(u) => Ok(f(SockRef::from(&**u))),
            State::Closed => Err(NetError::state(&self.name, "is closed")),
        }
    }

    pub(crate) fn info(&self) -> SocketInfo {
        let p = self.progress.borrow().clone();
        let (role, fd, local, peer, mut state) = match &*lock(&self.state) {
            State::Fresh(s) => {
                let local = s.local_addr().ok().and_then(|a| a.as_socket());
                let bound = local.is_some_and(|a| a.port() != 0 || !a.ip().is_unspecified());
                let state = if bound { "bound" } else { "created" };
                (Role::Fresh, s.as_raw_fd(), local, None, state.to_string())
            }
            State::Listener(l) => (
                Role::Listener,
                l.as_raw_fd(),
                l.local_addr().ok(),
                None,
                "listening".to_string(),
            ),
            State::Stream(s) => (
                Role::Stream,
                s.as_raw_fd(),
                s.local_addr().ok(),
                s.peer_addr().ok(),
                "connected".to_string(),
            ),
            State::Udp(u) => {
                let local = u.local_addr().ok();
                let peer = u.peer_addr().ok();
                let bound = local.is_some_and(|a| a.port() != 0);
                let state = match (peer.is_some(), bound) {
                    (true, _) => "connected",
                    (false, true) => "bound",
                    (false, false) => "created",
                };
                (
                    Role::Datagram,
                    u.as_raw_fd(),
                    local,
                    peer,
                    state.to_string(),
                )
            }
            State::Closed => (Role::Stream, -1, None, None, "closed".to_string()),
        };
        let (local, peer) = match (role, *lock(&self.addrs)) {
            // A failed connection may no longer know its addresses.
            (Role::Stream, Some((l, p))) => (local.or(Some(l)), peer.or(Some(p))),
            _ => (local, peer),
        };
        if role == Role::Stream {
            let mut parts = Vec::new();
            if p.failed {
                parts.push("failed");
            } else if p.eof {
                parts.push("peer closed");
            }
            if *lock(&self.write_shut) {
                parts.push("write shut");
            }
            if *lock(&self.read_shut) {
                parts.push("read shut");
            }
            if !parts.is_empty() {
                state = parts.join(", ");
            }
        }
        SocketInfo {
            name: self.name.to_string(),
            fd,
            family: self.family,
            role,
            mode: self.mode(),
            local,
            peer,
            state,
            bytes_in: p.bytes_in,
            bytes_out: self.bytes_out.load(Ordering::SeqCst),
            accepted: self.accepted.load(Ordering::SeqCst),
            datagrams_in: p.datagrams,
            datagrams_out: self.datagrams_out.load(Ordering::SeqCst),
            tcp_state: if role == Role::Datagram || fd < 0 {
                None
            } else {
                crate::tcp::state_of(fd).ok()
            },
        }
    }

    /// Stops the background task, if any, and waits until it has ended.
    pub(crate) async fn stop_background(&self) {
        let bg = lock(&self.background).take();
        if let Some(bg) = bg {
            bg.cancel.cancel();
            if let Some(w) = &bg.wake {
                // SAFETY: writes one byte from a valid buffer to our pipe.
                unsafe {
                    libc::write(std::os::fd::AsRawFd::as_raw_fd(w), [1u8].as_ptr().cast(), 1)
                };
            }
            let _ = bg.task.await;
        }
    }

    /// A background reader gives up: the socket is read on request from
    /// now on, and its last `n` bytes count as read (published together).
    pub(crate) fn stop_reading(&self, n: usize) {
        *lock(&self.mode) = Mode::Manual;
        self.progress.send_modify(|p| {
            p.bytes_in += n as u64;
            p.watched = false;
        });
    }

    /// Starts a background reader (`make` gets its cancellation token):
    /// from now on the socket is watched.
    pub(crate) fn watch_with<F>(&self, make: impl FnOnce(CancellationToken) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        *lock(&self.mode) = Mode::Watched;
        self.progress.send_modify(|p| p.watched = true);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(make(cancel.clone()));
        *lock(&self.background) = Some(Background {
            cancel,
            task,
            wake: None,
        });
    }

    pub(crate) fn add_in(&self, n: usize) {
        self.progress.send_modify(|p| p.bytes_in += n as u64);
    }
}

/// A connection this lab closed: enough to settle reads of what it sent
/// and to name it in the kernel's TIME_WAIT rows.
#[derive(Clone)]
struct Departed {
    local: SocketAddr,
    peer: SocketAddr,
    bytes_out: u64,
    name: Arc<str>,
}

pub(crate) struct Inner {
    pub(crate) sockets: Mutex<BTreeMap<Arc<str>, Arc<Entry>>>,
    next_id: AtomicU64,
    next_auto: AtomicU64,
    pub(crate) events: mpsc::Sender<Event>,
    /// Bumped after a socket is added to the lab (and its events sent).
    pub(crate) generation: watch::Sender<u64>,
    /// Closed connections, newest last.
    departed: Mutex<VecDeque<Departed>>,
    /// `trace`, when on.
    pub(crate) tracer: Mutex<Option<Arc<crate::trace::Tracer>>>,
    /// The local address each closed socket had, by name (the latest).
    closed_addrs: Mutex<std::collections::HashMap<Arc<str>, SocketAddr>>,
}

/// Every socket of one session, by name. Cheap to clone (shared).
#[derive(Clone)]
pub struct Lab {
    pub(crate) inner: Arc<Inner>,
}

impl Lab {
    /// A new, empty lab whose background events arrive on the returned
    /// receiver. The channel holds `capacity` events; when it is full,
    /// background readers wait (and TCP flow control slows their peers), so
    /// memory stays bounded however fast a peer sends.
    pub fn new(capacity: usize) -> (Lab, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let lab = Lab {
            inner: Arc::new(Inner {
                sockets: Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(1),
                next_auto: AtomicU64::new(1),
                events: tx,
                generation: watch::Sender::new(0),
                departed: Mutex::new(VecDeque::new()),
                tracer: Mutex::new(None),
                closed_addrs: Mutex::new(std::collections::HashMap::new()),
            }),
        };
        (lab, rx)
    }

    // ----- names -------------------------------------------------------

    pub(crate) fn get(&self, name: &str) -> Result<Arc<Entry>> {
        lock(&self.inner.sockets)
            .get(name)
            .cloned()
            .ok_or_else(|| NetError::NoSuchSocket(name.to_string()))
    }

    /// Whether a socket of this name exists.
    pub fn exists(&self, name: &str) -> bool {
        lock(&self.inner.sockets).contains_key(name)
    }

    /// The names of every socket, in creation order.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<_> = lock(&self.inner.sockets)
            .values()
            .map(|e| (*lock(&e.order), e.name.to_string()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, n)| n).collect()
    }

    /// A snapshot of every socket, in creation order.
    pub fn list(&self) -> Vec<SocketInfo> {
        let mut v: Vec<_> = lock(&self.inner.sockets).values().cloned().collect();
        v.sort_by_key(|e| *lock(&e.order));
        v.iter().map(|e| self.annotate(e.info())).collect()
    }

    /// A snapshot of one socket.
    pub fn info(&self, name: &str) -> Result<SocketInfo> {
        Ok(self.annotate(self.get(name)?.info()))
    }

    /// A connection to a listener of this lab that nobody has accepted yet
    /// waits in that listener's accept queue: the handshake is done, but no
    /// program talks to it. Says so in its state.
    fn annotate(&self, mut info: SocketInfo) -> SocketInfo {
        let (Role::Stream, Some(local), Some(peer)) = (info.role, info.local, info.peer) else {
            return info;
        };
        if info.state != "connected" || self.find_stream(peer, local).is_some() {
            return info;
        }
        let sockets = lock(&self.inner.sockets);
        let listener = sockets.values().find(|l| l.listens_at(peer));
        if let Some(l) = listener {
            info.state = format!("connected, in {}'s accept queue", l.name);
        }
        info
    }

    /// Picks the name for a new socket: the one asked for (which must be
    /// free), or the next of `s1`, `s2`, ….
    pub(crate) fn claim_name(&self, wanted: Option<&str>) -> Result<Arc<str>> {
        let map = lock(&self.inner.sockets);
        match wanted {
            Some(n) if map.contains_key(n) => Err(NetError::NameTaken(n.to_string())),
            Some(n) => Ok(Arc::from(n)),
            None => loop {
                let n = format!("s{}", self.inner.next_auto.fetch_add(1, Ordering::SeqCst));
                if !map.contains_key(n.as_str()) {
                    return Ok(Arc::from(n));
                }
            },
        }
    }

    pub(crate) fn insert(&self, entry: Arc<Entry>) -> Result<()> {
        let mut map = lock(&self.inner.sockets);
        if map.contains_key(&entry.name) {
            return Err(NetError::NameTaken(entry.name.to_string()));
        }
        map.insert(entry.name.clone(), entry);
        Ok(())
    }

    pub(crate) fn bump(&self) {
        self.inner.generation.send_modify(|g| *g += 1);
    }

    pub(crate) fn new_entry(
        &self,
        name: Arc<str>,
        family: Family,
        state: State,
        mode: Mode,
    ) -> Arc<Entry> {
        let id = self.inner.next_id.fetch_add(1, Ordering::SeqCst);
        Entry::new(id, name, family, state, mode)
    }

    // ----- step by step ----------------------------------------------------

    /// `socket()`: a new TCP or UDP socket of `family`, not yet bound.
    ///
    /// # Errors
    /// The name is taken, or the OS refused (too many open files, …).
    pub fn socket(&self, proto: Proto, family: Family, name: Option<&str>) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let ty = match proto {
            Proto::Tcp => Type::STREAM,
            Proto::Udp => Type::DGRAM,
        };
        let sock = Socket::new(family.domain(), ty, None).map_err(NetError::os("socket"))?;
        sock.set_nonblocking(true).map_err(NetError::os("socket"))?;
        let state = match proto {
            Proto::Tcp => State::Fresh(sock),
            Proto::Udp => State::Udp(Arc::new(
                UdpSocket::from_std(sock.into()).map_err(NetError::os("socket"))?,
            )),
        };
        let e = self.new_entry(name, family, state, Mode::Manual);
        self.insert(e.clone())?;
        self.bump();
        Ok(e.info())
    }

    /// `setsockopt()`.
    ///
    /// # Errors
    /// No such socket, or the OS refused.
    pub fn set_opt(&self, name: &str, opt: SockOpt, value: OptValue) -> Result<()> {
        let e = self.get(name)?;
        let v6 = e.family == Family::V6;
        e.with_sockref(|s| opt.set(s, value, v6))?
            .map_err(NetError::os("setsockopt"))
    }

    /// `getsockopt()`.
    ///
    /// # Errors
    /// No such socket, or the OS refused.
    pub fn get_opt(&self, name: &str, opt: SockOpt) -> Result<OptValue> {
        let e = self.get(name)?;
        let v6 = e.family == Family::V6;
        e.with_sockref(|s| opt.get(s, v6))?
            .map_err(NetError::os("getsockopt"))
    }

    /// `bind()` a fresh socket.
    ///
    /// # Errors
    /// Not a fresh socket, wrong family, or the OS refused (address in use).
    pub fn bind(&self, name: &str, addr: SocketAddr) -> Result<SocketInfo> {
        let e = self.get(name)?;
        check_family(&e, addr)?;
        match &*lock(&e.state) {
            State::Fresh(s) => s.bind(&addr.into()).map_err(NetError::os("bind"))?,
            State::Udp(u) => SockRef::from(&**u)
                .bind(&addr.into())
                .map_err(NetError::os("bind"))?,
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
        if e.is_udp() {
            return Err(NetError::state(name, NO_CONNECTIONS));
        }
        let mut state = lock(&e.state);
        let sock = match std::mem::replace(&mut *state, State::Closed) {
            State::Fresh(s) => s,
            other => {
                *state = other;
                return Err(NetError::state(name, "is already listening or connected"));
            }
        };
        if let Err(err) = sock.listen(backlog) {
            *state = State::Fresh(sock);
            return Err(NetError::os("listen")(err));
        }
        let listener = TcpListener::from_std(sock.into()).map_err(NetError::os("listen"))?;
        *state = State::Listener(Arc::new(listener));
        drop(state);
        Ok(e.info())
    }

    /// `accept()` one connection from a listener's queue; the connection is
    /// read manually.
    ///
    /// On a watched listener (which accepts by itself) this waits until the
    /// next client not yet claimed by an `accept` has been accepted and
    /// reported, and returns it.
    ///
    /// # Errors
    /// Not a listener, the name is taken, or the OS refused.
    pub async fn accept(&self, name: &str, conn: Option<&str>) -> Result<SocketInfo> {
        let e = self.get(name)?;
        if e.is_udp() {
            return Err(NetError::state(name, NO_CONNECTIONS));
        }
        let listener = match &*lock(&e.state) {
            State::Listener(l) => l.clone(),
            _ => {
                return Err(NetError::state(
                    name,
                    "is not listening (listen on it first)",
                ))
            }
        };
        if e.mode() == Mode::Watched {
            if conn.is_some() {
                return Err(NetError::state(
                    name,
                    format!("names its clients itself ({name}.1, {name}.2, …); drop the `as`"),
                ));
            }
            return self.claim_accepted(&e).await;
        }
        let conn_name = self.claim_name(conn)?;
        let (stream, _) = listener.accept().await.map_err(NetError::os("accept"))?;
        e.accepted.fetch_add(1, Ordering::SeqCst);
        let c = self.stream_entry(conn_name, stream, Mode::Manual, None)?;
        self.bump();
        Ok(c.info())
    }

    async fn claim_accepted(&self, e: &Entry) -> Result<SocketInfo> {
        let mut rx = self.inner.generation.subscribe();
        loop {
            rx.borrow_and_update();
            let claimed = e.claimed.load(Ordering::SeqCst);
            if e.announced.load(Ordering::SeqCst) > claimed {
                e.claimed.store(claimed + 1, Ordering::SeqCst);
                let child = format!("{}.{}", e.name, claimed + 1);
                return self
                    .info(&child)
                    .map_err(|_| NetError::state(&child, "was accepted, and closed already"));
            }
            if rx.changed().await.is_err() {
                return Err(NetError::state(&e.name, "is closed"));
            }
        }
    }

    /// Adds a connection to the lab. `order` places it in listings (see
    /// [`Entry::order`]); `None` means creation order.
    fn stream_entry(
        &self,
        name: Arc<str>,
        stream: TcpStream,
        mode: Mode,
        order: Option<(u64, u64)>,
    ) -> Result<Arc<Entry>> {
        let e = self.detached_stream_entry(name, stream, mode, order)?;
        self.insert(e.clone())?;
        Ok(e)
    }

    /// A connection's entry, not yet in the lab (so nobody can find it
    /// before its accept has been reported).
    fn detached_stream_entry(
        &self,
        name: Arc<str>,
        stream: TcpStream,
        mode: Mode,
        order: Option<(u64, u64)>,
    ) -> Result<Arc<Entry>> {
        let local = stream.local_addr().map_err(NetError::os("getsockname"))?;
        let peer = stream.peer_addr().map_err(NetError::os("getpeername"))?;
        let e = self.new_entry(
            name,
            Family::of(&local),
            State::Stream(Arc::new(stream)),
            mode,
        );
        *lock(&e.addrs) = Some((local, peer));
        if let Some(order) = order {
            *lock(&e.order) = order;
        }
        Ok(e)
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
        if e.is_udp() {
            return self.udp_connect(&e, to);
        }
        check_family(&e, to)?;
        let sock = {
            let mut state = lock(&e.state);
            match std::mem::replace(&mut *state, State::Closed) {
                State::Fresh(s) => s,
                other => {
                    *state = other;
                    return Err(NetError::state(name, "is already listening or connected"));
                }
            }
        };
        let stream = match connect_socket(sock, to, timeout).await {
            Ok(s) => s,
            Err((err, sock)) => {
                // The socket stays, unconnected, as a real one would.
                if let Some(sock) = sock {
                    *lock(&e.state) = State::Fresh(sock);
                }
                return Err(err);
            }
        };
        let local = stream.local_addr().map_err(NetError::os("getsockname"))?;
        let peer = stream.peer_addr().map_err(NetError::os("getpeername"))?;
        *lock(&e.addrs) = Some((local, peer));
        *lock(&e.state) = State::Stream(Arc::new(stream));
        self.settle_accept(local, peer).await?;
        Ok(e.info())
    }

    // ----- practical ----------------------------------------------------

    /// socket + bind + listen, then accept every client in the background;
    /// clients are named `NAME.1`, `NAME.2`, …. SO_REUSEADDR is set, as
    /// servers do, so a restart does not wait for TIME_WAIT.
    ///
    /// # Errors
    /// The name is taken or the OS refused (address in use, …).
    pub fn serve(
        &self,
        addr: SocketAddr,
        backlog: i32,
        name: Option<&str>,
        how: ServeMode,
    ) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let (e, listener) = self.server_entry(name, addr, backlog)?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            self.clone(),
            e.clone(),
            listener,
            how,
            cancel.clone(),
        ));
        *lock(&e.background) = Some(Background {
            cancel,
            task,
            wake: None,
        });
        self.bump();
        Ok(e.info())
    }

    /// socket + SO_REUSEADDR + bind + listen, as servers do (so a restart
    /// does not wait for TIME_WAIT), added to the lab as a watched listener
    /// whose accept loop the caller starts.
    pub(crate) fn server_entry(
        &self,
        name: Arc<str>,
        addr: SocketAddr,
        backlog: i32,
    ) -> Result<(Arc<Entry>, Arc<TcpListener>)> {
        let family = Family::of(&addr);
        let sock =
            Socket::new(family.domain(), Type::STREAM, None).map_err(NetError::os("socket"))?;
        sock.set_nonblocking(true).map_err(NetError::os("socket"))?;
        sock.set_reuse_address(true)
            .map_err(NetError::os("setsockopt"))?;
        sock.bind(&addr.into()).map_err(NetError::os("bind"))?;
        sock.listen(backlog).map_err(NetError::os("listen"))?;
        let listener =
            Arc::new(TcpListener::from_std(sock.into()).map_err(NetError::os("listen"))?);
        let e = self.new_entry(
            name,
            family,
            State::Listener(listener.clone()),
            Mode::Watched,
        );
        self.insert(e.clone())?;
        Ok((e, listener))
    }

    /// Connects a new socket to `to`; its data arrives as events.
    ///
    /// # Errors
    /// The name is taken, refused, or timed out.
    pub async fn dial(
        &self,
        to: SocketAddr,
        name: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let sock = Socket::new(Family::of(&to).domain(), Type::STREAM, None)
            .map_err(NetError::os("socket"))?;
        let stream = connect_socket(sock, to, timeout)
            .await
            .map_err(|(e, _)| e)?;
        let e = self.stream_entry(name, stream, Mode::Manual, None)?;
        self.bump();
        let (local, peer) = lock(&e.addrs).unwrap_or((to, to));
        self.start_reader(&e)?;
        self.settle_accept(local, peer).await?;
        Ok(e.info())
    }

    /// Switches a connection between watched (background reads, events) and
    /// manual (reads on request).
    ///
    /// # Errors
    /// Not a connection.
    pub async fn set_watch(&self, name: &str, on: bool) -> Result<()> {
        let e = self.get(name)?;
        if e.is_udp() {
            if on && lock(&e.background).is_none() {
                self.start_udp_reader(&e)?;
            } else if !on {
                e.stop_background().await;
                *lock(&e.mode) = Mode::Manual;
            }
            return Ok(());
        }
        e.stream()?;
        if on {
            if lock(&e.background).is_none() && !e.progress.borrow().eof {
                self.start_reader(&e)?;
            }
        } else {
            e.stop_background().await;
            *lock(&e.mode) = Mode::Manual;
        }
        Ok(())
    }

    fn start_reader(&self, e: &Arc<Entry>) -> Result<()> {
        let stream = e.stream()?;
        let events = self.inner.events.clone();
        let entry = e.clone();
        e.watch_with(move |cancel| read_loop(entry, stream, events, cancel));
        Ok(())
    }

    /// The address a client of this lab would connect to, to reach the
    /// socket `name` (an unspecified address becomes loopback).
    ///
    /// # Errors
    /// No such socket, or it has no local address yet.
    pub fn connect_addr_of(&self, name: &str) -> Result<SocketAddr> {
        let info = self.info(name)?;
        let mut addr = match (info.role, info.local) {
            (Role::Listener, Some(a)) => a,
            (_, Some(a)) if a.port() != 0 => a,
            _ => return Err(NetError::state(name, "is not bound to a port yet")),
        };
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        Ok(addr)
    }

    // ----- data -----------------------------------------------------------

    /// `sendall()`: writes every byte of `data`, then, when the peer is a
    /// watched socket of this lab, waits until it has reported them.
    /// Returns the bytes written.
    ///
    /// # Errors
    /// Not a connection; the OS refused part way ([`NetError::PartialSend`]
    /// says how much went).
    pub async fn send(&self, name: &str, data: &[u8]) -> Result<usize> {
        let e = self.get(name)?;
        if e.is_udp() {
            return self.udp_send(&e, data).await;
        }
        let stream = e.stream()?;
        let mut sent = 0;
        while sent < data.len() {
            if let Err(err) = stream.writable().await {
                return Err(partial(name, sent, data.len(), err));
            }
            match stream.try_write(&data[sent..]) {
                Ok(n) => {
                    sent += n;
                    e.bytes_out.fetch_add(n as u64, Ordering::SeqCst);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(partial(name, sent, data.len(), err)),
            }
        }
        let total = e.bytes_out.load(Ordering::SeqCst);
        if let Some(peer) = self.lab_peer(&e) {
            settle(&peer, |p| p.bytes_in >= total).await?;
        }
        Ok(sent)
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
        let stream = e.stream()?;
        if e.mode() == Mode::Watched {
            return Err(NetError::state(
                name,
                "is read in the background (its data shows as events); use expect, or `watch NAME off` to read it yourself",
            ));
        }
        let max = max.max(1);
        let fd = stream.as_raw_fd();
        loop {
            stream.readable().await.map_err(NetError::os("recv"))?;
            let want = self.pending_from_peer(&e).min(max as u64) as usize;
            let avail = sys::inq(fd).unwrap_or(0);
            let error_pending = matches!(stream.take_error(), Ok(Some(_)));
            if avail < want.max(1) && want > 0 && !error_pending {
                // More is on its way; wait for the next arrival.
                let _ = stream.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
                continue;
            }
            let mut buf = vec![0u8; max];
            match stream.try_read(&mut buf) {
                Ok(0) => {
                    e.progress.send_modify(|p| p.eof = true);
                    return Ok(ReadOutcome::Eof);
                }
                Ok(n) => {
                    buf.truncate(n);
                    e.add_in(n);
                    return Ok(ReadOutcome::Data(Bytes::from(buf)));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => {
                    e.progress.send_modify(|p| p.failed = true);
                    return Err(NetError::os("recv")(err));
                }
            }
        }
    }

    /// Bytes the lab peer of `e` has handed to the network that `e` has not
    /// read yet (0 when the peer is not in this lab).
    fn pending_from_peer(&self, e: &Entry) -> u64 {
        let Some((local, peer)) = *lock(&e.addrs) else {
            return 0;
        };
        let read = e.progress.borrow().bytes_in;
        if let Some(p) = self.find_stream(peer, local) {
            let Ok(stream) = p.stream() else { return 0 };
            let unsent = sys::notsent(stream.as_raw_fd()).unwrap_or(0) as u64;
            let handed = p.bytes_out.load(Ordering::SeqCst).saturating_sub(unsent);
            return handed.saturating_sub(read);
        }
        let departed = lock(&self.inner.departed);
        departed
            .iter()
            .rev()
            .find(|d| d.local == peer && d.peer == local)
            .map_or(0, |d| d.bytes_out.saturating_sub(read))
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
        mut find: impl FnMut(&[u8]) -> Option<usize>,
    ) -> Result<Bytes> {
        let e = self.get(name)?;
        // A manual TCP connection is read here; UDP and watched sockets
        // need no stream.
        let stream = if e.is_udp() { None } else { Some(e.stream()?) };
        let mut rx = e.progress.subscribe();
        loop {
            {
                let mut inbox = lock(&e.inbox);
                if let Some(end) = find(&inbox) {
                    let end = end.min(inbox.len());
                    INBOX_TOTAL.fetch_sub(end, Ordering::SeqCst);
                    return Ok(inbox.split_to(end).freeze());
                }
            }
            if e.mode() == Mode::Watched {
                let p = rx.borrow_and_update().clone();
                if p.eof || p.failed {
                    return Err(NetError::state(
                        name,
                        "got end-of-stream (the peer closed) before the expected data came",
                    ));
                }
                if rx.changed().await.is_err() {
                    return Err(NetError::state(name, "is closed"));
                }
            } else if let Some(stream) = &stream {
                stream.readable().await.map_err(NetError::os("recv"))?;
                let mut buf = vec![0u8; READ_CHUNK];
                match stream.try_read(&mut buf) {
                    Ok(0) => {
                        e.progress.send_modify(|p| p.eof = true);
                        return Err(NetError::state(
                            name,
                            "got end-of-stream (the peer closed) before the expected data came",
                        ));
                    }
                    Ok(n) => {
                        e.add_in(n);
                        push_inbox(&e, &buf[..n]);
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(NetError::os("recv")(err)),
                }
            } else {
                let d = self.recvfrom(name, 65_535).await?;
                push_inbox(&e, &d.data);
            }
        }
    }

    /// The local address a closed socket of this name had (so a script can
    /// name the port of a server it closed, to restart it there).
    pub fn closed_addr(&self, name: &str) -> Option<SocketAddr> {
        lock(&self.inner.closed_addrs).get(name).copied()
    }

    /// The name a closed connection had, from its addresses.
    pub(crate) fn departed_name(&self, local: SocketAddr, peer: SocketAddr) -> Option<String> {
        lock(&self.inner.departed)
            .iter()
            .rev()
            .find(|d| d.local == local && d.peer == peer)
            .map(|d| d.name.to_string())
    }

    /// `TCP_INFO` of a TCP socket, decoded.
    ///
    /// # Errors
    /// No such socket, a UDP socket, or the OS refused.
    pub fn tcp_info(&self, name: &str) -> Result<crate::tcp::TcpInfo> {
        let e = self.get(name)?;
        if e.is_udp() {
            return Err(NetError::state(
                name,
                "is a UDP socket: TCP_INFO is for TCP",
            ));
        }
        e.with_sockref(|s| crate::tcp::tcp_info(s.as_raw_fd()))?
            .map_err(NetError::os("getsockopt(TCP_INFO)"))
    }

    /// Connections this lab closed that the kernel still holds in
    /// TIME_WAIT: (the closed socket's name, the row from the OS's socket
    /// table). The side that closed first holds TIME_WAIT.
    pub fn lingering(&self) -> Vec<(String, crate::tcp::TableRow)> {
        let departed: Vec<_> = lock(&self.inner.departed).iter().cloned().collect();
        if departed.is_empty() {
            return Vec::new();
        }
        let ports: Vec<u16> = departed.iter().map(|d| d.local.port()).collect();
        let mut out: Vec<(String, crate::tcp::TableRow)> = crate::tcp::time_wait_for(&ports)
            .into_iter()
            .filter_map(|row| {
                departed
                    .iter()
                    .rev()
                    .find(|d| d.local == row.local && d.peer == row.remote)
                    .map(|d| (d.name.to_string(), row))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Data a socket received that no `expect` has consumed yet (the last
    /// `max` bytes of it).
    ///
    /// # Errors
    /// No such socket.
    pub fn unmatched(&self, name: &str, max: usize) -> Result<Bytes> {
        let e = self.get(name)?;
        let inbox = lock(&e.inbox);
        let from = inbox.len().saturating_sub(max);
        Ok(Bytes::copy_from_slice(&inbox[from..]))
    }

    /// `shutdown()`. After shutting the write side, waits until a watched
    /// peer in this lab has reported the close.
    ///
    /// # Errors
    /// Not a connection, or the OS refused (not connected).
    pub async fn shutdown(&self, name: &str, how: Shutdown) -> Result<()> {
        let e = self.get(name)?;
        let stream = e.stream()?;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            // A background reader would take the shut read side for a close.
            e.stop_background().await;
            *lock(&e.mode) = Mode::Manual;
        }
        SockRef::from(&*stream)
            .shutdown(how)
            .map_err(NetError::os("shutdown"))?;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            *lock(&e.read_shut) = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            *lock(&e.write_shut) = true;
            if let Some(peer) = self.lab_peer(&e) {
                settle(&peer, |p| p.eof || p.failed).await?;
            }
            // Until the peer's kernel acknowledges our FIN we are in
            // FIN_WAIT_1 (CLOSING, LAST_ACK); it may delay that ACK. Settle
            // on the state so what `sockets` shows does not depend on timing.
            let _ = crate::tcp::wait_info(
                stream.as_raw_fd(),
                "our FIN acknowledged",
                KERNEL_SETTLE,
                |i| {
                    !matches!(
                        i.state,
                        crate::tcp::TcpState::FinWait1
                            | crate::tcp::TcpState::Closing
                            | crate::tcp::TcpState::LastAck
                    )
                },
            )
            .await;
        }
        Ok(())
    }

    /// `close()`: the socket leaves the lab. When its peer is a watched
    /// socket of this lab, waits until the peer has reported the close.
    ///
    /// # Errors
    /// No such socket.
    pub async fn close(&self, name: &str) -> Result<SocketInfo> {
        let e = lock(&self.inner.sockets)
            .remove(name)
            .ok_or_else(|| NetError::NoSuchSocket(name.to_string()))?;
        let info = e.info();
        let parent = lock(&e.parent).clone();
        let announced = parent.as_ref().map(|p| p.announced.load(Ordering::SeqCst));
        let kernel_before = e
            .stream()
            .ok()
            .and_then(|s| crate::tcp::state_of(s.as_raw_fd()).ok());
        e.stop_background().await;
        let peer = self.lab_peer(&e);
        if let Some(local) = info.local {
            let mut closed = lock(&self.inner.closed_addrs);
            if closed.len() >= DEPARTED_MAX {
                closed.clear();
            }
            closed.insert(e.name.clone(), local);
        }
        if let Some((local, remote)) = *lock(&e.addrs) {
            let mut departed = lock(&self.inner.departed);
            departed.push_back(Departed {
                local,
                peer: remote,
                bytes_out: e.bytes_out.load(Ordering::SeqCst),
                name: e.name.clone(),
            });
            if departed.len() > DEPARTED_MAX {
                departed.pop_front();
            }
        }
        drop(std::mem::replace(&mut *lock(&e.state), State::Closed));
        e.progress.send_modify(|p| p.watched = false);
        if let Some(peer) = peer {
            settle(&peer, |p| p.eof || p.failed).await?;
        }
        // Published after the peer reported the close, so an iterative
        // server's next accept (which waits for it) comes after that event.
        e.progress.send_modify(|p| p.closed = true);
        // A file server of this lab reports the end of this client's transfer.
        let addrs_now = *lock(&e.addrs);
        if let Some((local, remote)) = addrs_now {
            self.settle_served(local, remote).await?;
        }
        let addrs = *lock(&e.addrs);
        if let (Some(before), Some((local, remote))) = (kernel_before, addrs) {
            settle_close(before, local, remote).await;
        }
        // An iterative server now takes the next client from its backlog;
        // when that is a client of this lab, the accept is part of this close.
        if let (Some(server), Some(before)) = (parent, announced) {
            if server.queued.load(Ordering::SeqCst) > 0 {
                self.settle_announce(&server, before).await?;
                server.queued.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Ok(info)
    }

    /// Closes every socket without waiting for anything. Returns how many
    /// there were.
    pub async fn close_all(&self) -> usize {
        let all: Vec<_> = std::mem::take(&mut *lock(&self.inner.sockets))
            .into_values()
            .collect();
        // Readers stop first, so the closes below raise no events.
        for e in &all {
            e.stop_background().await;
        }
        for e in &all {
            drop(std::mem::replace(&mut *lock(&e.state), State::Closed));
        }
        all.len()
    }

    // ----- settlement ------------------------------------------------------

    /// The watched socket of this lab at the other end of `e`'s connection.
    fn lab_peer(&self, e: &Entry) -> Option<Arc<Entry>> {
        let (local, peer) = (*lock(&e.addrs))?;
        self.find_stream(peer, local)
            .filter(|p| p.progress.borrow().watched)
    }

    fn find_stream(&self, local: SocketAddr, peer: SocketAddr) -> Option<Arc<Entry>> {
        lock(&self.inner.sockets)
            .values()
            .find(|c| *lock(&c.addrs) == Some((local, peer)))
            .cloned()
    }

    /// After a connect from `local` to `peer`: when `peer` is a watched
    /// listener of this lab, waits until it has reported the accept.
    async fn settle_accept(&self, local: SocketAddr, peer: SocketAddr) -> Result<()> {
        let listener = lock(&self.inner.sockets)
            .values()
            .find(|l| l.mode() == Mode::Watched && !*lock(&l.file_server) && l.listens_at(peer))
            .cloned();
        let Some(listener) = listener else {
            return Ok(());
        };
        if listener.busy.load(Ordering::SeqCst) && *lock(&listener.serving) != Some(local) {
            // An iterative server serving someone else: this client waits in
            // the backlog, handshake done, not accepted.
            listener.queued.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        let mut rx = self.inner.generation.subscribe();
        let wait = async {
            loop {
                if self.find_stream(peer, local).is_some() {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(SETTLE_LIMIT, wait)
            .await
            .map_err(|_| NetError::Timeout {
                what: format!("waiting for the listener on {peer} to accept"),
                after: SETTLE_LIMIT,
            })
    }
}

impl Lab {
    /// Waits until `server` has announced an accept beyond `before`.
    async fn settle_announce(&self, server: &Entry, before: u64) -> Result<()> {
        let mut rx = self.inner.generation.subscribe();
        let wait = async {
            while server.announced.load(Ordering::SeqCst) <= before {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(SETTLE_LIMIT, wait)
            .await
            .map_err(|_| NetError::Timeout {
                what: format!("waiting for {} to accept its next client", server.name),
                after: SETTLE_LIMIT,
            })
    }
}

/// The longest a close or shutdown waits for the kernel to finish its part
/// of the goodbye (a delayed ACK is at most a few hundred milliseconds).
const KERNEL_SETTLE: Duration = Duration::from_secs(2);

/// After closing a connection that was in `before`: waits until the
/// kernel's socket table shows where the goodbye leads, so a `sockets` that
/// follows does not depend on timing. The first to close waits for its FIN
/// to be acknowledged (FIN_WAIT_2, or TIME_WAIT if the peer closed too);
/// the second to close waits for its own row to go (LAST_ACK ends with the
/// peer's ACK) and, when the peer's side is on this machine, for that side
/// to reach TIME_WAIT. Best effort: a timeout changes nothing but the wait.
async fn settle_close(before: crate::tcp::TcpState, local: SocketAddr, remote: SocketAddr) {
    use crate::tcp::TcpState as S;
    let ours = |r: &crate::tcp::TableRow| r.local == local && r.remote == remote;
    let theirs = |r: &crate::tcp::TableRow| r.local == remote && r.remote == local;
    let _ = match before {
        S::Established => {
            crate::tcp::wait_table("our FIN acknowledged", KERNEL_SETTLE, |rows| {
                rows.iter()
                    .filter(|r| ours(r))
                    .all(|r| matches!(r.state, S::FinWait2 | S::TimeWait))
            })
            .await
        }
        S::CloseWait => {
            crate::tcp::wait_table("the goodbye finished", KERNEL_SETTLE, |rows| {
                !rows.iter().any(ours)
                    && rows
                        .iter()
                        .filter(|r| theirs(r))
                        .all(|r| r.state == S::TimeWait)
            })
            .await
        }
        _ => return,
    };
}

/// Waits until `peer`'s progress satisfies `done`, or it stops being read.
pub(crate) async fn settle(peer: &Entry, done: impl Fn(&Progress) -> bool) -> Result<()> {
    let mut rx = peer.progress.subscribe();
    let wait = async { rx.wait_for(|p| !p.watched || done(p)).await.is_ok() };
    match tokio::time::timeout(SETTLE_LIMIT, wait).await {
        Ok(_) => Ok(()),
        Err(_) => Err(NetError::Timeout {
            what: format!("waiting for {} to report", peer.name),
            after: SETTLE_LIMIT,
        }),
    }
}

pub(crate) fn check_family(e: &Entry, addr: SocketAddr) -> Result<()> {
    if Family::of(&addr) != e.family {
        return Err(NetError::Family {
            name: e.name.to_string(),
            family: e.family.label(),
            addr,
        });
    }
    Ok(())
}

fn partial(name: &str, sent: usize, total: usize, source: io::Error) -> NetError {
    NetError::PartialSend {
        name: name.to_string(),
        sent,
        total,
        source,
    }
}

pub(crate) fn push_inbox(e: &Entry, data: &[u8]) {
    let mut inbox = lock(&e.inbox);
    let before = inbox.len();
    inbox.extend_from_slice(data);
    let spent = INBOX_TOTAL
        .load(Ordering::SeqCst)
        .saturating_add(data.len())
        > INBOX_BUDGET;
    let keep = if spent { INBOX_FLOOR } else { INBOX_MAX };
    if inbox.len() > keep {
        let excess = inbox.len() - keep;
        let _ = inbox.split_to(excess);
    }
    let after = inbox.len();
    if after >= before {
        INBOX_TOTAL.fetch_add(after - before, Ordering::SeqCst);
    } else {
        INBOX_TOTAL.fetch_sub(before - after, Ordering::SeqCst);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let held = lock(&self.inbox).len();
        INBOX_TOTAL.fetch_sub(held, Ordering::SeqCst);
    }
}

/// Connects a socket2 socket without blocking a thread: non-blocking
/// connect, then wait for writability. On failure the socket comes back
/// (when it still exists) so the caller can keep it.
async fn connect_socket(
    sock: Socket,
    to: SocketAddr,
    timeout: Option<Duration>,
) -> std::result::Result<TcpStream, (NetError, Option<Socket>)> {
    if let Err(e) = sock.set_nonblocking(true) {
        return Err((NetError::os("connect")(e), Some(sock)));
    }
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

async fn accept_loop(
    lab: Lab,
    e: Arc<Entry>,
    listener: Arc<TcpListener>,
    how: ServeMode,
    cancel: CancellationToken,
) {
    let events = lab.inner.events.clone();
    let mut backoff = Duration::from_millis(10);
    // Thread mode: one OS thread per client, at most MAX_THREAD_CLIENTS at
    // once; more clients wait in the accept queue.
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_THREAD_CLIENTS));
    loop {
        let slot = if how == ServeMode::Thread {
            tokio::select! {
                _ = cancel.cancelled() => return,
                p = slots.clone().acquire_owned() => p.ok(),
            }
        } else {
            None
        };
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let k = e.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                let name: Arc<str> = Arc::from(format!("{}.{k}", e.name));
                let Ok(child) =
                    lab.detached_stream_entry(name.clone(), stream, Mode::Watched, Some((e.id, k)))
                else {
                    continue;
                };
                *lock(&child.parent) = Some(e.clone());
                if how == ServeMode::Iterative {
                    // Busy (with whom) before anyone can see the accept, so a
                    // client that connects next knows it waits in the backlog.
                    *lock(&e.serving) = Some(peer);
                    e.busy.store(true, Ordering::SeqCst);
                }
                // The accept is reported before anyone can find the child
                // (a connect settling on it) and before its data can be.
                let _ = events
                    .send(Event::Accepted {
                        listener: e.name.clone(),
                        conn: name,
                        peer,
                    })
                    .await;
                if lab.insert(child.clone()).is_err() {
                    continue;
                }
                let _ = match (how, slot) {
                    (ServeMode::Thread, Some(slot)) => lab.start_thread_reader(&child, slot),
                    _ => lab.start_reader(&child),
                };
                e.announced.fetch_add(1, Ordering::SeqCst);
                lab.bump();
                if how == ServeMode::Iterative {
                    // Serve this client until the server side closes it (the
                    // lecture's loop: accept, send, recv, close); the next
                    // client waits in the backlog meanwhile.
                    let mut rx = child.progress.subscribe();
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = rx.wait_for(|p| p.closed || p.failed) => {}
                    }
                    e.busy.store(false, Ordering::SeqCst);
                }
            }
            Err(error) => {
                if !accept_backoff(&events, &e.name, error, &mut backoff, &cancel).await {
                    return;
                }
            }
        }
    }
}

async fn read_loop(
    e: Arc<Entry>,
    stream: Arc<TcpStream>,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    loop {
        let ready = tokio::select! {
            _ = cancel.cancelled() => break,
            r = stream.readable() => r,
        };
        let result = match ready {
            Ok(()) => {
                let mut buf = BytesMut::with_capacity(READ_CHUNK);
                match stream.try_read_buf(&mut buf) {
                    Ok(n) => Ok((n, buf)),
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        };
        // Each report goes on the channel before the progress a waiter
        // watches is published.
        match result {
            Ok((0, _)) => {
                if let Some(ev) = e.leftover() {
                    let _ = events.send(ev).await;
                }
                let _ = events
                    .send(Event::PeerClosed {
                        socket: e.name.clone(),
                    })
                    .await;
                e.progress.send_modify(|p| {
                    p.eof = true;
                    p.watched = false;
                });
                return;
            }
            Ok((n, buf)) => {
                push_inbox(&e, &buf);
                let (cut, broken) = e.cut(buf.freeze());
                for ev in cut {
                    let _ = events.send(ev).await;
                }
                if broken {
                    // The rest of the stream cannot be cut right: stop
                    // reading; the socket stays open, read on request.
                    // Stopped before the bytes are published, so a waiter
                    // that sees them sees the stop too.
                    e.stop_reading(n);
                    return;
                }
                e.add_in(n);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                let _ = events
                    .send(Event::Failed {
                        socket: e.name.clone(),
                        error,
                    })
                    .await;
                e.progress.send_modify(|p| {
                    p.failed = true;
                    p.watched = false;
                });
                return;
            }
        }
    }
    e.progress.send_modify(|p| p.watched = false);
}
