//! The receiver: one connection, one upload into its directory or one
//! download from it.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use socklab_frame::{check_name, DigestAlg, Header, Message, Reply, Request, Status};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{cut_error, file_error, TransferError};
use super::pump::Transport;
use super::receive::{cut_cause, cut_short, receive_file, Incoming, Refusal, Verdict};
use super::send::{accepted, read_reply, send_file, send_message, Outgoing};
use super::store::{available_space, blocking, symlink_metadata, DiskFile, Work};
use super::wire::{Conn, ReadError};
use super::{quote_name, Offered, ReceiverConfig, Served, RESERVED_PREFIX};

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
    S: Transport,
{
    let admission = Admission::new(usize::MAX >> 4, usize::MAX >> 4);
    serve_admitted(stream, cfg, &admission).await
}

/// Who may be served by a receiver that many clients reach at once: at
/// most `transfers` transfers run, and at most `waiting` clients are
/// kept while they send their first message (issue 10 item 11).
///
/// A client takes a transfer slot only once its whole first message is
/// in, so clients that trickle their header hold none; they are bounded
/// apart, cheaply (a small buffer each, [`ReceiverConfig::header_deadline`]
/// each), and when too many wait, the oldest is dropped
/// ([`TransferError::Crowded`]) so a new client always gets its turn.
pub struct Admission {
    /// Transfer slots.
    slots: Arc<Semaphore>,
    /// How many transfers at once.
    transfers: usize,
    /// Clients still in their first message, oldest first.
    waiting: Mutex<BTreeMap<u64, CancellationToken>>,
    /// The most clients kept in their first message.
    max_waiting: usize,
    /// Numbers the waiting clients.
    next: AtomicU64,
}

impl Admission {
    /// At most `transfers` transfers at once, and `waiting` clients in
    /// their first message.
    pub fn new(transfers: usize, waiting: usize) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(transfers.clamp(1, Semaphore::MAX_PERMITS))),
            transfers,
            waiting: Mutex::new(BTreeMap::new()),
            max_waiting: waiting.max(1),
            next: AtomicU64::new(0),
        }
    }

    /// A client starts its first message: its number and the token that
    /// drops it; the oldest waiting client is dropped if too many wait.
    fn enter(&self) -> (u64, CancellationToken) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        while waiting.len() >= self.max_waiting {
            match waiting.pop_first() {
                Some((_, oldest)) => oldest.cancel(),
                None => break,
            }
        }
        waiting.insert(id, token.clone());
        (id, token)
    }

    /// A client's first message is in (or it failed).
    fn leave(&self, id: u64) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.remove(&id);
    }
}

/// [`serve_connection`] for a receiver with many clients: the first
/// message is due within [`ReceiverConfig::header_deadline`] as a whole,
/// a transfer slot of `admission` is taken only once it is in (a client
/// that waits for one longer than the header deadline is told `busy`),
/// and the rest runs under [`ReceiverConfig::floor`].
///
/// # Errors
///
/// As [`serve_connection`]; [`TransferError::Crowded`] for a client
/// dropped to make room, [`TransferError::Timeout`] for a first message
/// not whole in time.
pub async fn serve_admitted<S>(
    stream: S,
    cfg: &ReceiverConfig,
    admission: &Admission,
) -> Result<Served, TransferError>
where
    S: Transport,
{
    let started = Instant::now();
    let mut conn = Conn::open(stream, cfg.idle_timeout);
    let (id, dropped) = admission.enter();
    let first = tokio::select! {
        _ = dropped.cancelled() => Err(()),
        r = timeout(cfg.header_deadline, conn.read_msg(Message::decode)) => Ok(r),
    };
    admission.leave(id);
    let first = match first {
        Err(()) => {
            return Err(TransferError::Crowded {
                waiting: admission.max_waiting,
            })
        }
        Ok(Err(_)) => {
            let w = conn.waited(cfg.header_deadline);
            return Err(TransferError::Timeout {
                stage: "reading the first message (due whole within the header deadline)",
                after: w.after,
                sent: w.sent,
                received: w.received,
            });
        }
        Ok(Ok(Ok(msg))) => msg,
        Ok(Ok(Err(ReadError::Wire(e)))) => {
            let refusal = Refusal::new(e.status(), e.to_string());
            return Ok(refuse(&mut conn, None, refusal).await);
        }
        Ok(Ok(Err(ReadError::Cut(cut)))) => {
            return Err(cut_error("reading the first message", cut))
        }
    };
    let slot = match timeout(cfg.header_deadline, admission.slots.clone().acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        _ => {
            let reason = format!(
                "the receiver is at its limit of {} transfers; try later",
                admission.transfers
            );
            return Ok(refuse(&mut conn, None, Refusal::new(Status::Busy, reason)).await);
        }
    };
    conn.set_floor(cfg.floor);
    let served = serve_first(&mut conn, first, cfg, started).await;
    drop(slot);
    served
}

