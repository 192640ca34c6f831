//! `bench`: socklab measures itself. `bench serve` starts a bench server
//! (a listener of the lab); `bench stream`, `rtt`, `connect` and `hold`
//! measure against one, of this shell or of another socklab process. The
//! engine is `socklab_net::bench`; this file parses, shows a live line on a
//! terminal, and prints the figures, one per line, in one form:
//! `bench KIND: FIGURE NUMBER UNIT` (benches/compare reads them).

use std::net::SocketAddr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use socklab_net::bench::{self, Amount, BenchError, HoldReport, Live, Percentiles};

use crate::args::{duration_of, number_of, port_of, resolve, Args, CmdError, CmdResult, Exit};
use crate::parse::{self, Token};
use crate::render;
use crate::session::Session;

/// How long a bench waits for its peer (a connect, an answer, an echo)
/// when neither `timeout DUR` nor the script's `--wait` says.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// `bench stream` without `for DUR` or a SIZE.
const DEFAULT_FOR: Duration = Duration::from_secs(5);
/// `bench rtt` without `count N`.
const DEFAULT_TRIPS: u64 = 10_000;
/// `bench rtt` without `size BYTES` (sockperf's `-m 64`).
const DEFAULT_SIZE: u64 = 64;
/// `bench connect` without `count N`.
const DEFAULT_CONNECTS: u64 = 1000;
/// The most `bench stream` sends when given a SIZE (1 TiB).
const MAX_BYTES: u64 = 1 << 40;

/// `bench serve|stream|rtt|connect|hold …`
pub async fn bench(s: &mut Session, mut a: Args) -> CmdResult {
    let (what, _) = a.choice(
        "what to measure",
        &["serve", "stream", "rtt", "connect", "hold"],
    )?;
    match what {
        "serve" => serve(s, a).await,
        "stream" => stream(s, a).await,
        "rtt" => rtt(s, a).await,
        "connect" => connect(s, a).await,
        _ => hold(s, a).await,
    }
}

/// `bench serve [HOST] PORT [as NAME]`
async fn serve(s: &mut Session, mut a: Args) -> CmdResult {
    let name = a.as_name()?;
    let (addr, pt) = crate::args::host_port(&mut a).await?;
    a.done()?;
    let info = s
        .lab
        .serve_bench(addr, name.as_deref())
        .map_err(|e| CmdError::from(e).os_at(pt.span))?;
    let local = info.local.unwrap_or(addr);
    let port_note = super::sockets::port_note(addr.port(), info.local);
    s.say(format!(
        "{}: bench server on {}{port_note}",
        info.name,
        render::addr(&local)
    ));
    s.say("   a sink and an echo over TCP, an echo over UDP, for `bench stream|rtt|connect|hold` of any socklab");
    super::sockets::note_exposure(s, local);
    Ok(())
}

/// Where a bench goes: `HOST PORT` or the NAME of a bench server of this
/// shell (or, with neither, its only bench server), and whether that
/// server is in this process.
struct Target {
    addr: SocketAddr,
    local: bool,
}

/// The target among the command's remaining tokens (after its options).
async fn target(s: &Session, a: &mut Args) -> CmdResult<Target> {
    let left = a.len();
    let of = |addr: SocketAddr| Target {
        addr,
        local: s.lab.is_bench_server(addr),
    };
    match left {
        0 => {
            let servers: Vec<SocketAddr> = s
                .lab
                .names()
                .iter()
                .filter_map(|n| s.lab.bench_addr(n).ok())
                .collect();
            match servers.as_slice() {
                [one] => Ok(of(*one)),
                [] => Err(CmdError::new(
                    Exit::Usage,
                    "no bench server named: give HOST PORT or the NAME of a `bench serve`",
                )
                .hint(
                    "`bench serve 0` starts one in this shell; `socklab` elsewhere can run one too",
                )),
                _ => Err(CmdError::usage(
                    "this shell has several bench servers: name one",
                )),
            }
        }
        1 => {
            let t = a.token("a bench server")?;
            let name = t.word().unwrap_or_default().to_string();
            let addr = s.lab.bench_addr(&name).map_err(|e| {
                let e = CmdError::from(e).or_at(t.span);
                if s.lab.exists(&name) {
                    e
                } else {
                    CmdError {
                        message: format!("no bench server named '{name}'"),
                        ..e
                    }
                    .hint("give HOST PORT, or the NAME of a `bench serve` of this shell")
                }
            })?;
            Ok(of(addr))
        }
        _ => {
            // A NAME of this shell followed by more: the more is no option
            // this bench knows (`bench rtt b cnt 5`), not a port.
            if a.peek_word().is_some_and(|w| s.lab.exists(w)) {
                a.token("a bench server")?;
                let extra = a.token("an option")?;
                let word = extra.word().unwrap_or("this");
                return Err(CmdError::at(
                    extra.span,
                    format!("unexpected '{word}': not an option of this bench"),
                )
                .hint("`help bench` lists each bench's options"));
            }
            let host = a.token("a host")?;
            let pt = a.token("a port")?;
            let port = port_of(&pt)?;
            if port == 0 {
                return Err(CmdError::at(pt.span, "port 0 is no server's port"));
            }
            Ok(of(resolve(&host, port).await?))
        }
    }
}

