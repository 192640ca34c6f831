//! socklab's sockets and streams: named TCP, UDP and UNIX-domain sockets, programs as
//! streams, their options, and the events they raise.
//!
//! A [`Lab`] holds every socket of one socklab session under a name (`srv`,
//! `srv.1`, `s3`, `cat`, …). Sockets are real: socket2 creates and
//! configures them, tokio drives them. Nothing here prints; what happens in
//! the background (an accepted client, data that arrived, a peer's close, a
//! program's exit) is sent as an [`Event`] on one bounded channel that the
//! caller drains.
//!
//! Every byte stream the lab holds (a TCP connection, a TLS session over
//! one, a program's stdin/stdout) is a *tube* (`tube.rs`): one reader,
//! framing, inbox, events and settlement, over a kind-specific wire.
//!
//! Two ways to read a stream:
//! - **watched** streams (made by `listen PORT`, `connect HOST PORT` or
//!   `exec`) are read by a background task; every read becomes an
//!   [`Event::Data`].
//! - **manual** connections (made step by step from [`Lab::socket`]) are
//!   read only when asked, by [`Lab::recv`], one read at a time.
//!
//! # Settlement
//!
//! Every operation whose effect lands on another socket of the same lab
//! returns only after that effect has been observed: a send to a watched peer
//! returns after the peer reported those bytes, a connect to a watched
//! listener after the accept was reported, a close after the peer reported
//! the close. Events are always sent on the channel *before* the state a
//! waiter observes is published, so a caller that drains the channel with
//! priority sees every event an operation caused before the operation
//! completes. This is what makes a session's transcript deterministic.

pub mod bench;
mod budget;
mod chat;
mod conn;
mod error;
mod event;
mod exec;
mod files;
pub mod hosts;
mod inbox;
pub mod inspect;
mod lab;
mod listener;
mod model;
pub mod netns;
mod options;
mod readbuf;
mod relay;
mod settle;
mod sys;
mod tap;
pub mod tcp;
mod tls;
mod trace;
pub mod transfer;
mod tube;
mod udp;
mod unix;
mod wire;

pub use budget::{Payload, EVENT_BUDGET};
pub use chat::{MAX_LINE, MAX_MEMBERS};
pub use error::{NetError, Result};
pub use event::{Event, Transfer, Way};
pub use exec::Command;
pub use files::FileService;
pub use lab::Lab;
pub use listener::{ServeMode, KEEP_DEPARTED, MAX_PROGRAMS, MAX_THREAD_CLIENTS, MAX_TRANSFERS};
pub use model::{
    CertFacts, Family, Mode, PeerCred, Proto, ReadOutcome, Role, Side, SocketInfo, TlsError,
    TlsFacts, UnixAddr, UnixInfo, MAX_PATH,
};
pub use options::{OptKind, OptValue, SockOpt};
pub use relay::{Fault, Faults, MAX_PAIRS, PAIR_BUFFER};
pub use socklab_frame::Framing;
pub use sys::raise_fd_limit;
pub use tap::{LogForm, LogInfo, LOG_QUEUE_BYTES, LOG_QUEUE_RECORDS};
pub use tls::{ClientWish, ServerWish, Trust, HANDSHAKE_LIMIT};
pub use trace::{TraceMode, TraceWish};
pub use udp::Datagram;
pub use unix::UnixDatagramIn;
