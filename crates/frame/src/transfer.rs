//! The file-transfer protocol's messages: encode and decode, nothing else.
//!
//! `docs/protocol.md` describes the protocol byte by byte, with the order of
//! messages of an upload and a download. In short, every message starts with
//! the preamble `"SLFT" version kind`, then:
//!
//! ```text
//! preamble := magic:"SLFT" version:u8(=1) kind:u8
//! header   := preamble(kind=1) alg:u8 size:u64 offset:u64 name        (offset <= size)
//! request  := preamble(kind=2) offset:u64 name
//! reply    := preamble(kind=3) status:u8 offset:u64 reason
//! trailer  := preamble(kind=4) alg:u8 digest:[u8; 32]
//! name     := len:u16 bytes:[u8; len]       (len <= 255, UTF-8)
//! reason   := len:u16 bytes:[u8; len]       (len <= 1024, UTF-8)
//! ```
//!
//! All integers are big-endian. Between a header and its trailer the data
//! travels raw: exactly `size - start` bytes, counted by the receiver, so
//! it needs no framing and is not parsed here.

use std::fmt;

use nom::bytes::streaming::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::streaming::{be_u16, be_u64, be_u8};
use nom::sequence::preceded;
use nom::{Err, IResult, Parser};

pub use crate::name::MAX_NAME;

/// The four bytes every message starts with.
pub const MAGIC: [u8; 4] = *b"SLFT";

/// The protocol version this crate speaks, the byte after [`MAGIC`].
pub const VERSION: u8 = 1;

/// The longest reason a [`Reply`] carries, in bytes of UTF-8.
pub const MAX_REASON: usize = 1024;

/// The length of a digest in a [`Trailer`], in bytes (BLAKE3-256).
pub const DIGEST_LEN: usize = 32;

/// Bytes of the preamble: magic, version, kind.
const PREAMBLE_LEN: usize = MAGIC.len() + 2;

/// The longest encoded message, in bytes: a reply with the longest reason
/// (1041). A receiver whose buffer holds this many bytes without a complete
/// message has a bug, not a slow peer: every decoder answers by then.
pub const MAX_MESSAGE_LEN: usize = {
    let header = PREAMBLE_LEN + 1 + 8 + 8 + 2 + MAX_NAME;
    let reply = PREAMBLE_LEN + 1 + 8 + 2 + MAX_REASON;
    if header > reply {
        header
    } else {
        reply
    }
};

/// What a message is: the byte after the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A [`Header`]: the sender of a file announces it (code 1).
    Header,
    /// A [`Request`]: a client asks for a file (code 2).
    Request,
    /// A [`Reply`]: the other side's verdict (code 3).
    Reply,
    /// A [`Trailer`]: the digest after the data (code 4).
    Trailer,
}

impl Kind {
    /// The kind's code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Kind::Header => 1,
            Kind::Request => 2,
            Kind::Reply => 3,
            Kind::Trailer => 4,
        }
    }

    /// The kind with this code, if there is one.
    pub fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Header),
            2 => Some(Kind::Request),
            3 => Some(Kind::Reply),
            4 => Some(Kind::Trailer),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Header => "header",
            Kind::Request => "request",
            Kind::Reply => "reply",
            Kind::Trailer => "trailer",
        })
    }
}

/// A digest algorithm. Unknown ids are refused on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    /// BLAKE3 with a 256-bit (32-byte) output, id 1.
    Blake3,
}

impl DigestAlg {
    /// The algorithm's id on the wire.
    pub fn id(self) -> u8 {
        match self {
            DigestAlg::Blake3 => 1,
        }
    }

    /// The algorithm with this id, if there is one.
    pub fn from_id(id: u8) -> Option<DigestAlg> {
        match id {
            1 => Some(DigestAlg::Blake3),
            _ => None,
        }
    }

    /// How many bytes a digest of this algorithm has ([`DIGEST_LEN`]).
    pub fn digest_len(self) -> usize {
        match self {
            DigestAlg::Blake3 => DIGEST_LEN,
        }
    }
}

impl fmt::Display for DigestAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigestAlg::Blake3 => "BLAKE3-256",
        })
    }
}

