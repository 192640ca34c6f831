//! File transfer over one connection: verified, resumable, atomic uploads
//! and downloads, and the raw byte stream of lecture §12.
//!
//! The protocol is `docs/protocol.md`; its messages are `socklab-frame`'s
//! ([`socklab_frame::Header`], [`socklab_frame::Request`],
//! [`socklab_frame::Reply`], [`socklab_frame::Trailer`]). This module does
//! the I/O: one request per connection.
//!
//! - A receiver ([`ReceiverConfig`], [`serve_connection`]) stores uploads
//!   in one directory and offers that directory's files for download.
//! - A client [`upload`]s a file (BLAKE3 computed while sending, checked by
//!   the receiver) or [`download`]s one (checked here).
//! - [`upload_raw`] and [`receive_raw`] speak the lecture's protocol: the
//!   bytes, then end of stream. No name, no size, no digest: a connection
//!   that breaks with a FIN looks like a complete file. They exist to talk
//!   to the lecture's Python programs, `nc -l` and `nc -N`.
//!
//! # On disk
//!
//! Received bytes go into a working file in the destination directory,
//! never under the final name: the resume slot `.socklab-<key>.part` (with
//! its sidecar `.socklab-<key>.meta`: name, size, algorithm, bytes held and
//! their BLAKE3) or, when that slot is busy or for raw receives, an
//! anonymous `.socklab-tmp-<pid>-<random>`. `<key>` is 32 hex digits of the
//! BLAKE3 of the destination name. Working files are created with
//! `O_EXCL|O_NOFOLLOW`, mode 0600; a slot's `.part` that is not such a file
//! of ours is replaced, never resumed from. A verified file is given mode
//! 0600, `fsync`ed, then
//! renamed to its name (overwrite) or hard-linked to it (no overwrite: fails
//! if the name exists, so a concurrent finisher cannot be replaced). Names
//! starting with `.socklab-` are reserved: never accepted, never offered.
//!
//! # Resume
//!
//! A cut upload (the stream ended, the connection failed, nothing arrived
//! for [`ReceiverConfig::idle_timeout`]) keeps its bytes in the slot, flushed
//! to disk, and the sidecar records them. The next upload of the same name,
//! size and algorithm that allows a resume (`resume: true`) starts where
//! they end, and the final digest covers the whole file. The hash state of
//! a partial this process kept is remembered (in memory, while the `.part`
//! file is unchanged), so a resume re-reads nothing; a partial it does not
//! know is re-read once, checked against the sidecar's BLAKE3 and fed to
//! the hasher. A partial of another size, a changed one, or an upload
//! without resume discards it. Downloads resume the same way into the local
//! directory's slot.
//!
//! # Invariants
//!
//! - Nothing here prints: results are returned, progress is a callback.
//! - No file under a final name is ever partial or unverified.
//! - Nothing is created outside the destination directory, and nothing is
//!   written through a symbolic link.
//! - Memory is bounded whatever the peer sends: every length is checked
//!   before it is used, files are streamed in chunks of [`CHUNK`] bytes
//!   (1 MiB pieces on the transfer thread of a kernel socket: one buffer
//!   per transfer, whatever the file's size).
//!
//! # The data on a thread of its own
//!
//! Over a kernel socket ([`Transport::socket_fd`]) the data phase runs on
//! a thread per transfer with plain system calls (`pread`, `sendfile`,
//! `recv`, `write`) on a duplicate of the socket: see `pump.rs`. Dropping
//! a transfer's future stops that thread and closes the duplicate.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use socklab_frame::{Status, DIGEST_LEN};

mod client;
mod error;
mod hashing;
mod pump;
mod raw;
mod receive;
mod send;
mod server;
mod store;
mod wire;

#[cfg(test)]
mod tests;

pub use client::{download, download_within, upload, upload_within};
pub use error::TransferError;
pub use pump::Transport;
pub use raw::{receive_raw, upload_raw, upload_raw_within};
pub use server::{list_offered, serve_admitted, serve_connection, Admission};
pub use wire::Floor;

/// The largest piece of a file read, written or sent at once (64 KiB).
pub const CHUNK: usize = 64 * 1024;

/// How long a side waits for a single read or write to make progress before
/// it gives up (a peer that stalls): 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a receiver's client has to send its whole first message (a
/// header or a request), however it trickles: 10 s.
pub const DEFAULT_HEADER_DEADLINE: Duration = Duration::from_secs(10);

/// The least a receiver's transfer must move once its first message is
/// in: 16 KiB in every 10 s (a byte now and then does not hold a slot).
pub const DEFAULT_FLOOR: Floor = Floor {
    bytes: 16 * 1024,
    window: Duration::from_secs(10),
};

/// The prefix of the receiver's working files. Names starting with it are
/// refused for upload and never offered for download.
pub const RESERVED_PREFIX: &str = ".socklab-";

