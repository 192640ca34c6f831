//! Task workers: tokio tasks on the caller's runtime, killed by abort.

use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use tokio::task::JoinHandle;

use super::{Ctx, JobShared, WorkerState};
use crate::line::LineKind;
use crate::sys;

/// Spawns one task per worker; returns their handles. Spawning a task
/// cannot fail.
pub(super) fn start(ctxs: Vec<Ctx>) -> Vec<JoinHandle<()>> {
    ctxs.into_iter()
        .map(|ctx| tokio::spawn(life(ctx)))
        .collect()
}

/// A task's whole life: its steps, then its end line (done, or failed if it
/// panicked). An abort can land at any await before the end line is sent;
/// between that send and the published end there is none, so a task is
/// either ended by itself or not at all: [`settle`] ends the others.
async fn life(ctx: Ctx) {
    let mut steps = pin!(steps(&ctx));
    let state = poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| steps.as_mut().poll(cx))) {
            Ok(Poll::Ready(state)) => Poll::Ready(state),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(WorkerState::Failed("panicked".into())),
        },
    )
    .await;
    ctx.end(state).await;
}

/// After an abort: waits until the tasks are gone, then sends the end line
/// of (and ends) every worker that had not ended by itself.
pub(super) async fn settle(job: Arc<JobShared>, tasks: Vec<JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
    for index in 0..job.workers.len() {
        let ctx = Ctx {
            job: job.clone(),
            index,
        };
        if ctx.is_running() {
            ctx.end(WorkerState::Killed).await;
        }
    }
}

/// The steps. CPU-bound steps run without a break; between steps the task
/// sleeps its pause, or yields if it has none, so that other tasks on the
/// same thread get a turn (and an abort can land).
async fn steps(ctx: &Ctx) -> WorkerState {
    let pause = ctx.workload().pause();
    let mut steps = ctx.workload().run();
    // Bounded by the workload's steps.
    while let Some((step, text)) = steps.next_text() {
        let tid = sys::gettid();
        let line = ctx.line(LineKind::Step, step, text, tid, sys::mono_now());
        if ctx.tx().send(line).await.is_err() {
            return WorkerState::Failed("nobody reads its output".into());
        }
        ctx.sent_step(tid);
        if pause.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(pause).await;
        }
    }
    WorkerState::Done
}