/// The status of a [`Reply`]: whether the other side goes on, and if not,
/// why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0: accepted (to a header or request) or stored and verified (to a
    /// trailer).
    Ok,
    /// 1: the file name is refused ([`crate::check_name`], or not UTF-8).
    BadName,
    /// 2: a complete file of that name exists and the receiver does not
    /// overwrite.
    Exists,
    /// 3: the size is above what the receiver accepts.
    TooLarge,
    /// 4: the receiver ran out of space while storing.
    NoSpace,
    /// 5: the data does not match the trailer's digest; nothing was kept.
    DigestMismatch,
    /// 6: the stream ended before `size - start` bytes of data arrived.
    ShortData,
    /// 7: a message broke the protocol (bad magic, unexpected kind, bad
    /// lengths, a trailer whose algorithm differs from the header's).
    BadHeader,
    /// 8: the version byte is not one the receiver speaks.
    UnknownVersion,
    /// 9: the digest algorithm id is not one the receiver knows.
    UnknownDigest,
    /// 10: the receiver is at its limit of transfers; try again later.
    Busy,
    /// 11: the receiver failed on its side (an I/O error).
    Internal,
    /// 12: no file of that name to download.
    NotFound,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 13] = [
        Status::Ok,
        Status::BadName,
        Status::Exists,
        Status::TooLarge,
        Status::NoSpace,
        Status::DigestMismatch,
        Status::ShortData,
        Status::BadHeader,
        Status::UnknownVersion,
        Status::UnknownDigest,
        Status::Busy,
        Status::Internal,
        Status::NotFound,
    ];

    /// The status's code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::BadName => 1,
            Status::Exists => 2,
            Status::TooLarge => 3,
            Status::NoSpace => 4,
            Status::DigestMismatch => 5,
            Status::ShortData => 6,
            Status::BadHeader => 7,
            Status::UnknownVersion => 8,
            Status::UnknownDigest => 9,
            Status::Busy => 10,
            Status::Internal => 11,
            Status::NotFound => 12,
        }
    }

    /// The status with this code, if there is one.
    pub fn from_code(code: u8) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether this is [`Status::Ok`].
    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::BadName => "bad name",
            Status::Exists => "exists",
            Status::TooLarge => "too large",
            Status::NoSpace => "no space",
            Status::DigestMismatch => "digest mismatch",
            Status::ShortData => "short data",
            Status::BadHeader => "bad header",
            Status::UnknownVersion => "unknown version",
            Status::UnknownDigest => "unknown digest",
            Status::Busy => "busy",
            Status::Internal => "internal error",
            Status::NotFound => "not found",
        })
    }
}

/// Why bytes are not a valid message, or a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The first four bytes are not [`MAGIC`]: the peer does not speak this
    /// protocol (or the stream lost its place).
    #[error("not a socklab transfer message: starts with \"{}\", not \"{}\"", .found.escape_ascii(), MAGIC.escape_ascii())]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The version byte is not [`VERSION`].
    #[error("unknown protocol version {version} (this side speaks version {VERSION})")]
    UnknownVersion {
        /// The version found.
        version: u8,
    },
    /// The kind byte is not a known [`Kind`].
    #[error("unknown message kind {code}")]
    UnknownKind {
        /// The code found.
        code: u8,
    },
    /// A message of another kind than the one expected at this point.
    #[error("expected a {expected}, got a {found}")]
    UnexpectedKind {
        /// The kind the decoder was asked for.
        expected: Kind,
        /// The kind that came.
        found: Kind,
    },
    /// The digest algorithm id is not a known [`DigestAlg`].
    #[error("unknown digest algorithm {id} (known: 1 = BLAKE3-256)")]
    UnknownDigest {
        /// The id found.
        id: u8,
    },
    /// The status byte is not a known [`Status`].
    #[error("unknown status code {code}")]
    UnknownStatus {
        /// The code found.
        code: u8,
    },
    /// A file name longer than [`MAX_NAME`] bytes.
    #[error("file name of {len} bytes exceeds the {MAX_NAME}-byte maximum")]
    NameTooLong {
        /// The declared (or given) length.
        len: usize,
    },
    /// A file name that is not UTF-8.
    #[error("file name is not valid UTF-8")]
    NameNotUtf8,
    /// A reason longer than [`MAX_REASON`] bytes.
    #[error("reason of {len} bytes exceeds the {MAX_REASON}-byte maximum")]
    ReasonTooLong {
        /// The declared (or given) length.
        len: usize,
    },
    /// A reason that is not UTF-8.
    #[error("reason is not valid UTF-8")]
    ReasonNotUtf8,
    /// A header whose offset is beyond its size.
    #[error("offset {offset} is beyond the file's size of {size} bytes")]
    OffsetBeyondSize {
        /// The offset.
        offset: u64,
        /// The size.
        size: u64,
    },
    /// A nom rule failed in a way the grammar does not name. The parsers of
    /// this crate do not produce it; it exists so that no input can panic.
    #[error("malformed message ({0})")]
    Malformed(String),
}

