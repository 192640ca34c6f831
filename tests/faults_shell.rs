//! Issue 10, the shell's part: hints that tell the truth, exit statuses as
//! `--help` says, `/regex/` with spaces, implicit binds said, `wait` under
//! load, SIGTERM and SIGHUP cleaned up like Ctrl-D, and timeouts that say
//! what did happen.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::support::{gone, pids, run_script};

/// How long one step of a test may take before it fails (a bound, never a
/// synchroniser).
const WAIT: Duration = Duration::from_secs(20);

/// Issue 10 item 3: `set t ttl 300` says the TTL's range, not "bind twice
/// … listen on a connected socket".
#[test]
fn a_ttl_out_of_range_says_the_range() {
    let run = run_script("socket tcp as t\nset t ttl 300\n", &[]);
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(run.stderr.contains("1-255"), "{}", run.stderr);
    assert!(!run.stderr.contains("bind twice"), "{}", run.stderr);
    let run = run_script("socket tcp as t\nset t ttl 255\n", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Issue 10 item 3: "Address already in use" advises SO_REUSEADDR only on
/// a socket that does not have it on already.
#[test]
fn address_in_use_advises_reuseaddr_only_when_it_is_off() {
    let run = run_script(
        "socket tcp as a\nbind a 127.0.0.1 0\nlisten a\n\
         socket tcp as on\nset on reuseaddr on\n!bind on 127.0.0.1 {a.port}\n\
         socket tcp as off\n!bind off 127.0.0.1 {a.port}\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (on, off) = run
        .stdout
        .split_once("socklab> socket tcp as off")
        .expect("both binds ran");
    assert!(on.contains("SO_REUSEADDR is on already"), "{on}");
    assert!(!on.contains("reuseaddr on` before bind"), "{on}");
    assert!(off.contains("`set off reuseaddr on` before bind"), "{off}");
}

/// Issue 10 item 3: `accept` on a server whose first client was closed
/// before anyone accepted it returns the next live client, not an error.
#[test]
fn accept_skips_a_client_closed_already() {
    let run = run_script(
        "listen 0 as it\nconnect it as c1\nconnect it as c2\nclose it.1\naccept it\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("it: next client is it.2"),
        "{}",
        run.stdout
    );
}

/// Issue 10 item 4: every timeout is 75 (timed out), an `expect` that saw
/// the end of the stream is 65 (data).
#[test]
fn timeouts_exit_75_and_an_expect_that_sees_eof_exits_65() {
    let setup = "listen 0 as srv\nconnect srv as cli\n";
    let run = run_script(&format!("{setup}expect cli \"x\" timeout 100ms\n"), &[]);
    assert_eq!(run.code, 75, "{}", run.stderr);
    let run = run_script(
        &format!("{setup}watch cli off\nrecv cli timeout 100ms\n"),
        &[],
    );
    assert_eq!(run.code, 75, "{}", run.stderr);
    let run = run_script(&format!("{setup}close srv.1\nexpect cli \"x\"\n"), &[]);
    assert_eq!(run.code, 65, "{}", run.stderr);
}

/// Issue 10 item 4: a wrong command line is 64 (usage), as `--help` says;
/// `--help` and `--version` are 0.
#[test]
fn a_wrong_command_line_exits_64_and_help_exits_0() {
    let bin = env!("CARGO_BIN_EXE_socklab");
    let status = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("socklab runs")
    };
    let bad = status(&["--no-such-flag"]);
    assert_eq!(bad.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--no-such-flag"));
    assert_eq!(status(&["--wait", "forever"]).status.code(), Some(64));
    let help = status(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("64 usage") && text.contains("75 timed out"),
        "{text}"
    );
    assert_eq!(status(&["--version"]).status.code(), Some(0));
}

/// Issue 10 item 5: a `/regex/` may contain spaces, and "matched" shows
/// the text it matched.
#[test]
fn a_regex_may_contain_spaces_and_its_match_is_shown() {
    let run = run_script(
        "listen 0 as srv\nconnect srv as cli\nsend srv.1 \"say hello world\"\n\
         expect cli /hello w.rld/ timeout 2s\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("cli: matched /hello w.rld/: \"hello world\" (15 bytes taken)"),
        "{}",
        run.stdout
    );
}

/// Issue 10 item 6: `listen` without `bind`, and `sendto` from an unbound
/// UDP socket, bind to 0.0.0.0 implicitly: socklab says so, and that other
/// machines can reach it.
#[test]
fn implicit_binds_to_every_interface_are_said() {
    let run = run_script(
        "socket tcp as s\nlisten s\nsocket udp as u\nudp 0 as rx\nsendto u rx hi\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("note: s was not bound, so listen bound it first"),
        "{out}"
    );
    assert!(
        out.contains(
            "note: 0.0.0.0 is every interface of this machine: other machines can connect to it"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "note: u was not bound, so sendto bound it first, as the OS does: to 0.0.0.0:"
        ),
        "{out}"
    );
    assert!(out.contains("other machines can send to it"), "{out}");
}

/// Busy loops on every core until dropped (bounded by `WAIT` in any case).
struct Hog {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hog {
    fn start() -> Hog {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let until = Instant::now() + WAIT * 3;
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();
        Hog { stop, threads }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Issue 10 item 9: `wait` after a job a foreground `spawn` followed to its
/// end, and `wait JOB` on a job that has finished, return at once, even
/// while every core is busy: the job's lines were printed already, and
/// `wait` no longer waits for them again.
#[test]
fn wait_on_a_finished_job_returns_under_load() {
    let _hog = Hog::start();
    for _ in 0..3 {
        let run = run_script(
            "spawn coding music as process times 3 every 20ms\nwait\nwait job1\n\
             spawn nap as task times 1 every 10ms background\nwait job2\nwait job2\n",
            &["--wait", "10s"],
        );
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert!(!run.stderr.contains("did not finish"), "{}", run.stderr);
        assert_eq!(
            run.stdout.matches("job1: done").count(),
            1,
            "{}",
            run.stdout
        );
        assert_eq!(
            run.stdout.matches("job2: done").count(),
            2,
            "{}",
            run.stdout
        );
        assert_eq!(run.stdout.matches("job1: coding finished").count(), 1);
    }
}

/// Entries of `dir` made by socklab (its `{tmp}` directories).
fn session_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("socklab-"))
                .collect()
        })
        .unwrap_or_default()
}

/// socklab running a script from a pipe, its output read line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl Running {
    fn start(script: &str, tmpdir: &Path) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
            .env("TMPDIR", tmpdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("socklab starts");
        // The script stays open (stdin is not closed): the session waits in
        // its last command or for more input.
        child
            .stdin
            .as_mut()
            .expect("stdin is piped")
            .write_all(script.as_bytes())
            .expect("the script is written");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// Reads output until a line contains `needle`.
    fn until(&mut self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.seen.lines().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                }
                Err(_) => panic!("no {needle:?} within {WAIT:?}; got:\n{}", self.seen),
            }
        }
    }

    /// Sends `sig`, waits for the exit; returns the status and stderr.
    fn signal(mut self, sig: i32) -> (Option<i32>, String) {
        // SAFETY: kill(2) on the child we started; no memory involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        let deadline = Instant::now() + WAIT;
        let status = loop {
            match self.child.try_wait().expect("waitpid") {
                Some(status) => break status,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                None => {
                    let _ = self.child.kill();
                    panic!("socklab did not end within {WAIT:?} after signal {sig}");
                }
            }
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        (status.code(), err)
    }
}

