//! The receiver: one connection, one upload into its directory or one
//! download from it.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

use socklab_frame::{check_name, DigestAlg, Header, Message, Reply, Request, Status, Trailer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{cut_error, file_error, read_error, refused, TransferError};
use super::receive::{cut_short, receive_file, Incoming, Verdict};
use super::store::{available_space, blocking, symlink_metadata, DiskFile, Work};
use super::wire::{send_body, BodyError, Conn, ReadError, SendError};
use super::{printable, Offered, ReceiverConfig, Served, RESERVED_PREFIX};

/// Serves one connection of the transfer protocol: reads its first message
/// and either receives an upload into `cfg.dir` or sends a file of
/// `cfg.dir` to a download client. One request per connection; run it in a
/// task per connection (it holds nothing shared but the files of the name
/// it serves, so a misbehaving peer delays only itself).
///
/// Every refusal is sent to the peer as a [`Reply`] with a status and a
/// reason, and returned as [`Served::Refused`] with the same words. The
/// reply is followed by a half-close and a short linger so that it is not
/// lost to a reset.
///
/// # Errors
///
/// - the connection ended, failed or stalled before a first message
///   arrived ([`TransferError::Closed`], [`TransferError::Connection`],
///   [`TransferError::Timeout`]);
/// - in a download: the client refused the data
///   ([`TransferError::Refused`] with `peer == "client"`), the connection
///   failed while sending, or the file could not be read.
pub async fn serve_connection<S>(stream: S, cfg: &ReceiverConfig) -> Result<Served, TransferError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let mut conn = Conn::new(stream, cfg.idle_timeout);
    let first = match conn.read_msg(Message::decode).await {
        Ok(msg) => msg,
        Err(ReadError::Wire(e)) => {
            return Ok(refuse(&mut conn, None, e.status(), e.to_string(), 0).await);
        }
        Err(ReadError::Cut(cut)) => return Err(cut_error("reading the first message", cut)),
    };
    match first {
        Message::Header(header) => Ok(serve_upload(&mut conn, header, cfg, started).await),
        Message::Request(request) => serve_download(&mut conn, request, cfg, started).await,
        other => {
            let reason = format!("expected a header or a request, got a {}", other.kind());
            Ok(refuse(&mut conn, None, Status::BadHeader, reason, 0).await)
        }
    }
}

/// Sends a refusal, lingers, and says what was sent.
async fn refuse<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    name: Option<String>,
    status: Status,
    reason: String,
    kept: u64,
) -> Served {
    // Best effort: the peer may be gone (that may be why we refuse).
    let _ = conn.reply(&Reply::new(status, kept, &reason)).await;
    conn.linger().await;
    Served::Refused {
        name,
        status,
        reason,
        kept,
    }
}

/// Why a name from a peer is refused, if it is: not one plain file name,
/// or one of the receiver's own working files.
fn name_refusal(name: &str) -> Option<String> {
    if let Err(e) = check_name(name) {
        return Some(e.to_string());
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Some(format!(
            "file names starting with {RESERVED_PREFIX:?} are reserved for the receiver's working files"
        ));
    }
    None
}

