//! The classroom: lab hosts in network namespaces. These tests need root
//! (CI runs as root): without it they say why, and fail only when `CI` is
//! set. Every test removes the namespaces of the shells it started, even
//! when it fails (`Cleanup`), and names are per shell PID, so tests run in
//! parallel with each other and with every other test.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{filter_ports, gone, run_script, transcript};

/// Whether this process may make network namespaces; says why not.
fn root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let why = format!("{test}: needs root (network namespaces need CAP_SYS_ADMIN)");
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI runs as root, so this must not happen there");
    }
    eprintln!("SKIPPED {why}");
    false
}

/// The network namespaces now (`ip netns list`, first words).
fn netns() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The root namespace's interfaces (`ip -o link`, names).
fn root_links() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap_or(n).to_string())
        })
        .collect()
}

/// The namespaces of the shell with this PID.
fn of_shell(pid: u32) -> BTreeSet<String> {
    let prefix = format!("sl{pid}-");
    netns()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// The shell PID in a transcript's `netns slPID-NAME`.
fn shell_pid(text: &str) -> u32 {
    let at = text.find("netns sl").expect("a host was made") + "netns sl".len();
    text[at..]
        .split('-')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a PID in the namespace's name")
}

/// Removes what the shells it knows left, whatever happened to the test.
#[derive(Default)]
struct Cleanup(Vec<u32>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in &self.0 {
            for ns in of_shell(*pid) {
                let _ = Command::new("ip").args(["netns", "del", &ns]).status();
            }
        }
    }
}

#[test]
fn a_classroom_on_one_machine_leaves_nothing_behind() {
    if !root("a_classroom_on_one_machine_leaves_nothing_behind") {
        return;
    }
    let links = root_links();
    let run = run_script(
        "host add teacher\n\
         host add student 3\n\
         on teacher listen 192.168.24.148 5556 as srv\n\
         on student3 connect 192.168.24.148 5556 as s3\n\
         send s3 \"hello teacher\"\n\
         on student1 ping 192.168.24.148 count 2\n\
         on student2 exec sh -c 'cat /proc/net/dev | grep -c :' as ifs\n\
         expect ifs /\\d+/\n\
         hosts\n\
         sockets\n",
        &[],
    );
    let mut cleanup = Cleanup::default();
    cleanup.0.push(shell_pid(&run.stdout));
    let text = transcript(&run);
    assert_eq!(run.code, 0, "{text}");
    assert!(text.contains("teacher: host 192.168.24.148/24"), "{text}");
    assert!(
        text.contains("3 hosts: student1 (192.168.24.1) … student3 (192.168.24.3)"),
        "{text}"
    );
    assert!(
        text.contains("srv.1 <- 13 bytes \"hello teacher\""),
        "{text}"
    );
    assert!(text.contains("2 sent, 2 answered"), "{text}");
    // A host has two interfaces: its loopback and eth0.
    assert!(
        text.contains("ifs: took \"2\"") || text.contains("\"2\""),
        "{text}"
    );
    assert!(text.contains("NAME   HOST"), "{text}");
    assert!(
        text.contains("student3  192.168.24.3/24    eth0 ~ br0:p4  up    s3"),
        "{text}"
    );
    // Nothing of the classroom is left, and the root namespace never had
    // an interface of it.
    assert!(of_shell(cleanup.0[0]).is_empty(), "{:?}", netns());
    assert_eq!(root_links(), links);
}

#[test]
fn the_root_namespace_never_reaches_the_lab_lan() {
    // No root needed: the refusal comes before any socket leaves.
    let run = run_script(
        "!connect 192.168.24.148 5556\n\
         socket udp as u\n\
         !sendto u 192.168.24.7 9 \"x\"\n\
         !sendto u 224.1.1.1 9 \"x\"\n\
         !listen 192.168.24.148 5556\n\
         !ping 192.168.24.148\n\
         !join u 224.1.1.1\n\
         !exec ping -c 1 192.168.24.148\n\
         !exec nc 192.168.24.148:5556\n",
        &[],
    );
    let text = transcript(&run);
    assert_eq!(run.code, 0, "{text}");
    assert_eq!(text.matches("`on HOST …`").count(), 8, "{text}");
}

