//! The client: upload one file, or download one.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use socklab_frame::{check_name, DigestAlg, Header, Reply, Request, Status, Trailer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{cut_error, file_error, read_error, refused, TransferError};
use super::receive::{receive_file, Incoming, Verdict};
use super::server::body_error;
use super::store::{available_space, DiskFile, Work};
use super::wire::{send_body, BodyError, Conn, ReadError};
use super::{
    check_dest, kind_of, printable, split_dest, DownloadReport, UploadReport, DEFAULT_IDLE_TIMEOUT,
};

/// Checks a name before it is sent.
fn checked_name(name: &str) -> Result<(), TransferError> {
    check_name(name).map_err(|source| TransferError::BadName {
        name: printable(name),
        source,
    })
}

/// Uploads `file` over `stream` to a receiver ([`super::serve_connection`])
/// that stores it as `remote_name`.
///
/// Streams the file in chunks, computing its BLAKE3 while sending; the
/// receiver checks it before the file gets its name. With `resume`, a
/// receiver that holds the first bytes of this file (same name and size)
/// from a cut upload keeps them and only the rest is sent; without it, the
/// receiver starts afresh.
///
/// `progress(bytes the receiver holds, size)` is called once at the start
/// (from the resume point) and after each chunk of at most
/// [`super::CHUNK`] bytes.
///
/// # Errors
///
/// - [`TransferError::BadName`] if `remote_name` is not one plain file name
///   (nothing is sent);
/// - [`TransferError::File`], [`TransferError::NotAFile`],
///   [`TransferError::FileChanged`] for the local file;
/// - [`TransferError::Refused`] (`peer == "receiver"`) with the receiver's
///   status and reason, whether it refused the header, stopped mid-stream
///   (no space) or rejected the result (digest mismatch);
/// - connection and protocol errors.
pub async fn upload<S>(
    stream: S,
    file: &Path,
    remote_name: &str,
    resume: bool,
    mut progress: impl FnMut(u64, u64),
) -> Result<UploadReport, TransferError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    checked_name(remote_name)?;
    let src = DiskFile::open_read(file)
        .await
        .map_err(|e| file_error(file, "open", e))?;
    let meta = src
        .metadata()
        .await
        .map_err(|e| file_error(file, "look at", e))?;
    if !meta.is_file() {
        return Err(TransferError::NotAFile {
            path: file.to_owned(),
            what: kind_of(&meta),
        });
    }
    let size = meta.len();
    let started = Instant::now();
    let mut conn = Conn::new(stream, DEFAULT_IDLE_TIMEOUT);
    let header = Header {
        name: remote_name.to_owned(),
        size,
        alg: DigestAlg::Blake3,
        offset: if resume { size } else { 0 },
    };
    let mut out = Vec::with_capacity(300);
    header
        .encode(&mut out)
        .map_err(|source| TransferError::Protocol {
            stage: "encoding the header",
            source,
        })?;
    conn.send(&out)
        .await
        .map_err(|cut| cut_error("sending the header", cut))?;
    let answer = conn
        .read_msg(Reply::decode)
        .await
        .map_err(|e| read_error("reading the receiver's answer", e))?;
    if !answer.status.is_ok() {
        return Err(refused("receiver", remote_name, answer));
    }
    let start = answer.offset;
    if start > size {
        return Err(TransferError::Unexpected {
            stage: "reading the receiver's answer",
            what: format!("it asks for data from byte {start} of a {size}-byte file"),
        });
    }
    let digest = send_body(&mut conn, &src, size, start, &mut progress)
        .await
        .map_err(|e| body_error(e, "receiver", remote_name, file, size))?;
    let mut out = Vec::with_capacity(64);
    Trailer {
        alg: DigestAlg::Blake3,
        digest,
    }
    .encode(&mut out);
    conn.send_watching(&out)
        .await
        .map_err(|e| body_error(BodyError::Send(e), "receiver", remote_name, file, size))?;
    conn.shutdown().await;
    let verdict = conn
        .read_msg(Reply::decode)
        .await
        .map_err(|e| read_error("reading the receiver's verdict", e))?;
    if !verdict.status.is_ok() {
        return Err(refused("receiver", remote_name, verdict));
    }
    if verdict.offset != size {
        return Err(TransferError::Unexpected {
            stage: "reading the receiver's verdict",
            what: format!("it says it stored {} of {size} bytes", verdict.offset),
        });
    }
    Ok(UploadReport {
        name: remote_name.to_owned(),
        size,
        sent: size - start,
        resumed_from: start,
        digest,
        elapsed: started.elapsed(),
    })
}