/// Receives one upload (the header has been read).
async fn serve_upload<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    header: Header,
    cfg: &ReceiverConfig,
    started: Instant,
) -> Served {
    let shown = printable(&header.name);
    if let Some(reason) = name_refusal(&header.name) {
        return refuse(conn, Some(shown), Status::BadName, reason, 0).await;
    }
    if let Some(max) = cfg.max_size.filter(|max| header.size > *max) {
        let reason = format!(
            "{} bytes is more than this receiver accepts ({max} bytes)",
            header.size
        );
        return refuse(conn, Some(shown), Status::TooLarge, reason, 0).await;
    }
    let dest = cfg.dir.join(&header.name);
    let existing = match symlink_metadata(&dest).await {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            let reason = format!("cannot look at {shown:?} in the receiving directory: {e}");
            return refuse(conn, Some(shown), Status::Internal, reason, 0).await;
        }
    };
    if let Some(meta) = existing {
        let refusal = if meta.file_type().is_symlink() {
            Some((
                Status::BadName,
                format!("{shown:?} is a symbolic link in the receiving directory; refusing to write through it"),
            ))
        } else if !meta.is_file() {
            Some((
                Status::Exists,
                format!(
                    "{shown:?} exists in the receiving directory and is {}",
                    super::kind_of(&meta)
                ),
            ))
        } else if !cfg.overwrite {
            Some((
                Status::Exists,
                format!("{shown:?} exists in the receiving directory and this receiver does not overwrite"),
            ))
        } else {
            None
        };
        if let Some((status, reason)) = refusal {
            return refuse(conn, Some(shown), status, reason, 0).await;
        }
    }

    let mut work = match Work::open(&cfg.dir, header.name.as_bytes()).await {
        Ok(work) => work,
        Err(e) => {
            let reason = format!("cannot create a working file in the receiving directory: {e}");
            return refuse(conn, Some(shown), Status::Internal, reason, 0).await;
        }
    };
    let held = work
        .held(
            |m| m.name == header.name && m.size == header.size && m.alg == header.alg,
            header.offset,
        )
        .await;
    let (held, hasher) = match held {
        Ok(Some((meta, hasher))) => (meta.held, hasher),
        Ok(None) => (0, blake3::Hasher::new()),
        Err(e) => {
            let reason = format!("cannot read the partial upload kept for {shown:?}: {e}");
            return refuse(conn, Some(shown), Status::Internal, reason, 0).await;
        }
    };
    let start = header.resume_at(held);
    let needed = header.size - start;
    match available_space(&cfg.dir).await {
        Ok(available) if needed > available => {
            let reason = format!(
                "{needed} more bytes needed, the receiving directory has {available} bytes available"
            );
            return refuse(conn, Some(shown), Status::NoSpace, reason, held).await;
        }
        Ok(_) => {}
        Err(e) => {
            let reason = format!("cannot measure the free space of the receiving directory: {e}");
            return refuse(conn, Some(shown), Status::Internal, reason, held).await;
        }
    }
    if let Err(e) = work.truncate_to(start).await {
        work.discard().await;
        let reason = format!("cannot prepare the working file: {e}");
        return refuse(conn, Some(shown), Status::Internal, reason, 0).await;
    }

    let inc = Incoming {
        name: &header.name,
        size: header.size,
        start,
        alg: header.alg,
        dest: &dest,
        overwrite: cfg.overwrite,
    };
    let go = if start > 0 {
        format!("resuming after the {start} bytes held")
    } else {
        "ready".to_owned()
    };
    let verdict = match conn.reply(&Reply::new(Status::Ok, start, &go)).await {
        Ok(()) => receive_file(conn, &mut work, hasher, &inc, &mut |_, _| {}).await,
        Err(cut) => {
            let what = format!("{} before the data", super::receive::cut_cause(&cut));
            cut_short(&mut work, &hasher, &inc, start, what).await
        }
    };
    match verdict {
        Verdict::Stored { digest } => {
            let _ = conn
                .reply(&Reply::new(Status::Ok, header.size, "stored"))
                .await;
            conn.linger().await;
            Served::Uploaded {
                name: header.name,
                size: header.size,
                digest,
                resumed_from: start,
                path: dest,
                elapsed: started.elapsed(),
            }
        }
        Verdict::Failed {
            status,
            reason,
            kept,
        } => refuse(conn, Some(shown), status, reason, kept).await,
    }
}

