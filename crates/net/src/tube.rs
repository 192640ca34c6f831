//! The tube: one byte stream the lab holds, whatever carries it.
//!
//! A TCP connection, a TLS session over one, and a program's stdin/stdout
//! are all tubes (the pwntools idea): a [`Wire`] moves the bytes, and
//! everything else is
//! written once, here: the name, the background reader and its events,
//! framing, the inbox `expect` consumes, send, one manual read, shutdown,
//! close, byte counters and the progress that settlement waits on. What
//! only one kind has (a TCP connection's kernel state, a program's exit
//! status) stays on that kind (`conn.rs`, `exec.rs`), which holds a tube.

use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use socklab_frame::Framing;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::budget::{Charge, Payload};
use crate::error::{NetError, Result};
use crate::event::{Event, Sink};
use crate::inbox::{Inbox, Scan};
use crate::model::{Mode, ReadOutcome};
use crate::readbuf::{ReadBuf, Source};
use crate::settle::lock;
use crate::tap::{self, Direction};

/// How much one read takes at most (a command's read, a forwarder's).
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// What `send_fill` writes from: this many bytes, sent again and again.
const FILL_CHUNK: usize = 1024 * 1024;

/// How one kind of byte stream moves its bytes. Methods take `&self` so a
/// reader and a writer can use the wire at once; implementations hold
/// whatever locking they need only inside a poll, never across a wait.
///
/// Reading is [`Source::poll_read_buf`]: a wire is what a tube's
/// [`ReadBuf`] reads from.
pub(crate) trait Wire: Source + Send + Sync + 'static {
    /// Writes some of `data`, or registers for a wake-up.
    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>>;
    /// Writes out what the wire still holds of what it accepted (a TLS
    /// session's records); a plain stream holds nothing.
    fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    /// Shuts one direction (or both) down.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// Lets go of the stream now (a socket's descriptor is closed here, so
    /// the peer sees the close before anyone waits for it to report it).
    fn close(&self);
    /// What holds a non-blocking descriptor a plain thread may poll and
    /// read, for readers on threads of their own (`listen … mode thread`).
    /// The thread keeps it, so the descriptor outlives every read.
    fn pollable(&self) -> Option<Arc<dyn AsFd + Send + Sync>> {
        None
    }
}

/// What a tube's readers have published: waiters settle on it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    /// Bytes read so far (by the background reader or by commands).
    pub(crate) bytes_in: u64,
    /// The background reader is running.
    pub(crate) watched: bool,
    /// End of stream was read.
    pub(crate) eof: bool,
    /// Reading failed (a reset, most often).
    pub(crate) failed: bool,
    /// The failure was a reset: the peer sent RST (Python's
    /// `ConnectionResetError`), not a FIN.
    pub(crate) reset: bool,
    /// `close` closed it.
    pub(crate) closed: bool,
}

/// Which directions `shutdown` has closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Halves {
    /// Both open.
    #[default]
    Open,
    /// No more reading.
    ReadShut,
    /// No more writing (our FIN was sent, or the program's stdin closed).
    WriteShut,
    /// Neither.
    BothShut,
}

impl Halves {
    fn after(self, how: Shutdown) -> Halves {
        let (r, w) = match self {
            Halves::Open => (false, false),
            Halves::ReadShut => (true, false),
            Halves::WriteShut => (false, true),
            Halves::BothShut => (true, true),
        };
        let r = r || matches!(how, Shutdown::Read | Shutdown::Both);
        let w = w || matches!(how, Shutdown::Write | Shutdown::Both);
        match (r, w) {
            (false, false) => Halves::Open,
            (true, false) => Halves::ReadShut,
            (false, true) => Halves::WriteShut,
            (true, true) => Halves::BothShut,
        }
    }