/// Downloads the file `remote_name` that the server on `stream` offers
/// into the local path `local`.
///
/// The same rules as the receiver's hold here: the data goes into a working
/// file beside `local`, its BLAKE3 is checked against the server's trailer,
/// and only then it is flushed and renamed to `local`. An existing `local`
/// is replaced only with `overwrite`; a symbolic link at `local` is
/// refused. A cut download keeps its bytes (in `local`'s directory, see the
/// module docs), and the next download of the same remote name to the same
/// `local` resumes after them.
///
/// `progress(bytes held, size)` is called when the data starts and after
/// each chunk.
///
/// # Errors
///
/// - [`TransferError::BadName`] if `remote_name` is not one plain name;
/// - [`TransferError::Exists`], [`TransferError::Symlink`],
///   [`TransferError::NotAFile`], [`TransferError::BadPath`],
///   [`TransferError::NoSpace`], [`TransferError::File`] for `local`
///   (checked before the request is sent, except the free space, which
///   needs the size);
/// - [`TransferError::Refused`] (`peer == "server"`): the server refused
///   the request (not found, bad name);
/// - [`TransferError::Stopped`]: this side refused the data (digest
///   mismatch, short data, no space) and told the server;
/// - connection and protocol errors.
pub async fn download<S>(
    stream: S,
    remote_name: &str,
    local: &Path,
    overwrite: bool,
    mut progress: impl FnMut(u64, u64),
) -> Result<DownloadReport, TransferError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    checked_name(remote_name)?;
    let (dir, file_name) = split_dest(local)?;
    check_dest(local, overwrite).await?;
    let mut work = Work::open(&dir, file_name.as_bytes())
        .await
        .map_err(|e| file_error(&dir, "create a working file in", e))?;
    let held = work
        .held(
            |m| m.name == remote_name && m.alg == DigestAlg::Blake3,
            u64::MAX,
        )
        .await
        .map_err(|e| file_error(work.path(), "read", e))?;
    let (held_size, held, held_hasher) = match held {
        Some((meta, hasher)) => (Some(meta.size), meta.held, hasher),
        None => (None, 0, blake3::Hasher::new()),
    };

    let started = Instant::now();
    let mut conn = Conn::new(stream, DEFAULT_IDLE_TIMEOUT);
    let mut out = Vec::with_capacity(300);
    Request {
        name: remote_name.to_owned(),
        offset: held,
    }
    .encode(&mut out)
    .map_err(|source| TransferError::Protocol {
        stage: "encoding the request",
        source,
    })?;
    conn.send(&out)
        .await
        .map_err(|cut| cut_error("sending the request", cut))?;
    let answer = conn
        .read_msg(Reply::decode)
        .await
        .map_err(|e| read_error("reading the server's answer", e))?;
    if !answer.status.is_ok() {
        return Err(refused("server", remote_name, answer));
    }
    let start = answer.offset;
    let hasher = if start == held {
        held_hasher
    } else if start == 0 {
        blake3::Hasher::new()
    } else {
        let what = format!("it starts at byte {start}, but {held} bytes were asked for");
        stop_early(&mut conn, Status::BadHeader, &what).await;
        return Err(TransferError::Unexpected {
            stage: "reading the server's answer",
            what,
        });
    };
    let header = match conn.read_msg(Header::decode).await {
        Ok(header) => header,
        Err(ReadError::Wire(e)) => {
            stop_early(&mut conn, e.status(), &e.to_string()).await;
            return Err(read_error("reading the header", ReadError::Wire(e)));
        }
        Err(e) => return Err(read_error("reading the header", e)),
    };
    if header.name != remote_name || header.offset != start {
        let what = format!(
            "the header is for {:?} from byte {}, the request for {:?} from byte {start}",
            printable(&header.name),
            header.offset,
            printable(remote_name)
        );
        stop_early(&mut conn, Status::BadHeader, &what).await;
        return Err(TransferError::Unexpected {
            stage: "reading the header",
            what,
        });
    }
    if start > 0 && held_size != Some(header.size) {
        work.discard().await;
        let reason = format!(
            "the {held} bytes kept from a cut download are of a {}-byte file, this one has {} bytes; discarded them",
            held_size.unwrap_or(0),
            header.size
        );
        stop_early(&mut conn, Status::DigestMismatch, &reason).await;
        return Err(TransferError::Stopped {
            name: printable(remote_name),
            path: local.to_owned(),
            status: Status::DigestMismatch,
            reason,
            kept: 0,
        });
    }
    let needed = header.size - start;
    let available = available_space(&dir)
        .await
        .map_err(|e| file_error(&dir, "measure the free space of", e))?;
    if needed > available {
        let reason = format!(
            "{needed} more bytes needed, {} has {available} available",
            dir.display()
        );
        stop_early(&mut conn, Status::NoSpace, &reason).await;
        return Err(TransferError::NoSpace {
            dir,
            needed,
            available,
        });
    }
    if let Err(e) = work.truncate_to(start).await {
        work.discard().await;
        stop_early(&mut conn, Status::Internal, &e.to_string()).await;
        return Err(file_error(work.path(), "prepare", e));
    }

    let inc = Incoming {
        name: remote_name,
        size: header.size,
        start,
        alg: header.alg,
        dest: local,
        overwrite,
    };
    match receive_file(&mut conn, &mut work, hasher, &inc, &mut progress).await {
        Verdict::Stored { digest } => {
            // The file is stored and verified here; the server hearing so
            // is a courtesy.
            let _ = conn
                .reply(&Reply::new(Status::Ok, header.size, "stored"))
                .await;
            conn.shutdown().await;
            Ok(DownloadReport {
                name: remote_name.to_owned(),
                path: local.to_owned(),
                size: header.size,
                received: header.size - start,
                resumed_from: start,
                digest,
                elapsed: started.elapsed(),
            })
        }
        Verdict::Failed {
            status,
            reason,
            kept,
        } => {
            let _ = conn.reply(&Reply::new(status, kept, &reason)).await;
            conn.linger().await;
            Err(TransferError::Stopped {
                name: printable(remote_name),
                path: local.to_owned(),
                status,
                reason,
                kept,
            })
        }
    }
}

/// Tells the server why this side stops before the data, and lingers.
async fn stop_early<S: AsyncRead + AsyncWrite>(conn: &mut Conn<S>, status: Status, reason: &str) {
    let _ = conn.reply(&Reply::new(status, 0, reason)).await;
    conn.linger().await;
}
