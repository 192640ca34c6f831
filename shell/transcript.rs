//! `socklab record FILE…` and `socklab check FILE…`: session files as
//! regression tests, as cram and trycmd do for command lines. Each file
//! runs in a socklab process of its own with `--stable`; its transcript
//! (standard output, then standard error and the exit status when there
//! are any) is written to, or compared with, `FILE.out` beside it. A
//! `.out` may hold cram's matching lines (` (re)`, ` (glob)`, `...`:
//! `pattern.rs`) for what this machine decides that `--stable` does not
//! name; `record` keeps those that still match.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use similar::TextDiff;

use crate::args::{Exit, Fatal};
use crate::pattern::{self, Recorded};

/// Where a session file's transcript is kept: `lesson.sock` → `lesson.out`.
pub fn out_path(session: &Path) -> PathBuf {
    session.with_extension("out")
}

/// Runs `session` in a socklab process of its own with `--stable` and
/// returns its transcript. Standard error comes after standard output, in
/// a section of its own (how the two pipes interleave is timing); the
/// line saying this shell removed what a dead shell left behind is left
/// out (which shell sweeps is timing too).
///
/// # Errors
/// This program cannot be started again.
pub fn transcript(session: &Path, wait: Duration, limit: Duration) -> anyhow::Result<String> {
    let me = std::env::current_exe()
        .context(Fatal::new(Exit::OsErr, "cannot find the socklab program"))?;
    let run = run_bounded(
        Command::new(me)
            .arg("--stable")
            .arg(format!("--wait={}ms", wait.as_millis()))
            .arg("--")
            .arg(session),
        limit,
    )
    .with_context(|| {
        Fatal::new(
            Exit::OsErr,
            format!("cannot run socklab on {}", session.display()),
        )
    })?;
    let mut text = String::from_utf8_lossy(&run.stdout).into_owned();
    if run.stdout_cut {
        text.push_str(&format!(
            "--- standard output cut at {} MiB ---\n",
            OUTPUT_LIMIT >> 20
        ));
    }
    let swept = |l: &&str| l.starts_with("socklab: removed ") && l.contains("network namespace");
    let stderr: String = String::from_utf8_lossy(&run.stderr)
        .lines()
        .filter(|l| !swept(l))
        .map(|l| format!("{l}\n"))
        .collect();
    if !stderr.is_empty() {
        text.push_str("--- stderr ---\n");
        text.push_str(&stderr);
    }
    if run.stderr_cut {
        text.push_str(&format!(
            "--- standard error cut at {} MiB ---\n",
            OUTPUT_LIMIT >> 20
        ));
    }
    if run.overran {
        text.push_str(&format!(
            "--- stopped: the session ran past {limit:?} ---\n"
        ));
    }
    // A signal has no code: shown as the shell shows it, 128 + the signal.
    let code = run.status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt as _;
        128 + run.status.signal().unwrap_or(0)
    });
    if code != 0 {
        text.push_str(&format!("--- exit status {code} ---\n"));
    }
    Ok(text)
}

/// How long a stopped session has to end after SIGTERM, and how long its
/// output may stay open after it ended (a program it started that kept
/// the pipe).
const GRACE: Duration = Duration::from_secs(5);

/// The most of each output stream of a session that is kept (16 MiB); the
/// rest is read and dropped, and the transcript says it was cut.
const OUTPUT_LIMIT: usize = 16 << 20;

/// What a bounded run of a session gave.
struct Run {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_cut: bool,
    stderr_cut: bool,
    /// It ran past its limit and was stopped.
    overran: bool,
    status: std::process::ExitStatus,
}

