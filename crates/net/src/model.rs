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
    /// The lab host whose network namespace holds it (`on HOST …`); `None`
    /// in this shell's own namespace.
    pub host: Option<String>,
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
