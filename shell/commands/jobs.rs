//! The multitasking lab (lecture §13-§15): `spawn`, `jobs`, `wait`, `kill`,
//! `measure`; and `repeat`, which runs a command again and again.

use std::fmt::Write as _;
use std::time::Duration;

use socklab_tasks::{
    JobInfo, JobState, Line, Measurement, Mode, Sequencer, TaskError, WorkerState, Workload,
    WORKLOADS,
};

use crate::args::{duration_of, number_of, Args, CmdError, CmdResult, Exit};
use crate::dispatch::{self, Command};
use crate::parse::{Span, Token};
use crate::render;
use crate::report::Report;
use crate::session::Session;

impl From<TaskError> for CmdError {
    fn from(e: TaskError) -> CmdError {
        let exit = match &e {
            TaskError::Timeout { .. } => Exit::TempFail,
            TaskError::Os { .. }
            | TaskError::SpawnProcess { .. }
            | TaskError::SpawnThread { .. }
            | TaskError::CurrentExe(_)
            | TaskError::WorkerFailed { .. } => Exit::OsErr,
            _ => Exit::Usage,
        };
        CmdError::new(exit, e.to_string())
    }
}

/// `spawn WORKLOAD... [as MODE] [times N] [every DUR] [background]`
pub async fn spawn(s: &mut Session, mut a: Args) -> CmdResult {
    let mode = match a.option("as", "process, thread or task")? {
        Some(t) => {
            let w = t.word().unwrap_or("");
            w.parse::<Mode>().map_err(|_| {
                CmdError::at(t.span, format!("run as process, thread or task, not '{w}'"))
            })?
        }
        None => Mode::Process,
    };
    let times = a.option("times", "a count")?;
    let every = match a.option("every", "a duration")? {
        Some(t) => Some(duration_of(&t)?),
        None => None,
    };
    let background = a.keyword_anywhere("background");
    let workloads = workloads_of(&a.rest(), times.as_ref(), every)?;
    let job = s.jobs.spawn(mode, &workloads).await?;
    let foreground = !s.interactive && !background;
    s.say(spawned_text(&job, &workloads, mode, foreground));
    if foreground {
        let limit = s.wait_limit.map(|w| w.max(Duration::from_secs(600)));
        follow(s, &job.name, job.workers.len(), limit).await?;
        // Every end line was printed; the job publishes its end just after
        // sending them (and reaping its processes). Wait for that, so the
        // next command finds the job ended on every run, not only on most.
        s.jobs
            .wait(&job.name, limit.unwrap_or(Duration::from_secs(600)))
            .await?;
    }
    Ok(())
}

/// The workloads of `spawn`'s remaining tokens (`primes N` takes the
/// number after it), each run `times` times, `every` so often.
fn workloads_of(
    toks: &[Token],
    times: Option<&Token>,
    every: Option<Duration>,
) -> CmdResult<Vec<Workload>> {
    if toks.is_empty() {
        return Err(CmdError::at(a_end(toks), "missing a workload").hint(known()));
    }
    let mut workloads = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let name = t
            .word()
            .ok_or_else(|| CmdError::at(t.span, "a workload is a bare word"))?;
        // `primes N`: a workload with a number after it.
        let arg = match toks
            .get(i + 1)
            .and_then(|n| n.word())
            .and_then(|n| crate::parse::size(n).ok())
        {
            Some(n) if name == "primes" => {
                i += 1;
                Some(n)
            }
            _ => None,
        };
        let mut w = Workload::with_arg(name, arg)
            .map_err(|e| CmdError::at(t.span, e.to_string()).hint(known()))?;
        if let Some(tt) = times {
            let n = number_of(tt, "a count", 0..=u64::MAX)?;
            w = w
                .times(n)
                .map_err(|e| CmdError::at(tt.span, e.to_string()))?;
        }
        if let Some(d) = every {
            w = w.every(d).map_err(|e| CmdError::usage(e.to_string()))?;
        }
        workloads.push(w);
        i += 1;
    }
    Ok(workloads)
}

/// What `spawn` says of the job it started.
fn spawned_text(job: &JobInfo, workloads: &[Workload], mode: Mode, foreground: bool) -> String {
    let pids: Vec<String> = job.workers.iter().map(|w| w.pid.to_string()).collect();
    format!(
        "{}: {} {} as {} (pid {}){}",
        job.name,
        if workloads.len() == 1 {
            "worker"
        } else {
            "workers"
        },
        workloads
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(", "),
        mode_words(mode, workloads.len()),
        pids.join(", "),
        if foreground {
            ""
        } else {
            "; running in the background (`wait` for it)"
        }
    )
}