impl WireError {
    /// The status a receiver replies with when a peer's message fails to
    /// decode with this error.
    pub fn status(&self) -> Status {
        match self {
            WireError::UnknownVersion { .. } => Status::UnknownVersion,
            WireError::UnknownDigest { .. } => Status::UnknownDigest,
            WireError::NameTooLong { .. } | WireError::NameNotUtf8 => Status::BadName,
            _ => Status::BadHeader,
        }
    }
}

impl<'a> ParseError<&'a [u8]> for WireError {
    fn from_error_kind(_: &'a [u8], kind: ErrorKind) -> Self {
        WireError::Malformed(kind.description().to_owned())
    }

    fn append(_: &'a [u8], _: ErrorKind, other: Self) -> Self {
        other
    }
}

/// The sender of a file announces it: the first message of an upload
/// (client to server), and the message after the OK [`Reply`] of a download
/// (server to client).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The file's name: one path component, at most [`MAX_NAME`] bytes. The
    /// wire checks only length and UTF-8; the receiver refuses unsafe names
    /// with [`crate::check_name`].
    pub name: String,
    /// The whole file's size in bytes. Any u64 is valid on the wire; how
    /// large a file to accept is the receiver's policy.
    pub size: u64,
    /// The algorithm of the [`Trailer`]'s digest.
    pub alg: DigestAlg,
    /// Upload: the most bytes the sender lets the receiver keep from an
    /// earlier, interrupted upload (0: start afresh; `size`: resume wherever
    /// the receiver is). Download: where the data starts, equal to the
    /// [`Reply`]'s offset. Never more than `size`.
    pub offset: u64,
}

impl Header {
    /// Upload: where the data starts, for a receiver that holds `held`
    /// bytes of this file from an earlier upload of the same name, size and
    /// algorithm (0 if none): the smaller of `held` and [`Header::offset`].
    /// The receiver sends it in its OK [`Reply`].
    pub fn resume_at(&self, held: u64) -> u64 {
        held.min(self.offset).min(self.size)
    }

    /// Appends the encoded header to `out`. On error `out` is left as it
    /// was.
    ///
    /// # Errors
    ///
    /// [`WireError::NameTooLong`], [`WireError::OffsetBeyondSize`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let name_len = text_len(&self.name, MAX_NAME, name_too_long)?;
        if self.offset > self.size {
            return Err(offset_beyond(self.offset, self.size));
        }
        put_preamble(out, Kind::Header);
        out.push(self.alg.id());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        put_text(out, name_len, &self.name);
        Ok(())
    }

    /// Decodes a header from the start of `buf`: the header and the bytes
    /// it used, or `None` if `buf` holds only part of one.
    ///
    /// # Errors
    ///
    /// Any [`WireError`] but `ReasonTooLong`, `ReasonNotUtf8` and
    /// `UnknownStatus`; another kind of message is
    /// [`WireError::UnexpectedKind`].
    pub fn decode(buf: &[u8]) -> Result<Option<(Header, usize)>, WireError> {
        run(buf, preceded(expect(Kind::Header), header_body))
    }
}

/// A client asks for a file: the first message of a download.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    /// The file's name (see [`Header::name`]).
    pub name: String,
    /// How many bytes of the file the client holds already from an earlier,
    /// interrupted download (0: none).
    pub offset: u64,
}

impl Request {
    /// Where the data starts, for a server whose file has `size` bytes: the
    /// request's offset if it is within the file, else 0 (the client's
    /// partial copy cannot be of this file). The server sends it in its OK
    /// [`Reply`] and in its [`Header`].
    pub fn resume_at(&self, size: u64) -> u64 {
        if self.offset <= size {
            self.offset
        } else {
            0
        }
    }

