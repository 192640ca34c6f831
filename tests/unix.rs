//! UNIX-domain sockets against the real peers engineers use: socat
//! (UNIX-LISTEN, UNIX-CONNECT, ABSTRACT-LISTEN) and ncat -U; a stale
//! socket file; the socket files socklab makes are removed by it. Every
//! path is in a temporary directory of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{need, run_script, transcript, Reaped};

/// Starts `program args` with no stdin.
fn start(program: &str, args: &[&str]) -> Reaped {
    need(program);
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} starts: {e}"));
    Reaped(child)
}

/// Waits (up to 10 s) until `ready` holds: a peer's socket has appeared.
fn until(what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether an abstract UNIX name is bound on this machine.
fn abstract_bound(name: &str) -> bool {
    std::fs::read_to_string("/proc/net/unix").is_ok_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().last() == Some(&format!("@{name}")))
    })
}

/// The pid row of `info` on a UNIX connection (SO_PEERCRED).
fn peer_pid(out: &str) -> Option<u32> {
    out.lines()
        .find(|l| l.starts_with("pid "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

fn dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("socklab-unix-")
        .tempdir()
        .expect("a temporary directory")
}

fn sock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// A unique abstract name for this test run.
fn abstract_name(tag: &str) -> String {
    format!("socklab-test-{tag}-{}", std::process::id())
}

#[test]
fn socklab_connects_to_socat_unix_listen_and_sees_its_pid() {
    let d = dir();
    let path = sock_path(d.path(), "socat.sock");
    let p = path.display().to_string();
    let socat = start("socat", &[&format!("UNIX-LISTEN:{p}"), "EXEC:cat"]);
    until("socat's socket file", || path.exists());
    let run = run_script(
        &format!(
            "connect unix:{p} as c\nsend c \"ping over a socket file\\n\"\nexpect c \"ping over a socket file\"\ninfo c\nsockets\nclose c\n"
        ),
        &[],
    );
    let out = &run.stdout;
    assert_eq!(run.code, 0, "{}", transcript(&run));
    assert!(
        out.contains(&format!("c: connected to {p} (UNIX stream)")),
        "{out}"
    );
    assert!(
        out.contains("c: matched \"ping over a socket file\""),
        "{out}"
    );
    // SO_PEERCRED names socat's own process.
    let pid = socat.0.id();
    assert_eq!(
        peer_pid(out),
        Some(pid),
        "info does not show socat's pid:\n{out}"
    );
    assert!(out.contains("unix conn"), "{out}");
}

#[test]
fn socat_unix_connect_talks_to_a_socklab_listener() {
    need("socat");
    let d = dir();
    let p = sock_path(d.path(), "srv.sock").display().to_string();
    let run = run_script(
        &format!(
            "listen unix:{p} as srv\nexec socat - UNIX-CONNECT:{p} as peer\naccept srv\nsend peer \"hello from socat\\n\"\nexpect srv.1 \"hello from socat\"\nsend srv.1 \"hello back\\n\"\nexpect peer \"hello back\"\ninfo srv.1\nclose peer\nclose srv.1\nclose srv\n"
        ),
        &[],
    );
    let out = &run.stdout;
    assert_eq!(run.code, 0, "{}", transcript(&run));
    assert!(
        out.contains("srv: accepted srv.1 (the client is unnamed"),
        "{out}"
    );
    assert!(out.contains("peer: matched \"hello back\""), "{out}");
    // The accepted client's credentials are socat's, not socklab's.
    let socat_pid = crate::support::pids(out)[0];
    assert_eq!(
        peer_pid(out),
        Some(socat_pid),
        "info srv.1 does not name socat:\n{out}"
    );
    assert!(!Path::new(&p).exists(), "socklab left its socket file {p}");
}

#[test]
fn ncat_dash_u_talks_to_a_socklab_listener() {
    need("ncat");
    let d = dir();
    let p = sock_path(d.path(), "ncat.sock").display().to_string();
    let run = run_script(
        &format!(
            "listen unix:{p} as srv\nexec ncat -U {p} as peer\naccept srv\nsend peer \"from ncat\\n\"\nexpect srv.1 \"from ncat\"\nsend srv.1 \"to ncat\\n\"\nexpect peer \"to ncat\"\nclose peer\nclose srv\n"
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}", transcript(&run));
    assert!(
        run.stdout.contains("peer: matched \"to ncat\""),
        "{}",
        run.stdout
    );
}

#[test]
fn abstract_names_with_socat_both_ways() {
    need("socat");
    // socat listens on an abstract name; socklab connects.
    let name = abstract_name("a");
    let _socat = start("socat", &[&format!("ABSTRACT-LISTEN:{name}"), "EXEC:cat"]);
    until("socat's abstract name", || abstract_bound(&name));
    let run = run_script(
        &format!(
            "connect unix:@{name} as c\nsend c \"abstract\\n\"\nexpect c \"abstract\"\nclose c\n"
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}", transcript(&run));
    assert!(
        run.stdout.contains(&format!("c: connected to @{name}")),
        "{}",
        run.stdout
    );

    // socklab listens on an abstract name; socat connects.
    let name = abstract_name("b");
    let run = run_script(
        &format!(
            "listen unix:@{name} as srv\nexec socat - ABSTRACT-CONNECT:{name} as peer\naccept srv\nsend peer \"via abstract\\n\"\nexpect srv.1 \"via abstract\"\nclose peer\nclose srv\n"
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}", transcript(&run));
    assert!(
        run.stdout.contains(&format!("srv: listening on @{name}")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_stale_socket_file_is_reported_and_never_removed() {
    let d = dir();
    let path = sock_path(d.path(), "stale.sock");
    // A server that went away without removing its file (std never does).
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let p = path.display().to_string();
    let run = run_script(&format!("listen unix:{p} as srv\n"), &[]);
    assert_ne!(run.code, 0, "{}", transcript(&run));
    assert!(
        run.stderr.contains(&format!(
            "address already in use: {p} exists; no one is listening on it (a stale socket file"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&format!("rm {p}")), "{}", run.stderr);
    assert!(path.exists(), "socklab removed a file it did not make");
}

#[test]
fn socklab_removes_its_socket_files_on_close_and_at_exit() {
    let d = dir();
    let a = sock_path(d.path(), "a.sock");
    let b = sock_path(d.path(), "b.sock");
    let c = sock_path(d.path(), "c.sock");
    let run = run_script(
        &format!(
            "listen unix:{} as a\nclose a\nlisten unix:{} as b\nsocket unix dgram as c\nbind c {}\n",
            a.display(),
            b.display(),
            c.display()
        ),
        &[],
    );
    assert_eq!(run.code, 0, "{}", transcript(&run));
    for f in [&a, &b, &c] {
        assert!(!f.exists(), "{} is left behind", f.display());
    }
}

#[test]
fn a_path_longer_than_sun_path_is_a_clear_error() {
    let long = format!("/tmp/{}", "x".repeat(120));
    let run = run_script(&format!("listen unix:{long}\n"), &[]);
    assert_eq!(run.code, 64, "{}", transcript(&run));
    assert!(
        run.stderr
            .contains("holds at most 107 bytes (sun_path is 108, with the NUL)"),
        "{}",
        run.stderr
    );
}
