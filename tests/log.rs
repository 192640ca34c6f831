//! `log`: traffic logs through the real binary. A text log of a
//! conversation checked line by line, the hex form, names choosing
//! streams, `log off`, a pcap file read back by tcpdump, and a writer
//! that falls behind (it drops and says so; the streams never wait).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use regex::Regex;

use crate::support::run_script;

/// A log's time stamp: `2026/11/30 12:00:00.123456`.
const TS: &str = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6}";

/// Checks `text` line by line against `patterns` (regexes, `{TS}`
/// standing for a time stamp), in order, all of it.
fn check_lines(text: &str, patterns: &[&str]) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        patterns.len(),
        "the log has {} lines, expected {}:\n{text}",
        lines.len(),
        patterns.len()
    );
    for (i, (line, pat)) in lines.iter().zip(patterns).enumerate() {
        let re = Regex::new(&format!("^{}$", pat.replace("{TS}", TS))).unwrap();
        assert!(
            re.is_match(line),
            "line {} of the log is\n  {line}\nexpected /{pat}/; whole log:\n{text}",
            i + 1
        );
    }
}

/// The time stamps of a log's records, in file order.
fn stamps(text: &str) -> Vec<String> {
    let re = Regex::new(&format!(r"^[<>!] ({TS}) ")).unwrap();
    text.lines()
        .filter_map(|l| re.captures(l).map(|c| c[1].to_string()))
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the log {} cannot be read: {e}", path.display()))
}

/// A tool the test runs: it must be installed (`.ci/run` installs it).
fn tool(name: &str) -> Command {
    crate::support::need(name);
    Command::new(name)
}

#[test]
fn a_text_log_holds_every_byte_of_a_conversation_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chat.log");
    let script = format!(
        "log {log}\n\
         listen 0 as srv\n\
         connect srv as cli\n\
         send cli \"hello\\n\"\n\
         send srv.1 \"hi there\\r\\n\"\n\
         send cli \"\\x01\\x02bye\\n\"\n\
         exec cat as cat\n\
         send cat \"meow\\n\"\n\
         expect cat \"meow\\n\"\n\
         udp 0 as u1\n\
         udp 0 as u2\n\
         sendto u2 127.0.0.1 {{u1.port}} \"dgram\"\n\
         close cli\n\
         close srv.1\n\
         close cat\n\
         log off\n",
        log = log.display()
    );
    let run = run_script(&script, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("every byte in and out of every stream, present and future, as text"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(" closed: 10 record(s) written"),
        "{}",
        run.stdout
    );
    let text = read(&log);
    check_lines(
        &text,
        &[
            r"> {TS}  cli  length=6 from=0 to=5",
            r"hello",
            r"< {TS}  srv\.1  length=6 from=0 to=5",
            r"hello",
            r"> {TS}  srv\.1  length=10 from=0 to=9",
            r"hi there\\r",
            r"< {TS}  cli  length=10 from=0 to=9",
            r"hi there\\r",
            r"> {TS}  cli  length=6 from=6 to=11",
            r"\.\.bye",
            r"< {TS}  srv\.1  length=6 from=6 to=11",
            r"\.\.bye",
            r"> {TS}  cat  length=5 from=0 to=4",
            r"meow",
            r"< {TS}  cat  length=5 from=0 to=4",
            r"meow",
            r"> {TS}  u2  datagram length=5 peer=127\.0\.0\.1:\d+",
            r"dgram",
            r"< {TS}  u1  datagram length=5 peer=127\.0\.0\.1:\d+",
            r"dgram",
        ],
    );
    // Each write is logged before the read of it: times never go back.
    let times = stamps(&text);
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "{text}");
}