    /// Appends the encoded request to `out`. On error `out` is left as it
    /// was.
    ///
    /// # Errors
    ///
    /// [`WireError::NameTooLong`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let name_len = text_len(&self.name, MAX_NAME, name_too_long)?;
        put_preamble(out, Kind::Request);
        out.extend_from_slice(&self.offset.to_be_bytes());
        put_text(out, name_len, &self.name);
        Ok(())
    }

    /// Decodes a request from the start of `buf` (see [`Header::decode`]).
    ///
    /// # Errors
    ///
    /// A [`WireError`] saying what is wrong.
    pub fn decode(buf: &[u8]) -> Result<Option<(Request, usize)>, WireError> {
        run(buf, preceded(expect(Kind::Request), request_body))
    }
}

/// The verdict of the side that receives: to a [`Header`] (upload, server)
/// or [`Request`] (download, server), and to a [`Trailer`] (whoever
/// received the data).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    /// Whether the other side goes on, and if not, why.
    pub status: Status,
    /// The bytes of the file the receiver holds verified: to a header or
    /// request with [`Status::Ok`], where the data starts; to a trailer with
    /// [`Status::Ok`], the size; after a failure, what a later attempt may
    /// resume from (0 when nothing is kept).
    pub offset: u64,
    /// Words for a person, at most [`MAX_REASON`] bytes; may be empty.
    pub reason: String,
}

impl Reply {
    /// A reply whose reason is cut, at a character boundary, to at most
    /// [`MAX_REASON`] bytes, so that it always encodes.
    pub fn new(status: Status, offset: u64, reason: &str) -> Reply {
        let mut end = reason.len().min(MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Reply {
            status,
            offset,
            reason: reason.get(..end).unwrap_or_default().to_owned(),
        }
    }

    /// Appends the encoded reply to `out`. On error `out` is left as it
    /// was.
    ///
    /// # Errors
    ///
    /// [`WireError::ReasonTooLong`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let reason_len = text_len(&self.reason, MAX_REASON, reason_too_long)?;
        put_preamble(out, Kind::Reply);
        out.push(self.status.code());
        out.extend_from_slice(&self.offset.to_be_bytes());
        put_text(out, reason_len, &self.reason);
        Ok(())
    }

    /// Decodes a reply from the start of `buf` (see [`Header::decode`]).
    ///
    /// # Errors
    ///
    /// A [`WireError`] saying what is wrong.
    pub fn decode(buf: &[u8]) -> Result<Option<(Reply, usize)>, WireError> {
        run(buf, preceded(expect(Kind::Reply), reply_body))
    }
}

/// The digest of the whole file, after the data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Trailer {
    /// The algorithm; the receiver checks it is the header's.
    pub alg: DigestAlg,
    /// The digest of the whole file, from byte 0 (not only of the data of
    /// this connection).
    pub digest: [u8; DIGEST_LEN],
}

impl Trailer {
    /// Appends the encoded trailer to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_preamble(out, Kind::Trailer);
        out.push(self.alg.id());
        out.extend_from_slice(&self.digest);
    }

    /// Decodes a trailer from the start of `buf` (see [`Header::decode`]).
    ///
    /// # Errors
    ///
    /// A [`WireError`] saying what is wrong.
    pub fn decode(buf: &[u8]) -> Result<Option<(Trailer, usize)>, WireError> {
        run(buf, preceded(expect(Kind::Trailer), trailer_body))
    }
}

/// Any message: for a side that does not know what comes next (a server
/// reading a connection's first message: a [`Header`] opens an upload, a
/// [`Request`] a download).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// See [`Header`].
    Header(Header),
    /// See [`Request`].
    Request(Request),
    /// See [`Reply`].
    Reply(Reply),
    /// See [`Trailer`].
    Trailer(Trailer),
}

impl Message {
    /// The message's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Message::Header(_) => Kind::Header,
            Message::Request(_) => Kind::Request,
            Message::Reply(_) => Kind::Reply,
            Message::Trailer(_) => Kind::Trailer,
        }
    }

    /// Appends the encoded message to `out`. On error `out` is left as it
    /// was.
    ///
    /// # Errors
    ///
    /// As the message type's own `encode`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        match self {
            Message::Header(m) => m.encode(out),
            Message::Request(m) => m.encode(out),
            Message::Reply(m) => m.encode(out),
            Message::Trailer(m) => {
                m.encode(out);
                Ok(())
            }
        }
    }

    /// Decodes a message of any kind from the start of `buf`.
    ///
    /// # Errors
    ///
    /// A [`WireError`] saying what is wrong (never `UnexpectedKind`).
    pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, WireError> {
        run(buf, message)
    }
}

