//! The data phase on a thread of its own (issue 11).
//!
//! Driving a file's bytes through tokio chunk by chunk (a `spawn_blocking`
//! round trip for every 64 KiB read or write, a task wake-up for every
//! socket read) spent more time handing work between threads than moving
//! bytes. So once the first messages are exchanged, a transfer over a
//! kernel socket ([`Transport::socket_fd`]) moves its data on one thread of
//! its own, with plain system calls on a duplicate of the socket's
//! descriptor and pieces of [`BIG`] bytes:
//!
//! - sending: `pread` a piece of the file, hash it, then `sendfile` the
//!   same range (the kernel hands page-cache pages to the socket: no copy
//!   through this process), looking for the peer's early verdict between
//!   pieces;
//! - receiving: `recv`, `write` to the working file, and hand the piece
//!   to a hash thread beside this one ([`super::hashing`]).
//!
//! The socket stays non-blocking: the thread waits in `poll(2)` under the
//! connection's idle limit and rate floor (the same [`Cut`]s as the async
//! path), and on a wake-up socket the async side rings when it is dropped
//! (a cancelled command, Ctrl-C, a file server closed): the thread then
//! stops at its next step and closes its duplicate. Progress is a counter
//! the thread moves and the async side reads every [`TICK`]. Streams
//! without a descriptor (in-memory pipes in tests) keep the async path.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream as Bell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::sendfile::sendfile64;
use nix::sys::socket::{recv, MsgFlags};
use socklab_frame::{Reply, MAX_MESSAGE_LEN};
use tokio::io::{AsyncRead, AsyncWrite};

use super::hashing::Feeder;
use super::wire::{BodyError, Cut, Floor, SendError, Slow, Waited};

/// The largest piece of a file the transfer thread sends or receives at
/// once (1 MiB): large enough that system calls are few, small enough that
/// a transfer's memory stays flat (a receiver has at most three such
/// buffers in flight, see [`super::hashing`]).
pub(super) const BIG: usize = 1024 * 1024;

/// The highest low-water mark the receiving thread sets on its socket
/// (256 KiB): the kernel wakes it (and tokio's reactor, which watches the
/// same socket) about once per this many bytes instead of once per packet.
/// Measured on a 1 GiB upload over loopback: about 6,000 reactor wake-ups
/// without it.
const LOWAT: usize = 256 * 1024;

/// The piece the sender reads and hashes at once (256 KiB): small enough
/// to stay in the core's cache between the read and the hash.
const HOT: usize = 256 * 1024;

/// The longest the receiving thread waits with its low-water mark above
/// one byte before it lowers the mark (see [`Link::recv_some`]).
const MARK_WAIT: Duration = Duration::from_millis(100);

/// How often the async side reports the thread's progress.
const TICK: Duration = Duration::from_millis(100);

