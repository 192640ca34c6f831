//! Relays (`relay PORT to HOST PORT`, socat's `TCP-LISTEN,fork TCP:…`
//! with toxiproxy's faults): every client of a relay gets a *pair*, two
//! legs that are tubes (the client's connection and the relay's own
//! connection upstream), and every byte either way is an event.
//!
//! Each direction of a pair is a reader and a writer joined by a queue of
//! at most [`QUEUE_CHUNKS`] reads: the reader takes a read (at most 16
//! KiB), reports it, and queues it; the writer applies the faults in force
//! (latency, bandwidth, slices, a byte limit, a stall) and writes it to the
//! other leg. A full queue stops the reader, so a stalled or slow pair
//! holds at most [`PAIR_BUFFER`] bytes and TCP flow control slows the
//! sender. End of stream one way is a half-close the other way; a reset
//! one way resets the other leg.
//!
//! What a pair forwards is settled like everything else in the lab: a
//! direction publishes its [`Flow`] only after the bytes were written and
//! the lab's socket at the far end (if it is one) has reported them, so a
//! `send` into a relay returns when the bytes have come out of it.

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use socket2::Type;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::budget::Payload;
use crate::conn::{connect_socket, Accepts, Conn};
use crate::error::Result;
use crate::event::{Event, Sink, Way};
use crate::model::Family;
use crate::settle::lock;

/// How many reads one direction of a pair queues between its reader and
/// its writer.
pub const QUEUE_CHUNKS: usize = 4;
/// The most bytes one pair holds on their way (both directions: the
/// queued reads, the one being written and the one being read).
pub const PAIR_BUFFER: usize = 2 * (QUEUE_CHUNKS + 2) * crate::tube::READ_CHUNK;
/// How many pairs one relay forwards at once; more clients wait in the
/// accept queue.
pub const MAX_PAIRS: usize = 256;
/// How long a relay waits for its upstream to accept.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(10);

/// A future the lab hands a relay or a chat broker.
pub(crate) type Settling<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What a relay or a chat broker needs of the lab that owns it (the lab
/// implements it; this module knows nothing of the lab).
pub(crate) trait Host: Send + Sync + 'static {
    /// Where events go.
    fn sink(&self) -> Sink;
    /// Makes a pair an entry of the lab, listed under its relay at `order`.
    ///
    /// # Errors
    /// The name is taken.
    fn adopt_pair(&self, pair: Arc<Pair>, order: (u64, u64)) -> Result<()>;
    /// The pair left (both legs closed): its entry goes.
    fn forget_pair(&self, name: &str);
    /// Waits until the lab's socket at the other end of `conn` (if it is a
    /// watched one) has reported every byte `conn` wrote.
    fn settle_delivered(&self, conn: Arc<Conn>) -> Settling<'_>;
    /// Waits until the lab's socket at the other end of `conn` (if it is a
    /// watched one) has reported end of stream or a reset.
    fn settle_ended(&self, conn: Arc<Conn>) -> Settling<'_>;
    /// Waits until a server of the lab listening at `peer` has reported
    /// its accept of `local` (if it is one that accepts by itself).
    fn settle_accept(&self, local: SocketAddr, peer: SocketAddr) -> Settling<'_>;
}

/// What a relay direction or a chat client has done with what it read:
/// the lab's clients settle on it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flow {
    /// Bytes read from the leg and fully handled (forwarded and reported
    /// at the far end, or broadcast).
    pub(crate) done: u64,
    /// Stalled: nothing is read until the stall is cleared.
    pub(crate) held: bool,
    /// The leg's end of stream (or failure) was handled, or the pair ended.
    pub(crate) ended: bool,
}

/// The faults in force on a relay or a pair (toxiproxy's toxics). Each
/// applies to both directions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every read is held this long (plus up to the jitter) before it is
    /// written; order is kept.
    pub latency: Option<(Duration, Duration)>,
    /// At most this many bytes per second each way.
    pub bandwidth: Option<u64>,
    /// Writes are cut into pieces of at most this many bytes, with this
    /// pause between pieces.
    pub slice: Option<(usize, Duration)>,
    /// After this many bytes one way, the pair is closed.
    pub limit: Option<u64>,
    /// Nothing is forwarded (nor read) until cleared.
    pub stall: bool,
}

