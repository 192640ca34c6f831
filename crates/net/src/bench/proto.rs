//! The bench header (docs/protocol.md, "The bench protocol"): 8 bytes from
//! the client, `SLBENCH` and a mode letter; 8 bytes back, `SLBREADY`. An
//! echo server sends the header back, so the answer differs from it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use super::BenchError;

/// The header's first seven bytes.
pub(crate) const MAGIC: &[u8; 7] = b"SLBENCH";
/// The server's answer.
pub(crate) const READY: &[u8; 8] = b"SLBREADY";
/// The header and the answer are this long.
pub(crate) const HEADER_LEN: usize = 8;
/// The largest message an echo (TCP `rtt`) or a datagram carries.
pub const MAX_MESSAGE: usize = 65_507;

/// What the client asks the server to be for this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `S`: read and drop everything until the end of stream, then close.
    Sink,
    /// `E`: send back every byte (`rtt`), on a thread of its own.
    Echo,
    /// `H`: send back every byte with a tiny buffer, on a task (`hold`).
    Hold,
    /// `P`: answer the header and close (a probe, `connect`).
    Probe,
    /// `U`: a datagram asking whether UDP echo is there.
    Udp,
}

impl Mode {
    /// The header's mode letter.
    pub(crate) fn letter(self) -> u8 {
        match self {
            Mode::Sink => b'S',
            Mode::Echo => b'E',
            Mode::Hold => b'H',
            Mode::Probe => b'P',
            Mode::Udp => b'U',
        }
    }

    /// The mode a header asks for (`None`: no bench header).
    pub(crate) fn of(header: &[u8]) -> Option<Mode> {
        if header.len() != HEADER_LEN || &header[..7] != MAGIC {
            return None;
        }
        match header[7] {
            b'S' => Some(Mode::Sink),
            b'E' => Some(Mode::Echo),
            b'H' => Some(Mode::Hold),
            b'P' => Some(Mode::Probe),
            b'U' => Some(Mode::Udp),
            _ => None,
        }
    }

    /// The 8-byte header.
    pub(crate) fn header(self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..7].copy_from_slice(MAGIC);
        h[7] = self.letter();
        h
    }
}

/// What a peer answered that is no `SLBREADY`, as the error says it.
pub(crate) fn not_ready(peer: SocketAddr, got: &[u8]) -> BenchError {
    BenchError::NotBench {
        peer,
        why: if got == Mode::Sink.header().as_slice() || got.starts_with(MAGIC) {
            "it sent the bench header back (an echo server?)".to_string()
        } else {
            format!("it answered {} instead of SLBREADY", shown(got))
        },
    }
}

/// A few bytes of a peer's answer, escaped.
fn shown(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .take(16)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    format!("\"{text}\"")
}

/// Connects to a bench server and asks for `mode`: the connect and the
/// answer each within `wait`. Blocking.
pub(crate) fn dial(to: SocketAddr, mode: Mode, wait: Duration) -> Result<TcpStream, BenchError> {
    crate::netns::guard(None, to.ip()).map_err(|e| BenchError::Refused {
        peer: to,
        why: e.to_string(),
    })?;
    let mut s = TcpStream::connect_timeout(&to, wait).map_err(|e| BenchError::connect(to, e))?;
    s.set_nodelay(true)
        .map_err(|e| BenchError::io(to, "setsockopt", e))?;
    s.set_read_timeout(Some(wait))
        .map_err(|e| BenchError::io(to, "setsockopt", e))?;
    s.set_write_timeout(Some(wait))
        .map_err(|e| BenchError::io(to, "setsockopt", e))?;
    s.write_all(&mode.header())
        .map_err(|e| BenchError::io(to, "send the bench header", e))?;
    let mut got = [0u8; HEADER_LEN];
    let mut have = 0;
    while have < HEADER_LEN {
        match s.read(&mut got[have..]) {
            Ok(0) => {
                return Err(BenchError::NotBench {
                    peer: to,
                    why: if have == 0 {
                        "it closed the connection at the bench header".to_string()
                    } else {
                        format!("it answered {} and closed", shown(&got[..have]))
                    },
                })
            }
            Ok(n) => have += n,
            Err(e) if timed_out(&e) => {
                return Err(BenchError::NotBench {
                    peer: to,
                    why: format!(
                        "no answer to the bench header within {} ms{}",
                        wait.as_millis(),
                        if have == 0 {
                            String::new()
                        } else {
                            format!(" (only {})", shown(&got[..have]))
                        }
                    ),
                })
            }
            Err(e) => return Err(BenchError::io(to, "read the bench answer", e)),
        }
        if got[..have] != READY[..have] {
            return Err(not_ready(to, &got[..have]));
        }
    }
    Ok(s)
}

/// Asks a bench server's UDP echo whether it is there (one datagram, its
/// answer within `wait`, three tries). Blocking.
pub(crate) fn dial_udp(to: SocketAddr, wait: Duration) -> Result<UdpSocket, BenchError> {
    crate::netns::guard(None, to.ip()).map_err(|e| BenchError::Refused {
        peer: to,
        why: e.to_string(),
    })?;
    let any: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(any).map_err(|e| BenchError::io(to, "bind", e))?;
    s.connect(to)
        .map_err(|e| BenchError::io(to, "connect", e))?;
    let tries = 3u32;
    s.set_read_timeout(Some((wait / tries).max(Duration::from_millis(10))))
        .map_err(|e| BenchError::io(to, "setsockopt", e))?;
    let mut got = [0u8; 64];
    for _ in 0..tries {
        s.send(&Mode::Udp.header())
            .map_err(|e| BenchError::io(to, "send the bench header", e))?;
        match s.recv(&mut got) {
            Ok(n) if got[..n] == READY[..] => return Ok(s),
            Ok(n) => return Err(not_ready(to, &got[..n])),
            Err(e) if timed_out(&e) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(BenchError::NotBench {
                    peer: to,
                    why: "nothing listens on that UDP port (ICMP port unreachable)".to_string(),
                })
            }
            Err(e) => return Err(BenchError::io(to, "read the bench answer", e)),
        }
    }
    Err(BenchError::NotBench {
        peer: to,
        why: format!(
            "no answer to the UDP bench header within {} ms",
            wait.as_millis()
        ),
    })
}

/// Whether a blocking read or write ran into its SO_RCVTIMEO/SO_SNDTIMEO.
pub(crate) fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_others_are_refused() {
        for m in [Mode::Sink, Mode::Echo, Mode::Hold, Mode::Probe, Mode::Udp] {
            assert_eq!(Mode::of(&m.header()), Some(m));
        }
        assert_eq!(Mode::of(b"SLBENCHX"), None);
        assert_eq!(Mode::of(b"GET / HT"), None);
        assert_eq!(Mode::of(b"SLBENCH"), None);
        assert_ne!(READY.as_slice(), Mode::Sink.header().as_slice());
    }
}
