//! `send NAME fill:SIZE` past 64M (issue 11): sent from a small buffer,
//! so a big fill keeps socklab's memory flat, and shown as before.

use std::process::Command;

use crate::support::{need, run_script};

/// A 1 GiB fill between two lab sockets goes through whole, is reported
/// whole by the receiver, and socklab's peak memory stays far below the
/// size (before, fill: stopped at 64M and was held whole).
#[test]
fn a_gigabyte_fill_goes_whole_with_memory_flat() {
    need("python3");
    // python3 runs socklab and reads its children's peak RSS, which is
    // socklab's alone (the test binary's own children are many).
    let runner = r#"
import resource, subprocess, sys
script = b"listen 0 as srv\nconnect srv as cli\nsend cli fill:1G timeout 100s\nclose cli\n"
out = subprocess.run([sys.argv[1]], input=script, capture_output=True, timeout=110)
sys.stdout.write(out.stdout.decode())
sys.stderr.write(out.stderr.decode())
print("maxrss_kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(out.returncode)
"#;
    let out = Command::new("python3")
        .args(["-c", runner, env!("CARGO_BIN_EXE_socklab")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xs = "x".repeat(100);
    assert!(
        stdout.contains(&format!(
            "cli -> 1073741824 bytes \"{xs}\" … (+1073741724 bytes)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "srv.1 <- 1073741824 bytes \"{xs}\" … (+3996 bytes)"
        )),
        "{stdout}"
    );
    let rss: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    // The fill buffer (1 MiB), the event budget (64 MiB), an inbox (1 MiB).
    assert!(rss < 128 * 1024, "peak RSS {rss} KiB for a 1 GiB fill");
}

/// Wrong sizes are refused where they are typed: past 16G anywhere, past
/// 64M where the bytes must be held whole (a UDP datagram, a framed
/// stream).
#[test]
fn a_fill_too_large_for_where_it_goes_is_refused_at_the_argument() {
    let run = run_script(
        "listen 0 as srv\nconnect srv as cli\nsend cli fill:17G\n",
        &[],
    );
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(
        run.stderr.contains(":3:10: error: fill: at most 16G bytes"),
        "{}",
        run.stderr
    );

    let run = run_script("udp 0 as u\nudp 0 as v\nsendto u v fill:65M\n", &[]);
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(
        run.stderr.contains("fill: at most 64M bytes here"),
        "{}",
        run.stderr
    );

    let run = run_script(
        "listen 0 as srv\nconnect srv as cli\nframe cli len\nsend cli fill:65M\n",
        &[],
    );
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(
        run.stderr.contains("fill: at most 64M bytes here"),
        "{}",
        run.stderr
    );
}

/// A fill larger than the wait allows gives up saying how much went, and,
/// since far more went than the kernel's buffers hold, that the peer does
/// read and the send wants a longer timeout (not that the peer is stuck).
#[test]
fn a_fill_that_outlasts_its_timeout_says_the_peer_reads() {
    let run = run_script(
        "listen 0 as srv\nconnect srv as cli\nsend cli fill:16G timeout 2s\n",
        &[],
    );
    assert_eq!(run.code, 75, "{}", run.stderr);
    let re = regex::Regex::new(r"send cli: gave up after 2s: (\d+) of 17179869184 bytes were sent")
        .unwrap();
    let went: u64 = re
        .captures(&run.stderr)
        .unwrap_or_else(|| panic!("{}", run.stderr))[1]
        .parse()
        .unwrap();
    assert!(went > 16 << 20, "{went}");
    assert!(run.stderr.contains("the peer is reading"), "{}", run.stderr);
}
