//! Every session file, tests' and lessons', through the real binary with
//! standard input piped; the transcript is the snapshot.

use crate::support::{run_script, run_script_env, transcript};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// Snapshots `path`'s transcript as `GROUP@FILE.snap`. `trace on` runs in
/// observation mode, which needs no privilege, so the snapshot is the same
/// wherever the tests run; capture mode has a test of its own.
fn check(group: &str, path: &std::path::Path) {
    let script = std::fs::read_to_string(path).expect("session file is readable");
    // The classroom's sessions make network namespaces: root only (CI is).
    if script.lines().any(|l| l.starts_with("host add")) && !nix::unistd::geteuid().is_root() {
        let why = format!("{}: lab hosts need root", path.display());
        assert!(std::env::var_os("CI").is_none(), "{why}; CI runs as root");
        eprintln!("SKIPPED {why}");
        return;
    }
    let run = run_script_env(&script, &[], &[("SOCKLAB_TRACE", "observe")]);
    insta::assert_snapshot!(group, transcript(&run));
    // A session that traces also runs with a real capture, where this
    // process may capture (CI runs as root): the segments as they crossed.
    if script.lines().any(|l| l.trim() == "trace on") {
        if may_capture() {
            let run = run_script_env(&script, &[], &[("SOCKLAB_TRACE", "capture")]);
            let text = transcript(&run);
            assert!(text.contains("[SYN] seq=0"), "{text}");
            insta::assert_snapshot!(format!("{group}-capture"), text);
        } else {
            eprintln!(
                "SKIPPED the capture run of {}: capturing needs root or CAP_NET_RAW here",
                path.display()
            );
        }
    }
}

/// Whether this process may capture on the loopback interface (AF_PACKET
/// needs root or CAP_NET_RAW).
fn may_capture() -> bool {
    // SAFETY: plain socket(2)/close(2) calls; no memory is passed.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return false;
    }
    unsafe { libc::close(fd) };
    true
}

#[test]
fn sessions() {
    settings().bind(|| insta::glob!("sessions/*.sock", |p| check("session", p)));
}

#[test]
fn lessons() {
    settings().bind(|| {
        insta::glob!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lessons"),
            "*.sock",
            |p| check("lesson", p)
        )
    });
}

/// Every lesson reads whole in one language: `--lang zh` and `--lang en`,
/// snapshotted as `lesson-zh@FILE` and `lesson-en@FILE` (the `lesson@`
/// snapshots are `both`, the default).
#[test]
fn lessons_in_each_language() {
    settings().bind(|| {
        insta::glob!(
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lessons"),
            "*.sock",
            |p| {
                let script = std::fs::read_to_string(p).expect("session file is readable");
                if script.lines().any(|l| l.starts_with("host add"))
                    && !nix::unistd::geteuid().is_root()
                {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "lab hosts need root; CI runs as root"
                    );
                    return;
                }
                for lang in ["zh", "en"] {
                    let run =
                        run_script_env(&script, &["--lang", lang], &[("SOCKLAB_TRACE", "observe")]);
                    insta::assert_snapshot!(format!("lesson-{lang}"), transcript(&run));
                }
            }
        )
    });
}

/// Running a lesson twice gives the same transcript, byte for byte (the
/// ports the OS picks aside).
#[test]
fn transcripts_are_deterministic() {
    for path in [
        "docs/lessons/11-long-connection.sock",
        "tests/sessions/tcp-basics.sock",
        "tests/sessions/unix.sock",
        "tests/sessions/tls.sock",
    ] {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let script = std::fs::read_to_string(&full).expect("session file is readable");
        let first = transcript(&run_script(&script, &[]));
        for _ in 0..3 {
            assert_eq!(transcript(&run_script(&script, &[])), first, "{path}");
        }
    }
}

/// The shell's own words in Chinese alone (`--lang zh`), for sessions full
/// of them: the one-line meanings of OS errors, the hints under errors and
/// the notes under output (`session-zh@FILE`). The OS's own error text
/// stays as the OS writes it.
#[test]
fn sessions_in_chinese() {
    settings().bind(|| {
        for name in ["errors", "udp", "regex-and-implicit-binds"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/sessions/{name}.sock"));
            let script = std::fs::read_to_string(&path).expect("session file is readable");
            let run = run_script_env(&script, &["--lang", "zh"], &[("SOCKLAB_TRACE", "observe")]);
            let text = transcript(&run);
            for english in [
                "   note: ",
                "(`sockets` lists them)",
                "there are no sockets yet",
                "another socket already holds",
            ] {
                assert!(!text.contains(english), "{english:?} in {name}:\n{text}");
            }
            insta::assert_snapshot!(format!("session-zh@{name}.sock"), text);
        }
    });
    // The OS's words stay; the meaning under them is Chinese.
    let run = run_script_env(
        "listen 0 as srv\nclose srv\n!connect 127.0.0.1 {srv.port}\n",
        &["--lang", "zh"],
        &[],
    );
    let text = transcript(&run);
    assert!(
        text.contains("Connection refused (os error 111)\n")
            && text.contains("那个端口上没有程序在监听")
            && !text.contains("nothing listens"),
        "{text}"
    );
}
