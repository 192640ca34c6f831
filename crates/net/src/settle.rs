//! Settlement: waiting, with a limit, until something another task of the
//! lab publishes makes a condition true. The one wait every settling
//! operation uses.
//!
//! What is waited on is always published on a `watch` channel: a socket's
//! progress (a tube's bytes read, a datagram count), a server's reports
//! (accepts announced, clients finished), a program's exit. The waiter
//! holds a `watch::Receiver` and re-checks its condition after every
//! change; nothing here polls or sleeps.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{NetError, Result};

/// The longest a settlement waits for another socket of the lab to report.
/// Reaching it means something is stuck, and is reported as an error.
pub(crate) const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// The longest a close or shutdown waits for the kernel to finish its part
/// of the goodbye (a delayed ACK is at most a few hundred milliseconds).
pub(crate) const KERNEL_SETTLE: Duration = Duration::from_secs(2);

/// Waits until `done` holds for the value `rx` watches (checked now, then
/// after every change), at most `limit`. `done` may look at other state
/// too, as long as whoever changes that state also changes the watched
/// value afterwards.
///
/// Returns `Ok(true)` when `done` held, `Ok(false)` when the sender went
/// away first (nothing will change any more).
///
/// # Errors
/// [`NetError::Timeout`] naming `what` when `limit` passed first.
pub(crate) async fn wait_until<T>(
    what: impl FnOnce() -> String,
    limit: Duration,
    mut rx: watch::Receiver<T>,
    mut done: impl FnMut(&T) -> bool,
) -> Result<bool> {
    let wait = async move { rx.wait_for(|v| done(v)).await.is_ok() };
    tokio::time::timeout(limit, wait)
        .await
        .map_err(|_| NetError::Timeout {
            what: what(),
            after: limit,
        })
}

/// Locks a mutex; a poisoned lock (a panic elsewhere) still gives its data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