/// A byte stream a transfer runs over. A kernel socket gives its
/// descriptor, and the transfer's data then moves on a thread of its own
/// with plain system calls; any other stream is driven through tokio.
pub trait Transport: AsyncRead + AsyncWrite + Unpin {
    /// The descriptor of the kernel socket under the stream, if there is
    /// one (`None`: the data is moved through `AsyncRead`/`AsyncWrite`).
    fn socket_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

impl Transport for tokio::net::TcpStream {
    fn socket_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

impl Transport for tokio::net::UnixStream {
    fn socket_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

impl Transport for tokio::io::DuplexStream {}

/// The connection's limits and counters, handed to the thread and back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meter {
    /// How long one step may make no progress.
    pub idle: Duration,
    /// The rate floor and its current window (end, bytes moved in it).
    pub pace: Option<(Floor, Instant, u64)>,
    /// Bytes sent on the connection so far.
    pub sent: u64,
    /// Bytes received on the connection so far.
    pub received: u64,
}

/// The thread's end of a connection: a duplicate of the socket, the
/// connection's meter, the stop flag and the progress counter.
pub(super) struct Link {
    sock: OwnedFd,
    meter: Meter,
    stop: Arc<AtomicBool>,
    bell: Bell,
    done: Arc<AtomicU64>,
    /// Bytes read from the peer that are not data (its early reply),
    /// handed back to the connection's buffer.
    got: Vec<u8>,
    /// The most bytes `got` may hold.
    room: usize,
    /// The socket's low-water mark for reading, as last set.
    lowat: usize,
}

impl Drop for Link {
    /// Puts the low-water mark back to one byte before the connection goes
    /// back to tokio: its reads of the next message (smaller than the
    /// mark) must be signalled.
    fn drop(&mut self) {
        self.set_lowat(1);
    }
}

/// What the thread hands back to the connection.
pub(super) struct Back {
    pub meter: Meter,
    pub got: Vec<u8>,
}

/// What the async side keeps while the thread runs: dropping it (the
/// transfer's future was dropped) stops the thread.
struct Running {
    stop: Arc<AtomicBool>,
    bell: Bell,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Best effort: a thread that already ended has closed its end.
        let _ = (&self.bell).write(&[1]);
    }
}

/// The descriptor's duplicate and the wake-up pair for a [`Link`]; `None`
/// if either cannot be made (the async path is taken then).
pub(super) fn link(fd: BorrowedFd<'_>, meter: Meter, room: usize) -> Option<(Link, Bell)> {
    let sock = fd.try_clone_to_owned().ok()?;
    let (ring, bell) = Bell::pair().ok()?;
    ring.set_nonblocking(true).ok()?;
    bell.set_nonblocking(true).ok()?;
    let link = Link {
        sock,
        meter,
        stop: Arc::new(AtomicBool::new(false)),
        bell,
        done: Arc::new(AtomicU64::new(0)),
        got: Vec::new(),
        room: room.min(MAX_MESSAGE_LEN * 2),
        lowat: 1,
    };
    Some((link, ring))
}

/// Runs `job` on a thread of its own with `link`; `progress(done)` is
/// called every [`TICK`] with what the job last reported
/// ([`Link::progress`], `from` until it reports), and once at the end. Returns what the job
/// returned and what the link hands back, or the error of a thread that
/// could not start or died.
pub(super) async fn run<T: Send + 'static>(
    (link, ring): (Link, Bell),
    from: u64,
    progress: &mut impl FnMut(u64),
    job: impl FnOnce(&mut Link) -> T + Send + 'static,
) -> io::Result<(T, Back)> {
    let done = Arc::clone(&link.done);
    done.store(from, Ordering::Relaxed);
    let _running = Running {
        stop: Arc::clone(&link.stop),
        bell: ring,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("socklab-transfer".to_owned())
        .spawn(move || {
            let mut link = link;
            let result = job(&mut link);
            let back = Back {
                meter: link.meter,
                got: std::mem::take(&mut link.got),
            };
            // The duplicate closes before the async side goes on: its
            // shutdown or close is then the connection's.
            drop(link);
            let _ = tx.send((result, back));
        })?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(rx);
    let ended = loop {
        tokio::select! {
            ended = &mut rx => break ended,
            _ = tick.tick() => progress(done.load(Ordering::Relaxed)),
        }
    };
    let ended = ended.map_err(|_| io::Error::other("the transfer thread died"))?;
    progress(done.load(Ordering::Relaxed));
    Ok(ended)
}

/// A stopped transfer (its future was dropped): the thread gives up.
fn stopped() -> Cut {
    Cut::Io(io::Error::new(
        io::ErrorKind::Interrupted,
        "the transfer was stopped",
    ))
}

impl Link {
    /// Starts the bytes read from the peer with `bytes` (the beginning of
    /// a reply the connection had read already).
    pub(super) fn seed(&mut self, bytes: &[u8]) {
        self.got.extend_from_slice(bytes);
    }

    /// Reports progress (bytes the peer holds or this side stored).
    pub(super) fn progress(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }

    /// What has moved, for a wait that gave up after `after`.
    fn waited(&self, after: Duration) -> Waited {
        Waited {
            after,
            sent: self.meter.sent,
            received: self.meter.received,
        }
    }

    /// Counts bytes that moved.
    fn moved(&mut self, n: usize, sent: bool) {
        let n = n as u64;
        if sent {
            self.meter.sent += n;
        } else {
            self.meter.received += n;
        }
        if let Some((_, _, moved)) = &mut self.meter.pace {
            *moved += n;
        }
    }

    /// Checks the stop flag and the rate floor (as the async path's
    /// `check_pace`).
    fn check(&mut self) -> Result<(), Cut> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        let now = Instant::now();
        if let Some((floor, end, moved)) = &mut self.meter.pace {
            if now >= *end {
                if *moved < floor.bytes {
                    return Err(Cut::TooSlow(Slow {
                        moved: *moved,
                        floor: *floor,
                    }));
                }
                *moved = 0;
                *end = now + floor.window;
            }
        }
        Ok(())
    }

    /// Waits until the socket is ready for `want` (or has an error or a
    /// hang-up), at most until `idle_end`; returns what it is ready for.
    fn wait(&mut self, want: PollFlags, idle_end: Instant) -> Result<PollFlags, Cut> {
        loop {
            self.check()?;
            if Instant::now() >= idle_end {
                return Err(Cut::Timeout(self.waited(self.meter.idle)));
            }
            if let Some(ready) = self.poll_once(want, idle_end)? {
                return Ok(ready);
            }
        }
    }

    /// One `poll` for `want`, at most until `idle_end` or the end of the
    /// rate floor's window: what the socket is ready for, or `None` (the
    /// time is up, or the bell rang).
    fn poll_once(&mut self, want: PollFlags, idle_end: Instant) -> Result<Option<PollFlags>, Cut> {
        let now = Instant::now();
        let until = self
            .meter
            .pace
            .map_or(idle_end, |(_, end, _)| end.min(idle_end));
        let left = until.saturating_duration_since(now) + Duration::from_millis(1);
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [
            PollFd::new(self.sock.as_fd(), want),
            PollFd::new(self.bell.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Cut::Io(e.into())),
        }
        let [sock, bell] = &fds;
        if bell.revents().is_some_and(|r| !r.is_empty()) {
            let mut drain = [0u8; 16];
            let _ = (&self.bell).read(&mut drain);
            return Ok(None);
        }
        Ok(sock.revents().filter(|r| !r.is_empty()))
    }

    /// Sets the socket's low-water mark for reading (`SO_RCVLOWAT`): the
    /// kernel then signals it readable, to `poll` here and to tokio's
    /// reactor, only once `n` bytes wait, instead of at every packet.
    /// Best effort: a socket that refuses it is signalled as before.
    fn set_lowat(&mut self, n: usize) {
        let n = n.clamp(1, LOWAT);
        if n == self.lowat {
            return;
        }
        let value = libc::c_int::try_from(n).unwrap_or(1);
        // SAFETY: SO_RCVLOWAT takes an int; `value` lives across the call,
        // and the descriptor is this link's own open socket. Neither nix
        // nor socket2 wraps this option.
        unsafe {
            libc::setsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                std::ptr::from_ref(&value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        self.lowat = n;
    }

    /// Receives up to `buf.len()` bytes: at least one, or the end of
    /// stream ([`Cut::Eof`]), a failure, or a wait that gave up.
    ///
    /// While it waits the socket's low-water mark is `buf.len()` (at most
    /// [`LOWAT`]): callers ask for no more than the data still due, so the
    /// mark never holds back the last bytes of a known length, and every
    /// wait that ends without readiness (the idle limit, the end of a rate
    /// window) tries a read before it judges, so bytes below the mark are
    /// never taken for silence.
    pub(super) fn recv_some(&mut self, buf: &mut [u8]) -> Result<usize, Cut> {
        self.set_lowat(buf.len());
        let idle_end = Instant::now() + self.meter.idle;
        loop {
            // A stream that never runs dry never reaches the full check
            // below: the stop flag is looked at before every read.
            if self.stop.load(Ordering::Relaxed) {
                return Err(stopped());
            }
            match recv(self.sock.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return Err(Cut::Eof),
                Ok(n) => {
                    self.moved(n, false);
                    return Ok(n);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(Cut::Io(e.into())),
            }
            self.check()?;
            if Instant::now() >= idle_end {
                return Err(Cut::Timeout(self.waited(self.meter.idle)));
            }
            // Above one byte, the mark may hold back a trickle: a wait is
            // then short, and one that ends without readiness drops the
            // mark to one byte for the rest of this call, so a slow peer
            // is read as its bytes come (the next call raises it again).
            let until = if self.lowat > 1 {
                idle_end.min(Instant::now() + MARK_WAIT)
            } else {
                idle_end
            };
            if self.poll_once(PollFlags::POLLIN, until)?.is_none() {
                self.set_lowat(1);
            }
        }
    }

    /// Sends bytes `at .. at + len` of `file` (`sendfile`). With `watch`,
    /// the peer's reply is looked for meanwhile ([`Link::look_for_reply`]).
    fn send_range(
        &mut self,
        file: &File,
        at: u64,
        len: usize,
        watch: bool,
    ) -> Result<(), BodyError> {
        let mut off = i64::try_from(at).map_err(|_| BodyError::Shrank { at })?;
        let mut left = len;
        let mut idle_end = Instant::now() + self.meter.idle;
        let cut = |c: Cut| BodyError::Send(SendError::Cut(c));
        while left > 0 {
            self.check().map_err(cut)?;
            match sendfile64(&self.sock, file, Some(&mut off), left) {
                Ok(0) => {
                    return Err(BodyError::Shrank {
                        at: u64::try_from(off).unwrap_or(at),
                    })
                }
                Ok(n) => {
                    self.moved(n, true);
                    left = left.saturating_sub(n);
                    idle_end = Instant::now() + self.meter.idle;
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    let want = if watch {
                        PollFlags::POLLOUT | PollFlags::POLLIN
                    } else {
                        PollFlags::POLLOUT
                    };
                    let ready = self.wait(want, idle_end).map_err(cut)?;
                    if watch && !(ready & !PollFlags::POLLOUT).is_empty() {
                        self.look_for_reply()?;
                    }
                }
                Err(e) => return Err(cut(Cut::Io(e.into()))),
            }
        }
        if watch {
            self.look_for_reply()?;
        }
        Ok(())
    }

    /// Reads what the peer sent while this side sends data, without
    /// waiting: a whole reply is its verdict before the end (it refused
    /// mid-stream), the end of stream a cut, anything else that is not a
    /// reply a protocol error.
    fn look_for_reply(&mut self) -> Result<(), BodyError> {
        let mut piece = [0u8; 2048];
        let room = self.room.saturating_sub(self.got.len()).min(piece.len());
        if room == 0 {
            // A reply that outgrew the room without being whole is none
            // (left unread, it would keep the socket readable and the
            // thread spinning until the idle limit).
            if !self.got.is_empty() {
                return Err(BodyError::Send(SendError::Wire(
                    socklab_frame::WireError::ReasonTooLong {
                        len: self.got.len(),
                    },
                )));
            }
            return Ok(());
        }
        let buf = piece.get_mut(..room).unwrap_or_default();
        match recv(self.sock.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => Err(BodyError::Send(SendError::Cut(Cut::Eof))),
            Ok(n) => {
                self.moved(n, false);
                self.got.extend_from_slice(buf.get(..n).unwrap_or_default());
                match Reply::decode(&self.got) {
                    Ok(Some((reply, used))) => {
                        self.got.drain(..used.min(self.got.len()));
                        Err(BodyError::Send(SendError::Early(reply)))
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(BodyError::Send(SendError::Wire(e))),
                }
            }
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(()),
            Err(e) => Err(BodyError::Send(SendError::Cut(Cut::Io(e.into())))),
        }
    }
}

/// Where a file's data ends for [`send_file`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Until {
    /// At this size: a file that ends earlier shrank.
    Size(u64),
    /// At the file's end, whenever it comes (raw uploads).
    Eof,
}

/// On the transfer thread: hashes bytes `0 .. start` of `file`, then
/// hashes and sends `start ..` up to `until`, reporting progress as bytes
/// sent plus `start`. With `watch`, the peer's early reply stops it.
/// Returns the hasher fed the whole file and where it ended.
pub(super) fn send_file(
    link: &mut Link,
    file: &File,
    start: u64,
    until: Until,
    watch: bool,
) -> Result<(blake3::Hasher, u64), BodyError> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; HOT];
    let mut pos = 0u64;
    advise_sequential(file);
    link.progress(start);
    loop {
        // Hashing the part a resume skips sends nothing, so `send_range`
        // does not look at the stop flag meanwhile: look here, or a
        // cancelled resume of a big file reads the whole prefix first.
        if pos < start && link.stop.load(Ordering::Relaxed) {
            return Err(BodyError::Send(SendError::Cut(stopped())));
        }
        let end = match until {
            Until::Size(size) if pos >= size => break,
            Until::Size(size) => {
                if pos < start {
                    start
                } else {
                    size
                }
            }
            Until::Eof if pos < start => start,
            Until::Eof => u64::MAX,
        };
        let want = usize::try_from(end - pos).unwrap_or(BIG).min(BIG);
        let n = read_and_hash(file, &mut buf, pos, want, &mut hasher)?;
        if n == 0 {
            match until {
                Until::Eof if pos >= start => break,
                _ => return Err(BodyError::Shrank { at: pos }),
            }
        }
        if pos >= start {
            link.send_range(file, pos, n, watch)?;
            link.progress(pos + n as u64);
        }
        pos += n as u64;
    }
    Ok((hasher, pos))
}

/// Reads up to `want` bytes of `file` at `at` and feeds them to `hasher`,
/// [`HOT`] bytes at a time through `buf`: each piece is hashed while the
/// read has just left it in the core's cache (measured: a 1 MiB buffer
/// spilled out of the 1 MiB L2 and made the sender's hashing dearer).
/// Returns how many bytes it read: fewer than `want` only at the file's
/// end.
fn read_and_hash(
    file: &File,
    buf: &mut [u8],
    at: u64,
    want: usize,
    hasher: &mut blake3::Hasher,
) -> Result<usize, BodyError> {
    let mut done = 0;
    while done < want {
        let len = (want - done).min(buf.len());
        let piece = buf.get_mut(..len).unwrap_or_default();
        let n = loop {
            match file.read_at(piece, at + done as u64) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other.map_err(BodyError::File)?,
            }
        };
        if n == 0 {
            break;
        }
        hasher.update(piece.get(..n).unwrap_or_default());
        done += n;
    }
    Ok(done)
}

