//! One connection speaking the protocol: messages read through a bounded
//! buffer, data counted, and data sent with an ear open for the peer's
//! early verdict.

use std::io;
use std::time::Duration;

use socklab_frame::{Reply, Status, WireError, DIGEST_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::{timeout, timeout_at, Instant};

use super::pump::{self, Meter, Transport, Until};
use super::store::DiskFile;
use super::CHUNK;

/// How long a side that refused waits, at most, for the peer to close after
/// its reply (so the reply is not destroyed by a reset), and how long a
/// sender whose write failed looks for the reply that explains why.
pub(super) const LINGER: Duration = Duration::from_secs(2);

/// The most bytes read and discarded while lingering.
const LINGER_BYTES: usize = 1 << 20;

/// How a connection stopped delivering.
#[derive(Debug)]
pub(super) enum Cut {
    /// The peer closed its sending side (end of stream).
    Eof,
    /// A read or write failed (reset, broken pipe).
    Io(io::Error),
    /// Nothing moved for this long.
    Timeout(Waited),
    /// Bytes moved, but fewer than the rate floor asks for in a window: a
    /// trickle, which cannot hold the connection by sending a byte now and
    /// then.
    TooSlow(Slow),
}

/// What happened on a connection before a wait gave up: how long it
/// waited and what had moved by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Waited {
    /// How long the last wait lasted.
    pub after: Duration,
    /// Bytes this side had sent on the connection.
    pub sent: u64,
    /// Bytes this side had received on the connection.
    pub received: u64,
}

/// A connection cut for being slower than its rate floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slow {
    /// Bytes that moved in the last window.
    pub moved: u64,
    /// The floor: bytes due per window.
    pub floor: Floor,
}

/// A minimum rate: at least `bytes` must move (either way) in every
/// `window`, or the connection is cut ([`Cut::TooSlow`]). Unlike the idle
/// limit, a byte now and then does not restart it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floor {
    /// Bytes due per window.
    pub bytes: u64,
    /// The window.
    pub window: Duration,
}

/// The current window of a [`Floor`].
#[derive(Debug)]
struct Pace {
    floor: Floor,
    end: Instant,
    moved: u64,
}

/// Why no message could be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The bytes are not a valid message of the expected kind.
    Wire(WireError),
    /// The connection ended or failed first.
    Cut(Cut),
}

/// Why sending data stopped.
#[derive(Debug)]
pub(super) enum SendError {
    /// The connection ended or failed.
    Cut(Cut),
    /// The peer sent its verdict before the data was all sent (it refused
    /// mid-stream: no space, a failed write).
    Early(Reply),
    /// The peer sent something that is not a reply.
    Wire(WireError),
}

/// Why sending a file's bytes stopped.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Reading the local file failed.
    File(io::Error),
    /// The local file ended before its size: it shrank while being sent.
    Shrank {
        /// Where it ended.
        at: u64,
    },
    /// The connection failed or the peer refused.
    Send(SendError),
}

/// A `socklab-frame` decode function: a message and the bytes it used,
/// `None` for "read more".
pub(super) type Decoder<T> = fn(&[u8]) -> Result<Option<(T, usize)>, WireError>;

/// A connection's two halves and a read buffer of [`CHUNK`] bytes.
pub(super) struct Conn<S> {
    rd: ReadHalf<S>,
    wr: WriteHalf<S>,
    buf: Box<[u8]>,
    lo: usize,
    hi: usize,
    idle: Duration,
    /// Bytes written to the peer so far.
    sent: u64,
    /// Bytes read from the peer so far.
    received: u64,
    /// The rate floor's window, once the floor is on.
    pace: Option<Pace>,
    /// A duplicate of the kernel socket's descriptor, for the data phase
    /// on a thread of its own (`None`: the stream has none).
    fd: Option<std::os::fd::OwnedFd>,
}

/// The buffer a connection starts with: enough for any message
/// (`MAX_MESSAGE_LEN`), so a client still in its first message costs
/// little. [`Conn::grow`] makes it [`CHUNK`] bytes for the data.
const SMALL_BUF: usize = 2048;

/// One step of [`Conn::send_watching`].
enum Step {
    Read(io::Result<usize>),
    Wrote(Result<io::Result<usize>, tokio::time::error::Elapsed>),
}