/// Issue 10 item 16: SIGTERM and SIGHUP end a script as the end of its
/// input does: the job's worker process and the program are gone, the
/// session's temporary directory is removed; the status is 128 + the
/// signal.
#[test]
fn sigterm_and_sighup_clean_up_a_script() {
    for (sig, status) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let mut s = Running::start(
            "write {tmp}/kept \"x\"\nspawn nap as process times 1000 every 1s background\n\
             exec sleep 300 as nap\nlisten 0 as srv\nconnect srv as cli\necho ready\nsleep 1m\n",
            tmp.path(),
        );
        s.until("ready");
        let started = pids(&s.seen);
        assert_eq!(started.len(), 2, "{}", s.seen);
        assert_eq!(session_dirs(tmp.path()).len(), 1);
        let (code, err) = s.signal(sig);
        assert_eq!(code, Some(status), "{err}");
        assert!(err.contains("the session ends as with Ctrl-D"), "{err}");
        assert!(
            session_dirs(tmp.path()).is_empty(),
            "{{tmp}} was left behind"
        );
        for pid in started {
            assert!(gone(pid), "pid {pid} outlived the session");
        }
    }
}

/// Issue 10 item 16: SIGTERM ends the REPL as Ctrl-D does, even while it
/// waits for a line at the prompt.
#[test]
fn sigterm_cleans_up_the_repl() {
    use rexpect::process::{Signal, WaitStatus};
    use rexpect::session::{spawn_with_options, Options};

    let tmp = tempfile::tempdir().expect("a temporary directory");
    let history = tmp.path().join("history");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_socklab"));
    cmd.env("TERM", "xterm")
        .env("TMPDIR", tmp.path())
        .env("SOCKLAB_HISTORY", &history);
    let options = Options::new()
        .timeout_ms(Some(WAIT.as_millis() as u64))
        .strip_ansi_escape_codes(true);
    let mut pty = spawn_with_options(cmd, options).expect("socklab starts on a pty");
    pty.exp_string("socklab> ").expect("a prompt");
    let line = |pty: &mut rexpect::session::PtySession, text: &str| {
        pty.send(&format!("{text}\r")).expect("type");
        pty.flush().expect("flush the terminal");
    };
    line(&mut pty, "write {tmp}/kept \"x\"");
    pty.exp_string("1 bytes written").expect("the file");
    line(&mut pty, "spawn nap as process times 1000 every 1s");
    let (_, line) = pty.exp_regex(r"\(pid \d+\)").expect("the worker's pid");
    let worker = pids(&line);
    pty.exp_string("socklab> ").expect("a prompt");
    assert_eq!(session_dirs(tmp.path()).len(), 1);
    pty.process_mut().signal(Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        match pty.process().status() {
            Some(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            other => break other,
        }
    };
    assert!(
        matches!(status, Some(WaitStatus::Exited(_, 143))),
        "{status:?}"
    );
    assert!(
        session_dirs(tmp.path()).is_empty(),
        "{{tmp}} was left behind"
    );
    for pid in worker {
        assert!(gone(pid), "worker {pid} outlived the session");
    }
}

/// Issue 10 item 16: with `--keep-going`, a line that is not UTF-8 is one
/// failed line (FILE:LINE:), and the run goes on; without it, it stops.
#[test]
fn a_non_utf8_line_is_skipped_with_keep_going() {
    let run_bytes = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_socklab"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("socklab starts");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(b"echo one\nsend x \xff\xfe\necho two\n")
            .expect("the script is written");
        child.wait_with_output().expect("socklab runs")
    };
    let out = run_bytes(&["--keep-going"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("<stdin>:2: error: the line is not UTF-8"),
        "{stderr}"
    );
    assert!(stdout.contains("two\n"), "{stdout}");
    let out = run_bytes(&[]);
    assert_eq!(out.status.code(), Some(65));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("two\n"));
}

