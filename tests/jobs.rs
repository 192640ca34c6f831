//! The multitasking lab through the real binary: which process and thread
//! each worker line comes from, and that nothing outlives `kill` or `quit`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::support::run_script;

static LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[(\w+) pid (\d+) \([^)]*\) tid (\d+) \([^)]*\)\] (.*)$").unwrap()
});

/// (workload, pid, tid, text) of every worker line in a transcript.
fn worker_lines(stdout: &str) -> Vec<(String, u32, u32, String)> {
    stdout
        .lines()
        .filter_map(|l| LINE.captures(l))
        .map(|c| {
            (
                c[1].to_string(),
                c[2].parse().unwrap(),
                c[3].parse().unwrap(),
                c[4].to_string(),
            )
        })
        .collect()
}

/// Runs a script in a socklab whose PID we know.
fn run_with_pid(script: &str) -> (u32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (pid, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn process_workers_have_their_own_pids() {
    let (shell, out) = run_with_pid("spawn coding music as process times 2 every 1ms\n");
    let lines = worker_lines(&out);
    assert_eq!(lines.len(), 4, "{out}");
    let pids: BTreeSet<u32> = lines.iter().map(|l| l.1).collect();
    assert_eq!(pids.len(), 2, "two processes: {out}");
    assert!(!pids.contains(&shell), "workers are not the shell: {out}");
    for (_, pid, tid, _) in &lines {
        assert_eq!(pid, tid, "a one-thread process runs on its main thread");
    }
    assert!(
        out.contains("敲代码...1") && out.contains("听音乐--------1"),
        "{out}"
    );
}

#[test]
fn thread_workers_share_the_shells_pid_with_their_own_tids() {
    let (shell, out) = run_with_pid("spawn coding music as thread times 2 every 1ms\n");
    let lines = worker_lines(&out);
    assert_eq!(lines.len(), 4, "{out}");
    let tids: BTreeSet<u32> = lines.iter().map(|l| l.2).collect();
    assert_eq!(tids.len(), 2, "a thread each: {out}");
    for (_, pid, tid, _) in &lines {
        assert_eq!(*pid, shell, "threads live in the shell's process");
        assert_ne!(*tid, shell, "not the shell's main thread");
    }
}

#[test]
fn task_workers_run_in_the_shells_process() {
    let (shell, out) = run_with_pid("spawn coding music as task times 2 every 1ms\n");
    let lines = worker_lines(&out);
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines.iter().all(|l| l.1 == shell), "{out}");
}

/// Whether a process is gone (or at least not running: a zombie reaped by
/// init is gone soon; we wait a bounded time for the kernel to finish).
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) => {
                // A process that still exists must not be ours any more: a
                // zombie or orphan of a worker would be a leak.
                if Instant::now() > deadline {
                    eprintln!("still there: {stat}");
                    return false;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts socklab with a long background job, reads the worker PIDs it
/// prints, then sends `rest` and closes stdin.
fn background_job_then(rest: &str) -> (Vec<u32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"spawn nap nap as process times 1000 every 100ms background\n")
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut head = String::new();
    let pids: Vec<u32> = loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "socklab ended early: {head}"
        );
        head.push_str(&line);
        if let Some(list) = line.split("(pid ").nth(1) {
            break list
                .split(')')
                .next()
                .unwrap()
                .split(", ")
                .map(|p| p.parse().unwrap())
                .collect();
        }
    };
    for pid in &pids {
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_ok(),
            "worker {pid} runs"
        );
    }
    stdin.write_all(rest.as_bytes()).unwrap();
    drop(stdin);
    let mut tail = String::new();
    for line in reader.lines() {
        tail.push_str(&line.unwrap());
        tail.push('\n');
    }
    assert!(child.wait().unwrap().success());
    (pids, head + &tail)
}

#[test]
fn kill_leaves_no_worker_behind() {
    let (pids, out) = background_job_then("kill job1\njobs\n");
    assert!(
        out.contains("job1: killed (no worker left running)"),
        "{out}"
    );
    for pid in pids {
        assert!(gone(pid), "worker {pid} outlived kill");
    }
}

#[test]
fn quit_leaves_no_worker_behind() {
    let (pids, out) = background_job_then("quit\n");
    assert!(out.contains("bye"), "{out}");
    for pid in pids {
        assert!(gone(pid), "worker {pid} outlived quit");
    }
}

#[test]
fn end_of_script_leaves_no_worker_behind() {
    let (pids, _) = background_job_then("");
    for pid in pids {
        assert!(gone(pid), "worker {pid} outlived the script");
    }
}

#[test]
fn spawn_errors_are_clear_and_start_nothing() {
    let run = run_script(
        "!spawn dancing\n!spawn coding times 0\n!spawn coding times 1000000000\n!kill job9\n!wait job9\n!spawn\njobs\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("no workload named 'dancing'"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("times must be 1..=100000, got 0"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("no job named 'job9'"), "{}", run.stdout);
    assert!(
        run.stdout.ends_with("socklab> jobs\nno jobs\n"),
        "{}",
        run.stdout
    );
}