/// One fault to set (or `Clear` them all). `reset` is not kept: it acts
/// once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Delay and jitter.
    Latency(Duration, Duration),
    /// Bytes per second.
    Bandwidth(u64),
    /// Piece size and pause.
    Slice(usize, Duration),
    /// Bytes before the pair is closed.
    Limit(u64),
    /// Stop forwarding.
    Stall,
    /// Remove every fault.
    Clear,
}

impl Faults {
    /// Sets (or clears) one fault.
    pub fn apply(&mut self, f: &Fault) {
        match f {
            Fault::Latency(d, j) => self.latency = Some((*d, *j)),
            Fault::Bandwidth(r) => self.bandwidth = Some((*r).max(1)),
            Fault::Slice(n, p) => self.slice = Some(((*n).max(1), *p)),
            Fault::Limit(n) => self.limit = Some(*n),
            Fault::Stall => self.stall = true,
            Fault::Clear => *self = Faults::default(),
        }
    }

    /// The faults in words (`latency 100ms`, `slice 1 byte(s)`, …); empty
    /// when none.
    pub fn words(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((d, j)) = self.latency {
            if j.is_zero() {
                out.push(format!("latency {d:?}"));
            } else {
                out.push(format!("latency {d:?} jitter {j:?}"));
            }
        }
        if let Some(r) = self.bandwidth {
            out.push(format!("bandwidth {r} B/s"));
        }
        if let Some((n, p)) = self.slice {
            if p.is_zero() {
                out.push(format!("slice {n} B"));
            } else {
                out.push(format!("slice {n} B every {p:?}"));
            }
        }
        if let Some(n) = self.limit {
            out.push(format!("limit {n} B"));
        }
        if self.stall {
            out.push("stall".to_string());
        }
        out
    }
}

/// What a relay does with its clients (the listener's service).
pub(crate) struct RelayServer {
    /// Where every pair's upstream leg connects.
    pub(crate) upstream: SocketAddr,
    /// The faults every new pair starts with (set on the relay).
    pub(crate) faults: Mutex<Faults>,
    /// The pairs still open, to set a relay's fault on each.
    pairs: Mutex<Vec<std::sync::Weak<Pair>>>,
    /// Accepts reported (once the upstream leg is connected or refused).
    pub(crate) accepts: Arc<Accepts>,
    /// Caps the pairs forwarding at once.
    slots: Arc<Semaphore>,
    /// Clients whose upstream refused (the latest, newest last): a lab
    /// client's connect settles on the close of its leg.
    refused: Mutex<std::collections::VecDeque<SocketAddr>>,
}

