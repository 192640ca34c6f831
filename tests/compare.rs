//! `benches/compare --quick`: the comparison script itself works (tiny
//! sizes, one round). It times nothing that could fail a test: it checks
//! that every row is there, that the anchors CI installs (socat, ncat,
//! python3) were measured, and that a tool or a socklab command that is
//! missing is said, not skipped in silence.

use std::process::Command;

use crate::support::need;

#[test]
fn compare_quick_prints_one_table_with_every_row() {
    for tool in ["python3", "socat", "ncat"] {
        need(tool);
    }
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/compare"))
        .args(["--quick", "--socklab", env!("CARGO_BIN_EXE_socklab")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let row = |label: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with("| ") && l.contains(label))
            .unwrap_or_else(|| panic!("no row '{label}' in:\n{stdout}"))
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let number = |c: &str| c.parse::<f64>().is_ok();
    // Measured: socat and nc as anchors, python3's loops, socklab's side.
    for label in [
        "tmpfs->tmpfs: nc",
        "socklab verified upload",
        "socklab upload --raw",
        "socklab download",
        "between two lab sockets",
        "flood",
    ] {
        let r = row(label);
        assert!(number(&r[2]) && number(&r[3]) && number(&r[5]), "{r:?}");
    }
    assert!(number(&row("send lines")[3]));
    // iperf3 and sockperf may be missing (then said so); socklab's bench
    // rows are figures, or say the build has no `bench`.
    for label in ["bench stream", "bench rtt p50 TCP", "bench rtt p50 UDP"] {
        let r = row(label);
        assert!(number(&r[2]) || r[2] == "missing", "{r:?}");
        assert!(
            number(&r[3]) || r[3] == "socklab bench: not in this build",
            "{r:?}"
        );
    }
    for label in [
        "bench connect",
        "bench hold 100: echoed",
        "bench hold 100: rss",
    ] {
        let r = row(label);
        assert!(
            number(&r[3]) || r[3] == "socklab bench: not in this build",
            "{r:?}"
        );
    }
    // Its temporary directory is gone.
    let tmp = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("temp dir"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no temp dir line in:\n{stdout}"));
    assert!(!std::path::Path::new(tmp).exists(), "{tmp} is left");
}
