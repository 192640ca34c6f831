//! Measurements made on the spot: concurrency vs parallelism (the same work
//! on one worker and on two, four ways), and what a worker costs to start.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Result, TaskError};
use crate::jobs::{JobInfo, Jobs, Launcher, Mode, WorkerState};
use crate::sys;
use crate::workload::Workload;

/// How long one measured run may take before it is an error.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// One of the four ways two workers can share the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Way {
    /// Worker processes.
    Processes,
    /// Worker threads.
    Threads,
    /// Tasks on a current-thread runtime: one OS thread runs them all
    /// (concurrency without parallelism).
    TasksCurrentThread,
    /// Tasks on a multi-thread runtime with one worker thread per core.
    TasksMultiThread,
}

impl Way {
    /// The four ways, in the order a report shows them.
    pub const ALL: [Way; 4] = [
        Way::Processes,
        Way::Threads,
        Way::TasksCurrentThread,
        Way::TasksMultiThread,
    ];

    /// A short label (`processes`, `threads`, `tasks, current-thread runtime`, …).
    pub fn label(self) -> &'static str {
        match self {
            Way::Processes => "processes",
            Way::Threads => "threads",
            Way::TasksCurrentThread => "tasks, current-thread runtime",
            Way::TasksMultiThread => "tasks, multi-thread runtime",
        }
    }

    fn mode(self) -> Mode {
        match self {
            Way::Processes => Mode::Process,
            Way::Threads => Mode::Thread,
            Way::TasksCurrentThread | Way::TasksMultiThread => Mode::Task,
        }
    }
}

impl fmt::Display for Way {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What [`measure`] runs.
#[derive(Debug, Clone)]
pub struct MeasureConfig {
    /// The CPU-bound workload (`primes N`).
    pub cpu_bound: Workload,
    /// The waiting workload (`nap`).
    pub waiting: Workload,
    /// The program process workers run.
    pub launcher: Launcher,
}

impl MeasureConfig {
    /// `primes 3000000` in 10 steps and `nap` 10 × 50 ms: each about a
    /// quarter to half a second per worker in a release build.
    pub fn new(launcher: Launcher) -> MeasureConfig {
        MeasureConfig {
            cpu_bound: Workload::primes(3_000_000).expect("a constant within bounds"),
            waiting: Workload::nap()
                .every(Duration::from_millis(50))
                .expect("a constant within bounds"),
            launcher,
        }
    }
}

/// One measured run: `workers` workers, each running the whole workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The workload each worker ran.
    pub workload: Workload,
    /// How the workers ran.
    pub way: Way,
    /// How many workers (1 or 2).
    pub workers: usize,
    /// Wall-clock time from spawn to the last worker's end.
    pub wall: Duration,
    /// CPU time (user + system) this process and its reaped children used
    /// meanwhile (`getrusage` `RUSAGE_SELF` + `RUSAGE_CHILDREN` deltas: a
    /// worker process's CPU counts once it is reaped, and every job here is
    /// reaped before the clock stops). Includes whatever else this process
    /// did at the time.
    pub cpu: Duration,
    /// Work per second relative to one worker the same way:
    /// `workers × wall(1 worker) / wall`. 2.0 means two workers did twice the
    /// work in the same time (parallel, or overlapped waiting); 1.0 means
    /// they took turns.
    pub speedup: f64,
}

/// What [`measure`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Cores this process may use (`available_parallelism`).
    pub cores: usize,
    /// For each workload (CPU-bound first, then waiting) and each [`Way`],
    /// the 1-worker run, then the 2-worker run.
    pub runs: Vec<Run>,
}

/// The number of cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs the CPU-bound and the waiting workload with 1 worker, then 2, each
/// of the four [`Way`]s, and measures wall time, CPU time and speedup.
/// Blocks for a few seconds; builds its own runtimes.
///
/// # Errors
///
/// [`TaskError::InsideRuntime`] if called on a runtime thread (use
/// `spawn_blocking`); [`TaskError::WorkerFailed`] if a worker did not run to
/// its end; spawn errors as [`Jobs::spawn`]; [`TaskError::Os`] if a runtime
/// or `getrusage` failed.
pub fn measure(config: &MeasureConfig) -> Result<Measurement> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(TaskError::InsideRuntime("measure"));
    }
    let mut runs = Vec::with_capacity(16);
    for workload in [config.cpu_bound, config.waiting] {
        for way in Way::ALL {
            let one = run_once(way, workload, 1, &config.launcher)?;
            let two = run_once(way, workload, 2, &config.launcher)?;
            let speedup = 2.0 * one.0.as_secs_f64() / two.0.as_secs_f64().max(1e-9);
            for (workers, (wall, cpu), speedup) in [(1, one, 1.0), (2, two, speedup)] {
                runs.push(Run {
                    workload,
                    way,
                    workers,
                    wall,
                    cpu,
                    speedup,
                });
            }
        }
    }
    Ok(Measurement {
        cores: cores(),
        runs,
    })
}