/// How long the bench waits for its peer.
fn wait_of(s: &Session, a: &mut Args) -> CmdResult<Duration> {
    Ok(a.timeout()?.or(s.wait_limit).unwrap_or(DEFAULT_WAIT))
}

/// A whole-number option `kw N` within `range`.
fn count_option(
    a: &mut Args,
    kw: &str,
    what: &str,
    range: std::ops::RangeInclusive<u64>,
) -> CmdResult<Option<u64>> {
    match a.option(kw, what)? {
        Some(t) => Ok(Some(number_of(&t, what, range)?)),
        None => Ok(None),
    }
}

/// A failed bench as the command's error.
fn failed(kind: &str, e: BenchError) -> CmdError {
    let exit = if e.is_timeout() {
        Exit::TempFail
    } else if e.is_unavailable() {
        Exit::Unavailable
    } else if matches!(e, BenchError::Refused { .. }) {
        Exit::Usage
    } else {
        Exit::OsErr
    };
    let hint = match &e {
        BenchError::NotBench { .. } => {
            Some("`bench` talks to a `bench serve` of socklab (this shell or another one)")
        }
        _ => None,
    };
    let e = CmdError::new(exit, format!("bench {kind}: {e}"));
    match hint {
        Some(h) => e.hint(h),
        None => e,
    }
}

/// A live line on a terminal; nothing in a script.
fn live_bar(s: &Session, what: &str) -> Option<ProgressBar> {
    if !s.interactive {
        return None;
    }
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        pb.set_style(style);
    }
    pb.set_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    Some(pb)
}

/// MiB per second, as the figure lines show it.
fn mib_s(bytes_per_s: f64) -> String {
    format!("{:.1} MiB/s", bytes_per_s / (1024.0 * 1024.0))
}

/// Bytes in the largest binary unit that keeps a number above 1.
fn bytes(n: u64) -> String {
    let n = n as f64;
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size as f64 {
            return format!("{:.2} {unit}", n / size as f64);
        }
    }
    format!("{n} B")
}

/// Microseconds from nanoseconds.
fn us(ns: u64) -> String {
    format!("{:.1} us", ns as f64 / 1000.0)
}