fn a_end(toks: &[Token]) -> Span {
    toks.last()
        .map(|t| t.span)
        .unwrap_or(Span { start: 0, end: 0 })
}

fn known() -> String {
    let names: Vec<&str> = WORKLOADS.iter().map(|(n, _)| *n).collect();
    format!("workloads: {}", names.join(", "))
}

fn mode_words(mode: Mode, n: usize) -> &'static str {
    match (mode, n) {
        (Mode::Process, 1) => "a process",
        (Mode::Process, _) => "processes",
        (Mode::Thread, 1) => "a thread",
        (Mode::Thread, _) => "threads",
        (Mode::Task, 1) => "a task",
        (Mode::Task, _) => "tasks",
    }
}

/// Prints one job's lines in step order until it ends (script mode), while
/// the workers run concurrently. The session's driver takes the lines from
/// the reports meanwhile and hands them over through `s.job_lines`; lines of
/// other jobs stay there for later.
async fn follow(s: &mut Session, job: &str, workers: usize, limit: Option<Duration>) -> CmdResult {
    let job_lines = s.job_lines.clone();
    let _following = job_lines.following();
    let mut seq = Sequencer::new(job, workers);
    // Workers whose end line an earlier command printed (a foreground
    // `spawn`, an earlier `wait`) have nothing more to send: the job may
    // not have published its end yet, but no line of theirs will come.
    for (worker, taken) in s.jobs.ends_taken(job)?.into_iter().enumerate() {
        if taken {
            seq.mark_ended(worker);
        }
    }
    let deadline = limit.map(|l| tokio::time::Instant::now() + l);
    loop {
        // Lines of this job that arrived earlier (a background job now
        // waited) come first, in arrival order.
        for line in job_lines.take(job) {
            s.jobs.took(&line);
            for out in seq.push(line) {
                say_line(s, out);
            }
        }
        if seq.is_finished() {
            return Ok(());
        }
        let Some(d) = deadline else {
            job_lines.arrived().await;
            continue;
        };
        if tokio::time::timeout_at(d, job_lines.arrived())
            .await
            .is_err()
        {
            for out in seq.flush() {
                say_line(s, out);
            }
            return Err(not_finished(s, job, limit));
        }
    }
}

/// A job that did not end in time: what it did meanwhile.
fn not_finished(s: &Session, job: &str, limit: Option<Duration>) -> CmdError {
    let after = limit.map_or(String::new(), |l| {
        format!(" within {}", super::common::show_duration(l))
    });
    let mut e = CmdError::new(Exit::TempFail, format!("{job} did not finish{after}"));
    if let Ok(info) = s.jobs.info(job) {
        let running: Vec<String> = info
            .workers
            .iter()
            .filter(|w| w.state == WorkerState::Running)
            .map(|w| {
                let s = if w.lines == 1 { "" } else { "s" };
                format!("{} ({} line{s} so far)", w.workload.name(), w.lines)
            })
            .collect();
        e = e.hint(format!(
            "still running: {}; `wait {job}` again, or `kill {job}`",
            running.join(", ")
        ));
    }
    e
}

fn say_line(s: &Session, l: Line) {
    s.printer.print(&Report::Line(l));
}

/// `jobs`
pub async fn jobs(s: &mut Session, a: Args) -> CmdResult {
    a.done()?;
    let list = s.jobs.list();
    if list.is_empty() {
        s.say("no jobs");
        return Ok(());
    }
    let mut rows = Vec::new();
    for j in &list {
        for w in &j.workers {
            rows.push(vec![
                j.name.clone(),
                j.mode.name().to_string(),
                w.workload.name().to_string(),
                w.pid.to_string(),
                w.tid.map_or("-".to_string(), |t| t.to_string()),
                worker_state(&w.state),
                w.lines.to_string(),
            ]);
        }
    }
    s.say(render::table(
        &["JOB", "MODE", "WORKER", "PID", "TID", "STATE", "LINES"],
        &rows,
    ));
    Ok(())
}

fn worker_state(w: &WorkerState) -> String {
    match w {
        WorkerState::Running => "running".into(),
        WorkerState::Done => "done".into(),
        WorkerState::Killed => "killed".into(),
        WorkerState::Failed(why) => format!("failed: {why}"),
    }
}

