//! The listener kind: a listening TCP or UNIX stream socket, the service
//! that takes its clients (accepted by command, reported as events, served
//! files, wired to a program), its accept loop and its children's
//! numbering. What differs between the two families is kept to three small
//! enums: `Listening` (the socket), `Accepted` (what one accept returns)
//! and `Child` (the lab's connection it becomes); the services and their
//! loops are written once.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::chat::{self, ChatServer};
use crate::conn::{Accepts, Client, Conn};
use crate::error::{NetError, Result};
use crate::event::{Event, Sink, Transfer};
use crate::exec::{self, Command};
use crate::files::{self, FileService};
use crate::model::{Family, Side, TlsError, UnixAddr};
use crate::relay::{self, Host, RelayServer};
use crate::settle::lock;
use crate::tls::{self, HANDSHAKE_LIMIT};
use crate::tube::{Background, Tube};
use crate::unix::{self, SocketFile, UnixConn};

/// The most clients a `mode thread` server reads at once (a thread each).
pub const MAX_THREAD_CLIENTS: usize = 512;
/// How many transfers one file server runs at once. A `serve files` client
/// takes a slot only once its first message is whole (one that waits for
/// a slot longer than the header deadline is told `busy`); `serve raw`
/// clients wait in the accept queue.
pub const MAX_TRANSFERS: usize = 64;
/// How many `serve files` clients are kept while they send their first
/// message (each has the header deadline for it); past this, the oldest
/// is dropped, so a trickling crowd cannot keep a new client out.
pub const MAX_HEADER_CLIENTS: usize = 4096;
/// How long a stopping file server waits for its clients' transfers to
/// end (they are cancelled; a cancelled transfer removes what it wrote).
const FILES_STOP_WAIT: Duration = Duration::from_secs(5);
/// How many programs one `listen … exec` server runs at once.
pub const MAX_PROGRAMS: usize = 64;
/// How many TLS handshakes one server runs at once (more clients wait
/// in the accept queue).
pub const MAX_HANDSHAKES: usize = 1024;
/// How many finished clients a file or exec server remembers, to settle
/// the lab's clients on.
const FINISHED_MEMORY: usize = 1024;

/// How a server that reports its clients as events serves them
/// (lecture §10): one at a time, a thread each, or a task each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServeMode {
    /// One async task per client (the default): thousands at little cost.
    #[default]
    Task,
    /// One OS thread per client, blocking in its reads.
    Thread,
    /// One client at a time, like the lecture's `while True: accept()`
    /// loop: the next client is accepted only when the current one has
    /// closed; meanwhile it waits, connected, in the backlog.
    Iterative,
}

impl ServeMode {
    /// Every mode, as `help` lists them.
    pub const ALL: [ServeMode; 3] = [ServeMode::Iterative, ServeMode::Thread, ServeMode::Task];

    /// The mode's name in commands.
    pub fn name(self) -> &'static str {
        match self {
            ServeMode::Task => "task",
            ServeMode::Thread => "thread",
            ServeMode::Iterative => "iterative",
        }
    }
}

impl std::str::FromStr for ServeMode {
    type Err = ();

    fn from_str(s: &str) -> Result<ServeMode, ()> {
        ServeMode::ALL.into_iter().find(|m| m.name() == s).ok_or(())
    }
}

/// Where a listener's accepted connections go: the lab that owns it.
pub(crate) trait Adopt: Send + Sync + 'static {
    /// Makes `conn` a socket of the lab, listed under its listener (whose
    /// listing order is `order`) at accept number `k`.
    ///
    /// # Errors
    /// The name is taken.
    fn adopt(&self, conn: Arc<Conn>, order: u64, k: u64) -> Result<()>;
    /// The same for a UNIX connection.
    ///
    /// # Errors
    /// The name is taken.
    fn adopt_unix(&self, conn: Arc<UnixConn>, order: u64, k: u64) -> Result<()>;
    /// Where background events go.
    fn events(&self) -> Sink;
    /// Closes `conn`, a client of `listener` that left with nothing left to
    /// read (the server keeps too many such).
    fn retire(&self, conn: Arc<Conn>, listener: Arc<str>);
    /// What a relay or a chat broker needs of the lab.
    fn host(&self) -> Arc<dyn Host>;
    /// The same for a UNIX connection.
    fn retire_unix(&self, conn: Arc<UnixConn>, listener: Arc<str>);
}

