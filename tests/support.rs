//! Running the real `socklab` binary and making its transcripts
//! comparable.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What one run of socklab printed.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Runs socklab with `script` piped to its standard input.
pub fn run_script(script: &str, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("socklab starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let script = script.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(script.as_bytes());
    });
    let out = child.wait_with_output().expect("socklab runs");
    let _ = writer.join();
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// The machine's ephemeral port range (ports the OS picks for port 0 and
/// for clients).
fn ephemeral() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Replaces ephemeral port numbers (and only those) with `[port]`: after an
/// address (`127.0.0.1:41234`, `[::1]:41234`, `127.0.0.1 41234` as typed in a
/// command), in a Python address tuple (`('127.0.0.1', 41234)`), and after
/// "port ".
pub fn filter_ports(text: &str) -> String {
    static PORT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?P<pre>\d+\.\d+\.\d+\.\d+[: ]|\]:|::1 |', |free port |port )(?P<port>\d{1,5})\b",
        )
        .unwrap()
    });
    let (lo, hi) = ephemeral();
    PORT.replace_all(text, |c: &Captures<'_>| {
        let port: u32 = c["port"].parse().unwrap_or(0);
        if (lo..=hi).contains(&port) {
            format!("{}[port]", &c["pre"])
        } else {
            c[0].to_string()
        }
    })
    .into_owned()
}

/// A transcript as a snapshot shows it: stdout, then stderr and the exit
/// status when there are any.
pub fn transcript(run: &Run) -> String {
    let mut s = filter_ports(&run.stdout);
    if !run.stderr.is_empty() {
        s.push_str("--- stderr ---\n");
        s.push_str(&filter_ports(&run.stderr));
    }
    if run.code != 0 {
        s.push_str(&format!("--- exit status {} ---\n", run.code));
    }
    s
}

#[test]
fn filter_touches_only_ephemeral_ports() {
    let (lo, _) = ephemeral();
    let text = format!("127.0.0.1:{lo} [::1]:{lo} ('127.0.0.1', {lo}) 127.0.0.1:5555 65507 bytes");
    assert_eq!(
        filter_ports(&text),
        "127.0.0.1:[port] [::1]:[port] ('127.0.0.1', [port]) 127.0.0.1:5555 65507 bytes"
    );
}
