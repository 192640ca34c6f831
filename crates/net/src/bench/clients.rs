//! The clients that run on threads of their own: `stream` (memory to memory,
//! like `iperf3 -c`), `rtt` (ping-pong, like `sockperf ping-pong`) and
//! `connect` (connections per second).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::proto::{self, Mode};
use super::{BenchError, Live, Percentiles, Running};

/// How much a `stream` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// For this long.
    For(Duration),
    /// This many bytes in all (shared among the streams).
    Bytes(u64),
}

/// What `stream` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    /// Bytes the server received (all streams).
    pub bytes: u64,
    /// From the first byte sent to the server's last end of stream.
    pub elapsed: Duration,
    /// Bytes per second in each whole second of the run.
    pub seconds: Vec<f64>,
    /// Streams.
    pub streams: u32,
}

/// What `rtt` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RttReport {
    /// Round trips timed (after the warm-up).
    pub count: u64,
    /// Their percentiles, in nanoseconds.
    pub rtt: Percentiles,
}

/// What `connect` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectReport {
    /// Connections made.
    pub count: u64,
    /// All of them, from the first connect to the last.
    pub elapsed: Duration,
    /// Connect times, in nanoseconds.
    pub times: Percentiles,
}

/// Each stream writes this much per call (iperf3 writes 128 KiB; twice
/// that measured a few percent faster here).
const WRITE_SIZE: usize = 256 * 1024;

/// Memory-to-memory throughput to a bench server over `streams` parallel
/// connections, each on a thread of its own.
pub fn stream(
    to: SocketAddr,
    amount: Amount,
    streams: u32,
    wait: Duration,
) -> Running<StreamReport> {
    Running::start("bench-stream", move |live, stop| {
        run_stream(to, amount, streams.max(1), wait, live, stop)
    })
}