#[test]
fn a_killed_shell_is_cleaned_up_by_the_next() {
    if !root("a_killed_shell_is_cleaned_up_by_the_next") {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("socklab starts");
    let pid = child.id();
    let mut cleanup = Cleanup(vec![pid]);
    let mut stdin = child.stdin.take().expect("piped");
    writeln!(stdin, "host add teacher\nhost add student 2\necho made").expect("written");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !line.starts_with("made") {
        line.clear();
        assert!(
            out.read_line(&mut line).expect("read") > 0,
            "socklab ended early"
        );
        assert!(Instant::now() < deadline, "no hosts within 60 s");
    }
    let left = of_shell(pid);
    assert_eq!(left.len(), 4, "teacher, 2 students and the LAN: {left:?}");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(gone(pid));
    // Its namespaces outlive it …
    let still = of_shell(pid);
    // … until the next socklab starts (or another test's socklab, which
    // may have been first).
    let next = run_script("echo hello\n", &[]);
    assert_eq!(next.code, 0);
    assert!(of_shell(pid).is_empty(), "{:?}", netns());
    if !still.is_empty() && next.stderr.contains(&format!("socklab {pid},")) {
        assert!(
            next.stderr.contains("network namespace(s) left by socklab"),
            "{}",
            next.stderr
        );
    }
    cleanup.0.clear();
}

#[test]
fn a_running_shell_under_another_name_keeps_its_hosts() {
    if !root("a_running_shell_under_another_name_keeps_its_hosts") {
        return;
    }
    // socklab installed as `socklab-0.1`: its command name is not
    // `socklab`, yet another shell starting must not take it for dead.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bin = dir.path().join("socklab-0.1");
    std::fs::copy(env!("CARGO_BIN_EXE_socklab"), &bin).expect("copied");
    let errors = dir.path().join("stderr");
    let mut child = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&errors).expect("stderr file"))
        .spawn()
        .expect("socklab-0.1 starts");
    let pid = child.id();
    let mut cleanup = Cleanup(vec![pid]);
    let mut stdin = child.stdin.take().expect("piped");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut until = |stdin: &mut std::process::ChildStdin, lines: &str, mark: &str| {
        writeln!(stdin, "{lines}\necho {mark}").expect("written");
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut line = String::new();
            assert!(
                out.read_line(&mut line).expect("read") > 0,
                "ended early: {seen}"
            );
            if line.starts_with(mark) {
                return seen;
            }
            seen.push_str(&line);
            assert!(Instant::now() < deadline, "no {mark} within 60 s: {seen}");
        }
    };
    until(
        &mut stdin,
        "host add teacher\nhost add student1\non teacher listen 192.168.24.148 5556 as srv",
        "made",
    );
    // Another shell starts, and sweeps.
    let next = run_script("echo hello\n", &[]);
    assert_eq!(next.code, 0);
    assert!(
        !next.stderr.contains(&format!("socklab {pid},")),
        "{}",
        next.stderr
    );
    assert_eq!(
        of_shell(pid).len(),
        3,
        "{:?}; the shell's errors: {}",
        netns(),
        std::fs::read_to_string(&errors).unwrap_or_default()
    );
    let seen = until(
        &mut stdin,
        "on student1 connect 192.168.24.148 5556 as s1\nsend s1 still",
        "sent",
    );
    assert!(seen.contains("srv.1 <- 5 bytes \"still\""), "{seen}");
    drop(stdin);
    let _ = child.wait();
    assert!(of_shell(pid).is_empty(), "{:?}", netns());
    cleanup.0.clear();
}

#[test]
fn sigterm_and_ctrl_c_remove_the_hosts() {
    if !root("sigterm_and_ctrl_c_remove_the_hosts") {
        return;
    }
    for (signal, status) in [
        (nix::sys::signal::Signal::SIGTERM, 143),
        (nix::sys::signal::Signal::SIGINT, 130),
    ] {
        ended_by(signal, status);
    }
}

