//! The interactive shell on a real pseudo-terminal: completion, events
//! printed while a line is being typed, Ctrl-C, Ctrl-D and errors, the way
//! a person at a terminal meets them.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use regex::Regex;
use rexpect::error::Error;
use rexpect::process::WaitStatus;
use rexpect::session::{spawn_with_options, Options, PtySession};

/// How long any one step may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);
/// rexpect's own timeout: waits are retried in slices of this until their
/// deadline, so a wait can also be short.
const SLICE_MS: u64 = 500;

/// socklab running on a pseudo-terminal, as a REPL.
struct Repl {
    pty: PtySession,
    pid: u32,
    history: PathBuf,
}

impl Repl {
    /// Starts socklab on a 40x200 terminal with its own history file, and
    /// waits for the banner and the first prompt.
    fn start(test: &str) -> Repl {
        let history = std::env::temp_dir().join(format!(
            "socklab-repl-{}-{test}.history",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&history);
        // The shell sets the terminal size before socklab reads it, and
        // prints its pid, which `exec` hands on to socklab.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"stty rows 40 cols 200 && echo "pid=$$" && exec "$0""#)
            .arg(env!("CARGO_BIN_EXE_socklab"))
            .env("TERM", "xterm")
            .env("SOCKLAB_HISTORY", &history);
        let options = Options::new()
            .timeout_ms(Some(SLICE_MS))
            .strip_ansi_escape_codes(true);
        let pty = spawn_with_options(cmd, options).expect("socklab starts on a pty");
        let mut repl = Repl {
            pty,
            pid: 0,
            history,
        };
        let (_, pid) = repl.exp_regex(r"pid=\d+\r?\n");
        repl.pid = pid["pid=".len()..].trim().parse().expect("a pid");
        repl.exp(&format!(
            "socklab {}: a socket laboratory.",
            env!("CARGO_PKG_VERSION")
        ));
        repl.exp("socklab> ");
        repl
    }

    /// Waits up to `within` for `f` to match; if it did not, the error is
    /// the output seen meanwhile.
    fn try_exp<T>(
        &mut self,
        within: Duration,
        mut f: impl FnMut(&mut PtySession) -> Result<T, Error>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + within;
        loop {
            match f(&mut self.pty) {
                Ok(v) => return Ok(v),
                Err(Error::Timeout { got, .. }) => {
                    if Instant::now() >= deadline {
                        return Err(got);
                    }
                }
                Err(e) => panic!("socklab's terminal: {e}"),
            }
        }
    }

    /// Waits for `needle`; returns what came before it.
    fn exp(&mut self, needle: &str) -> String {
        self.try_exp(WAIT, |p| p.exp_string(needle))
            .unwrap_or_else(|got| {
                panic!("no {needle:?} on the terminal within {WAIT:?}; got {got:?}")
            })
    }

    /// Waits for a match of `re`; returns what came before it and the match.
    fn exp_regex(&mut self, re: &str) -> (String, String) {
        self.try_exp(WAIT, |p| p.exp_regex(re))
            .unwrap_or_else(|got| {
                panic!("no match of /{re}/ on the terminal within {WAIT:?}; got {got:?}")
            })
    }

    /// Waits for `text` printed as a whole line of output (so not the
    /// echo of the line typed); returns what came before it.
    fn exp_line(&mut self, text: &str) -> String {
        self.exp_regex(&format!(r"\n\r?{}\r?\n", regex::escape(text)))
            .0
    }

    /// Types keys (no Enter unless they hold `\r`).
    fn keys(&mut self, keys: &str) {
        self.pty.send(keys).expect("type on the terminal");
        self.pty.flush().expect("flush the terminal");
    }

    /// Types a line and Enter.
    fn line(&mut self, line: &str) {
        self.keys(&format!("{line}\r"));
    }

    /// Runs `listen 0 as NAME` and returns the port the OS picked.
    fn listen(&mut self, name: &str) -> u16 {
        self.line(&format!("listen 0 as {name}"));
        self.listening(name)
    }

    /// Waits for NAME's "listening on" line and returns its port.
    fn listening(&mut self, name: &str) -> u16 {
        let (_, m) = self.exp_regex(&format!(
            r"{}: listening on 127\.0\.0\.1:\d+ ",
            regex::escape(name)
        ));
        m.trim_end()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port")
    }

    /// Waits (up to `WAIT`) for socklab to exit; returns its exit status.
    fn exit_status(&mut self) -> WaitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.pty.process().status() {
                Some(WaitStatus::StillAlive) => {
                    assert!(
                        Instant::now() < deadline,
                        "socklab did not exit within {WAIT:?}"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Some(status) => return status,
                None => panic!("socklab's exit status is not available"),
            }
        }
    }

    /// Whether socklab handles SIGINT (its Ctrl-C handler is installed),
    /// so that a Ctrl-C cannot kill it.
    fn catches_sigint(&self) -> bool {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid)) else {
            return true; // no /proc here: nothing to check
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGINT - 1)) != 0)
    }
}

impl Drop for Repl {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.history);
    }
}

#[test]
fn tab_completes_a_command_name() {
    let mut r = Repl::start("complete-command");
    r.keys("lis\t");
    r.exp("socklab> listen ");
    r.line("0 as srv");
    let port = r.listening("srv");
    assert_ne!(port, 0);
}

