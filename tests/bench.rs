//! `bench` against what it meets: a bench server of another socklab
//! process (interop), peers that are no bench server (an ncat echo, a
//! silent ncat, nothing at all), and a server that dies in the middle of a
//! run. Every case ends with one clear line and within its deadline.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;

use crate::support::{free_port, need, run_script, Reaped};

/// Waits until something listens on 127.0.0.1:`port` (the kernel's table;
/// at most 10 s).
fn wait_listening(port: u16) {
    wait_for_state(port, "0A");
}

/// Waits until a connection to 127.0.0.1:`port` is established (the
/// server's side of it).
fn wait_connected(port: u16) {
    wait_for_state(port, "01");
}

fn wait_for_state(port: u16, state: &str) {
    let local = format!("0100007F:{port:04X}");
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let found = table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&state)
        });
        if found {
            return;
        }
        assert!(Instant::now() < until, "no state {state} on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Another socklab process with a bench server on `port`, until killed.
fn bench_server(port: u16) -> Reaped {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socklab starts");
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(format!("bench serve {port} as b\nsleep 120s\n").as_bytes());
        // Kept open: the script runs until it is killed.
        std::mem::forget(stdin);
    }
    wait_listening(port);
    Reaped(child)
}

/// Every figure line has the one form benches/compare reads.
fn figures(out: &str) -> Vec<(String, String, f64, String)> {
    let re = Regex::new(r"^bench (\w+): (\S+) ([0-9.]+) (\S+)$").unwrap();
    out.lines()
        .filter(|l| l.starts_with("bench "))
        .map(|l| {
            let c = re
                .captures(l)
                .unwrap_or_else(|| panic!("not a figure line: {l}"));
            (
                c[1].to_string(),
                c[2].to_string(),
                c[3].parse().unwrap(),
                c[4].to_string(),
            )
        })
        .collect()
}