/// Starts a shell with a host, sends it `signal` while a command waits,
/// and checks it exits with `status` and leaves no namespace.
fn ended_by(signal: nix::sys::signal::Signal, status: i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("socklab starts");
    let pid = child.id();
    let _cleanup = Cleanup(vec![pid]);
    let mut stdin = child.stdin.take().expect("piped");
    writeln!(stdin, "host add teacher\necho made\nsleep 30s").expect("written");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    while !line.starts_with("socklab> sleep") {
        line.clear();
        assert!(out.read_line(&mut line).expect("read") > 0, "ended early");
    }
    assert_eq!(of_shell(pid).len(), 2);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("signal");
    let ended = child.wait().expect("waited");
    assert_eq!(ended.code(), Some(status), "{signal}");
    assert!(of_shell(pid).is_empty(), "{:?}", netns());
    drop(stdin);
}

#[test]
fn two_shells_have_two_lans_that_never_meet() {
    if !root("two_shells_have_two_lans_that_never_meet") {
        return;
    }
    let script = "host add teacher\n\
                  host add student 2\n\
                  on teacher listen 192.168.24.148 5556 as srv\n\
                  on student1 connect 192.168.24.148 5556 as a\n\
                  on student2 connect 192.168.24.148 5556 as b\n\
                  send a \"one\"\n\
                  sockets\n";
    let runs: Vec<_> = std::thread::scope(|s| {
        let t: Vec<_> = (0..2)
            .map(|_| s.spawn(|| run_script(script, &[])))
            .collect();
        t.into_iter().map(|h| h.join().expect("ran")).collect()
    });
    let mut cleanup = Cleanup::default();
    for r in &runs {
        cleanup.0.push(shell_pid(&r.stdout));
    }
    for r in &runs {
        let text = transcript(r);
        assert_eq!(r.code, 0, "{text}");
        // Each teacher accepted its own two students, and only those.
        assert!(text.contains("listening (2 accepted)"), "{text}");
    }
    assert_ne!(cleanup.0[0], cleanup.0[1]);
}

#[test]
fn links_go_down_and_come_back() {
    if !root("links_go_down_and_come_back") {
        return;
    }
    let run = run_script(
        "host add teacher\n\
         host add student1\n\
         link student1 down\n\
         on teacher udp 0.0.0.0 9999 as r\n\
         on student1 socket udp as u\n\
         set u broadcast on\n\
         !sendto u 255.255.255.255 9999 \"lost\"\n\
         link student1 up\n\
         sendto u 255.255.255.255 9999 \"arrives\"\n\
         link student1 loss 100%\n\
         on student1 ping 192.168.24.148 count 2\n\
         link student1 clear\n\
         on student1 ping 192.168.24.148 count 1\n\
         link student1 rate 1mbit\n\
         hosts\n\
         !link student1 jitter 5ms\n\
         !link nobody down\n\
         !link student1 loss 200%\n",
        &[],
    );
    let mut cleanup = Cleanup::default();
    cleanup.0.push(shell_pid(&run.stdout));
    // Not `transcript`: its ping filter wants every probe answered.
    let text = format!("{}{}", filter_ports(&run.stdout), run.stderr);
    assert_eq!(run.code, 0, "{text}");
    assert!(!text.contains("bytes \"lost\""), "{text}");
    assert!(text.contains("Network is unreachable"), "{text}");
    assert!(
        text.contains("r <- from 192.168.24.1:[port]: 7 bytes \"arrives\""),
        "{text}"
    );
    assert!(
        text.contains("student1  192.168.24.1/24    eth0 ~ br0:p2  rate 1mbit"),
        "{text}"
    );
    assert!(text.contains("jitter needs a delay"), "{text}");
    // Loss works with or without netem (a random-drop filter then).
    assert!(text.contains("2 sent, 0 answered, 100% loss"), "{text}");
    assert!(text.contains("1 sent, 1 answered, 0% loss"), "{text}");
    assert!(text.contains("no host named 'nobody'"), "{text}");
}

