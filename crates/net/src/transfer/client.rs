//! The client: upload one file, or download one.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use socklab_frame::{check_name, DigestAlg, Header, Message, Reply, Request, Status};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{file_error, read_error, TransferError};
use super::pump::Transport;
use super::receive::{receive_file, Incoming, Refusal, Verdict};
use super::send::{accepted, open_source, read_reply, send_file, send_message, Outgoing};
use super::store::{available_space, Work};
use super::wire::{Conn, ReadError};
use super::{
    check_dest, quote_name, split_dest, DownloadReport, UploadReport, DEFAULT_IDLE_TIMEOUT,
};

/// Checks a name before it is sent.
fn checked_name(name: &str) -> Result<(), TransferError> {
    check_name(name).map_err(|source| TransferError::BadName {
        name: name.to_owned(),
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
/// - connection and protocol errors; [`TransferError::Timeout`] when the
///   receiver does not answer or take data for [`DEFAULT_IDLE_TIMEOUT`].
pub async fn upload<S>(
    stream: S,
    file: &Path,
    remote_name: &str,
    resume: bool,
    progress: impl FnMut(u64, u64),
) -> Result<UploadReport, TransferError>
where
    S: Transport,
{
    upload_within(
        stream,
        file,
        remote_name,
        resume,
        DEFAULT_IDLE_TIMEOUT,
        progress,
    )
    .await
}

/// [`upload`], where every wait for the receiver (its answer to the
/// header, room to send data, its verdict) gives up after `wait` without
/// progress, with a [`TransferError::Timeout`] that says what was sent and
/// received by then. A peer that is not a receiver (it never answers the
/// header) ends the upload after `wait`.
///
/// # Errors
///
/// As [`upload`].
pub async fn upload_within<S>(
    stream: S,
    file: &Path,
    remote_name: &str,
    resume: bool,
    wait: Duration,
    mut progress: impl FnMut(u64, u64),
) -> Result<UploadReport, TransferError>
where
    S: Transport,
{
    checked_name(remote_name)?;
    let (src, size) = open_source(file).await?;
    let started = Instant::now();
    let mut conn = Conn::open(stream, wait);
    let start = offer_upload(&mut conn, remote_name, size, resume).await?;
    let out = Outgoing {
        file: &src,
        path: file,
        size,
        peer: "receiver",
        name: remote_name,
    };
    let digest = send_file(&mut conn, &out, start, &mut progress).await?;
    read_upload_verdict(&mut conn, remote_name, size).await?;
    Ok(UploadReport {
        name: remote_name.to_owned(),
        size,
        sent: size - start,
        resumed_from: start,
        digest,
        elapsed: started.elapsed(),
    })
}

/// Sends the header of an upload of `size` bytes as `name` (offering a
/// resume or not) and reads the receiver's answer: where the data starts,
/// after the bytes it holds already.
async fn offer_upload<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    name: &str,
    size: u64,
    resume: bool,
) -> Result<u64, TransferError> {
    let header = Header {
        name: name.to_owned(),
        size,
        alg: DigestAlg::Blake3,
        offset: if resume { size } else { 0 },
    };
    send_message(conn, &Message::Header(header)).await?;
    let answer = read_reply(conn, "reading the receiver's answer to the header").await?;
    let start = accepted("receiver", name, answer)?.offset;
    if start > size {
        return Err(TransferError::Unexpected {
            stage: "reading the receiver's answer to the header",
            what: format!("it asks for data from byte {start} of a {size}-byte file"),
        });
    }
    Ok(start)
}

/// Ends sending and reads the receiver's verdict, which must say it
/// verified and stored all `size` bytes.
async fn read_upload_verdict<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    name: &str,
    size: u64,
) -> Result<(), TransferError> {
    conn.shutdown().await;
    let verdict = read_reply(conn, "reading the receiver's verdict").await?;
    let stored = accepted("receiver", name, verdict)?.offset;
    if stored != size {
        return Err(TransferError::Unexpected {
            stage: "reading the receiver's verdict",
            what: format!("it says it stored {stored} of {size} bytes"),
        });
    }
    Ok(())
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
/// - connection and protocol errors; [`TransferError::Timeout`] when the
///   server does not answer or send for [`DEFAULT_IDLE_TIMEOUT`].
pub async fn download<S>(
    stream: S,
    remote_name: &str,
    local: &Path,
    overwrite: bool,
    progress: impl FnMut(u64, u64),
) -> Result<DownloadReport, TransferError>
where
    S: Transport,
{
    download_within(
        stream,
        remote_name,
        local,
        overwrite,
        DEFAULT_IDLE_TIMEOUT,
        progress,
    )
    .await
}

/// [`download`], where every wait for the server (its answer to the
/// request, its header, its data) gives up after `wait` without progress,
/// with a [`TransferError::Timeout`] that says what was sent and received
/// by then. A cut download keeps what arrived, as [`download`] does.
///
/// # Errors
///
/// As [`download`].
pub async fn download_within<S>(
    stream: S,
    remote_name: &str,
    local: &Path,
    overwrite: bool,
    wait: Duration,
    mut progress: impl FnMut(u64, u64),
) -> Result<DownloadReport, TransferError>
where
    S: Transport,
{
    checked_name(remote_name)?;
    let (mut dest, held_hasher) = Local::open(remote_name, local, overwrite).await?;
    let started = Instant::now();
    let mut conn = Conn::open(stream, wait);
    let (header, hasher) = request_file(&mut conn, remote_name, dest.held, held_hasher).await?;
    dest.prepare(&mut conn, &header).await?;
    let inc = Incoming {
        name: remote_name,
        size: header.size,
        start: header.offset,
        alg: header.alg,
        dest: local,
        overwrite,
    };
    let verdict = receive_file(&mut conn, &mut dest.work, hasher, &inc, &mut progress).await;
    finish_download(&mut conn, verdict, &inc, started).await
}

/// The local end of a download before the data: where the file goes, and
/// what a cut download of the same remote name left there.
struct Local<'a> {
    /// The remote name.
    name: &'a str,
    /// The local destination.
    path: &'a Path,
    /// The destination's directory.
    dir: PathBuf,
    /// The working file: the destination's resume slot if it is free.
    work: Work,
    /// Bytes held from a cut download (0: none).
    held: u64,
    /// The size of the file those bytes belong to (`None`: nothing held).
    held_size: Option<u64>,
}

impl<'a> Local<'a> {
    /// Checks the destination `path`, opens its working file and looks at
    /// what it holds of `name`. Returns it with a hasher fed with the bytes
    /// held.
    async fn open(
        name: &'a str,
        path: &'a Path,
        overwrite: bool,
    ) -> Result<(Local<'a>, blake3::Hasher), TransferError> {
        let (dir, file_name) = split_dest(path)?;
        check_dest(path, overwrite).await?;
        let mut work = Work::open(&dir, file_name.as_bytes())
            .await
            .map_err(|e| file_error(&dir, "create a working file in", e))?;
        let held = work
            .held(|m| m.name == name && m.alg == DigestAlg::Blake3, u64::MAX)
            .await
            .map_err(|e| file_error(work.path(), "read", e))?;
        let (held_size, held, hasher) = match held {
            Some((meta, hasher)) => (Some(meta.size), meta.held, hasher),
            None => (None, 0, blake3::Hasher::new()),
        };
        let local = Local {
            name,
            path,
            dir,
            work,
            held,
            held_size,
        };
        Ok((local, hasher))
    }

    /// Makes the working file ready for the data `header` announces: bytes
    /// held must be of a file of its size, the directory must have room for
    /// the rest, and the file is cut after the bytes kept. When it cannot,
    /// tells the server why.
    async fn prepare<S: AsyncRead + AsyncWrite>(
        &mut self,
        conn: &mut Conn<S>,
        header: &Header,
    ) -> Result<(), TransferError> {
        let start = header.offset;
        if start > 0 && self.held_size != Some(header.size) {
            self.work.discard().await;
            let reason = format!(
                "the {} bytes kept from a cut download are of a {}-byte file, this one has {} bytes; discarded them",
                self.held,
                self.held_size.unwrap_or(0),
                header.size
            );
            conn.stop(Status::DigestMismatch, 0, &reason).await;
            return Err(TransferError::Stopped {
                name: self.name.to_owned(),
                path: self.path.to_owned(),
                status: Status::DigestMismatch,
                reason,
                kept: 0,
            });
        }
        let needed = header.size - start;
        let available = available_space(&self.dir)
            .await
            .map_err(|e| file_error(&self.dir, "measure the free space of", e))?;
        if needed > available {
            let reason = format!(
                "{needed} more bytes needed, {} has {available} available",
                self.dir.display()
            );
            conn.stop(Status::NoSpace, 0, &reason).await;
            return Err(TransferError::NoSpace {
                dir: self.dir.clone(),
                needed,
                available,
            });
        }
        if let Err(e) = self.work.truncate_to(start).await {
            self.work.discard().await;
            conn.stop(Status::Internal, 0, &e.to_string()).await;
            return Err(file_error(self.work.path(), "prepare", e));
        }
        Ok(())
    }
}

/// Asks the server for `name` from byte `held`, and reads its answer and
/// the header of its data. Returns the header and the hasher to go on
/// with: `held_hasher` if the server resumes after the bytes held, a new
/// one if it starts over.
async fn request_file<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    name: &str,
    held: u64,
    held_hasher: blake3::Hasher,
) -> Result<(Header, blake3::Hasher), TransferError> {
    let request = Request {
        name: name.to_owned(),
        offset: held,
    };
    send_message(conn, &Message::Request(request)).await?;
    let answer = read_reply(conn, "reading the server's answer to the request").await?;
    let start = accepted("server", name, answer)?.offset;
    let hasher = if start == held {
        held_hasher
    } else if start == 0 {
        blake3::Hasher::new()
    } else {
        let what = format!("it starts at byte {start}, but {held} bytes were asked for");
        conn.stop(Status::BadHeader, 0, &what).await;
        return Err(TransferError::Unexpected {
            stage: "reading the server's answer to the request",
            what,
        });
    };
    let header = read_download_header(conn, name, start).await?;
    Ok((header, hasher))
}

