//! Opening and closing a session, the same way on a terminal and in a
//! script: the lab, the jobs, the one stream of reports and its printer,
//! Ctrl-C; and at the end every job killed and every socket closed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use socklab_net::Lab;
use socklab_tasks::Jobs;
use tokio::runtime::Runtime;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::args::{Exit, Fatal};
use crate::out::Out;
use crate::report::{JobLines, Printer, Reports};
use crate::session::Session;

/// The prompt shown before each command (typed, or in a transcript).
pub const PROMPT: &str = "socklab> ";

/// A script line prefixed with this is expected to fail: its error is part
/// of the transcript, and the run goes on; success is the failure.
pub const EXPECT_FAIL: char = '!';

/// How many events, and how many job lines, may wait to be printed.
const BACKLOG: usize = 1024;

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
    let session = Session::new(lab, jobs, printer, Arc::new(job_lines), wait_limit);
    // Installed once, so no Ctrl-C is ever lost.
    let interrupts = {
        let _guard = rt.enter();
        signal(SignalKind::interrupt()).context(Fatal::new(Exit::OsErr, "cannot catch Ctrl-C"))?
    };
    Ok(Opened {
        session,
        reports: Reports::new(events, lines, take_lines),
        interrupts,
    })
}

/// Ends a session: kills every job and closes every socket; returns how
/// many sockets were closed.
pub fn close(rt: &Runtime, session: &Session) -> usize {
    rt.block_on(session.end())
}