/// Whether this kernel has netem (some kernels are built without it).
fn has_netem() -> bool {
    let ns = format!("slnetemcheck{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "add", &ns]).status();
    let ok = Command::new("tc")
        .args([
            "-n", &ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    ok
}

/// The round-trip times a transcript's ping lines show, in ms.
fn ping_times(text: &str) -> Vec<f64> {
    text.lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.trim_end_matches(" ms").parse().ok())
        .collect()
}

/// The transcript between the line `socklab> FROM` and the next `socklab>`
/// line.
fn block<'a>(text: &'a str, from: &str) -> &'a str {
    let start = text
        .find(&format!("socklab> {from}\n"))
        .unwrap_or_else(|| panic!("no `{from}` in:\n{text}"));
    let rest = &text[start + from.len() + 10..];
    &rest[..rest.find("socklab> ").unwrap_or(rest.len())]
}

#[test]
fn a_delayed_link_slows_the_round_trip_with_or_without_netem() {
    if !root("a_delayed_link_slows_the_round_trip_with_or_without_netem") {
        return;
    }
    // With netem, netem delays; without it (this machine, CI), socklab's
    // delay line does. Either way what the teacher sends waits: a ping
    // from a student sees the delay once (the reply waits).
    let run = run_script(
        "host add teacher\n\
         host add student1\n\
         on student1 ping 192.168.24.148 count 2\n\
         link teacher delay 50ms\n\
         on student1 ping 192.168.24.148 count 3\n\
         link teacher delay 100ms\n\
         on student1 ping 192.168.24.148 count 3\n\
         link student1 delay 100ms\n\
         on student1 ping 192.168.24.148 count 3\n\
         on teacher listen 192.168.24.148 5556 as srv\n\
         on student1 connect 192.168.24.148 5556 as s\n\
         send s \"x\"\n\
         send srv.1 \"y\"\n\
         info s\n\
         link teacher delay 0ms\n\
         link student1 clear\n\
         on student1 ping 192.168.24.148 count 2\n\
         hosts\n",
        &[],
    );
    let mut cleanup = Cleanup::default();
    cleanup.0.push(shell_pid(&run.stdout));
    let text = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "{text}");
    let count = |n: usize| "on student1 ping 192.168.24.148 count ".to_string() + &n.to_string();
    let blocks: Vec<&str> = text
        .split(&format!("socklab> {}", count(3)))
        .skip(1)
        .collect();
    assert_eq!(blocks.len(), 3, "{text}");
    for (b, at_least) in blocks.iter().zip([50.0, 100.0, 200.0]) {
        let times = ping_times(&b[..b.find("socklab> ").unwrap_or(b.len())]);
        assert_eq!(times.len(), 3, "{text}");
        assert!(
            times.iter().all(|t| *t >= at_least),
            "≥ {at_least} ms: {text}"
        );
    }
    // TCP sees it too: the kernel's smoothed round trip is at least the
    // 200 ms both links add.
    let info = block(&text, "info s");
    let rtt: f64 = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("rtt"))
        .and_then(|r| {
            r.split_whitespace()
                .find_map(|w| w.trim_end_matches("ms").parse().ok())
        })
        .unwrap_or_else(|| panic!("no rtt in {info}"));
    assert!(rtt >= 200.0, "{info}");
    assert!(text.contains("teacher: link up"), "{text}");
    assert!(text.contains("student1: link up"), "{text}");
}

/// A socklab shell driven line by line.
struct Shell {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    out: BufReader<std::process::ChildStdout>,
    marks: u32,
}

impl Shell {
    fn start() -> Shell {
        let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("socklab starts");
        let stdin = child.stdin.take().expect("piped");
        let out = BufReader::new(child.stdout.take().expect("piped"));
        Shell {
            child,
            stdin,
            out,
            marks: 0,
        }
    }

