//! `trace`: the segments of this lab's own connections as they cross the
//! loopback interface (capture), or, without the privilege to capture, the
//! kernel states each connection passes through (observation).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::Result;
use crate::event::Event;
use crate::lab::{lock, Lab, State};
use crate::tcp::{self, Capture, CaptureError, PortSet, Relative, Segment, TcpState};

/// How `trace` sees the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMode {
    /// A real capture on `lo` (AF_PACKET): every segment, as it crossed.
    Capture,
    /// No capture: the kernel's state of each socket, read after each
    /// command, and the states TCP's diagram passes through between.
    Observe,
}

impl TraceMode {
    /// `capture` or `observe`.
    pub fn name(self) -> &'static str {
        match self {
            TraceMode::Capture => "capture",
            TraceMode::Observe => "observe",
        }
    }
}

/// What `trace on` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceWish {
    /// Capture where permitted, observe otherwise.
    Auto,
    /// Capture or fail.
    Capture,
    /// Observe, even where capture would work.
    Observe,
}

pub(crate) struct Tracer {
    mode: TraceMode,
    capture: Option<Capture>,
    ports: Arc<PortSet>,
    segments: Mutex<Option<mpsc::Receiver<Segment>>>,
    relative: Mutex<Relative>,
    /// Observation: the last state seen of each connection, by its
    /// (local, peer) addresses: the name it had, the state, and when it was
    /// first seen (connections that left are reported in that order).
    states: Mutex<HashMap<Conn, Observed>>,
    /// Counts first sightings.
    seen: std::sync::atomic::AtomicU64,
}

/// A connection, by its (local, peer) addresses.
type Conn = (SocketAddr, SocketAddr);

/// What observation last saw of a connection: its name, its state, and
/// when it was first seen.
type Observed = (Arc<str>, TcpState, u64);

/// The longest `trace` waits for in-flight data to be acknowledged after a
/// command (a delayed ACK is at most a few hundred milliseconds).
const ACK_SETTLE: Duration = Duration::from_secs(2);

impl Lab {
    /// Starts tracing. Returns the mode, and why it is not a capture when
    /// a capture was possible to want.
    ///
    /// # Errors
    /// A capture was required and is not possible.
    pub fn trace_on(&self, wish: TraceWish) -> Result<(TraceMode, Option<String>)> {
        self.trace_off();
        let ports = Arc::new(PortSet::new());
        let (mode, capture, rx, why) = match wish {
            TraceWish::Observe => (TraceMode::Observe, None, None, None),
            TraceWish::Auto | TraceWish::Capture => match Capture::start(ports.clone()) {
                Ok((c, rx)) => (TraceMode::Capture, Some(c), Some(rx), None),
                Err(e) if wish == TraceWish::Auto => {
                    let why = match e {
                        CaptureError::NotPermitted(_) => {
                            "capturing needs root or CAP_NET_RAW".to_string()
                        }
                        other => other.to_string(),
                    };
                    (TraceMode::Observe, None, None, Some(why))
                }
                Err(e) => {
                    return Err(crate::NetError::state(
                        "trace",
                        format!("cannot capture: {e}"),
                    ));
                }
            },
        };
        let tracer = Arc::new(Tracer {
            mode,
            capture,
            ports,
            segments: Mutex::new(rx),
            relative: Mutex::new(Relative::new()),
            states: Mutex::new(HashMap::new()),
            seen: std::sync::atomic::AtomicU64::new(0),
        });
        *lock(&self.inner.tracer) = Some(tracer.clone());
        self.track_ports(&tracer);
        self.observe_states(&tracer, false);
        Ok((mode, why))
    }

    /// Stops tracing.
    pub fn trace_off(&self) {
        if let Some(t) = lock(&self.inner.tracer).take() {
            if let Some(c) = Arc::try_unwrap(t).ok().and_then(|t| t.capture) {
                c.stop();
            }
        }
    }

    /// The mode `trace` runs in, if it is on.
    pub fn tracing(&self) -> Option<TraceMode> {
        lock(&self.inner.tracer).as_ref().map(|t| t.mode)
    }

    /// After a command: lets the connections settle (data acknowledged),
    /// then reports what crossed (capture) or which states were passed
    /// through (observation) as events, so the transcript holds exactly
    /// what the command caused.
    pub async fn trace_settle(&self) {
        let Some(tracer) = lock(&self.inner.tracer).clone() else {
            return;
        };
        self.track_ports(&tracer);
        // In-flight data and its ACKs first: they belong to this command.
        for stream in self.tcp_streams() {
            let _ = tcp::wait_info(stream.as_raw_fd(), "data acknowledged", ACK_SETTLE, |i| {
                i.unacked == 0 && i.notsent_bytes.unwrap_or(0) == 0
            })
            .await;
        }
        match tracer.mode {
            TraceMode::Capture => {
                if let Some(c) = &tracer.capture {
                    let _ = c.flush(ACK_SETTLE).await;
                }
                let mut segments = Vec::new();
                if let Some(rx) = lock(&tracer.segments).as_mut() {
                    while let Ok(s) = rx.try_recv() {
                        segments.push(s);
                    }
                }
                for s in segments {
                    let ev = self.segment_event(&tracer, &s);
                    let _ = self.inner.events.send(ev).await;
                }
            }
            TraceMode::Observe => {
                for ev in self.observe_states(&tracer, true) {
                    let _ = self.inner.events.send(ev).await;
                }
            }
        }
    }

