//! Relays and the chat broker with the real peer programs: curl through a
//! relay to Python's http.server, ncat on both ends of a relay that cuts
//! every write into single bytes, two ncat clients in a chat, a client
//! that floods the chat with one endless line, a relay client that
//! vanishes mid-stream. A test whose program is missing fails and names it.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, need, run_script, Reaped};

/// Waits until a socket listens on 127.0.0.1:`port` (the kernel's table,
/// so no probe connection takes a one-client server's client; at most
/// 10 s).
fn wait_listening(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    let row = format!("0100007F:{port:04X} 00000000:0000 0A");
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        if table.contains(&row) {
            return;
        }
        assert!(Instant::now() < until, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn curl_fetches_a_file_through_a_relay_from_python_http_server() {
    need("curl");
    need("python3");
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("hello.txt"), "hello through the relay\n").expect("write");
    let port = free_port();
    let server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server starts");
    let _server = Reaped(server);
    wait_listening(port);
    let run = run_script(
        &format!(
            "relay 0 to 127.0.0.1 {port} as r\n\
             exec curl -s --max-time 10 http://127.0.0.1:{{r.port}}/hello.txt as curl\n\
             expect curl \"hello through the relay\\n\"\n\
             close curl\n"
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("r.1 client -> upstream: ") && out.contains("GET /hello.txt HTTP/1.1"),
        "the request is shown on its way upstream:\n{out}"
    );
    assert!(
        out.contains("r.1 upstream -> client: ") && out.contains("HTTP/1.0 200 OK"),
        "the answer is shown on its way back:\n{out}"
    );
    assert!(out.contains("curl: exited with status 0"), "{out}");
}

#[test]
fn ncat_to_ncat_through_one_byte_slices_and_latency_arrives_whole_and_in_order() {
    need("ncat");
    let port = free_port();
    let mut server = Command::new("ncat")
        .args(["-l", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ncat -l starts");
    let mut to_server = server.stdin.take().expect("piped");
    let mut from_server = server.stdout.take().expect("piped");
    let _server = Reaped(server);
    wait_listening(port);
    let message: String = (0..40)
        .map(|i| format!("line {i:02} of the message\n"))
        .collect();
    let reply = "the server's answer, one byte at a time\n";
    // The server's answer is waiting in its stdin before anyone connects.
    to_server.write_all(reply.as_bytes()).expect("to ncat");
    let script = format!(
        "relay 0 to 127.0.0.1 {port} as r\n\
         fault r slice 1\n\
         fault r latency 20ms jitter 10ms\n\
         info r\n\
         exec ncat 127.0.0.1 {{r.port}} as cli\n\
         expect cli \"{}\"\n\
         send cli \"{}\"\n\
         close cli\n",
        reply.replace('\n', "\\n"),
        message.replace('\n', "\\n"),
    );
    // ncat -l ends when its client has gone; what it printed is what came.
    let reader = std::thread::spawn(move || {
        let mut got = String::new();
        let _ = from_server.read_to_string(&mut got);
        got
    });
    let run = run_script(&script, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("r: faults now: latency 20ms jitter 10ms, slice 1 B"),
        "{}",
        run.stdout
    );
    drop(to_server);
    let got = reader.join().expect("reader");
    assert_eq!(got, message, "the server got every byte, in order");
}

#[test]
fn two_ncat_clients_talk_through_a_chat() {
    need("ncat");
    let run = run_script(
        "chat 0 as room\n\
         exec ncat 127.0.0.1 {room.port} as one\n\
         expect one \"<announce> already connected: nobody.\\n\"\n\
         exec ncat 127.0.0.1 {room.port} as two\n\
         expect two \"<announce> already connected: 127.0.0.1 as <user1>.\\n\"\n\
         expect one \"<announce> 127.0.0.1 is connected as <user2>.\\n\"\n\
         send one \"hello from one\\n\"\n\
         expect two \"<user1> hello from one\\n\"\n\
         send two \"hi back\\n\"\n\
         expect one \"<user2> hi back\\n\"\n\
         close one\n\
         expect two \"<announce> <user1> is disconnected.\\n\"\n\
         close two\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("room <user1> 14 bytes \"hello from one\""),
        "{out}"
    );
    assert!(out.contains("room <user2> 7 bytes \"hi back\""), "{out}");
}

/// The line bound: a client that sends 100 MiB without a newline is
/// dropped once it passes MAX_LINE, the others are told it left, and
/// socklab's memory stays far below what it was sent.
#[test]
fn a_chat_client_flooding_one_endless_line_is_dropped_with_bounded_memory() {
    need("python3");
    let flood = r#"import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
chunk = b'x' * (1 << 20)
try:
    for i in range(100):
        s.sendall(chunk)
except OSError:
    pass
print('flood over', flush=True)
"#;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("flood.py");
    std::fs::write(&path, flood).expect("write");
    let run = run_script(
        &format!(
            "chat 0 as room\n\
             connect room as b\n\
             exec python3 {} {{room.port}} as flood\n\
             expect flood timeout 60s \"flood over\\n\"\n\
             close flood\n\
             expect b \"<announce> <user2> is disconnected.\\n\"\n\
             exec sh -c \"grep VmHWM /proc/$PPID/status\" as mem\n\
             expect mem /VmHWM:\\s+\\d+ kB/\n\
             close mem\n",
            path.display()
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains(&format!(
            "room: <user2> left (a line over {} bytes without a newline: disconnected)",
            socklab_net::MAX_LINE
        )),
        "{out}"
    );
    let peak: u64 = regex::Regex::new(r"VmHWM:(?:\\t|\s)+(\d+) kB")
        .expect("regex")
        .captures(out)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("the peak memory is shown:\n{out}"));
    eprintln!("chat flood of 100 MiB in one line: socklab peak RSS {peak} KiB");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}

/// A relay client that vanishes with data unread (its kernel resets the
/// connection): the relay resets the upstream leg, nothing hangs.
#[test]
fn a_relay_client_that_vanishes_mid_stream_resets_the_upstream_leg() {
    need("python3");
    let vanish = r#"import socket, sys, os
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
print('connected', flush=True)
sys.stdin.readline()
s.recv(10)
os._exit(0)
"#;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("vanish.py");
    std::fs::write(&path, vanish).expect("write");
    let run = run_script(
        &format!(
            "listen 0 as srv\n\
             relay 0 to srv as r\n\
             exec python3 {} {{r.port}} as py\n\
             expect py \"connected\\n\"\n\
             accept srv\n\
             send srv.1 fill:64K\n\
             send py \"go\\n\"\n\
             !expect srv.1 \"never sent\"\n\
             close py\n",
            path.display()
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("r.1: a leg was reset: the other leg is reset too"),
        "{out}"
    );
    assert!(out.contains("srv.1 <- reset by the peer (RST)"), "{out}");
}

/// A stalled relay reads nothing: a client that sends 100 MiB into it is
/// held back by TCP flow control, and socklab buffers at most a pair's
/// bound.
#[test]
fn a_stalled_relay_holds_back_a_flood_instead_of_buffering_it() {
    need("python3");
    let flood = r#"import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.settimeout(2)
chunk = b'x' * (1 << 20)
sent = 0
try:
    for i in range(100):
        s.sendall(chunk)
        sent += len(chunk)
except OSError:
    pass
print('sent', sent, 'bytes', flush=True)
"#;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("stall.py");
    std::fs::write(&path, flood).expect("write");
    let run = run_script(
        &format!(
            "listen 0 as srv\n\
             relay 0 to srv as r\n\
             fault r stall\n\
             exec python3 {} {{r.port}} as py\n\
             expect py timeout 60s /sent \\d+ bytes/\n\
             close py\n\
             exec sh -c \"grep VmHWM /proc/$PPID/status\" as mem\n\
             expect mem /VmHWM:\\s+\\d+ kB/\n\
             close mem\n",
            path.display()
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    let sent: u64 = regex::Regex::new(r#""sent (\d+) bytes""#)
        .expect("regex")
        .captures(out)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("the client says how much it sent:\n{out}"));
    let peak: u64 = regex::Regex::new(r"VmHWM:(?:\\t|\s)+(\d+) kB")
        .expect("regex")
        .captures(out)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("the peak memory is shown:\n{out}"));
    eprintln!("stalled relay: the client got {sent} bytes out of 100 MiB into the kernel; socklab peak RSS {peak} KiB");
    assert!(sent < 100 << 20, "nothing held the client back");
    assert!(
        !out.contains("r.1 client -> upstream"),
        "a stall reads nothing:\n{out}"
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}
