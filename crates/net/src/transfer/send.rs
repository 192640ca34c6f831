//! What both ends do to send, shared by the upload client and the download
//! server (and, for opening the file, the raw upload): a first message, a
//! file's data and trailer, and reading the peer's reply to them.

use std::path::Path;

use socklab_frame::{DigestAlg, Message, Reply, Trailer, DIGEST_LEN};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{cut_error, file_error, read_error, refused, TransferError};
use super::kind_of;
use super::store::DiskFile;
use super::wire::{send_body, BodyError, Conn, SendError};

/// A local file being sent.
pub(super) struct Outgoing<'a> {
    /// The open file.
    pub file: &'a DiskFile,
    /// Its path, for errors.
    pub path: &'a Path,
    /// Its size when the transfer started.
    pub size: u64,
    /// Who receives it, for errors: `"receiver"` or `"client"`.
    pub peer: &'static str,
    /// The transfer's name.
    pub name: &'a str,
}

/// Opens a local file to send, and says how big it is.
///
/// # Errors
///
/// [`TransferError::File`] if it cannot be opened or looked at,
/// [`TransferError::NotAFile`] if it is not a regular file.
pub(super) async fn open_source(path: &Path) -> Result<(DiskFile, u64), TransferError> {
    let src = DiskFile::open_read(path)
        .await
        .map_err(|e| file_error(path, "open", e))?;
    let meta = src
        .metadata()
        .await
        .map_err(|e| file_error(path, "look at", e))?;
    if !meta.is_file() {
        return Err(TransferError::NotAFile {
            path: path.to_owned(),
            what: kind_of(&meta),
        });
    }
    Ok((src, meta.len()))
}

/// Encodes a message and sends it.
///
/// # Errors
///
/// [`TransferError::Protocol`] if it cannot be encoded (a name too long),
/// connection errors.
pub(super) async fn send_message<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    msg: &Message,
) -> Result<(), TransferError> {
    let (encoding, sending) = match msg {
        Message::Header(_) => ("encoding the header", "sending the header"),
        Message::Request(_) => ("encoding the request", "sending the request"),
        Message::Reply(_) => ("encoding the reply", "sending the reply"),
        Message::Trailer(_) => ("encoding the trailer", "sending the trailer"),
    };
    let mut out = Vec::with_capacity(300);
    msg.encode(&mut out)
        .map_err(|source| TransferError::Protocol {
            stage: encoding,
            source,
        })?;
    conn.send(&out).await.map_err(|cut| cut_error(sending, cut))
}

/// Reads the peer's reply (`stage` says which, for errors), whatever its
/// status.
///
/// # Errors
///
/// Connection and protocol errors.
pub(super) async fn read_reply<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    stage: &'static str,
) -> Result<Reply, TransferError> {
    conn.read_msg(Reply::decode)
        .await
        .map_err(|e| read_error(stage, e))
}

/// A reply of `peer` about `name` that must say OK.
///
/// # Errors
///
/// [`TransferError::Refused`] with the reply's status and reason.
pub(super) fn accepted(
    peer: &'static str,
    name: &str,
    reply: Reply,
) -> Result<Reply, TransferError> {
    if reply.status.is_ok() {
        Ok(reply)
    } else {
        Err(refused(peer, name, reply))
    }
}

/// Sends bytes `start ..` of `out.file` and then the trailer with the
/// BLAKE3 of the whole file, which it returns. `progress(bytes the peer
/// will hold, size)` is called at the start and after each chunk.
///
/// # Errors
///
/// As [`body_error`].
pub(super) async fn send_file<S: AsyncRead + AsyncWrite>(
    conn: &mut Conn<S>,
    out: &Outgoing<'_>,
    start: u64,
    progress: &mut impl FnMut(u64, u64),
) -> Result<[u8; DIGEST_LEN], TransferError> {
    let digest = send_body(conn, out.file, out.size, start, progress)
        .await
        .map_err(|e| body_error(e, out))?;
    let mut trailer = Vec::with_capacity(64);
    Trailer {
        alg: DigestAlg::Blake3,
        digest,
    }
    .encode(&mut trailer);
    conn.send_watching(&trailer)
        .await
        .map_err(|e| body_error(BodyError::Send(e), out))?;
    Ok(digest)
}

/// A failed send of a file's data, as an error: the peer refused
/// ([`TransferError::Refused`]), the connection failed, or the local file
/// could not be read or shrank ([`TransferError::File`],
/// [`TransferError::FileChanged`]).
fn body_error(e: BodyError, out: &Outgoing<'_>) -> TransferError {
    let stage = "sending data";
    match e {
        BodyError::File(source) => file_error(out.path, "read", source),
        BodyError::Shrank { at } => TransferError::FileChanged {
            path: out.path.to_owned(),
            size: out.size,
            at,
        },
        BodyError::Send(SendError::Early(reply)) => refused(out.peer, out.name, reply),
        BodyError::Send(SendError::Cut(cut)) => cut_error(stage, cut),
        BodyError::Send(SendError::Wire(source)) => TransferError::Protocol { stage, source },
    }
}