    /// Runs `lines` and returns what they printed, once they are done.
    fn run(&mut self, lines: &str) -> String {
        self.marks += 1;
        let mark = format!("done-{}", self.marks);
        writeln!(self.stdin, "{lines}\necho {mark}").expect("written");
        let mut text = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut line = String::new();
            assert!(
                self.out.read_line(&mut line).expect("read") > 0,
                "socklab ended early:\n{text}"
            );
            if line.trim_end() == mark {
                return text;
            }
            text.push_str(&line);
            assert!(Instant::now() < deadline, "not done within 60 s:\n{text}");
        }
    }
}

/// The interfaces of namespace `ns` (`ip -n NS -o link`): name and the
/// bridge it is a port of, if any.
fn links_of(ns: &str) -> Vec<(String, Option<String>)> {
    let out = Command::new("ip")
        .args(["-n", ns, "-o", "link"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let name = l.split(": ").nth(1)?;
            let name = name.split('@').next().unwrap_or(name).to_string();
            let master = l
                .split(" master ")
                .nth(1)
                .and_then(|m| m.split_whitespace().next())
                .map(str::to_string);
            Some((name, master))
        })
        .collect()
}

#[test]
fn a_delay_line_comes_out_on_clear_and_at_quit() {
    if !root("a_delay_line_comes_out_on_clear_and_at_quit") {
        return;
    }
    if has_netem() {
        eprintln!(
            "a_delay_line…: this kernel has netem, which carries delays: no delay line to check"
        );
        return;
    }
    let root_before = root_links();
    let mut sh = Shell::start();
    let pid = sh.child.id();
    let _cleanup = Cleanup(vec![pid]);
    let lan = format!("sl{pid}-lan");
    let made = sh.run("host add teacher\nhost add student1");
    assert!(made.contains("eth0 ~ br0:p2"), "{made}");
    let direct = links_of(&lan);
    assert!(
        direct.contains(&("p1".into(), Some("br0".into()))),
        "{direct:?}"
    );
    assert!(
        direct.contains(&("p2".into(), Some("br0".into()))),
        "{direct:?}"
    );
    // The line: p1 leaves the bridge, e1 takes its place, d1 is socklab's.
    sh.run("link teacher delay 20ms jitter 5ms");
    let lined = links_of(&lan);
    assert!(lined.contains(&("p1".into(), None)), "{lined:?}");
    assert!(
        lined.contains(&("e1".into(), Some("br0".into()))),
        "{lined:?}"
    );
    assert!(lined.contains(&("d1".into(), None)), "{lined:?}");
    let pinged = sh.run("on student1 ping 192.168.24.148 count 2");
    let times = ping_times(&pinged);
    assert_eq!(times.len(), 2, "{pinged}");
    assert!(times.iter().all(|t| *t >= 15.0), "{pinged}");
    // A new delay changes the line in place.
    sh.run("link teacher delay 30ms");
    assert_eq!(links_of(&lan), lined);
    // Clear takes it out: the direct bridge port again, nothing left.
    let cleared = sh.run("link teacher clear\non student1 ping 192.168.24.148 count 1");
    assert!(cleared.contains("1 sent, 1 answered"), "{cleared}");
    assert_eq!(links_of(&lan), direct);
    // `delay 0ms` too.
    sh.run("link student1 delay 40ms");
    assert!(links_of(&lan).contains(&("e2".into(), Some("br0".into()))));
    sh.run("link student1 delay 0ms");
    assert_eq!(links_of(&lan), direct);
    // `host del` takes its line with it.
    sh.run(
        "link student1 delay 10ms jitter 2ms\nlink student1 delay 0ms\nlink student1 delay 10ms",
    );
    sh.run("host del student1");
    let names = || -> Vec<String> { links_of(&lan).into_iter().map(|l| l.0).collect() };
    // d2 and e2 go at once; p2 with the host's namespace, which the
    // kernel dismantles on a work queue of its own.
    assert!(
        !names().iter().any(|n| ["d2", "e2"].contains(&n.as_str())),
        "{:?}",
        names()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while names().iter().any(|n| n == "p2") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!names().iter().any(|n| n == "p2"), "{:?}", names());
    // At quit, with a line running: nothing of the classroom is left.
    sh.run("link teacher delay 10ms");
    drop(sh.stdin);
    let _ = sh.child.wait();
    assert!(of_shell(pid).is_empty(), "{:?}", netns());
    assert_eq!(root_links(), root_before);
}