    /// Every port of this lab's TCP sockets, live or closed, is traced.
    fn track_ports(&self, tracer: &Tracer) {
        for e in lock(&self.inner.sockets).values() {
            if let Some(p) = e.local_port() {
                tracer.ports.insert(p);
            }
        }
    }

    fn tcp_streams(&self) -> Vec<Arc<tokio::net::TcpStream>> {
        lock(&self.inner.sockets)
            .values()
            .filter_map(|e| match &*lock(&e.state) {
                State::Stream(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    /// The name of the socket at `addr` talking to `other`: a socket of
    /// this lab (live, or closed and remembered), else the address.
    fn name_at(&self, addr: SocketAddr, other: SocketAddr) -> String {
        let sockets = lock(&self.inner.sockets);
        if let Some(e) = sockets
            .values()
            .find(|e| *lock(&e.addrs) == Some((addr, other)))
        {
            return e.name.to_string();
        }
        if let Some(name) = self.departed_name(addr, other) {
            return name;
        }
        if let Some(e) = sockets.values().find(|e| e.listens_at(addr)) {
            return e.name.to_string();
        }
        addr.to_string()
    }

    fn segment_event(&self, tracer: &Tracer, s: &Segment) -> Event {
        let rel = lock(&tracer.relative).observe(s);
        Event::Segment {
            from: self.name_at(s.src, s.dst),
            to: self.name_at(s.dst, s.src),
            flags: tcp::flags_text(s),
            seq: rel.seq,
            ack: rel.ack,
            window: rel.window,
            len: s.payload_len,
        }
    }

    /// Observation: compares each connection's state with the last one
    /// seen and returns the paths between, in creation order.
    fn observe_states(&self, tracer: &Tracer, report: bool) -> Vec<Event> {
        let table = tcp::socket_table().unwrap_or_default();
        type Seen = ((SocketAddr, SocketAddr), Arc<str>, TcpState, TcpState, u64);
        let mut now: Vec<Seen> = Vec::new();
        let mut states = lock(&tracer.states);
        // Live connections of the lab, in listing order. One whose local
        // port is a listener's was accepted (it came from LISTEN); any other
        // connected out (from CLOSED).
        let list = self.list();
        let listening: Vec<u16> = list
            .iter()
            .filter(|i| i.role == crate::Role::Listener)
            .filter_map(|i| i.local.map(|a| a.port()))
            .collect();
        for info in list {
            let (Some(local), Some(peer), Some(state)) = (info.local, info.peer, info.tcp_state)
            else {
                continue;
            };
            let key = (local, peer);
            let name: Arc<str> = Arc::from(info.name.as_str());
            let first = states.get(&key).map_or_else(
                || {
                    tracer
                        .seen
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                },
                |s| s.2,
            );
            let before = match states.get(&key) {
                Some((_, s, _)) => *s,
                // New since the last look: a client came from CLOSED, an
                // accepted connection from its listener's LISTEN.
                None if listening.contains(&local.port()) => TcpState::Listen,
                None => TcpState::Close,
            };
            now.push((key, name, before, state, first));
        }
        // Connections that left the lab: the kernel's table says where
        // they are now (gone: CLOSED).
        let live: Vec<(SocketAddr, SocketAddr)> = now.iter().map(|n| n.0).collect();
        let mut gone: Vec<Seen> = Vec::new();
        for (key, (name, before, first)) in states.iter() {
            if live.contains(key) {
                continue;
            }
            let after = table
                .iter()
                .find(|r| r.local == key.0 && r.remote == key.1)
                .map_or(TcpState::Close, |r| r.state);
            gone.push((*key, name.clone(), *before, after, *first));
        }
        gone.sort_by_key(|g| g.4);
        now.extend(gone);
        let mut events = Vec::new();
        let mut next = HashMap::new();
        for (key, name, before, after, first) in now {
            if report && before != after {
                let closer = matches!(before, TcpState::Established);
                events.push(Event::States {
                    socket: name.clone(),
                    path: tcp::path(before, after, closer),
                });
            }
            if after != TcpState::Close {
                next.insert(key, (name, after, first));
            }
        }
        *states = next;
        events
    }
}

impl crate::lab::Entry {
    fn local_port(&self) -> Option<u16> {
        match &*lock(&self.state) {
            State::Listener(l) => l.local_addr().ok().map(|a| a.port()),
            State::Stream(s) => s.local_addr().ok().map(|a| a.port()),
            State::Fresh(s) => s
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .map(|a| a.port())
                .filter(|p| *p != 0),
            _ => None,
        }
    }
}
