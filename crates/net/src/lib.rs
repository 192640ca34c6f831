//! socklab's sockets: named TCP sockets, their options, and the events they
//! raise.
//!
//! A [`Lab`] holds every socket of one socklab session under a name (`srv`,
//! `srv.1`, `s3`, …). Sockets are real: socket2 creates and configures them,
//! tokio drives them. Nothing here prints; what happens in the background
//! (an accepted client, data that arrived, a peer's close) is sent as an
//! [`Event`] on one bounded channel that the caller drains.
//!
//! Two ways to read a connection:
//! - **watched** connections (made by `listen PORT` or `connect HOST PORT`)
//!   are read by a background task; every read becomes an [`Event::Data`].
//! - **manual** connections (made step by step from [`Lab::socket`]) are read
//!   only when asked, by [`Lab::recv`], one read at a time.
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

mod error;
mod event;
mod files;
mod framing;
pub mod inspect;
mod lab;
mod options;
mod serve;
mod sys;
pub mod tcp;
mod trace;
pub mod transfer;
mod udp;

pub use error::{NetError, Result};
pub use event::{Event, Transfer};
pub use files::{FileService, MAX_TRANSFERS};
pub use lab::{Family, Lab, Mode, Proto, ReadOutcome, Role, SocketInfo};
pub use options::{OptKind, OptValue, SockOpt};
pub use serve::ServeMode;
pub use socklab_frame::Framing;
pub use sys::raise_fd_limit;
pub use trace::{TraceMode, TraceWish};
pub use udp::Datagram;
