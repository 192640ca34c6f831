//! What the lab's sockets are, as the rest of the program sees them:
//! families, protocols, roles, and a snapshot of one socket for display.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

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

// A UNIX socket has the roles of a TCP one (fresh, listener, stream) or
// of a UDP one (datagram); `SocketInfo::unix` says it is UNIX.

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
    /// Address family (`None` for a program and a UNIX socket).
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
    /// A UNIX-domain socket's addresses and peer (`family` is `None` then).
    pub unix: Option<UnixInfo>,
    /// What the stream's TLS handshake agreed, when it carries TLS.
    pub tls: Option<std::sync::Arc<TlsFacts>>,
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

/// The longest path (or abstract name) a UNIX address holds: `sun_path`
/// is 108 bytes, one of them the path's terminating NUL (an abstract name
/// gives it to its leading NUL instead).
pub const MAX_PATH: usize = 107;

/// Where a UNIX socket is, as a person writes it after `unix:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// A path in the file system (a socket file is made there by bind).
    Path(PathBuf),
    /// A name in Linux's abstract namespace (`@name`): no file, gone with
    /// the last socket that holds it.
    Abstract(Vec<u8>),
    /// No address: a client that never bound (the usual case).
    Unnamed,
}

impl UnixAddr {
    /// Parses what follows `unix:`: `@NAME` is abstract, anything else a
    /// path.
    ///
    /// # Errors
    /// Empty, or longer than [`MAX_PATH`] bytes (with what it is).
    pub fn parse(s: &str) -> std::result::Result<UnixAddr, String> {
        let addr = match s.strip_prefix('@') {
            Some("") => return Err("an abstract name needs a name after @".to_string()),
            Some(name) => UnixAddr::Abstract(name.as_bytes().to_vec()),
            None if s.is_empty() => {
                return Err("a UNIX address needs a path after unix: (or @NAME)".to_string())
            }
            None => UnixAddr::Path(PathBuf::from(s)),
        };
        addr.check_len()?;
        Ok(addr)
    }

    pub(crate) fn check_len(&self) -> std::result::Result<(), String> {
        let (n, what) = match self {
            UnixAddr::Path(p) => (p.as_os_str().len(), "path"),
            UnixAddr::Abstract(a) => (a.len(), "abstract name"),
            UnixAddr::Unnamed => return Ok(()),
        };
        if n > MAX_PATH {
            return Err(format!(
                "a UNIX socket's {what} holds at most {MAX_PATH} bytes (sun_path is 108, with the NUL); this one has {n}: use a shorter directory, or an abstract name (unix:@NAME)"
            ));
        }
        Ok(())
    }

    /// The path, for a file-system address.
    pub fn path(&self) -> Option<&Path> {
        match self {
            UnixAddr::Path(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => write!(f, "{}", p.display()),
            UnixAddr::Abstract(a) => {
                f.write_str("@")?;
                for c in a.utf8_chunks() {
                    for ch in c.valid().chars() {
                        if ch.is_control() {
                            write!(f, "{}", ch.escape_default())?;
                        } else {
                            write!(f, "{ch}")?;
                        }
                    }
                    for b in c.invalid() {
                        write!(f, "\\x{b:02x}")?;
                    }
                }
                Ok(())
            }
            UnixAddr::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

/// Who is at the other end of a UNIX stream, as the kernel recorded it
/// when the connection was made (SO_PEERCRED): it cannot be forged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// The peer's process id (`None` when the kernel cannot say: another
    /// pid namespace).
    pub pid: Option<i32>,
    /// The peer's user id.
    pub uid: u32,
    /// The peer's group id.
    pub gid: u32,
}

/// What a UNIX-domain socket has instead of IP addresses.
#[derive(Debug, Clone)]
pub struct UnixInfo {
    /// A datagram socket (SOCK_DGRAM), not a stream.
    pub dgram: bool,
    /// Its own address.
    pub local: UnixAddr,
    /// Its peer's address (a connection).
    pub peer: Option<UnixAddr>,
    /// The peer's credentials (SO_PEERCRED), for a connection.
    pub cred: Option<PeerCred>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_addresses_parse_and_show_as_typed() {
        let p = UnixAddr::parse("/tmp/x.sock").unwrap();
        assert_eq!(p, UnixAddr::Path(PathBuf::from("/tmp/x.sock")));
        assert_eq!(p.to_string(), "/tmp/x.sock");
        let a = UnixAddr::parse("@lab").unwrap();
        assert_eq!(a, UnixAddr::Abstract(b"lab".to_vec()));
        assert_eq!(a.to_string(), "@lab");
        assert_eq!(UnixAddr::Unnamed.to_string(), "(unnamed)");
        // A name read from a peer shows its control bytes escaped.
        assert_eq!(
            UnixAddr::Abstract(b"a\n\xff".to_vec()).to_string(),
            "@a\\n\\xff"
        );
    }

    #[test]
    fn unix_addresses_have_a_length_limit() {
        assert!(UnixAddr::parse("").is_err());
        assert!(UnixAddr::parse("@").is_err());
        let fits = format!("/{}", "x".repeat(MAX_PATH - 1));
        assert!(UnixAddr::parse(&fits).is_ok());
        let long = format!("/{}", "x".repeat(MAX_PATH));
        let e = UnixAddr::parse(&long).unwrap_err();
        assert!(e.contains("at most 107 bytes"), "{e}");
        assert!(UnixAddr::parse(&format!("@{}", "n".repeat(MAX_PATH + 1))).is_err());
    }
}
