//! Script mode: run a session file (or standard input) line by line and
//! print a transcript that is the same on every run.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use socklab_net::{Event, Lab};
use tokio::runtime::Runtime;
use tokio::signal::unix::Signal;
use tokio::sync::mpsc;

use crate::args::{CmdError, CmdResult, Exit};
use crate::session::{error_text, Out, Pending, Session};

/// What a script run needs to know.
pub struct Options {
    /// The name errors are reported under (`lesson.sock`, `<stdin>`).
    pub label: String,
    /// Continue after a failing command.
    pub keep_going: bool,
    /// How long waiting commands wait when they name no timeout.
    pub wait: Duration,
}

/// The prompt shown before each command in the transcript.
pub const PROMPT: &str = "socklab> ";

/// A line prefixed with this is expected to fail: its error is part of the
/// transcript, and the run goes on; success is the failure.
pub const EXPECT_FAIL: char = '!';

/// Runs every line of `input`; returns the exit status.
pub fn run(rt: &Runtime, input: impl BufRead + Send + 'static, opts: &Options) -> i32 {
    let (lab, mut rx) = rt.block_on(async { Lab::new(1024) });
    let out = Arc::new(Out::plain());
    let mut session = Session::new(lab.clone(), out.clone(), Some(opts.wait));
    let mut interrupts = match crate::repl::interrupts(rt) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{}: error: cannot catch Ctrl-C: {e}", opts.label);
            return Exit::OsErr as i32;
        }
    };
    let mut lines = read_lines(input);
    let mut status = 0;
    let mut lineno = 0;
    loop {
        // While waiting for the next line, events (an outside client, data
        // from a peer) print as they come: a busy server must never wait on a
        // script that waits on its input.
        let next = rt.block_on(async {
            loop {
                tokio::select! {
                    biased;
                    Some(ev) = rx.recv() => out.line(&crate::render::event(&ev, session.format())),
                    line = lines.recv() => break Some(line),
                    _ = interrupts.recv() => break None,
                }
            }
        });
        lineno += 1;
        let line = match next {
            None => {
                eprintln!("{}:{lineno}: error: interrupted (Ctrl-C)", opts.label);
                status = Exit::Interrupted as i32;
                break;
            }
            Some(None) => break,
            Some(Some(Ok(bytes))) => match String::from_utf8(bytes) {
                Ok(l) => l,
                Err(_) => {
                    eprintln!("{}:{lineno}: error: the line is not UTF-8 text", opts.label);
                    status = Exit::Data as i32;
                    break;
                }
            },
            Some(Some(Err(e))) => {
                eprintln!("{}:{lineno}: error: cannot read: {e}", opts.label);
                status = Exit::Io as i32;
                break;
            }
        };
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if lineno == 1 && line.starts_with("#!") {
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.line(line);
            continue;
        }
        out.line(&format!("{PROMPT}{line}"));
        let (expect_fail, command) = match trimmed.strip_prefix(EXPECT_FAIL) {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let command = session.expand(command);
        let command = command.as_str();
        let result = run_one(rt, &mut session, &mut rx, &mut interrupts, command);
        let failure = match (result, expect_fail) {
            (Ok(()), false) => None,
            (Err(e), true) => {
                // The failure is the lesson: show it as part of the transcript.
                out.line(&error_text("", command, &e));
                None
            }
            (Ok(()), true) => Some(CmdError::new(
                Exit::Data,
                "this command was expected to fail (it starts with '!'), but it succeeded",
            )),
            (Err(e), false) => Some(e),
        };
        if let Some(e) = failure {
            let prefix = match e.span {
                Some(span) => format!(
                    "{}:{lineno}:{}: ",
                    opts.label,
                    crate::parse::column(command, span.start) + 1
                ),
                None => format!("{}:{lineno}: ", opts.label),
            };
            eprintln!("{}", error_text(&prefix, command, &e));
            if status == 0 {
                status = e.exit as i32;
            }
            if !opts.keep_going || e.exit == Exit::Interrupted {
                break;
            }
        }
        if session.quit {
            break;
        }
    }
    let _ = rt.block_on(session.jobs.kill_all());
    rt.block_on(lab.close_all());
    status
}

/// Reads `input` line by line on a thread of its own (reading may block on
/// a pipe) and hands the lines over; the channel closes at end of input.
fn read_lines(input: impl BufRead + Send + 'static) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in input.split(b'\n') {
            let failed = line.is_err();
            if tx.blocking_send(line).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// Runs one command; events it caused are printed after its own output.
fn run_one(
    rt: &Runtime,
    session: &mut Session,
    rx: &mut mpsc::Receiver<Event>,
    interrupts: &mut Signal,
    line: &str,
) -> CmdResult {
    let out = session.out.clone();
    let settings = session.settings.clone();
    let mut pending = Pending::default();
    let result = rt.block_on(async {
        let fut = session.execute(line);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                r = &mut fut => {
                    // Everything the command waited on was reported before
                    // it completed, so it is in the channel now.
                    while let Ok(ev) = rx.try_recv() {
                        pending.push(ev, &out, settings.format());
                    }
                    break r;
                }
                Some(ev) = rx.recv() => pending.push(ev, &out, settings.format()),
                _ = interrupts.recv() => break Err(CmdError::new(Exit::Interrupted, "interrupted (Ctrl-C)")),
            }
        }
    });
    pending.flush(&out, settings.format());
    result
}
