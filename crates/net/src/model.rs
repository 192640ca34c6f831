//! What the lab's sockets are, as the rest of the program sees them:
//! families, protocols, roles, and a snapshot of one socket for display.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;

use bytes::Bytes;
use socket2::Domain;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// AF_INET.
    V4,
    /// AF_INET6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// `AF_INET` or `AF_INET6`.
    pub fn c_name(self) -> &'static str {
        match self {
            Family::V4 => "AF_INET",
            Family::V6 => "AF_INET6",
        }
    }

    /// `IPv4` or `IPv6`.
    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    pub(crate) fn domain(self) -> Domain {
        match self {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        }
    }

    /// The unspecified address of the family, port 0 (what an unbound socket
    /// reports as its local address).
    pub fn unspecified(self) -> SocketAddr {
        match self {
            Family::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            Family::V6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        }
    }
}

/// What a socket is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A TCP socket made by `socket`, not yet listening or connected.
    Fresh,
    /// Listening for connections.
    Listener,
    /// A TCP connection.
    Stream,
    /// A UDP socket (bound or not, connected or not).
    Datagram,
    /// A program whose stdin and stdout are the stream (`exec`).
    Program,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP: a connection, a byte stream.
    Tcp,
    /// UDP: no connection, datagrams.
    Udp,
}

/// Who reads a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A background task reads (or accepts) and reports events.
    Watched,
    /// Reads (or accepts) happen only when a command asks.
    Manual,
}

/// A snapshot of one socket, for display.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// The socket's name in the lab.
    pub name: String,
    /// The file descriptor.
    pub fd: RawFd,
    /// Address family (`None` for a program).
    pub family: Option<Family>,
    /// Fresh, listener or connection.
    pub role: Role,
    /// Who reads it.
    pub mode: Mode,
    /// Local address (`None` when the OS cannot say).
    pub local: Option<SocketAddr>,
    /// Peer address of a connection.
    pub peer: Option<SocketAddr>,
    /// The state in words: `created`, `bound`, `listening`, `connected`,
    /// `peer closed`, `write shut`, `failed`.
    pub state: String,
    /// Bytes read from the socket.
    pub bytes_in: u64,
    /// Bytes written to the socket.
    pub bytes_out: u64,
    /// Connections accepted (listeners).
    pub accepted: u64,
    /// Datagrams received (UDP).
    pub datagrams_in: u64,
    /// Datagrams sent (UDP).
    pub datagrams_out: u64,
    /// The kernel's TCP state (TCP_INFO), for TCP sockets.
    pub tcp_state: Option<crate::tcp::TcpState>,
    /// A program's process id and command line (`exec`).
    pub program: Option<(u32, String)>,
    /// The stream's other end is outside the lab (a program, or a peer
    /// that is no socket of this lab): what it sends arrives on its own
    /// schedule, and only a command that waits for it (expect, recv,
    /// close) settles it.
    pub outside: bool,
    /// What the stream's TLS handshake agreed, when it carries TLS.
    pub tls: Option<std::sync::Arc<TlsFacts>>,
}

/// What one read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// These bytes.
    Data(Bytes),
    /// Zero bytes: the peer closed its sending side.
    Eof,
}

/// Whether a socket bound at `local` receives what is sent to `to`: the
/// same port and family, and the same address or the unspecified one.
pub(crate) fn reaches(local: SocketAddr, to: SocketAddr) -> bool {
    local.port() == to.port()
        && Family::of(&local) == Family::of(&to)
        && (local.ip() == to.ip() || local.ip().is_unspecified())
}

// ----- TLS ---------------------------------------------------------------

/// Which end of the handshake we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// We sent the ClientHello (`connect … tls`, `starttls` on a client).
    Client,
    /// We answered it (`listen … tls`, `starttls` on an accepted
    /// connection).
    Server,
}

/// What one certificate says, as a person checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// The subject's distinguished name (`CN=localhost`).
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// Valid from (`2026-11-30`).
    pub not_before: String,
    /// Valid until.
    pub not_after: String,
    /// SHA-256 of the DER certificate, as colon-separated hex (what
    /// `openssl x509 -fingerprint -sha256` prints).
    pub fingerprint: String,
}

/// What a finished handshake agreed on and who the peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    /// Our end of it.
    pub side: Side,
    /// `TLS 1.3`, `TLS 1.2`.
    pub version: String,
    /// The cipher suite (`TLS13_AES_256_GCM_SHA384`).
    pub suite: String,
    /// The application protocol agreed by ALPN, if any.
    pub alpn: Option<String>,
    /// The server name the client asked for (SNI), as the server saw it.
    pub sni: Option<String>,
    /// The peer's certificate (a server's; a client usually sends none).
    pub peer_cert: Option<CertFacts>,
}

/// Why a handshake failed: what a learner should read first, and what
/// rustls (or the OS) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    /// In words: `unknown issuer: …`, `name mismatch: …`.
    pub what: String,
    /// The library's own text, kept.
    pub detail: String,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.what, self.detail)
    }
}

impl TlsError {
    /// What failed, in words, and the library's text.
    pub(crate) fn new(what: impl Into<String>, detail: impl Into<String>) -> TlsError {
        TlsError {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