impl<S: Transport> Conn<S> {
    /// Wraps a connected stream; every single read or write that makes no
    /// progress for `idle` fails with [`Cut::Timeout`]. The data of a
    /// kernel socket moves on a thread of its own ([`pump`]).
    pub(super) fn open(stream: S, idle: Duration) -> Conn<S> {
        let fd = stream
            .socket_fd()
            .and_then(|fd| fd.try_clone_to_owned().ok());
        let mut conn = Conn::new(stream, idle);
        conn.fd = fd;
        conn
    }
}

impl<S: AsyncRead + AsyncWrite> Conn<S> {
    /// Wraps a connected stream; every single read or write that makes no
    /// progress for `idle` fails with [`Cut::Timeout`].
    pub(super) fn new(stream: S, idle: Duration) -> Conn<S> {
        let (rd, wr) = tokio::io::split(stream);
        Conn {
            fd: None,
            rd,
            wr,
            buf: vec![0; SMALL_BUF].into_boxed_slice(),
            lo: 0,
            hi: 0,
            idle,
            sent: 0,
            received: 0,
            pace: None,
        }
    }

    /// Makes the read buffer [`CHUNK`] bytes (for the data phase).
    pub(super) fn grow(&mut self) {
        if self.buf.len() < CHUNK {
            let mut buf = vec![0; CHUNK].into_boxed_slice();
            let pending = self.hi - self.lo;
            if let (Some(to), Some(from)) = (buf.get_mut(..pending), self.buf.get(self.lo..self.hi))
            {
                to.copy_from_slice(from);
            }
            self.buf = buf;
            self.lo = 0;
            self.hi = pending;
        }
    }

    /// Turns on a rate floor from now on (`None`: off).
    pub(super) fn set_floor(&mut self, floor: Option<Floor>) {
        self.pace = floor.map(|floor| Pace {
            floor,
            end: Instant::now() + floor.window,
            moved: 0,
        });
    }

    /// What has moved so far, for a wait of `after` that gave up.
    pub(super) fn waited(&self, after: Duration) -> Waited {
        Waited {
            after,
            sent: self.sent,
            received: self.received,
        }
    }

    /// The connection for the transfer thread ([`pump::link`]), if the
    /// stream is a kernel socket; nothing pending must be left unread.
    pub(super) fn link(&mut self) -> Option<(pump::Link, std::os::unix::net::UnixStream)> {
        use std::os::fd::AsFd;
        self.make_room();
        let room = self.buf.len() - self.hi;
        let meter = Meter {
            idle: self.idle,
            pace: self
                .pace
                .as_ref()
                .map(|p| (p.floor, p.end.into_std(), p.moved)),
            sent: self.sent,
            received: self.received,
        };
        pump::link(self.fd.as_ref()?.as_fd(), meter, room)
    }

    /// [`Conn::link`] for a sender: the bytes read and not yet used (the
    /// beginning of the peer's reply) go to the thread, which reads the
    /// rest; they stay here if no thread can be had.
    pub(super) fn link_with_pending(
        &mut self,
    ) -> Option<(pump::Link, std::os::unix::net::UnixStream)> {
        let pending = self.pending().to_vec();
        self.consume(pending.len());
        let link = self.link();
        match link {
            Some((mut link, ring)) => {
                link.seed(&pending);
                Some((link, ring))
            }
            None => {
                self.make_room();
                let room = self.buf.get_mut(self.hi..).unwrap_or_default();
                let n = pending.len().min(room.len());
                if let (Some(to), Some(from)) = (room.get_mut(..n), pending.get(..n)) {
                    to.copy_from_slice(from);
                }
                self.hi += n;
                None
            }
        }
    }

    /// Takes back what the transfer thread hands back: its counters, its
    /// window of the rate floor, and bytes it read that are not data.
    pub(super) fn take_back(&mut self, back: pump::Back) {
        let m = back.meter;
        self.sent = m.sent;
        self.received = m.received;
        self.pace = m.pace.map(|(floor, end, moved)| Pace {
            floor,
            end: Instant::from_std(end),
            moved,
        });
        self.make_room();
        let room = self.buf.get_mut(self.hi..).unwrap_or_default();
        let n = back.got.len().min(room.len());
        if let (Some(to), Some(from)) = (room.get_mut(..n), back.got.get(..n)) {
            to.copy_from_slice(from);
        }
        self.hi += n;
    }