fn run_stream(
    to: SocketAddr,
    amount: Amount,
    streams: u32,
    wait: Duration,
    live: &watch::Sender<Live>,
    stop: &AtomicBool,
) -> Result<StreamReport, BenchError> {
    let mut conns = Vec::with_capacity(streams as usize);
    for _ in 0..streams {
        conns.push(proto::dial(to, Mode::Sink, wait)?);
    }
    let total = match amount {
        Amount::Bytes(b) => Some(b),
        Amount::For(_) => None,
    };
    let sent = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    let (done_tx, done_rx) = mpsc::channel::<Result<(), BenchError>>();
    let mut seconds = Vec::new();
    let result = std::thread::scope(|scope| {
        for (i, conn) in conns.into_iter().enumerate() {
            let share = total.map(|t| {
                let n = u64::from(streams);
                t / n + u64::from((i as u64) < t % n)
            });
            let done_tx = done_tx.clone();
            let (sent, failed) = (&sent, &failed);
            scope.spawn(move || {
                let r = send_stream(conn, to, amount, share, start, wait, sent, failed, stop);
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                let _ = done_tx.send(r);
            });
        }
        drop(done_tx);
        // The per-second figures, until every stream is done.
        let mut first_error = None;
        let mut finished = 0;
        let mut last = (start, 0u64);
        let mut next_tick = start + Duration::from_secs(1);
        while finished < streams {
            let now = Instant::now();
            if now >= next_tick {
                let bytes = sent.load(Ordering::Relaxed);
                let rate = (bytes - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                seconds.push(rate);
                last = (now, bytes);
                next_tick += Duration::from_secs(1);
                live.send_replace(Live {
                    done: bytes,
                    total,
                    rate: Some(rate),
                });
                continue;
            }
            match done_rx.recv_timeout(next_tick - now) {
                Ok(r) => {
                    finished += 1;
                    if let Err(e) = r {
                        first_error.get_or_insert(e);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        first_error.map_or(Ok(()), Err)
    });
    result?;
    if stop.load(Ordering::SeqCst) {
        return Err(BenchError::Stopped);
    }
    Ok(StreamReport {
        bytes: sent.load(Ordering::SeqCst),
        elapsed: start.elapsed(),
        seconds,
        streams,
    })
}

/// One stream: writes until its time or its share is done, then shuts down
/// its sending side and waits for the server's end of stream (so every
/// byte counted has been read by the server).
#[allow(clippy::too_many_arguments)]
fn send_stream(
    mut conn: TcpStream,
    to: SocketAddr,
    amount: Amount,
    share: Option<u64>,
    start: Instant,
    wait: Duration,
    sent: &AtomicU64,
    failed: &AtomicBool,
    stop: &AtomicBool,
) -> Result<(), BenchError> {
    let buf = vec![b'x'; WRITE_SIZE];
    let mut mine = 0u64;
    let when = |mine: u64| format!("after {mine} bytes of this stream");
    loop {
        let want = match (amount, share) {
            (Amount::For(d), _) => {
                if start.elapsed() >= d {
                    break;
                }
                WRITE_SIZE
            }
            (Amount::Bytes(_), Some(share)) => {
                let left = share - mine;
                if left == 0 {
                    break;
                }
                usize::try_from(left).unwrap_or(WRITE_SIZE).min(WRITE_SIZE)
            }
            (Amount::Bytes(_), None) => break,
        };
        if stop.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed) {
            return Err(BenchError::Stopped);
        }
        match conn.write(&buf[..want]) {
            Ok(0) => {
                return Err(BenchError::Gone {
                    peer: to,
                    how: "closed the connection",
                    when: when(mine),
                })
            }
            Ok(n) => {
                mine += n as u64;
                sent.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BenchError::during(to, e, wait, when(mine))),
        }
    }
    conn.shutdown(Shutdown::Write)
        .map_err(|e| BenchError::during(to, e, wait, when(mine)))?;
    let mut rest = [0u8; 64];
    // A sink answers nothing: what it sends is bounded, then an error.
    let mut answered = 0usize;
    loop {
        match conn.read(&mut rest) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                answered += n;
                if answered > 64 * 1024 {
                    return Err(BenchError::during(
                        to,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "a sink sent more than 64 KiB back",
                        ),
                        wait,
                        format!("after {mine} bytes"),
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(BenchError::during(
                    to,
                    e,
                    wait,
                    format!("for the server to read the last of {mine} bytes"),
                ))
            }
        }
    }
}

/// Round trips of `size` bytes to a bench server's echo, one at a time,
/// TCP_NODELAY (or UDP datagrams), on a thread of its own.
pub fn rtt(
    to: SocketAddr,
    count: u64,
    size: usize,
    udp: bool,
    wait: Duration,
) -> Running<RttReport> {
    Running::start("bench-rtt", move |live, stop| {
        if udp {
            run_rtt_udp(to, count, size, wait, live, stop)
        } else {
            run_rtt(to, count, size, wait, live, stop)
        }
    })
}

/// How often a round-trip loop publishes its progress.
const LIVE_EVERY: Duration = Duration::from_millis(200);

/// Round trips before timing starts: the caches and the scheduler settle.
fn warm_up(count: u64) -> u64 {
    (count / 10).clamp(1, 1000)
}

fn run_rtt(
    to: SocketAddr,
    count: u64,
    size: usize,
    wait: Duration,
    live: &watch::Sender<Live>,
    stop: &AtomicBool,
) -> Result<RttReport, BenchError> {
    let mut conn = proto::dial(to, Mode::Echo, wait)?;
    let out = vec![b'x'; size];
    let mut back = vec![0u8; size];
    ping_pong(count, live, stop, |i, warm| {
        let when = || format!("after {} round trips", i.saturating_sub(warm));
        conn.write_all(&out)
            .map_err(|e| BenchError::during(to, e, wait, when()))?;
        conn.read_exact(&mut back)
            .map_err(|e| BenchError::during(to, e, wait, when()))
    })
}

/// The round-trip loop both `rtt`s share: `warm_up(count)` trips not
/// counted, then `count` timed ones; `trip(i, warm)` makes trip `i`.
/// Stopped when asked; the live figure published a few times a second.
fn ping_pong(
    count: u64,
    live: &watch::Sender<Live>,
    stop: &AtomicBool,
    mut trip: impl FnMut(u64, u64) -> Result<(), BenchError>,
) -> Result<RttReport, BenchError> {
    let warm = warm_up(count);
    let mut shown = Instant::now();
    let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 0..warm + count {
        // Every trip: a slow echo must not keep a stopped bench going.
        if stop.load(Ordering::Relaxed) {
            return Err(BenchError::Stopped);
        }
        if i % 1024 == 0 {
            // A few times a second: each publication wakes the shell.
            if shown.elapsed() >= LIVE_EVERY {
                shown = Instant::now();
                live.send_replace(Live {
                    done: i.saturating_sub(warm),
                    total: Some(count),
                    rate: None,
                });
            }
        }
        let t = Instant::now();
        trip(i, warm)?;
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if i >= warm {
            samples.push(ns);
        }
    }
    Ok(RttReport {
        count,
        rtt: Percentiles::of(&mut samples),
    })
}

fn run_rtt_udp(
    to: SocketAddr,
    count: u64,
    size: usize,
    wait: Duration,
    live: &watch::Sender<Live>,
    stop: &AtomicBool,
) -> Result<RttReport, BenchError> {
    let sock = proto::dial_udp(to, wait)?;
    sock.set_read_timeout(Some(wait))
        .map_err(|e| BenchError::io(to, "setsockopt", e))?;
    let mut out = vec![b'x'; size];
    let mut back = vec![0u8; size + 1];
    ping_pong(count, live, stop, |i, _| {
        // A datagram of 8 bytes or more carries its number, so a late echo
        // of an earlier one is not taken for this one's.
        let tag = i.to_be_bytes();
        if size >= tag.len() {
            out[..tag.len()].copy_from_slice(&tag);
        }
        sock.send(&out)
            .map_err(|e| BenchError::during(to, e, wait, format!("at datagram {i}")))?;
        // Other datagrams (late echoes, strangers) are passed over until
        // the echo comes, at most `wait` in all.
        let until = Instant::now() + wait;
        loop {
            let n = sock.recv(&mut back).map_err(|e| {
                BenchError::during(to, e, wait, format!("for the echo of datagram {i}"))
            })?;
            if n == size && (size < tag.len() || back[..tag.len()] == tag) {
                return Ok(());
            }
            if Instant::now() >= until || stop.load(Ordering::Relaxed) {
                return Err(BenchError::during(
                    to,
                    std::io::Error::from(std::io::ErrorKind::TimedOut),
                    wait,
                    format!("for the echo of datagram {i}"),
                ));
            }
        }
    })
}

/// `count` connections to a bench server, `concurrency` at a time, each
/// timed from `connect()` to its return and closed with a reset (SO_LINGER
/// 0: no TIME_WAIT, so the ephemeral ports are not used up).
pub fn connect(
    to: SocketAddr,
    count: u64,
    concurrency: u64,
    wait: Duration,
) -> Running<ConnectReport> {
    Running::start("bench-connect", move |live, stop| {
        run_connect(
            to,
            count,
            concurrency.clamp(1, count.max(1)),
            wait,
            live,
            stop,
        )
    })
}

fn run_connect(
    to: SocketAddr,
    count: u64,
    concurrency: u64,
    wait: Duration,
    live: &watch::Sender<Live>,
    stop: &AtomicBool,
) -> Result<ConnectReport, BenchError> {
    // One probe first: is it a bench server at all?
    let mut probe = proto::dial(to, Mode::Probe, wait)?;
    let mut rest = [0u8; 16];
    let _ = probe.read(&mut rest);
    drop(probe);
    let next = AtomicU64::new(0);
    let made = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    let (done_tx, done_rx) = mpsc::channel::<Result<Vec<u64>, BenchError>>();
    let mut samples = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let first_error = std::thread::scope(|scope| {
        for _ in 0..concurrency {
            let done_tx = done_tx.clone();
            let (next, made, failed) = (&next, &made, &failed);
            scope.spawn(move || {
                let mut mine = Vec::new();
                let r = loop {
                    if stop.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed) {
                        break Err(BenchError::Stopped);
                    }
                    if next.fetch_add(1, Ordering::Relaxed) >= count {
                        break Ok(mine);
                    }
                    let t = Instant::now();
                    match TcpStream::connect_timeout(&to, wait) {
                        Ok(s) => {
                            mine.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                            made.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            let n = made.load(Ordering::SeqCst) + 1;
                            break Err(if proto::timed_out(&e) {
                                BenchError::Stuck {
                                    peer: to,
                                    what: format!("connect number {n}"),
                                    after: wait,
                                }
                            } else {
                                BenchError::Connect {
                                    peer: to,
                                    source: e,
                                }
                            });
                        }
                    }
                };
                let _ = done_tx.send(r);
            });
        }
        drop(done_tx);
        let mut first_error = None;
        let mut finished = 0;
        while finished < concurrency {
            match done_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(mine)) => {
                    finished += 1;
                    samples.extend(mine);
                }
                Ok(Err(e)) => {
                    finished += 1;
                    // A stop caused by another thread's failure is not the
                    // cause.
                    if first_error
                        .as_ref()
                        .is_none_or(|f| matches!(f, BenchError::Stopped))
                    {
                        first_error = Some(e);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            live.send_replace(Live {
                done: made.load(Ordering::Relaxed),
                total: Some(count),
                rate: None,
            });
        }
        first_error
    });
    let elapsed = start.elapsed();
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(ConnectReport {
        count: samples.len() as u64,
        elapsed,
        times: Percentiles::of(&mut samples),
    })
}
