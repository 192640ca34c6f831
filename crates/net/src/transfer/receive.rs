//! The receiving side's data phase, shared by the upload server and the
//! download client: count the data into the working file, read the
//! trailer, verify, and place the file or keep what resumes.

use std::io;
use std::path::Path;

use socklab_frame::{split_data, DigestAlg, Status, Trailer, DIGEST_LEN};
use tokio::io::{AsyncRead, AsyncWrite};

use super::digest_hex;
use super::pump::{self, RecvStop};
use super::store::{is_no_space, Meta, PlaceError, Work};
use super::wire::{Conn, Cut, ReadError};

/// What is being received.
pub(super) struct Incoming<'a> {
    /// The transfer's name (the remote name, for a download): recorded in
    /// the sidecar of a kept partial.
    pub name: &'a str,
    /// The whole file's size.
    pub size: u64,
    /// Where the data starts: the working file holds bytes `0 .. start`.
    pub start: u64,
    /// The digest algorithm the trailer must use.
    pub alg: DigestAlg,
    /// The final path.
    pub dest: &'a Path,
    /// Whether an existing file at `dest` is replaced.
    pub overwrite: bool,
}

/// How the data phase ended; the caller sends it as the final reply.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Verified and stored under its final name.
    Stored {
        /// BLAKE3 of the whole file.
        digest: [u8; DIGEST_LEN],
    },
    /// Not stored, and why.
    Failed(Refusal),
}

/// Why this side refuses a request or the data, as it tells the peer.
#[derive(Debug)]
pub(super) struct Refusal {
    /// The reply's status.
    pub status: Status,
    /// Why, for a person.
    pub reason: String,
    /// Bytes kept for a resume (0: nothing).
    pub kept: u64,
}

impl Refusal {
    /// A refusal that keeps nothing.
    pub(super) fn new(status: Status, reason: String) -> Refusal {
        Refusal {
            status,
            reason,
            kept: 0,
        }
    }
}

/// Words for how a connection stopped.
pub(super) fn cut_cause(cut: &Cut) -> String {
    match cut {
        Cut::Eof => "the stream ended".to_owned(),
        Cut::Io(e) => format!("the connection failed ({e})"),
        Cut::Timeout(w) => format!("nothing arrived for {}", secs(w.after)),
        Cut::TooSlow(slow) => format!(
            "too slow: {} bytes arrived in the last {}, at least {} are due in every {}",
            slow.moved,
            secs(slow.floor.window),
            slow.floor.bytes,
            secs(slow.floor.window)
        ),
    }
}

/// A duration in seconds, as words.
pub(super) fn secs(d: std::time::Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Keeps the bytes received so far (a slot keeps them, a temporary file
/// does not) and says so.
pub(super) async fn cut_short(
    work: &mut Work,
    hasher: &blake3::Hasher,
    inc: &Incoming<'_>,
    pos: u64,
    what: String,
) -> Verdict {
    let slot = work.is_slot();
    let meta = Meta {
        name: inc.name.to_owned(),
        size: inc.size,
        alg: inc.alg,
        held: pos,
        digest: *hasher.clone().finalize().as_bytes(),
    };
    let (kept, note) = match work.keep(&meta, hasher).await {
        Ok(0) if !slot => (
            0,
            "; nothing kept (another transfer of this name holds its resume slot)".to_owned(),
        ),
        Ok(0) => (0, "; nothing kept".to_owned()),
        Ok(kept) => (kept, format!("; kept {kept} bytes for a resume")),
        Err(e) => (0, format!("; nothing kept (keeping failed: {e})")),
    };
    Verdict::Failed(Refusal {
        status: Status::ShortData,
        reason: format!("{what}{note}"),
        kept,
    })
}

/// Removes the working file and fails with `status`.
async fn fail(work: &mut Work, status: Status, reason: String) -> Verdict {
    work.discard().await;
    Verdict::Failed(Refusal::new(status, reason))
}

/// Receives `inc.size - inc.start` bytes of data and the trailer into
/// `work` (positioned at `inc.start`, with `hasher` fed bytes
/// `0 .. start`), verifies the digest of the whole file and places it at
/// `inc.dest`. Calls `progress(bytes held, size)` after each chunk.
///
/// Every failure leaves no file under the final name: a cut stream keeps
/// its bytes in the slot for a resume, anything else removes them.
pub(super) async fn receive_file<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    work: &mut Work,
    mut hasher: blake3::Hasher,
    inc: &Incoming<'_>,
    progress: &mut impl FnMut(u64, u64),
) -> Verdict {
    let pos = match receive_data(conn, work, &mut hasher, inc, progress).await {
        Ok(pos) => pos,
        Err(verdict) => return verdict,
    };
    let digest = match check_trailer(conn, work, hasher, inc, pos).await {
        Ok(digest) => digest,
        Err(verdict) => return verdict,
    };
    place_file(work, inc, digest).await
}

/// Writes the data into `work` and feeds it to `hasher` until the whole
/// file is held; returns where the data ends. A cut stream keeps what
/// arrived, a failed write nothing.
async fn receive_data<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    work: &mut Work,
    hasher: &mut blake3::Hasher,
    inc: &Incoming<'_>,
    progress: &mut impl FnMut(u64, u64),
) -> Result<u64, Verdict> {
    conn.grow();
    let mut pos = inc.start;
    progress(pos, inc.size);
    if !conn.pending().is_empty() {
        match store_pending(conn, work, hasher, inc.size - pos).await {
            Ok(n) => pos += n as u64,
            Err(e) => return Err(write_failed(work, pos, &e).await),
        }
        progress(pos, inc.size);
    }
    if let Some(link) = conn.link() {
        let (file, size) = (work.file.share(), inc.size);
        let fed = std::mem::take(hasher);
        let mut report = |done: u64| progress(done, size);
        let ran = pump::run(link, pos, &mut report, move |link| {
            let mut fed = fed;
            let (end, stop) = pump::receive_into(link, &file, &mut fed, pos, Some(size));
            (end, stop, fed)
        })
        .await;
        let ((end, stop, fed), back) = match ran {
            Ok(ran) => ran,
            Err(e) => {
                let reason = format!("the transfer thread failed ({e}); nothing kept");
                return Err(fail(work, Status::Internal, reason).await);
            }
        };
        conn.take_back(back);
        *hasher = fed;
        return match stop {
            None => Ok(end),
            Some(RecvStop::Write(e)) => Err(write_failed(work, end, &e).await),
            Some(RecvStop::Cut(cut)) => {
                let what = format!(
                    "{} after {} of {} bytes of data",
                    cut_cause(&cut),
                    end - inc.start,
                    inc.size - inc.start
                );
                Err(cut_short(work, hasher, inc, end, what).await)
            }
        };
    }
    while pos < inc.size {
        if conn.pending().is_empty() {
            if let Err(cut) = conn.fill().await {
                let what = format!(
                    "{} after {} of {} bytes of data",
                    cut_cause(&cut),
                    pos - inc.start,
                    inc.size - inc.start
                );
                return Err(cut_short(work, hasher, inc, pos, what).await);
            }
        }
        let n = match store_pending(conn, work, hasher, inc.size - pos).await {
            Ok(n) => n,
            Err(e) => return Err(write_failed(work, pos, &e).await),
        };
        pos += n as u64;
        progress(pos, inc.size);
    }
    Ok(pos)
}

