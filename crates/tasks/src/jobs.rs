//! Jobs: workers started together, as processes, threads or tasks, and the
//! registry that lists, waits for and kills them.

mod process;
mod task;
mod thread;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cancel::Cancel;
use crate::error::{Result, TaskError};
use crate::line::{Ending, Line, LineKind};
use crate::sys;
use crate::workload::Workload;

/// How long [`Jobs::kill`] and [`Jobs::kill_all`] wait for killed workers
/// to be gone (processes reaped, threads and tasks ended).
pub const KILL_LIMIT: Duration = Duration::from_secs(5);

/// How a job's workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Each worker is a process: this program re-executed with the hidden
    /// [`crate::WORKER_FLAG`]. Own PID, own memory; lines come back over a
    /// pipe.
    Process,
    /// Each worker is an OS thread of this process (`std::thread`): same
    /// PID, own thread id.
    Thread,
    /// Each worker is a tokio task on the caller's runtime: same PID, and
    /// whichever runtime thread polls it.
    Task,
}

impl Mode {
    /// Every mode, in the order help lists them.
    pub const ALL: [Mode; 3] = [Mode::Process, Mode::Thread, Mode::Task];

    /// The mode's name (`process`, `thread`, `task`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Process => "process",
            Mode::Thread => "thread",
            Mode::Task => "task",
        }
    }

    /// The most workers one job of this mode may have.
    pub fn max_workers(self) -> usize {
        match self {
            Mode::Process => 256,
            Mode::Thread => 2048,
            Mode::Task => 200_000,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = TaskError;

    /// `process`/`processes`, `thread`/`threads`, `task`/`tasks`.
    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "process" | "processes" => Ok(Mode::Process),
            "thread" | "threads" => Ok(Mode::Thread),
            "task" | "tasks" => Ok(Mode::Task),
            _ => Err(TaskError::UnknownMode(s.to_string())),
        }
    }
}

/// Where a worker is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerState {
    /// Started and not ended yet.
    Running,
    /// Ran all its steps.
    Done,
    /// Killed by [`Jobs::kill`] or [`Jobs::kill_all`].
    Killed,
    /// Stopped by itself, or could not run: why.
    Failed(String),
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerState::Running => f.write_str("running"),
            WorkerState::Done => f.write_str("done"),
            WorkerState::Killed => f.write_str("killed"),
            WorkerState::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// A job's state, summed up from its workers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// At least one worker is running.
    Running,
    /// Every worker ran all its steps.
    Done,
    /// Every worker ended, at least one killed, none failed.
    Killed,
    /// Every worker ended, at least one failed.
    Failed,
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Killed => "killed",
            JobState::Failed => "failed",
        })
    }
}

/// One worker, as [`Jobs::list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Index in the job, in spawn order.
    pub index: usize,
    /// What it runs.
    pub workload: Workload,
    /// Its process: the worker process's PID, or this process's.
    pub pid: u32,
    /// Its thread: a process worker's main thread, a thread worker's thread,
    /// or the runtime thread that ran a task's latest step; `None` before a
    /// task's first step.
    pub tid: Option<u32>,
    /// Running, done, killed or failed.
    pub state: WorkerState,
    /// Step lines reported so far.
    pub lines: u64,
}

/// One job, as [`Jobs::list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// The job's name.
    pub name: String,
    /// How its workers run.
    pub mode: Mode,
    /// Summed up from the workers' states.
    pub state: JobState,
    /// Its workers, in spawn order.
    pub workers: Vec<WorkerInfo>,
}

/// The program that process workers run, and which must call
/// [`crate::worker_main_if_requested`] first thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    program: PathBuf,
}

impl Launcher {
    /// This very program (`std::env::current_exe()`): the normal case, the
    /// socklab binary re-executes itself.
    ///
    /// # Errors
    ///
    /// [`TaskError::CurrentExe`] when the OS cannot say.
    pub fn current_exe() -> Result<Launcher> {
        std::env::current_exe()
            .map(Launcher::new)
            .map_err(TaskError::CurrentExe)
    }

    /// Another program (tests, or a binary that is not the caller).
    pub fn new(program: impl Into<PathBuf>) -> Launcher {
        Launcher {
            program: program.into(),
        }
    }

    /// The program's path.
    pub fn program(&self) -> &Path {
        &self.program
    }
}

