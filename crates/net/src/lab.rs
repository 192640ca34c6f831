//! The lab: every named socket and program of one session, and what can
//! be done to them. Each entry is one kind (a fresh socket, a listener, a
//! TCP connection, a program, a UDP socket); connections and programs are
//! tubes. The operations live in `lab/`: step by step (`steps.rs`), data
//! (`data.rs`), servers and programs (`serve.rs`), and `trace` (`tracing.rs`).

mod bench;
mod data;
mod logging;
mod relay;
mod secure;
mod serve;
mod steps;
mod tracing;
mod unix;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use socket2::Socket;
use tokio::sync::mpsc;

use crate::budget::{Budget, EVENT_BUDGET};
use crate::conn::Conn;
use crate::error::{NetError, Result};
use crate::event::{Event, Sink};
use crate::exec::Program;
use crate::listener::{Adopt, Listener, Service};
use crate::model::{Family, Mode, Role, SocketInfo, UnixInfo};
use crate::netns::{self, Place};
use crate::settle::lock;
use crate::tcp::{self, TableRow};
use crate::trace::Tracer;
use crate::tube::Tube;
use crate::udp::UdpSock;
use crate::unix::{UnixConn, UnixDgram, UnixFresh};

/// How many closed connections the lab remembers, to settle reads of data
/// they sent before closing and to name them in TIME_WAIT rows.
const DEPARTED_MAX: usize = 4096;

/// Why listen and accept do not apply to UDP.
const NO_CONNECTIONS: &str =
    "is a UDP socket: UDP has no connections to listen for or accept; datagrams just arrive (recvfrom)";
/// Why socket calls do not apply to a program.
const NOT_A_SOCKET: &str =
    "is a program (exec), not a socket: it has a stream (send, recv, expect, shutdown, close) but no address or options";

/// A TCP socket made by `socket`, not yet listening or connected.
pub(crate) struct Fresh {
    /// The socket.
    socket: Socket,
    /// Its family.
    family: Family,
}

/// What one entry of the lab is now.
pub(crate) enum Kind {
    /// A fresh TCP socket.
    Fresh(Fresh),
    /// A listening socket and its service.
    Listener(Arc<Listener>),
    /// A TCP connection.
    Conn(Arc<Conn>),
    /// A program.
    Program(Arc<Program>),
    /// A UDP socket.
    Udp(Arc<UdpSock>),
    /// A relay's client: two legs and the forwarding between them.
    Pair(Arc<crate::relay::Pair>),
    /// A UNIX stream socket made by `socket unix`, not yet listening or
    /// connected.
    UnixFresh(UnixFresh),
    /// A UNIX stream connection.
    Unix(Arc<UnixConn>),
    /// A UNIX datagram socket.
    UnixDgram(Arc<UnixDgram>),
    /// Taken out for a moment by a command changing it (a connect).
    Busy,
}

/// One named entry of the lab.
pub(crate) struct Entry {
    /// The name.
    name: Arc<str>,
    /// Where it stands in listings: (creation number, 0), or for a
    /// connection a listener of the lab accepted, (the listener's number,
    /// accept number), so the order never depends on which of two
    /// concurrent tasks ran first.
    order: (u64, u64),
    /// What it is.
    kind: Mutex<Kind>,
    /// The lab host it was made on (`None`: this shell's namespace).
    place: Option<Arc<Place>>,
}

impl Entry {
    /// An entry made in the current place (`on HOST …`, or a listener's
    /// accept loop that runs in its host's place).
    fn new(name: Arc<str>, order: (u64, u64), kind: Kind) -> Arc<Entry> {
        Arc::new(Entry {
            name,
            order,
            kind: Mutex::new(kind),
            place: netns::current(),
        })
    }

    /// The tube of a connection or a program.
    fn tube(&self) -> Result<Arc<Tube>> {
        match &*lock(&self.kind) {
            Kind::Conn(c) => Ok(c.tube.clone()),
            Kind::Program(p) => Ok(p.tube.clone()),
            Kind::Unix(c) => Ok(c.tube.clone()),
            other => Err(self.not_a_stream(other)),
        }
    }