#[test]
fn tab_completes_a_socket_name() {
    let mut r = Repl::start("complete-socket");
    r.listen("server1");
    r.keys("close serv\t");
    r.exp("socklab> close server1 ");
    r.keys("\r");
    let before = r.exp("server1: closed");
    assert!(
        !before.contains("error"),
        "closing by the completed name failed: {before:?}"
    );
}

#[test]
fn tab_and_hints_follow_the_grammar_of_the_command() {
    let mut r = Repl::start("complete-grammar");
    r.listen("srv");
    r.line("socket tcp as c");
    r.exp("c = <socket.socket");
    r.line("connect c srv");
    r.exp("srv: accepted srv.1");
    // A socket option after `set NAME`, and its value.
    r.keys("set c nod\t");
    r.exp("socklab> set c nodelay ");
    r.keys("of\t\r");
    r.exp_line("c: TCP_NODELAY = off");
    // After `frame NAME` the hint shows the framings; Tab completes one.
    r.keys("frame c ");
    r.exp("frame c raw|line|len");
    r.keys("li\t\r");
    r.exp("c: line: one message per line");
    // Where a listener goes, only the listener is offered.
    r.keys("accept \t");
    r.exp("socklab> accept srv ");
}

#[test]
fn events_print_above_a_half_typed_line_and_it_survives() {
    let mut r = Repl::start("events-while-typing");
    let port = r.listen("srv");
    r.keys("sock");
    // (rustyline draws the prompt, moves the cursor after it with an escape
    // sequence, which is stripped here, and then echoes each key.)
    r.exp_regex(r"socklab> \r*sock");

    let mut peer =
        TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect to socklab");
    peer.write_all(b"hello").expect("send hello");
    r.exp("srv: accepted srv.1 from 127.0.0.1:");
    r.exp(r#"srv.1 <- 5 bytes "hello""#);
    // The half-typed line is drawn again below the events...
    r.exp("socklab> sock");
    // ...and finishing it runs the whole word.
    r.line("ets");
    let (before, _) = r.exp_regex(r"\nNAME +KIND[^\n]*\n");
    assert!(
        !before.contains("error"),
        "the finished line did not run as `sockets`: {before:?}"
    );
    r.exp_regex(r"\nsrv\.1 +tcp conn +[A-Z_]+ +127\.0\.0\.1:");
    drop(peer);
}

#[test]
fn ctrl_c_interrupts_a_waiting_recv_and_the_prompt_returns() {
    let mut r = Repl::start("ctrl-c");
    r.listen("srv");
    r.line("socket tcp as c");
    r.exp("c = <socket.socket");
    r.line("connect c srv");
    r.exp("c: connected to 127.0.0.1:");
    // Nobody sends to c: this recv waits until interrupted.
    r.line("recv c");
    r.exp_regex(r"recv c\r*\n");
    let deadline = Instant::now() + WAIT;
    while !r.catches_sigint() {
        assert!(
            Instant::now() < deadline,
            "socklab never installed its Ctrl-C handler"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // A Ctrl-C typed in the instant between Enter and the wait starting is
    // not seen by the wait; type it again until it is.
    let mut interrupted = Err(String::new());
    while interrupted.is_err() && Instant::now() < deadline {
        r.pty.send_control('c').expect("type Ctrl-C");
        interrupted = r.try_exp(Duration::from_secs(2), |p| {
            p.exp_string("error: interrupted")
        });
    }
    let before =
        interrupted.unwrap_or_else(|got| panic!("Ctrl-C did not interrupt `recv c`; got {got:?}"));
    assert!(
        !before.contains("c <- recv"),
        "recv returned data instead of waiting: {before:?}"
    );
    assert_eq!(
        r.pty.process().status(),
        Some(WaitStatus::StillAlive),
        "Ctrl-C ended socklab"
    );

    r.exp("socklab> ");
    r.line(r#"echo "still" "here""#);
    r.exp_line("still here");
}

#[test]
fn ctrl_d_closes_every_socket_and_exits_0() {
    let mut r = Repl::start("ctrl-d");
    let port = r.listen("srv");
    r.exp("socklab> ");
    r.pty.send_control('d').expect("type Ctrl-D");
    r.exp("closed 1 socket; bye");
    r.try_exp(WAIT, |p| p.exp_eof())
        .unwrap_or_else(|got| panic!("the terminal stayed open after bye; got {got:?}"));
    match r.exit_status() {
        WaitStatus::Exited(_, code) => assert_eq!(code, 0, "exit status after Ctrl-D"),
        other => panic!("socklab did not exit normally: {other:?}"),
    }
    // Its listener is gone with it.
    let refused = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), WAIT);
    assert!(
        refused.is_err(),
        "port {port} still accepts connections after Ctrl-D"
    );
}

#[test]
fn a_mistyped_command_gets_one_error_with_a_caret_and_the_prompt_returns() {
    let mut r = Repl::start("error");
    r.line("lsiten 5555");
    let before = r.exp("error: unknown command 'lsiten'; did you mean 'listen'?");
    assert!(
        !before.contains("error"),
        "another error came first: {before:?}"
    );
    let shown = r.exp("socklab> ");
    assert!(
        shown.contains("lsiten 5555"),
        "the error should quote the line: {shown:?}"
    );
    let caret = Regex::new(r"\n *\^+ *\r?\n").expect("regex");
    assert!(
        caret.is_match(&shown),
        "no caret line under the mistake: {shown:?}"
    );
    assert!(!shown.contains("error"), "more than one error: {shown:?}");

    r.line("echo ok");
    let before = r.exp_line("ok");
    assert!(
        !before.contains("error"),
        "the prompt did not work again: {before:?}"
    );
}