impl RelayServer {
    /// A relay to `upstream`.
    pub(crate) fn new(upstream: SocketAddr) -> RelayServer {
        RelayServer {
            upstream,
            faults: Mutex::new(Faults::default()),
            pairs: Mutex::new(Vec::new()),
            accepts: Arc::default(),
            slots: Arc::new(Semaphore::new(MAX_PAIRS)),
            refused: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// A slot for one more pair (waits while [`MAX_PAIRS`] forward).
    pub(crate) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Whether the upstream refused the client at `client`.
    pub(crate) fn refused(&self, client: SocketAddr) -> bool {
        lock(&self.refused).contains(&client)
    }

    fn refuse(&self, client: SocketAddr) {
        let mut refused = lock(&self.refused);
        refused.push_back(client);
        if refused.len() > 1024 {
            refused.pop_front();
        }
    }

    /// The pairs still open.
    pub(crate) fn pairs(&self) -> Vec<Arc<Pair>> {
        let mut pairs = lock(&self.pairs);
        pairs.retain(|w| w.strong_count() > 0);
        pairs.iter().filter_map(std::sync::Weak::upgrade).collect()
    }

    /// Sets a fault on the relay: every open pair and every future one.
    pub(crate) fn apply(&self, f: &Fault) {
        lock(&self.faults).apply(f);
        for p in self.pairs() {
            p.apply(f);
        }
    }
}

/// How a pair is being ended by a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Both legs closed (FIN).
    Close,
    /// Both legs reset (SO_LINGER 0, then close).
    Reset,
}

/// One client of a relay: two legs and the forwarding between them.
pub(crate) struct Pair {
    /// `relay.k`.
    pub(crate) name: Arc<str>,
    /// The client's connection to the relay.
    pub(crate) client: Arc<Conn>,
    /// The relay's connection upstream.
    pub(crate) upstream: Arc<Conn>,
    /// The faults in force.
    faults: watch::Sender<Faults>,
    /// client -> upstream.
    up: watch::Sender<Flow>,
    /// upstream -> client.
    down: watch::Sender<Flow>,
    /// Bytes written client -> upstream, upstream -> client.
    moved: [AtomicU64; 2],
    /// Stops the forwarding.
    stop: CancellationToken,
    /// How a command ends it (none: it ends by itself).
    ending: Mutex<Option<Ending>>,
    /// Set once both legs are closed and reported.
    done: watch::Sender<bool>,
}

impl Pair {
    fn flow(&self, way: Way) -> &watch::Sender<Flow> {
        match way {
            Way::Up => &self.up,
            Way::Down => &self.down,
        }
    }

    fn legs(&self, way: Way) -> (&Arc<Conn>, &Arc<Conn>) {
        match way {
            Way::Up => (&self.client, &self.upstream),
            Way::Down => (&self.upstream, &self.client),
        }
    }

    /// The faults in force.
    pub(crate) fn faults(&self) -> Faults {
        self.faults.borrow().clone()
    }

    /// Bytes forwarded each way so far (client -> upstream, upstream ->
    /// client).
    pub(crate) fn moved(&self) -> (u64, u64) {
        (
            self.moved[0].load(Ordering::SeqCst),
            self.moved[1].load(Ordering::SeqCst),
        )
    }

    /// Sets a fault on this pair.
    pub(crate) fn apply(&self, f: &Fault) {
        self.faults.send_modify(|faults| faults.apply(f));
        let stall = self.faults.borrow().stall;
        for way in [Way::Up, Way::Down] {
            self.flow(way).send_if_modified(|fl| {
                let changed = fl.held != stall;
                fl.held = stall;
                changed
            });
        }
    }

    /// The flow of what `from` (a leg's peer address, the lab socket that
    /// writes into it) sends through the pair: the leg whose peer is
    /// `from` and whose local address is `to`.
    pub(crate) fn flow_from(
        &self,
        from: SocketAddr,
        to: SocketAddr,
    ) -> Option<watch::Receiver<Flow>> {
        if self.client.peer == from && self.client.local == to {
            return Some(self.up.subscribe());
        }
        if self.upstream.peer == from && self.upstream.local == to {
            return Some(self.down.subscribe());
        }
        None
    }