    /// Checks the rate floor: at the end of a window, cuts a connection
    /// that moved too little in it, else starts the next window.
    fn check_pace(&mut self) -> Result<(), Cut> {
        let now = Instant::now();
        if let Some(p) = &mut self.pace {
            if now >= p.end {
                if p.moved < p.floor.bytes {
                    return Err(Cut::TooSlow(Slow {
                        moved: p.moved,
                        floor: p.floor,
                    }));
                }
                p.moved = 0;
                p.end = now + p.floor.window;
            }
        }
        Ok(())
    }

    /// When the current wait must end: `idle_end`, or the end of the rate
    /// window if that comes first.
    fn wait_end(&self, idle_end: Instant) -> Instant {
        self.pace.as_ref().map_or(idle_end, |p| p.end.min(idle_end))
    }

    /// Counts bytes that moved.
    fn moved(&mut self, n: usize, sent: bool) {
        let n = n as u64;
        if sent {
            self.sent += n;
        } else {
            self.received += n;
        }
        if let Some(p) = &mut self.pace {
            p.moved += n;
        }
    }

    /// The bytes read and not yet consumed.
    pub(super) fn pending(&self) -> &[u8] {
        self.buf.get(self.lo..self.hi).unwrap_or_default()
    }

    /// Drops `n` bytes from the front of [`Conn::pending`].
    pub(super) fn consume(&mut self, n: usize) {
        self.lo = (self.lo + n).min(self.hi);
    }

    /// Moves pending bytes to the front when the buffer's end is reached.
    fn make_room(&mut self) {
        if self.lo == self.hi {
            self.lo = 0;
            self.hi = 0;
        } else if self.hi == self.buf.len() {
            self.buf.copy_within(self.lo..self.hi, 0);
            self.hi -= self.lo;
            self.lo = 0;
        }
    }

    /// Reads more bytes into the buffer: at least one.
    ///
    /// # Errors
    ///
    /// [`Cut::Eof`] at end of stream, [`Cut::Io`], [`Cut::Timeout`].
    pub(super) async fn fill(&mut self) -> Result<usize, Cut> {
        self.make_room();
        let room = self.buf.get_mut(self.hi..).unwrap_or_default();
        if room.is_empty() {
            // Cannot happen: every message decides within MAX_MESSAGE_LEN
            // bytes and data is consumed before more is read.
            return Err(Cut::Io(io::Error::other("read buffer full")));
        }
        let idle_end = Instant::now() + self.idle;
        loop {
            self.check_pace()?;
            let until = self.wait_end(idle_end);
            let room = self.buf.get_mut(self.hi..).unwrap_or_default();
            match timeout_at(until, self.rd.read(room)).await {
                Err(_) if Instant::now() >= idle_end => {
                    return Err(Cut::Timeout(self.waited(self.idle)))
                }
                Err(_) => continue,
                Ok(Err(e)) => return Err(Cut::Io(e)),
                Ok(Ok(0)) => return Err(Cut::Eof),
                Ok(Ok(n)) => {
                    self.hi += n;
                    self.moved(n, false);
                    return Ok(n);
                }
            }
        }
    }

    /// Reads one message with `decode`.
    ///
    /// # Errors
    ///
    /// [`ReadError::Wire`] for bytes that are not that message,
    /// [`ReadError::Cut`] if the stream ends or fails first.
    pub(super) async fn read_msg<T>(&mut self, decode: Decoder<T>) -> Result<T, ReadError> {
        loop {
            match decode(self.pending()) {
                Ok(Some((msg, used))) => {
                    self.consume(used);
                    return Ok(msg);
                }
                Ok(None) => {}
                Err(e) => return Err(ReadError::Wire(e)),
            }
            self.fill().await.map_err(ReadError::Cut)?;
        }
    }