/// What every worker of a job shares with the registry.
#[derive(Debug)]
struct JobShared {
    name: Arc<str>,
    mode: Mode,
    /// `CLOCK_MONOTONIC` when the job was started.
    started: Duration,
    workers: Vec<Slot>,
    cancel: Cancel,
    /// Where the job's workers report.
    tx: mpsc::Sender<Line>,
    /// Workers not ended yet; counted down after their end line was sent.
    remaining: AtomicUsize,
    /// Set when `remaining` reaches zero.
    ended: watch::Sender<bool>,
}

/// One worker's published state.
#[derive(Debug)]
struct Slot {
    workload: Workload,
    pid: AtomicU32,
    /// 0 until known.
    tid: AtomicU32,
    lines: AtomicU64,
    state: Mutex<WorkerState>,
    /// Set when the consumer says it took this worker's end line (see
    /// [`Jobs::took`]): no line of the worker can come after it.
    end_taken: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl JobShared {
    fn info(&self) -> JobInfo {
        let workers: Vec<WorkerInfo> = self
            .workers
            .iter()
            .enumerate()
            .map(|(index, slot)| WorkerInfo {
                index,
                workload: slot.workload,
                pid: slot.pid.load(Ordering::SeqCst),
                tid: Some(slot.tid.load(Ordering::SeqCst)).filter(|&t| t != 0),
                state: lock(&slot.state).clone(),
                lines: slot.lines.load(Ordering::SeqCst),
            })
            .collect();
        let any = |f: fn(&WorkerState) -> bool| workers.iter().any(|w| f(&w.state));
        let state = if any(|s| *s == WorkerState::Running) {
            JobState::Running
        } else if any(|s| matches!(s, WorkerState::Failed(_))) {
            JobState::Failed
        } else if any(|s| *s == WorkerState::Killed) {
            JobState::Killed
        } else {
            JobState::Done
        };
        JobInfo {
            name: self.name.to_string(),
            mode: self.mode,
            state,
            workers,
        }
    }

    fn is_running(&self) -> bool {
        self.remaining.load(Ordering::SeqCst) > 0
    }
}

/// What a worker needs to report: its job, its index, the channel.
#[derive(Debug, Clone)]
struct Ctx {
    job: Arc<JobShared>,
    index: usize,
}

impl Ctx {
    fn tx(&self) -> &mpsc::Sender<Line> {
        &self.job.tx
    }

    fn slot(&self) -> &Slot {
        &self.job.workers[self.index]
    }

    fn workload(&self) -> Workload {
        self.slot().workload
    }

    fn lines(&self) -> u32 {
        u32::try_from(self.slot().lines.load(Ordering::SeqCst)).unwrap_or(u32::MAX)
    }

    /// A line of this worker, stamped `mono` (`CLOCK_MONOTONIC`).
    fn line(&self, kind: LineKind, step: u32, text: String, tid: u32, mono: Duration) -> Line {
        Line {
            job: self.job.name.clone(),
            worker: self.index,
            workload: self.workload().name(),
            step,
            kind,
            text,
            pid: self.slot().pid.load(Ordering::SeqCst),
            tid,
            elapsed: mono.saturating_sub(self.job.started),
        }
    }

    /// An error line about this worker, stamped now.
    fn error(&self, text: String) -> Line {
        let tid = self.slot().tid.load(Ordering::SeqCst);
        self.line(LineKind::Error, self.lines(), text, tid, sys::mono_now())
    }

    /// Counts a step line that was sent (after sending: whoever sees the
    /// count can find the line on the channel).
    fn sent_step(&self, tid: u32) {
        let slot = self.slot();
        slot.tid.store(tid, Ordering::SeqCst);
        slot.lines.fetch_add(1, Ordering::SeqCst);
    }

    /// The worker's end line, stamped now.
    fn end_line(&self, state: &WorkerState) -> Line {
        let (ending, text) = match state {
            WorkerState::Done | WorkerState::Running => (Ending::Done, "done".to_string()),
            WorkerState::Killed => (Ending::Killed, "killed".to_string()),
            WorkerState::Failed(why) => (Ending::Failed, format!("failed: {why}")),
        };
        let tid = self.slot().tid.load(Ordering::SeqCst);
        self.line(
            LineKind::End(ending),
            self.lines(),
            text,
            tid,
            sys::mono_now(),
        )
    }