/// Runs `cmd` with no input, keeping at most [`OUTPUT_LIMIT`] bytes of
/// each output. A session still running at `limit` (its own waits have
/// deadlines; this bounds one that never ends, such as one that serves
/// forever) is sent SIGTERM, which makes a socklab clean up, and SIGKILL
/// [`GRACE`] later.
fn run_bounded(cmd: &mut Command, limit: Duration) -> std::io::Result<Run> {
    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    use std::sync::mpsc;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().map(bounded_reader);
    let err = child.stderr.take().map(bounded_reader);
    let Ok(raw) = i32::try_from(child.id()) else {
        // No pid to signal: wait without a limit, as `output` would.
        let status = child.wait()?;
        return Ok(collect_run(out, err, false, status));
    };
    let pid = nix::unistd::Pid::from_raw(raw);
    // The waiter sees the exit without reaping it (WNOWAIT): until
    // `child.wait()` below, the pid stays this child's, so a signal sent
    // after a timeout cannot reach another process.
    let (done, ended) = mpsc::channel();
    std::thread::spawn(move || {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        while let Err(nix::errno::Errno::EINTR) = waitid(Id::Pid(pid), flags) {}
        let _ = done.send(());
    });
    let mut overran = false;
    if ended.recv_timeout(limit).is_err() {
        overran = true;
        let _ = kill(pid, Signal::SIGTERM);
        if ended.recv_timeout(GRACE).is_err() {
            let _ = kill(pid, Signal::SIGKILL);
            // SIGKILL cannot be caught: the child ends.
            let _ = ended.recv();
        }
    }
    let status = child.wait()?;
    Ok(collect_run(out, err, overran, status))
}

/// What the readers of a run's two outputs kept.
type Kept = (Arc<Mutex<(Vec<u8>, bool)>>, std::sync::mpsc::Receiver<()>);

/// The outputs of a run that ended: what each reader kept, waiting at most
/// [`GRACE`] for a pipe that a program the session started may still hold
/// (it is then cut where it stands).
fn collect_run(
    out: Option<Kept>,
    err: Option<Kept>,
    overran: bool,
    status: std::process::ExitStatus,
) -> Run {
    let take = |kept: Option<Kept>| match kept {
        None => (Vec::new(), false),
        Some((buf, done)) => {
            let finished = done.recv_timeout(GRACE).is_ok();
            let mut held = buf.lock().unwrap_or_else(PoisonError::into_inner);
            let (bytes, cut) = std::mem::take(&mut *held);
            (bytes, cut || !finished)
        }
    };
    let (stdout, stdout_cut) = take(out);
    let (stderr, stderr_cut) = take(err);
    Run {
        stdout,
        stderr,
        stdout_cut,
        stderr_cut,
        overran,
        status,
    }
}

/// Reads `pipe` to its end on a thread, keeping its first
/// [`OUTPUT_LIMIT`] bytes (and whether more came) where the caller can
/// take them; the channel says when the pipe ended.
fn bounded_reader(mut pipe: impl std::io::Read + Send + 'static) -> Kept {
    let kept = Arc::new(Mutex::new((Vec::new(), false)));
    let (done, ended) = std::sync::mpsc::channel();
    let shared = Arc::clone(&kept);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut held = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    let room = OUTPUT_LIMIT.saturating_sub(held.0.len());
                    held.1 |= n > room;
                    held.0
                        .extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
    (kept, ended)
}

