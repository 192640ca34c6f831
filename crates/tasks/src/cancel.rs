//! Small synchronisation pieces that work from threads and tasks alike: a
//! cancellation flag, a start gate, and a `block_on` for plain threads.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A one-way "stop" flag: threads check it between steps and sleep on it,
/// tasks await it.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    flag: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
    notify: Notify,
}

impl Cancel {
    /// Raises the flag and wakes every sleeper and waiter.
    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // Taking the lock orders this with a sleeper between its check of
        // the flag and its wait: it either sees the flag or gets the wakeup.
        drop(lock(&self.lock));
        self.cond.notify_all();
        self.notify.notify_waiters();
    }

    /// Whether the flag is raised.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps for `pause` on this thread, or less if the flag is raised.
    /// Returns whether it was.
    pub(crate) fn sleep(&self, pause: Duration) -> bool {
        let deadline = Instant::now() + pause;
        let mut guard = lock(&self.lock);
        // Bounded by the deadline: every turn either returns or waits for
        // what is left of it (spurious wakeups only shorten the wait).
        loop {
            if self.is_cancelled() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self
                .cond
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Completes when the flag is raised.
    pub(crate) async fn cancelled(&self) {
        // Two turns at most: after a wakeup the flag is raised (it never
        // goes down again), or this is the first turn.
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// Holds threads at the start line until every one of them exists.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<Option<bool>>,
    cond: Condvar,
}

impl Gate {
    /// Lets every waiting thread go.
    pub(crate) fn open(&self) {
        self.set(true);
    }

    /// Sends every waiting thread home: the job will not start.
    pub(crate) fn abandon(&self) {
        self.set(false);
    }

    fn set(&self, go: bool) {
        *lock(&self.state) = Some(go);
        self.cond.notify_all();
    }

    /// Waits for [`Gate::open`] (true) or [`Gate::abandon`] or `limit`
    /// (false).
    pub(crate) fn wait(&self, limit: Duration) -> bool {
        let guard = lock(&self.state);
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, limit, |state| state.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        *guard == Some(true)
    }
}

/// Runs a future to completion on this (non-runtime) thread, parking while
/// it is pending. For futures that need no I/O or timer driver (channel
/// sends, [`Cancel::cancelled`]): a thread worker blocks on a full channel
/// this way and can still be cancelled.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    // Ends when the future does: each turn parks until a wakeup (or a
    // spurious unpark, which only costs another poll).
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_is_cut_short_by_cancel() {
        let cancel = Arc::new(Cancel::default());
        assert!(!cancel.sleep(Duration::from_millis(1)));
        let sleeper = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                (cancel.sleep(Duration::from_secs(30)), start.elapsed())
            })
        };
        cancel.cancel();
        let (cancelled, took) = sleeper.join().unwrap();
        assert!(cancelled);
        assert!(took < Duration::from_secs(10));
        assert!(cancel.sleep(Duration::from_secs(30)));
    }

    #[test]
    fn cancelled_wakes_a_thread_blocked_on_a_full_channel() {
        let cancel = Arc::new(Cancel::default());
        let (tx, _rx) = tokio::sync::mpsc::channel::<u8>(1);
        tx.try_send(0).unwrap();
        let blocked = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                block_on(async {
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => "cancelled",
                        _ = tx.send(1) => "sent",
                    }
                })
            })
        };
        cancel.cancel();
        assert_eq!(blocked.join().unwrap(), "cancelled");
    }

    #[test]
    fn gate() {
        let gate = Arc::new(Gate::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let gate = gate.clone();
                std::thread::spawn(move || gate.wait(Duration::from_secs(30)))
            })
            .collect();
        gate.open();
        assert!(waiters.into_iter().all(|w| w.join().unwrap()));
        let closed = Gate::default();
        closed.abandon();
        assert!(!closed.wait(Duration::from_secs(30)));
        assert!(!Gate::default().wait(Duration::from_millis(1)));
    }
}
