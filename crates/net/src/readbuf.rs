//! The background reader's buffers. Reads land in one allocation and are
//! split off it as `Bytes` (no copy); a used-up allocation of the largest
//! size goes to a small pool shared by the process, and is read into again
//! once every read split off it was dropped (by the inbox, by the event's
//! printer), so a flood does not fault in fresh pages for every MiB.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use crate::settle::lock;

/// What a [`ReadBuf`] reads from: a tube's wire (`tube::Wire` is one), or
/// anything else that appends the bytes it has to a buffer.
pub(crate) trait Source {
    /// Appends what is there to `buf` (at most `max` bytes), or registers
    /// for a wake-up. `Ok(0)` is end of stream. Cancel-safe: dropping a
    /// pending read loses no bytes.
    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<io::Result<usize>>;
}

/// The background reader's first buffer; each read that fills the room
/// left doubles the next buffer, up to [`READ_MAX`] (a flood is read in
/// large reads, an idle connection holds a small buffer).
const READ_FIRST: usize = 16 * 1024;
/// The largest buffer a background reader reads into.
const READ_MAX: usize = 1024 * 1024;

/// A read kept as a part of its buffer is at least this fraction of the
/// whole allocation (a smaller one is copied out), so nothing kept (an
/// inbox, an event) pins more than this many times its own size. A flood's
/// reads are mostly 64 to 512 KiB (the reader keeps up with the sender),
/// so with 1 MiB buffers few are copied.
const PIN_MAX: usize = 16;

/// How many used-up [`READ_MAX`] allocations the process keeps for
/// readers to read into again: at most this many MiB beyond what events
/// and inboxes hold.
const SPARES: usize = 8;

/// Used-up allocations, oldest first. Each is a handle on the end of its
/// allocation; the reads split off before it may still be alive elsewhere,
/// and the allocation is taken again only when none is.
struct Spares(Mutex<VecDeque<BytesMut>>);

/// The process's spares, shared by every reader.
static SPARE: Spares = Spares::new();

impl Spares {
    const fn new() -> Spares {
        Spares(Mutex::new(VecDeque::new()))
    }

    /// A [`READ_MAX`] buffer: a spare nothing else holds any more (its
    /// pages are mapped already), else a new allocation.
    fn take(&self) -> BytesMut {
        let mut spares = lock(&self.0);
        // `try_reclaim` succeeds only on the last handle of an allocation
        // (no `Bytes` split off it is alive), so a reused buffer never
        // aliases data still held in an inbox or an event. The newest
        // first: its lines are the likeliest to be in a cache still.
        if let Some(i) = spares.iter_mut().rposition(|b| b.try_reclaim(READ_MAX)) {
            if let Some(b) = spares.remove(i) {
                return b;
            }
        }
        drop(spares);
        BytesMut::with_capacity(READ_MAX)
    }

    /// Keeps a used-up [`READ_MAX`] allocation for [`Spares::take`]; the
    /// oldest spare goes when the pool is full.
    fn retire(&self, buf: BytesMut) {
        let old = {
            let mut spares = lock(&self.0);
            let old = (spares.len() >= SPARES).then(|| spares.pop_front());
            spares.push_back(buf);
            old
        };
        drop(old);
    }
}

/// One background reader's buffer: reads land in one allocation, each
/// read split off it as `Bytes` (no copy); a read smaller than a
/// [`PIN_MAX`]th of the allocation is copied out, so that no read kept in
/// an inbox or an event pins a buffer much larger than itself.
#[derive(Default)]
pub(crate) struct ReadBuf {
    /// Where the next read lands (the room left of the allocation).
    buf: BytesMut,
    /// The size of the allocation `buf` is part of.
    alloc: usize,
    /// The size of the next allocation.
    size: usize,
    /// How a read that had taken bytes ended (end of stream, a failure):
    /// said by the next read, after those bytes.
    ended: Option<io::Result<usize>>,
}

impl ReadBuf {
    /// One read: what the wire has now, read until it has no more (or the
    /// buffer is full), so what came while the last read was reported
    /// makes one event and one wake-up of the waiters, not several; empty
    /// at end of stream.
    ///
    /// # Errors
    /// The wire's read failed.
    pub(crate) async fn read<W: Source + ?Sized>(&mut self, wire: &W) -> io::Result<Bytes> {
        if let Some(ended) = self.ended.take() {
            return ended.map(|_| Bytes::new());
        }
        if self.buf.capacity() - self.buf.len() < self.size.max(READ_FIRST) / 4 {
            self.size = self.size.clamp(READ_FIRST, READ_MAX);
            let fresh = if self.size == READ_MAX {
                SPARE.take()
            } else {
                BytesMut::with_capacity(self.size)
            };
            let old = std::mem::replace(&mut self.buf, fresh);
            if self.alloc == READ_MAX {
                SPARE.retire(old);
            }
            self.alloc = self.size;
        }
        let room = self.buf.capacity() - self.buf.len();
        let n = poll_fn(|cx| self.poll_fill(cx, wire)).await?;
        if n == room && self.size < READ_MAX {
            self.size = (self.size * 2).max(READ_FIRST);
        }
        Ok(if n >= self.alloc / PIN_MAX {
            self.buf.split().freeze()
        } else {
            let b = Bytes::copy_from_slice(&self.buf);
            self.buf.clear();
            b
        })
    }
}

