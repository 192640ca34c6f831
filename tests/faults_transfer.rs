//! Issue 10, the file-transfer faults: waits that end, slow clients that
//! cannot hold a file server, resume records that survive teardown, names
//! shown escaped, and working files that are ours.

use crate::support::run_script;

/// Issue 10 item 7: `upload` and `download` against a peer that is not a
/// `serve files` server end after the script's `--wait` (no `timeout`
/// given), with the exit status of a wait that ran out (75), and say what
/// happened: which side was waited for, what was sent, what came back.
#[test]
fn transfers_to_a_silent_peer_end_after_the_scripts_wait() {
    for (command, said) in [
        (
            "upload cli {tmp}/small",
            "error: waited 1s while reading the receiver's answer to the header; sent 30 bytes, got nothing back",
        ),
        (
            "download cli small as {tmp}/back",
            "error: waited 1s while reading the server's answer to the request; sent 21 bytes, got nothing back",
        ),
    ] {
        let script = format!(
            "write {{tmp}}/small \"hello\"\nlisten 0 as srv\nconnect srv as cli\n{command}\n"
        );
        let started = std::time::Instant::now();
        let run = run_script(&script, &["--wait", "1s"]);
        let took = started.elapsed();
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains(said), "{command}: {all}");
        assert_eq!(run.code, 75, "{command}: {all}");
        assert!(took < std::time::Duration::from_secs(30), "{command} took {took:?}");
    }
}
