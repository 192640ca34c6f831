//! Process workers: this program re-executed with the hidden flag, its
//! stdout and stderr read line by line, SIGKILLed and reaped on kill.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::{Ctx, Launcher, WorkerState, KILL_LIMIT};
use crate::error::{Result, TaskError};
use crate::line::{excerpt, LineKind, WireLine, MAX_WIRE_LINE};
use crate::worker::{EXIT_ORPHAN, EXIT_OUTPUT, EXIT_USAGE, WORKER_FLAG};

/// After closing its output, a worker process has this long to exit before
/// it is killed.
const EXIT_LIMIT: Duration = Duration::from_secs(5);
/// Lines of a worker's stderr reported; the rest is read and dropped.
const MAX_STDERR_LINES: usize = 16;

/// Starts one process per worker, back to back, then their supervisors. If
/// one cannot be started, the ones already started are killed and reaped
/// before the error returns, and no line was sent.
pub(super) async fn start(ctxs: Vec<Ctx>, launcher: &Launcher) -> Result<()> {
    let parent = std::process::id().to_string();
    let mut children = Vec::with_capacity(ctxs.len());
    for ctx in &ctxs {
        let mut cmd = Command::new(launcher.program());
        cmd.arg(WORKER_FLAG)
            .arg(&parent)
            .args(ctx.workload().to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match cmd.spawn() {
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                ctx.slot()
                    .pid
                    .store(pid, std::sync::atomic::Ordering::SeqCst);
                // A fresh process has one thread, whose id is the PID.
                ctx.slot()
                    .tid
                    .store(pid, std::sync::atomic::Ordering::SeqCst);
                children.push(child);
            }
            Err(source) => {
                for mut child in children {
                    let _ = kill_and_reap(&mut child).await;
                }
                return Err(TaskError::SpawnProcess {
                    job: ctx.job.name.to_string(),
                    program: launcher.program().to_path_buf(),
                    source,
                });
            }
        }
    }
    for (ctx, child) in ctxs.into_iter().zip(children) {
        tokio::spawn(supervise(ctx, child));
    }
    Ok(())
}

/// SIGKILL, then `waitpid` (at most [`KILL_LIMIT`]).
async fn kill_and_reap(child: &mut Child) -> Result<ExitStatus, String> {
    // Fails only if the child was reaped already, which wait() then says.
    let _ = child.start_kill();
    match tokio::time::timeout(KILL_LIMIT, child.wait()).await {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(e)) => Err(format!("waitpid: {e}")),
        Err(_) => Err(format!("still not reaped {KILL_LIMIT:?} after SIGKILL")),
    }
}

/// What became of a worker that was told to stop.
async fn stop(child: &mut Child) -> WorkerState {
    match kill_and_reap(child).await {
        // It had finished on its own before the SIGKILL landed.
        Ok(status) if status.success() => WorkerState::Done,
        Ok(_) => WorkerState::Killed,
        Err(why) => WorkerState::Failed(why),
    }
}

fn exited(status: ExitStatus) -> WorkerState {
    if status.success() {
        return WorkerState::Done;
    }
    if let Some(signal) = status.signal() {
        return WorkerState::Failed(format!("killed by signal {signal}"));
    }
    let code = status.code().unwrap_or(-1);
    let meaning = match code {
        EXIT_USAGE => " (bad worker arguments; is the program calling worker_main_if_requested?)",
        EXIT_ORPHAN => " (its parent was gone)",
        EXIT_OUTPUT => " (its output was closed)",
        _ => "",
    };
    WorkerState::Failed(format!("exit status {code}{meaning}"))
}

enum After {
    Cancelled,
    Exited(io::Result<ExitStatus>),
    Lingered,
}

/// One worker process's life: relay its lines, then reap it; or kill and
/// reap it when the job is cancelled. Sends the end line, then publishes.
async fn supervise(ctx: Ctx, mut child: Child) {
    let mut out = tokio::spawn(read_stdout(ctx.clone(), child.stdout.take()));
    let mut err = tokio::spawn(read_stderr(ctx.clone(), child.stderr.take()));
    let cancel = &ctx.job.cancel;
    let read_all = {
        let readers = async {
            let _ = (&mut out).await;
            let _ = (&mut err).await;
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => false,
            () = readers => true,
        }
    };
    let after = if read_all {
        tokio::select! {
            biased;
            () = cancel.cancelled() => After::Cancelled,
            r = tokio::time::timeout(EXIT_LIMIT, child.wait()) => match r {
                Ok(r) => After::Exited(r),
                Err(_) => After::Lingered,
            },
        }
    } else {
        After::Cancelled
    };
    let state = match after {
        After::Cancelled => {
            out.abort();
            err.abort();
            stop(&mut child).await
        }
        After::Exited(Ok(status)) => exited(status),
        After::Exited(Err(e)) => WorkerState::Failed(format!("waitpid: {e}")),
        After::Lingered => {
            let _ = kill_and_reap(&mut child).await;
            WorkerState::Failed(format!(
                "closed its output but did not exit within {EXIT_LIMIT:?}"
            ))
        }
    };
    ctx.end(state).await;
}