    /// In words, for a socket's state.
    pub(crate) fn words(self) -> &'static [&'static str] {
        match self {
            Halves::Open => &[],
            Halves::ReadShut => &["read shut"],
            Halves::WriteShut => &["write shut"],
            Halves::BothShut => &["write shut", "read shut"],
        }
    }
}

/// A running background task (a reader, an accept loop) and how to stop it.
pub(crate) struct Background {
    /// Cancels the task.
    pub(crate) cancel: CancellationToken,
    /// The task (for a reader thread: a task that ends with the thread).
    pub(crate) task: JoinHandle<()>,
    /// Written to wake a reader thread blocked in poll.
    pub(crate) wake: Option<OwnedFd>,
}

impl Background {
    /// Runs `make`'s future as a task, stoppable by its token.
    pub(crate) fn spawn<F>(make: impl FnOnce(CancellationToken) -> F) -> Background
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(make(cancel.clone()));
        Background {
            cancel,
            task,
            wake: None,
        }
    }

    /// Stops the task and waits until it has ended.
    pub(crate) async fn stop(self) {
        self.cancel.cancel();
        if let Some(w) = &self.wake {
            let _ = nix::unistd::write(w, &[1u8]);
        }
        let _ = self.task.await;
    }
}

/// Who reads a socket (a background task, or commands), and that task
/// while there is one. Shared by tubes and UDP sockets.
pub(crate) struct Reader {
    /// Watched (a background task reads) or manual.
    mode: Mutex<Mode>,
    /// The background task, until stopped.
    task: Mutex<Option<Background>>,
}

impl Reader {
    /// Read on request until a task starts.
    pub(crate) fn new() -> Reader {
        Reader {
            mode: Mutex::new(Mode::Manual),
            task: Mutex::new(None),
        }
    }

    /// Who reads.
    pub(crate) fn mode(&self) -> Mode {
        *lock(&self.mode)
    }

    /// Makes it watched, then starts the task `start` returns (watched
    /// first, so a task that gives up at once leaves it manual).
    pub(crate) fn start(&self, start: impl FnOnce() -> Result<Background>) -> Result<()> {
        *lock(&self.mode) = Mode::Watched;
        match start() {
            Ok(bg) => {
                *lock(&self.task) = Some(bg);
                Ok(())
            }
            Err(e) => {
                *lock(&self.mode) = Mode::Manual;
                Err(e)
            }
        }
    }

    /// The task gave up by itself: read on request from now on.
    fn gave_up(&self) {
        *lock(&self.mode) = Mode::Manual;
    }

    /// Whether a task was started and not stopped.
    pub(crate) fn started(&self) -> bool {
        lock(&self.task).is_some()
    }

    /// Stops the task, if any, and waits until it has ended; read on
    /// request from then on.
    pub(crate) async fn stop(&self) {
        let bg = lock(&self.task).take();
        if let Some(bg) = bg {
            bg.stop().await;
        }
        *lock(&self.mode) = Mode::Manual;
    }
}

/// How incoming bytes are cut into messages, and the half message so far.
struct Framer {
    framing: Framing,
    partial: BytesMut,
}