/// `bench stream [HOST PORT | NAME] [for DUR | SIZE] [streams N] [timeout DUR]`
async fn stream(s: &mut Session, mut a: Args) -> CmdResult {
    let wait = wait_of(s, &mut a)?;
    let streams = count_option(
        &mut a,
        "streams",
        "a number of streams",
        1..=u64::from(bench::MAX_STREAMS),
    )?
    .unwrap_or(1);
    let dur = match a.option("for", "a duration like 5s")? {
        Some(t) => {
            let d = duration_of(&t)?;
            if d.is_zero() || d > bench::MAX_DURATION {
                return Err(CmdError::at(
                    t.span,
                    "a bench runs for more than 0s and at most 1h",
                ));
            }
            Some((d, t.span))
        }
        None => None,
    };
    // A last token that reads as a size is the SIZE (HOST PORT never
    // ends with one: a port is a plain number, and `10M` is no port).
    // What is left is `[HOST PORT | NAME] [SIZE]`: a lone word that is no
    // size is a NAME (maybe a wrong one: `target` says so), two words are
    // NAME SIZE only when the first is a socket of this shell.
    let first = a.peek_word().unwrap_or_default();
    let known = s.lab.exists(first);
    let size = match a.len() {
        1 if !known && parse::size(first).is_ok() => Some(size_of(&a.take_last("a size")?)?),
        2 if known => Some(size_of(&a.take_last("a size")?)?),
        3 => Some(size_of(&a.take_last("a size")?)?),
        _ => None,
    };
    if let (Some(_), Some((_, span))) = (size, dur) {
        return Err(CmdError::at(span, "give `for DUR` or a SIZE, not both"));
    }
    let amount = match (size, dur) {
        (Some(b), _) => Amount::Bytes(b),
        (None, Some((d, _))) => Amount::For(d),
        (None, None) => Amount::For(DEFAULT_FOR),
    };
    let to = target(s, &mut a).await?;
    a.done()?;
    let streams = u32::try_from(streams).unwrap_or(1);
    let pb = live_bar(s, "bench stream");
    let mut shown = 0usize;
    let mut run = bench::stream(to.addr, amount, streams, wait);
    let report = run
        .finish(|l: &Live| {
            if let (Some(pb), Some(rate)) = (&pb, l.rate) {
                shown += 1;
                let line = format!("bench stream: second {shown} {}", mib_s(rate));
                pb.suspend(|| s.say(&line));
                pb.set_message(format!("bench stream: {} sent", bytes(l.done)));
            }
        })
        .await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let r = report.map_err(|e| failed("stream", e))?;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    s.say(format!(
        "bench stream: throughput {}",
        mib_s(r.bytes as f64 / secs)
    ));
    s.say(format!("bench stream: bytes {}", bytes(r.bytes)));
    s.say(format!("bench stream: time {secs:.2} s"));
    if r.streams > 1 {
        s.say(format!("bench stream: streams {} conns", r.streams));
    }
    Ok(())
}

/// A SIZE token: bytes to send, 1 to 1 TiB.
fn size_of(t: &Token) -> CmdResult<u64> {
    let w = t.word().unwrap_or_default();
    let n = parse::size(w).map_err(|_| {
        CmdError::at(
            t.span,
            format!("expected a size like 100M (or `for DUR`), found '{w}'"),
        )
    })?;
    if n == 0 || n > MAX_BYTES {
        return Err(CmdError::at(
            t.span,
            format!("a size is 1 byte to 1T, not {n}"),
        ));
    }
    Ok(n)
}

/// `bench rtt [HOST PORT | NAME] [count N] [size BYTES] [udp] [timeout DUR]`
async fn rtt(s: &mut Session, mut a: Args) -> CmdResult {
    let wait = wait_of(s, &mut a)?;
    let udp = a.keyword_anywhere("udp");
    let count = count_option(
        &mut a,
        "count",
        "a number of round trips",
        1..=bench::MAX_ROUND_TRIPS,
    )?
    .unwrap_or(DEFAULT_TRIPS);
    let size = count_option(
        &mut a,
        "size",
        "a message size in bytes",
        1..=bench::MAX_MESSAGE as u64,
    )?
    .unwrap_or(DEFAULT_SIZE);
    let to = target(s, &mut a).await?;
    a.done()?;
    let pb = live_bar(s, "bench rtt");
    let mut run = bench::rtt(to.addr, count, size as usize, udp, wait);
    let report = run
        .finish(|l: &Live| {
            if let Some(pb) = &pb {
                pb.set_message(format!("bench rtt: {} of {count} round trips", l.done));
            }
        })
        .await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let r = report.map_err(|e| failed("rtt", e))?;
    s.say(format!("bench rtt: count {} trips", r.count));
    say_percentiles(s, "rtt", &r.rtt);
    Ok(())
}

/// min, p50, p90, p99, p99.9, max, one line each.
fn say_percentiles(s: &Session, kind: &str, p: &Percentiles) {
    for (name, ns) in [
        ("min", p.min),
        ("p50", p.p50),
        ("p90", p.p90),
        ("p99", p.p99),
        ("p99.9", p.p999),
        ("max", p.max),
    ] {
        s.say(format!("bench {kind}: {name} {}", us(ns)));
    }
}

