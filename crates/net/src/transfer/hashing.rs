//! BLAKE3 beside the receiving thread (issue 11).
//!
//! The receiving end of a transfer does three passes over every byte:
//! the kernel copies it out of the socket, the kernel copies it into the
//! file, and BLAKE3 reads it. Done one after the other on one thread, the
//! hash stood on the transfer's critical path: measured on a 2-core
//! machine, the receiver spent about 1.05 s of CPU per GiB against socat's
//! 0.8 s, and without the hash it kept pace with socat. So the receiving
//! thread hands each piece, once written, to a [`Feeder`]: a thread of its
//! own that hashes the pieces in the order they came and hands their
//! buffers back for the next reads. The work is the same; it now runs
//! beside the copies instead of after them.
//!
//! Memory stays flat: the pieces in flight are at most [`DEPTH`] buffers
//! of the size the caller asks for. A hash thread that cannot be started
//! ([`Feeder::start`] gives `None`) leaves the caller hashing on its own
//! thread with its own hasher (it hands the thread a clone).

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// How many buffers a transfer may have in flight: one being filled, the
/// others queued for or being hashed.
const DEPTH: usize = 3;

/// A BLAKE3 hasher on a thread of its own, fed whole pieces in order.
pub(super) struct Feeder {
    /// Pieces to hash (the buffer and how many of its bytes count).
    queue: SyncSender<(Vec<u8>, usize)>,
    /// Buffers the hash thread is done with.
    back: Receiver<Vec<u8>>,
    /// Buffers free for the next read.
    spare: Vec<Vec<u8>>,
    /// How many buffers exist (at most [`DEPTH`]).
    made: usize,
    /// The size of each buffer.
    size: usize,
    thread: JoinHandle<blake3::Hasher>,
}

impl Feeder {
    /// Starts a hash thread that goes on from `hasher`, handing out
    /// buffers of `size` bytes; `None` if the thread cannot start.
    pub(super) fn start(hasher: blake3::Hasher, size: usize) -> Option<Feeder> {
        let (queue, pieces) = mpsc::sync_channel::<(Vec<u8>, usize)>(DEPTH);
        let (give_back, back) = mpsc::sync_channel::<Vec<u8>>(DEPTH);
        let thread = std::thread::Builder::new()
            .name("socklab-hash".to_owned())
            .spawn(move || {
                let mut hasher = hasher;
                for (buf, n) in pieces {
                    hasher.update(buf.get(..n).unwrap_or_default());
                    // The receiving side may be gone (it stopped early):
                    // the buffer is then simply dropped.
                    let _ = give_back.try_send(buf);
                }
                hasher
            })
            .ok()?;
        Some(Feeder {
            queue,
            back,
            spare: Vec::new(),
            made: 0,
            size,
            thread,
        })
    }

    /// A buffer for the next read: a spare one, a new one while fewer
    /// than [`DEPTH`] exist, else the next the hash thread hands back.
    pub(super) fn buffer(&mut self) -> Vec<u8> {
        if let Some(buf) = self.spare.pop() {
            return buf;
        }
        if let Ok(buf) = self.back.try_recv() {
            return buf;
        }
        if self.made < DEPTH {
            self.made += 1;
            return vec![0; self.size];
        }
        // Hashing is faster than the copies, so this wait is short; a
        // hash thread that died hands nothing back: a fresh buffer then
        // keeps the caller going, and `finish` reports the death.
        self.back.recv().unwrap_or_else(|_| vec![0; self.size])
    }

    /// Hands the first `n` bytes of `buf` to the hash thread.
    pub(super) fn feed(&mut self, buf: Vec<u8>, n: usize) {
        if n == 0 {
            self.spare.push(buf);
            return;
        }
        // A send fails only if the hash thread died; `finish` says so.
        let _ = self.queue.send((buf, n));
    }

    /// Gives a buffer back unused.
    pub(super) fn unused(&mut self, buf: Vec<u8>) {
        self.spare.push(buf);
    }

    /// Waits until every piece fed is hashed; the hasher, fed everything
    /// in order, or `None` if the hash thread died.
    pub(super) fn finish(self) -> Option<blake3::Hasher> {
        drop(self.queue);
        self.thread.join().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash of pieces fed through the thread is the hash of the bytes
    /// in order, whatever the piece sizes and however many buffers cycle.
    #[test]
    fn pieces_hashed_on_the_thread_hash_as_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut prefix = blake3::Hasher::new();
        prefix.update(b"resumed prefix");
        let mut feeder = Feeder::start(prefix, 4096).expect("a thread starts");
        let mut at = 0;
        for step in [1usize, 4096, 0, 17, 4000, 4096, 3].iter().cycle() {
            if at >= data.len() {
                break;
            }
            let mut buf = feeder.buffer();
            assert_eq!(buf.len(), 4096);
            let n = (*step).min(data.len() - at);
            buf[..n].copy_from_slice(&data[at..at + n]);
            feeder.feed(buf, n);
            at += n;
        }
        let got = feeder.finish().expect("the thread ends");
        let mut want = blake3::Hasher::new();
        want.update(b"resumed prefix");
        want.update(&data);
        assert_eq!(got.finalize(), want.finalize());
    }
}