/// A listening socket of either family.
pub(crate) enum Listening {
    /// TCP.
    Tcp(TcpListener),
    /// UNIX stream, with the socket file its bind made (removed when the
    /// listener stops).
    Unix(UnixListener, Mutex<Option<SocketFile>>),
}

/// What one accept returned.
pub(crate) enum Accepted {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A UNIX stream connection.
    Unix(UnixStream),
}

/// A connection an event server accepted, as the lab holds it.
#[derive(Clone)]
pub(crate) enum Child {
    /// TCP.
    Tcp(Arc<Conn>),
    /// UNIX stream.
    Unix(Arc<UnixConn>),
}

impl Child {
    /// The byte stream.
    fn tube(&self) -> &Arc<Tube> {
        match self {
            Child::Tcp(c) => &c.tube,
            Child::Unix(c) => &c.tube,
        }
    }

    fn downgrade(&self) -> WeakChild {
        match self {
            Child::Tcp(c) => WeakChild::Tcp(Arc::downgrade(c)),
            Child::Unix(c) => WeakChild::Unix(Arc::downgrade(c)),
        }
    }
}

/// A [`Child`] that does not keep its connection open.
enum WeakChild {
    Tcp(Weak<Conn>),
    Unix(Weak<UnixConn>),
}

impl WeakChild {
    fn upgrade(&self) -> Option<Child> {
        match self {
            WeakChild::Tcp(w) => w.upgrade().map(Child::Tcp),
            WeakChild::Unix(w) => w.upgrade().map(Child::Unix),
        }
    }

    fn alive(&self) -> bool {
        match self {
            WeakChild::Tcp(w) => w.strong_count() > 0,
            WeakChild::Unix(w) => w.strong_count() > 0,
        }
    }
}

/// How many accepted connections whose client left (end of stream read,
/// nothing left unread) an event server keeps open; older ones are closed
/// by socklab, so a server that many clients visit does not hold a
/// descriptor for each forever. A learner's few stay until `close`.
pub const KEEP_DEPARTED: usize = 64;

/// A server that reports its clients as events and lets the lab read
/// them (`listen PORT`).
pub(crate) struct EventServer {
    /// One task, one thread, or one client at a time.
    pub(crate) how: ServeMode,
    /// Accepts reported, and lab clients waiting in the backlog.
    pub(crate) accepts: Arc<Accepts>,
    /// Accepted connections handed to `accept` callers.
    claimed: AtomicU64,
    /// Accepted connections whose client left, oldest first.
    departed: Arc<Mutex<VecDeque<WeakChild>>>,
    /// A TLS server's configuration: every client's handshake comes
    /// first (`listen … tls`).
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// A TLS server's clients named so far (those whose handshake was
    /// done).
    named: AtomicU64,
}

/// A server whose clients are file transfers (`serve files`, `serve raw`).
pub(crate) struct FileServer {
    /// What it does with each client.
    service: FileService,
    /// Clients whose transfer has been reported.
    reports: Arc<Reports>,
}

/// A server whose every client is wired to a program of its own
/// (`listen PORT exec PROGRAM`, as `ncat --exec` does).
pub(crate) struct ExecServer {
    /// The program and its arguments.
    command: Command,
    /// Accepts reported.
    pub(crate) accepts: Arc<Accepts>,
    /// Clients whose program has ended and been reported.
    reports: Arc<Reports>,
}

/// What takes a listener's clients.
pub(crate) enum Service {
    /// `accept` commands, one at a time.
    Manual,
    /// Accepted by itself and reported as events; the clients are sockets
    /// of the lab.
    Events(EventServer),
    /// Each client's transfer, reported when done.
    Files(FileServer),
    /// Each client wired to a program.
    Exec(ExecServer),
    /// Each client relayed to an upstream (`relay`).
    Relay(Arc<RelayServer>),
    /// Each client a member of a chat (`chat`).
    Chat(Arc<ChatServer>),
    /// Each client a bench client (`bench serve`): a sink, an echo, a
    /// held connection, as its header asks.
    Bench(Arc<crate::bench::serve::Server>),
}