    /// Whether the worker has not ended yet.
    fn is_running(&self) -> bool {
        *lock(&self.slot().state) == WorkerState::Running
    }

    /// Publishes the worker's end, after its end line was sent.
    fn finish(&self, state: WorkerState) {
        {
            let mut current = lock(&self.slot().state);
            if *current != WorkerState::Running {
                return; // ended already: count it once
            }
            *current = state;
        }
        if self.job.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.job.ended.send_replace(true);
        }
    }

    /// Sends the end line, then publishes the end.
    async fn end(&self, state: WorkerState) {
        let _ = self.tx().send(self.end_line(&state)).await;
        self.finish(state);
    }
}

/// A registered job and how to stop it.
#[derive(Debug)]
struct Entry {
    job: Arc<JobShared>,
    /// A running task job's tasks (empty for other modes, and once the job
    /// has ended: a handle keeps its finished task's memory).
    tasks: Vec<JoinHandle<()>>,
}

impl Entry {
    /// Tells every worker to stop: raises the cancel flag (threads, process
    /// supervisors) and aborts tasks, then (on a runtime) ends the aborted
    /// tasks' workers once they are gone.
    fn stop(&mut self) {
        self.job.cancel.cancel();
        let tasks = std::mem::take(&mut self.tasks);
        if tasks.is_empty() {
            return;
        }
        for t in &tasks {
            t.abort();
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(task::settle(self.job.clone(), tasks));
        }
    }

    /// Lets go of an ended job's task handles.
    fn tidy(&mut self) {
        if !self.tasks.is_empty() && !self.job.is_running() {
            self.tasks = Vec::new();
        }
    }
}

#[derive(Debug, Default)]
struct Registry {
    jobs: Vec<Entry>,
    /// Names taken by spawns under way.
    pending: Vec<Arc<str>>,
    next_number: u64,
    launcher: Option<Launcher>,
}

impl Registry {
    fn taken(&self, name: &str) -> bool {
        self.jobs.iter().any(|e| &*e.job.name == name) || self.pending.iter().any(|p| &**p == name)
    }

    fn find(&self, name: &str) -> Result<&Entry> {
        self.jobs
            .iter()
            .find(|e| &*e.job.name == name)
            .ok_or_else(|| TaskError::NoSuchJob(name.to_string()))
    }

    fn find_mut(&mut self, name: &str) -> Result<&mut Entry> {
        self.jobs
            .iter_mut()
            .find(|e| &*e.job.name == name)
            .ok_or_else(|| TaskError::NoSuchJob(name.to_string()))
    }
}

/// Every job of a session. Workers report on the one channel returned by
/// [`Jobs::new`]; drain it: it is bounded, and a full channel stops workers
/// (a thread or task blocks before its next step, a worker process blocks on
/// its pipe) until there is room again, so [`Jobs::wait`] cannot end while
/// nobody drains a job's lines.
///
/// Dropping `Jobs` stops every worker (processes get SIGKILL; the runtime
/// reaps them).
#[derive(Debug)]
pub struct Jobs {
    tx: mpsc::Sender<Line>,
    registry: Arc<Mutex<Registry>>,
}

/// Kills every job of a [`Jobs`] from elsewhere (a task that ends the
/// session on a signal while the owner of `Jobs` is busy). It neither
/// keeps the jobs alive nor stops them when dropped.
#[derive(Debug, Clone)]
pub struct Killer {
    registry: Arc<Mutex<Registry>>,
}

impl Killer {
    /// As [`Jobs::kill_all`].
    ///
    /// # Errors
    ///
    /// As [`Jobs::kill_all`].
    pub async fn kill_all(&self) -> Result<Vec<JobInfo>> {
        kill_all(&self.registry).await
    }
}

/// Reads the names of the jobs of a [`Jobs`] from elsewhere (the REPL's
/// completion). It neither keeps the jobs alive nor stops them when
/// dropped.
#[derive(Debug, Clone)]
pub struct JobNames {
    registry: Arc<Mutex<Registry>>,
}

impl JobNames {
    /// Every job's name, in the order they were started.
    pub fn names(&self) -> Vec<String> {
        lock(&self.registry)
            .jobs
            .iter()
            .map(|e| e.job.name.to_string())
            .collect()
    }
}