    /// The TCP connection.
    fn conn(&self) -> Result<Arc<Conn>> {
        match &*lock(&self.kind) {
            Kind::Conn(c) => Ok(c.clone()),
            Kind::Program(_) => Err(NetError::state(&self.name, NOT_A_SOCKET)),
            Kind::Unix(_) => Err(NetError::state(
                &self.name,
                "is a UNIX connection; this works on TCP connections only",
            )),
            other => Err(self.not_a_stream(other)),
        }
    }

    /// The UNIX stream connection.
    fn unix(&self) -> Option<Arc<UnixConn>> {
        match &*lock(&self.kind) {
            Kind::Unix(c) => Some(c.clone()),
            _ => None,
        }
    }

    fn not_a_stream(&self, kind: &Kind) -> NetError {
        let what = match kind {
            Kind::Fresh(_) | Kind::UnixFresh(_) => "is not connected (connect it first)",
            Kind::Listener(_) => "is a listener; it accepts connections but carries no data",
            Kind::Pair(_) => "is a relay pair: it forwards what its client and its upstream send (use fault, info, close)",
            Kind::Udp(_) => "is a UDP socket: use sendto/recvfrom (or send/recv after connect)",
            Kind::UnixDgram(_) => {
                "is a UNIX datagram socket: use sendto/recvfrom with a unix: address"
            }
            Kind::Conn(_) | Kind::Program(_) | Kind::Unix(_) | Kind::Busy => "is busy",
        };
        NetError::state(&self.name, what)
    }

    /// The UDP socket.
    fn udp(&self) -> Result<Arc<UdpSock>> {
        match &*lock(&self.kind) {
            Kind::Udp(u) => Ok(u.clone()),
            Kind::Program(_) => Err(NetError::state(&self.name, NOT_A_SOCKET)),
            _ => Err(NetError::state(
                &self.name,
                "is a TCP socket: sendto/recvfrom are for UDP (use send/recv)",
            )),
        }
    }

    fn is_udp(&self) -> bool {
        matches!(&*lock(&self.kind), Kind::Udp(_))
    }

    /// The listener.
    fn listener(&self) -> Option<Arc<Listener>> {
        match &*lock(&self.kind) {
            Kind::Listener(l) => Some(l.clone()),
            _ => None,
        }
    }

    /// A snapshot for display.
    fn info(&self) -> SocketInfo {
        let mut info = SocketInfo {
            name: self.name.to_string(),
            fd: -1,
            family: None,
            role: Role::Fresh,
            mode: Mode::Manual,
            local: None,
            peer: None,
            state: String::new(),
            bytes_in: 0,
            bytes_out: 0,
            accepted: 0,
            datagrams_in: 0,
            datagrams_out: 0,
            tcp_state: None,
            program: None,
            outside: false,
            unix: None,
            tls: None,
            host: self.place.as_ref().map(|p| p.host.to_string()),
        };
        match &*lock(&self.kind) {
            Kind::Fresh(f) => fresh_info(f, &mut info),
            Kind::Listener(l) => listener_info(l, &mut info),
            Kind::Conn(c) => conn_info(c, &mut info),
            Kind::Program(p) => program_info(p, &mut info),
            Kind::Udp(u) => udp_info(u, &mut info),
            Kind::Pair(p) => relay::pair_info(p, &mut info),
            Kind::UnixFresh(f) => unix::fresh_info(f, &mut info),
            Kind::Unix(c) => unix::conn_info(c, &mut info),
            Kind::UnixDgram(d) => unix::dgram_info(d, &mut info),
            Kind::Busy => info.state = "busy".to_string(),
        }
        info
    }
}

fn fresh_info(f: &Fresh, info: &mut SocketInfo) {
    let local = f.socket.local_addr().ok().and_then(|a| a.as_socket());
    let bound = local.is_some_and(|a| a.port() != 0 || !a.ip().is_unspecified());
    info.fd = f.socket.as_raw_fd();
    info.family = Some(f.family);
    info.local = local;
    info.state = if bound { "bound" } else { "created" }.to_string();
    info.tcp_state = tcp::state_of(info.fd).ok();
}