/// A failed write of the working file after `pos` bytes: nothing kept.
async fn write_failed(work: &mut Work, pos: u64, e: &io::Error) -> Verdict {
    if is_no_space(e) {
        let reason =
            format!("no space left to store the file after {pos} bytes ({e}); nothing kept");
        fail(work, Status::NoSpace, reason).await
    } else {
        let reason = format!("writing the file failed after {pos} bytes ({e}); nothing kept");
        fail(work, Status::Internal, reason).await
    }
}

/// Writes the bytes the connection has read, at most `due` of them, at
/// the working file's position, feeds them to `hasher` and consumes them;
/// returns how many.
///
/// # Errors
///
/// The OS error of the write; the bytes are then neither hashed nor
/// consumed.
pub(super) async fn store_pending<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    work: &Work,
    hasher: &mut blake3::Hasher,
    due: u64,
) -> io::Result<usize> {
    let (data, _) = split_data(conn.pending(), due);
    work.file.write_all(data).await?;
    hasher.update(data);
    let n = data.len();
    conn.consume(n);
    Ok(n)
}

/// Reads the trailer after the data (which ends at `pos`) and checks it
/// against the digest of the bytes received; returns that digest. A cut
/// stream keeps the data, anything else nothing.
async fn check_trailer<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    work: &mut Work,
    hasher: blake3::Hasher,
    inc: &Incoming<'_>,
    pos: u64,
) -> Result<[u8; DIGEST_LEN], Verdict> {
    let trailer = match conn.read_msg(Trailer::decode).await {
        Ok(trailer) => trailer,
        Err(ReadError::Cut(cut)) => {
            let what = format!(
                "{} before the whole trailer arrived (all {} bytes of data are here)",
                cut_cause(&cut),
                inc.size
            );
            return Err(cut_short(work, &hasher, inc, pos, what).await);
        }
        Err(ReadError::Wire(e)) => {
            let reason = format!("after the data, expected the trailer: {e}; nothing kept");
            return Err(fail(work, e.status(), reason).await);
        }
    };
    if trailer.alg != inc.alg {
        let reason = format!(
            "the trailer's digest algorithm {} differs from the header's {}; nothing kept",
            trailer.alg, inc.alg
        );
        return Err(fail(work, Status::BadHeader, reason).await);
    }
    let digest = *hasher.finalize().as_bytes();
    if digest != trailer.digest {
        let reason = format!(
            "the received bytes have BLAKE3 {}, the trailer says {}; nothing kept",
            digest_hex(&digest),
            digest_hex(&trailer.digest)
        );
        return Err(fail(work, Status::DigestMismatch, reason).await);
    }
    Ok(digest)
}

/// Gives the verified file (of BLAKE3 `digest`) its final name.
async fn place_file(work: &mut Work, inc: &Incoming<'_>, digest: [u8; DIGEST_LEN]) -> Verdict {
    match work.place(inc.dest, inc.overwrite).await {
        Ok(()) => Verdict::Stored { digest },
        Err(PlaceError::Exists) => {
            let reason = format!(
                "{:?} was created by someone else while this transfer ran, and existing files are not overwritten; nothing kept",
                inc.dest.file_name().unwrap_or_default()
            );
            fail(work, Status::Exists, reason).await
        }
        Err(PlaceError::Io(e)) => {
            let status = if is_no_space(&e) {
                Status::NoSpace
            } else {
                Status::Internal
            };
            let reason = format!("storing the verified file failed ({e}); nothing kept");
            fail(work, status, reason).await
        }
    }
}