impl Service {
    /// Reports clients as events.
    pub(crate) fn events(how: ServeMode) -> Service {
        Service::Events(EventServer {
            how,
            accepts: Arc::default(),
            claimed: AtomicU64::new(0),
            departed: Arc::default(),
            tls: None,
            named: AtomicU64::new(0),
        })
    }

    /// Reports clients as events once their TLS handshake is done.
    pub(crate) fn events_tls(how: ServeMode, config: Arc<rustls::ServerConfig>) -> Service {
        Service::Events(EventServer {
            how,
            accepts: Arc::default(),
            claimed: AtomicU64::new(0),
            departed: Arc::default(),
            tls: Some(config),
            named: AtomicU64::new(0),
        })
    }

    /// Serves files.
    pub(crate) fn files(service: FileService) -> Service {
        Service::Files(FileServer {
            service,
            reports: Arc::default(),
        })
    }

    /// Runs `command` for each client.
    pub(crate) fn exec(command: Command) -> Service {
        Service::Exec(ExecServer {
            command,
            accepts: Arc::default(),
            reports: Arc::default(),
        })
    }
}

/// A listening socket of the lab.
pub(crate) struct Listener {
    /// The name in the lab.
    pub(crate) name: Arc<str>,
    /// Where it stands in listings (its children follow it).
    pub(crate) order: u64,
    /// The socket.
    socket: Listening,
    /// Connections accepted so far (numbers the children: `NAME.k`).
    accepted: AtomicU64,
    /// What takes its clients.
    pub(crate) service: Service,
    /// The accept loop, for a self-accepting listener.
    background: Mutex<Option<Background>>,
    /// The lab host it was made on (`None`: this shell's namespace).
    pub(crate) place: Option<Arc<crate::netns::Place>>,
}

impl Listener {
    /// A listener over `socket`; a self-accepting service starts with
    /// [`Listener::start`].
    pub(crate) fn new(
        name: Arc<str>,
        order: u64,
        socket: TcpListener,
        service: Service,
        place: Option<Arc<crate::netns::Place>>,
    ) -> Listener {
        Listener::over(name, order, Listening::Tcp(socket), service, place)
    }

    /// A UNIX listener over `socket`, owning the socket file its bind made.
    pub(crate) fn new_unix(
        name: Arc<str>,
        order: u64,
        socket: UnixListener,
        file: Option<SocketFile>,
        service: Service,
    ) -> Listener {
        Listener::over(
            name,
            order,
            Listening::Unix(socket, Mutex::new(file)),
            service,
            None,
        )
    }

    fn over(
        name: Arc<str>,
        order: u64,
        socket: Listening,
        service: Service,
        place: Option<Arc<crate::netns::Place>>,
    ) -> Listener {
        Listener {
            name,
            order,
            socket,
            accepted: AtomicU64::new(0),
            service,
            background: Mutex::new(None),
            place,
        }
    }

    /// The local address, when the OS can say (`None` for UNIX).
    pub(crate) fn local(&self) -> Option<SocketAddr> {
        match &self.socket {
            Listening::Tcp(l) => l.local_addr().ok(),
            Listening::Unix(..) => None,
        }
    }

    /// The path or abstract name of a UNIX listener.
    pub(crate) fn unix_local(&self) -> Option<UnixAddr> {
        match &self.socket {
            Listening::Tcp(_) => None,
            Listening::Unix(l, _) => Some(unix::listener_addr(l)),
        }
    }

    /// Whether UNIX connections to `to` reach this listener.
    pub(crate) fn listens_at_unix(&self, to: &UnixAddr) -> bool {
        self.unix_local().is_some_and(|a| a == *to)
    }

    /// The address family.
    pub(crate) fn family(&self) -> Family {
        self.local().map_or(Family::V4, |a| Family::of(&a))
    }

    /// The descriptor.
    pub(crate) fn fd(&self) -> RawFd {
        match &self.socket {
            Listening::Tcp(l) => l.as_raw_fd(),
            Listening::Unix(l, _) => l.as_raw_fd(),
        }
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Whether connections from a socket in `from` to `to` reach this
    /// listener.
    pub(crate) fn listens_at(&self, from: Option<&crate::netns::Place>, to: SocketAddr) -> bool {
        self.local()
            .is_some_and(|a| crate::netns::delivers(self.place.as_deref(), a, from, to))
    }

    /// A reference for socket options.
    pub(crate) fn sockref(&self) -> socket2::SockRef<'_> {
        match &self.socket {
            Listening::Tcp(l) => socket2::SockRef::from(l),
            Listening::Unix(l, _) => socket2::SockRef::from(l),
        }
    }

