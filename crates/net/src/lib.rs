//! socklab's sockets and streams: named TCP and UDP sockets, programs as
//! streams, their options, and the events they raise.
//!
//! A [`Lab`] holds every socket of one socklab session under a name (`srv`,
//! `srv.1`, `s3`, `cat`, …). Sockets are real: socket2 creates and
//! configures them, tokio drives them. Nothing here prints; what happens in
//! the background (an accepted client, data that arrived, a peer's close, a
//! program's exit) is sent as an [`Event`] on one bounded channel that the
//! caller drains.
//!
//! Every byte stream the lab holds (a TCP connection, a program's
//! stdin/stdout) is a *tube* (`tube.rs`): one reader, framing, inbox,
//! events and settlement, over a kind-specific wire.
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

mod budget;
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
mod settle;
mod sys;
pub mod tcp;
mod trace;
pub mod transfer;
mod tube;
mod udp;

pub use budget::{Payload, EVENT_BUDGET};
pub use error::{NetError, Result};
pub use event::{Event, Transfer};
pub use exec::Command;
pub use files::FileService;
pub use lab::Lab;
pub use listener::{ServeMode, KEEP_DEPARTED, MAX_PROGRAMS, MAX_THREAD_CLIENTS, MAX_TRANSFERS};
pub use model::{Family, Mode, Proto, ReadOutcome, Role, SocketInfo};
pub use options::{OptKind, OptValue, SockOpt};
pub use socklab_frame::Framing;
pub use sys::raise_fd_limit;
pub use trace::{TraceMode, TraceWish};
pub use udp::Datagram;
