//! The small test harness and what the tests share.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use socklab_tasks::{JobInfo, Jobs, Line, LineKind};
use tokio::sync::mpsc::Receiver;

/// A test: its name and its body (which panics to fail).
pub type Test = (&'static str, fn());

/// Runs the tests whose names contain one of the non-flag arguments (all
/// if none), one after another; libtest's flags are accepted and ignored.
pub fn run(tests: &[Test]) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let chosen: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        name == f
                    } else {
                        name.contains(f.as_str())
                    }
                })
        })
        .collect();
    println!("\nrunning {} tests", chosen.len());
    let start = Instant::now();
    let mut failed = Vec::new();
    for (name, test) in &chosen {
        let t0 = Instant::now();
        let ok = catch_unwind(AssertUnwindSafe(test)).is_ok();
        let took = t0.elapsed();
        println!(
            "test {name} ... {} ({:.2}s)",
            if ok { "ok" } else { "FAILED" },
            took.as_secs_f64()
        );
        if !ok {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len(),
        tests.len() - chosen.len(),
        start.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failures:\n    {}", failed.join("\n    "));
        ExitCode::from(101)
    }
}

/// A multi-thread runtime with two workers (the shell's kind).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A registry whose process workers are this test binary (the default:
/// `current_exe`).
pub fn jobs() -> (Jobs, Receiver<Line>) {
    Jobs::new(1024)
}

/// Waits for `job` to end while draining the channel; returns its final
/// info and its lines, in arrival order. Lines of other jobs are kept in
/// `others`.
pub async fn collect(
    jobs: &Jobs,
    rx: &mut Receiver<Line>,
    job: &str,
    others: &mut Vec<Line>,
) -> (JobInfo, Vec<Line>) {
    let all = collect_all(jobs, rx, &[job]).await;
    let (lines, rest): (Vec<Line>, Vec<Line>) = all.into_iter().partition(|l| &*l.job == job);
    others.extend(rest);
    (jobs.info(job).unwrap(), lines)
}

/// Waits for every job of `names` to end while draining the channel;
/// returns every line that arrived meanwhile, in arrival order.
pub async fn collect_all(jobs: &Jobs, rx: &mut Receiver<Line>, names: &[&str]) -> Vec<Line> {
    let mut lines = Vec::new();
    for name in names {
        let mut wait = std::pin::pin!(jobs.wait(name, Duration::from_secs(60)));
        loop {
            tokio::select! {
                info = &mut wait => {
                    info.unwrap();
                    break;
                }
                Some(l) = rx.recv() => lines.push(l),
            }
        }
    }
    // Everything the jobs sent is on the channel once wait returned.
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    lines
}

/// Drains the channel until `n` step lines of `job` have arrived.
pub async fn until_steps(rx: &mut Receiver<Line>, job: &str, n: usize) -> Vec<Line> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got
        .iter()
        .filter(|l: &&Line| l.kind == LineKind::Step)
        .count()
        < n
    {
        let l = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("steps in time")
            .expect("channel open");
        if &*l.job == job {
            got.push(l);
        }
    }
    got
}

pub fn steps(lines: &[Line]) -> Vec<&Line> {
    lines.iter().filter(|l| l.kind == LineKind::Step).collect()
}

/// `(state, ppid)` from `/proc/PID/stat`, or `None` if there is no such
/// process.
pub fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) S PPID ...": COMM may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The PID is gone: not running, not a zombie, not an orphan adopted by
/// init. (If the PID was reused since, the new process is neither our
/// zombie nor an orphan.)
pub fn assert_gone(pid: u32) {
    assert_ne!(pid, 0);
    assert_ne!(pid, std::process::id());
    if let Some((state, ppid)) = proc_stat(pid) {
        assert!(
            state != 'Z' && ppid != std::process::id() && ppid != 1,
            "worker {pid} still there: state {state}, parent {ppid}"
        );
    }
}

/// PIDs of our own live or zombie children.
pub fn our_children() -> Vec<(u32, char)> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (state, ppid) = proc_stat(pid)?;
            (ppid == me).then_some((pid, state))
        })
        .collect()
}

/// This thread's kernel id.
pub fn gettid() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}