    /// Starts the accept loop of a self-accepting service.
    pub(crate) fn start(self: &Arc<Self>, lab: Arc<dyn Adopt>) {
        let me = self.clone();
        // The loop works in the listener's place: its children are listed
        // on the listener's host, its programs run there.
        let place = self.place.clone();
        let bg = Background::spawn(move |cancel| async move {
            let work = async {
                match &me.service {
                    Service::Manual => {}
                    Service::Events(_) => me.events_loop(&lab, &cancel).await,
                    Service::Files(_) => me.files_loop(&*lab, &cancel).await,
                    Service::Exec(_) => me.exec_loop(&*lab, &cancel).await,
                    Service::Relay(_) => me.relay_loop(&*lab, &cancel).await,
                    Service::Chat(_) => me.chat_loop(&*lab, &cancel).await,
                    Service::Bench(_) => me.bench_loop(&*lab, &cancel).await,
                }
            };
            match place {
                Some(p) => crate::netns::within(p, work).await,
                None => work.await,
            }
        });
        *lock(&self.background) = Some(bg);
    }

    /// Stops the accept loop (and, for an exec server, its programs); a
    /// UNIX listener removes the socket file it made.
    pub(crate) async fn stop(&self) {
        let bg = lock(&self.background).take();
        if let Some(bg) = bg {
            bg.stop().await;
        }
        if let Listening::Unix(_, file) = &self.socket {
            drop(lock(file).take());
        }
    }

