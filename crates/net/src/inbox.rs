//! The inbox: data a watched socket received that no `expect` has consumed
//! yet, bounded per socket and across the process.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::{Buf, Bytes, BytesMut};

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
/// A read cut by the bound to fewer bytes than this is copied.
const COPY_BELOW: usize = 64 * 1024;
/// Bytes held in all inboxes.
static INBOX_TOTAL: AtomicUsize = AtomicUsize::new(0);

/// One socket's unconsumed data.
#[derive(Default)]
pub(crate) struct Inbox {
    /// The bytes, oldest first.
    held: Mutex<Held>,
}

/// An inbox's bytes: what a match looked at already, joined in one
/// buffer, and the reads that came since, kept as they came (no copy: a
/// flood no `expect` waits for is never copied here).
#[derive(Default)]
struct Held {
    /// The older bytes, in one piece.
    joined: BytesMut,
    /// Reads since, oldest first.
    fresh: VecDeque<Bytes>,
    /// Bytes in `joined` and `fresh` together.
    len: usize,
}

impl Held {
    /// Drops the oldest bytes beyond `keep`.
    fn trim(&mut self, keep: usize) {
        let mut excess = self.len.saturating_sub(keep);
        self.len -= excess;
        let cut = excess.min(self.joined.len());
        self.joined.advance(cut);
        excess -= cut;
        while excess > 0 {
            let Some(front) = self.fresh.front_mut() else {
                break;
            };
            if front.len() <= excess {
                excess -= front.len();
                self.fresh.pop_front();
            } else {
                front.advance(excess);
                if front.len() < COPY_BELOW {
                    // A small tail of a large read would pin the read's
                    // whole buffer: it is kept as a copy of its own.
                    *front = Bytes::copy_from_slice(front);
                }
                excess = 0;
            }
        }
    }

    /// Everything held, in one piece.
    fn join(&mut self) -> &mut BytesMut {
        if !self.fresh.is_empty() {
            if self.joined.is_empty() && self.fresh.len() == 1 {
                // One read: taken as it is, no copy (made mutable only
                // when a match leaves part of it).
                if let Some(only) = self.fresh.pop_front() {
                    self.joined = BytesMut::from(only);
                }
            } else {
                self.joined.reserve(self.len - self.joined.len());
                for b in self.fresh.drain(..) {
                    self.joined.extend_from_slice(&b);
                }
            }
        }
        &mut self.joined
    }
}

impl Inbox {
    /// Adds received bytes, dropping the oldest beyond the bounds. `data`
    /// is kept as it is (not copied), so it must not pin a buffer much
    /// larger than itself.
    pub(crate) fn push(&self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let mut held = lock(&self.held);
        let before = held.len;
        let spent = INBOX_TOTAL
            .load(Ordering::SeqCst)
            .saturating_add(data.len())
            > INBOX_BUDGET;
        held.len += data.len();
        held.fresh.push_back(data);
        held.trim(if spent { INBOX_FLOOR } else { INBOX_MAX });
        account(before, held.len);
    }

    /// When `find` finds a match in what is held (returning how many bytes
    /// the match consumes), takes and returns those bytes.
    pub(crate) fn take_match(
        &self,
        find: &mut impl FnMut(&[u8]) -> Option<usize>,
    ) -> Option<Bytes> {
        let mut held = lock(&self.held);
        let joined = held.join();
        let end = find(joined)?.min(joined.len());
        let taken = joined.split_to(end).freeze();
        held.len -= end;
        INBOX_TOTAL.fetch_sub(end, Ordering::SeqCst);
        Some(taken)
    }

    /// The last `max` bytes held.
    pub(crate) fn tail(&self, max: usize) -> Bytes {
        let mut held = lock(&self.held);
        let joined = held.join();
        let from = joined.len().saturating_sub(max);
        Bytes::copy_from_slice(&joined[from..])
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
        let held = lock(&self.held).len;
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
            inbox.push(Bytes::from(vec![i; 64 * 1024]));
        }
        let kept = inbox.tail(usize::MAX);
        assert!(kept.len() <= INBOX_MAX, "{}", kept.len());
        assert_eq!(kept.last(), Some(&39));
        let mut take_all = |b: &[u8]| Some(b.len());
        let taken = inbox.take_match(&mut take_all).unwrap();
        assert_eq!(taken.len(), kept.len());
        assert!(inbox.tail(1).is_empty());
    }

    /// A match may span reads, and what it leaves stays for the next one,
    /// also once more reads came (the joined part and the fresh reads).
    #[test]
    fn a_match_spans_reads_and_leaves_the_rest() {
        let inbox = Inbox::default();
        inbox.push(Bytes::from_static(b"hel"));
        inbox.push(Bytes::from_static(b"lo\nwor"));
        let mut line = |b: &[u8]| b.iter().position(|&c| c == b'\n').map(|i| i + 1);
        assert_eq!(&inbox.take_match(&mut line).unwrap()[..], b"hello\n");
        assert!(inbox.take_match(&mut line).is_none());
        inbox.push(Bytes::from_static(b"ld\n"));
        assert_eq!(&inbox.take_match(&mut line).unwrap()[..], b"world\n");
        assert!(inbox.tail(10).is_empty());
    }

    /// The bound cuts inside a read too: the newest INBOX_MAX bytes stay,
    /// whatever the sizes of the reads.
    #[test]
    fn the_bound_cuts_inside_a_read() {
        let inbox = Inbox::default();
        inbox.push(Bytes::from(vec![b'a'; INBOX_MAX - 10]));
        inbox.push(Bytes::from(vec![b'b'; 30]));
        let all = inbox.tail(usize::MAX);
        assert_eq!(all.len(), INBOX_MAX);
        assert_eq!(&all[INBOX_MAX - 30..], &[b'b'; 30][..]);
        assert_eq!(all[0], b'a');
    }
}