#[test]
fn trace_shows_a_handshake_between_two_hosts() {
    if !root("trace_shows_a_handshake_between_two_hosts") {
        return;
    }
    let run = crate::support::run_script_env(
        "host add teacher\n\
         host add student1\n\
         trace on\n\
         on teacher listen 192.168.24.148 5556 as srv\n\
         on student1 connect 192.168.24.148 5556 as s1\n\
         send s1 \"hi\"\n\
         close s1\n\
         close srv.1\n\
         trace off\n",
        &[],
        &[("SOCKLAB_TRACE", "capture")],
    );
    let mut cleanup = Cleanup::default();
    cleanup.0.push(shell_pid(&run.stdout));
    let text = transcript(&run);
    assert_eq!(run.code, 0, "{text}");
    assert!(text.contains("on the lab LAN's bridge"), "{text}");
    let connect = block(&text, "on student1 connect 192.168.24.148 5556 as s1");
    let segments: Vec<&str> = connect.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(
        segments,
        [
            "s1 -> srv.1 [SYN] seq=0 win=64240",
            "srv.1 -> s1 [SYN,ACK] seq=0 ack=1 win=65160",
            "s1 -> srv.1 [ACK] seq=1 ack=1 win=64512",
        ],
        "{text}"
    );
    assert!(
        text.contains("s1 -> srv.1 [PSH,ACK] seq=1 ack=1 win=64512 len=2"),
        "{text}"
    );
    assert!(text.contains("s1 -> srv.1 [FIN,ACK]"), "{text}");
    assert!(text.contains("srv.1 -> s1 [FIN,ACK]"), "{text}");
}

#[test]
fn a_lossy_link_shows_retransmissions_in_the_trace() {
    if !root("a_lossy_link_shows_retransmissions_in_the_trace") {
        return;
    }
    let run = crate::support::run_script_env(
        "host add teacher\n\
         host add student1\n\
         trace on\n\
         on teacher listen 192.168.24.148 5556 as srv\n\
         on student1 connect 192.168.24.148 5556 as s1\n\
         link teacher loss 100%\n\
         send s1 \"lost ack\"\n\
         link teacher clear\n\
         close s1\n",
        &[],
        &[("SOCKLAB_TRACE", "capture")],
    );
    let mut cleanup = Cleanup::default();
    cleanup.0.push(shell_pid(&run.stdout));
    let text = format!("{}{}", filter_ports(&run.stdout), run.stderr);
    assert_eq!(run.code, 0, "{text}");
    let lossy = block(&text, "send s1 \"lost ack\"");
    assert!(
        lossy.contains("s1 -> srv.1 [PSH,ACK] seq=1 ack=1 win=64512 len=8 (retransmission)"),
        "{text}"
    );
    // Once the link carries, the next retransmission is acknowledged
    // within the command that cleared it.
    let cleared = block(&text, "link teacher clear");
    assert!(cleared.contains("(retransmission)"), "{text}");
    assert!(cleared.contains("srv.1 -> s1 [ACK] seq=1 ack=9"), "{text}");
}

