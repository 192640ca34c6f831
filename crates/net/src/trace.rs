//! `trace`: the segments of this lab's own connections as they cross the
//! loopback interface and, while there are lab hosts, the LAN's bridge
//! (capture), or, without the privilege to capture, the kernel states each
//! connection passes through (observation).
//!
//! A capture also marks what TCP repeats, as Wireshark does: a segment
//! whose data (or SYN, FIN) was seen before is a retransmission; a bare
//! ACK that repeats the last one of its direction (same ack, same window)
//! is a duplicate ACK.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::Result;
use crate::event::Event;
use crate::settle::lock;
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

/// A running `trace`: the capture (or the observer's memory of states).
pub(crate) struct Tracer {
    mode: TraceMode,
    capture: Option<Capture>,
    /// The capture on the LAN's bridge, while there is a LAN.
    lan: Mutex<Option<LanCapture>>,
    /// What each direction of each connection sent, for the notes.
    repeats: Mutex<HashMap<Conn, Direction>>,
    ports: Arc<PortSet>,
    /// The ports the LAN capture keeps.
    lan_ports: Arc<PortSet>,
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

/// A capture of the LAN's bridge, and the LAN it belongs to.
struct LanCapture {
    /// The LAN's namespace.
    place: Arc<crate::netns::Place>,
    /// The capture.
    capture: Capture,
    /// Its segments.
    rx: mpsc::Receiver<Segment>,
}

/// One direction of a connection, as the capture saw it: the end of the
/// highest sequence sent, and the last bare ACK with how often it came.
#[derive(Default)]
struct Direction {
    /// The end of the highest sequence seen (seq + len, SYN and FIN count
    /// one), once anything was.
    high: Option<u32>,
    /// The last bare ACK: ack, window, and how many duplicates of it.
    last_ack: Option<(u32, u16, u32)>,
}

impl Direction {
    /// What `s` repeats, if anything: `retransmission`, `dup ACK N`.
    fn note(&mut self, s: &Segment) -> Option<String> {
        use crate::tcp::Flags;
        let syn_fin =
            u32::from(s.flags.contains(Flags::SYN)) + u32::from(s.flags.contains(Flags::FIN));
        let span = u32::try_from(s.payload_len)
            .unwrap_or(u32::MAX)
            .saturating_add(syn_fin);
        let end = s.seq.wrapping_add(span);
        let mut note = None;
        if span > 0 {
            // Seen before: it ends at or before the highest end so far.
            if let Some(high) = self.high {
                if high.wrapping_sub(end) as i32 >= 0 {
                    note = Some("retransmission".to_string());
                }
            }
            self.last_ack = None;
        } else if s.flags.contains(Flags::ACK) && !s.flags.contains(Flags::RST) {
            match &mut self.last_ack {
                Some((ack, win, dups)) if *ack == s.ack && *win == s.window => {
                    *dups += 1;
                    note = Some(format!("dup ACK {dups}"));
                }
                _ => self.last_ack = Some((s.ack, s.window, 0)),
            }
        }
        if self.high.is_none_or(|h| end.wrapping_sub(h) as i32 > 0) {
            self.high = Some(end);
        }
        note
    }
}

/// What observation last saw of a connection: its name, its state, and
/// when it was first seen.
type Observed = (Arc<str>, TcpState, u64);

/// The longest `trace` waits for in-flight data to be acknowledged after a
/// command (a delayed ACK is at most a few hundred milliseconds).
const ACK_SETTLE: Duration = Duration::from_secs(2);

/// At most this many directions of connections are remembered for the
/// retransmission and duplicate-ACK marks.
const MAX_DIRECTIONS: usize = 8192;

/// The longest retransmission timer `trace` waits for after a command (a
/// timer backed off further is not waited for).
const RTO_SETTLE: Duration = Duration::from_secs(8);

/// What `trace` needs to know of the lab after a command.
#[derive(Default)]
pub(crate) struct View {
    /// The local port of every TCP socket of the root namespace (fresh
    /// and bound, listening, connected).
    pub(crate) ports: Vec<u16>,
    /// The same, of the lab hosts' sockets (they cross the LAN).
    pub(crate) lan_ports: Vec<u16>,
    /// Live connections, in listing order.
    pub(crate) conns: Vec<ConnView>,
    /// Listeners: name and local address.
    pub(crate) listeners: Vec<(Arc<str>, SocketAddr)>,
    /// Connections the lab closed, newest last: local, peer, name.
    pub(crate) departed: Vec<(SocketAddr, SocketAddr, Arc<str>)>,
    /// Connections (local, peer) that ended with a reset, sent or
    /// received: they went from where they were straight to CLOSED.
    pub(crate) resets: Vec<(SocketAddr, SocketAddr)>,
}

/// One live connection, as `trace` sees it.
pub(crate) struct ConnView {
    /// Its name.
    pub(crate) name: Arc<str>,
    /// Local address.
    pub(crate) local: SocketAddr,
    /// Peer address.
    pub(crate) peer: SocketAddr,
    /// Its descriptor (for TCP_INFO).
    pub(crate) fd: RawFd,
    /// The kernel's state now.
    pub(crate) state: Option<TcpState>,
}

impl Tracer {
    /// Starts tracing. Returns the tracer, and why it is not a capture
    /// when a capture was possible to want (or, capturing the LAN's
    /// bridge alone, why not the loopback interface).
    ///
    /// # Errors
    /// A capture was required and is not possible.
    pub(crate) fn start(wish: TraceWish, view: &View) -> Result<(Tracer, Option<String>)> {
        let ports = Arc::new(PortSet::new());
        let (mode, capture, rx, why) = match wish {
            TraceWish::Observe => (TraceMode::Observe, None, None, None),
            TraceWish::Auto | TraceWish::Capture => match Capture::start(ports.clone()) {
                Ok((c, rx)) => (TraceMode::Capture, Some(c), Some(rx), None),
                // Without root, in a user namespace of the shell's own:
                // the machine's loopback cannot be captured, the LAN's
                // bridge (in a namespace this user owns) can.
                Err(CaptureError::NotPermitted(_))
                    if crate::hosts::rootless::active() && crate::netns::lan_place().is_some() =>
                {
                    let why = "capturing on the loopback interface needs root or CAP_NET_RAW";
                    (TraceMode::Capture, None, None, Some(why.to_string()))
                }
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
        let tracer = Tracer {
            mode,
            capture,
            lan: Mutex::new(None),
            repeats: Mutex::new(HashMap::new()),
            ports,
            lan_ports: Arc::new(PortSet::new()),
            segments: Mutex::new(rx),
            relative: Mutex::new(Relative::new()),
            states: Mutex::new(HashMap::new()),
            seen: std::sync::atomic::AtomicU64::new(0),
        };
        tracer.track_ports(view);
        tracer.follow_lan();
        tracer.observe_states(view, false);
        Ok((tracer, why))
    }

    /// The mode it runs in.
    pub(crate) fn mode(&self) -> TraceMode {
        self.mode
    }

    /// Stops a capture.
    pub(crate) fn stop(self) {
        if let Some(c) = self.capture {
            c.stop();
        }
        drop(lock(&self.lan).take());
    }

    /// Captures on the LAN's bridge while there is a LAN (hosts made
    /// after `trace on` included); a LAN that cannot be captured is left
    /// out (the loopback capture goes on).
    fn follow_lan(&self) {
        if self.mode != TraceMode::Capture {
            return;
        }
        let now = crate::netns::lan_place();
        let mut lan = lock(&self.lan);
        let same = match (&*lan, &now) {
            (Some(c), Some(p)) => Arc::ptr_eq(&c.place, p),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        *lan = now.and_then(|place| {
            let (capture, rx) = Capture::start_on_lan(&place, self.lan_ports.clone()).ok()?;
            Some(LanCapture { place, capture, rx })
        });
    }

    /// After a command: lets the connections settle (data acknowledged),
    /// then returns what crossed (capture) or which states were passed
    /// through (observation) as events, so the transcript holds exactly
    /// what the command caused.
    pub(crate) async fn settle(&self, view: &View) -> Vec<Event> {
        self.track_ports(view);
        // In-flight data and its ACKs first: they belong to this command.
        // A connection whose retransmission timer backed off (a link that
        // lost, and now carries again: no host's link is down or lossy)
        // gets until that timer fires, and a little more, for its next
        // retransmission to be acknowledged: it belongs to this command too.
        let carries = crate::netns::all_reliable();
        for c in &view.conns {
            let limit = tcp::tcp_info(c.fd).map_or(ACK_SETTLE, |i| {
                if carries && i.unacked > 0 {
                    ACK_SETTLE.max(i.rto.min(RTO_SETTLE) + Duration::from_millis(500))
                } else {
                    ACK_SETTLE
                }
            });
            let _ = tcp::wait_info(c.fd, "data acknowledged", limit, |i| {
                i.unacked == 0 && i.notsent_bytes.unwrap_or(0) == 0
            })
            .await;
        }
        match self.mode {
            TraceMode::Capture => {
                if let Some(c) = &self.capture {
                    let _ = c.flush(ACK_SETTLE).await;
                }
                self.follow_lan();
                let mut segments = Vec::new();
                if let Some(rx) = lock(&self.segments).as_mut() {
                    while let Ok(s) = rx.try_recv() {
                        segments.push(s);
                    }
                }
                let on_lan = lock(&self.lan).is_some();
                if on_lan {
                    self.flush_lan().await;
                    if let Some(l) = lock(&self.lan).as_mut() {
                        while let Ok(s) = l.rx.try_recv() {
                            segments.push(s);
                        }
                    }
                    // Loopback and LAN, in the order they were read.
                    segments.sort_by_key(|s| s.ts);
                }
                segments
                    .iter()
                    .map(|s| self.segment_event(view, s))
                    .collect()
            }
            TraceMode::Observe => self.observe_states(view, true),
        }
    }

    /// Waits until the LAN capture has read what crossed the bridge so far.
    async fn flush_lan(&self) {
        // A flush cannot hold the lock across its wait: take the capture
        // out for the wait and put it back.
        let taken = lock(&self.lan).take();
        if let Some(l) = taken {
            let _ = l.capture.flush(ACK_SETTLE).await;
            let mut slot = lock(&self.lan);
            if slot.is_none() {
                *slot = Some(l);
            }
        }
    }

    /// Every port of the lab's TCP sockets, live or closed, is traced.
    fn track_ports(&self, view: &View) {
        for p in &view.ports {
            self.ports.insert(*p);
        }
        for p in &view.lan_ports {
            self.lan_ports.insert(*p);
        }
    }

    /// The name of the socket at `addr` talking to `other`: a socket of
    /// the lab (live, or closed and remembered), else the address.
    fn name_at(view: &View, addr: SocketAddr, other: SocketAddr) -> String {
        if let Some(c) = view
            .conns
            .iter()
            .find(|c| c.local == addr && c.peer == other)
        {
            return c.name.to_string();
        }
        if let Some(d) = view
            .departed
            .iter()
            .rev()
            .find(|d| d.0 == addr && d.1 == other)
        {
            return d.2.to_string();
        }
        if let Some(l) = view
            .listeners
            .iter()
            .find(|l| crate::model::reaches(l.1, addr))
        {
            return l.0.to_string();
        }
        addr.to_string()
    }

    fn segment_event(&self, view: &View, s: &Segment) -> Event {
        let rel = lock(&self.relative).observe(s);
        let note = {
            let mut repeats = lock(&self.repeats);
            if repeats.len() >= MAX_DIRECTIONS && !repeats.contains_key(&(s.src, s.dst)) {
                // Bounded: the oldest knowledge goes (a repeat may then
                // go unmarked once).
                repeats.clear();
            }
            repeats.entry((s.src, s.dst)).or_default().note(s)
        };
        Event::Segment {
            from: Self::name_at(view, s.src, s.dst),
            to: Self::name_at(view, s.dst, s.src),
            flags: tcp::flags_text(s),
            seq: rel.seq,
            ack: rel.ack,
            window: rel.window,
            len: s.payload_len,
            note,
        }
    }

    /// Observation: compares each connection's state with the last one
    /// seen and returns the paths between, in creation order.
    fn observe_states(&self, view: &View, report: bool) -> Vec<Event> {
        let table = tcp::socket_table().unwrap_or_default();
        type Seen = ((SocketAddr, SocketAddr), Arc<str>, TcpState, TcpState, u64);
        let mut now: Vec<Seen> = Vec::new();
        let mut states = lock(&self.states);
        // Live connections of the lab, in listing order. One whose local
        // port is a listener's was accepted (it came from LISTEN); any other
        // connected out (from CLOSED).
        let listening: Vec<u16> = view.listeners.iter().map(|l| l.1.port()).collect();
        for c in &view.conns {
            let Some(state) = c.state else {
                continue;
            };
            let key = (c.local, c.peer);
            let first = states.get(&key).map_or_else(
                || self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                |s| s.2,
            );
            let before = match states.get(&key) {
                Some((_, s, _)) => *s,
                // New since the last look: a client came from CLOSED, an
                // accepted connection from its listener's LISTEN.
                None if listening.contains(&c.local.port()) => TcpState::Listen,
                None => TcpState::Close,
            };
            now.push((key, c.name.clone(), before, state, first));
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
                let path = if after == TcpState::Close && view.resets.contains(&key) {
                    // A reset skips the orderly goodbye.
                    vec![before, after]
                } else {
                    tcp::path(before, after, closer)
                };
                events.push(Event::States {
                    socket: name.clone(),
                    path,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::Flags;

    fn seg(flags: Flags, seq: u32, ack: u32, len: usize) -> Segment {
        Segment {
            src: "192.168.24.1:40000".parse().unwrap(),
            dst: "192.168.24.148:5556".parse().unwrap(),
            flags,
            seq,
            ack,
            window: 502,
            window_scale: None,
            mss: None,
            payload_len: len,
            ts: std::time::Instant::now(),
        }
    }

    #[test]
    fn repeats_are_marked_as_wireshark_does() {
        let mut d = Direction::default();
        let ack = Flags::ACK;
        let psh = Flags::PSH | Flags::ACK;
        assert_eq!(d.note(&seg(Flags::SYN, 1000, 0, 0)), None);
        // The SYN again: its sequence number was seen.
        assert_eq!(
            d.note(&seg(Flags::SYN, 1000, 0, 0)).as_deref(),
            Some("retransmission")
        );
        assert_eq!(d.note(&seg(ack, 1001, 1, 0)), None);
        assert_eq!(d.note(&seg(psh, 1001, 1, 10)), None);
        assert_eq!(d.note(&seg(psh, 1011, 1, 10)), None);
        // The first data again, after the second.
        assert_eq!(
            d.note(&seg(psh, 1001, 1, 10)).as_deref(),
            Some("retransmission")
        );
        assert_eq!(d.note(&seg(psh, 1021, 1, 5)), None);
        // The same bare ACK, three times: two duplicates.
        let mut r = Direction::default();
        assert_eq!(r.note(&seg(ack, 1, 1021, 0)), None);
        assert_eq!(r.note(&seg(ack, 1, 1021, 0)).as_deref(), Some("dup ACK 1"));
        assert_eq!(r.note(&seg(ack, 1, 1021, 0)).as_deref(), Some("dup ACK 2"));
        // A new ACK is not one.
        assert_eq!(r.note(&seg(ack, 1, 1026, 0)), None);
        // Sequence numbers wrap.
        let mut w = Direction::default();
        assert_eq!(w.note(&seg(psh, u32::MAX - 4, 1, 10)), None);
        assert_eq!(w.note(&seg(psh, 5, 1, 10)), None);
        assert_eq!(
            w.note(&seg(psh, u32::MAX - 4, 1, 10)).as_deref(),
            Some("retransmission")
        );
    }
}
