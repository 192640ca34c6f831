//! `bench hold N`: N connections open at once, a message echoed on each,
//! and what they cost in memory. Thousands of sockets: tasks, not threads.

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::resource::{setrlimit, Resource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::proto::{self, Mode, HEADER_LEN, READY};
use super::{BenchError, Live};

/// Connections opened (and messages echoed) at once.
const IN_FLIGHT: usize = 256;
/// After this many failed connections, no more are tried.
const GIVE_UP_AFTER: u64 = 64;
/// What each held connection echoes.
const MESSAGE: &[u8; 16] = b"socklab hold ok\n";

/// What `hold` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldReport {
    /// Connections asked for.
    pub asked: u64,
    /// Connections open at once, each answered by the server.
    pub held: u64,
    /// Of those, how many echoed the message while all were open.
    pub echoed: u64,
    /// Growth of this process's resident set from before the first
    /// connection to when all were open and echoed (bytes); `None` when
    /// /proc could not say.
    pub rss_growth: Option<u64>,
    /// The soft limit on open files after raising it.
    pub nofile: u64,
    /// The first few failures, in words, and how many there were.
    pub failures: (u64, Vec<String>),
}

/// Makes room for `need` open files: the soft limit up to the hard one
/// (as socklab does at start), and only if that is not enough, the hard
/// limit up to what is needed, within the kernel's `nr_open` (needs
/// CAP_SYS_RESOURCE; every program started afterwards inherits it, so it
/// is never raised further than asked). Returns the soft limit now.
pub fn raise_nofile(need: u64) -> u64 {
    let soft = crate::sys::raise_fd_limit().unwrap_or(0);
    if soft >= need {
        return soft;
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(soft);
    let want = need.min(nr_open);
    if want > soft && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return want;
    }
    soft
}

/// The number of ephemeral ports (what the OS picks client ports from).
fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u64>().ok());
            let (lo, hi) = (it.next()??, it.next()??);
            Some(hi.saturating_sub(lo) + 1)
        })
        .unwrap_or(28_232)
}

/// Connections `hold` keeps open, with its figures; dropping it (or
/// [`Held::close`]) closes them.
pub struct Held {
    /// The figures.
    pub report: HoldReport,
    /// The connections, all open.
    conns: Vec<TcpStream>,
}

impl Held {
    /// Closes every connection.
    pub fn close(self) {
        drop(self.conns);
    }
}

/// Opens `n` connections to a bench server at `to`, keeps them all open,
/// echoes a message on each, and measures the resident set's growth; the
/// connections stay open until the [`Held`] is dropped.
/// `fds_per_conn` is 2 when the server is in this process (each connection
/// is two descriptors here). Every connect and echo has `wait`.
///
/// # Errors
/// The limits cannot hold `n`, or the server is no bench server; failures
/// of single connections are counted in the report instead.
pub async fn hold(
    to: SocketAddr,
    n: u64,
    fds_per_conn: u64,
    wait: Duration,
    live: &watch::Sender<Live>,
) -> Result<Held, BenchError> {
    let need = n * fds_per_conn + 64;
    let nofile = raise_nofile(need);
    if need > nofile {
        return Err(BenchError::Refused {
            peer: to,
            why: format!(
                "{n} connections need about {need} descriptors here, and the limit on open files (RLIMIT_NOFILE) is {nofile} even after raising it"
            ),
        });
    }
    let ports = ephemeral_ports();
    if n > ports {
        return Err(BenchError::Refused {
            peer: to,
            why: format!(
                "{n} connections from one address to one server need {n} client ports, and the ephemeral range (ip_local_port_range) has {ports}"
            ),
        });
    }
    // Is it a bench server at all? One probe says so in words.
    let probe = tokio::task::spawn_blocking(move || proto::dial(to, Mode::Probe, wait))
        .await
        .map_err(|_| BenchError::Stopped)??;
    drop(probe);
    let before = super::rss();
    let mut failures = (0u64, Vec::new());
    let mut held: Vec<TcpStream> = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut tasks = JoinSet::new();
    let mut started = 0;
    while started < n || !tasks.is_empty() {
        while started < n && tasks.len() < IN_FLIGHT && failures.0 < GIVE_UP_AFTER {
            tasks.spawn(open(to, wait));
            started += 1;
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        match done {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => fail(&mut failures, e.to_string()),
            Err(e) => fail(&mut failures, e.to_string()),
        }
        if held.len() % 256 == 0 {
            live.send_replace(Live {
                done: held.len() as u64,
                total: Some(n),
                rate: None,
            });
        }
    }
    // Every connection is open now: a message through each.
    let held_count = held.len() as u64;
    let mut echoed = 0u64;
    let mut kept = Vec::with_capacity(held.len());
    let mut waiting = held.into_iter();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < IN_FLIGHT {
            let Some(s) = waiting.next() else { break };
            tasks.spawn(echo(s, wait));
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        match done {
            Ok(Ok(s)) => {
                echoed += 1;
                kept.push(s);
            }
            Ok(Err(e)) => fail(&mut failures, format!("{to}: echo: {e}")),
            Err(e) => fail(&mut failures, e.to_string()),
        }
    }
    let after = super::rss();
    let rss_growth = match (before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    Ok(Held {
        report: HoldReport {
            asked: n,
            held: held_count,
            echoed,
            rss_growth,
            nofile,
            failures,
        },
        conns: kept,
    })
}

/// Counts a failure and keeps the first few in words.
fn fail(failures: &mut (u64, Vec<String>), what: String) {
    failures.0 += 1;
    if failures.1.len() < 3 {
        failures.1.push(what);
    }
}

/// One held connection: connect, the header, the server's answer.
async fn open(to: SocketAddr, wait: Duration) -> Result<TcpStream, BenchError> {
    let mut s = match tokio::time::timeout(wait, TcpStream::connect(to)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(BenchError::Connect {
                peer: to,
                source: e,
            })
        }
        Err(_) => {
            return Err(BenchError::Stuck {
                peer: to,
                what: "connect".to_string(),
                after: wait,
            })
        }
    };
    let answered = async {
        s.write_all(&Mode::Hold.header()).await?;
        let mut got = [0u8; HEADER_LEN];
        s.read_exact(&mut got).await?;
        Ok::<_, std::io::Error>(got)
    };
    match tokio::time::timeout(wait, answered).await {
        Ok(Ok(got)) if got == *READY => Ok(s),
        Ok(Ok(got)) => Err(proto::not_ready(to, &got)),
        Ok(Err(e)) => Err(BenchError::during(to, e, wait, "at the header".to_string())),
        Err(_) => Err(BenchError::Stuck {
            peer: to,
            what: "the answer to the bench header".to_string(),
            after: wait,
        }),
    }
}

/// The message there and back on a held connection.
async fn echo(mut s: TcpStream, wait: Duration) -> Result<TcpStream, String> {
    let round = async {
        s.write_all(MESSAGE).await?;
        let mut got = [0u8; MESSAGE.len()];
        s.read_exact(&mut got).await?;
        Ok::<_, std::io::Error>(got)
    };
    match tokio::time::timeout(wait, round).await {
        Ok(Ok(got)) if got == *MESSAGE => Ok(s),
        Ok(Ok(_)) => Err("the echo differs from the message".to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no echo within {} ms", wait.as_millis())),
    }
}