/// One event of a read, before its payload is charged to the budget.
enum Piece {
    /// Bytes as they came (raw framing).
    Data(Bytes),
    /// One whole message.
    Message(&'static str, Bytes),
    /// An event without payload.
    Event(Event),
}

impl Piece {
    fn len(&self) -> usize {
        match self {
            Piece::Data(b) | Piece::Message(_, b) => b.len(),
            Piece::Event(_) => 0,
        }
    }
}

/// What one background read found.
enum Got {
    Bytes(Bytes),
    Eof,
    Error(io::Error),
}

/// What a reader publishes after sending a read's events.
enum After {
    /// `n` bytes arrived and were cut into messages: keep reading.
    Data(Bytes),
    /// The bytes broke the framing: stop reading (the socket stays open).
    Broken(usize),
    /// End of stream.
    Eof,
    /// The read failed (`reset`: the peer sent RST).
    Failed {
        /// A reset, not another error.
        reset: bool,
    },
    /// Nothing happened (a spurious wake-up).
    Nothing,
}

/// One byte stream of the lab.
pub(crate) struct Tube {
    /// The name in the lab (`cli`, `srv.1`, `cat`).
    pub(crate) name: Arc<str>,
    /// What moves the bytes (replaced once by `starttls`, while nobody
    /// reads).
    wire: RwLock<Arc<dyn Wire>>,
    /// Who reads: a background reader (events) or commands.
    reader: Reader,
    /// What the readers have published.
    progress: watch::Sender<Progress>,
    /// Bytes written.
    bytes_out: AtomicU64,
    /// Bytes read, counted at the read itself (for the traffic log's
    /// offsets; `Progress` counts them when they are published).
    bytes_read: AtomicU64,
    /// Framing of incoming bytes (and of what `frame` sends).
    framer: Mutex<Framer>,
    /// Received data no `expect` consumed yet.
    inbox: Inbox,
    /// Which directions are shut.
    halves: Mutex<Halves>,
    /// The other end is outside the lab (a program, a peer that is no
    /// socket of this lab): what it sends comes on its own schedule, not
    /// settled by a command of the lab.
    pub(crate) outside: bool,
}

impl Tube {
    /// A tube over `wire`, read on request until a reader starts.
    pub(crate) fn new(name: Arc<str>, wire: Arc<dyn Wire>, outside: bool) -> Tube {
        Tube {
            name,
            wire: RwLock::new(wire),
            outside,
            reader: Reader::new(),
            progress: watch::Sender::new(Progress::default()),
            bytes_out: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            framer: Mutex::new(Framer {
                framing: Framing::Raw,
                partial: BytesMut::new(),
            }),
            inbox: Inbox::default(),
            halves: Mutex::new(Halves::Open),
        }
    }

    /// Who reads it.
    pub(crate) fn mode(&self) -> Mode {
        self.reader.mode()
    }

    /// What moves the bytes now.
    fn wire(&self) -> Arc<dyn Wire> {
        self.wire.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Moves the bytes over `wire` from now on (a TLS session over the
    /// same stream). The caller stopped the reader first.
    pub(crate) fn rewire(&self, wire: Arc<dyn Wire>) {
        *self.wire.write().unwrap_or_else(|e| e.into_inner()) = wire;
    }

    /// What the readers have published so far.
    pub(crate) fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// A receiver of the tube's progress, to settle on.
    pub(crate) fn watch_progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Bytes written so far.
    pub(crate) fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::SeqCst)
    }

    /// Which directions are shut.
    pub(crate) fn halves(&self) -> Halves {
        *lock(&self.halves)
    }

    /// The state in words, when it is not simply open: `failed`, `peer
    /// closed`, `write shut`, `read shut`.
    pub(crate) fn state_words(&self) -> Vec<&'static str> {
        let p = self.progress();
        let mut parts = Vec::new();
        if p.reset {
            parts.push("reset by peer");
        } else if p.failed {
            parts.push("failed");
        } else if p.eof {
            parts.push("peer closed");
        }
        parts.extend_from_slice(self.halves().words());
        parts
    }

    /// What the reader took off the stream and nothing consumed, when it
    /// is the start of a TLS record (a STARTTLS client's hello that came
    /// before the upgrade): the handshake begins with it.
    pub(crate) fn take_early_tls(&self) -> Bytes {
        self.inbox
            .take_match(&mut |b: &[u8]| b.starts_with(&[0x16, 0x03]).then_some(b.len()))
            .unwrap_or_default()
    }

    /// The last `max` bytes of data no `expect` consumed.
    pub(crate) fn unmatched(&self, max: usize) -> Bytes {
        self.inbox.tail(max)
    }

    // ----- framing ---------------------------------------------------------