/// How a receiver stores uploads and serves downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// The directory that uploads go into and downloads come from. Nothing
    /// is created outside it.
    pub dir: PathBuf,
    /// Whether an upload replaces an existing file of its name (atomically).
    /// If not, it is refused with [`Status::Exists`].
    pub overwrite: bool,
    /// The largest declared size accepted, checked before any byte is
    /// written ([`Status::TooLarge`]); `None`: only free space limits it
    /// ([`Status::NoSpace`]).
    pub max_size: Option<u64>,
    /// How long one read or write may make no progress before the
    /// connection is given up (a cut upload keeps its bytes for a resume).
    pub idle_timeout: Duration,
    /// How long a client has for its whole first message, however it
    /// trickles ([`DEFAULT_HEADER_DEADLINE`]).
    pub header_deadline: Duration,
    /// The least a transfer must move per window once its first message is
    /// in (`None`: no floor, only `idle_timeout`). A slower one is cut
    /// (an upload keeps its bytes for a resume).
    pub floor: Option<Floor>,
}

impl ReceiverConfig {
    /// A receiver for `dir` that does not overwrite, has no size limit,
    /// gives up on a peer silent for [`DEFAULT_IDLE_TIMEOUT`], wants the
    /// first message within [`DEFAULT_HEADER_DEADLINE`] and the data at
    /// [`DEFAULT_FLOOR`] at least.
    pub fn new(dir: impl Into<PathBuf>) -> ReceiverConfig {
        ReceiverConfig {
            dir: dir.into(),
            overwrite: false,
            max_size: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            header_deadline: DEFAULT_HEADER_DEADLINE,
            floor: Some(DEFAULT_FLOOR),
        }
    }
}

/// What [`serve_connection`] did with one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// A file was uploaded, verified and stored.
    Uploaded {
        /// Its name in the directory.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// BLAKE3 of the whole file, checked against the sender's trailer.
        digest: [u8; DIGEST_LEN],
        /// Bytes that were already held from an earlier, cut upload (0: a
        /// fresh upload).
        resumed_from: u64,
        /// Where it is stored.
        path: PathBuf,
        /// From the first message to the stored file.
        elapsed: Duration,
    },
    /// A file was sent to a client, which verified it.
    Downloaded {
        /// Its name in the directory.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// Where the data started (bytes the client held already).
        offset: u64,
        /// BLAKE3 of the whole file.
        digest: [u8; DIGEST_LEN],
        /// From the first message to the client's verdict.
        elapsed: Duration,
    },
    /// This side refused the request or the data, and told the peer (if the
    /// connection still allowed it) with the same status and reason.
    Refused {
        /// The name the peer asked for, as it came (show it with
        /// [`quote_name`]); `None` if its first message could not be
        /// decoded.
        name: Option<String>,
        /// The status sent.
        status: Status,
        /// The reason sent.
        reason: String,
        /// Bytes kept for a resume (0: none).
        kept: u64,
    },
}

/// The result of an [`upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    /// The name the receiver stored the file under.
    pub name: String,
    /// The file's size in bytes.
    pub size: u64,
    /// Bytes sent on this connection (`size - resumed_from`).
    pub sent: u64,
    /// Bytes the receiver held already from a cut upload.
    pub resumed_from: u64,
    /// BLAKE3 of the whole file, which the receiver verified.
    pub digest: [u8; DIGEST_LEN],
    /// From the header to the receiver's verdict.
    pub elapsed: Duration,
}

impl UploadReport {
    /// Throughput of this connection's data in MiB/s.
    pub fn mib_per_s(&self) -> f64 {
        mib_per_s(self.sent, self.elapsed)
    }
}

impl fmt::Display for UploadReport {
    /// One line: `uploaded "hg.txt": 11 bytes in 0.003 s, 0.00 MiB/s,
    /// blake3 <64 hex>` (with `, resumed at N` after the size if it was).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "uploaded {}: {} bytes",
            quote_name(&self.name),
            self.size
        )?;
        if self.resumed_from > 0 {
            write!(f, " (resumed at {}, sent {})", self.resumed_from, self.sent)?;
        }
        write!(
            f,
            " in {:.3} s, {:.2} MiB/s, blake3 {} (verified by the receiver)",
            self.elapsed.as_secs_f64(),
            self.mib_per_s(),
            digest_hex(&self.digest)
        )
    }
}

/// The result of a [`download`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadReport {
    /// The remote name.
    pub name: String,
    /// Where the file is stored.
    pub path: PathBuf,
    /// The file's size in bytes.
    pub size: u64,
    /// Bytes received on this connection (`size - resumed_from`).
    pub received: u64,
    /// Bytes held already from a cut download.
    pub resumed_from: u64,
    /// BLAKE3 of the whole file, verified here against the sender's trailer.
    pub digest: [u8; DIGEST_LEN],
    /// From the request to the stored file.
    pub elapsed: Duration,
}

