//! The session's memory budget for what it holds for the person: the bytes
//! that events carry on their way to the screen. A reader takes its share
//! before it sends an event and the share comes back when the event is
//! dropped (printed, or merged into what is shown); when the budget is
//! spent a TCP reader waits (the kernel's flow control then slows the peer)
//! and a UDP reader drops datagrams and says how many.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes of event payload a session holds at most (in the event channel,
/// and wherever the shell keeps events before printing them).
pub const EVENT_BUDGET: usize = 64 * 1024 * 1024;

/// A session's budget.
#[derive(Clone)]
pub(crate) struct Budget {
    bytes: Arc<Semaphore>,
}

impl Budget {
    /// A budget of `bytes`.
    pub(crate) fn new(bytes: usize) -> Budget {
        Budget {
            bytes: Arc::new(Semaphore::new(bytes)),
        }
    }

    /// Waits for `n` bytes of the budget (at most the whole budget).
    pub(crate) async fn take(&self, n: usize) -> Charge {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        Charge(self.bytes.clone().acquire_many_owned(n).await.ok())
    }

    /// Takes `n` bytes of the budget if they are free now.
    pub(crate) fn try_take(&self, n: usize) -> Option<Charge> {
        let n = u32::try_from(n).ok()?;
        self.bytes
            .clone()
            .try_acquire_many_owned(n)
            .ok()
            .map(|p| Charge(Some(p)))
    }
}

/// A share of the budget, given back when dropped.
pub struct Charge(Option<OwnedSemaphorePermit>);

impl Charge {
    /// Splits `n` bytes off into a charge of their own.
    pub(crate) fn split(&mut self, n: usize) -> Charge {
        Charge(self.0.as_mut().and_then(|p| p.split(n)))
    }
}

/// Bytes an event carries, counted against the session's memory budget
/// until the event is dropped.
pub struct Payload {
    bytes: Bytes,
    _charge: Charge,
}

impl Payload {
    /// `bytes`, held under `charge`.
    pub(crate) fn new(bytes: Bytes, charge: Charge) -> Payload {
        Payload {
            bytes,
            _charge: charge,
        }
    }

    /// The bytes (a cheap clone, outside the budget: keep it short-lived).
    pub fn bytes(&self) -> Bytes {
        self.bytes.clone()
    }
}

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.bytes, f)
    }
}
