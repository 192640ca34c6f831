//! socklab's workers: the same workload run as processes, threads or async
//! tasks; the jobs that hold them; their output in an order that does not
//! depend on scheduling; and what they cost, measured on the spot.
//!
//! A [`Workload`] (`coding`, `music`, `primes N`, `nap`) produces one line
//! per step. [`Jobs::spawn`] starts a job: one worker per workload, all in
//! one [`Mode`]:
//! - [`Mode::Process`]: this program re-executed with a hidden first
//!   argument ([`WORKER_FLAG`]); the binary must call
//!   [`worker_main_if_requested`] first thing in `main()`. The child writes
//!   its lines to a pipe and dies with its parent (`PR_SET_PDEATHSIG`).
//! - [`Mode::Thread`]: a `std::thread` per worker.
//! - [`Mode::Task`]: a tokio task per worker, on the caller's runtime.
//!
//! Every line of every worker comes back as a [`Line`] on one bounded
//! channel, with the PID and thread id it came from and its time since the
//! job started. A [`Sequencer`] puts one job's lines in transcript order
//! (step 0 of every worker, then step 1, …) while the workers really run
//! concurrently. [`measure`] shows concurrency vs parallelism in numbers;
//! [`spawn_costs`] what a worker costs to start.
//!
//! Nothing here prints, except a worker process, whose stdout is a pipe to
//! its parent.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use socklab_tasks::{Jobs, Mode, Sequencer, Workload};
//!
//! fn main() {
//!     // First thing: if this process is a worker, be one, then exit.
//!     socklab_tasks::worker_main_if_requested();
//!     let rt = tokio::runtime::Runtime::new().unwrap();
//!     rt.block_on(async {
//!         let (jobs, mut rx) = Jobs::new(1024);
//!         let pair = [Workload::new("coding")?, Workload::new("music")?];
//!         let job = jobs.spawn(Mode::Process, &pair).await?;
//!         let mut seq = Sequencer::new(&job.name, job.workers.len());
//!         // Bounded: every line is pushed once; the job ends by itself.
//!         while !seq.is_finished() {
//!             let Some(line) = rx.recv().await else { break };
//!             for line in seq.push(line) {
//!                 println!("{} [pid {} tid {}] {}", line.workload, line.pid, line.tid, line.text);
//!             }
//!         }
//!         jobs.wait(&job.name, Duration::from_secs(5)).await?;
//!         Ok::<_, socklab_tasks::TaskError>(())
//!     })
//!     .unwrap();
//! }
//! ```

#![deny(missing_docs)]

mod cancel;
mod error;
mod jobs;
mod line;
mod measure;
mod sequencer;
mod sys;
mod worker;
mod workload;

pub use error::{Result, TaskError};
pub use jobs::{
    JobInfo, JobNames, JobState, Jobs, Killer, Launcher, Mode, WorkerInfo, WorkerState, KILL_LIMIT,
};
pub use line::{Ending, Line, LineKind};
pub use measure::{
    cores, measure, spawn_costs, Compared, Cost, MeasureConfig, Measurement, Run, SpawnCostConfig,
    SpawnCosts, Way,
};
pub use sequencer::Sequencer;
pub use worker::{worker_main_if_requested, WORKER_FLAG};
pub use workload::{
    Kind, Workload, DEFAULT_EVERY, DEFAULT_TIMES, MAX_EVERY, MAX_PRIMES_BELOW, MAX_TIMES, WORKLOADS,
};
