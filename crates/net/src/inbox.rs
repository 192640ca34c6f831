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
    /// Where the first byte held is in the stream of bytes ever pushed
    /// (what was dropped or taken before it counts).
    start: u64,
}

/// How far one `expect` has looked through an inbox: with a finder whose
/// matches are at most `longest` bytes long (a text), each read is searched
/// once, with the `longest - 1` bytes before it a match may begin in,
/// instead of everything held at every read.
pub(crate) struct Scan {
    /// The longest match the finder makes, when it is bounded; `None` (a
    /// regex) searches everything held at every look.
    longest: Option<usize>,
    /// Where in the stream the bytes not searched yet begin.
    searched: u64,
}

impl Scan {
    /// A scan for a finder whose matches are at most `longest` bytes long
    /// (`None`: unbounded).
    pub(crate) fn new(longest: Option<usize>) -> Scan {
        Scan {
            longest: longest.filter(|&n| n > 0),
            searched: 0,
        }
    }
}

impl Held {
    /// Drops the oldest bytes beyond `keep`.
    fn trim(&mut self, keep: usize) {
        let mut excess = self.len.saturating_sub(keep);
        self.len -= excess;
        self.start += excess as u64;
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

    /// Takes the first `n` bytes held (at most all of them): without a copy
    /// when they lie in one piece, else joined once.
    fn take(&mut self, n: usize) -> Bytes {
        let n = n.min(self.len);
        self.len -= n;
        self.start += n as u64;
        INBOX_TOTAL.fetch_sub(n, Ordering::SeqCst);
        if n <= self.joined.len() {
            return self.joined.split_to(n).freeze();
        }
        if self.joined.is_empty() && self.fresh.front().is_some_and(|f| f.len() == n) {
            return self.fresh.pop_front().unwrap_or_default();
        }
        let mut out = BytesMut::with_capacity(n);
        out.extend_from_slice(&self.joined);
        self.joined.clear();
        let mut left = n - out.len();
        while left > 0 {
            let Some(front) = self.fresh.front_mut() else {
                break;
            };
            if front.len() <= left {
                left -= front.len();
                out.extend_from_slice(front);
                self.fresh.pop_front();
            } else {
                out.extend_from_slice(&front[..left]);
                front.advance(left);
                if front.len() < COPY_BELOW {
                    // As in `trim`: a small rest does not pin its read.
                    *front = Bytes::copy_from_slice(front);
                }
                left = 0;
            }
        }
        out.freeze()
    }

    /// Where the first match that ends after stream position `from`
    /// ends (a stream position), searching each piece held in place and
    /// the `longest - 1` bytes before each piece together with its first
    /// bytes; every match `find` makes is at most `longest` bytes long.
    fn search(
        &self,
        from: u64,
        longest: usize,
        find: &mut impl FnMut(&[u8]) -> Option<usize>,
    ) -> Option<u64> {
        let overlap = longest - 1;
        // The last `overlap` bytes searched, then a piece's first bytes.
        let mut carry: Vec<u8> = Vec::with_capacity(2 * overlap);
        let mut at = self.start;
        let pieces = std::iter::once(&self.joined[..]).chain(self.fresh.iter().map(|b| &b[..]));
        for piece in pieces {
            let end = at + piece.len() as u64;
            let skip = usize::try_from(from.saturating_sub(at)).unwrap_or(usize::MAX);
            if skip >= piece.len() {
                at = end;
                continue;
            }
            let part = &piece[skip..];
            let part_at = at + skip as u64;
            if !carry.is_empty() {
                let before = carry.len();
                carry.extend_from_slice(&part[..part.len().min(overlap)]);
                if let Some(stop) = find(&carry) {
                    return Some(part_at - before as u64 + stop as u64);
                }
                carry.truncate(before);
            }
            if let Some(stop) = find(part) {
                return Some(part_at + stop as u64);
            }
            if part.len() >= overlap {
                carry.clear();
                carry.extend_from_slice(&part[part.len() - overlap..]);
            } else {
                carry.extend_from_slice(part);
                let extra = carry.len().saturating_sub(overlap);
                carry.drain(..extra);
            }
            at = end;
        }
        None
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
        let end = find(joined)?;
        Some(held.take(end))
    }

    /// [`Inbox::take_match`] for one `expect` that looks again after each
    /// read: with a bounded finder (see [`Scan`]) the bytes searched at an
    /// earlier look are not searched again, nor joined.
    pub(crate) fn take_scanned(
        &self,
        find: &mut impl FnMut(&[u8]) -> Option<usize>,
        scan: &mut Scan,
    ) -> Option<Bytes> {
        let Some(longest) = scan.longest else {
            return self.take_match(find);
        };
        let mut held = lock(&self.held);
        let from = scan
            .searched
            .saturating_sub(longest as u64 - 1)
            .max(held.start);
        match held.search(from, longest, find) {
            Some(stop) => {
                let n = usize::try_from(stop - held.start).unwrap_or(usize::MAX);
                Some(held.take(n))
            }
            None => {
                scan.searched = held.start + held.len as u64;
                None
            }
        }
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

    /// What `expect TEXT` finds when it looks after each read: the bytes
    /// up to the end of the first match, searched the old way (everything
    /// held, joined).
    fn first_match(data: &[u8], needle: &[u8]) -> Option<usize> {
        data.windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + needle.len())
    }

    /// Pushes `data` cut at `cuts` and looks after each read as `expect`
    /// does, with a scan; returns what was taken and what stayed.
    fn scan_reads(data: &[u8], cuts: &[usize], needle: &[u8]) -> (Option<Bytes>, Bytes) {
        let inbox = Inbox::default();
        let mut find = |b: &[u8]| first_match(b, needle);
        let mut scan = Scan::new(Some(needle.len()));
        let mut from = 0;
        let mut got = None;
        for &to in cuts.iter().chain(std::iter::once(&data.len())) {
            inbox.push(Bytes::copy_from_slice(&data[from..to]));
            from = to;
            if got.is_none() {
                got = inbox.take_scanned(&mut find, &mut scan);
            }
        }
        (got, inbox.tail(usize::MAX))
    }

    /// Searching each read once, with the bytes before it a match may
    /// begin in, finds what joining everything finds: a text cut across
    /// two reads at every offset, and across three reads at every pair of
    /// offsets (reads shorter than the text included), with false starts
    /// (`EN` before `END`) on either side of a cut.
    #[test]
    fn a_text_split_across_reads_is_found_at_every_offset() {
        let data = b"xxENxEENDxENEND tail".to_vec();
        for needle in [&b"END"[..], b"N", b"ENEND", b"xEEND", b"absent"] {
            let want = first_match(&data, needle);
            for a in 0..=data.len() {
                let (got, rest) = scan_reads(&data, &[a], needle);
                assert_eq!(
                    got.as_deref(),
                    want.map(|e| &data[..e]),
                    "{needle:?} cut at {a}"
                );
                assert_eq!(&rest[..], &data[want.unwrap_or(0)..], "rest, cut at {a}");
                for b in a..=data.len() {
                    let (got, rest) = scan_reads(&data, &[a, b], needle);
                    assert_eq!(
                        got.as_deref(),
                        want.map(|e| &data[..e]),
                        "{needle:?} cut at {a}, {b}"
                    );
                    assert_eq!(&rest[..], &data[want.unwrap_or(0)..]);
                }
            }
        }
    }

    /// One byte per read: the bytes a match may begin in span many reads.
    #[test]
    fn a_text_over_one_byte_reads_is_found() {
        let data = b"abcabcabdabcabd!".to_vec();
        let cuts: Vec<usize> = (1..data.len()).collect();
        let (got, rest) = scan_reads(&data, &cuts, b"abcabd");
        assert_eq!(got.as_deref(), Some(&b"abcabcabd"[..]));
        assert_eq!(&rest[..], b"abcabd!");
    }

    /// A second `expect` after a match searches what the first left, and a
    /// match found after the bound dropped the oldest bytes takes what is
    /// held, as before.
    #[test]
    fn a_scan_after_a_match_and_after_the_bound() {
        let inbox = Inbox::default();
        let mut find = |b: &[u8]| first_match(b, b"END");
        inbox.push(Bytes::from_static(b"oneENDtwoEN"));
        let mut scan = Scan::new(Some(3));
        assert_eq!(
            &inbox.take_scanned(&mut find, &mut scan).unwrap()[..],
            b"oneEND"
        );
        let mut scan = Scan::new(Some(3));
        assert!(inbox.take_scanned(&mut find, &mut scan).is_none());
        inbox.push(Bytes::from_static(b"D3"));
        assert_eq!(
            &inbox.take_scanned(&mut find, &mut scan).unwrap()[..],
            b"twoEND"
        );
        // Past the bound: the oldest bytes go, the scan goes on.
        let mut scan = Scan::new(Some(3));
        for _ in 0..3 {
            inbox.push(Bytes::from(vec![b'x'; INBOX_MAX / 2]));
            assert!(inbox.take_scanned(&mut find, &mut scan).is_none());
        }
        inbox.push(Bytes::from_static(b"EN"));
        assert!(inbox.take_scanned(&mut find, &mut scan).is_none());
        inbox.push(Bytes::from_static(b"D!"));
        let got = inbox.take_scanned(&mut find, &mut scan).unwrap();
        assert_eq!(got.len(), INBOX_MAX - 1);
        assert!(got.ends_with(b"xxEND"));
        assert_eq!(&inbox.tail(10)[..], b"!");
    }
}
