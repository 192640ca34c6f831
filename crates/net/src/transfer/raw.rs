//! The lecture's upload (§12): the file's bytes, then end of stream.
//!
//! No name, no size, no digest travel: the receiver cannot tell a complete
//! file from a connection that broke with a FIN, and nothing is verified.
//! These functions exist so that socklab can talk to the lecture's Python
//! programs and to `nc`; each still computes the BLAKE3 of what it sent or
//! saved, on its own side, for a person to compare.

use std::path::Path;
use std::time::{Duration, Instant};

use super::error::{cut_error, file_error, TransferError};
use super::pump::{self, RecvStop, Transport, Until};
use super::receive::store_pending;
use super::send::open_source;
use super::store::{PlaceError, Work};
use super::wire::{BodyError, Conn, Cut, SendError};
use super::{check_dest, split_dest, RawReport, CHUNK, DEFAULT_IDLE_TIMEOUT};

/// Sends the bytes of `file` over `stream` and shuts down the sending side
/// (`shutdown(SHUT_WR)`): what the lecture's server and `nc -l` expect. The
/// peer receives a byte-identical file. Then waits briefly (at most 2 s)
/// for the peer to close, reading and discarding anything it sends, so that
/// closing cannot reset the connection under data still in flight.
///
/// `progress(bytes sent, file size)` is called at the start and after each
/// chunk.
///
/// # Errors
///
/// [`TransferError::File`] or [`TransferError::NotAFile`] for the local
/// file; connection errors while sending.
pub async fn upload_raw<S>(
    stream: S,
    file: &Path,
    progress: impl FnMut(u64, u64),
) -> Result<RawReport, TransferError>
where
    S: Transport,
{
    upload_raw_within(stream, file, DEFAULT_IDLE_TIMEOUT, progress).await
}

/// [`upload_raw`], where a write that makes no progress for `wait` (a
/// peer that does not read) gives up with a [`TransferError::Timeout`].
///
/// # Errors
///
/// As [`upload_raw`].
pub async fn upload_raw_within<S>(
    stream: S,
    file: &Path,
    wait: Duration,
    mut progress: impl FnMut(u64, u64),
) -> Result<RawReport, TransferError>
where
    S: Transport,
{
    let (src, size) = open_source(file).await?;
    let started = Instant::now();
    let mut conn = Conn::open(stream, wait);
    progress(0, size);
    if let Some(link) = conn.link() {
        let handle = src.share();
        let mut report = |done: u64| progress(done, size.max(done));
        let ran = pump::run(link, 0, &mut report, move |link| {
            pump::send_file(link, &handle, 0, Until::Eof, false)
        })
        .await;
        let (sent, back) = ran.map_err(|e| cut_error("sending the file", Cut::Io(e)))?;
        conn.take_back(back);
        let (hasher, sent) = match sent {
            Ok(sent) => sent,
            Err(BodyError::File(e)) => return Err(file_error(file, "read", e)),
            Err(BodyError::Send(SendError::Cut(cut))) => {
                return Err(cut_error("sending the file", cut))
            }
            Err(e) => {
                return Err(TransferError::Unexpected {
                    stage: "sending the file",
                    what: format!("{e:?}"),
                })
            }
        };
        let peer_closed = conn.linger().await;
        return Ok(RawReport {
            path: file.to_owned(),
            bytes: sent,
            digest: *hasher.finalize().as_bytes(),
            elapsed: started.elapsed(),
            peer_closed,
        });
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; CHUNK];
    let mut sent = 0u64;
    loop {
        let (back, n) = src.read(buf, CHUNK).await;
        buf = back;
        let n = n.map_err(|e| file_error(file, "read", e))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        conn.send(chunk)
            .await
            .map_err(|cut| cut_error("sending the file", cut))?;
        hasher.update(chunk);
        sent += n as u64;
        progress(sent, size.max(sent));
    }
    let peer_closed = conn.linger().await;
    Ok(RawReport {
        path: file.to_owned(),
        bytes: sent,
        digest: *hasher.finalize().as_bytes(),
        elapsed: started.elapsed(),
        peer_closed,
    })
}

/// Saves everything one connection sends, until its end of stream, as
/// `dest`: what the lecture's client and `nc -N` send. The bytes go into a
/// temporary file beside `dest`, which is flushed and renamed to `dest`
/// only at the end of stream; a connection that fails (reset) or stalls for
/// [`DEFAULT_IDLE_TIMEOUT`] leaves nothing. An existing `dest` is replaced
/// only with `overwrite`; a symbolic link at `dest` is refused.
///
/// The raw stream has no size and no digest: a peer that dies with a FIN
/// looks like a finished upload, and nothing is verified. The report's
/// digest is computed here only.
///
/// # Errors
///
/// [`TransferError::Exists`], [`TransferError::Symlink`],
/// [`TransferError::NotAFile`], [`TransferError::BadPath`] for `dest`
/// (before anything is read); [`TransferError::File`] for a failed write
/// (no space); connection errors.
pub async fn receive_raw<S>(
    stream: S,
    dest: &Path,
    overwrite: bool,
) -> Result<RawReport, TransferError>
where
    S: Transport,
{
    let (dir, _) = split_dest(dest)?;
    check_dest(dest, overwrite).await?;
    let mut work = Work::temp(&dir)
        .await
        .map_err(|e| file_error(&dir, "create a temporary file in", e))?;
    let started = Instant::now();
    let mut conn = Conn::open(stream, DEFAULT_IDLE_TIMEOUT);
    conn.grow();
    let mut hasher = blake3::Hasher::new();
    let mut bytes = 0u64;
    if let Some(link) = conn.link() {
        let file = work.file.share();
        let ran = pump::run(link, 0, &mut |_: u64| {}, move |link| {
            let mut fed = blake3::Hasher::new();
            let (end, stop) = pump::receive_into(link, &file, &mut fed, 0, None);
            (end, stop, fed)
        })
        .await;
        let stop = match ran {
            Ok(((end, stop, fed), back)) => {
                conn.take_back(back);
                (bytes, hasher) = (end, fed);
                stop
            }
            Err(e) => Some(RecvStop::Cut(Cut::Io(e))),
        };
        match stop {
            None => {}
            Some(RecvStop::Cut(cut)) => {
                work.discard().await;
                return Err(cut_error("receiving the file", cut));
            }
            Some(RecvStop::Write(e)) => {
                work.discard().await;
                return Err(file_error(dest, "write", e));
            }
        }
    } else {
        loop {
            match conn.fill().await {
                Ok(_) => {}
                Err(Cut::Eof) => break,
                Err(cut) => {
                    work.discard().await;
                    return Err(cut_error("receiving the file", cut));
                }
            }
            match store_pending(&mut conn, &work, &mut hasher, u64::MAX).await {
                Ok(n) => bytes += n as u64,
                Err(e) => {
                    work.discard().await;
                    return Err(file_error(dest, "write", e));
                }
            }
        }
    }
    match work.place(dest, overwrite).await {
        Ok(()) => {}
        Err(PlaceError::Exists) => {
            work.discard().await;
            return Err(TransferError::Exists {
                path: dest.to_owned(),
            });
        }
        Err(PlaceError::Io(e)) => {
            work.discard().await;
            return Err(file_error(dest, "store", e));
        }
    }
    conn.shutdown().await;
    Ok(RawReport {
        path: dest.to_owned(),
        bytes,
        digest: *hasher.finalize().as_bytes(),
        elapsed: started.elapsed(),
        peer_closed: true,
    })
}