    /// Chooses how incoming bytes are cut into messages; a half message
    /// already buffered is dropped.
    pub(crate) fn set_framing(&self, framing: Framing) {
        *lock(&self.framer) = Framer {
            framing,
            partial: BytesMut::new(),
        };
    }

    /// The framing in use.
    pub(crate) fn framing(&self) -> Framing {
        lock(&self.framer).framing
    }

    /// What one read becomes: the bytes as they came (raw), or every whole
    /// message now buffered. `true` means the stream broke its framing.
    fn cut(&self, chunk: Bytes) -> (Vec<Piece>, bool) {
        let mut framer = lock(&self.framer);
        let framing = framer.framing;
        if framing == Framing::Raw {
            return (vec![Piece::Data(chunk)], false);
        }
        framer.partial.extend_from_slice(&chunk);
        let mut out = Vec::new();
        loop {
            match framing.decode(&framer.partial) {
                Ok(Some((msg, used))) => {
                    out.push(Piece::Message(framing.name(), Bytes::copy_from_slice(msg)));
                    framer.partial.advance(used);
                }
                Ok(None) => return (out, false),
                Err(e) => {
                    out.push(Piece::Event(Event::FrameError {
                        socket: self.name.clone(),
                        error: e.to_string(),
                    }));
                    framer.partial.clear();
                    return (out, true);
                }
            }
        }
    }

    /// The events of a read's pieces, each payload carrying its part of
    /// `charge` (taken for all of them).
    fn events(&self, pieces: Vec<Piece>, mut charge: Charge) -> Vec<Event> {
        pieces
            .into_iter()
            .map(|p| {
                let part = charge.split(p.len());
                match p {
                    Piece::Data(b) => Event::Data {
                        socket: self.name.clone(),
                        data: Payload::new(b, part),
                    },
                    Piece::Message(framing, b) => Event::Message {
                        socket: self.name.clone(),
                        framing,
                        data: Payload::new(b, part),
                    },
                    Piece::Event(ev) => ev,
                }
            })
            .collect()
    }

    /// At end of stream: bytes of a message that never completed.
    fn leftover(&self) -> Option<Event> {
        let mut framer = lock(&self.framer);
        if framer.partial.is_empty() {
            return None;
        }
        let n = framer.partial.len();
        framer.partial = BytesMut::new();
        Some(Event::FrameError {
            socket: self.name.clone(),
            error: format!("the peer closed in the middle of a message ({n} bytes of it arrived)"),
        })
    }

    // ----- the tap ---------------------------------------------------------

    /// Every read, by the background reader or by a command, passes here:
    /// the traffic log sees it.
    fn tap_read(&self, data: &[u8]) {
        let from = self
            .bytes_read
            .fetch_add(data.len() as u64, Ordering::SeqCst);
        tap::stream(&self.name, Direction::In, from, data);
    }

    /// Every write passes here, before it is made (so the log shows it
    /// before the peer's read of it), in records of at most
    /// [`tap::RECORD_MAX`] bytes.
    fn tap_write(&self, data: &[u8]) {
        let mut from = self.bytes_out();
        for part in data.chunks(tap::RECORD_MAX) {
            tap::stream(&self.name, Direction::Out, from, part);
            from += part.len() as u64;
        }
    }

    // ----- background reading --------------------------------------------