/// Sends one file to a download client (the request has been read).
async fn serve_download<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    request: Request,
    cfg: &ReceiverConfig,
    started: Instant,
) -> Result<Served, TransferError> {
    let shown = printable(&request.name);
    if let Some(reason) = name_refusal(&request.name) {
        return Ok(refuse(conn, Some(shown), Status::BadName, reason, 0).await);
    }
    let path = cfg.dir.join(&request.name);
    let opened = {
        let path = path.clone();
        blocking(move || {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(path)
        })
        .await
    };
    let file = match opened {
        Ok(file) => DiskFile::new(file),
        Err(e) => {
            let (status, reason) = match (e.kind(), e.raw_os_error()) {
                (io::ErrorKind::NotFound, _) => (
                    Status::NotFound,
                    format!("no file {shown:?} in the served directory"),
                ),
                (_, Some(libc::ELOOP)) => (
                    Status::BadName,
                    format!("{shown:?} is a symbolic link; links are not offered"),
                ),
                _ => (Status::Internal, format!("cannot open {shown:?}: {e}")),
            };
            return Ok(refuse(conn, Some(shown), status, reason, 0).await);
        }
    };
    let meta = match file.metadata().await {
        Ok(meta) => meta,
        Err(e) => {
            let reason = format!("cannot look at {shown:?}: {e}");
            return Ok(refuse(conn, Some(shown), Status::Internal, reason, 0).await);
        }
    };
    if !meta.is_file() {
        let reason = format!(
            "{shown:?} is {}; only regular files are offered",
            super::kind_of(&meta)
        );
        return Ok(refuse(conn, Some(shown), Status::NotFound, reason, 0).await);
    }
    let size = meta.len();
    let start = request.resume_at(size);
    conn.reply(&Reply::new(Status::Ok, start, "sending"))
        .await
        .map_err(|cut| cut_error("answering the request", cut))?;
    let header = Header {
        name: request.name.clone(),
        size,
        alg: DigestAlg::Blake3,
        offset: start,
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
    let digest = match send_body(conn, &file, size, start, &mut |_, _| {}).await {
        Ok(digest) => digest,
        Err(e) => return Err(body_error(e, "client", &request.name, &path, size)),
    };
    let mut out = Vec::with_capacity(64);
    Trailer {
        alg: DigestAlg::Blake3,
        digest,
    }
    .encode(&mut out);
    if let Err(e) = conn.send_watching(&out).await {
        return Err(body_error(
            BodyError::Send(e),
            "client",
            &request.name,
            &path,
            size,
        ));
    }
    let verdict = conn
        .read_msg(Reply::decode)
        .await
        .map_err(|e| read_error("reading the client's verdict", e))?;
    conn.shutdown().await;
    if !verdict.status.is_ok() {
        return Err(refused("client", &request.name, verdict));
    }
    Ok(Served::Downloaded {
        name: request.name,
        size,
        offset: start,
        digest,
        elapsed: started.elapsed(),
    })
}

/// A failed send of a file's data, as an error: `peer` refused, the
/// connection failed, or the local file could not be read.
pub(super) fn body_error(
    e: BodyError,
    peer: &'static str,
    name: &str,
    path: &std::path::Path,
    size: u64,
) -> TransferError {
    let stage = "sending data";
    match e {
        BodyError::File(source) => file_error(path, "read", source),
        BodyError::Shrank { at } => TransferError::FileChanged {
            path: path.to_owned(),
            size,
            at,
        },
        BodyError::Send(SendError::Early(reply)) => refused(peer, name, reply),
        BodyError::Send(SendError::Cut(cut)) => cut_error(stage, cut),
        BodyError::Send(SendError::Wire(source)) => TransferError::Protocol { stage, source },
    }
}

/// The files a receiver with directory `dir` offers for download: regular
/// files (not symbolic links) whose names pass [`check_name`] and are not
/// working files, sorted by name.
///
/// # Errors
///
/// [`TransferError::File`] if the directory cannot be read.
pub async fn list_offered(dir: &std::path::Path) -> Result<Vec<Offered>, TransferError> {
    let path = dir.to_owned();
    let listed = blocking(move || {
        let mut offered = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name_refusal(&name).is_some() {
                continue;
            }
            // `DirEntry::metadata` does not follow a symbolic link.
            match entry.metadata() {
                Ok(meta) if meta.is_file() => offered.push(Offered {
                    name,
                    size: meta.len(),
                }),
                _ => {}
            }
        }
        Ok(offered)
    })
    .await;
    let mut offered = listed.map_err(|e| file_error(dir, "list", e))?;
    offered.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(offered)
}
