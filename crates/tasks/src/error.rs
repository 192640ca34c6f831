//! Typed errors: what went wrong, with which workload, job or program.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::Mode;

/// What this crate's operations can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No workload of that name.
    #[error("no workload named '{name}' (known: {known})")]
    UnknownWorkload {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A workload parameter is out of its range or does not apply.
    #[error("{workload}: {param} {problem}")]
    BadParameter {
        /// The workload's name.
        workload: &'static str,
        /// The parameter (`times`, `every`, `N`).
        param: &'static str,
        /// What is wrong, in words that follow the parameter
        /// ("must be 1..=100000, got 0").
        problem: String,
    },
    /// A job needs at least one workload.
    #[error("a job needs at least one workload")]
    NoWorkers,
    /// More workers in one job than the mode allows.
    #[error("{asked} {mode} workers in one job is too many (at most {max})")]
    TooManyWorkers {
        /// The mode asked for.
        mode: Mode,
        /// How many workers were asked for.
        asked: usize,
        /// The most one job of this mode may have.
        max: usize,
    },
    /// A mode's name is not one of `process`, `thread`, `task`.
    #[error("no mode named '{0}' (known: process, thread, task)")]
    UnknownMode(String),
    /// No job of that name.
    #[error("no job named '{0}'")]
    NoSuchJob(String),
    /// A job of that name exists already.
    #[error("a job named '{0}' exists already")]
    NameTaken(String),
    /// The job is still running (and the operation needs it ended).
    #[error("{0} is still running")]
    StillRunning(String),
    /// A job name the shell could not print or type back.
    #[error("'{0}' is not a usable job name (1-32 letters, digits, '_', '-', '.')")]
    BadName(String),
    /// Starting a worker process failed.
    #[error("{job}: cannot start worker process {program}: {source}")]
    SpawnProcess {
        /// The job being started.
        job: String,
        /// The executable that was to run.
        program: PathBuf,
        /// The OS error, with its text and number.
        #[source]
        source: io::Error,
    },
    /// Starting a worker thread failed.
    #[error("{job}: cannot start worker thread: {source}")]
    SpawnThread {
        /// The job being started.
        job: String,
        /// The OS error, with its text and number.
        #[source]
        source: io::Error,
    },
    /// The executable that process workers run could not be found.
    #[error("cannot find this program's own executable: {0}")]
    CurrentExe(#[source] io::Error),
    /// An operation that needs a tokio runtime was called outside one.
    #[error("{0} must be called inside a tokio runtime")]
    NoRuntime(&'static str),
    /// A blocking operation was called on a runtime thread.
    #[error("{0} blocks; call it outside the async runtime (e.g. in spawn_blocking)")]
    InsideRuntime(&'static str),
    /// A wait ran out of time.
    #[error("{what}: timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long it waited.
        after: Duration,
    },
    /// A worker of a measured run did not finish normally.
    #[error("{job} worker {worker} ({workload}) {state}")]
    WorkerFailed {
        /// The job.
        job: String,
        /// The worker's index in its job.
        worker: usize,
        /// The workload's name.
        workload: &'static str,
        /// How it ended, in words ("failed: exit status 2").
        state: String,
    },
    /// The operating system refused a call.
    #[error("{op}: {source}")]
    Os {
        /// The call (`getrusage`, `spawn /bin/true`, runtime creation, …).
        op: &'static str,
        /// The OS error, with its text and number.
        #[source]
        source: io::Error,
    },
}

/// This crate's result type.
pub type Result<T, E = TaskError> = std::result::Result<T, E>;
