//! Every session file, tests' and lessons', through the real binary with
//! standard input piped; the transcript is the snapshot.

use crate::support::{run_script, transcript};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// Snapshots `path`'s transcript as `GROUP@FILE.snap`.
fn check(group: &str, path: &std::path::Path) {
    let script = std::fs::read_to_string(path).expect("session file is readable");
    let run = run_script(&script, &[]);
    insta::assert_snapshot!(group, transcript(&run));
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

/// Running a lesson twice gives the same transcript, byte for byte (the
/// ports the OS picks aside).
#[test]
fn transcripts_are_deterministic() {
    for path in [
        "docs/lessons/11-long-connection.sock",
        "tests/sessions/tcp-basics.sock",
    ] {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let script = std::fs::read_to_string(&full).expect("session file is readable");
        let first = transcript(&run_script(&script, &[]));
        for _ in 0..3 {
            assert_eq!(transcript(&run_script(&script, &[])), first, "{path}");
        }
    }
}
