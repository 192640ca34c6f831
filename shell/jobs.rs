//! The multitasking lab (lecture §13-§15): `spawn`, `jobs`, `wait`, `kill`,
//! `measure`.

use std::fmt::Write as _;
use std::time::Duration;

use socklab_tasks::{
    JobInfo, JobState, Line, LineKind, Measurement, Mode, Sequencer, TaskError, WorkerState,
    Workload, WORKLOADS,
};

use crate::args::{duration_of, number_of, Args, CmdError, CmdResult, Exit};
use crate::render;
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

/// How one worker line looks: the worker, which process and thread it ran
/// on (named relative to the shell, so a transcript says it even with the
/// numbers filtered), and its text. `elapsed` adds the time since the job
/// started (terminals only: it differs on every run).
pub fn line_text(l: &Line, shell_pid: u32, elapsed: bool) -> String {
    let whose = if l.pid == shell_pid {
        "the shell's process"
    } else {
        "a process of its own"
    };
    let thread = if l.pid != shell_pid {
        "its main thread"
    } else if l.tid == shell_pid {
        "the shell's main thread"
    } else {
        "another thread"
    };
    let time = if elapsed {
        format!(" +{:.3}s", l.elapsed.as_secs_f64())
    } else {
        String::new()
    };
    let head = format!(
        "[{} pid {} ({whose}) tid {} ({thread}){time}]",
        l.workload, l.pid, l.tid
    );
    match l.kind {
        LineKind::Step => format!("{head} {}", l.text),
        LineKind::Error => format!("{head} error: {}", l.text),
        LineKind::End(e) => format!("{}: {} {}", l.job, l.workload, ending(e)),
    }
}

fn ending(e: socklab_tasks::Ending) -> &'static str {
    match e {
        socklab_tasks::Ending::Done => "finished",
        socklab_tasks::Ending::Killed => "killed",
        socklab_tasks::Ending::Failed => "failed",
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
    let mut workloads = Vec::new();
    let toks = a.rest();
    if toks.is_empty() {
        return Err(CmdError::at(a_end(&toks), "missing a workload").hint(known()));
    }
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
        if let Some(tt) = &times {
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
    let job = s.jobs.spawn(mode, &workloads).await?;
    let pids: Vec<String> = job.workers.iter().map(|w| w.pid.to_string()).collect();
    let foreground = !s.interactive && !background;
    s.say(format!(
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
    ));
    if foreground {
        follow(
            s,
            &job.name,
            job.workers.len(),
            s.wait_limit.map(|w| w.max(Duration::from_secs(600))),
        )
        .await?;
    }
    Ok(())
}

fn a_end(toks: &[crate::parse::Token]) -> crate::parse::Span {
    toks.last()
        .map(|t| t.span)
        .unwrap_or(crate::parse::Span { start: 0, end: 0 })
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
/// the workers run concurrently. Lines of other jobs are kept for later.
async fn follow(s: &mut Session, job: &str, workers: usize, limit: Option<Duration>) -> CmdResult {
    let mut seq = Sequencer::new(job, workers);
    // Lines of this job that arrived earlier (a background job now waited).
    for l in s.held_lines.remove(job).unwrap_or_default() {
        for out in seq.push(l) {
            say_line(s, &out);
        }
    }
    let deadline = limit.map(|l| tokio::time::Instant::now() + l);
    while !seq.is_finished() {
        let Some(rx) = s.job_lines.as_mut() else {
            break;
        };
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                Ok(l) => l,
                Err(_) => {
                    for out in seq.flush() {
                        say_line(s, &out);
                    }
                    return Err(CmdError::new(
                        Exit::TempFail,
                        format!("{job} did not finish in time"),
                    ));
                }
            },
            None => rx.recv().await,
        };
        let Some(line) = next else { break };
        if &*line.job != job {
            s.held_lines
                .entry(line.job.to_string())
                .or_default()
                .push(line);
            continue;
        }
        for out in seq.push(line) {
            say_line(s, &out);
        }
    }
    Ok(())
}

fn say_line(s: &Session, l: &Line) {
    s.say(line_text(l, s.shell_pid, s.interactive));
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
        if s.job_lines.is_some() {
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
    s.held_lines.remove(&w);
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