    /// The events one read raises, in order (payloads not yet charged),
    /// and what to publish after they are sent. Shared by the task and the
    /// thread reader.
    fn report(&self, got: Got) -> (Vec<Piece>, After) {
        match got {
            Got::Bytes(b) if b.is_empty() => (Vec::new(), After::Nothing),
            Got::Bytes(b) => {
                self.tap_read(&b);
                let n = b.len();
                let (pieces, broken) = self.cut(b.clone());
                let after = if broken {
                    After::Broken(n)
                } else {
                    After::Data(b)
                };
                (pieces, after)
            }
            Got::Eof => {
                let mut pieces: Vec<Piece> =
                    self.leftover().into_iter().map(Piece::Event).collect();
                pieces.push(Piece::Event(Event::PeerClosed {
                    socket: self.name.clone(),
                }));
                (pieces, After::Eof)
            }
            Got::Error(error) if is_reset(&error) => {
                let reset = Event::Reset {
                    socket: self.name.clone(),
                };
                (vec![Piece::Event(reset)], After::Failed { reset: true })
            }
            Got::Error(error) => {
                let failed = Event::Failed {
                    socket: self.name.clone(),
                    error,
                };
                (vec![Piece::Event(failed)], After::Failed { reset: false })
            }
        }
    }

    /// Sends a read's events, their payloads charged to the budget first
    /// (waiting while it is spent: the peer is then slowed by flow
    /// control). `false` when stopped meanwhile (nothing is published).
    async fn deliver(&self, pieces: Vec<Piece>, sink: &Sink, cancel: &CancellationToken) -> bool {
        let need: usize = pieces.iter().map(Piece::len).sum();
        let charge = tokio::select! {
            _ = cancel.cancelled() => return false,
            c = sink.budget.take(need) => c,
        };
        for ev in self.events(pieces, charge) {
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = sink.send(ev) => {}
            }
        }
        true
    }

    /// Publishes what a read's events stand for (after they were sent, so
    /// a waiter that sees it finds the events on the channel). `false`
    /// when the reader stops.
    fn publish(&self, after: After) -> bool {
        match after {
            After::Nothing => true,
            After::Data(b) => {
                // The inbox first: an `expect` woken by the progress finds
                // the bytes there.
                let n = b.len() as u64;
                self.inbox.push(b);
                self.progress.send_modify(|p| p.bytes_in += n);
                true
            }
            After::Broken(n) => {
                // The rest of the stream cannot be cut right: reading stops
                // and the socket is read on request from now on. Stopped
                // and counted in one publication, so a waiter that sees the
                // bytes sees the stop too.
                self.reader.gave_up();
                self.progress.send_modify(|p| {
                    p.bytes_in += n as u64;
                    p.watched = false;
                });
                false
            }
            After::Eof => {
                self.progress.send_modify(|p| {
                    p.eof = true;
                    p.watched = false;
                });
                false
            }
            After::Failed { reset } => {
                self.progress.send_modify(|p| {
                    p.failed = true;
                    p.reset = reset;
                    p.watched = false;
                });
                false
            }
        }
    }

    /// The reader was stopped between a read and its report: the bytes it
    /// read are kept for `expect` (and a STARTTLS handshake), unreported,
    /// rather than lost.
    fn keep(&self, after: After) {
        if let After::Data(b) = after {
            let n = b.len() as u64;
            self.inbox.push(b);
            self.progress.send_modify(|p| p.bytes_in += n);
        }
    }

    /// Starts a background reader on a task: from now on every read is an
    /// event.
    pub(crate) fn start_reader(self: &Arc<Self>, events: Sink) {
        let tube = self.clone();
        let _ = self.reader.start(|| {
            self.progress.send_modify(|p| p.watched = true);
            Ok(Background::spawn(move |cancel| async move {
                tube.read_loop(&events, &cancel).await;
            }))
        });
    }

    async fn read_loop(&self, events: &Sink, cancel: &CancellationToken) {
        let wire = self.wire();
        let mut buf = ReadBuf::default();
        loop {
            let got = tokio::select! {
                _ = cancel.cancelled() => break,
                r = buf.read(&*wire) => match r {
                    Ok(b) if b.is_empty() => Got::Eof,
                    Ok(b) => Got::Bytes(b),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Got::Error(e),
                },
            };
            let (pieces, after) = self.report(got);
            if !self.deliver(pieces, events, cancel).await {
                self.keep(after);
                break;
            }
            if !self.publish(after) {
                return;
            }
        }
        self.progress.send_modify(|p| p.watched = false);
    }

    /// Starts a background reader on an OS thread of its own (a blocking
    /// `poll` + non-blocking `read` loop), holding `slot` while it runs.
    ///
    /// # Errors
    /// The wire has no descriptor to poll, or the OS refused a pipe or a
    /// thread.
    pub(crate) fn start_thread_reader(
        self: &Arc<Self>,
        events: Sink,
        slot: OwnedSemaphorePermit,
    ) -> Result<()> {
        let Some(source) = self.wire().pollable() else {
            return Err(NetError::state(&self.name, "cannot be read on a thread"));
        };
        let (wake_rx, wake_tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| NetError::os("pipe")(e.into()))?;
        let tube = self.clone();
        let runtime = tokio::runtime::Handle::current();
        self.reader.start(|| {
            self.progress.send_modify(|p| p.watched = true);
            let cancel = CancellationToken::new();
            let stop = cancel.clone();
            // An OS thread of its own (not the runtime's blocking pool, which
            // file transfers need); the slot caps how many there are.
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("read {}", self.name))
                .spawn(move || {
                    tube.thread_read_loop(&runtime, &*source, &wake_rx, &events, &stop);
                    // The descriptor is let go of before the stop is awaited
                    // as done, so a close that follows really closes it.
                    drop(source);
                    drop(slot);
                    let _ = done_tx.send(());
                })
                .map_err(NetError::os("thread"))?;
            let task = tokio::spawn(async move {
                let _ = done_rx.await;
            });
            Ok(Background {
                cancel,
                task,
                wake: Some(wake_tx),
            })
        })
    }

    /// Blocks in poll(2) until the stream is readable or the wake pipe is
    /// written (cancellation), then reads without blocking. The descriptor
    /// stays non-blocking (it is shared with the runtime), so the thread
    /// waits in poll, never in read.
    fn thread_read_loop(
        &self,
        runtime: &tokio::runtime::Handle,
        source: &dyn AsFd,
        wake: &OwnedFd,
        events: &Sink,
        cancel: &CancellationToken,
    ) {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let fd = source.as_fd();
            let mut fds = [
                PollFd::new(fd, PollFlags::POLLIN),
                PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            ];
            let polled = nix::poll::poll(&mut fds, PollTimeout::NONE);
            let woken = fds[1].revents().is_some_and(|r| !r.is_empty());
            if cancel.is_cancelled() || woken {
                break;
            }
            let got = match polled {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => Got::Error(e.into()),
                Ok(_) => match nix::unistd::read(fd, &mut buf) {
                    Ok(0) => Got::Eof,
                    Ok(n) => Got::Bytes(Bytes::copy_from_slice(&buf[..n])),
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
                    Err(e) => Got::Error(e.into()),
                },
            };
            let (pieces, after) = self.report(got);
            if !runtime.block_on(self.deliver(pieces, events, cancel)) {
                self.keep(after);
                break;
            }
            if !self.publish(after) {
                return;
            }
        }
        self.progress.send_modify(|p| p.watched = false);
    }

    /// Whether a background reader was started and not stopped.
    pub(crate) fn has_reader(&self) -> bool {
        self.reader.started()
    }

    /// Stops the background reader, if any, and waits until it has ended;
    /// the tube is read on request from then on.
    pub(crate) async fn stop_reader(&self) {
        self.reader.stop().await;
    }

    // ----- commands --------------------------------------------------------

    /// Writes every byte of `data` (`sendall`); returns how many went.
    ///
    /// # Errors
    /// The stream refused part way ([`NetError::PartialSend`] says how
    /// much went).
    pub(crate) async fn send(&self, data: &[u8]) -> Result<usize> {
        self.write_all(data, 0, data.len() as u64).await?;
        Ok(data.len())
    }

    /// Writes `total` bytes of `byte` (`send NAME fill:SIZE`), from one
    /// buffer of at most [`FILL_CHUNK`] bytes written again and again, so
    /// memory stays flat whatever the size; returns how many went.
    ///
    /// # Errors
    /// The stream refused part way ([`NetError::PartialSend`] says how
    /// much went of the whole).
    pub(crate) async fn send_fill(&self, byte: u8, total: u64) -> Result<u64> {
        let chunk = vec![byte; usize::try_from(total).unwrap_or(FILL_CHUNK).min(FILL_CHUNK)];
        let mut sent = 0u64;
        while sent < total {
            let n = usize::try_from(total - sent).map_or(chunk.len(), |left| left.min(chunk.len()));
            self.write_all(&chunk[..n], sent, total).await?;
            sent += n as u64;
        }
        Ok(sent)
    }

    /// Writes every byte of `data`, which is the part of a send of `total`
    /// bytes after `before` of them went (for what an error says).
    async fn write_all(&self, data: &[u8], before: u64, total: u64) -> Result<()> {
        self.tap_write(data);
        let wire = self.wire();
        let mut sent = 0;
        let whole = |sent: usize| (before + sent as u64, total);
        while sent < data.len() {
            let wrote = poll_fn(|cx| wire.poll_write(cx, &data[sent..])).await;
            match wrote {
                Ok(0) => {
                    let err = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(self.partial(whole(sent), err));
                }
                Ok(n) => {
                    sent += n;
                    self.bytes_out.fetch_add(n as u64, Ordering::SeqCst);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.partial(whole(sent), err)),
            }
        }
        if let Err(err) = poll_fn(|cx| wire.poll_flush(cx)).await {
            return Err(self.partial(whole(sent), err));
        }
        Ok(())
    }

    /// One read of at most `max` bytes for a forwarder that owns the tube
    /// (a relay leg, a chat client): counted and published like a
    /// background reader's, but no event and no inbox (the forwarder
    /// reports what it moves). Empty at end of stream.
    ///
    /// # Errors
    /// The OS reported an error (a reset).
    pub(crate) async fn read_some(&self, max: usize) -> io::Result<Bytes> {
        let mut buf = BytesMut::with_capacity(max.max(1));
        let wire = self.wire();
        match poll_fn(|cx| wire.poll_read_buf(cx, &mut buf, max.max(1))).await {
            Ok(0) => {
                self.progress.send_modify(|p| p.eof = true);
                Ok(Bytes::new())
            }
            Ok(n) => {
                self.tap_read(&buf);
                self.progress.send_modify(|p| p.bytes_in += n as u64);
                Ok(buf.freeze())
            }
            Err(err) => {
                if err.kind() != io::ErrorKind::Interrupted {
                    let reset = is_reset(&err);
                    self.progress.send_modify(|p| {
                        p.failed = true;
                        p.reset = reset;
                    });
                }
                Err(err)
            }
        }
    }

    fn partial(&self, (sent, total): (u64, u64), source: io::Error) -> NetError {
        tap::note(
            &self.name,
            &format!("only {sent} of the {total} bytes above were sent: {source}"),
        );
        NetError::PartialSend {
            name: self.name.to_string(),
            sent: usize::try_from(sent).unwrap_or(usize::MAX),
            total: usize::try_from(total).unwrap_or(usize::MAX),
            source,
        }
    }

    /// Fails unless the tube is read on request.
    ///
    /// # Errors
    /// A background reader reads it.
    pub(crate) fn check_manual(&self) -> Result<()> {
        if self.mode() == Mode::Watched {
            return Err(NetError::state(
                &self.name,
                "is read in the background (its data shows as events); use expect, or `watch NAME off` to read it yourself",
            ));
        }
        Ok(())
    }

    /// One read of at most `max` bytes (`recv`).
    ///
    /// # Errors
    /// The OS reported an error (a reset).
    pub(crate) async fn recv(&self, max: usize) -> Result<ReadOutcome> {
        let max = max.max(1);
        let mut buf = BytesMut::with_capacity(max);
        let wire = self.wire();
        match poll_fn(|cx| wire.poll_read_buf(cx, &mut buf, max)).await {
            Ok(0) => {
                self.progress.send_modify(|p| p.eof = true);
                Ok(ReadOutcome::Eof)
            }
            Ok(n) => {
                self.tap_read(&buf);
                self.progress.send_modify(|p| p.bytes_in += n as u64);
                Ok(ReadOutcome::Data(compact(buf)))
            }
            Err(err) => {
                let reset = is_reset(&err);
                self.progress.send_modify(|p| {
                    p.failed = true;
                    p.reset = reset;
                });
                Err(NetError::os("recv")(err))
            }
        }
    }

    /// Waits until received data satisfies `find` (which returns how many
    /// bytes the match consumes) and returns those bytes. A watched tube
    /// looks at what its reader reported; a manual one reads. `longest`
    /// bounds how long a match of `find` is, when it is bounded (a text):
    /// each read is then searched once, where it lies (see [`Scan`]).
    ///
    /// # Errors
    /// The stream ended or failed before a match.
    pub(crate) async fn expect(
        &self,
        mut find: impl FnMut(&[u8]) -> Option<usize>,
        longest: Option<usize>,
    ) -> Result<Bytes> {
        let ended = |p: &Progress| {
            let what = if p.reset {
                "was reset by the peer (RST) before the expected data came"
            } else {
                "got end-of-stream (the peer closed) before the expected data came"
            };
            NetError::state(&self.name, what)
        };
        let mut rx = self.progress.subscribe();
        let mut scan = Scan::new(longest);
        loop {
            // Marked seen before the inbox is looked at: a push published
            // after this wakes the wait below.
            let p = rx.borrow_and_update().clone();
            if let Some(m) = self.inbox.take_scanned(&mut find, &mut scan) {
                return Ok(m);
            }
            if self.mode() == Mode::Watched {
                if p.eof || p.failed {
                    return Err(ended(&p));
                }
                if rx.changed().await.is_err() {
                    return Err(NetError::state(&self.name, "is closed"));
                }
                continue;
            }
            match self.recv(READ_CHUNK).await? {
                ReadOutcome::Eof => return Err(ended(&self.progress())),
                ReadOutcome::Data(b) => self.inbox.push(b),
            }
        }
    }

    /// `shutdown()` one direction or both. Shutting the read side stops a
    /// background reader first (it would take it for a close).
    ///
    /// # Errors
    /// The OS refused (not connected).
    pub(crate) async fn shutdown(&self, how: Shutdown) -> Result<()> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.stop_reader().await;
        }
        self.wire()
            .shutdown(how)
            .map_err(NetError::os("shutdown"))?;
        let mut halves = lock(&self.halves);
        *halves = halves.after(how);
        Ok(())
    }

    /// Stops the reader and lets go of the stream (the peer sees the close
    /// now). Progress says `closed` only when [`Tube::mark_closed`] is
    /// called, after the caller settled what the close caused.
    pub(crate) async fn close(&self) {
        self.stop_reader().await;
        self.wire().close();
        self.progress.send_modify(|p| p.watched = false);
    }

    /// Publishes that the tube is closed (an iterative server waits for
    /// this to take its next client).
    pub(crate) fn mark_closed(&self) {
        self.progress.send_modify(|p| p.closed = true);
    }
}

/// Whether a read error is the peer's reset (RST).
fn is_reset(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionReset
}

/// A read's bytes as kept: the buffer itself when the read filled most
/// of it, else a copy of just the bytes.
fn compact(buf: BytesMut) -> Bytes {
    if buf.len() >= buf.capacity() / 2 {
        buf.freeze()
    } else {
        Bytes::copy_from_slice(&buf)
    }
}