#[test]
fn a_hex_log_dumps_as_socat_x_does_and_names_choose_the_streams() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hex.log");
    let script = format!(
        "log {log} hex srv\n\
         listen 0 as srv\n\
         connect srv as cli\n\
         connect srv as other\n\
         send cli \"hello\\n\\x01\\x02bin\\r\\nabcdefghijklmnopqrstuvwxyz\"\n\
         send other \"not srv's\"\n\
         log\n\
         log off {log}\n",
        log = log.display()
    );
    let run = run_script(&script, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // `log` lists it: the file, the form, the streams.
    let row = Regex::new(r"\n\S+hex\.log +hex +srv +\d+ +0\n").unwrap();
    assert!(row.is_match(&run.stdout), "{}", run.stdout);
    // srv covers its clients srv.1 and srv.2 (what cli and other sent
    // arrive there), nothing of cli or other themselves.
    check_lines(
        &read(&log),
        &[
            r"< {TS}  srv\.1  length=39 from=0 to=38",
            r" 68 65 6c 6c 6f 0a                                hello\.",
            r" 01 02 62 69 6e 0d 0a                             \.\.bin\.\.",
            r" 61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70  abcdefghijklmnop",
            r" 71 72 73 74 75 76 77 78 79 7a                    qrstuvwxyz",
            r"--",
            r"< {TS}  srv\.2  length=9 from=0 to=8",
            r" 6e 6f 74 20 73 72 76 27 73                       not srv's",
            r"--",
        ],
    );
}