/// Relays the worker's stdout: each line a step, or an error line if it
/// cannot be read. Reads at most the workload's steps plus a few lines.
async fn read_stdout(ctx: Ctx, out: Option<impl AsyncRead + Unpin>) {
    let Some(out) = out else { return };
    let mut reader = BufReader::new(out);
    let mut buf = Vec::new();
    let most = ctx.workload().steps() as usize + 16;
    for _ in 0..most {
        let line = match read_line_bounded(&mut reader, &mut buf).await {
            Ok(None) => return,
            Ok(Some(true)) => match WireLine::decode(&buf) {
                Ok(wire) => {
                    let tid = wire.tid;
                    let mut line = ctx.line(LineKind::Step, wire.step, wire.text, tid, wire.mono);
                    line.pid = wire.pid;
                    if ctx.tx().send(line).await.is_err() {
                        return;
                    }
                    ctx.sent_step(tid);
                    continue;
                }
                Err(why) => ctx.error(why),
            },
            Ok(Some(false)) => ctx.error(format!(
                "unreadable line from worker (longer than {MAX_WIRE_LINE} bytes): {}",
                excerpt(&buf)
            )),
            Err(e) => {
                let _ = ctx
                    .tx()
                    .send(ctx.error(format!("reading worker output: {e}")))
                    .await;
                return;
            }
        };
        if ctx.tx().send(line).await.is_err() {
            return;
        }
    }
    let _ = ctx
        .tx()
        .send(ctx.error(format!(
            "wrote more lines than its {} steps; no longer read",
            ctx.workload().steps()
        )))
        .await;
    // Dropping the pipe makes the worker's next write fail (EPIPE).
}

/// Relays the worker's stderr as error lines (the first few).
async fn read_stderr(ctx: Ctx, err: Option<impl AsyncRead + Unpin>) {
    let Some(err) = err else { return };
    let mut reader = BufReader::new(err);
    let mut buf = Vec::new();
    for n in 0..MAX_STDERR_LINES * 64 {
        match read_line_bounded(&mut reader, &mut buf).await {
            Ok(None) | Err(_) => return,
            Ok(Some(_)) if n >= MAX_STDERR_LINES => {}
            Ok(Some(_)) => {
                let text = String::from_utf8_lossy(&buf).into_owned();
                if ctx
                    .tx()
                    .send(ctx.error(format!("stderr: {text}")))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Reads one line into `buf` (without its newline; at most
/// [`MAX_WIRE_LINE`] bytes kept, the rest of a longer line skipped).
/// `None` at the end of the stream; `Some(false)` for a line too long. A
/// last line without a newline counts as a line.
async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    // Bounded by the stream: every turn consumes at least one byte or
    // returns.
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((!buf.is_empty() || too_long).then_some(!too_long));
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        let room = MAX_WIRE_LINE.saturating_sub(buf.len());
        if chunk.len() > room {
            too_long = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        match newline {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(Some(!too_long));
            }
            None => {
                let n = available.len();
                reader.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_lines() {
        let mut input = Vec::new();
        input.extend_from_slice(b"one\n\n");
        input.extend(std::iter::repeat_n(b'x', MAX_WIRE_LINE + 10));
        input.extend_from_slice(b"\nlast");
        let mut reader = BufReader::with_capacity(64, &input[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for _ in 0..10 {
            match read_line_bounded(&mut reader, &mut buf).await.unwrap() {
                None => break,
                Some(ok) => got.push((ok, buf.len())),
            }
        }
        assert_eq!(
            got,
            [(true, 3), (true, 0), (false, MAX_WIRE_LINE), (true, 4)]
        );
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(exited(ExitStatus::from_raw(0)), WorkerState::Done);
        assert_eq!(
            exited(ExitStatus::from_raw(9)),
            WorkerState::Failed("killed by signal 9".into())
        );
        assert_eq!(
            exited(ExitStatus::from_raw(EXIT_ORPHAN << 8)),
            WorkerState::Failed("exit status 69 (its parent was gone)".into())
        );
    }
}