fn runtime(way: Way) -> Result<tokio::runtime::Runtime> {
    let mut builder = match way {
        Way::TasksMultiThread => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(cores());
            b
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    builder
        .enable_all()
        .build()
        .map_err(|source| TaskError::Os {
            op: "building a tokio runtime",
            source,
        })
}

/// One job of `workers` copies of `workload`, run `way`: wall and CPU time.
fn run_once(
    way: Way,
    workload: Workload,
    workers: usize,
    launcher: &Launcher,
) -> Result<(Duration, Duration)> {
    let rt = runtime(way)?;
    rt.block_on(async {
        let (jobs, rx) = Jobs::new(1024);
        jobs.set_launcher(launcher.clone());
        let cpu0 = cpu_now()?;
        let t0 = Instant::now();
        let info = drained(rx, async {
            let info = jobs.spawn(way.mode(), &vec![workload; workers]).await?;
            jobs.wait(&info.name, RUN_LIMIT).await
        })
        .await?;
        let wall = t0.elapsed();
        let cpu = cpu_now()?.saturating_sub(cpu0);
        all_done(&info)?;
        Ok((wall, cpu))
    })
}

fn cpu_now() -> Result<Duration> {
    sys::cpu_used().map_err(|source| TaskError::Os {
        op: "getrusage",
        source,
    })
}

/// Runs `work` while a task of its own throws away whatever arrives on
/// `rx` (as a shell's printer task would print it).
async fn drained<T>(
    mut rx: tokio::sync::mpsc::Receiver<crate::Line>,
    work: impl Future<Output = T>,
) -> T {
    // Ends when every sender is gone, or is aborted below.
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let out = work.await;
    drain.abort();
    out
}

fn all_done(info: &JobInfo) -> Result<()> {
    match info.workers.iter().find(|w| w.state != WorkerState::Done) {
        None => Ok(()),
        Some(w) => Err(TaskError::WorkerFailed {
            job: info.name.clone(),
            worker: w.index,
            workload: w.workload.name(),
            state: w.state.to_string(),
        }),
    }
}

/// What [`spawn_costs`] starts.
#[derive(Debug, Clone)]
pub struct SpawnCostConfig {
    /// Process workers to start and join (and `/bin/true` runs to compare).
    pub processes: usize,
    /// Thread workers to start and join (and empty `std::thread`s).
    pub threads: usize,
    /// Task workers to start and join (and empty `tokio::spawn`s).
    pub tasks: usize,
    /// The program process workers run.
    pub launcher: Launcher,
}

impl SpawnCostConfig {
    /// 100 processes, 1,000 threads, 100,000 tasks.
    pub fn new(launcher: Launcher) -> SpawnCostConfig {
        SpawnCostConfig {
            processes: 100,
            threads: 1_000,
            tasks: 100_000,
            launcher,
        }
    }
}

/// One row of [`SpawnCosts`].
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// What was started (`process workers`, `fork+exec /bin/true`, …).
    pub what: &'static str,
    /// How many.
    pub count: usize,
    /// Start to last join.
    pub total: Duration,
    /// `total / count`.
    pub each: Duration,
}

impl Cost {
    fn new(what: &'static str, count: usize, total: Duration) -> Cost {
        let each = total / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
        Cost {
            what,
            count,
            total,
            each,
        }
    }
}

/// A kind of worker's cost beside the machine's own cost of the same kind
/// of thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// Starting, running (one step, one line) and joining workers.
    pub worker: Cost,
    /// The bare mechanism: `/bin/true` via `std::process::Command`, an empty
    /// closure via `std::thread::spawn`, an empty future via `tokio::spawn`.
    pub reference: Cost,
    /// The goal per worker.
    pub goal: Duration,
}

impl Compared {
    /// How many times the bare mechanism a worker costs.
    pub fn ratio(&self) -> f64 {
        self.worker.each.as_secs_f64() / self.reference.each.as_secs_f64().max(1e-12)
    }