impl Jobs {
    /// A registry without jobs, and the receiving end of the channel every
    /// worker reports on (holding at most `capacity` lines, at least 1).
    pub fn new(capacity: usize) -> (Jobs, mpsc::Receiver<Line>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let jobs = Jobs {
            tx,
            registry: Arc::default(),
        };
        (jobs, rx)
    }

    /// Makes process workers run `launcher`'s program instead of this
    /// program's own executable.
    pub fn set_launcher(&self, launcher: Launcher) {
        lock(&self.registry).launcher = Some(launcher);
    }

    /// Starts one job whose workers run `workloads`, one worker each, in
    /// `mode`, and names it `jobN`. See [`Jobs::spawn_as`].
    ///
    /// # Errors
    ///
    /// As [`Jobs::spawn_as`].
    pub async fn spawn(&self, mode: Mode, workloads: &[Workload]) -> Result<JobInfo> {
        self.start(None, mode, workloads).await
    }

    /// Starts one job named `name` whose workers run `workloads`, one worker
    /// each, in `mode`; returns once every worker exists (a process worker
    /// has its PID, a thread worker its thread id) and has been let go. The
    /// workers start together: threads wait at a start line until all of
    /// them exist, processes and tasks are started back to back.
    ///
    /// Call it on a tokio runtime with time enabled; for process workers
    /// also I/O (`enable_all`). A worker process is told to die with the
    /// *thread* that started it (that is what `PR_SET_PDEATHSIG` watches):
    /// call this from a thread that lives as long as the workers (a runtime
    /// worker thread or the main thread; not a short-lived thread such as
    /// one of `spawn_blocking`'s).
    ///
    /// # Errors
    ///
    /// [`TaskError::NoWorkers`], [`TaskError::TooManyWorkers`],
    /// [`TaskError::BadName`], [`TaskError::NameTaken`],
    /// [`TaskError::NoRuntime`], [`TaskError::CurrentExe`],
    /// [`TaskError::SpawnProcess`], [`TaskError::SpawnThread`], or
    /// [`TaskError::Timeout`] if threads did not come up. On error nothing
    /// of the job is left running and no line of it was sent.
    pub async fn spawn_as(
        &self,
        name: &str,
        mode: Mode,
        workloads: &[Workload],
    ) -> Result<JobInfo> {
        self.start(Some(name), mode, workloads).await
    }