    /// One accept of either family: the stream and who the client is.
    async fn accept_any(&self) -> std::io::Result<(Accepted, Client)> {
        match &self.socket {
            Listening::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                Ok((Accepted::Tcp(s), Client::Ip(peer)))
            }
            Listening::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                let key = Client::Unix(unix::client_inode(&s));
                Ok((Accepted::Unix(s), key))
            }
        }
    }

    /// `accept()` one connection from the queue.
    ///
    /// # Errors
    /// The OS refused.
    pub(crate) async fn accept_one(&self) -> Result<Accepted> {
        let (stream, _) = self.accept_any().await.map_err(NetError::os("accept"))?;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(stream)
    }

    /// Waits for the next slot (when there is a limit), then the next
    /// client; `None` when cancelled. Failed accepts are reported and
    /// retried after a back-off.
    async fn next_client(
        &self,
        slots: Option<&Arc<Semaphore>>,
        events: &Sink,
        cancel: &CancellationToken,
    ) -> Option<(Accepted, Client, u64, Option<OwnedSemaphorePermit>)> {
        let mut backoff = Duration::from_millis(10);
        loop {
            let slot = match slots {
                Some(s) => tokio::select! {
                    _ = cancel.cancelled() => return None,
                    p = s.clone().acquire_owned() => Some(p.ok()?),
                },
                None => None,
            };
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return None,
                r = self.accept_any() => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let k = self.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                    return Some((stream, peer, k, slot));
                }
                Err(error) => {
                    drop(slot);
                    let _ = events
                        .send(Event::AcceptFailed {
                            listener: self.name.clone(),
                            error,
                            retry_in: backoff,
                        })
                        .await;
                    tokio::select! {
                        _ = cancel.cancelled() => return None,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// The name of accepted client number `k`.
    fn child_name(&self, k: u64) -> Arc<str> {
        Arc::from(format!("{}.{k}", self.name))
    }

    async fn events_loop(self: &Arc<Self>, lab: &Arc<dyn Adopt>, cancel: &CancellationToken) {
        let Service::Events(server) = &self.service else {
            return;
        };
        let events = lab.events();
        // Thread mode: one OS thread per client, at most MAX_THREAD_CLIENTS
        // at once; more clients wait in the accept queue.
        let slots =
            (server.how == ServeMode::Thread).then(|| Arc::new(Semaphore::new(MAX_THREAD_CLIENTS)));
        // A TLS server's handshakes run on tasks of their own (one client
        // that never finishes its hello holds up nobody), at most
        // MAX_HANDSHAKES at once, each within the handshake limit.
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let clients = tokio_util::task::TaskTracker::new();
        while let Some((stream, peer, k, slot)) =
            self.next_client(slots.as_ref(), &events, cancel).await
        {
            let secured = match (stream, peer, server.tls.clone()) {
                (Accepted::Tcp(s), Client::Ip(addr), Some(config)) => (s, addr, config),
                (stream, _, _) => {
                    let name = self.child_name(k);
                    let parent = Some(server.accepts.clone());
                    let child = match stream {
                        Accepted::Tcp(s) => match Conn::new(name, s, parent, false) {
                            Ok(c) => Child::Tcp(Arc::new(c)),
                            Err(_) => continue,
                        },
                        Accepted::Unix(s) => {
                            Child::Unix(Arc::new(UnixConn::new(name, s, parent, false)))
                        }
                    };
                    self.welcome(child, peer, k, slot, lab, cancel).await;
                    continue;
                }
            };
            let (stream, addr, config) = secured;
            if server.how == ServeMode::Iterative {
                if let Some((child, k)) = self.secure(stream, addr, config, &events, cancel).await {
                    self.welcome(Child::Tcp(child), peer, k, slot, lab, cancel)
                        .await;
                }
                continue;
            }
            let permit = tokio::select! {
                _ = cancel.cancelled() => break,
                p = handshakes.clone().acquire_owned() => p,
            };
            let Ok(permit) = permit else {
                continue;
            };
            let (me, lab, cancel) = (self.clone(), lab.clone(), cancel.clone());
            let events = events.clone();
            clients.spawn(async move {
                if let Some((child, k)) = me.secure(stream, addr, config, &events, &cancel).await {
                    drop(permit);
                    me.welcome(Child::Tcp(child), peer, k, slot, &lab, &cancel)
                        .await;
                }
            });
        }
        clients.close();
        clients.wait().await;
    }

    /// A TLS server's handshake with client `peer`; once it is done, the
    /// client takes the next child number (a client whose handshake failed
    /// takes none). A failure is reported, and the client let go.
    async fn secure(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        config: Arc<rustls::ServerConfig>,
        events: &Sink,
        cancel: &CancellationToken,
    ) -> Option<(Arc<Conn>, u64)> {
        let Service::Events(server) = &self.service else {
            return None;
        };
        let shake = async {
            let session = tls::server(config)?;
            tls::handshake(&stream, session, &[], Side::Server, HANDSHAKE_LIMIT).await
        };
        let result = tokio::select! {
            _ = cancel.cancelled() => return None,
            r = shake => r,
        };
        let failed = |error: TlsError| Event::TlsFailed {
            socket: self.name.clone(),
            peer,
            error,
        };
        let (session, facts) = match result {
            Ok(done) => done,
            Err(error) => {
                // Reported before the client is let go: a program at the
                // other end that ends when it sees the close ends after.
                let _ = events.send(failed(error)).await;
                server.accepts.refuse(peer);
                drop(stream);
                return None;
            }
        };
        let k = server.named.fetch_add(1, Ordering::SeqCst) + 1;
        let child = Conn::new(
            self.child_name(k),
            stream,
            Some(server.accepts.clone()),
            false,
        )
        .ok()?;
        tls::upgrade(&child, session, facts).ok()?;
        Some((Arc::new(child), k))
    }

    /// Makes an accepted client a watched stream of the lab: reported,
    /// adopted, read; an iterative server then serves it until it closes.
    async fn welcome(
        &self,
        child: Child,
        peer: Client,
        k: u64,
        slot: Option<OwnedSemaphorePermit>,
        lab: &Arc<dyn Adopt>,
        cancel: &CancellationToken,
    ) {
        let Service::Events(server) = &self.service else {
            return;
        };
        let events = lab.events();
        let name = child.tube().name.clone();
        if server.how == ServeMode::Iterative {
            // Busy (with whom) before anyone can see the accept, so a
            // client that connects next knows it waits in the backlog.
            server.accepts.serve(peer);
        }
        // The accept is reported before anyone can find the child (a
        // connect settling on it) and before its data can be.
        let _ = events.send(self.accepted_event(name.clone(), &child)).await;
        if let Child::Tcp(c) = &child {
            if let Some(facts) = c.tls() {
                let _ = events
                    .send(Event::TlsReady {
                        socket: name,
                        facts,
                    })
                    .await;
            }
        }
        let adopted = match &child {
            Child::Tcp(c) => lab.adopt(c.clone(), self.order, k),
            Child::Unix(c) => lab.adopt_unix(c.clone(), self.order, k),
        };
        if adopted.is_err() {
            return;
        }
        let tube = child.tube();
        let _ = match slot {
            Some(slot) => tube.start_thread_reader(events.clone(), slot),
            None => {
                tube.start_reader(events.clone());
                Ok(())
            }
        };
        server.accepts.announce(peer);
        self.watch_departure(&child, server, lab, cancel);
        if server.how == ServeMode::Iterative {
            // Serve this client until the server side closes it (the
            // lecture's loop: accept, send, recv, close); the next client
            // waits in the backlog meanwhile. Only its progress is kept:
            // the connection itself belongs to the lab (a transfer may
            // take it).
            let mut rx = child.tube().watch_progress();
            drop(child);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = rx.wait_for(|p| p.closed || p.failed) => {}
            }
            server.accepts.done_with(peer);
        }
    }

    /// The event that reports the accept of `child`, named `name`.
    fn accepted_event(&self, name: Arc<str>, child: &Child) -> Event {
        match child {
            Child::Tcp(c) => Event::Accepted {
                listener: self.name.clone(),
                conn: name,
                peer: c.peer,
            },
            Child::Unix(c) => Event::UnixAccepted {
                listener: self.name.clone(),
                conn: name,
                peer: c.peer.clone(),
            },
        }
    }

    /// When `child`'s client leaves (end of stream, or a failure), counts
    /// it among the server's departed connections, and past
    /// [`KEEP_DEPARTED`] closes the oldest that has nothing left unread.
    fn watch_departure(
        &self,
        child: &Child,
        server: &EventServer,
        lab: &Arc<dyn Adopt>,
        cancel: &CancellationToken,
    ) {
        let mut rx = child.tube().watch_progress();
        let (weak, departed) = (child.downgrade(), server.departed.clone());
        let (lab, listener, cancel) = (lab.clone(), self.name.clone(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = rx.wait_for(|p| p.eof || p.failed || p.closed) => {
                    if r.map(|p| p.closed).unwrap_or(true) {
                        return;
                    }
                }
            }
            let retire = {
                let mut departed = lock(&departed);
                departed.push_back(weak);
                departed.retain(WeakChild::alive);
                let mut out = Vec::new();
                while departed.len() > KEEP_DEPARTED {
                    let Some(oldest) = departed.pop_front() else {
                        break;
                    };
                    match oldest.upgrade() {
                        Some(c) if c.tube().unmatched(1).is_empty() => out.push(c),
                        // Data nobody took stays available: keep it.
                        Some(_) => {}
                        None => {}
                    }
                }
                out
            };
            for c in retire {
                match c {
                    Child::Tcp(c) => lab.retire(c, listener.clone()),
                    Child::Unix(c) => lab.retire_unix(c, listener.clone()),
                }
            }
        });
    }

    async fn files_loop(&self, lab: &dyn Adopt, cancel: &CancellationToken) {
        let Service::Files(server) = &self.service else {
            return;
        };
        let events = lab.events();
        // `serve files`: a slot is taken after the header (Admission), so
        // accepting is never held up by clients that trickle. `serve raw`
        // has no header: a slot before the accept.
        let admission = Arc::new(files::Admission::new(MAX_TRANSFERS, MAX_HEADER_CLIENTS));
        let slots = Arc::new(Semaphore::new(MAX_TRANSFERS));
        let gate = match server.service {
            FileService::Files(_) => None,
            FileService::Raw { .. } => Some(&slots),
        };
        let clients = tokio_util::task::TaskTracker::new();
        while let Some((stream, peer, _, slot)) = self.next_client(gate, &events, cancel).await {
            // File servers listen on TCP only (`serve` takes a port).
            let (Accepted::Tcp(stream), Client::Ip(peer)) = (stream, peer) else {
                continue;
            };
            let service = server.service.clone();
            let events = events.clone();
            let name = self.name.clone();
            let reports = server.reports.clone();
            let admission = admission.clone();
            let stop = cancel.clone();
            clients.spawn(async move {
                let served = async {
                    let outcome: Transfer = files::serve_one(stream, &service, &admission).await;
                    // Reported before the settling waiter can see it.
                    let served = Event::Served {
                        server: name,
                        peer,
                        outcome: Box::new(outcome),
                    };
                    let _ = events.send(served).await;
                    reports.finish(peer);
                };
                // A stopping server cancels its transfers: each removes
                // what it wrote (a resume record being written is finished
                // first), before the server's stop returns.
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = served => {}
                }
                drop(slot);
            });
        }
        clients.close();
        let _ = tokio::time::timeout(FILES_STOP_WAIT, clients.wait()).await;
    }

    async fn exec_loop(&self, lab: &dyn Adopt, cancel: &CancellationToken) {
        let Service::Exec(server) = &self.service else {
            return;
        };
        let events = lab.events();
        let slots = Arc::new(Semaphore::new(MAX_PROGRAMS));
        let programs = tokio_util::task::TaskTracker::new();
        while let Some((stream, peer, k, slot)) =
            self.next_client(Some(&slots), &events, cancel).await
        {
            let name = self.child_name(k);
            let accepted = match (&stream, peer) {
                (Accepted::Unix(s), _) => Event::UnixAccepted {
                    listener: self.name.clone(),
                    conn: name.clone(),
                    peer: unix::peer_addr(s),
                },
                (Accepted::Tcp(_), Client::Ip(peer)) => Event::Accepted {
                    listener: self.name.clone(),
                    conn: name.clone(),
                    peer,
                },
                (Accepted::Tcp(_), Client::Unix(_)) => continue,
            };
            let _ = events.send(accepted).await;
            let child = exec::start_client(&name, &server.command, &events).await;
            server.accepts.announce(peer);
            let Some(child) = child else {
                server.reports.finish(peer);
                continue;
            };
            let events = events.clone();
            let stop = cancel.child_token();
            let reports = server.reports.clone();
            programs.spawn(async move {
                match stream {
                    Accepted::Tcp(s) => exec::serve_client(name, s, child, &events, stop).await,
                    Accepted::Unix(s) => exec::serve_client(name, s, child, &events, stop).await,
                }
                reports.finish(peer);
                drop(slot);
            });
        }
        // The programs end with the server (their tokens are children of
        // its token); wait until each has been reaped.
        programs.close();
        programs.wait().await;
    }

    async fn relay_loop(&self, lab: &dyn Adopt, cancel: &CancellationToken) {
        let Service::Relay(server) = &self.service else {
            return;
        };
        let events = lab.events();
        loop {
            let slot = tokio::select! {
                _ = cancel.cancelled() => break,
                s = server.slot() => s,
            };
            let Some(slot) = slot else { break };
            let Some((stream, peer, k, _)) = self.next_client(None, &events, cancel).await else {
                break;
            };
            // Relays listen on TCP only (`relay` takes a port).
            let (Accepted::Tcp(stream), Client::Ip(peer)) = (stream, peer) else {
                continue;
            };
            let name = self.child_name(k);
            let accepted = Event::Accepted {
                listener: self.name.clone(),
                conn: name.clone(),
                peer,
            };
            let _ = events.send(accepted).await;
            // A pair outlives its relay, as a server's connections outlive
            // it: `close NAME.k` (or the end of the session) ends it.
            let pair = relay::serve_client(
                lab.host(),
                server.clone(),
                name,
                stream,
                peer,
                (self.order, k),
                slot,
            );
            // The upstream leg is made where the relay is (its host).
            match self.place.clone() {
                Some(place) => tokio::spawn(crate::netns::within(place, pair)),
                None => tokio::spawn(pair),
            };
        }
    }

    async fn chat_loop(&self, lab: &dyn Adopt, cancel: &CancellationToken) {
        let Service::Chat(server) = &self.service else {
            return;
        };
        let events = lab.events();
        let members = tokio_util::task::TaskTracker::new();
        while let Some((stream, peer, _, slot)) =
            self.next_client(Some(&server.slots), &events, cancel).await
        {
            let Some(slot) = slot else { break };
            // A chat listens on TCP only (`chat` takes a port).
            let (Accepted::Tcp(stream), Client::Ip(peer)) = (stream, peer) else {
                continue;
            };
            members.spawn(chat::serve_client(
                lab.host(),
                server.clone(),
                self.name.clone(),
                stream,
                peer,
                slot,
                cancel.clone(),
            ));
        }
        members.close();
        members.wait().await;
    }

    async fn bench_loop(&self, lab: &dyn Adopt, cancel: &CancellationToken) {
        let Service::Bench(server) = &self.service else {
            return;
        };
        let events = lab.events();
        server.start_udp(cancel);
        let clients = tokio_util::task::TaskTracker::new();
        while let Some((stream, _, _, _)) = self.next_client(None, &events, cancel).await {
            // A bench server listens on TCP only (`bench serve` takes a
            // port).
            let Accepted::Tcp(stream) = stream else {
                continue;
            };
            clients.spawn(server.clone().client(stream, cancel.clone()));
        }
        clients.close();
        let _ = tokio::time::timeout(FILES_STOP_WAIT, clients.wait()).await;
    }

    /// A file or exec server of this listener: waits until it has reported
    /// its client at `client`.
    ///
    /// # Errors
    /// It did not report within `limit`.
    pub(crate) async fn settle_finished(
        &self,
        client: impl Into<Client>,
        limit: Duration,
    ) -> Result<()> {
        let client = client.into();
        match &self.service {
            Service::Files(s) => s.reports.settle(client, limit, &self.name).await,
            Service::Exec(s) => s.reports.settle(client, limit, &self.name).await,
            _ => Ok(()),
        }
    }

    /// The next accepted client of an event server that no `accept` has
    /// claimed yet, by its name; waits for one.
    pub(crate) async fn claim(&self) -> Option<Arc<str>> {
        let Service::Events(server) = &self.service else {
            return None;
        };
        let mut rx = server.accepts.watch();
        loop {
            rx.borrow_and_update();
            let claimed = server.claimed.load(Ordering::SeqCst);
            if server.accepts.announced() > claimed {
                server.claimed.store(claimed + 1, Ordering::SeqCst);
                return Some(self.child_name(claimed + 1));
            }
            rx.changed().await.ok()?;
        }
    }

    /// Whether its clients speak TLS (`listen … tls`).
    pub(crate) fn is_tls(&self) -> bool {
        matches!(&self.service, Service::Events(s) if s.tls.is_some())
    }

    /// The accepts of a self-accepting server (events or exec).
    pub(crate) fn accepts(&self) -> Option<&Arc<Accepts>> {
        match &self.service {
            Service::Events(s) => Some(&s.accepts),
            Service::Exec(s) => Some(&s.accepts),
            Service::Relay(s) => Some(&s.accepts),
            Service::Chat(s) => Some(&s.accepts),
            _ => None,
        }
    }
}

/// The clients a file or exec server has reported, for the lab's clients
/// to settle on.
pub(crate) struct Reports {
    /// Clients whose end has been reported, newest last.
    finished: Mutex<VecDeque<Client>>,
    /// Bumped after each report.
    reported: watch::Sender<u64>,
}

impl Default for Reports {
    fn default() -> Reports {
        Reports {
            finished: Mutex::new(VecDeque::new()),
            reported: watch::Sender::new(0),
        }
    }
}

impl Reports {
    /// Records that `client`'s end was reported (call after sending the
    /// report, so a waiter that sees this finds the event).
    fn finish(&self, client: impl Into<Client>) {
        let client = client.into();
        {
            let mut finished = lock(&self.finished);
            finished.push_back(client);
            if finished.len() > FINISHED_MEMORY {
                finished.pop_front();
            }
        }
        self.reported.send_modify(|g| *g += 1);
    }

    /// Waits until `client`'s end has been reported.
    async fn settle(&self, client: Client, limit: Duration, server: &str) -> Result<()> {
        let what = || format!("waiting for {server} to report its client {client}");
        crate::settle::wait_until(what, limit, self.reported.subscribe(), |_| {
            lock(&self.finished).contains(&client)
        })
        .await
        .map(|_| ())
    }
}