/// Serves the connection whose first message is `first`.
async fn serve_first<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    first: Message,
    cfg: &ReceiverConfig,
    started: Instant,
) -> Result<Served, TransferError> {
    match first {
        Message::Header(header) => Ok(serve_upload(conn, header, cfg, started).await),
        Message::Request(request) => serve_download(conn, request, cfg, started).await,
        other => {
            let reason = format!("expected a header or a request, got a {}", other.kind());
            Ok(refuse(conn, None, Refusal::new(Status::BadHeader, reason)).await)
        }
    }
}

/// Sends a refusal, lingers, and says what was sent.
async fn refuse<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    name: Option<String>,
    refusal: Refusal,
) -> Served {
    let Refusal {
        status,
        reason,
        kept,
    } = refusal;
    conn.stop(status, kept, &reason).await;
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
    let shown = quote_name(&header.name);
    let dest = cfg.dir.join(&header.name);
    if let Err(refusal) = check_upload(&header, &dest, cfg, &shown).await {
        return refuse(conn, Some(header.name.clone()), refusal).await;
    }
    let mut work = match Work::open(&cfg.dir, header.name.as_bytes()).await {
        Ok(work) => work,
        Err(e) => {
            let reason = format!("cannot create a working file in the receiving directory: {e}");
            return refuse(
                conn,
                Some(header.name.clone()),
                Refusal::new(Status::Internal, reason),
            )
            .await;
        }
    };
    let (start, hasher) = match resume_point(&mut work, &header, cfg, &shown).await {
        Ok(ready) => ready,
        Err(refusal) => return refuse(conn, Some(header.name.clone()), refusal).await,
    };
    let inc = Incoming {
        name: &header.name,
        size: header.size,
        start,
        alg: header.alg,
        dest: &dest,
        overwrite: cfg.overwrite,
    };
    match receive_upload(conn, &mut work, hasher, &inc).await {
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
        Verdict::Failed(refusal) => refuse(conn, Some(header.name.clone()), refusal).await,
    }
}

/// Why an upload's header is refused before any file is touched, if it
/// is: its name, its size, or what exists at its destination `dest`.
async fn check_upload(
    header: &Header,
    dest: &Path,
    cfg: &ReceiverConfig,
    shown: &str,
) -> Result<(), Refusal> {
    if let Some(reason) = name_refusal(&header.name) {
        return Err(Refusal::new(Status::BadName, reason));
    }
    if let Some(max) = cfg.max_size.filter(|max| header.size > *max) {
        let reason = format!(
            "{} bytes is more than this receiver accepts ({max} bytes)",
            header.size
        );
        return Err(Refusal::new(Status::TooLarge, reason));
    }
    let meta = match symlink_metadata(dest).await {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            let reason = format!("cannot look at {shown} in the receiving directory: {e}");
            return Err(Refusal::new(Status::Internal, reason));
        }
    };
    if meta.file_type().is_symlink() {
        Err(Refusal::new(
            Status::BadName,
            format!("{shown} is a symbolic link in the receiving directory; refusing to write through it"),
        ))
    } else if !meta.is_file() {
        Err(Refusal::new(
            Status::Exists,
            format!(
                "{shown} exists in the receiving directory and is {}",
                super::kind_of(&meta)
            ),
        ))
    } else if !cfg.overwrite {
        Err(Refusal::new(
            Status::Exists,
            format!(
                "{shown} exists in the receiving directory and this receiver does not overwrite"
            ),
        ))
    } else {
        Ok(())
    }
}

/// Where the data of the upload `header` starts in `work`, and a hasher fed
/// with the bytes before it: after the bytes a cut upload of the same file
/// left, if the sender resumes, else at 0. Checks that the directory has
/// room for the rest and cuts the working file there.
async fn resume_point(
    work: &mut Work,
    header: &Header,
    cfg: &ReceiverConfig,
    shown: &str,
) -> Result<(u64, blake3::Hasher), Refusal> {
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
            let reason = format!("cannot read the partial upload kept for {shown}: {e}");
            return Err(Refusal::new(Status::Internal, reason));
        }
    };
    let start = header.resume_at(held);
    let needed = header.size - start;
    match available_space(&cfg.dir).await {
        Ok(available) if needed > available => {
            let reason = format!(
                "{needed} more bytes needed, the receiving directory has {available} bytes available"
            );
            return Err(Refusal {
                status: Status::NoSpace,
                reason,
                kept: held,
            });
        }
        Ok(_) => {}
        Err(e) => {
            let reason = format!("cannot measure the free space of the receiving directory: {e}");
            return Err(Refusal {
                status: Status::Internal,
                reason,
                kept: held,
            });
        }
    }
    if let Err(e) = work.truncate_to(start).await {
        work.discard().await;
        let reason = format!("cannot prepare the working file: {e}");
        return Err(Refusal::new(Status::Internal, reason));
    }
    Ok((start, hasher))
}