    async fn start(
        &self,
        name: Option<&str>,
        mode: Mode,
        workloads: &[Workload],
    ) -> Result<JobInfo> {
        if workloads.is_empty() {
            return Err(TaskError::NoWorkers);
        }
        if workloads.len() > mode.max_workers() {
            return Err(TaskError::TooManyWorkers {
                mode,
                asked: workloads.len(),
                max: mode.max_workers(),
            });
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TaskError::NoRuntime("Jobs::spawn"));
        }
        let (name, launcher) = self.reserve(name, mode)?;
        let started = self.launch(name.clone(), mode, workloads, launcher).await;
        let mut registry = lock(&self.registry);
        registry.pending.retain(|p| *p != name);
        let entry = started?;
        let info = entry.job.info();
        for e in &mut registry.jobs {
            e.tidy();
        }
        registry.jobs.push(entry);
        Ok(info)
    }

    /// Checks or makes up the name and reserves it; finds the launcher.
    fn reserve(&self, name: Option<&str>, mode: Mode) -> Result<(Arc<str>, Option<Launcher>)> {
        let mut registry = lock(&self.registry);
        let name: Arc<str> = match name {
            Some(name) => {
                let usable = (1..=32).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                if !usable {
                    return Err(TaskError::BadName(name.to_string()));
                }
                if registry.taken(name) {
                    return Err(TaskError::NameTaken(name.to_string()));
                }
                name.into()
            }
            None => {
                // Bounded: at most every existing name is skipped once.
                let tries = registry.jobs.len() + registry.pending.len() + 1;
                let mut found = None;
                for _ in 0..tries {
                    registry.next_number += 1;
                    let candidate = format!("job{}", registry.next_number);
                    if !registry.taken(&candidate) {
                        found = Some(candidate);
                        break;
                    }
                }
                let Some(found) = found else {
                    return Err(TaskError::NameTaken("job".into()));
                };
                found.into()
            }
        };
        let launcher = match mode {
            Mode::Process => Some(match &registry.launcher {
                Some(l) => l.clone(),
                None => {
                    let l = Launcher::current_exe()?;
                    registry.launcher = Some(l.clone());
                    l
                }
            }),
            _ => None,
        };
        registry.pending.push(name.clone());
        Ok((name, launcher))
    }

    async fn launch(
        &self,
        name: Arc<str>,
        mode: Mode,
        workloads: &[Workload],
        launcher: Option<Launcher>,
    ) -> Result<Entry> {
        let job = Arc::new(JobShared {
            name,
            mode,
            started: sys::mono_now(),
            workers: workloads
                .iter()
                .map(|&workload| Slot {
                    workload,
                    pid: AtomicU32::new(std::process::id()),
                    tid: AtomicU32::new(0),
                    lines: AtomicU64::new(0),
                    state: Mutex::new(WorkerState::Running),
                    end_taken: AtomicBool::new(false),
                })
                .collect(),
            cancel: Cancel::default(),
            tx: self.tx.clone(),
            remaining: AtomicUsize::new(workloads.len()),
            ended: watch::Sender::new(false),
        });
        let ctxs: Vec<Ctx> = (0..workloads.len())
            .map(|index| Ctx {
                job: job.clone(),
                index,
            })
            .collect();
        let tasks = match (mode, launcher) {
            (Mode::Process, Some(launcher)) => {
                process::start(ctxs, &launcher).await?;
                Vec::new()
            }
            (Mode::Process, None) => return Err(TaskError::NoRuntime("process launcher")),
            (Mode::Thread, _) => {
                thread::start(ctxs).await?;
                Vec::new()
            }
            (Mode::Task, _) => task::start(ctxs),
        };
        Ok(Entry { job, tasks })
    }

    /// Every job, in the order they were started.
    pub fn list(&self) -> Vec<JobInfo> {
        lock(&self.registry)
            .jobs
            .iter_mut()
            .map(|e| {
                e.tidy();
                e.job.info()
            })
            .collect()
    }

    /// One job.
    ///
    /// # Errors
    ///
    /// [`TaskError::NoSuchJob`].
    pub fn info(&self, job: &str) -> Result<JobInfo> {
        Ok(lock(&self.registry).find(job)?.job.info())
    }

    fn shared(&self, job: &str) -> Result<Arc<JobShared>> {
        Ok(lock(&self.registry).find(job)?.job.clone())
    }

    /// Records that the consumer of the channel took `line` off it (and
    /// printed it, or dropped it for good). Taking a worker's end line is
    /// what counts: it is the worker's last line, so a consumer that later
    /// follows the job again knows to expect nothing more of that worker,
    /// even while the job has not yet published its end (see
    /// [`Jobs::ends_taken`]). Lines of unknown jobs are ignored.
    pub fn took(&self, line: &Line) {
        if !matches!(line.kind, LineKind::End(_)) {
            return;
        }
        let registry = lock(&self.registry);
        if let Ok(e) = registry.find(&line.job) {
            if let Some(slot) = e.job.workers.get(line.worker) {
                slot.end_taken.store(true, Ordering::SeqCst);
            }
        }
    }

    /// For each worker of `job`, in spawn order, whether its end line was
    /// taken ([`Jobs::took`]): once all were, no line of the job is left to
    /// come.
    ///
    /// # Errors
    ///
    /// [`TaskError::NoSuchJob`].
    pub fn ends_taken(&self, job: &str) -> Result<Vec<bool>> {
        Ok(lock(&self.registry)
            .find(job)?
            .job
            .workers
            .iter()
            .map(|w| w.end_taken.load(Ordering::SeqCst))
            .collect())
    }

    /// Waits until every worker of `job` has ended (a process worker also
    /// reaped), at most `limit`. When it returns, every line of the job,
    /// end lines included, has been sent on the channel.
    ///
    /// # Errors
    ///
    /// [`TaskError::NoSuchJob`], or [`TaskError::Timeout`] (the job goes
    /// on).
    pub async fn wait(&self, job: &str, limit: Duration) -> Result<JobInfo> {
        let shared = self.shared(job)?;
        wait_for(&shared, limit, "waiting for").await
    }

    /// Kills every worker of `job` and waits (at most [`KILL_LIMIT`]) until
    /// they are gone: a process worker gets SIGKILL and is reaped
    /// (`waitpid`), so no zombie is left; a thread worker stops before its
    /// next step (or out of its pause); a task worker is aborted. Killing a
    /// job that has ended changes nothing.
    ///
    /// # Errors
    ///
    /// [`TaskError::NoSuchJob`], or [`TaskError::Timeout`] if a worker did
    /// not end in time (a thread blocked on a full channel that nobody
    /// drains).
    pub async fn kill(&self, job: &str) -> Result<JobInfo> {
        let shared = {
            let mut registry = lock(&self.registry);
            let entry = registry.find_mut(job)?;
            entry.stop();
            entry.job.clone()
        };
        wait_for(&shared, KILL_LIMIT, "killing").await
    }

    /// Kills every running job, as [`Jobs::kill`], and waits for them all
    /// (at most [`KILL_LIMIT`] in all). For quitting.
    ///
    /// # Errors
    ///
    /// The first [`TaskError::Timeout`]; every job was still told to stop.
    pub async fn kill_all(&self) -> Result<Vec<JobInfo>> {
        kill_all(&self.registry).await
    }

    /// A handle that reads the jobs' names from elsewhere.
    pub fn names(&self) -> JobNames {
        JobNames {
            registry: self.registry.clone(),
        }
    }

    /// A handle that kills every job of this registry from elsewhere.
    pub fn killer(&self) -> Killer {
        Killer {
            registry: self.registry.clone(),
        }
    }

    /// Forgets an ended job (its lines, name and workers).
    ///
    /// # Errors
    ///
    /// [`TaskError::NoSuchJob`] or [`TaskError::StillRunning`].
    pub fn remove(&self, job: &str) -> Result<JobInfo> {
        let mut registry = lock(&self.registry);
        let at = registry
            .jobs
            .iter()
            .position(|e| &*e.job.name == job)
            .ok_or_else(|| TaskError::NoSuchJob(job.to_string()))?;
        if registry.jobs[at].job.is_running() {
            return Err(TaskError::StillRunning(job.to_string()));
        }
        Ok(registry.jobs.remove(at).job.info())
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        for e in &mut lock(&self.registry).jobs {
            e.stop();
        }
    }
}

