//! socklab's wire formats: pure functions over bytes.
//!
//! TCP delivers a byte stream, not messages: two sends may arrive as one
//! read, one send as two. This crate gives the stream edges.
//!
//! - [`Framing`] cuts a stream into messages: `raw` (every chunk as it
//!   comes), `line` (ends at LF, CRLF accepted) or `len` (a u32 big-endian
//!   length prefix).
//! - The file-transfer protocol ([`Header`], [`Request`], [`Reply`],
//!   [`Trailer`]) carries verified, resumable, atomic uploads and downloads
//!   over plain TCP; `docs/protocol.md` describes it byte by byte.
//! - [`check_name`] says whether a file name from a peer is safe to use as a
//!   single path component, without touching the file system.
//!
//! # Decoding is incremental
//!
//! The caller owns a buffer: it appends what it reads from the socket and
//! calls a `decode` function, which answers
//! - `Ok(Some((message, consumed)))`: one message; drop `consumed` bytes from
//!   the front of the buffer and call again (more may be buffered);
//! - `Ok(None)`: the buffer holds only the start of a message; read more;
//! - `Err(..)`: the stream is bad; stop reading it.
//!
//! The answer depends only on the bytes, never on how they were cut into
//! reads: feeding a stream in any number of pieces gives the same messages
//! and the same error as feeding it whole.
//!
//! # Peer input is hostile
//!
//! Every parser here is a nom 8 *streaming* parser. Each length a peer
//! declares is checked against its maximum before a byte of it is taken, and
//! nothing is allocated before the bytes it holds have arrived, so memory
//! stays bounded by the limits whatever a peer sends. No input makes a
//! function of this crate panic.
//!
//! # Invariants
//!
//! - `frame` does no I/O: no sockets, no files, no clocks, no threads.
//! - Nothing here depends on another socklab crate.

#![deny(missing_docs)]

mod framing;
mod name;
mod transfer;

pub use framing::{FrameError, Framing, UnknownFraming, DEFAULT_LEN_MAX, DEFAULT_LINE_MAX};
pub use name::{check_name, NameError};
pub use transfer::{
    split_data, DigestAlg, Header, Kind, Message, Reply, Request, Status, Trailer, WireError,
    DIGEST_LEN, MAGIC, MAX_MESSAGE_LEN, MAX_NAME, MAX_REASON, VERSION,
};
