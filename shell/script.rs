//! Script mode: run a session file (or standard input) line by line and
//! print a transcript that is the same on every run.

use std::io::BufRead;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::signal::unix::Signal;
use tokio::sync::mpsc;

use crate::args::{error_text, CmdError, CmdResult, Exit, Fatal};
use crate::commands;
use crate::driver::{self, Opened, EXPECT_FAIL, PROMPT};
use crate::lang;
use crate::lesson;
use crate::out::Out;
use crate::report::{Held, Pending, Report, Reports};
use crate::session::Session;

/// What a script run needs to know.
pub struct Options {
    /// The name errors are reported under (`lesson.sock`, `<stdin>`).
    pub label: String,
    /// Continue after a failing command.
    pub keep_going: bool,
    /// How long waiting commands wait when they name no timeout.
    pub wait: Duration,
    /// Print a stable transcript (`--stable`, see `stable.rs`).
    pub stable: bool,
}

/// One line of input, as the reading thread hands it over.
type Input = std::io::Result<Vec<u8>>;

/// A script being run.
struct Script<'a> {
    rt: &'a Runtime,
    opts: &'a Options,
    session: Session,
    reports: Reports,
    interrupts: Signal,
    /// The line being run, counted from 1.
    lineno: usize,
    /// The exit status so far (the first failure's).
    status: i32,
    /// What outside streams reported that no `close` settled yet.
    held: Held,
}

/// Runs every line of `input`; returns the exit status.
pub fn run(rt: &Runtime, input: impl BufRead + Send + 'static, opts: &Options) -> i32 {
    let Opened {
        session,
        reports,
        interrupts,
    } = match driver::open(rt, Out::plain(), Some(opts.wait)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{}: error: {e:#}", opts.label);
            return Fatal::status_of(&e);
        }
    };
    if opts.stable {
        crate::stable::enable(port_owner(session.lab.clone()));
    }
    let mut script = Script {
        rt,
        opts,
        session,
        reports,
        interrupts,
        lineno: 0,
        status: 0,
        held: Held::default(),
    };
    let mut lines = read_lines(input);
    while let Some(line) = script.next_line(&mut lines) {
        if !script.run_line(&line) {
            break;
        }
    }
    // Programs still running (and streams to a peer outside the lab) when
    // the input ends are closed as `close` closes them (a program's stdin
    // ended, SIGTERM after 2 s): whether their end of
    // stream and exit made it into the transcript was timing before
    // (`exec sh -c "echo hi"` as the last command showed them on one run
    // and not on the next).
    let running: Vec<String> = script
        .session
        .lab
        .list()
        .into_iter()
        .filter(|i| i.outside)
        .map(|i| i.name)
        .collect();
    for name in running {
        script.session.say(format!("(end of input: close {name})"));
        if let Err(e) = script.run_one(&format!("close {name}")) {
            script.session.say(error_text(
                "",
                &format!("close {name}"),
                &e,
                script.session.tmp(),
            ));
        }
    }
    // What outside streams reported that no `close` settled, stream by
    // stream, before the session ends.
    let mut rest = Pending::default();
    for ev in script.held.release_all() {
        rest.push(ev, &script.session.printer);
    }
    rest.flush(&script.session.printer);
    // Nobody prints from here on: with the receivers gone, a reader that
    // would wait for room on a full channel stops at once.
    let Script {
        session,
        reports,
        status,
        ..
    } = script;
    drop(reports);
    driver::close(rt, &session);
    status
}