/// `wait [JOB] [timeout DUR]`
pub async fn wait(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let names: Vec<String> = match a.peek_word() {
        Some(_) => {
            let (w, span) = a.word("a job")?;
            s.jobs
                .info(&w)
                .map_err(|e| CmdError::at(span, e.to_string()))?;
            vec![w]
        }
        None => s
            .jobs
            .list()
            .into_iter()
            .filter(|j| j.state == JobState::Running)
            .map(|j| j.name)
            .collect(),
    };
    a.done()?;
    for name in names {
        let info = s.jobs.info(&name)?;
        if !s.interactive {
            // Script mode: print the job's lines, in step order, as it ends.
            follow(s, &name, info.workers.len(), limit).await?;
        }
        let limit = limit.unwrap_or(Duration::from_secs(24 * 3600));
        let info = s.jobs.wait(&name, limit).await?;
        s.say(format!("{}: {}", info.name, job_state(&info)));
    }
    Ok(())
}

fn job_state(j: &JobInfo) -> &'static str {
    match j.state {
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Killed => "killed",
        JobState::Failed => "failed",
    }
}

/// `kill JOB`
pub async fn kill(s: &mut Session, mut a: Args) -> CmdResult {
    let (w, span) = a.word("a job")?;
    a.done()?;
    let info = s
        .jobs
        .kill(&w)
        .await
        .map_err(|e| CmdError::from(e).or_at(span))?;
    s.job_lines.forget(&w);
    s.say(format!(
        "{}: {} (no worker left running)",
        info.name,
        job_state(&info)
    ));
    Ok(())
}

/// `measure [cpu|wait|both]`
pub async fn measure(s: &mut Session, a: Args) -> CmdResult {
    a.done()?;
    let launcher = socklab_tasks::Launcher::current_exe()?;
    let config = socklab_tasks::MeasureConfig::new(launcher);
    // measure builds runtimes of its own, so it runs on a plain thread,
    // outside this one's context.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("measure".into())
        .spawn(move || {
            let _ = tx.send(socklab_tasks::measure(&config));
        })
        .map_err(|e| CmdError::new(Exit::OsErr, format!("measure: cannot start a thread: {e}")))?;
    let m = rx
        .await
        .map_err(|_| CmdError::new(Exit::OsErr, "measure: the measuring thread died"))??;
    s.say(render_measurement(&m));
    Ok(())
}

fn render_measurement(m: &Measurement) -> String {
    let mut out = format!("this machine has {} cores", m.cores);
    let mut last = String::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for r in &m.runs {
        let name = r.workload.to_string();
        if name != last {
            if !rows.is_empty() {
                let _ = write!(
                    out,
                    "\n{}",
                    render::table(&["WAY", "WORKERS", "WALL", "CPU", "SPEEDUP"], &rows)
                );
                rows.clear();
            }
            let _ = write!(out, "\n{name}:");
            last = name;
        }
        rows.push(vec![
            r.way.label().to_string(),
            r.workers.to_string(),
            format!("{:.3}s", r.wall.as_secs_f64()),
            format!("{:.3}s", r.cpu.as_secs_f64()),
            format!("{:.2}x", r.speedup),
        ]);
    }
    if !rows.is_empty() {
        let _ = write!(
            out,
            "\n{}",
            render::table(&["WAY", "WORKERS", "WALL", "CPU", "SPEEDUP"], &rows)
        );
    }
    out.push_str(
        "\nCPU-bound work speeds up only with parallelism (two cores, two processes or threads, or the \
         multi-thread runtime); waiting work overlaps even on one thread: that is concurrency.",
    );
    out
}

/// `repeat N [every DUR] COMMAND...`: runs COMMAND with the commands of
/// `table` (the table `repeat` is part of).
pub async fn repeat(s: &mut Session, mut a: Args, table: &'static [Command]) -> CmdResult {
    let t = a.token("a count")?;
    let n = number_of(&t, "a count", 1..=100_000)?;
    let every = if a.peek_word() == Some("every") {
        a.token("every")?;
        let d = a.token("a duration")?;
        Some(duration_of(&d)?)
    } else {
        None
    };
    let Some(command) = a.rest_text().map(str::to_string) else {
        return Err(a
            .token("a command")
            .err()
            .unwrap_or_else(|| CmdError::usage("missing a command")));
    };
    if command.split_whitespace().next() == Some("repeat") {
        return Err(CmdError::usage("repeat inside repeat is not allowed"));
    }
    let mut ticks = every.map(|d| {
        let mut i = tokio::time::interval(d);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    for i in 0..n {
        if let Some(t) = ticks.as_mut() {
            t.tick().await;
        }
        let line = s.expand(&command.replace("{i}", &i.to_string()));
        Box::pin(dispatch::execute(s, table, &line)).await?;
    }
    Ok(())
}