    /// Writes all of `bytes`.
    ///
    /// # Errors
    ///
    /// [`Cut::Io`] or [`Cut::Timeout`].
    pub(super) async fn send(&mut self, bytes: &[u8]) -> Result<(), Cut> {
        let mut off = 0;
        while off < bytes.len() {
            let rest = bytes.get(off..).unwrap_or_default();
            let idle_end = Instant::now() + self.idle;
            let n = loop {
                self.check_pace()?;
                let until = self.wait_end(idle_end);
                match timeout_at(until, self.wr.write(rest)).await {
                    Err(_) if Instant::now() >= idle_end => {
                        return Err(Cut::Timeout(self.waited(self.idle)))
                    }
                    Err(_) => continue,
                    Ok(Err(e)) => return Err(Cut::Io(e)),
                    Ok(Ok(0)) => return Err(Cut::Io(io::ErrorKind::WriteZero.into())),
                    Ok(Ok(n)) => break n,
                }
            };
            self.moved(n, true);
            off += n;
        }
        Ok(())
    }

    /// Sends a reply.
    ///
    /// # Errors
    ///
    /// As [`Conn::send`].
    pub(super) async fn reply(&mut self, reply: &Reply) -> Result<(), Cut> {
        let mut out = Vec::with_capacity(64);
        // A reply made by `Reply::new` always encodes: its reason is cut to
        // the maximum.
        reply
            .encode(&mut out)
            .map_err(|e| Cut::Io(io::Error::other(e.to_string())))?;
        self.send(&out).await
    }

    /// Writes all of `data` while watching the other direction: if the peer
    /// sends its reply meanwhile (it refused mid-stream), stops and returns
    /// it. A failed write also looks for such a reply before giving up.
    ///
    /// # Errors
    ///
    /// [`SendError::Early`] with the peer's reply, [`SendError::Cut`],
    /// [`SendError::Wire`] if the peer sends something else.
    pub(super) async fn send_watching(&mut self, data: &[u8]) -> Result<(), SendError> {
        let mut off = 0;
        let mut idle_end = Instant::now() + self.idle;
        while off < data.len() {
            self.make_room();
            self.check_pace().map_err(SendError::Cut)?;
            let rest = data.get(off..).unwrap_or_default();
            let until = self.wait_end(idle_end);
            let step = {
                let room = self.buf.get_mut(self.hi..).unwrap_or_default();
                let can_read = !room.is_empty();
                let (rd, wr) = (&mut self.rd, &mut self.wr);
                tokio::select! {
                    biased;
                    r = rd.read(room), if can_read => Step::Read(r),
                    w = timeout_at(until, wr.write(rest)) => Step::Wrote(w),
                }
            };
            match step {
                Step::Read(Ok(0)) => return Err(SendError::Cut(Cut::Eof)),
                Step::Read(Ok(n)) => {
                    self.hi += n;
                    self.moved(n, false);
                    match Reply::decode(self.pending()) {
                        Ok(Some((reply, used))) => {
                            self.consume(used);
                            return Err(SendError::Early(reply));
                        }
                        Ok(None) => {}
                        Err(e) => return Err(SendError::Wire(e)),
                    }
                }
                Step::Read(Err(e)) => return Err(self.explain(Cut::Io(e)).await),
                Step::Wrote(Err(_)) if Instant::now() >= idle_end => {
                    return Err(SendError::Cut(Cut::Timeout(self.waited(self.idle))))
                }
                Step::Wrote(Err(_)) => {}
                Step::Wrote(Ok(Ok(0))) => {
                    return Err(SendError::Cut(Cut::Io(io::ErrorKind::WriteZero.into())))
                }
                Step::Wrote(Ok(Ok(n))) => {
                    self.moved(n, true);
                    off += n;
                    idle_end = Instant::now() + self.idle;
                }
                Step::Wrote(Ok(Err(e))) => return Err(self.explain(Cut::Io(e)).await),
            }
        }
        Ok(())
    }

    /// After a failed write: the peer's reply if it sent one before it
    /// closed (it says why), else the failure itself.
    async fn explain(&mut self, cut: Cut) -> SendError {
        let saved = self.idle;
        self.idle = LINGER.min(saved);
        let found = self.read_msg(Reply::decode).await;
        self.idle = saved;
        match found {
            Ok(reply) => SendError::Early(reply),
            Err(_) => SendError::Cut(cut),
        }
    }

