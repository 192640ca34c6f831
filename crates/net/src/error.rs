//! Typed errors: what went wrong, with which socket.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// What a [`crate::Lab`] operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No socket of that name in this lab.
    #[error("no socket named '{0}'")]
    NoSuchSocket(String),
    /// A socket of that name exists already.
    #[error("a socket named '{0}' exists already")]
    NameTaken(String),
    /// The operation does not apply to the socket in its current state.
    #[error("{name} {what}")]
    WrongState {
        /// The socket's name.
        name: String,
        /// Why the operation does not apply, in words that follow the name
        /// ("is not connected").
        what: String,
    },
    /// The operating system refused a system call.
    #[error("{op}: {source}")]
    Os {
        /// The call, as the user would name it (`bind`, `connect`, …).
        op: &'static str,
        /// The OS error, with its text and number.
        #[source]
        source: io::Error,
    },
    /// A wait ran out of time.
    #[error("{what}: timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long it waited.
        after: Duration,
    },
    /// A host name resolved to nothing usable.
    #[error("cannot resolve '{host}': {reason}")]
    Resolve {
        /// The name asked for.
        host: String,
        /// Why it failed.
        reason: String,
    },
    /// The data arrived only in part before the connection failed.
    #[error("{name}: sent {sent} of {total} bytes, then: {source}")]
    PartialSend {
        /// The socket's name.
        name: String,
        /// Bytes the kernel accepted.
        sent: usize,
        /// Bytes asked to send.
        total: usize,
        /// What stopped the send.
        #[source]
        source: io::Error,
    },
    /// An address family mismatch (an IPv6 address on an IPv4 socket, …).
    #[error("{name} is an {family} socket; {addr} is not an {family} address")]
    Family {
        /// The socket's name.
        name: String,
        /// The socket's family (`IPv4`/`IPv6`).
        family: &'static str,
        /// The address that did not fit.
        addr: SocketAddr,
    },
    /// A UNIX address is taken: what holds it (a stale socket file nobody
    /// listens on, a live server, a file of another kind).
    #[error("address already in use: {addr} {why}")]
    UnixInUse {
        /// The path or `@name`.
        addr: String,
        /// What is there, and what to do.
        why: String,
    },
    /// A TLS handshake failed.
    #[error("{name}: TLS handshake failed: {error}")]
    Handshake {
        /// The connection's (or the new connection's) name.
        name: String,
        /// Why, in words, with the library's text.
        error: crate::model::TlsError,
    },
    /// A TLS setting cannot be used (a certificate file that is not one).
    #[error("{name}: {error}")]
    TlsSetup {
        /// The socket it was for.
        name: String,
        /// What is wrong, with the library's text.
        error: crate::model::TlsError,
    },
    /// A socket of the root namespace aimed at the lab's LAN, where only
    /// the lab's hosts are.
    #[error("{addr} {why}: use `on HOST …`")]
    OffLan {
        /// The address aimed at.
        addr: std::net::IpAddr,
        /// Why it is the lab's (words that follow the address).
        why: String,
    },
}

impl NetError {
    /// The OS error behind this error, if any.
    pub fn os_error(&self) -> Option<&io::Error> {
        match self {
            NetError::Os { source, .. } | NetError::PartialSend { source, .. } => Some(source),
            _ => None,
        }
    }

    pub(crate) fn os(op: &'static str) -> impl FnOnce(io::Error) -> NetError {
        move |source| NetError::Os { op, source }
    }

    pub(crate) fn state(name: &str, what: impl Into<String>) -> NetError {
        NetError::WrongState {
            name: name.to_string(),
            what: what.into(),
        }
    }
}

/// Result of a lab operation.
pub type Result<T, E = NetError> = std::result::Result<T, E>;