impl DownloadReport {
    /// Throughput of this connection's data in MiB/s.
    pub fn mib_per_s(&self) -> f64 {
        mib_per_s(self.received, self.elapsed)
    }
}

impl fmt::Display for DownloadReport {
    /// One line: `downloaded "hg.txt" to out/hg.txt: 11 bytes in 0.003 s,
    /// 0.00 MiB/s, blake3 <64 hex> (verified)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "downloaded {} to {}: {} bytes",
            quote_name(&self.name),
            escape_shown(&self.path.display().to_string()),
            self.size
        )?;
        if self.resumed_from > 0 {
            write!(
                f,
                " (resumed at {}, received {})",
                self.resumed_from, self.received
            )?;
        }
        write!(
            f,
            " in {:.3} s, {:.2} MiB/s, blake3 {} (verified)",
            self.elapsed.as_secs_f64(),
            self.mib_per_s(),
            digest_hex(&self.digest)
        )
    }
}

/// The result of [`upload_raw`] or [`receive_raw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReport {
    /// The file sent, or the file saved.
    pub path: PathBuf,
    /// Bytes sent or saved.
    pub bytes: u64,
    /// BLAKE3 of those bytes, computed on this side only: the raw stream
    /// carries no digest, so nothing was verified. Compare it with the
    /// other side's by hand.
    pub digest: [u8; DIGEST_LEN],
    /// From the first byte to the end.
    pub elapsed: Duration,
    /// [`upload_raw`]: whether the peer closed the connection soon after
    /// the end of stream (the lecture's server does once it has saved the
    /// file). [`receive_raw`]: always true (its end of stream ended it).
    pub peer_closed: bool,
}

impl RawReport {
    /// Throughput in MiB/s.
    pub fn mib_per_s(&self) -> f64 {
        mib_per_s(self.bytes, self.elapsed)
    }
}

impl fmt::Display for RawReport {
    /// One line: `raw: 11 bytes, hg.txt, in 0.003 s, 0.00 MiB/s, blake3
    /// <64 hex> (computed here only: raw carries no digest, nothing was
    /// verified)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "raw: {} bytes, {}, in {:.3} s, {:.2} MiB/s, blake3 {} (computed here only: raw carries no digest, nothing was verified)",
            self.bytes,
            self.path.display(),
            self.elapsed.as_secs_f64(),
            self.mib_per_s(),
            digest_hex(&self.digest)
        )
    }
}

/// A file that [`serve_connection`] offers for download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A digest as lowercase hex (64 digits for BLAKE3-256).
pub fn digest_hex(digest: &[u8; DIGEST_LEN]) -> String {
    hex(digest)
}

/// Bytes as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `bytes` over `elapsed` in MiB/s (0 for no time).
fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        bytes as f64 / (1024.0 * 1024.0) / secs
    } else {
        0.0
    }
}

/// Text from a peer made safe to print: [`escape_shown`].
fn printable(text: &str) -> String {
    escape_shown(text)
}

/// Whether `c` must not reach a terminal raw in a name or text shown to a
/// person (issue 10 item 15): a control character (C0, DEL, C1), a format
/// character (Unicode category Cf: the bidirectional controls U+202A-U+202E,
/// U+2066-U+2069, the marks U+200E, U+200F, U+061C, zero-width characters,
/// the byte-order mark, …), or a line or paragraph separator (U+2028,
/// U+2029). Any of them can reorder, hide or break the line it is in.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// Text shown to a person with every [`is_hidden`] character written as
/// `\u{…}` (hex), everything else as it is. The one escaping of names and
/// peer text for display: apply it once, to the raw text.
pub fn escape_shown(text: &str) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// A name shown to a person, in double quotes: [`escape_shown`], with `"`
/// and `\` escaped too so the quotes are unambiguous (`"hg.txt"`,
/// `"a\u{202e}txt.exe"`). Apply it once, to the raw name.
pub fn quote_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_hidden(c) => out.push_str(&escape_shown(c.encode_utf8(&mut [0; 4]))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The directory and the file name of a destination path.
fn split_dest(path: &Path) -> Result<(PathBuf, &std::ffi::OsStr), TransferError> {
    let name = path.file_name().ok_or_else(|| TransferError::BadPath {
        path: path.to_owned(),
        why: "does not end in a file name",
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// Checks a local destination: not a symbolic link, not a directory, and
/// not an existing file unless `overwrite`.
async fn check_dest(path: &Path, overwrite: bool) -> Result<(), TransferError> {
    match store::symlink_metadata(path).await {
        Ok(meta) if meta.file_type().is_symlink() => Err(TransferError::Symlink {
            path: path.to_owned(),
        }),
        Ok(meta) if !meta.is_file() => Err(TransferError::NotAFile {
            path: path.to_owned(),
            what: kind_of(&meta),
        }),
        Ok(_) if !overwrite => Err(TransferError::Exists {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(error::file_error(path, "look at", e)),
    }
}

/// What a file-system object is, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}
