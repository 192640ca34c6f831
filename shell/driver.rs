//! Opening and closing a session, the same way on a terminal and in a
//! script: the lab, the jobs, the one stream of reports and its printer,
//! Ctrl-C; and at the end every job killed and every socket closed.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use socklab_net::Lab;
use socklab_tasks::{Jobs, Killer};
use tokio::runtime::Runtime;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::args::{Exit, Fatal};
use crate::out::Out;
use crate::render;
use crate::report::{JobLines, Printer, Reports};
use crate::session::Session;

/// The prompt shown before each command (typed, or in a transcript).
pub const PROMPT: &str = "socklab> ";

/// A script line prefixed with this is expected to fail: its error is part
/// of the transcript, and the run goes on; success is the failure.
pub const EXPECT_FAIL: char = '!';

/// How many events, and how many job lines, may wait to be printed.
const BACKLOG: usize = 1024;

/// How long the clean-up after SIGTERM or SIGHUP may take (killing jobs
/// and closing sockets are bounded each; this bounds them all).
const ENDING_LIMIT: Duration = Duration::from_secs(10);

/// The signal that is ending the session (0 while none is).
static ENDING_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// An open session and what its driver reads besides input.
pub struct Opened {
    /// The session.
    pub session: Session,
    /// Its lab events and job lines, to hand to its printer.
    pub reports: Reports,
    /// Ctrl-C (SIGINT), caught from now on: it stops a waiting command.
    pub interrupts: Signal,
}

/// Opens a session printing to `out`: a script when it has a
/// `wait_limit`, a terminal when not.
pub fn open(rt: &Runtime, out: Out, wait_limit: Option<Duration>) -> anyhow::Result<Opened> {
    let interactive = wait_limit.is_none();
    let (lab, events) = rt.block_on(async { Lab::new(BACKLOG) });
    let (jobs, lines) = Jobs::new(BACKLOG);
    let (job_lines, take_lines) = JobLines::new(interactive);
    let printer = Arc::new(Printer::new(out, interactive));
    let ending = Ending {
        lab: lab.clone(),
        jobs: jobs.killer(),
        printer: printer.clone(),
        terminal: interactive.then(Terminal::save).flatten(),
        hosts: Arc::default(),
    };
    let session = Session::new(lab, jobs, printer, Arc::new(job_lines), wait_limit);
    let ending = Ending {
        hosts: session.hosts.clone(),
        ..ending
    };
    sweep_hosts();
    // Installed once, so no Ctrl-C is ever lost.
    let interrupts = {
        let _guard = rt.enter();
        signal(SignalKind::interrupt()).context(Fatal::new(Exit::OsErr, "cannot catch Ctrl-C"))?
    };
    ending.install(rt)?;
    Ok(Opened {
        session,
        reports: Reports::new(events, lines, take_lines),
        interrupts,
    })
}

/// Removes the hosts that socklab shells no longer running left behind,
/// and says so on standard error (not in the transcript: which shell
/// sweeps them is a matter of timing).
fn sweep_hosts() {
    for left in socklab_net::hosts::sweep() {
        eprintln!(
            "socklab: removed {} network namespace(s) left by socklab {}, no longer running: {}",
            left.netns.len(),
            left.pid,
            left.netns.join(" ")
        );
    }
}

/// Ends a session: kills every job and closes every socket; returns how
/// many sockets were closed.
pub fn close(rt: &Runtime, session: &Session) -> usize {
    rt.block_on(session.end())
}

/// What ends a session on SIGTERM or SIGHUP the way Ctrl-D does: every job
/// killed, every socket and program closed, the temporary directory
/// removed, the terminal as it was; then the process exits with 128 + the
/// signal's number. It runs on a task of its own, since the REPL may be
/// blocked reading the terminal and a script in the middle of a command.
struct Ending {
    lab: Lab,
    hosts: Arc<std::sync::Mutex<socklab_net::hosts::Hosts>>,
    jobs: Killer,
    printer: Arc<Printer>,
    terminal: Option<Terminal>,
}

impl Ending {
    /// Catches SIGTERM and SIGHUP from now on.
    fn install(self, rt: &Runtime) -> anyhow::Result<()> {
        let _guard = rt.enter();
        let catch = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| Fatal::new(Exit::OsErr, format!("cannot catch {name}")))
        };
        let mut term = catch(SignalKind::terminate(), "SIGTERM")?;
        let mut hup = catch(SignalKind::hangup(), "SIGHUP")?;
        rt.spawn(async move {
            let sig = tokio::select! {
                _ = term.recv() => libc::SIGTERM,
                _ = hup.recv() => libc::SIGHUP,
            };
            self.run(sig).await;
        });
        Ok(())
    }

    /// Cleans up and exits.
    async fn run(self, sig: i32) -> ! {
        ENDING_SIGNAL.store(sig, Ordering::SeqCst);
        let closed = tokio::time::timeout(ENDING_LIMIT, async {
            let _ = self.jobs.kill_all().await;
            self.lab.close_all().await
        })
        .await;
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        if let Some(tmp) = self.printer.settings().tmp().0 {
            let _ = std::fs::remove_dir_all(tmp);
        }
        if let Some(t) = &self.terminal {
            t.restore();
        }
        let name = if sig == libc::SIGHUP {
            "SIGHUP"
        } else {
            "SIGTERM"
        };
        let bye = match closed {
            Ok(n) => render::bye(n),
            Err(_) => "the clean-up ran out of time; bye".to_string(),
        };
        eprintln!("\nsocklab: {name}: the session ends as with Ctrl-D: {bye}");
        std::process::exit(128 + sig)
    }
}

/// If SIGTERM or SIGHUP is ending the session, waits for its clean-up,
/// which exits the process: a session that ended by itself meanwhile must
/// not exit first, with another status, while the clean-up runs.
pub fn await_ending(rt: &Runtime) {
    let sig = ENDING_SIGNAL.load(Ordering::SeqCst);
    if sig != 0 {
        rt.block_on(tokio::time::sleep(ENDING_LIMIT + Duration::from_secs(1)));
        std::process::exit(128 + sig);
    }
}

/// The terminal's settings when the session began, to put back when a
/// signal ends it while the line editor has it in raw mode.
struct Terminal(libc::termios);

impl Terminal {
    /// The settings of standard input, when it is a terminal.
    fn save() -> Option<Terminal> {
        // SAFETY: tcgetattr writes a termios into the zeroed struct we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(libc::STDIN_FILENO, &mut t) == 0).then_some(Terminal(t))
        }
    }

    /// Puts them back (a terminal that hung up refuses; nothing to do then).
    fn restore(&self) {
        // SAFETY: tcsetattr reads the termios we saved.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0);
        }
    }
}