/// Kills every running job of `registry`, as [`Jobs::kill_all`] says.
async fn kill_all(registry: &Mutex<Registry>) -> Result<Vec<JobInfo>> {
    let running: Vec<Arc<JobShared>> = {
        let mut registry = lock(registry);
        registry
            .jobs
            .iter_mut()
            .filter(|e| e.job.is_running())
            .map(|e| {
                e.stop();
                e.job.clone()
            })
            .collect()
    };
    let deadline = tokio::time::Instant::now() + KILL_LIMIT;
    let mut infos = Vec::with_capacity(running.len());
    let mut first_error = None;
    for job in running {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match wait_for(&job, left, "killing").await {
            Ok(info) => infos.push(info),
            Err(e) => {
                infos.push(job.info());
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(infos),
    }
}

async fn wait_for(job: &JobShared, limit: Duration, what: &str) -> Result<JobInfo> {
    let mut ended = job.ended.subscribe();
    let ended = tokio::time::timeout(limit, ended.wait_for(|&ended| ended))
        .await
        .is_ok();
    match ended {
        true => Ok(job.info()),
        false => Err(TaskError::Timeout {
            what: format!("{what} {}", job.name),
            after: limit,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}

    /// The shell keeps `Jobs` in shared state and runs its futures in
    /// spawned tasks.
    #[test]
    fn jobs_and_their_futures_can_move_between_threads() {
        let (jobs, _rx) = Jobs::new(1);
        send_sync(&jobs);
        let w = [Workload::nap()];
        send(&jobs.spawn(Mode::Task, &w));
        send(&jobs.wait("j", Duration::ZERO));
        send(&jobs.kill("j"));
        send(&jobs.kill_all());
    }

    #[test]
    fn modes() {
        for (mode, plural) in Mode::ALL.into_iter().zip(["processes", "threads", "tasks"]) {
            assert_eq!(mode.name().parse::<Mode>().unwrap(), mode);
            assert_eq!(plural.parse::<Mode>().unwrap(), mode);
        }
    }
}