#[test]
fn host_errors_are_clear() {
    if !root("host_errors_are_clear") {
        return;
    }
    let run = run_script(
        "host add teacher\n\
         !host add teacher\n\
         !host add 3x\n\
         !host add pc 10.0.0.1\n\
         !host add pc 192.168.24.148\n\
         !host add student 251\n\
         !host lan 10.0.0.0/24\n\
         on teacher listen 192.168.24.148 5556 as srv\n\
         !host del teacher\n\
         close srv\n\
         host del teacher\n\
         host lan 10.9.0.0/24\n\
         host add teacher\n\
         !on teacher on teacher hosts\n\
         !on teacher\n\
         !on ghost hosts\n",
        &[],
    );
    let mut cleanup = Cleanup::default();
    cleanup.0.push(shell_pid(&run.stdout));
    let text = transcript(&run);
    assert_eq!(run.code, 0, "{text}");
    for want in [
        "a host named 'teacher' exists already",
        "'3x' is not a host name",
        "10.0.0.1 is not a host address of the LAN 192.168.24.0/24",
        "192.168.24.148 is taken on the LAN",
        "a number of hosts must be 1-250, not 251",
        "the LAN can change only while there is no host",
        "teacher still holds srv: close them first",
        "teacher: removed",
        "the lab LAN is 10.9.0.0/24",
        "teacher: host 10.9.0.148/24",
        "`on` takes one host",
        "missing a command to run on the host",
        "no host named 'ghost'",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}

#[test]
fn without_root_hosts_say_what_is_missing() {
    if !root("without_root_hosts_say_what_is_missing") {
        return;
    }
    // Run the shell as nobody.
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_socklab"),
        ])
        // Kept out of a user namespace of its own (tests/rootless.rs
        // covers that): hosts then need root.
        .env("SOCKLAB_NO_USERNS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"host add teacher\n")
        .expect("written");
    let out = child.wait_with_output().expect("ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(69), "{text}");
    assert!(
        text.contains("hosts need root or a user namespace of socklab's own: making network namespaces takes CAP_SYS_ADMIN"),
        "{text}"
    );
}

#[test]
fn the_lectures_own_server_runs_unchanged_on_the_teachers_host() {
    if !root("the_lectures_own_server_runs_unchanged_on_the_teachers_host") {
        return;
    }
    let server = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/classroom_server.py"
    );
    let run = run_script(
        &format!(
            "host add teacher\n\
             host add student 2\n\
             on teacher exec python3 -u {server} as lecture\n\
             expect lecture \"开始监听了\"\n\
             on student1 connect 192.168.24.148 5556 as s1\n\
             expect s1 \"Welcome to study socket!\"\n\
             send s1 \"student1 here\"\n\
             expect lecture \"student1 here\"\n\
             on student2 connect 192.168.24.148 5556 as s2\n\
             expect s2 \"Welcome to study socket!\"\n\
             send s2 \"student2 here\"\n\
             expect lecture \"student2 here\"\n\
             close s1\n\
             close s2\n\
             close lecture\n"
        ),
        &[],
    );
    let mut cleanup = Cleanup::default();
    cleanup.0.push(shell_pid(&run.stdout));
    let text = transcript(&run);
    assert_eq!(run.code, 0, "{text}");
    // The server printed each receipt (服务器端收到回执信息: …) and closed each client.
    assert!(
        text.contains("lecture: matched \"student2 here\""),
        "{text}"
    );
    assert!(text.contains("s1 <- peer closed (EOF)"), "{text}");
}

#[test]
fn a_flood_into_a_delay_line_is_dropped_past_its_bound_and_counted() {
    if !root("a_flood_into_a_delay_line_is_dropped_past_its_bound_and_counted") {
        return;
    }
    if has_netem() {
        eprintln!("a_flood…: this kernel has netem, which carries delays: no delay line to fill");
        return;
    }
    // 60 MB of datagrams within a 2 s delay: more than the 8192 frames a
    // line holds.
    let run = run_script(
        "host add teacher\n\
         host add student1\n\
         link teacher delay 2s\n\
         on teacher exec sh -c 'head -c 60000000 /dev/zero | ncat -u --send-only 192.168.24.1 9; echo sent' as flood\n\
         expect flood \"sent\" timeout 60s\n\
         hosts\n\
         link teacher clear\n\
         on student1 ping 192.168.24.148 count 1\n",
        &[],
    );
    let mut cleanup = Cleanup::default();
    cleanup.0.push(shell_pid(&run.stdout));
    let text = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "{text}");
    assert!(text.contains("frames dropped: delay line full)"), "{text}");
    assert!(text.contains("1 sent, 1 answered"), "{text}");
}