    /// Ends the pair now, closing both legs (or resetting them), and waits
    /// until that is reported.
    pub(crate) async fn end(&self, reset: bool) {
        lock(&self.ending).get_or_insert(if reset { Ending::Reset } else { Ending::Close });
        self.stop.cancel();
        let _ = self.done.subscribe().wait_for(|d| *d).await;
    }
}

/// Serves one client of a relay: connects upstream, makes the pair an
/// entry of the lab, forwards until both directions are done, then closes
/// both legs. Reports everything as events; announces the accept once the
/// upstream leg is connected (or refused).
pub(crate) async fn serve_client(
    host: Arc<dyn Host>,
    server: Arc<RelayServer>,
    name: Arc<str>,
    client: tokio::net::TcpStream,
    peer: SocketAddr,
    order: (u64, u64),
    slot: OwnedSemaphorePermit,
) {
    let sink = host.sink();
    let to = server.upstream;
    let note = |text: String| Event::Note {
        socket: name.clone(),
        text,
    };
    let connected = match crate::netns::socket(Family::of(&to).domain(), Type::STREAM, None) {
        Ok(sock) => connect_socket(sock, to, Some(UPSTREAM_CONNECT))
            .await
            .map_err(|(e, _)| e),
        Err(e) => Err(crate::error::NetError::os("socket")(e)),
    };
    let client = Conn::new(name.clone(), client, None, false);
    let (up, client) = match (connected, client) {
        (Ok(up), Ok(client)) => (up, Arc::new(client)),
        (Err(e), Ok(client)) => {
            // The client's leg is closed (a FIN), so it sees the end at once.
            let _ = sink
                .send(note(format!(
                    "upstream {to} refused: {e}; the client's leg is closed"
                )))
                .await;
            let client = Arc::new(client);
            client.tube.close().await;
            server.refuse(peer);
            server.accepts.announce(peer);
            return;
        }
        (_, Err(_)) => {
            server.accepts.announce(peer);
            return;
        }
    };
    let upstream = match Conn::new(name.clone(), up, None, false) {
        Ok(c) => Arc::new(c),
        Err(_) => {
            client.tube.close().await;
            server.accepts.announce(peer);
            return;
        }
    };
    host.settle_accept(upstream.local, upstream.peer).await;
    let faults = lock(&server.faults).clone();
    let stall = faults.stall;
    let held = Flow {
        held: stall,
        ..Flow::default()
    };
    let pair = Arc::new(Pair {
        name: name.clone(),
        client,
        upstream,
        faults: watch::Sender::new(faults),
        up: watch::Sender::new(held.clone()),
        down: watch::Sender::new(held),
        moved: [AtomicU64::new(0), AtomicU64::new(0)],
        stop: CancellationToken::new(),
        ending: Mutex::new(None),
        done: watch::Sender::new(false),
    });
    let _ = sink
        .send(note(format!(
            "client {} <-> upstream {} (from {})",
            pair.client.peer, pair.upstream.peer, pair.upstream.local,
        )))
        .await;
    if host.adopt_pair(pair.clone(), order).is_err() {
        pair.client.tube.close().await;
        pair.upstream.tube.close().await;
        server.accepts.announce(peer);
        return;
    }
    lock(&server.pairs).push(Arc::downgrade(&pair));
    server.accepts.announce(peer);
    run(&*host, &pair, &sink).await;
    drop(slot);
}

/// What one direction ended with.
#[derive(Debug)]
enum End {
    /// End of stream: half-close the other leg.
    Eof,
    /// A reset: reset the other leg, end the pair.
    Reset,
    /// Another failure, or the byte limit: end the pair.
    Abort(String),
}

/// How a direction ends the whole pair: the first reason wins.
struct Aborts {
    /// Cancelled once a direction ended the pair.
    token: CancellationToken,
    /// Why.
    why: Mutex<Option<End>>,
}

impl Aborts {
    fn end(&self, why: End) {
        lock(&self.why).get_or_insert(why);
        self.token.cancel();
    }
}

/// One read, queued for the writer.
enum Item {
    Data(Bytes, Instant),
    End(End),
}

/// Forwards both directions until both are done (or the pair is ended),
/// then closes both legs and reports it.
async fn run(host: &dyn Host, pair: &Arc<Pair>, sink: &Sink) {
    // The first direction that ends the pair says why, then stops it.
    let abort = Aborts {
        token: CancellationToken::new(),
        why: Mutex::new(None),
    };
    let direction = |way: Way| {
        let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
        let abort = &abort;
        async move {
            let read = read_side(pair, way, tx, sink);
            let write = write_side(host, pair, way, rx, sink, abort);
            tokio::join!(read, write);
        }
    };
    let both = async { tokio::join!(direction(Way::Up), direction(Way::Down)) };
    tokio::select! {
        _ = pair.stop.cancelled() => {}
        _ = abort.token.cancelled() => {}
        _ = both => {}
    }
    let why = lock(&abort.why).take();
    let ending = *lock(&pair.ending);
    let reset = matches!(ending, Some(Ending::Reset)) || matches!(why, Some(End::Reset));
    let (up, down) = pair.moved();
    let how = match (ending, &why) {
        (Some(Ending::Reset), _) => "both legs reset (SO_LINGER 0, then close)".to_string(),
        (Some(Ending::Close), _) => "both legs closed".to_string(),
        (None, Some(End::Reset)) => "a leg was reset: the other leg is reset too".to_string(),
        (None, Some(End::Abort(why))) => format!("{why}: both legs closed"),
        (None, _) => "both directions ended: both legs closed".to_string(),
    };
    let _ = sink
        .send(Event::Note {
            socket: pair.name.clone(),
            text: format!("{how} ({up} bytes client -> upstream, {down} bytes upstream -> client)"),
        })
        .await;
    if reset {
        for leg in [&pair.client, &pair.upstream] {
            let _ = leg.with_sockref(|s| s.set_linger(Some(Duration::ZERO)));
        }
    }
    // One leg after the other, each reported at its far end, so the
    // client's side is always told first.
    for leg in [&pair.client, &pair.upstream] {
        leg.tube.close().await;
        host.settle_ended(leg.clone()).await;
    }
    host.forget_pair(&pair.name);
    for way in [Way::Up, Way::Down] {
        pair.flow(way).send_modify(|f| f.ended = true);
    }
    pair.done.send_replace(true);
}

/// Reads one leg while no stall is in force, reports each read, and
/// queues it for the writer (waiting while the queue is full: that is the
/// backpressure).
async fn read_side(pair: &Pair, way: Way, tx: mpsc::Sender<Item>, sink: &Sink) {
    let (from, _) = pair.legs(way);
    let mut faults = pair.faults.subscribe();
    loop {
        if faults.borrow_and_update().stall {
            if faults.changed().await.is_err() {
                return;
            }
            continue;
        }
        let got = tokio::select! {
            // A fault set before bytes arrived is seen before they are
            // read (a stall set, then a send: nothing is read until the
            // stall is cleared). Unbiased, select! picked either at random
            // when both were ready (seen under load in relay.sock).
            biased;
            // A fault changed (a stall, maybe): look again. Reads are
            // cancel-safe: nothing read is lost.
            c = faults.changed() => match c {
                Ok(()) => continue,
                Err(_) => return,
            },
            r = from.tube.read_some(crate::tube::READ_CHUNK) => r,
        };
        let item = match got {
            Ok(b) if b.is_empty() => Item::End(End::Eof),
            Ok(b) => {
                let charge = sink.budget.take(b.len()).await;
                let ev = Event::Relayed {
                    pair: pair.name.clone(),
                    way,
                    data: Payload::new(b.clone(), charge),
                };
                let _ = sink.send(ev).await;
                Item::Data(b, Instant::now())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Item::End(End::Reset),
            Err(e) => Item::End(End::Abort(format!(
                "reading from the {}: {e}",
                way.source()
            ))),
        };
        let last = matches!(item, Item::End(_));
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

/// Writes what the reader queued to the other leg, as the faults say;
/// publishes the flow once the far end reported it. Returns how the
/// direction ended, when it ended the pair (a reset, a failure, the limit).
async fn write_side(
    host: &dyn Host,
    pair: &Pair,
    way: Way,
    mut rx: mpsc::Receiver<Item>,
    sink: &Sink,
    abort: &Aborts,
) {
    let (_, to) = pair.legs(way);
    let flow = pair.flow(way);
    let mut faults = pair.faults.subscribe();
    let mut not_before = Instant::now();
    let mut jitter = Jitter::new(way);
    let counter = &pair.moved[way as usize];
    while let Some(item) = rx.recv().await {
        let (data, arrived) = match item {
            Item::Data(b, at) => (b, at),
            Item::End(End::Eof) => {
                let _ = sink
                    .send(Event::Note {
                        socket: pair.name.clone(),
                        text: format!(
                            "{}: end of stream; the {} leg's write side is shut (half-close)",
                            way.words(),
                            way.sink()
                        ),
                    })
                    .await;
                let _ = to.tube.shutdown(Shutdown::Write).await;
                host.settle_ended(to.clone()).await;
                flow.send_modify(|f| f.ended = true);
                return;
            }
            Item::End(end) => return abort.end(end),
        };
        let n = data.len() as u64;
        // Latency: from the read's arrival, in order.
        let latency = faults.borrow().latency;
        if let Some((d, j)) = latency {
            let at = (arrived + d + jitter.next(j)).max(not_before);
            tokio::time::sleep_until(at).await;
            not_before = at;
        }
        let mut rest = data.clone();
        while !rest.is_empty() {
            // A stall holds what was read already, too.
            if faults.borrow_and_update().stall {
                if faults.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let f = faults.borrow().clone();
            let mut piece = rest.len();
            if let Some((size, _)) = f.slice {
                piece = piece.min(size);
            }
            if let Some(rate) = f.bandwidth {
                // Pieces of a tenth of a second's worth, paced.
                piece = piece.min(((rate / 10).max(1)) as usize);
            }
            let mut over = false;
            if let Some(limit) = f.limit {
                let left = limit.saturating_sub(counter.load(Ordering::SeqCst));
                if left < piece as u64 {
                    piece = left as usize;
                    over = true;
                }
            }
            if piece > 0 {
                let chunk = rest.split_to(piece);
                if let Err(e) = to.tube.send(&chunk).await {
                    let why = match e.os_error().map(io::Error::kind) {
                        Some(io::ErrorKind::ConnectionReset) => End::Reset,
                        _ => End::Abort(format!("writing to the {}: {e}", way.sink())),
                    };
                    return abort.end(why);
                }
                counter.fetch_add(piece as u64, Ordering::SeqCst);
            }
            if over {
                // What went before the limit is reported at the far end first.
                host.settle_delivered(to.clone()).await;
                let limit = f.limit.unwrap_or(0);
                return abort.end(End::Abort(format!(
                    "limit of {limit} bytes reached ({})",
                    way.words()
                )));
            }
            if !rest.is_empty() {
                if let Some((_, pause)) = f.slice {
                    tokio::time::sleep(pause).await;
                }
            }
            if let Some(rate) = f.bandwidth {
                let secs = piece as f64 / rate as f64;
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            }
        }
        host.settle_delivered(to.clone()).await;
        flow.send_modify(|fl| fl.done += n);
    }
}

/// A small generator for jitter (xorshift; a fault needs no real
/// randomness, only spread).
struct Jitter(u64);

impl Jitter {
    fn new(way: Way) -> Jitter {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Jitter(seed | 1 | (way as u64) << 1)
    }

    /// A duration from 0 to `max`.
    fn next(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let nanos = max.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(self.0 % (nanos + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_combine_replace_and_clear() {
        let mut f = Faults::default();
        assert!(f.words().is_empty());
        f.apply(&Fault::Latency(Duration::from_millis(100), Duration::ZERO));
        f.apply(&Fault::Slice(1, Duration::from_millis(5)));
        f.apply(&Fault::Latency(
            Duration::from_millis(50),
            Duration::from_millis(10),
        ));
        f.apply(&Fault::Stall);
        assert_eq!(
            f.words(),
            ["latency 50ms jitter 10ms", "slice 1 B every 5ms", "stall"]
        );
        f.apply(&Fault::Clear);
        assert_eq!(f, Faults::default());
    }

    #[test]
    fn a_zero_slice_or_rate_is_never_kept() {
        let mut f = Faults::default();
        f.apply(&Fault::Slice(0, Duration::ZERO));
        f.apply(&Fault::Bandwidth(0));
        assert_eq!(f.slice, Some((1, Duration::ZERO)));
        assert_eq!(f.bandwidth, Some(1));
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let mut j = Jitter::new(Way::Up);
        let max = Duration::from_millis(7);
        for _ in 0..10_000 {
            assert!(j.next(max) <= max);
        }
        assert_eq!(j.next(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_pair_holds_at_most_its_bound() {
        assert_eq!(PAIR_BUFFER, 192 * 1024);
    }
}
