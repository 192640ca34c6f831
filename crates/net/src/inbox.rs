//! The inbox: data a watched socket received that no `expect` has consumed
//! yet, bounded per socket and across the process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

use crate::settle::lock;

/// How many bytes of not-yet-expected data one socket keeps (the oldest
/// are dropped beyond this).
const INBOX_MAX: usize = 1024 * 1024;
/// What all inboxes together keep; past it, a socket that receives keeps
/// only its last [`INBOX_FLOOR`] bytes, so a flood of connections cannot
/// grow memory without bound.
const INBOX_BUDGET: usize = 64 * 1024 * 1024;
/// What a socket keeps when the budget is spent.
const INBOX_FLOOR: usize = 4 * 1024;
/// Bytes held in all inboxes.
static INBOX_TOTAL: AtomicUsize = AtomicUsize::new(0);

/// One socket's unconsumed data.
#[derive(Default)]
pub(crate) struct Inbox {
    /// The bytes, oldest first.
    bytes: Mutex<BytesMut>,
}

impl Inbox {
    /// Adds received bytes, dropping the oldest beyond the bounds.
    pub(crate) fn push(&self, data: &[u8]) {
        let mut inbox = lock(&self.bytes);
        let before = inbox.len();
        inbox.extend_from_slice(data);
        let spent = INBOX_TOTAL
            .load(Ordering::SeqCst)
            .saturating_add(data.len())
            > INBOX_BUDGET;
        let keep = if spent { INBOX_FLOOR } else { INBOX_MAX };
        if inbox.len() > keep {
            let excess = inbox.len() - keep;
            let _ = inbox.split_to(excess);
        }
        account(before, inbox.len());
    }

    /// When `find` finds a match in what is held (returning how many bytes
    /// the match consumes), takes and returns those bytes.
    pub(crate) fn take_match(
        &self,
        find: &mut impl FnMut(&[u8]) -> Option<usize>,
    ) -> Option<Bytes> {
        let mut inbox = lock(&self.bytes);
        let end = find(&inbox)?.min(inbox.len());
        INBOX_TOTAL.fetch_sub(end, Ordering::SeqCst);
        Some(inbox.split_to(end).freeze())
    }

    /// The last `max` bytes held.
    pub(crate) fn tail(&self, max: usize) -> Bytes {
        let inbox = lock(&self.bytes);
        let from = inbox.len().saturating_sub(max);
        Bytes::copy_from_slice(&inbox[from..])
    }
}

fn account(before: usize, after: usize) {
    if after >= before {
        INBOX_TOTAL.fetch_add(after - before, Ordering::SeqCst);
    } else {
        INBOX_TOTAL.fetch_sub(before - after, Ordering::SeqCst);
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let held = lock(&self.bytes).len();
        INBOX_TOTAL.fetch_sub(held, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that sends more than anyone expects cannot grow a socket's
    /// inbox past its bound: the oldest bytes go.
    #[test]
    fn an_inbox_keeps_at_most_its_bound_newest_last() {
        let inbox = Inbox::default();
        for i in 0..40u8 {
            inbox.push(&[i; 64 * 1024]);
        }
        let kept = inbox.tail(usize::MAX);
        assert!(kept.len() <= INBOX_MAX, "{}", kept.len());
        assert_eq!(kept.last(), Some(&39));
        let mut take_all = |b: &[u8]| Some(b.len());
        let taken = inbox.take_match(&mut take_all).unwrap();
        assert_eq!(taken.len(), kept.len());
        assert!(inbox.tail(1).is_empty());
    }
}