fn listener_info(l: &Listener, info: &mut SocketInfo) {
    info.role = Role::Listener;
    info.fd = l.fd();
    match l.unix_local() {
        Some(local) => {
            info.unix = Some(UnixInfo {
                dgram: false,
                local,
                peer: None,
                cred: None,
            });
        }
        None => {
            info.family = Some(l.family());
            info.local = l.local();
        }
    }
    info.state = "listening".to_string();
    info.accepted = l.accepted();
    if !matches!(l.service, Service::Manual) {
        info.mode = Mode::Watched;
    }
    if info.unix.is_none() {
        info.tcp_state = tcp::state_of(info.fd).ok();
    }
    relay::listener_state(l, info);
    if matches!(l.service, Service::Bench(_)) {
        info.state = "bench server: sink, echo (TCP and UDP)".to_string();
    }
}

fn conn_info(c: &Conn, info: &mut SocketInfo) {
    let p = c.tube.progress();
    info.role = Role::Stream;
    info.fd = c.fd();
    info.family = Some(c.family());
    info.mode = c.tube.mode();
    info.local = Some(c.local);
    info.peer = Some(c.peer);
    let words = c.tube.state_words();
    info.state = if words.is_empty() {
        "connected".to_string()
    } else {
        words.join(", ")
    };
    info.bytes_in = p.bytes_in;
    info.bytes_out = c.tube.bytes_out();
    info.tcp_state = c.kernel_state();
    info.outside = c.tube.outside;
    info.tls = c.tls();
}

fn program_info(p: &Program, info: &mut SocketInfo) {
    info.role = Role::Program;
    info.mode = p.tube.mode();
    let mut words = vec![if p.exited().is_some() {
        "exited"
    } else {
        "running"
    }];
    words.extend(p.tube.state_words());
    info.state = words.join(", ");
    info.bytes_in = p.tube.progress().bytes_in;
    info.bytes_out = p.tube.bytes_out();
    info.program = Some((p.pid, p.command.to_string()));
    info.outside = true;
}

fn udp_info(u: &UdpSock, info: &mut SocketInfo) {
    let p = u.progress();
    let (bytes_out, datagrams_out) = u.sent();
    info.role = Role::Datagram;
    info.fd = u.fd();
    info.family = Some(u.family);
    info.mode = u.mode();
    info.local = u.local();
    info.peer = u.peer();
    let bound = info.local.is_some_and(|a| a.port() != 0);
    info.state = match (info.peer.is_some(), bound) {
        (true, _) => "connected",
        (false, true) => "bound",
        (false, false) => "created",
    }
    .to_string();
    info.bytes_in = p.bytes_in;
    info.bytes_out = bytes_out;
    info.datagrams_in = p.datagrams;
    info.datagrams_out = datagrams_out;
}

/// A connection this lab closed: enough to settle reads of what it sent
/// and to name it in the kernel's TIME_WAIT rows.
#[derive(Clone)]
struct Departed {
    local: SocketAddr,
    peer: SocketAddr,
    bytes_out: u64,
    name: Arc<str>,
    /// It ended with a reset (sent or received), not a FIN.
    reset: bool,
}

struct Inner {
    /// Every entry, by name.
    sockets: Mutex<BTreeMap<Arc<str>, Arc<Entry>>>,
    /// Numbers entries in creation order.
    next_id: AtomicU64,
    /// Numbers unnamed sockets (`s1`, `s2`, …).
    next_auto: AtomicU64,
    /// Where background events go.
    events: Sink,
    /// Closed connections, newest last.
    departed: Mutex<VecDeque<Departed>>,
    /// `trace`, when on.
    tracer: Mutex<Option<Arc<Tracer>>>,
    /// The local address each closed socket had, by name (the latest).
    closed_addrs: Mutex<HashMap<Arc<str>, SocketAddr>>,
    /// Connections by (local, peer) address: the name that holds each.
    conn_index: Mutex<HashMap<(SocketAddr, SocketAddr), Arc<str>>>,
    /// The names of listeners (checked on use).
    listener_names: Mutex<Vec<Arc<str>>>,
    /// Names of outside streams that `close` took out of the lab (their
    /// last events may still be on their way).
    closed_outside: Mutex<VecDeque<Arc<str>>>,
    /// The certificate TLS servers use when given none, made at first use.
    session_cert: Mutex<Option<Arc<crate::tls::SessionCert>>>,
}