impl Script<'_> {
    /// Waits for the next line of input; `None` at its end, or when the run
    /// must stop (Ctrl-C, a line that cannot be read).
    fn next_line(&mut self, lines: &mut mpsc::Receiver<Input>) -> Option<String> {
        // Bounded by the input: each turn takes one line of it.
        loop {
            let next = self.wait_for_input(lines);
            self.lineno += 1;
            let (label, lineno) = (&self.opts.label, self.lineno);
            let (status, why) = match next {
                None => (Exit::Interrupted, "interrupted (Ctrl-C)".to_string()),
                Some(None) => return None,
                Some(Some(Ok(bytes))) => match String::from_utf8(bytes) {
                    Ok(l) => return Some(l),
                    Err(_) => (Exit::Data, "the line is not UTF-8 text".to_string()),
                },
                Some(Some(Err(e))) => (Exit::Io, format!("cannot read: {e}")),
            };
            eprintln!("{label}:{lineno}: error: {why}");
            // With --keep-going, a line that is not text is one failed
            // line: the run goes on with the next.
            if status == Exit::Data && self.opts.keep_going {
                if self.status == 0 {
                    self.status = status as i32;
                }
                continue;
            }
            self.status = status as i32;
            return None;
        }
    }

    /// While waiting for the next line, events (an outside client, data
    /// from a peer) print as they come: a busy server must never wait on a
    /// script that waits on its input. `None` on Ctrl-C.
    fn wait_for_input(&mut self, lines: &mut mpsc::Receiver<Input>) -> Option<Option<Input>> {
        let Script {
            rt,
            session,
            reports,
            interrupts,
            held,
            ..
        } = self;
        rt.block_on(async {
            loop {
                tokio::select! {
                    biased;
                    Some(r) = reports.recv() => match r {
                        Report::Line(l) => session.job_lines.hold(l),
                        Report::Event(ev) if session.lab.is_outside(ev.socket()) => {
                            for old in held.hold(ev) {
                                session.printer.print(&Report::Event(old));
                            }
                        }
                        ev => session.printer.print(&ev),
                    },
                    line = lines.recv() => break Some(line),
                    _ = interrupts.recv() => break None,
                }
            }
        })
    }

    /// Echoes and runs one line of the script; false when the run stops.
    fn run_line(&mut self, line: &str) -> bool {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if self.lineno == 1 && line.starts_with("#!") {
            return true;
        }
        let trimmed = line.trim();
        match lesson::classify(line) {
            Ok(lesson::Line::Command(_)) => {}
            Ok(lesson::Line::Blank) => {
                self.session.say(line);
                return true;
            }
            // Comments and questions in the session's language.
            Ok(note) => {
                for l in lesson::echo(&note, lang::current()) {
                    self.session.say(l);
                }
                return true;
            }
            Err(why) => return self.fail(line, CmdError::new(Exit::Data, why)),
        }
        self.session.say(format!("{PROMPT}{line}"));
        let (expect_fail, command) = match trimmed.strip_prefix(EXPECT_FAIL) {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let command = self.session.expand(command);
        let result = self.run_one(&command);
        let failure = match (result, expect_fail) {
            (Ok(()), false) => None,
            (Err(e), true) => {
                // The failure is the lesson: show it as part of the transcript.
                self.session
                    .say(error_text("", &command, &e, self.session.tmp()));
                None
            }
            (Ok(()), true) => Some(CmdError::new(
                Exit::Data,
                "this command was expected to fail (it starts with '!'), but it succeeded",
            )),
            (Err(e), false) => Some(e),
        };
        if let Some(e) = failure {
            if !self.fail(&command, e) {
                return false;
            }
        }
        !self.session.quit
    }

    /// Reports a failed command on standard error; false when the run
    /// stops.
    fn fail(&mut self, command: &str, e: CmdError) -> bool {
        let (label, lineno) = (&self.opts.label, self.lineno);
        let prefix = match e.span {
            Some(span) => format!(
                "{label}:{lineno}:{}: ",
                crate::parse::column(command, span.start) + 1
            ),
            None => format!("{label}:{lineno}: "),
        };
        let text = error_text(&prefix, command, &e, self.session.tmp());
        eprintln!("{}", crate::stable::apply(&text));
        if self.status == 0 {
            self.status = e.exit as i32;
        }
        self.opts.keep_going && e.exit != Exit::Interrupted
    }

    /// Runs one command; events it caused are printed after its own output,
    /// and the lines of a job it follows go to it.
    fn run_one(&mut self, line: &str) -> CmdResult {
        let Script {
            rt,
            session,
            reports,
            interrupts,
            held,
            ..
        } = self;
        let printer = session.printer.clone();
        let job_lines = session.job_lines.clone();
        let lab = session.lab.clone();
        let mut pending = Pending::default();
        let mut take = |r: Report| match r {
            Report::Event(ev) if lab.is_outside(ev.socket()) => {
                for old in held.hold(ev) {
                    pending.push(old, &printer);
                }
            }
            Report::Event(ev) => pending.push(ev, &printer),
            Report::Line(l) => job_lines.hold(l),
        };
        let result = rt.block_on(async {
            let fut = commands::execute(session, line);
            tokio::pin!(fut);
            loop {
                tokio::select! {
                    biased;
                    r = &mut fut => {
                        // Everything the command waited on was reported
                        // before it completed, so it is in the stream now.
                        while let Some(report) = reports.try_recv() {
                            take(report);
                        }
                        break r;
                    }
                    Some(r) = reports.recv() => take(r),
                    _ = interrupts.recv() => break Err(CmdError::new(Exit::Interrupted, "interrupted (Ctrl-C)")),
                }
            }
        });
        // What the outside peer of a stream the command closed reported
        // comes first: it arrived before the events the close caused.
        if let Some(stream) = session.closed_stream.take() {
            let mut answered = Pending::default();
            for ev in held.release(&stream) {
                answered.push(ev, &printer);
            }
            answered.flush(&printer);
        }
        pending.flush(&printer);
        result
    }
}

/// Says which socket of `lab` owns a port, for stable transcripts: the
/// first (in listing order) whose local port it is, else the first
/// connected to it (an outside peer's port is named after the lab socket
/// at its other end).
fn port_owner(lab: socklab_net::Lab) -> crate::stable::Owner {
    Box::new(move |addr, port| {
        let all = lab.list();
        let here = |a: std::net::SocketAddr| {
            a.port() == port && addr.is_none_or(|ip| a.ip() == ip || a.ip().is_unspecified())
        };
        let local = all
            .iter()
            .find(|i| i.local.is_some_and(here))
            .map(|i| format!("{}.port", i.name));
        local.or_else(|| {
            all.iter()
                .find(|i| i.peer.is_some_and(here))
                .map(|i| format!("{}.peer.port", i.name))
        })
    })
}

/// Reads `input` line by line on a thread of its own (reading may block on
/// a pipe) and hands the lines over; the channel closes at end of input.
fn read_lines(input: impl BufRead + Send + 'static) -> mpsc::Receiver<Input> {
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
