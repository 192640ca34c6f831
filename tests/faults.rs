//! Issue 10: what socklab survives from hostile peers, and what it tells a
//! learner under faults. Each test names the item it pins.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::run_script;

/// The peak resident memory of process `pid` so far, in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A socklab reading its script from a pipe, with its output as lines.
struct Shell {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    out: BufReader<std::process::ChildStdout>,
}

impl Shell {
    fn start() -> Shell {
        let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Shell { child, stdin, out }
    }

    /// Sends `lines`, then reads output until a line starts with `prefix`;
    /// returns the rest of that line.
    fn run_until(&mut self, lines: &str, prefix: &str) -> String {
        self.stdin.write_all(lines.as_bytes()).unwrap();
        loop {
            let mut line = String::new();
            assert!(
                self.out.read_line(&mut line).unwrap() > 0,
                "socklab ended early"
            );
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_string();
            }
        }
    }
}

/// Issue 10 item 12: a `frame NAME len` connection fed 1 MiB frames while a
/// script command (`sleep`) runs held every frame whole (3,000 frames took
/// 3.1 GB). Now the session's event budget stops the reader (TCP flow
/// control slows the peer), and memory stays bounded.
#[test]
fn a_flood_of_framed_messages_during_sleep_stays_within_the_budget() {
    let mut shell = Shell::start();
    let pid = shell.child.id();
    let port: u16 = shell
        .run_until("listen 0 as srv\necho port {srv.port}\n", "port ")
        .parse()
        .unwrap();
    let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    peer.set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // The flood starts once the framing is set (bytes before it would be
    // cut as raw reads, and the first frame's middle would then break it).
    shell.run_until("accept srv\nframe srv.1 len\nsleep 6s\n", "srv.1: len");
    let Shell {
        mut child,
        stdin,
        mut out,
    } = shell;
    // Drain socklab's output on a thread, so its stdout never blocks it.
    let drain = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            n += 1;
            line.clear();
        }
        n
    });
    let frame = {
        let body = vec![b'x'; 1 << 20];
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&body);
        f
    };
    // At most 3,000 frames (3 GiB), at most 20 s: bounded in count and time.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    while sent < 3000 && Instant::now() < deadline {
        if peer.write_all(&frame).is_err() {
            break; // socklab stopped reading: flow control, as promised
        }
        sent += 1;
    }
    let peak = peak_rss_kib(pid);
    drop(peer);
    drop(stdin);
    let _ = child.wait();
    let _ = drain.join();
    eprintln!("item 12: {sent} frames of 1 MiB sent, socklab peak RSS {peak} KiB");
    assert!(sent > 64, "the flood hardly started ({sent} frames)");
    // The event budget (64 MiB), the inboxes (64 MiB) and the runtime: well
    // under 400 MiB whatever the peer sends.
    assert!(peak < 400 * 1024, "peak RSS {peak} KiB after {sent} frames");
}

/// Issue 10 item 8: `connect` right after `serve files|raw` hung 30 s and
/// failed in about 4 runs of 100 (the file-server flag was set only once
/// its task started, so the connect waited for an accept report that
/// never comes). A file server's kind is now fixed when it is made.
#[test]
fn connect_right_after_serve_files_never_waits_for_an_accept() {
    let mut script = String::from("mkdir {tmp}/in\n");
    for i in 0..100 {
        script.push_str(&format!(
            "serve files {{tmp}}/in 0 as files{i}\nsocket tcp as cut{i}\nconnect cut{i} files{i}\nclose cut{i}\nclose files{i}\n"
        ));
    }
    let run = run_script(&script, &["--wait", "5s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Issue 10 item 2: a send that gave up after its timeout said only "gave
/// up after 2s" while millions of bytes had gone; it now says how many.
#[test]
fn a_send_that_gives_up_says_how_many_bytes_really_went() {
    let run = run_script(
        "socket tcp as s\nbind s 127.0.0.1 0\nlisten s\nsocket tcp as c\nconnect c s\nsend c fill:64M timeout 500ms\n",
        &[],
    );
    assert_eq!(run.code, 75, "{}", run.stdout);
    let re = regex::Regex::new(r"send c: gave up after 500ms: (\d+) of 67108864 bytes were sent")
        .unwrap();
    let caps = re
        .captures(&run.stderr)
        .unwrap_or_else(|| panic!("{}", run.stderr));
    let went: u64 = caps[1].parse().unwrap();
    assert!(went > 0 && went < 67_108_864, "{went}");
}

/// Review of issue 9: a program flooding its stdout filled the event
/// channel, and the end of the script waited forever for its reader to
/// stop. The end of a script now stops readers whatever the channel holds.
#[test]
fn a_flooding_program_does_not_keep_the_script_from_ending() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"exec yes as y\nframe y line\nsleep 200ms\n")
        .unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.is_some(), "socklab did not end within 60 s");
}

/// Issue 10 item 12: 200,000 largest datagrams sent to a `udp` receiver
/// while a script command ran were all held for printing (1.16 GB). Past
/// the session's event budget they are now dropped from view, and counted.
#[test]
fn a_datagram_flood_during_sleep_stays_within_the_budget() {
    let mut shell = Shell::start();
    let pid = shell.child.id();
    let port: u16 = shell
        .run_until(
            "udp 127.0.0.1 0 as rx\necho port {rx.port}\nsleep 4s\n",
            "port ",
        )
        .parse()
        .unwrap();
    let Shell {
        mut child,
        stdin,
        mut out,
    } = shell;
    let drain = std::thread::spawn(move || {
        let mut text = String::new();
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("not shown") {
                text.push_str(&line);
            }
            line.clear();
        }
        text
    });
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let big = vec![b'u'; 65_507];
    // At most 20,000 datagrams (1.3 GB), at most 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0;
    while sent < 20_000 && Instant::now() < deadline {
        if tx.send_to(&big, ("127.0.0.1", port)).is_ok() {
            sent += 1;
        }
    }
    let peak = peak_rss_kib(pid);
    drop(stdin);
    let _ = child.wait();
    let dropped = drain.join().unwrap_or_default();
    eprintln!(
        "item 12: {sent} datagrams of 65,507 bytes sent, socklab peak RSS {peak} KiB; {}",
        dropped.trim()
    );
    assert!(
        peak < 400 * 1024,
        "peak RSS {peak} KiB after {sent} datagrams"
    );
}
