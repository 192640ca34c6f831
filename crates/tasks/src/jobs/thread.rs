//! Thread workers: one `std::thread` each, held at a start line until all
//! exist, stopped by a flag checked between steps.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::Semaphore;

use super::{Ctx, WorkerState};
use crate::cancel::{block_on, Gate};
use crate::error::{Result, TaskError};
use crate::line::{Line, LineKind};
use crate::sys;

/// How long threads may take to come up, and how long one waits at the
/// start line.
const START_LIMIT: Duration = Duration::from_secs(10);
/// A worker thread's stack. A step needs little; small stacks are cheaper
/// to map and more of them fit glibc's cache of freed stacks, which matters
/// when a thousand workers exist at once.
const STACK: usize = 256 * 1024;

/// Starts one thread per worker; each reports its thread id and waits at
/// the start line; when all are there, lets them go. If one cannot be
/// started, the others are sent home (and joined) before the error returns,
/// and no line was sent.
pub(super) async fn start(ctxs: Vec<Ctx>) -> Result<()> {
    let n = ctxs.len();
    let gate = Arc::new(Gate::default());
    let ready = Arc::new(Semaphore::new(0));
    let mut threads = Vec::with_capacity(n);
    for ctx in ctxs {
        let name = format!("{}.{}", ctx.job.name, ctx.index);
        let job = ctx.job.name.to_string();
        let (gate2, ready2) = (gate.clone(), ready.clone());
        let spawned = std::thread::Builder::new()
            .name(name)
            .stack_size(STACK)
            .spawn(move || run(ctx, &gate2, &ready2));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(source) => {
                abandon(&gate, threads).await;
                return Err(TaskError::SpawnThread { job, source });
            }
        }
    }
    let all = u32::try_from(n).unwrap_or(u32::MAX);
    match tokio::time::timeout(START_LIMIT, ready.acquire_many(all)).await {
        Ok(Ok(permits)) => permits.forget(),
        _ => {
            abandon(&gate, threads).await;
            return Err(TaskError::Timeout {
                what: format!("starting {n} threads"),
                after: START_LIMIT,
            });
        }
    }
    gate.open();
    // The threads run detached; each publishes its end as its last act.
    Ok(())
}

/// Sends every started thread home and joins them (off the runtime).
async fn abandon(gate: &Gate, threads: Vec<std::thread::JoinHandle<()>>) {
    gate.abandon();
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
}

enum Sent {
    Yes,
    Cancelled,
    Closed,
}

/// Sends a line from a plain thread: at once if there is room, else blocks
/// until there is, the job is cancelled, or nobody listens any more.
fn send(ctx: &Ctx, line: Line) -> Sent {
    match ctx.tx().try_send(line) {
        Ok(()) => Sent::Yes,
        Err(TrySendError::Closed(_)) => Sent::Closed,
        Err(TrySendError::Full(line)) => block_on(async {
            tokio::select! {
                biased;
                () = ctx.job.cancel.cancelled() => Sent::Cancelled,
                r = ctx.tx().send(line) => if r.is_ok() { Sent::Yes } else { Sent::Closed },
            }
        }),
    }
}

/// The thread's life.
fn run(ctx: Ctx, gate: &Gate, ready: &Semaphore) {
    let tid = sys::gettid();
    ctx.slot().tid.store(tid, Ordering::SeqCst);
    ready.add_permits(1);
    if !gate.wait(START_LIMIT) {
        return;
    }
    let state = catch_unwind(AssertUnwindSafe(|| steps(&ctx, tid)))
        .unwrap_or_else(|_| WorkerState::Failed("panicked".into()));
    // The end line waits for room even after a kill: it must not be lost.
    if let Err(TrySendError::Full(end)) = ctx.tx().try_send(ctx.end_line(&state)) {
        let _ = block_on(ctx.tx().send(end));
    }
    ctx.finish(state);
}

fn steps(ctx: &Ctx, tid: u32) -> WorkerState {
    let cancel = &ctx.job.cancel;
    let pause = ctx.workload().pause();
    let mut steps = ctx.workload().run();
    // Bounded by the workload's steps.
    loop {
        if cancel.is_cancelled() {
            return WorkerState::Killed;
        }
        let Some((step, text)) = steps.next_text() else {
            return WorkerState::Done;
        };
        let line = ctx.line(LineKind::Step, step, text, tid, sys::mono_now());
        match send(ctx, line) {
            Sent::Yes => ctx.sent_step(tid),
            Sent::Cancelled => return WorkerState::Killed,
            Sent::Closed => return WorkerState::Failed("nobody reads its output".into()),
        }
        if !pause.is_zero() && cancel.sleep(pause) {
            return WorkerState::Killed;
        }
    }
}