/// `socklab record`: writes each session's transcript to its `.out`;
/// where a `.out` is there already, its lines that still match (patterns
/// written by hand among them) are kept, and only the others rewritten.
/// Returns the exit status (0, or that of the first file that could not
/// be run or written, after trying them all).
///
/// # Errors
/// None of its own: a file that cannot be run or written is reported and
/// counted.
pub fn record(files: &[PathBuf], wait: Duration, limit: Duration) -> anyhow::Result<i32> {
    let mut status = 0;
    for session in files {
        let out = out_path(session);
        let written = check_readable(session)
            .and_then(|()| transcript(session, wait, limit))
            .and_then(|text| {
                let (text, kept) = match std::fs::read_to_string(&out) {
                    Ok(old) => {
                        let old = Recorded::parse(&old).map_err(|e| {
                            anyhow::anyhow!(e).context(Fatal::new(
                                Exit::Data,
                                format!("cannot use {}", out.display()),
                            ))
                        })?;
                        let c = pattern::compare(&old, &text);
                        (c.merged, c.kept)
                    }
                    // Only a missing .out is a fresh one: one that cannot
                    // be read must not be overwritten (its patterns lost).
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(anyhow::anyhow!(e).context(Fatal::new(
                            Exit::Io,
                            format!("cannot read {}", out.display()),
                        )))
                    }
                    Err(_) => (
                        text.split_inclusive('\n')
                            .map(|l| match l.strip_suffix('\n') {
                                Some(l) => format!("{}\n", pattern::escape(l)),
                                None => pattern::escape(l),
                            })
                            .collect(),
                        0,
                    ),
                };
                std::fs::write(&out, &text).with_context(|| {
                    Fatal::new(Exit::Io, format!("cannot write {}", out.display()))
                })?;
                Ok((text, kept))
            });
        match written {
            Ok((text, kept)) => {
                let kept = match kept {
                    0 => String::new(),
                    1 => ", 1 pattern kept".to_string(),
                    n => format!(", {n} patterns kept"),
                };
                println!(
                    "recorded {} ({} lines{kept})",
                    out.display(),
                    text.lines().count()
                );
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                if status == 0 {
                    status = Fatal::status_of(&e);
                }
            }
        }
    }
    Ok(status)
}

/// `socklab check`: runs each session and compares its transcript with
/// its `.out` (whose pattern lines match as `pattern.rs` says); prints a
/// unified diff for each that differs (from the `.out` to what `record`
/// would write now: a line that still matches its pattern is no
/// difference) and a summary line; returns 0 when all match, 1 when any
/// differs or has no `.out`.
///
/// # Errors
/// None of its own: every problem is one failed file.
pub fn check(files: &[PathBuf], wait: Duration, limit: Duration) -> anyhow::Result<i32> {
    let (mut passed, mut failed) = (0, 0);
    for session in files {
        let out = out_path(session);
        let verdict = match std::fs::read(&out) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "{} has no recorded transcript: {} does not exist (make it with `socklab record {}`)",
                session.display(),
                out.display(),
                session.display()
            )),
            Err(e) => Err(format!("cannot read {}: {e}", out.display())),
            Ok(bytes) => {
                let expected = String::from_utf8_lossy(&bytes).into_owned();
                match Recorded::parse(&expected) {
                    Err(e) => Err(format!("{}: {e}", out.display())),
                    Ok(recorded) => {
                        match check_readable(session).and_then(|()| transcript(session, wait, limit)) {
                            Err(e) => Err(format!("{e:#}")),
                            Ok(actual) if actual == expected => Ok(()),
                            Ok(actual) => {
                                let c = pattern::compare(&recorded, &actual);
                                if c.matches {
                                    Ok(())
                                } else {
                                    Err(format!(
                                        "{} differs from {}:\n{}",
                                        session.display(),
                                        out.display(),
                                        diff(&expected, &c.merged, &out, session)
                                    ))
                                }
                            }
                        }
                    }
                }
            }
        };
        match verdict {
            Ok(()) => {
                passed += 1;
                println!("ok      {}", session.display());
            }
            Err(why) => {
                failed += 1;
                println!("FAILED  {}", session.display());
                println!("{}", why.trim_end());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(i32::from(failed > 0))
}

/// Fails early, with the usual "no input" status, for a session file that
/// cannot be read, or one whose transcript would overwrite it (`x.out`).
fn check_readable(session: &Path) -> anyhow::Result<()> {
    if out_path(session) == session {
        anyhow::bail!(Fatal::new(
            Exit::Usage,
            format!(
                "{}: a session file named .out would be overwritten by its own transcript; rename it (.sock)",
                session.display()
            )
        ));
    }
    // Read, not only opened: a directory opens.
    std::fs::read(session)
        .map(drop)
        .with_context(|| Fatal::new(Exit::NoInput, format!("cannot read {}", session.display())))
}

/// A unified diff from the recorded transcript to this run's.
fn diff(expected: &str, actual: &str, out: &Path, session: &Path) -> String {
    TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(
            &out.display().to_string(),
            &format!("{} (this run)", session.display()),
        )
        .missing_newline_hint(true)
        .to_string()
}
