//! `exec` and `listen … exec` through the real binary: programs are
//! listed with their pid, and none outlives `quit` or the end of a script.

use crate::support::{gone, pids, run_script};

const PROGRAMS: &str = "exec sleep 300 as nap\nlisten 0 as srv exec sleep 300\nconnect srv as c\n";

#[test]
fn quit_leaves_no_program_behind() {
    let run = run_script(&format!("{PROGRAMS}quit\n"), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let found = pids(&run.stdout);
    assert_eq!(found.len(), 2, "{}", run.stdout);
    for pid in found {
        assert!(gone(pid), "program {pid} outlived quit");
    }
}

#[test]
fn end_of_script_leaves_no_program_behind() {
    let run = run_script(PROGRAMS, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let found = pids(&run.stdout);
    assert_eq!(found.len(), 2, "{}", run.stdout);
    for pid in found {
        assert!(gone(pid), "program {pid} outlived the script");
    }
}

#[test]
fn sockets_lists_a_program_with_its_pid_and_command() {
    let run = run_script("exec cat\nsockets\nclose s1\nsockets\n", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row =
        regex::Regex::new(r"\ns1 +program +- +pid \d+ +cat +running +events +0 +0\n").unwrap();
    assert!(row.is_match(&run.stdout), "{}", run.stdout);
    assert!(
        run.stdout.contains("s1: exited with status 0"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with("socklab> sockets\nno sockets\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_program_that_exits_early_is_reported_and_can_be_closed() {
    let run = run_script(
        "exec sh -c \"echo bye; echo oops >&2; exit 3\" as early\nexpect early \"bye\\n\"\nclose early\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after_close = run
        .stdout
        .split("socklab> close early")
        .nth(1)
        .unwrap_or_default();
    for line in [
        "early <- stderr: 5 bytes \"oops\\n\"",
        "early <- peer closed (EOF)",
        "early: exited with status 3",
    ] {
        assert!(
            after_close.contains(line),
            "{line} missing after close in:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("early: matched \"bye\\n\""),
        "{}",
        run.stdout
    );
}

/// Regression: what a program answered printed after whichever command
/// was running when the answer came (here `sleep`), and how the kernel cut
/// it into reads showed too, so the transcript depended on timing. An
/// outside stream's data is now shown by the `expect` that takes it, and
/// its end (EOF, exit) by the `close` that settles it.
#[test]
fn an_outside_answer_is_shown_by_the_expect_that_takes_it_and_its_end_by_close() {
    let script =
        "exec python3 -u -c \"import sys; print(sys.stdin.readline().strip() + '!')\" as p\n\
         send p \"hi\\n\"\n\
         sleep 300ms\n\
         expect p \"hi!\"\n\
         close p\n";
    let run = run_script(script, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tail = run
        .stdout
        .split("socklab> sleep 300ms\n")
        .nth(1)
        .unwrap_or_default();
    let want = "socklab> expect p \"hi!\"\n\
                p: matched \"hi!\" (3 bytes taken)\n\
                socklab> close p\n\
                p: closed\n\
                p: received but never taken (no expect matched it): 1 byte \"\\n\"\n\
                p <- peer closed (EOF)\n\
                p: exited with status 0\n";
    assert!(tail.starts_with(want), "{}", run.stdout);
}

/// Regression: a program still open when the input ended showed its end
/// of stream and exit on one run and not on the next (whether they had
/// arrived yet), and what it printed never. The end of the input now
/// closes it as `close` does, so the end is the same on every run.
#[test]
fn a_program_open_at_the_end_of_input_is_closed_as_close_does() {
    let run = run_script("exec sh -c \"echo hi\" as p\nsockets\n", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tail = run
        .stdout
        .split_once("(end of input: close p)\n")
        .map(|(_, t)| t)
        .unwrap_or_default();
    assert_eq!(
        tail,
        "p: closed\n\
         p: received but never taken (no expect matched it): 3 bytes \"hi\\n\"\n\
         p <- peer closed (EOF)\n\
         p: exited with status 0\n",
        "{}",
        run.stdout
    );
}
