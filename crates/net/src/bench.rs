//! `bench`: socklab measures itself. A bench server (`bench serve`, a
//! listener of the lab whose service is [`serve`]) is an echo and a sink;
//! the clients ([`stream`], [`rtt`], [`connect`], [`hold`]) talk to it, in
//! this process or another. The protocol is an 8-byte header
//! (docs/protocol.md, "The bench protocol").
//!
//! Nothing here prints. A client runs on a thread of its own (`stream`,
//! `rtt`: blocking sockets and big buffers measure best) or on the runtime
//! (`connect`, `hold`: thousands of sockets); it publishes its progress on
//! a `watch` channel ([`Live`]) and returns its figures.

mod clients;
mod hold;
mod proto;
pub(crate) mod serve;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

pub use clients::{connect, rtt, stream, Amount, ConnectReport, RttReport, StreamReport};
pub use hold::{hold, raise_nofile, Held, HoldReport};
pub use proto::MAX_MESSAGE;
pub use serve::MAX_THREADS;

/// At most this many parallel streams (`streams N`).
pub const MAX_STREAMS: u32 = 64;
/// At most this many round trips in one `rtt` (8 MiB of samples).
pub const MAX_ROUND_TRIPS: u64 = 1_000_000;
/// At most this many connections in one `connect`.
pub const MAX_CONNECTS: u64 = 1_000_000;
/// At most this many connections at once in `connect`.
pub const MAX_CONCURRENCY: u64 = 256;
/// At most this many connections held by `hold`.
pub const MAX_HOLD: u64 = 100_000;
/// The longest `stream … for DUR`.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// A bench that failed: which peer, and what happened, in words.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The peer answered, but not as a bench server.
    #[error("{peer} is not a socklab bench server: {why}")]
    NotBench {
        /// Who.
        peer: SocketAddr,
        /// What it did instead.
        why: String,
    },
    /// The connect failed.
    #[error("connect to {peer}: {source}")]
    Connect {
        /// Who.
        peer: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A system call failed during the run.
    #[error("{peer}: {op}: {source}")]
    Io {
        /// Who.
        peer: SocketAddr,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The server went away in the middle of the run.
    #[error("{peer}: the bench server {how} {when}")]
    Gone {
        /// Who.
        peer: SocketAddr,
        /// "closed the connection", "reset the connection".
        how: &'static str,
        /// After how much of the run.
        when: String,
    },
    /// A wait ran out.
    #[error("{peer}: {what}: no progress within {} ms", after.as_millis())]
    Stuck {
        /// Who.
        peer: SocketAddr,
        /// What was being waited for.
        what: String,
        /// How long.
        after: Duration,
    },
    /// The address may not be used from here.
    #[error("{peer}: {why}")]
    Refused {
        /// Where.
        peer: SocketAddr,
        /// Why not.
        why: String,
    },
    /// The bench was stopped (Ctrl-C).
    #[error("stopped")]
    Stopped,
}

impl BenchError {
    fn connect(peer: SocketAddr, source: io::Error) -> BenchError {
        if proto::timed_out(&source) {
            return BenchError::Stuck {
                peer,
                what: "connect".to_string(),
                after: Duration::ZERO,
            };
        }
        BenchError::Connect { peer, source }
    }

    fn io(peer: SocketAddr, op: &'static str, source: io::Error) -> BenchError {
        BenchError::Io { peer, op, source }
    }

    /// A failed read or write in the middle of a run, said in words: a
    /// reset or an end of stream is the server going away; a timeout is a
    /// peer that stopped answering.
    fn during(peer: SocketAddr, e: io::Error, wait: Duration, when: String) -> BenchError {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => BenchError::Gone {
                peer,
                how: "reset the connection",
                when,
            },
            io::ErrorKind::UnexpectedEof => BenchError::Gone {
                peer,
                how: "closed the connection",
                when,
            },
            _ if proto::timed_out(&e) => BenchError::Stuck {
                peer,
                what: format!("waiting {when}"),
                after: wait,
            },
            _ => BenchError::Io {
                peer,
                op: "send/recv",
                source: e,
            },
        }
    }

    /// Whether a wait ran out (for the shell's exit status).
    pub fn is_timeout(&self) -> bool {
        matches!(self, BenchError::Stuck { .. })
    }

    /// Whether the peer was no bench server or not there at all.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            BenchError::NotBench { .. } | BenchError::Connect { .. } | BenchError::Gone { .. }
        )
    }
}

/// What a running bench has done so far, for a live line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// Units done (bytes for `stream`, round trips, connections).
    pub done: u64,
    /// Units to do, when known.
    pub total: Option<u64>,
    /// The rate over the last second, in units per second (`stream`).
    pub rate: Option<f64>,
}

/// Latency percentiles, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    /// The fastest.
    pub min: u64,
    /// The median.
    pub p50: u64,
    /// 90 %.
    pub p90: u64,
    /// 99 %.
    pub p99: u64,
    /// 99.9 %.
    pub p999: u64,
    /// The slowest.
    pub max: u64,
}

impl Percentiles {
    /// Of `samples` (sorted here); all zero when there are none.
    pub fn of(samples: &mut [u64]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // The nearest-rank percentile: the smallest sample with at
            // least q of the samples at or below it.
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Percentiles {
            min: samples[0],
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: samples[samples.len() - 1],
        }
    }
}

/// A bench on a thread of its own: its live progress and, at the end, its
/// figures. Dropping it (Ctrl-C) tells the thread to stop.
pub struct Running<T> {
    /// What it has done so far.
    live: watch::Receiver<Live>,
    /// Its figures, when done.
    result: oneshot::Receiver<Result<T, BenchError>>,
    /// Set when nobody waits any more.
    stop: Arc<AtomicBool>,
}

impl<T: Send + 'static> Running<T> {
    /// Starts `work` on a thread named `name`.
    fn start(
        name: &str,
        work: impl FnOnce(&watch::Sender<Live>, &AtomicBool) -> Result<T, BenchError> + Send + 'static,
    ) -> Running<T> {
        let (live_tx, live) = watch::channel(Live::default());
        let (tx, result) = oneshot::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _ = tx.send(work(&live_tx, &flag));
            });
        if let Err(e) = spawned {
            // The receiver sees a closed channel: reported by `finish`.
            drop(e);
        }
        Running { live, result, stop }
    }

    /// Waits for the figures; `on_live` sees each change of progress.
    ///
    /// # Errors
    /// What went wrong, in words.
    pub async fn finish(&mut self, mut on_live: impl FnMut(&Live)) -> Result<T, BenchError> {
        let mut live_open = true;
        loop {
            tokio::select! {
                r = &mut self.result => return r.unwrap_or(Err(BenchError::Stopped)),
                changed = self.live.changed(), if live_open => match changed {
                    Ok(()) => on_live(&self.live.borrow_and_update()),
                    Err(_) => live_open = false,
                },
            }
        }
    }
}

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// This process's resident set, in bytes (/proc/self/statm).
pub fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    Some(pages * page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(
            (p.min, p.p50, p.p90, p.p99, p.p999, p.max),
            (1, 500, 900, 990, 999, 1000)
        );
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
        let one = Percentiles::of(&mut [7]);
        assert_eq!((one.min, one.p50, one.p999, one.max), (7, 7, 7, 7));
    }
}