#[test]
fn log_off_stops_one_log_or_all() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let script = format!(
        "log {a}\n\
         log {b} cli\n\
         ! log {a}\n\
         listen 0 as srv\n\
         connect srv as cli\n\
         send cli \"one\\n\"\n\
         log off {a}\n\
         send cli \"two\\n\"\n\
         log off\n\
         send cli \"three\\n\"\n\
         log\n\
         ! log off {a}\n",
        a = a.display(),
        b = b.display()
    );
    let run = run_script(&script, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("is already open as a log"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("socklab> log\nlog: off"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("is not open as a log"),
        "{}",
        run.stdout
    );
    check_lines(
        &read(&a),
        &[
            r"> {TS}  cli  length=4 from=0 to=3",
            r"one",
            r"< {TS}  srv\.1  length=4 from=0 to=3",
            r"one",
        ],
    );
    check_lines(
        &read(&b),
        &[
            r"> {TS}  cli  length=4 from=0 to=3",
            r"one",
            r"> {TS}  cli  length=4 from=4 to=7",
            r"two",
        ],
    );
}

#[test]
fn a_log_is_appended_to_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kept.log");
    std::fs::write(&log, "an earlier line\n").unwrap();
    let mode_of = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    let before = mode_of(&log);
    let not_pcap = dir.path().join("notes.pcap");
    std::fs::write(&not_pcap, "my notes, not a capture\n").unwrap();
    let script = format!(
        "log {log}\n\
         exec cat as cat\n\
         send cat \"x\"\n\
         expect cat \"x\"\n\
         log off\n\
         ! log {dir}/no/such/dir/x.log\n\
         ! log {not_pcap}\n\
         ! log {dir}/x.pcap hex\n\
         ! log {dir}/x.pcap cli\n",
        log = log.display(),
        dir = dir.path().display(),
        not_pcap = not_pcap.display()
    );
    let run = run_script(&script, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for said in [
        "open: No such file or directory (os error 2)",
        "is not a pcap file of Ethernet frames, and a pcap log appends only to one",
        "a .pcap file holds captured frames, not text or hex",
        "a pcap log holds every segment of this shell's TCP ports",
    ] {
        assert!(run.stdout.contains(said), "{said}\n{}", run.stdout);
    }
    check_lines(
        &read(&log),
        &[
            r"an earlier line",
            r"> {TS}  cat  length=1 from=0 to=0",
            r"x",
            r"< {TS}  cat  length=1 from=0 to=0",
            r"x",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&not_pcap).unwrap(),
        "my notes, not a capture\n"
    );
    assert_eq!(mode_of(&log), before, "an existing file keeps its mode");
    let fresh = dir.path().join("fresh.log");
    let run = run_script(&format!("log {}\n", fresh.display()), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(mode_of(&fresh), 0o600, "a new log is the user's alone");
}

#[test]
fn a_pcap_log_reads_back_in_tcpdump_with_the_handshake_and_the_payload() {
    let mut tcpdump = tool("tcpdump");
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("talk.pcap");
    let script = format!(
        "listen 0 as srv\n\
         log {pcap}\n\
         connect srv as cli\n\
         send cli \"hello pcap\\n\"\n\
         close cli\n\
         close srv.1\n\
         log off\n",
        pcap = pcap.display()
    );
    let run = run_script(&script, &[]);
    assert_eq!(
        run.code, 0,
        "the pcap log needs a capture on lo (root or CAP_NET_RAW):\n{}\n{}",
        run.stdout, run.stderr
    );
    let out = tcpdump
        .args(["-n", "-A", "-r"])
        .arg(&pcap)
        .output()
        .expect("tcpdump runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tcpdump -r failed: {err}");
    assert!(err.contains("link-type EN10MB (Ethernet)"), "{err}");
    let flags: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("Flags [").nth(1)?.split(']').next())
        .collect();
    assert_eq!(
        flags.get(..3),
        Some(&["S", "S.", "."][..]),
        "the handshake first (SYN, SYN-ACK, ACK):\n{text}"
    );
    assert!(
        text.contains("Flags [P.], seq 1:12, ack 1") && text.contains("hello pcap"),
        "the payload:\n{text}"
    );
    assert!(text.contains("Flags [F.]"), "the goodbye:\n{text}");
}

#[test]
fn a_writer_that_falls_behind_drops_and_says_so_and_the_stream_never_waits() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stuck.log");
    let made = tool("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    // Nobody reads the FIFO yet: its writer blocks once the pipe (64 KiB)
    // is full, and 16 MiB of output must pass anyway.
    let script = format!(
        "log {fifo}\n\
         exec sh -c \"head -c 16777216 /dev/zero; echo END\" as flood\n\
         expect flood \"END\" timeout 120s\n\
         log\n\
         echo listed\n\
         log off\n",
        fifo = fifo.display()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("socklab starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    drop(stdin);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut transcript = String::new();
    // The listing comes while the writer is still stuck.
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "socklab ended early:\n{transcript}");
        transcript.push_str(&line);
        if line.starts_with("listed") {
            break;
        }
    }
    // (A busy machine may take its time over 16 MiB: the expect waits up
    // to 120 s rather than the default 10 s; nothing here is timed.)
    assert!(
        transcript.contains("flood: matched \"END\""),
        "{transcript}"
    );
    let row = Regex::new(r"stuck\.log +text +all +(\d+) +(\d+)\n").unwrap();
    let caps = row.captures(&transcript).expect("the listing");
    let dropped: u64 = caps[2].parse().unwrap();
    assert!(dropped > 0, "records were dropped:\n{transcript}");
    // Now someone reads: the writer finishes, and says where it dropped.
    let drained = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let mut all = Vec::new();
            std::fs::File::open(&fifo)
                .and_then(|mut f| f.read_to_end(&mut all))
                .expect("the FIFO reads");
            all
        }
    });
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{transcript}{rest}");
    let all = drained.join().unwrap();
    let text = String::from_utf8_lossy(&all);
    let note = Regex::new(&format!(
        r"(?m)^! {TS}  \d+ record\(s\) dropped here: the log writer fell behind$"
    ))
    .unwrap();
    assert!(note.is_match(&text), "no drop note in the log");
    assert!(
        rest.contains("dropped (the writer fell behind; the log says where)"),
        "{rest}"
    );
    // The data path saw everything: the log's first record is whole.
    assert!(
        text.starts_with("< ") && text.contains("  flood  length="),
        "{}",
        &text[..text.len().min(200)]
    );
}

/// The handshake of a connection to a server outside the shell is in the
/// file too: the connect tells the capture the server's port before the
/// SYN leaves (the local port is known only after).
#[test]
fn a_pcap_log_holds_the_handshake_of_a_connection_to_an_outside_server() {
    let mut tcpdump = tool("tcpdump");
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("outside.pcap");
    // This test is the outside server.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut conn, _) = server.accept().expect("socklab connects");
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        got
    });
    let script = format!(
        "log {pcap}\n\
         connect 127.0.0.1 {port} as out\n\
         send out \"to the outside\\n\"\n\
         close out\n\
         log off\n",
        pcap = pcap.display()
    );
    let run = run_script(&script, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(peer.join().unwrap(), b"to the outside\n");
    let out = tcpdump
        .args(["-n", "-r"])
        .arg(&pcap)
        .output()
        .expect("tcpdump runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!("> 127.0.0.1.{port}: Flags [S],")),
        "the SYN to the outside server first:\n{text}"
    );
    assert!(text.contains("length 15"), "the payload:\n{text}");
}