/// How the transfer thread's receiving stopped early.
#[derive(Debug)]
pub(super) enum RecvStop {
    /// The connection ended, failed or stalled.
    Cut(Cut),
    /// Writing the working file failed (the bytes of that read may be
    /// written in part and are not hashed), or the hash thread died:
    /// nothing received may be kept.
    Write(io::Error),
}

/// On the transfer thread: receives data into `file` at its position and
/// feeds it to `hasher`, from byte `pos` until byte `end` (`None`: until
/// the end of stream, which is then no error), reporting progress as the
/// bytes held. Returns where the data ended, and why it ended early.
///
/// The hashing runs on a thread beside this one ([`Feeder`]); when this
/// returns, `hasher` has been fed every byte written, in order.
pub(super) fn receive_into(
    link: &mut Link,
    file: &File,
    hasher: &mut blake3::Hasher,
    pos: u64,
    end: Option<u64>,
) -> (u64, Option<RecvStop>) {
    // A clone goes to the thread: one that cannot start leaves `hasher`
    // as it was (a resume's hash of the bytes held), to go on here.
    let Some(mut feeder) = Feeder::start(hasher.clone(), BIG) else {
        return receive_hashing_here(link, file, hasher, pos, end);
    };
    let (pos, stop) = receive_fed(link, file, &mut feeder, pos, end);
    match feeder.finish() {
        Some(fed) => {
            *hasher = fed;
            (pos, stop)
        }
        // The hash of what was written is lost: nothing may be kept for
        // a resume, so this ends as a failed write does.
        None => (
            pos,
            Some(RecvStop::Write(io::Error::other("the hash thread died"))),
        ),
    }
}