/// Issue 10, "a timeout reports what did happen": connect, accept, recv,
/// expect and wait take `timeout DUR`, and say which side they waited for
/// and what came meanwhile.
#[test]
fn timeouts_say_what_did_happen() {
    let run = run_script(
        "socket tcp as s\nbind s 127.0.0.1 0\nlisten s\n!accept s timeout 100ms\n\
         socket tcp as c\nconnect c s timeout 2s\naccept s as a timeout 2s\n\
         send a \"x\"\nrecv c\n!recv c timeout 100ms\nsend a \"0123456789\"\n\
         !expect c \"never\" timeout 100ms\n\
         spawn nap as task times 100 every 1s background\n!wait job1 timeout 100ms\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains(
            "no client came: accept waited for a client to connect to s (0 accepted before)"
        ),
        "{out}"
    );
    assert!(
        out.contains("nothing arrived: recv waited for the peer 127.0.0.1:")
            && out.contains("(c has received 1 byte in all)"),
        "{out}"
    );
    assert!(
        out.contains("10 bytes arrived on c since the last match, none of it a match; all of it: \"0123456789\""),
        "{out}"
    );
    assert!(out.contains("job1 did not finish within 100ms"), "{out}");
    assert!(out.contains("still running: nap ("), "{out}");
}