    /// Whether a worker costs no more than the goal.
    pub fn meets_goal(&self) -> bool {
        self.worker.each <= self.goal
    }
}

/// What [`spawn_costs`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct SpawnCosts {
    /// Cores this process may use.
    pub cores: usize,
    /// Process workers vs fork+exec of `/bin/true`; goal 2 ms.
    pub process: Compared,
    /// Thread workers vs `std::thread::spawn`; goal 50 µs.
    pub thread: Compared,
    /// Task workers vs `tokio::spawn`; goal 5 µs.
    pub task: Compared,
}

/// Starts and joins `processes` process workers, `threads` thread workers
/// and `tasks` task workers (each running a 1-step, unpaced `nap`, its line
/// drained), and, as reference, the same number of `/bin/true` processes,
/// empty threads and empty tasks. Everything is started all at once, then
/// joined. Blocks; builds its own multi-thread runtime.
///
/// # Errors
///
/// [`TaskError::InsideRuntime`] on a runtime thread; spawn errors as
/// [`Jobs::spawn`] (including [`TaskError::TooManyWorkers`]);
/// [`TaskError::Os`] if `/bin/true` or a thread cannot be started.
pub fn spawn_costs(config: &SpawnCostConfig) -> Result<SpawnCosts> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(TaskError::InsideRuntime("spawn_costs"));
    }
    let rt = runtime(Way::TasksMultiThread)?;
    let trivial = Workload::nap()
        .times(1)
        .and_then(|w| w.every(Duration::ZERO))?;
    let workers = |mode: Mode, count: usize| -> Result<Cost> {
        rt.block_on(async {
            let (jobs, rx) = Jobs::new(1024);
            jobs.set_launcher(config.launcher.clone());
            let t0 = Instant::now();
            let info = drained(rx, async {
                let info = jobs.spawn(mode, &vec![trivial; count]).await?;
                jobs.wait(&info.name, RUN_LIMIT).await
            })
            .await?;
            let total = t0.elapsed();
            all_done(&info)?;
            Ok(Cost::new(
                match mode {
                    Mode::Process => "process workers",
                    Mode::Thread => "thread workers",
                    Mode::Task => "task workers",
                },
                count,
                total,
            ))
        })
    };

    let process = Compared {
        reference: bin_true(config.processes)?,
        worker: workers(Mode::Process, config.processes)?,
        goal: Duration::from_millis(2),
    };
    let thread = Compared {
        reference: bare_threads(config.threads)?,
        worker: workers(Mode::Thread, config.threads)?,
        goal: Duration::from_micros(50),
    };
    let task = Compared {
        reference: rt.block_on(bare_tasks(config.tasks)),
        worker: workers(Mode::Task, config.tasks)?,
        goal: Duration::from_micros(5),
    };
    Ok(SpawnCosts {
        cores: cores(),
        process,
        thread,
        task,
    })
}

fn bin_true(count: usize) -> Result<Cost> {
    let os = |source| TaskError::Os {
        op: "running /bin/true",
        source,
    };
    let t0 = Instant::now();
    let mut children = Vec::with_capacity(count);
    let mut failed = None;
    for _ in 0..count {
        match std::process::Command::new("/bin/true").spawn() {
            Ok(child) => children.push(child),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    for mut child in children {
        child.wait().map_err(os)?;
    }
    if let Some(e) = failed {
        return Err(os(e));
    }
    Ok(Cost::new("fork+exec /bin/true", count, t0.elapsed()))
}

fn bare_threads(count: usize) -> Result<Cost> {
    let t0 = Instant::now();
    let mut threads = Vec::with_capacity(count);
    let mut failed = None;
    for _ in 0..count {
        match std::thread::Builder::new().spawn(|| {}) {
            Ok(t) => threads.push(t),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    if let Some(source) = failed {
        return Err(TaskError::Os {
            op: "std::thread::spawn",
            source,
        });
    }
    Ok(Cost::new("std::thread::spawn, empty", count, t0.elapsed()))
}

async fn bare_tasks(count: usize) -> Cost {
    let t0 = Instant::now();
    let handles: Vec<_> = (0..count).map(|_| tokio::spawn(async {})).collect();
    for h in handles {
        let _ = h.await;
    }
    Cost::new("tokio::spawn, empty", count, t0.elapsed())
}