/// `bench connect [HOST PORT | NAME] [count N] [concurrency C] [timeout DUR]`
async fn connect(s: &mut Session, mut a: Args) -> CmdResult {
    let wait = wait_of(s, &mut a)?;
    let count = count_option(
        &mut a,
        "count",
        "a number of connections",
        1..=bench::MAX_CONNECTS,
    )?
    .unwrap_or(DEFAULT_CONNECTS);
    let concurrency = count_option(
        &mut a,
        "concurrency",
        "a number of connections at once",
        1..=bench::MAX_CONCURRENCY,
    )?
    .unwrap_or(1);
    let to = target(s, &mut a).await?;
    a.done()?;
    let pb = live_bar(s, "bench connect");
    let mut run = bench::connect(to.addr, count, concurrency, wait);
    let report = run
        .finish(|l: &Live| {
            if let Some(pb) = &pb {
                pb.set_message(format!("bench connect: {} of {count} connections", l.done));
            }
        })
        .await;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let r = report.map_err(|e| failed("connect", e))?;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    s.say(format!(
        "bench connect: rate {:.0} conn/s",
        r.count as f64 / secs
    ));
    s.say(format!("bench connect: count {} conns", r.count));
    say_percentiles(s, "connect", &r.times);
    Ok(())
}

/// `bench hold [HOST PORT | NAME] N [timeout DUR]`
///
/// Against a bench server of this process, the clients are held by a
/// process of their own (this binary, `--socklab-bench-hold`): each
/// connection is then one descriptor in each process, not two in one, and
/// the memory figure is the growth of both.
async fn hold(s: &mut Session, mut a: Args) -> CmdResult {
    let wait = wait_of(s, &mut a)?;
    let nt = a.take_last("a number of connections to hold")?;
    let n = number_of(&nt, "a number of connections", 1..=bench::MAX_HOLD)?;
    let to = target(s, &mut a).await?;
    a.done()?;
    let pb = live_bar(s, "bench hold");
    let report = if to.local {
        hold_beside(to.addr, n, wait, &pb).await
    } else {
        hold_here(to.addr, n, wait, &pb).await
    };
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let r = report?;
    s.say(format!("bench hold: held {} conns", r.held));
    s.say(format!("bench hold: echoed {} conns", r.echoed));
    if let (Some(rss), true) = (r.rss_growth, r.held > 0) {
        s.say(format!(
            "bench hold: rss {:.1} KiB/conn",
            rss as f64 / r.held as f64 / 1024.0
        ));
    }
    s.say(format!("bench hold: nofile {} fds", r.nofile));
    let (failures, first) = r.failures;
    if failures > 0 || r.echoed < r.asked {
        s.say(format!("bench hold: failed {failures} conns"));
        for f in &first {
            s.say(format!("   {f}"));
        }
        return Err(CmdError::new(
            Exit::Unavailable,
            format!(
                "bench hold: {} of {} connections were not held and echoed",
                r.asked - r.echoed,
                r.asked
            ),
        ));
    }
    Ok(())
}

/// `hold` with the clients in this process.
async fn hold_here(
    to: SocketAddr,
    n: u64,
    wait: Duration,
    pb: &Option<ProgressBar>,
) -> CmdResult<HoldReport> {
    let (live_tx, mut live) = tokio::sync::watch::channel(Live::default());
    let work = bench::hold(to, n, 1, wait, &live_tx);
    tokio::pin!(work);
    let held = loop {
        tokio::select! {
            r = &mut work => break r,
            Ok(()) = live.changed() => {
                if let Some(pb) = pb {
                    let done = live.borrow_and_update().done;
                    pb.set_message(format!("bench hold: {done} of {n} connections open"));
                }
            }
        }
    };
    let held = held.map_err(|e| failed("hold", e))?;
    let report = held.report.clone();
    held.close();
    Ok(report)
}

/// The flag that makes this binary a `bench hold` client process.
const HOLD_CHILD: &str = "--socklab-bench-hold";