/// Says go (from `inc.start`) and receives the upload's data; a
/// connection that fails before the data keeps what is held.
async fn receive_upload<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    work: &mut Work,
    hasher: blake3::Hasher,
    inc: &Incoming<'_>,
) -> Verdict {
    let go = if inc.start > 0 {
        format!("resuming after the {} bytes held", inc.start)
    } else {
        "ready".to_owned()
    };
    match conn.reply(&Reply::new(Status::Ok, inc.start, &go)).await {
        Ok(()) => receive_file(conn, work, hasher, inc, &mut |_, _| {}).await,
        Err(cut) => {
            let what = format!("{} before the data", cut_cause(&cut));
            cut_short(work, &hasher, inc, inc.start, what).await
        }
    }
}

/// Sends one file to a download client (the request has been read).
async fn serve_download<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    request: Request,
    cfg: &ReceiverConfig,
    started: Instant,
) -> Result<Served, TransferError> {
    let shown = quote_name(&request.name);
    let (file, path) = match open_offered(&request.name, cfg, &shown).await {
        Ok(opened) => opened,
        Err(refusal) => return Ok(refuse(conn, Some(request.name.clone()), refusal).await),
    };
    let size = match offered_size(&file, &shown).await {
        Ok(size) => size,
        Err(refusal) => return Ok(refuse(conn, Some(request.name.clone()), refusal).await),
    };
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
    send_message(conn, &Message::Header(header)).await?;
    let out = Outgoing {
        file: &file,
        path: &path,
        size,
        peer: "client",
        name: &request.name,
    };
    let digest = send_file(conn, &out, start, &mut |_, _| {}).await?;
    let verdict = read_reply(conn, "reading the client's verdict").await?;
    conn.shutdown().await;
    accepted("client", &request.name, verdict)?;
    Ok(Served::Downloaded {
        name: request.name,
        size,
        offset: start,
        digest,
        elapsed: started.elapsed(),
    })
}

/// Opens the file `name` of the served directory for a download client,
/// never through a symbolic link; returns it and its path.
async fn open_offered(
    name: &str,
    cfg: &ReceiverConfig,
    shown: &str,
) -> Result<(DiskFile, PathBuf), Refusal> {
    if let Some(reason) = name_refusal(name) {
        return Err(Refusal::new(Status::BadName, reason));
    }
    let path = cfg.dir.join(name);
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
    match opened {
        Ok(file) => Ok((DiskFile::new(file), path)),
        Err(e) => {
            let (status, reason) = match (e.kind(), e.raw_os_error()) {
                (io::ErrorKind::NotFound, _) => (
                    Status::NotFound,
                    format!("no file {shown} in the served directory"),
                ),
                (_, Some(libc::ELOOP)) => (
                    Status::BadName,
                    format!("{shown} is a symbolic link; links are not offered"),
                ),
                _ => (Status::Internal, format!("cannot open {shown}: {e}")),
            };
            Err(Refusal::new(status, reason))
        }
    }
}

/// The size of an opened file offered for download, which must be a
/// regular file.
async fn offered_size(file: &DiskFile, shown: &str) -> Result<u64, Refusal> {
    let meta = match file.metadata().await {
        Ok(meta) => meta,
        Err(e) => {
            let reason = format!("cannot look at {shown}: {e}");
            return Err(Refusal::new(Status::Internal, reason));
        }
    };
    if !meta.is_file() {
        let reason = format!(
            "{shown} is {}; only regular files are offered",
            super::kind_of(&meta)
        );
        return Err(Refusal::new(Status::NotFound, reason));
    }
    Ok(meta.len())
}

/// The files a receiver with directory `dir` offers for download: regular
/// files (not symbolic links) whose names pass [`check_name`] and are not
/// working files, sorted by name.
///
/// # Errors
///
/// [`TransferError::File`] if the directory cannot be read.
pub async fn list_offered(dir: &Path) -> Result<Vec<Offered>, TransferError> {
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
