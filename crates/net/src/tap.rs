//! `log`: a tap on every byte the lab's streams move, written to files in
//! the background.
//!
//! The tap sits where every stream's bytes pass: a tube's reads (its
//! background reader's and a command's) and its writes (`send`) call
//! [`stream`], a UDP socket's datagrams call [`datagram`]. A kind of stream
//! only supplies a wire, so every kind, present and future, is logged
//! without doing anything. The logs are the process's (socklab runs one
//! session per process), which is what lets a tube reach them without
//! being handed anything.
//!
//! Logging never blocks the data path: a record is offered to a bounded
//! channel ([`LOG_QUEUE_RECORDS`] records, [`LOG_QUEUE_BYTES`] bytes of
//! data) that one writer thread per log drains; when the writer falls
//! behind, records are dropped and counted, and the log says where.
//!
//! A text or hex log reads like `socat -v` (`-x`), each record headed by
//! the stream's name; a pcap log holds the frames a capture on `lo` sees
//! for the lab's TCP ports (what `trace` captures), for tcpdump and
//! Wireshark.

mod dump;

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc;

pub use dump::Direction;

use crate::error::{NetError, Result};
use crate::settle::lock;
use crate::tcp::{Capture, PortSet, Segment};

/// Records a log's channel holds at most, waiting for its writer.
pub const LOG_QUEUE_RECORDS: usize = 4096;
/// Bytes of data a log's channel holds at most, waiting for its writer:
/// past either bound a record is dropped (and counted), never waited for.
pub const LOG_QUEUE_BYTES: usize = 8 * 1024 * 1024;
/// The most bytes one record holds: a longer write is logged as several
/// records, so one `send` of a big file cannot take the whole queue.
pub(crate) const RECORD_MAX: usize = 64 * 1024;
/// How long `log off` waits for a writer to finish the file.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);
/// How long `log off` waits for a pcap log's capture to read every frame
/// that crossed before it.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// What a log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogForm {
    /// `socat -v`: headers, then the data as text.
    Text,
    /// `socat -v -x`: headers, then the data as a hex dump.
    Hex,
    /// The frames on `lo` of the lab's TCP ports, as a pcap file.
    Pcap,
}

impl LogForm {
    /// `text`, `hex`, `pcap`.
    pub fn name(self) -> &'static str {
        match self {
            LogForm::Text => "text",
            LogForm::Hex => "hex",
            LogForm::Pcap => "pcap",
        }
    }
}

/// What one open log is and has done.
#[derive(Debug, Clone)]
pub struct LogInfo {
    /// The file, as given.
    pub path: PathBuf,
    /// What it holds.
    pub form: LogForm,
    /// The streams it logs (a name covers `NAME` and `NAME.N`); empty:
    /// every stream, present and future.
    pub names: Vec<String>,
    /// Records written so far.
    pub records: u64,
    /// Records dropped because the writer fell behind.
    pub dropped: u64,
    /// Why writing stopped, if the file refused a write.
    pub failure: Option<String>,
}

/// One thing to write.
enum Record {
    /// Bytes a stream moved.
    Stream {
        /// When.
        time: SystemTime,
        /// The stream's name.
        name: Arc<str>,
        /// Which way.
        dir: Direction,
        /// The offset of the first byte in that direction.
        from: u64,
        /// The bytes.
        data: Bytes,
    },
    /// One datagram.
    Datagram {
        /// When.
        time: SystemTime,
        /// The socket's name.
        name: Arc<str>,
        /// Which way.
        dir: Direction,
        /// Where it went, or came from.
        peer: Option<SocketAddr>,
        /// The datagram.
        data: Bytes,
    },
    /// Something the log should say about a stream (a send that failed
    /// part way).
    Note {
        /// When.
        time: SystemTime,
        /// The stream's name.
        name: Arc<str>,
        /// What to say.
        text: String,
    },
    /// One captured frame (`len`: its real length; `data` may be less).
    Frame {
        /// When the capture read it.
        time: SystemTime,
        /// The frame as read.
        data: Bytes,
        /// Its real length.
        len: usize,
    },
}

impl Record {
    fn size(&self) -> usize {
        match self {
            Record::Stream { data, .. }
            | Record::Datagram { data, .. }
            | Record::Frame { data, .. } => data.len(),
            Record::Note { text, .. } => text.len(),
        }
    }
}

/// What the channel carries.
enum Msg {
    Record(Record),
    /// Write what is left and stop.
    Close,
}