impl ReadBuf {
    /// Reads into the room left until the wire would wait or the room is
    /// full. An end met after some bytes is kept for the next read.
    fn poll_fill<W: Source + ?Sized>(
        &mut self,
        cx: &mut Context<'_>,
        wire: &W,
    ) -> Poll<io::Result<usize>> {
        let mut got = 0;
        loop {
            let room = self.buf.capacity() - self.buf.len();
            if room == 0 {
                return Poll::Ready(Ok(got));
            }
            match wire.poll_read_buf(cx, &mut self.buf, room) {
                Poll::Ready(Ok(n)) if n > 0 => got += n,
                Poll::Pending if got == 0 => return Poll::Pending,
                Poll::Pending => return Poll::Ready(Ok(got)),
                end if got == 0 => return end,
                Poll::Ready(end) => {
                    self.ended = Some(end);
                    return Poll::Ready(Ok(got));
                }
            }
        }
    }
}

impl Drop for ReadBuf {
    fn drop(&mut self) {
        if self.alloc == READ_MAX {
            SPARE.retire(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spare is read into again only once nothing split off it is
    /// alive: a read still held (in an inbox, an event) keeps its bytes,
    /// whatever later reads write.
    #[test]
    fn a_spare_is_reused_only_when_no_read_of_it_is_alive() {
        let spares = Spares::new();
        let mut first = BytesMut::with_capacity(READ_MAX);
        first.resize(READ_MAX - 100, b'a');
        let held = first.split().freeze();
        let at = held.as_ptr();
        spares.retire(first);
        // Pinned by `held`: a new allocation, never the held one.
        let mut other = spares.take();
        assert!(!std::ptr::eq(other.as_ptr(), at));
        other.resize(READ_MAX, b'b');
        assert!(held.iter().all(|&c| c == b'a'));
        drop(held);
        // Nothing holds it now: taken again, from its start, whole.
        let again = spares.take();
        assert!(std::ptr::eq(again.as_ptr(), at), "the spare was not reused");
        assert!(again.capacity() >= READ_MAX);
        assert!(again.is_empty());
    }

    /// The pool never holds more than its bound, however many readers
    /// retire buffers.
    #[test]
    fn the_pool_is_bounded() {
        let spares = Spares::new();
        for _ in 0..3 * SPARES {
            let mut b = BytesMut::with_capacity(READ_MAX);
            b.resize(10, 0);
            let _kept = b.split().freeze();
            spares.retire(b);
        }
        assert_eq!(lock(&spares.0).len(), SPARES);
    }

    /// A wire that gives scripted reads: bytes, `Pending` (nothing now),
    /// end of stream or a reset.
    struct Scripted(Mutex<VecDeque<Step>>);

    enum Step {
        Bytes(&'static [u8]),
        Pending,
        Eof,
        Reset,
    }

    impl Source for Scripted {
        fn poll_read_buf(
            &self,
            _cx: &mut Context<'_>,
            buf: &mut BytesMut,
            max: usize,
        ) -> Poll<io::Result<usize>> {
            match lock(&self.0).pop_front() {
                Some(Step::Bytes(b)) => {
                    let n = b.len().min(max);
                    buf.extend_from_slice(&b[..n]);
                    Poll::Ready(Ok(n))
                }
                Some(Step::Pending) => Poll::Pending,
                Some(Step::Eof) | None => Poll::Ready(Ok(0)),
                Some(Step::Reset) => {
                    Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionReset)))
                }
            }
        }
    }

    /// Reads one step at a time as a reader does (a `Pending` step is
    /// polled again, as a wake-up would).
    fn reads(steps: Vec<Step>) -> Vec<io::Result<Bytes>> {
        use std::future::Future;
        let wire = Scripted(Mutex::new(steps.into()));
        let mut buf = ReadBuf::default();
        let mut out = Vec::new();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..10 {
            let mut read = std::pin::pin!(buf.read(&wire));
            let got = loop {
                if let Poll::Ready(r) = read.as_mut().poll(&mut cx) {
                    break r;
                }
            };
            let end = !matches!(&got, Ok(b) if !b.is_empty());
            out.push(got);
            if end {
                break;
            }
        }
        out
    }

    /// What came while a read was reported is one read, up to the moment
    /// the wire has nothing; an end of stream or a reset met after bytes
    /// comes after them, never instead of them.
    #[test]
    fn a_read_takes_what_is_there_and_an_end_comes_after_the_bytes() {
        let got = reads(vec![
            Step::Bytes(b"ab"),
            Step::Bytes(b"cd"),
            Step::Pending,
            Step::Bytes(b"e"),
            Step::Reset,
        ]);
        let shown: Vec<String> = got
            .iter()
            .map(|r| match r {
                Ok(b) => String::from_utf8_lossy(b).into_owned(),
                Err(e) => format!("{:?}", e.kind()),
            })
            .collect();
        assert_eq!(shown, ["abcd", "e", "ConnectionReset"]);
        let got = reads(vec![Step::Bytes(b"xy"), Step::Eof]);
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0].as_ref().unwrap()[..], b"xy");
        assert!(got[1].as_ref().unwrap().is_empty());
    }
}