/// Splits bytes received during the data phase into the data still due
/// (at most `remaining` bytes) and what comes after it (the start of the
/// trailer). The data is raw and counted, never parsed: a reader of a
/// transfer calls this on its buffer before it decodes the [`Trailer`],
/// subtracting the data's length from `remaining` each time.
pub fn split_data(buf: &[u8], remaining: u64) -> (&[u8], &[u8]) {
    let due = usize::try_from(remaining).unwrap_or(usize::MAX);
    buf.split_at(due.min(buf.len()))
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

fn name_too_long(len: usize) -> WireError {
    WireError::NameTooLong { len }
}

fn reason_too_long(len: usize) -> WireError {
    WireError::ReasonTooLong { len }
}

fn offset_beyond(offset: u64, size: u64) -> WireError {
    WireError::OffsetBeyondSize { offset, size }
}

/// The u16 length field of `text`, if it is at most `max` bytes.
fn text_len(text: &str, max: usize, too_long: fn(usize) -> WireError) -> Result<u16, WireError> {
    u16::try_from(text.len())
        .ok()
        .filter(|_| text.len() <= max)
        .ok_or_else(|| too_long(text.len()))
}

fn put_preamble(out: &mut Vec<u8>, kind: Kind) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind.code());
}

fn put_text(out: &mut Vec<u8>, len: u16, text: &str) {
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

// ---------------------------------------------------------------------------
// Grammar rules
// ---------------------------------------------------------------------------

type Res<'a, T> = IResult<&'a [u8], T, WireError>;

/// Runs a message parser over a buffer and turns nom's answer into the
/// decode convention: message and bytes used, `None` for "read more".
fn run<'a, T>(
    buf: &'a [u8],
    mut parser: impl Parser<&'a [u8], Output = T, Error = WireError>,
) -> Result<Option<(T, usize)>, WireError> {
    match parser.parse(buf) {
        Ok((rest, msg)) => Ok(Some((msg, buf.len() - rest.len()))),
        Err(Err::Incomplete(_)) => Ok(None),
        Err(Err::Error(e) | Err::Failure(e)) => Err(e),
    }
}

fn fail<T>(e: WireError) -> Res<'static, T> {
    Err(Err::Failure(e))
}

/// `magic := "SLFT"`. Takes all four bytes before comparing, so the error
/// shows them whole however the stream was cut.
fn magic(i: &[u8]) -> Res<'_, ()> {
    let (rest, found) = take(MAGIC.len()).parse(i)?;
    match <[u8; 4]>::try_from(found) {
        Ok(found) if found == MAGIC => Ok((rest, ())),
        Ok(found) => fail(WireError::BadMagic { found }),
        Err(_) => fail(WireError::Malformed("magic".to_owned())),
    }
}

/// `version := u8`, which must be [`VERSION`].
fn version(i: &[u8]) -> Res<'_, u8> {
    let (rest, version) = be_u8.parse(i)?;
    if version != VERSION {
        return fail(WireError::UnknownVersion { version });
    }
    Ok((rest, version))
}

/// `kind := u8`, a known [`Kind`].
fn kind(i: &[u8]) -> Res<'_, Kind> {
    let (rest, code) = be_u8.parse(i)?;
    match Kind::from_code(code) {
        Some(kind) => Ok((rest, kind)),
        None => fail(WireError::UnknownKind { code }),
    }
}

/// `preamble := magic version kind`: the kind.
fn preamble(i: &[u8]) -> Res<'_, Kind> {
    preceded((magic, version), kind).parse(i)
}

/// A preamble of the kind `expected`.
fn expect(expected: Kind) -> impl Fn(&[u8]) -> Res<'_, Kind> {
    move |i: &[u8]| {
        let (rest, found) = preamble(i)?;
        if found != expected {
            return fail(WireError::UnexpectedKind { expected, found });
        }
        Ok((rest, found))
    }
}