/// Reads the header the server sends before the data, which must be for
/// `name` from byte `start`; tells the server when it is not.
async fn read_download_header<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    name: &str,
    start: u64,
) -> Result<Header, TransferError> {
    let header = match conn.read_msg(Header::decode).await {
        Ok(header) => header,
        Err(ReadError::Wire(e)) => {
            conn.stop(e.status(), 0, &e.to_string()).await;
            return Err(read_error("reading the header", ReadError::Wire(e)));
        }
        Err(e) => return Err(read_error("reading the header", e)),
    };
    if header.name != name || header.offset != start {
        let what = format!(
            "the header is for {} from byte {}, the request for {} from byte {start}",
            quote_name(&header.name),
            header.offset,
            quote_name(name)
        );
        conn.stop(Status::BadHeader, 0, &what).await;
        return Err(TransferError::Unexpected {
            stage: "reading the header",
            what,
        });
    }
    Ok(header)
}

/// Tells the server how the download `inc` ended, and reports it.
async fn finish_download<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    verdict: Verdict,
    inc: &Incoming<'_>,
    started: Instant,
) -> Result<DownloadReport, TransferError> {
    match verdict {
        Verdict::Stored { digest } => {
            // The file is stored and verified here; the server hearing so
            // is a courtesy.
            let _ = conn
                .reply(&Reply::new(Status::Ok, inc.size, "stored"))
                .await;
            conn.shutdown().await;
            Ok(DownloadReport {
                name: inc.name.to_owned(),
                path: inc.dest.to_owned(),
                size: inc.size,
                received: inc.size - inc.start,
                resumed_from: inc.start,
                digest,
                elapsed: started.elapsed(),
            })
        }
        Verdict::Failed(Refusal {
            status,
            reason,
            kept,
        }) => {
            conn.stop(status, kept, &reason).await;
            Err(TransferError::Stopped {
                name: inc.name.to_owned(),
                path: inc.dest.to_owned(),
                status,
                reason,
                kept,
            })
        }
    }
}