#[test]
fn stream_rtt_and_hold_work_against_a_bench_server_of_another_process() {
    let port = free_port();
    let _server = bench_server(port);
    let run = run_script(
        &format!(
            "bench stream 127.0.0.1 {port} 4M streams 2\n\
             bench rtt 127.0.0.1 {port} count 300\n\
             bench rtt 127.0.0.1 {port} count 100 size 2000 udp\n\
             bench connect 127.0.0.1 {port} count 100 concurrency 4\n\
             bench hold 127.0.0.1 {port} 100\n"
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let f = figures(&run.stdout);
    let get = |kind: &str, name: &str| {
        f.iter()
            .filter(|(k, n, _, _)| k == kind && n == name)
            .map(|(_, _, v, u)| (*v, u.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(get("stream", "bytes"), vec![(4.0, "MiB".to_string())]);
    assert!(get("stream", "throughput")[0].0 > 0.0);
    // Two rtt runs (TCP, UDP): each p50 between its min and its max.
    for ((min, p50), max) in get("rtt", "min")
        .iter()
        .zip(get("rtt", "p50"))
        .zip(get("rtt", "max"))
    {
        assert!(
            min.0 > 0.0 && min.0 <= p50.0 && p50.0 <= max.0,
            "{}",
            run.stdout
        );
    }
    assert_eq!(get("rtt", "count").len(), 2);
    assert_eq!(get("connect", "count"), vec![(100.0, "conns".to_string())]);
    assert_eq!(get("hold", "held"), vec![(100.0, "conns".to_string())]);
    assert_eq!(get("hold", "echoed"), vec![(100.0, "conns".to_string())]);
}

#[test]
fn peers_that_are_no_bench_server_get_one_clear_error_each_within_the_deadline() {
    need("ncat");
    let echo_port = free_port();
    let echo = Command::new("ncat")
        .args(["-lk", "127.0.0.1", &echo_port.to_string(), "-e", "/bin/cat"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ncat starts");
    let _echo = Reaped(echo);
    let silent_port = free_port();
    let silent = Command::new("ncat")
        .args(["-lk", "127.0.0.1", &silent_port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ncat starts");
    let _silent = Reaped(silent);
    wait_listening(echo_port);
    wait_listening(silent_port);
    let nobody = free_port();
    let started = Instant::now();
    let run = run_script(
        &format!(
            "!bench rtt 127.0.0.1 {echo_port}\n\
             !bench stream 127.0.0.1 {silent_port} 1M timeout 500ms\n\
             !bench hold 127.0.0.1 {silent_port} 10 timeout 500ms\n\
             !bench connect 127.0.0.1 {nobody}\n\
             !bench rtt 127.0.0.1 {echo_port} udp timeout 300ms\n"
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    for expected in [
        format!("error: bench rtt: 127.0.0.1:{echo_port} is not a socklab bench server: it sent the bench header back (an echo server?)"),
        format!("error: bench stream: 127.0.0.1:{silent_port} is not a socklab bench server: no answer to the bench header within 500 ms"),
        format!("error: bench hold: 127.0.0.1:{silent_port} is not a socklab bench server: no answer to the bench header within 500 ms"),
        format!("error: bench connect: connect to 127.0.0.1:{nobody}: Connection refused (os error 111)"),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        out.contains(&format!(
            "error: bench rtt: 127.0.0.1:{echo_port} is not a socklab bench server: "
        )) && out.matches("error: ").count() == 5,
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// A socklab running `script` in the background.
fn socklab(script: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("socklab starts");
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(script.as_bytes());
    }
    child
}

#[test]
fn a_bench_server_that_dies_mid_run_ends_the_run_with_one_error() {
    for (what, run) in [
        ("stream", "bench stream 127.0.0.1 {port} for 60s"),
        ("rtt", "bench rtt 127.0.0.1 {port} count 1000000"),
    ] {
        let port = free_port();
        let mut server = bench_server(port);
        let started = Instant::now();
        let client = socklab(&format!("{}\n", run.replace("{port}", &port.to_string())));
        wait_connected(port);
        server.0.kill().expect("kill the server");
        let _ = server.0.wait();
        let out = client.wait_with_output().expect("the client ends");
        let stdout = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(out.status.code(), Some(0), "{what}: {stdout}");
        let re = Regex::new(&format!(
            r"<stdin>:1: error: bench {what}: 127\.0\.0\.1:{port}: the bench server (reset|closed) the connection after \d+ (bytes of this stream|round trips)"
        ))
        .unwrap();
        assert!(re.is_match(&stdout), "{what}: {stdout}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: took {:?}",
            started.elapsed()
        );
    }
}

/// Regression (found in review): `close` of a bench server said its
/// clients were disconnected, but a sink whose client never stopped
/// sending went on reading (it looked at the close only when a read timed
/// out). The flooding client now sees its connection end.
#[test]
fn closing_a_bench_server_ends_a_client_that_never_stops_sending() {
    use std::io::{Read, Write};
    let port = free_port();
    let mut shell = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socklab starts");
    let mut stdin = shell.stdin.take().expect("its stdin");
    stdin
        .write_all(format!("bench serve {port} as b\n").as_bytes())
        .expect("the script goes in");
    let shell = Reaped(shell);
    wait_listening(port);
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client.write_all(b"SLBENCHS").expect("the sink header");
    let mut ready = [0u8; 8];
    client.read_exact(&mut ready).expect("the answer");
    assert_eq!(&ready, b"SLBREADY");
    client
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("a write timeout");
    // Floods for at most 30 s; a write that fails is the end the test wants.
    let flood = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Err(e) = client.write_all(&chunk) {
                return Some(e.kind());
            }
        }
        None
    });
    stdin.write_all(b"close b\n").expect("close goes in");
    let ended = flood.join().expect("the flood thread");
    assert!(
        matches!(
            ended,
            Some(std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
        ),
        "the client kept sending into a closed bench server: {ended:?}"
    );
    drop(stdin);
    drop(shell);
}