/// Every socket and program of one session, by name. Cheap to clone
/// (shared).
#[derive(Clone)]
pub struct Lab {
    inner: Arc<Inner>,
}

impl Adopt for Lab {
    fn adopt(&self, conn: Arc<Conn>, order: u64, k: u64) -> Result<()> {
        let entry = Entry::new(conn.tube.name.clone(), (order, k), Kind::Conn(conn));
        self.insert(entry)
    }

    fn events(&self) -> Sink {
        self.inner.events.clone()
    }

    fn retire(&self, conn: Arc<Conn>, listener: Arc<str>) {
        let lab = self.clone();
        tokio::spawn(async move { lab.retire_conn(conn, listener).await });
    }

    fn adopt_unix(&self, conn: Arc<UnixConn>, order: u64, k: u64) -> Result<()> {
        let entry = Entry::new(conn.tube.name.clone(), (order, k), Kind::Unix(conn));
        self.insert(entry)
    }

    fn retire_unix(&self, conn: Arc<UnixConn>, listener: Arc<str>) {
        let lab = self.clone();
        tokio::spawn(async move { lab.retire_unix_conn(conn, listener).await });
    }

    fn host(&self) -> Arc<dyn crate::relay::Host> {
        Arc::new(self.clone())
    }
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
                events: Sink::new(tx, Budget::new(EVENT_BUDGET)),
                departed: Mutex::new(VecDeque::new()),
                tracer: Mutex::new(None),
                closed_addrs: Mutex::new(HashMap::new()),
                closed_outside: Mutex::new(VecDeque::new()),
                conn_index: Mutex::new(HashMap::new()),
                listener_names: Mutex::new(Vec::new()),
                session_cert: Mutex::new(None),
            }),
        };
        (lab, rx)
    }

    // ----- names -------------------------------------------------------

    fn get(&self, name: &str) -> Result<Arc<Entry>> {
        lock(&self.inner.sockets)
            .get(name)
            .cloned()
            .ok_or_else(|| NetError::NoSuchSocket(name.to_string()))
    }

    /// Whether a socket of this name exists.
    pub fn exists(&self, name: &str) -> bool {
        lock(&self.inner.sockets).contains_key(name)
    }

    fn sorted(&self) -> Vec<Arc<Entry>> {
        let mut v: Vec<_> = lock(&self.inner.sockets).values().cloned().collect();
        v.sort_by_key(|e| e.order);
        v
    }

    /// The names of every socket, in creation order.
    pub fn names(&self) -> Vec<String> {
        self.sorted().iter().map(|e| e.name.to_string()).collect()
    }

    /// A snapshot of every socket, in creation order.
    pub fn list(&self) -> Vec<SocketInfo> {
        self.sorted()
            .iter()
            .map(|e| self.annotate(e.info(), e.place.as_deref()))
            .collect()
    }

    /// Whether `name` is a stream whose other end is outside the lab (see
    /// [`SocketInfo::outside`]); `false` for anything else, or no such name.
    /// A stream closed a moment ago counts as it was: its last events
    /// (end of stream, exit) arrive after `close` took it out of the lab.
    pub fn is_outside(&self, name: &str) -> bool {
        match self.get(name) {
            Ok(e) => e.tube().is_ok_and(|t| t.outside),
            Err(_) => lock(&self.inner.closed_outside)
                .iter()
                .any(|n| &**n == name),
        }
    }

    fn remember_outside(&self, name: &Arc<str>) {
        let mut closed = lock(&self.inner.closed_outside);
        if closed.len() >= DEPARTED_MAX {
            closed.pop_front();
        }
        closed.push_back(name.clone());
    }

    /// A snapshot of one socket.
    ///
    /// # Errors
    /// No such socket.
    pub fn info(&self, name: &str) -> Result<SocketInfo> {
        let e = self.get(name)?;
        Ok(self.annotate(e.info(), e.place.as_deref()))
    }

    /// A connection to a listener of this lab that nobody has accepted yet
    /// waits in that listener's accept queue: the handshake is done, but no
    /// program talks to it. Says so in its state.
    fn annotate(&self, mut info: SocketInfo, place: Option<&Place>) -> SocketInfo {
        if info.unix.is_some() {
            return self.annotate_unix(info);
        }
        let (Role::Stream, Some(local), Some(peer)) = (info.role, info.local, info.peer) else {
            return info;
        };
        if info.state != "connected" || self.find_conn(peer, local).is_some() {
            return info;
        }
        let queue = self.listeners().into_iter().find(|l| {
            matches!(l.service, Service::Manual | Service::Events(_)) && l.listens_at(place, peer)
        });
        if let Some(l) = queue {
            info.state = format!("connected, in {}'s accept queue", l.name);
        }
        info
    }

    /// Picks the name for a new socket: the one asked for (which must be
    /// free), or the next of `s1`, `s2`, ….
    fn claim_name(&self, wanted: Option<&str>) -> Result<Arc<str>> {
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

    /// The next creation number.
    fn next_order(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::SeqCst)
    }

    fn insert(&self, entry: Arc<Entry>) -> Result<()> {
        {
            let mut map = lock(&self.inner.sockets);
            if map.contains_key(&entry.name) {
                return Err(NetError::NameTaken(entry.name.to_string()));
            }
            map.insert(entry.name.clone(), entry.clone());
        }
        self.index(&entry);
        Ok(())
    }

    /// Records where a connection or a listener can be found without
    /// looking at every entry (a server with thousands of clients). The
    /// index only points at names: what a name holds is checked on use,
    /// so an entry that left needs no unindexing.
    fn index(&self, entry: &Entry) {
        // Read under the entry's lock, indexed after it is let go of: the
        // index is taken before entries' locks elsewhere.
        let conn = match &*lock(&entry.kind) {
            Kind::Conn(c) => Some((c.local, c.peer)),
            Kind::Listener(_) => None,
            _ => return,
        };
        match conn {
            Some(key) => {
                lock(&self.inner.conn_index).insert(key, entry.name.clone());
            }
            None => lock(&self.inner.listener_names).push(entry.name.clone()),
        }
    }

    /// Adds a new entry named `name` in creation order.
    fn add(&self, name: Arc<str>, kind: Kind) -> Result<Arc<Entry>> {
        let entry = Entry::new(name, (self.next_order(), 0), kind);
        self.insert(entry.clone())?;
        Ok(entry)
    }

    // ----- finding ---------------------------------------------------------

    fn listeners(&self) -> Vec<Arc<Listener>> {
        let mut names = lock(&self.inner.listener_names);
        let sockets = lock(&self.inner.sockets);
        let mut found = Vec::new();
        names.retain(|n| match sockets.get(n).and_then(|e| e.listener()) {
            Some(l) if !found.iter().any(|f: &Arc<Listener>| Arc::ptr_eq(f, &l)) => {
                found.push(l);
                true
            }
            _ => false,
        });
        found
    }

    /// Whether connecting to `to` reaches a listener of this lab whose
    /// clients become tubes of the lab (so what the connection exchanges
    /// is settled within the lab).
    fn lab_tubes_at(&self, from: Option<&Place>, to: SocketAddr) -> bool {
        self.listeners().iter().any(|l| {
            matches!(
                l.service,
                Service::Manual | Service::Events(_) | Service::Relay(_) | Service::Chat(_)
            ) && l.listens_at(from, to)
        })
    }

    /// The lab's connection from `local` to `peer`.
    fn find_conn(&self, local: SocketAddr, peer: SocketAddr) -> Option<Arc<Conn>> {
        let mut index = lock(&self.inner.conn_index);
        let name = index.get(&(local, peer))?.clone();
        let found = lock(&self.inner.sockets)
            .get(&name)
            .and_then(|e| match &*lock(&e.kind) {
                Kind::Conn(c) if c.local == local && c.peer == peer => Some(c.clone()),
                _ => None,
            });
        if found.is_none() {
            index.remove(&(local, peer));
        }
        found
    }

    /// The watched connection of this lab at the other end of `c`.
    fn lab_peer(&self, c: &Conn) -> Option<Arc<Conn>> {
        self.find_conn(c.peer, c.local)
            .filter(|p| p.tube.progress().watched)
    }

    /// The watched UDP sockets of this lab that a datagram `from` sends to
    /// `to` reaches: one for a unicast address; every receiver for a
    /// broadcast or multicast one in the classroom.
    fn udp_receivers(&self, from: &UdpSock, to: SocketAddr) -> Vec<Arc<UdpSock>> {
        let all: Vec<Arc<UdpSock>> = lock(&self.inner.sockets)
            .values()
            .filter_map(|e| match &*lock(&e.kind) {
                Kind::Udp(u)
                    if u.receives(from, to) && netns::reliable(from.place(), u.place()) =>
                {
                    Some(u.clone())
                }
                _ => None,
            })
            .collect();
        let fan_out =
            from.place().is_some() && (netns::is_lab_broadcast(to.ip()) || to.ip().is_multicast());
        if fan_out {
            all
        } else {
            all.into_iter().take(1).collect()
        }
    }

    /// Bytes the lab peer of `c` has handed to the network that `c` has not
    /// read yet (0 when the peer is not in this lab).
    fn pending_from_peer(&self, c: &Conn) -> u64 {
        let read = c.tube.progress().bytes_in;
        if let Some(p) = self.find_conn(c.peer, c.local) {
            return p.handed().saturating_sub(read);
        }
        lock(&self.inner.departed)
            .iter()
            .rev()
            .find(|d| d.local == c.peer && d.peer == c.local)
            .map_or(0, |d| d.bytes_out.saturating_sub(read))
    }

    // ----- memory of closed sockets ---------------------------------------

    /// The local address a closed socket of this name had (so a script can
    /// name the port of a server it closed, to restart it there).
    pub fn closed_addr(&self, name: &str) -> Option<SocketAddr> {
        lock(&self.inner.closed_addrs).get(name).copied()
    }

    fn remember_addr(&self, name: &Arc<str>, local: SocketAddr) {
        let mut closed = lock(&self.inner.closed_addrs);
        if closed.len() >= DEPARTED_MAX {
            closed.clear();
        }
        closed.insert(name.clone(), local);
    }

    fn remember_departed(&self, c: &Conn) {
        let mut departed = lock(&self.inner.departed);
        departed.push_back(Departed {
            local: c.local,
            peer: c.peer,
            bytes_out: c.tube.bytes_out(),
            name: c.tube.name.clone(),
            reset: c.ends_in_reset(),
        });
        if departed.len() > DEPARTED_MAX {
            departed.pop_front();
        }
    }

    /// Places [`Event::Mark`]`(id)` in the stream of events, after every
    /// event sent so far (waits while the channel is full).
    pub async fn mark(&self, id: u64) {
        let _ = self.inner.events.send(Event::Mark(id)).await;
    }

    /// Forgets what the lab remembers of closed sockets (their addresses,
    /// the connections behind TIME_WAIT rows, outside streams still to
    /// settle) and starts unnamed sockets at `s1` again: after
    /// [`Lab::close_all`], the lab is as a new one (a guided lesson's
    /// `back`). The kernel's TIME_WAIT entries stay, unnamed.
    pub fn forget_closed(&self) {
        lock(&self.inner.departed).clear();
        lock(&self.inner.closed_addrs).clear();
        lock(&self.inner.closed_outside).clear();
        self.inner.next_auto.store(1, Ordering::Relaxed);
    }

    /// Connections this lab closed that the kernel still holds in
    /// TIME_WAIT: (the closed socket's name, the row from the OS's socket
    /// table). The side that closed first holds TIME_WAIT.
    pub fn lingering(&self) -> Vec<(String, TableRow)> {
        let departed: Vec<_> = lock(&self.inner.departed).iter().cloned().collect();
        if departed.is_empty() {
            return Vec::new();
        }
        let ports: Vec<u16> = departed.iter().map(|d| d.local.port()).collect();
        let mut out: Vec<(String, TableRow)> = tcp::time_wait_for(&ports)
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
}

/// Fails when `addr` is not of the socket's family.
fn check_family(name: &str, family: Family, addr: SocketAddr) -> Result<()> {
    if Family::of(&addr) != family {
        return Err(NetError::Family {
            name: name.to_string(),
            family: family.label(),
            addr,
        });
    }
    Ok(())
}