    /// Tells the peer that this side stops, with `status`, the bytes it
    /// keeps and why, then lingers. Best effort: the peer may be gone (that
    /// may be why this side stops).
    pub(super) async fn stop(&mut self, status: Status, kept: u64, reason: &str) {
        let _ = self.reply(&Reply::new(status, kept, reason)).await;
        self.linger().await;
    }

    /// Shuts down the sending side (FIN); errors are ignored (the peer may
    /// be gone already).
    pub(super) async fn shutdown(&mut self) {
        let _ = timeout(self.idle, self.wr.shutdown()).await;
    }

    /// Ends a connection after this side's last message without losing it
    /// to a reset: shuts down sending, then reads and discards until the
    /// peer closes, for at most [`LINGER`] and 1 MiB. Returns whether the
    /// peer closed.
    pub(super) async fn linger(&mut self) -> bool {
        let limit = LINGER.min(self.idle);
        let _ = timeout(limit, self.wr.shutdown()).await;
        let deadline = Instant::now() + limit;
        self.lo = 0;
        self.hi = 0;
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match timeout_at(deadline, self.rd.read(&mut self.buf[..])).await {
                Ok(Ok(0)) => return true,
                Ok(Ok(n)) => drained += n,
                _ => break,
            }
        }
        false
    }
}

/// Sends a file's data: hashes bytes `0 .. start` of `file` (the part the
/// receiver holds already), then hashes and sends `start .. size`, calling
/// `progress(bytes the receiver will hold, size)` after each chunk. Returns
/// the BLAKE3 of the whole file.
///
/// # Errors
///
/// [`BodyError::File`] if the file cannot be read, [`BodyError::Shrank`]
/// if it ends early, [`BodyError::Send`] if the connection fails or the
/// peer refuses mid-stream.
pub(super) async fn send_body<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    file: &DiskFile,
    size: u64,
    start: u64,
    progress: &mut impl FnMut(u64, u64),
) -> Result<[u8; DIGEST_LEN], BodyError> {
    // What the peer sent after its answer to the header and before the
    // data began is its verdict (it refused at once), whole or in part;
    // both paths below only look at what they read themselves.
    let early = conn.pending().to_vec();
    if !early.is_empty() {
        match Reply::decode(&early) {
            Ok(Some((reply, used))) => {
                conn.consume(used);
                return Err(BodyError::Send(SendError::Early(reply)));
            }
            Ok(None) => {}
            Err(e) => return Err(BodyError::Send(SendError::Wire(e))),
        }
    }
    // A reply begun: the thread goes on reading it where it stands.
    if let Some(link) = conn.link_with_pending() {
        let handle = file.share();
        progress(start, size);
        let mut report = |done: u64| progress(done, size);
        let ran = pump::run(link, start, &mut report, move |link| {
            pump::send_file(link, &handle, start, Until::Size(size), true)
        })
        .await;
        let (sent, back) = ran.map_err(|e| BodyError::Send(SendError::Cut(Cut::Io(e))))?;
        conn.take_back(back);
        return match sent {
            Ok((hasher, _)) => Ok(*hasher.finalize().as_bytes()),
            Err(BodyError::Send(SendError::Cut(cut @ Cut::Io(_)))) => {
                Err(BodyError::Send(conn.explain(cut).await))
            }
            Err(e) => Err(e),
        };
    }
    file.seek(0).await.map_err(BodyError::File)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; CHUNK];
    let mut pos = 0u64;
    progress(start, size);
    while pos < size {
        // Up to the start exactly, then whole chunks.
        let until = if pos < start { start } else { size };
        let want = usize::try_from(until - pos).unwrap_or(CHUNK).min(CHUNK);
        let (back, n) = file.read(buf, want).await;
        buf = back;
        let n = n.map_err(BodyError::File)?;
        if n == 0 {
            return Err(BodyError::Shrank { at: pos });
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        if pos >= start {
            conn.send_watching(chunk).await.map_err(BodyError::Send)?;
            progress(pos + n as u64, size);
        }
        pos += n as u64;
    }
    Ok(*hasher.finalize().as_bytes())
}