/// [`receive_into`]'s loop, handing each piece written to `feeder`.
fn receive_fed(
    link: &mut Link,
    file: &File,
    feeder: &mut Feeder,
    mut pos: u64,
    end: Option<u64>,
) -> (u64, Option<RecvStop>) {
    link.progress(pos);
    loop {
        let Some(want) = piece_due(pos, end) else {
            return (pos, None);
        };
        let mut buf = feeder.buffer();
        let piece = buf.get_mut(..want).unwrap_or_default();
        let n = match link.recv_some(piece) {
            Ok(n) => n,
            Err(cut) => {
                feeder.unused(buf);
                return match cut {
                    Cut::Eof if end.is_none() => (pos, None),
                    cut => (pos, Some(RecvStop::Cut(cut))),
                };
            }
        };
        if let Err(e) = (&*file).write_all(buf.get(..n).unwrap_or_default()) {
            feeder.unused(buf);
            return (pos, Some(RecvStop::Write(e)));
        }
        feeder.feed(buf, n);
        pos += n as u64;
        link.progress(pos);
    }
}

/// How many bytes the next receive may ask for at `pos`, with the data
/// ending at `end` (`None`: at the end of stream); `None` once it ended.
fn piece_due(pos: u64, end: Option<u64>) -> Option<usize> {
    match end {
        Some(end) if pos >= end => None,
        Some(end) => Some(usize::try_from(end - pos).unwrap_or(BIG).min(BIG)),
        None => Some(BIG),
    }
}

/// [`receive_into`] hashing on this thread (no hash thread could start).
fn receive_hashing_here(
    link: &mut Link,
    file: &File,
    hasher: &mut blake3::Hasher,
    mut pos: u64,
    end: Option<u64>,
) -> (u64, Option<RecvStop>) {
    let mut buf = vec![0; BIG];
    link.progress(pos);
    loop {
        let Some(want) = piece_due(pos, end) else {
            return (pos, None);
        };
        let piece = buf.get_mut(..want).unwrap_or_default();
        let n = match link.recv_some(piece) {
            Ok(n) => n,
            Err(Cut::Eof) if end.is_none() => return (pos, None),
            Err(cut) => return (pos, Some(RecvStop::Cut(cut))),
        };
        let data = piece.get(..n).unwrap_or_default();
        if let Err(e) = (&*file).write_all(data) {
            return (pos, Some(RecvStop::Write(e)));
        }
        hasher.update(data);
        pos += n as u64;
        link.progress(pos);
    }
}

/// Tells the kernel the file is read from start to end (more read-ahead).
/// Only advice: a file system that ignores it changes nothing.
fn advise_sequential(file: &File) {
    let _ = nix::fcntl::posix_fadvise(
        file,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL,
    );
}