/// `alg := u8`, a known [`DigestAlg`].
fn digest_alg(i: &[u8]) -> Res<'_, DigestAlg> {
    let (rest, id) = be_u8.parse(i)?;
    match DigestAlg::from_id(id) {
        Some(alg) => Ok((rest, alg)),
        None => fail(WireError::UnknownDigest { id }),
    }
}

/// `status := u8`, a known [`Status`].
fn status(i: &[u8]) -> Res<'_, Status> {
    let (rest, code) = be_u8.parse(i)?;
    match Status::from_code(code) {
        Some(status) => Ok((rest, status)),
        None => fail(WireError::UnknownStatus { code }),
    }
}

/// `offset := u64`, at most `size`.
fn offset_upto(size: u64) -> impl Fn(&[u8]) -> Res<'_, u64> {
    move |i: &[u8]| {
        let (rest, offset) = be_u64.parse(i)?;
        if offset > size {
            return fail(offset_beyond(offset, size));
        }
        Ok((rest, offset))
    }
}

/// `text := len:u16 bytes:[u8; len]`, UTF-8, `len` checked against `max`
/// before any byte is taken.
fn text(
    max: usize,
    too_long: fn(usize) -> WireError,
    not_utf8: WireError,
) -> impl Fn(&[u8]) -> Res<'_, String> {
    move |i: &[u8]| {
        let (rest, len) = be_u16.parse(i)?;
        let len = usize::from(len);
        if len > max {
            return fail(too_long(len));
        }
        let (rest, bytes) = take(len).parse(rest)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok((rest, text.to_owned())),
            Err(_) => fail(not_utf8.clone()),
        }
    }
}

/// `name := text` of at most [`MAX_NAME`] bytes.
fn name(i: &[u8]) -> Res<'_, String> {
    text(MAX_NAME, name_too_long, WireError::NameNotUtf8)(i)
}

/// `reason := text` of at most [`MAX_REASON`] bytes.
fn reason(i: &[u8]) -> Res<'_, String> {
    text(MAX_REASON, reason_too_long, WireError::ReasonNotUtf8)(i)
}

/// `digest := [u8; alg's length]`.
fn digest(alg: DigestAlg) -> impl Fn(&[u8]) -> Res<'_, [u8; DIGEST_LEN]> {
    move |i: &[u8]| {
        let (rest, bytes) = take(alg.digest_len()).parse(i)?;
        match <[u8; DIGEST_LEN]>::try_from(bytes) {
            Ok(digest) => Ok((rest, digest)),
            Err(_) => fail(WireError::Malformed("digest".to_owned())),
        }
    }
}

/// The header after its preamble: `alg size offset name`.
fn header_body(i: &[u8]) -> Res<'_, Header> {
    let (i, (alg, size)) = (digest_alg, be_u64).parse(i)?;
    let (i, (offset, name)) = (offset_upto(size), name).parse(i)?;
    Ok((
        i,
        Header {
            name,
            size,
            alg,
            offset,
        },
    ))
}

/// The request after its preamble: `offset name`.
fn request_body(i: &[u8]) -> Res<'_, Request> {
    (be_u64, name)
        .map(|(offset, name)| Request { name, offset })
        .parse(i)
}

/// The reply after its preamble: `status offset reason`.
fn reply_body(i: &[u8]) -> Res<'_, Reply> {
    (status, be_u64, reason)
        .map(|(status, offset, reason)| Reply {
            status,
            offset,
            reason,
        })
        .parse(i)
}

/// The trailer after its preamble: `alg digest`.
fn trailer_body(i: &[u8]) -> Res<'_, Trailer> {
    let (i, alg) = digest_alg(i)?;
    let (i, digest) = digest(alg)(i)?;
    Ok((i, Trailer { alg, digest }))
}

/// `message := header | request | reply | trailer`, by the preamble's kind.
fn message(i: &[u8]) -> Res<'_, Message> {
    let (i, kind) = preamble(i)?;
    match kind {
        Kind::Header => header_body.map(Message::Header).parse(i),
        Kind::Request => request_body.map(Message::Request).parse(i),
        Kind::Reply => reply_body.map(Message::Reply).parse(i),
        Kind::Trailer => trailer_body.map(Message::Trailer).parse(i),
    }
}

#[cfg(test)]
mod tests;
