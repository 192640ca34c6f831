//! What a transfer can fail with: the peer's verdict, or what went wrong on
//! this side, with which file.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use socklab_frame::{NameError, Reply, Status, WireError};

use super::wire::{Cut, ReadError};
use super::{escape_shown, printable, quote_name};

/// Why a transfer failed.
///
/// Names are stored as they are and shown with [`quote_name`] (escaped
/// once, when shown); reasons that came from the peer are stored with
/// [`escape_shown`] applied, so every message is safe to print.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The peer refused the transfer or its result: its [`Reply`] status and
    /// reason ("receiver refused \"..\": bad name: file name '..' would leave
    /// the directory").
    #[error("{peer} refused {}: {status}: {reason}", quote_name(name))]
    Refused {
        /// Who refused: `"receiver"` (the server of an upload), `"server"`
        /// (the server of a download, refusing the request) or `"client"`
        /// (the client of a download, refusing the data).
        peer: &'static str,
        /// The file's name in the transfer.
        name: String,
        /// The reply's status.
        status: Status,
        /// The reply's reason.
        reason: String,
        /// The reply's offset: bytes the peer keeps for a resume (0: none).
        offset: u64,
    },
    /// This side stopped receiving a file (download) and told the peer
    /// why: the digest did not match, the stream was cut, no space, …
    #[error("download of {} into {} failed: {status}: {reason}", quote_name(name), escape_shown(&path.display().to_string()))]
    Stopped {
        /// The remote name.
        name: String,
        /// The local destination.
        path: PathBuf,
        /// The status sent to the peer.
        status: Status,
        /// Why.
        reason: String,
        /// Bytes kept for a resume (0: none).
        kept: u64,
    },
    /// The name to send is not one plain file name (checked before anything
    /// is sent).
    #[error(
        "{} is not a file name the receiver can accept: {source}",
        quote_name(name)
    )]
    BadName {
        /// The name, control characters escaped.
        name: String,
        /// What is wrong with it.
        #[source]
        source: NameError,
    },
    /// A local path that cannot be a destination file (no file name).
    #[error("{}: {why}", path.display())]
    BadPath {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A local file operation failed.
    #[error("{}: cannot {op}: {source}", path.display())]
    File {
        /// The file (or directory).
        path: PathBuf,
        /// What was being done ("open", "read", "write", …).
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The local destination exists and overwriting was not asked for.
    #[error("{} exists; not overwriting it (overwrite was not asked for)", path.display())]
    Exists {
        /// The destination.
        path: PathBuf,
    },
    /// The local destination is a symbolic link: refused, nothing is written
    /// through links.
    #[error("{} is a symbolic link; refusing to write through it", path.display())]
    Symlink {
        /// The destination.
        path: PathBuf,
    },
    /// A local path is not a regular file (a directory, a device, …).
    #[error("{} is {what}, not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is ("a directory").
        what: &'static str,
    },
    /// Not enough free space for the file (checked with `statvfs` before
    /// any byte is written).
    #[error("no space in {}: {needed} bytes needed, {available} available", dir.display())]
    NoSpace {
        /// The destination directory.
        dir: PathBuf,
        /// Bytes still to receive.
        needed: u64,
        /// Bytes available to this user.
        available: u64,
    },
    /// The local file ended before its size while being sent: it shrank.
    #[error("{} changed while being sent: it ended at byte {at} of {size}", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// Its size when the transfer started.
        size: u64,
        /// Where it ended.
        at: u64,
    },
    /// The connection failed (reset, broken pipe).
    #[error("connection failed while {stage}: {source}")]
    Connection {
        /// What this side was doing.
        stage: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The peer closed the connection before the transfer was over.
    #[error("the peer closed the connection while {stage}")]
    Closed {
        /// What this side was doing.
        stage: &'static str,
    },
    /// Nothing moved on the connection for too long: says how long this
    /// side waited, for what, and what had moved by then.
    #[error("waited {after:?} while {stage}; {}", moved_words(*sent, *received))]
    Timeout {
        /// What this side was doing ("reading the receiver's answer to
        /// the header").
        stage: &'static str,
        /// How long it waited.
        after: Duration,
        /// Bytes this side had sent on the connection.
        sent: u64,
        /// Bytes this side had received on the connection.
        received: u64,
    },
    /// Dropped while still sending its first message: more clients than
    /// the receiver keeps waiting were doing so, and the oldest goes first.
    #[error("dropped while still sending its first message: {waiting} clients were, the most this receiver keeps waiting; the oldest goes first")]
    Crowded {
        /// The most clients kept waiting for their first message.
        waiting: usize,
    },
    /// The peer moved bytes, but fewer than the rate floor asks for: a
    /// trickle was cut.
    #[error("too slow while {stage}: {moved} bytes moved in the last {window:?}, at least {floor} are due in every {window:?}")]
    TooSlow {
        /// What this side was doing.
        stage: &'static str,
        /// Bytes that moved in the last window.
        moved: u64,
        /// Bytes due per window.
        floor: u64,
        /// The window.
        window: Duration,
    },
    /// The peer sent bytes that are not the message expected.
    #[error("the peer broke the protocol while {stage}: {source}")]
    Protocol {
        /// What this side was doing.
        stage: &'static str,
        /// What was wrong with the bytes.
        #[source]
        source: WireError,
    },
    /// The peer sent a valid message that makes no sense at this point (a
    /// header for another file, an offset beyond the size).
    #[error("the peer broke the protocol while {stage}: {what}")]
    Unexpected {
        /// What this side was doing.
        stage: &'static str,
        /// What was wrong.
        what: String,
    },
}

impl TransferError {
    /// The protocol status of the peer's refusal, or of this side's
    /// verdict for [`TransferError::Stopped`]; `None` for local and
    /// connection errors.
    pub fn status(&self) -> Option<Status> {
        match self {
            TransferError::Refused { status, .. } | TransferError::Stopped { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// The peer's non-OK reply as an error.
pub(super) fn refused(peer: &'static str, name: &str, reply: Reply) -> TransferError {
    TransferError::Refused {
        peer,
        name: name.to_owned(),
        status: reply.status,
        reason: printable(&reply.reason),
        offset: reply.offset,
    }
}

/// A connection that stopped delivering, as an error.
pub(super) fn cut_error(stage: &'static str, cut: Cut) -> TransferError {
    match cut {
        Cut::Eof => TransferError::Closed { stage },
        Cut::Io(source) => TransferError::Connection { stage, source },
        Cut::Timeout(w) => TransferError::Timeout {
            stage,
            after: w.after,
            sent: w.sent,
            received: w.received,
        },
        Cut::TooSlow(slow) => TransferError::TooSlow {
            stage,
            moved: slow.moved,
            floor: slow.floor.bytes,
            window: slow.floor.window,
        },
    }
}

/// What had moved on a connection when a wait gave up, in words: "sent 57
/// bytes, got nothing back".
fn moved_words(sent: u64, received: u64) -> String {
    let got = if received == 0 {
        "got nothing back".to_owned()
    } else {
        format!("received {received} bytes")
    };
    format!("sent {sent} bytes, {got}")
}

/// A failed message read, as an error.
pub(super) fn read_error(stage: &'static str, e: ReadError) -> TransferError {
    match e {
        ReadError::Wire(source) => TransferError::Protocol { stage, source },
        ReadError::Cut(cut) => cut_error(stage, cut),
    }
}

/// A failed local file operation, as an error.
pub(super) fn file_error(
    path: &std::path::Path,
    op: &'static str,
    source: io::Error,
) -> TransferError {
    TransferError::File {
        path: path.to_owned(),
        op,
        source,
    }
}