/// What a log's producers and its writer share.
#[derive(Default)]
struct Counters {
    /// Bytes of data in the channel.
    queued: AtomicUsize,
    /// Records written.
    records: AtomicU64,
    /// Records dropped.
    dropped: AtomicU64,
    /// Why writing stopped.
    failure: Mutex<Option<String>>,
}

/// The producing end of a log: offers records without ever waiting.
#[derive(Clone)]
struct Feed {
    /// The bounded channel to the writer thread.
    tx: SyncSender<Msg>,
    /// What it shares with the writer.
    counters: Arc<Counters>,
}

impl Feed {
    /// Queues `rec`, or drops and counts it when the channel is full (in
    /// records or bytes).
    fn offer(&self, rec: Record) {
        let n = rec.size();
        let before = self.counters.queued.fetch_add(n, Ordering::SeqCst);
        let fits = before + n <= LOG_QUEUE_BYTES;
        if fits && self.tx.try_send(Msg::Record(rec)).is_ok() {
            return;
        }
        self.counters.queued.fetch_sub(n, Ordering::SeqCst);
        self.counters.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// One open log.
struct Log {
    /// The file, as given.
    path: PathBuf,
    /// The file's (device, inode), to find it again by another spelling.
    id: (u64, u64),
    /// What it holds.
    form: LogForm,
    /// The streams it logs (empty: all).
    names: Vec<String>,
    /// Where records go.
    feed: Feed,
    /// The writer thread, until closed.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// A pcap log's capture, its ports, and the segment channel it also
    /// fills (drained and ignored).
    capture: Mutex<Option<Capturing>>,
}

/// A pcap log's capture.
struct Capturing {
    /// The capture on `lo`; its tee feeds the log.
    capture: Capture,
    /// The ports it keeps (the lab's TCP ports, growing).
    ports: Arc<PortSet>,
    /// The segments it decodes for `trace`, unused here.
    segments: mpsc::Receiver<Segment>,
}

impl Log {
    /// Whether a stream named `name` is logged here.
    fn wants(&self, name: &str) -> bool {
        self.form != LogForm::Pcap
            && (self.names.is_empty()
                || self.names.iter().any(|n| {
                    name == n
                        || name
                            .strip_prefix(n.as_str())
                            .is_some_and(|r| r.starts_with('.'))
                }))
    }

    fn info(&self) -> LogInfo {
        let c = &self.feed.counters;
        LogInfo {
            path: self.path.clone(),
            form: self.form,
            names: self.names.clone(),
            records: c.records.load(Ordering::SeqCst),
            dropped: c.dropped.load(Ordering::SeqCst),
            failure: lock(&c.failure).clone(),
        }
    }
}

/// Every open log.
static LOGS: RwLock<Vec<Arc<Log>>> = RwLock::new(Vec::new());
/// How many open logs take stream records (the data path's fast check).
static STREAM_LOGS: AtomicUsize = AtomicUsize::new(0);

fn logs() -> Vec<Arc<Log>> {
    LOGS.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A stream moved `data` (`from`: the offset of its first byte in that
/// direction). Offered to every log that wants the stream; never waits.
pub(crate) fn stream(name: &Arc<str>, dir: Direction, from: u64, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    offer(name, data, |time, data| Record::Stream {
        time,
        name: name.clone(),
        dir,
        from,
        data,
    });
}

/// A UDP socket sent or received one datagram.
pub(crate) fn datagram(name: &Arc<str>, dir: Direction, peer: Option<SocketAddr>, data: &[u8]) {
    offer(name, data, |time, data| Record::Datagram {
        time,
        name: name.clone(),
        dir,
        peer,
        data,
    });
}

/// Offers the record `make` builds (with the time and one shared copy of
/// `data`) to every open log that wants `name`; never waits.
fn offer(name: &Arc<str>, data: &[u8], make: impl Fn(SystemTime, Bytes) -> Record) {
    if STREAM_LOGS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let time = SystemTime::now();
    let mut bytes: Option<Bytes> = None;
    let logs = LOGS.read().unwrap_or_else(PoisonError::into_inner);
    for log in logs.iter().filter(|l| l.wants(name)) {
        let data = bytes
            .get_or_insert_with(|| Bytes::copy_from_slice(data))
            .clone();
        log.feed.offer(make(time, data));
    }
}

/// Something the logs that want the stream should say about it.
pub(crate) fn note(name: &Arc<str>, text: &str) {
    if STREAM_LOGS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let time = SystemTime::now();
    let logs = LOGS.read().unwrap_or_else(PoisonError::into_inner);
    for log in logs.iter().filter(|l| l.wants(name)) {
        log.feed.offer(Record::Note {
            time,
            name: name.clone(),
            text: text.to_string(),
        });
    }
}

/// The open logs, in the order they were opened.
pub(crate) fn list() -> Vec<LogInfo> {
    logs().iter().map(|l| l.info()).collect()
}

/// Whether a pcap log is open (it wants the lab's ports after each
/// command).
pub(crate) fn wants_ports() -> bool {
    logs().iter().any(|l| l.form == LogForm::Pcap)
}

/// Every pcap log keeps the segments of `ports` too (the lab's TCP ports
/// after a command).
pub(crate) fn track_ports(ports: &[u16]) {
    if ports.is_empty() {
        return;
    }
    for log in logs() {
        if let Some(c) = lock(&log.capture).as_mut() {
            for p in ports {
                c.ports.insert(*p);
            }
            // The capture also decodes segments for `trace`; nobody reads
            // them here.
            while c.segments.try_recv().is_ok() {}
        }
    }
}

/// Opens `path` for `form` (created if missing, 0600, appended to) and
/// starts its writer; a pcap log starts a capture of `ports` on `lo`.
///
/// # Errors
/// The file cannot be opened, is open as a log already, is not a pcap file
/// this writer can append to, or (pcap) capturing is not permitted.
pub(crate) fn open(
    path: &Path,
    form: LogForm,
    names: Vec<String>,
    ports: &[u16],
) -> Result<LogInfo> {
    let (tx, rx) = sync_channel(LOG_QUEUE_RECORDS);
    let feed = Feed {
        tx,
        counters: Arc::new(Counters::default()),
    };
    // The capture first: a pcap log that cannot capture leaves no file.
    // Frames it sees before the file is ready wait in the channel.
    let capture = if form == LogForm::Pcap {
        Some(start_capture(&feed, ports)?)
    } else {
        None
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)
        .map_err(NetError::os("open"))?;
    let meta = file.metadata().map_err(NetError::os("stat"))?;
    let id = (meta.dev(), meta.ino());
    if logs().iter().any(|l| l.id == id) {
        return Err(NetError::state(
            "this file",
            "is already open as a log (`log` lists them; `log off FILE` closes one)",
        ));
    }
    if form == LogForm::Pcap {
        start_pcap_file(&file, meta.len())?;
    }
    let counters = feed.counters.clone();
    let writer = std::thread::Builder::new()
        .name(format!("log {}", path.display()))
        .spawn(move || write_loop(file, form, &rx, &counters))
        .map_err(NetError::os("thread"))?;
    let log = Arc::new(Log {
        path: path.to_path_buf(),
        id,
        form,
        names,
        feed,
        writer: Mutex::new(Some(writer)),
        capture: Mutex::new(capture),
    });
    let info = log.info();
    if form != LogForm::Pcap {
        STREAM_LOGS.fetch_add(1, Ordering::SeqCst);
    }
    LOGS.write()
        .unwrap_or_else(PoisonError::into_inner)
        .push(log);
    Ok(info)
}

/// Writes the file header of a new pcap file, or checks that an existing
/// one is a pcap file this writer may append to.
fn start_pcap_file(mut file: &File, len: u64) -> Result<()> {
    if len == 0 {
        return file
            .write_all(&dump::pcap::file_header())
            .map_err(NetError::os("write"));
    }
    let mut head = [0u8; 24];
    let read = file.read_exact(&mut head);
    if read.is_err() || !dump::pcap::is_appendable(&head) {
        return Err(NetError::state(
            "this file",
            "is not a pcap file of Ethernet frames, and a pcap log appends only to one (choose a new file)",
        ));
    }
    Ok(())
}

/// Starts a capture on `lo` whose every kept frame is offered to `feed`.
fn start_capture(feed: &Feed, ports: &[u16]) -> Result<Capturing> {
    let ports: Arc<PortSet> = Arc::new(ports.iter().copied().collect());
    let tee = feed.clone();
    let (capture, segments) = Capture::start_with_tee(
        ports.clone(),
        Box::new(move |frame: &[u8], len: usize| {
            tee.offer(Record::Frame {
                time: SystemTime::now(),
                data: Bytes::copy_from_slice(frame),
                len,
            });
        }),
    )
    .map_err(|e| NetError::state("capturing", format!("is not possible: {e}")))?;
    Ok(Capturing {
        capture,
        ports,
        segments,
    })
}

/// Closes the log at `path` (or every log): what was queued is written
/// and the file closed. Returns what each closed log did.
///
/// # Errors
/// No log is open at `path`.
pub(crate) async fn close(path: Option<&Path>) -> Result<Vec<LogInfo>> {
    let closing: Vec<Arc<Log>> = {
        let mut all = LOGS.write().unwrap_or_else(PoisonError::into_inner);
        let id = path.and_then(|p| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino())));
        let (take, keep): (Vec<_>, Vec<_>) = all
            .drain(..)
            .partition(|l| path.is_none_or(|p| Some(l.id) == id || l.path == p));
        *all = keep;
        take
    };
    if closing.is_empty() && path.is_some() {
        return Err(NetError::state(
            "this file",
            "is not open as a log (`log` lists the open ones)",
        ));
    }
    let mut infos = Vec::new();
    for log in closing {
        if log.form != LogForm::Pcap {
            STREAM_LOGS.fetch_sub(1, Ordering::SeqCst);
        }
        let capturing = lock(&log.capture).take();
        if let Some(c) = capturing {
            // Every frame that crossed before `log off` is in the file.
            let _ = c.capture.flush(FLUSH_LIMIT).await;
            c.capture.stop();
        }
        let writer = lock(&log.writer).take();
        let tx = log.feed.tx.clone();
        let finish = tokio::task::spawn_blocking(move || {
            // The writer drains all the time, so this waits only for room.
            let _ = tx.send(Msg::Close);
            if let Some(w) = writer {
                let _ = w.join();
            }
        });
        if tokio::time::timeout(CLOSE_LIMIT, finish).await.is_err() {
            *lock(&log.feed.counters.failure) =
                Some(format!("the writer did not finish within {CLOSE_LIMIT:?}"));
        }
        infos.push(log.info());
    }
    Ok(infos)
}

/// The writer thread: writes records as they come, flushes whenever the
/// channel is empty, notes drops where they happened.
fn write_loop(file: File, form: LogForm, rx: &Receiver<Msg>, counters: &Counters) {
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let mut noted = 0u64;
    let mut failed = false;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut closing = false;
        while let Some(msg) = next {
            match msg {
                Msg::Close => {
                    closing = true;
                    break;
                }
                Msg::Record(rec) => {
                    let n = rec.size();
                    if !failed {
                        let written = note_drops(&mut out, form, counters, &mut noted)
                            .and_then(|()| write_record(&mut out, form, &rec));
                        match written {
                            Ok(()) => {
                                counters.records.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => {
                                failed = true;
                                *lock(&counters.failure) = Some(e.to_string());
                            }
                        }
                    }
                    counters.queued.fetch_sub(n, Ordering::SeqCst);
                }
            }
            next = rx.try_recv().ok();
        }
        if !failed {
            let flushed =
                note_drops(&mut out, form, counters, &mut noted).and_then(|()| out.flush());
            if let Err(e) = flushed {
                failed = true;
                *lock(&counters.failure) = Some(e.to_string());
            }
        }
        if closing {
            break;
        }
    }
}

/// Says in a text log how many records were dropped since the last note.
fn note_drops(
    out: &mut impl Write,
    form: LogForm,
    counters: &Counters,
    noted: &mut u64,
) -> io::Result<()> {
    let dropped = counters.dropped.load(Ordering::SeqCst);
    if dropped == *noted || form == LogForm::Pcap {
        return Ok(());
    }
    let line = dump::dropped_line(SystemTime::now(), dropped - *noted);
    *noted = dropped;
    out.write_all(line.as_bytes())
}

fn write_record(out: &mut impl Write, form: LogForm, rec: &Record) -> io::Result<()> {
    let body = |data: &[u8]| match form {
        LogForm::Hex => dump::hex(data),
        _ => dump::text(data),
    };
    match rec {
        Record::Stream {
            time,
            name,
            dir,
            from,
            data,
        } => {
            out.write_all(dump::stream_header(*dir, *time, name, *from, data.len()).as_bytes())?;
            out.write_all(body(data).as_bytes())
        }
        Record::Datagram {
            time,
            name,
            dir,
            peer,
            data,
        } => {
            out.write_all(dump::datagram_header(*dir, *time, name, *peer, data.len()).as_bytes())?;
            out.write_all(body(data).as_bytes())
        }
        Record::Note { time, name, text } => {
            out.write_all(dump::note_line(*time, name, text).as_bytes())
        }
        Record::Frame { time, data, len } => {
            out.write_all(&dump::pcap::record_header(*time, data.len(), *len))?;
            out.write_all(data)
        }
    }
}