/// `hold` with the clients in a process of their own, beside this one's
/// server: the figures are both processes' (memory) and the limit on
/// open files is this one's (the server's side).
async fn hold_beside(
    to: SocketAddr,
    n: u64,
    wait: Duration,
    pb: &Option<ProgressBar>,
) -> CmdResult<HoldReport> {
    let nofile = bench::raise_nofile(n + 64);
    if n + 64 > nofile {
        return Err(CmdError::new(
            Exit::Usage,
            format!("bench hold: {n} connections need {n} descriptors for the server's side here, and the limit on open files (RLIMIT_NOFILE) is {nofile} even after raising it"),
        ));
    }
    let io = |e: std::io::Error| {
        CmdError::new(Exit::OsErr, format!("bench hold: the client process: {e}"))
    };
    let exe = std::env::current_exe().map_err(io)?;
    let before = bench::rss();
    let mut child = tokio::process::Command::new(exe)
        .arg(HOLD_CHILD)
        .arg(to.to_string())
        .arg(n.to_string())
        .arg(wait.as_millis().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(io)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io(std::io::Error::other("no stdout")))?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    // Each connect and echo has `wait`, IN_FLIGHT at a time, and failures
    // stop at 64: the child is done well within this.
    let limit = wait * u32::try_from(4 + n / 64).unwrap_or(u32::MAX);
    let mut report = None;
    let mut failures = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.map_err(io)? {
            let mut words = line.splitn(2, ' ');
            match (words.next(), words.next()) {
                (Some("live"), Some(done)) => {
                    if let Some(pb) = pb {
                        pb.set_message(format!("bench hold: {done} of {n} connections open"));
                    }
                }
                (Some("fail"), Some(f)) => failures.push(f.to_string()),
                (Some("error"), Some(e)) => {
                    return Err(CmdError::new(Exit::Unavailable, format!("bench hold: {e}")))
                }
                (Some("held"), Some(figures)) => {
                    let f: Vec<u64> = figures.split(' ').filter_map(|w| w.parse().ok()).collect();
                    if let [held, echoed, rss, failed] = f[..] {
                        report = Some((held, echoed, rss, failed));
                    }
                    break;
                }
                _ => {}
            }
        }
        Ok(())
    };
    match tokio::time::timeout(limit, read).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(CmdError::new(
                Exit::TempFail,
                format!(
                    "bench hold: the client process gave no figures within {}",
                    super::common::show_duration(limit)
                ),
            ))
        }
    }
    let after = bench::rss();
    // Its stdin closed: the client process closes its connections and ends.
    drop(child.stdin.take());
    let _ = tokio::time::timeout(wait, child.wait()).await;
    let Some((held, echoed, child_rss, failed)) = report else {
        return Err(CmdError::new(
            Exit::OsErr,
            "bench hold: the client process ended without its figures",
        ));
    };
    let rss_growth = match (before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) + child_rss),
        _ => None,
    };
    Ok(HoldReport {
        asked: n,
        held,
        echoed,
        rss_growth,
        nofile,
        failures: (failed, failures),
    })
}

/// Makes this process a `bench hold` client process when asked
/// (`--socklab-bench-hold ADDR N WAIT_MS`): holds N connections, writes
/// its figures to stdout (`held HELD ECHOED RSS_GROWTH FAILED`), keeps
/// them open until its stdin ends, and exits.
pub fn hold_child_if_requested() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(HOLD_CHILD) {
        return;
    }
    std::process::exit(hold_child(&args[2..]));
}

fn hold_child(args: &[String]) -> i32 {
    let (Some(to), Some(n), Some(wait)) = (
        args.first().and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(1).and_then(|a| a.parse::<u64>().ok()),
        args.get(2).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        println!("error bad arguments");
        return 64;
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        println!("error cannot start a runtime");
        return 71;
    };
    rt.block_on(async {
        let (live_tx, mut live) = tokio::sync::watch::channel(Live::default());
        let work = bench::hold(to, n, 1, Duration::from_millis(wait), &live_tx);
        tokio::pin!(work);
        let held = loop {
            tokio::select! {
                r = &mut work => break r,
                Ok(()) = live.changed() => println!("live {}", live.borrow_and_update().done),
            }
        };
        match held {
            Err(e) => {
                println!("error {e}");
                1
            }
            Ok(held) => {
                let r = &held.report;
                for f in &r.failures.1 {
                    println!("fail {f}");
                }
                println!(
                    "held {} {} {} {}",
                    r.held,
                    r.echoed,
                    r.rss_growth.unwrap_or(0),
                    r.failures.0
                );
                // Until the parent has measured: its end of our stdin.
                let _ = tokio::task::spawn_blocking(|| {
                    std::io::Read::read(&mut std::io::stdin(), &mut [0u8; 1])
                })
                .await;
                held.close();
                0
            }
        }
    })
}
