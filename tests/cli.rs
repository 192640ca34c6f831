//! The command line: arguments, session files, exit statuses.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::run_script;

fn socklab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_socklab"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("socklab runs")
}

#[test]
fn help_names_the_modes_and_exit_statuses() {
    let out = socklab(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("Usage: socklab [OPTIONS] [FILE]"), "{text}");
    assert!(text.contains("--keep-going"), "{text}");
    assert!(text.contains("64 usage"), "{text}");
}

#[test]
fn version_is_the_crate_version() {
    let out = socklab(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("socklab {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_option_is_a_usage_error() {
    let out = socklab(&["--no-such-flag"]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "a wrong command line is a usage error (64), as --help says"
    );
    let out = socklab(&["--wait", "forever", "x.sock"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("duration"));
}

/// A session file runs by name; its `#!` line is skipped and errors name
/// the file and line.
#[test]
fn a_session_file_with_a_shebang_runs_and_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.sock");
    std::fs::write(
        &path,
        "#!/usr/bin/env -S socklab\necho hello\n\nbind nosuch 127.0.0.1 0\necho never\n",
    )
    .unwrap();
    let out = socklab(&[path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout,
        "socklab> echo hello\nhello\n\nsocklab> bind nosuch 127.0.0.1 0\n"
    );
    assert!(
        stderr.starts_with(&format!(
            "{}:4:6: error: no socket named 'nosuch'",
            path.display()
        )),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn a_missing_file_is_no_input() {
    let out = socklab(&["/nonexistent/socklab/session.sock"]);
    assert_eq!(out.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read /nonexistent/socklab/session.sock"));
}

#[test]
fn keep_going_runs_every_line_and_reports_the_first_failure() {
    let run = run_script(
        "lsiten 1\necho middle\nsleep 1x\necho end\n",
        &["--keep-going"],
    );
    assert!(
        run.stdout.contains("middle\n") && run.stdout.contains("end\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("<stdin>:1:1: error: unknown command"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("<stdin>:3:7: error:"), "{}", run.stderr);
    assert_eq!(run.code, 64);
}

#[test]
fn a_line_that_is_not_utf8_stops_the_run() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo ok\nsend x \xff\xfe\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("<stdin>:2: error: the line is not UTF-8")
    );
}

#[test]
fn empty_input_is_an_empty_successful_run() {
    let out = socklab(&[]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

/// A `!` line must fail; one that succeeds fails the run.
#[test]
fn an_expected_failure_that_succeeds_fails_the_run() {
    let run = run_script("!echo fine\necho never\n", &[]);
    assert!(run.stderr.contains("expected to fail"), "{}", run.stderr);
    assert_eq!(run.code, 65);
    assert!(!run.stdout.contains("never\n"));
}

/// A waiting command in a script gives up after --wait.
#[test]
fn wait_bounds_a_recv_that_never_gets_data() {
    let run = run_script(
        "listen 0 as srv\nsocket tcp as c\nconnect c srv\nrecv c\necho never\n",
        &["--wait", "200ms"],
    );
    assert!(
        run.stderr
            .contains("<stdin>:4: error: recv c: gave up after 200ms"),
        "{}",
        run.stderr
    );
    assert_eq!(run.code, 75);
}

/// Without the privilege to capture, `trace on` says so and observes the
/// kernel's states instead; the sockets work the same. Runs where the tests
/// run as root (CI does) and can drop to an unprivileged user.
#[test]
fn trace_without_privilege_falls_back_to_observing() {
    // SAFETY: getuid(2) has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    if !root || !setpriv.exists() {
        eprintln!("SKIPPED trace_without_privilege_falls_back_to_observing: needs root and setpriv to drop privilege");
        return;
    }
    let mut child = Command::new(setpriv)
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_socklab"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"trace on\nlisten 0 as srv\nconnect srv as cli\nclose cli\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "trace: cannot capture (capturing needs root or CAP_NET_RAW); observing instead"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("cli: CLOSED => SYN_SENT => ESTABLISHED"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cli: ESTABLISHED => FIN_WAIT_1 => FIN_WAIT_2"),
        "{stdout}"
    );
}
