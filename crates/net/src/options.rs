//! Socket options by name, set and read through socket2.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;

use socket2::SockRef;

/// A socket option socklab can set and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockOpt {
    /// SO_REUSEADDR: bind a port whose old connections linger in TIME_WAIT.
    ReuseAddr,
    /// SO_REUSEPORT: several sockets bind the same port; the kernel spreads
    /// connections among them.
    ReusePort,
    /// TCP_NODELAY: send small writes at once (no Nagle delay).
    NoDelay,
    /// SO_KEEPALIVE: probe an idle connection to find a dead peer.
    KeepAlive,
    /// SO_RCVBUF: receive buffer size in bytes (the kernel doubles it).
    RcvBuf,
    /// SO_SNDBUF: send buffer size in bytes (the kernel doubles it).
    SndBuf,
    /// SO_LINGER: how `close` treats unsent data (`off`, or a time; 0 = reset).
    Linger,
    /// IPV6_V6ONLY: an IPv6 socket accepts IPv6 only (not v4-mapped).
    V6Only,
    /// IP_TTL / IPV6_UNICAST_HOPS: hop limit of outgoing packets.
    Ttl,
    /// SO_BROADCAST: a UDP socket may send to a broadcast address.
    Broadcast,
    /// IP_MULTICAST_TTL: hop limit of multicast datagrams (lab hosts only).
    MulticastTtl,
    /// IP_MULTICAST_LOOP: the sender's own host gets its multicast too
    /// (lab hosts only).
    MulticastLoop,
    /// IP_MULTICAST_IF: the interface (by address) multicast leaves by
    /// (lab hosts only).
    MulticastIf,
}

/// A value of a socket option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptValue {
    /// An on/off option.
    Bool(bool),
    /// A size or count.
    Int(u64),
    /// SO_LINGER: `None` is off.
    Linger(Option<Duration>),
    /// An IPv4 address (IP_MULTICAST_IF).
    Addr(std::net::Ipv4Addr),
}

/// What kind of value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    /// `on` / `off`.
    Bool,
    /// A number of bytes or hops.
    Int,
    /// `off` or a duration.
    Linger,
    /// An IPv4 address.
    Addr,
}

impl SockOpt {
    /// Every option, in the order `help` lists them.
    pub const ALL: [SockOpt; 13] = [
        SockOpt::ReuseAddr,
        SockOpt::ReusePort,
        SockOpt::NoDelay,
        SockOpt::KeepAlive,
        SockOpt::RcvBuf,
        SockOpt::SndBuf,
        SockOpt::Linger,
        SockOpt::V6Only,
        SockOpt::Ttl,
        SockOpt::Broadcast,
        SockOpt::MulticastTtl,
        SockOpt::MulticastLoop,
        SockOpt::MulticastIf,
    ];

    /// Whether the option is about multicast (which only the lab's hosts
    /// may use).
    pub fn is_multicast(self) -> bool {
        matches!(
            self,
            SockOpt::MulticastTtl | SockOpt::MulticastLoop | SockOpt::MulticastIf
        )
    }

    /// The option's name in commands.
    pub fn name(self) -> &'static str {
        match self {
            SockOpt::ReuseAddr => "reuseaddr",
            SockOpt::ReusePort => "reuseport",
            SockOpt::NoDelay => "nodelay",
            SockOpt::KeepAlive => "keepalive",
            SockOpt::RcvBuf => "rcvbuf",
            SockOpt::SndBuf => "sndbuf",
            SockOpt::Linger => "linger",
            SockOpt::V6Only => "v6only",
            SockOpt::Ttl => "ttl",
            SockOpt::Broadcast => "broadcast",
            SockOpt::MulticastTtl => "multicast_ttl",
            SockOpt::MulticastLoop => "multicast_loop",
            SockOpt::MulticastIf => "multicast_if",
        }
    }

    /// The option's C name.
    pub fn c_name(self) -> &'static str {
        match self {
            SockOpt::ReuseAddr => "SO_REUSEADDR",
            SockOpt::ReusePort => "SO_REUSEPORT",
            SockOpt::NoDelay => "TCP_NODELAY",
            SockOpt::KeepAlive => "SO_KEEPALIVE",
            SockOpt::RcvBuf => "SO_RCVBUF",
            SockOpt::SndBuf => "SO_SNDBUF",
            SockOpt::Linger => "SO_LINGER",
            SockOpt::V6Only => "IPV6_V6ONLY",
            SockOpt::Ttl => "IP_TTL",
            SockOpt::Broadcast => "SO_BROADCAST",
            SockOpt::MulticastTtl => "IP_MULTICAST_TTL",
            SockOpt::MulticastLoop => "IP_MULTICAST_LOOP",
            SockOpt::MulticastIf => "IP_MULTICAST_IF",
        }
    }

    /// What kind of value the option takes.
    pub fn kind(self) -> OptKind {
        match self {
            SockOpt::RcvBuf | SockOpt::SndBuf | SockOpt::Ttl | SockOpt::MulticastTtl => {
                OptKind::Int
            }
            SockOpt::Linger => OptKind::Linger,
            SockOpt::MulticastIf => OptKind::Addr,
            _ => OptKind::Bool,
        }
    }

    /// One line on what the option does.
    pub fn summary(self) -> &'static str {
        match self {
            SockOpt::ReuseAddr => "allow bind while old connections on the port sit in TIME_WAIT (set before bind)",
            SockOpt::ReusePort => "let several sockets bind the same port (set before bind)",
            SockOpt::NoDelay => "send small writes at once instead of waiting to batch them (Nagle off)",
            SockOpt::KeepAlive => "probe an idle connection to detect a peer that vanished",
            SockOpt::RcvBuf => "receive buffer size in bytes (Linux doubles what you ask)",
            SockOpt::SndBuf => "send buffer size in bytes (Linux doubles what you ask)",
            SockOpt::Linger => "close: off = send the rest in the background; 0s = reset at once; 5s = wait up to 5s",
            SockOpt::V6Only => "an IPv6 socket refuses IPv4 clients (set before bind)",
            SockOpt::Ttl => "hop limit of outgoing packets",
            SockOpt::Broadcast => "a UDP socket may send to a broadcast address like 255.255.255.255",
            SockOpt::MulticastTtl => "hop limit of multicast datagrams (1: this LAN only)",
            SockOpt::MulticastLoop => "the sending host gets its own multicast datagrams too",
            SockOpt::MulticastIf => "the interface (by its address) multicast datagrams leave by",
        }
    }

    /// Sets the option on a socket.
    pub(crate) fn set(self, sock: SockRef<'_>, value: OptValue, v6: bool) -> io::Result<()> {
        match (self, value) {
            (SockOpt::ReuseAddr, OptValue::Bool(b)) => sock.set_reuse_address(b),
            (SockOpt::ReusePort, OptValue::Bool(b)) => sock.set_reuse_port(b),
            (SockOpt::NoDelay, OptValue::Bool(b)) => sock.set_tcp_nodelay(b),
            (SockOpt::KeepAlive, OptValue::Bool(b)) => sock.set_keepalive(b),
            (SockOpt::V6Only, OptValue::Bool(b)) => sock.set_only_v6(b),
            (SockOpt::Broadcast, OptValue::Bool(b)) => sock.set_broadcast(b),
            (SockOpt::RcvBuf, OptValue::Int(n)) => sock.set_recv_buffer_size(to_usize(n)?),
            (SockOpt::SndBuf, OptValue::Int(n)) => sock.set_send_buffer_size(to_usize(n)?),
            (SockOpt::Ttl, OptValue::Int(n)) => {
                let n = u32::try_from(n).map_err(|_| invalid("ttl must be 1-255"))?;
                if v6 {
                    sock.set_unicast_hops_v6(n)
                } else {
                    sock.set_ttl_v4(n)
                }
            }
            (SockOpt::Linger, OptValue::Linger(d)) => sock.set_linger(d),
            (SockOpt::MulticastTtl, OptValue::Int(n)) => {
                let n = u32::try_from(n).map_err(|_| invalid("multicast_ttl must be 0-255"))?;
                sock.set_multicast_ttl_v4(n)
            }
            (SockOpt::MulticastLoop, OptValue::Bool(b)) => sock.set_multicast_loop_v4(b),
            (SockOpt::MulticastIf, OptValue::Addr(a)) => sock.set_multicast_if_v4(&a),
            _ => Err(invalid("wrong kind of value for this option")),
        }
    }

    /// Reads the option from a socket.
    pub(crate) fn get(self, sock: SockRef<'_>, v6: bool) -> io::Result<OptValue> {
        Ok(match self {
            SockOpt::ReuseAddr => OptValue::Bool(sock.reuse_address()?),
            SockOpt::ReusePort => OptValue::Bool(sock.reuse_port()?),
            SockOpt::NoDelay => OptValue::Bool(sock.tcp_nodelay()?),
            SockOpt::KeepAlive => OptValue::Bool(sock.keepalive()?),
            SockOpt::V6Only => OptValue::Bool(sock.only_v6()?),
            SockOpt::Broadcast => OptValue::Bool(sock.broadcast()?),
            SockOpt::RcvBuf => OptValue::Int(sock.recv_buffer_size()? as u64),
            SockOpt::SndBuf => OptValue::Int(sock.send_buffer_size()? as u64),
            SockOpt::Ttl => OptValue::Int(u64::from(if v6 {
                sock.unicast_hops_v6()?
            } else {
                sock.ttl_v4()?
            })),
            SockOpt::Linger => OptValue::Linger(sock.linger()?),
            SockOpt::MulticastTtl => OptValue::Int(u64::from(sock.multicast_ttl_v4()?)),
            SockOpt::MulticastLoop => OptValue::Bool(sock.multicast_loop_v4()?),
            SockOpt::MulticastIf => OptValue::Addr(sock.multicast_if_v4()?),
        })
    }
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| invalid("size too large"))
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl fmt::Display for SockOpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SockOpt {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let s = s.to_ascii_lowercase();
        SockOpt::ALL
            .into_iter()
            .find(|o| o.name() == s || o.c_name().eq_ignore_ascii_case(&s))
            .ok_or(())
    }
}

impl fmt::Display for OptValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptValue::Bool(true) => f.write_str("on"),
            OptValue::Bool(false) => f.write_str("off"),
            OptValue::Int(n) => write!(f, "{n}"),
            OptValue::Linger(None) => f.write_str("off"),
            OptValue::Linger(Some(d)) => write!(f, "{}s", d.as_secs()),
            OptValue::Addr(a) => write!(f, "{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_c_names_parse() {
        for o in SockOpt::ALL {
            assert_eq!(o.name().parse::<SockOpt>(), Ok(o));
            assert_eq!(o.c_name().parse::<SockOpt>(), Ok(o));
        }
        assert!("nosuch".parse::<SockOpt>().is_err());
    }

    #[test]
    fn set_then_get_on_a_real_socket() {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let r = SockRef::from(&s);
        SockOpt::ReuseAddr
            .set(r, OptValue::Bool(true), false)
            .unwrap();
        assert_eq!(
            SockOpt::ReuseAddr.get(SockRef::from(&s), false).unwrap(),
            OptValue::Bool(true)
        );
        SockOpt::Linger
            .set(
                SockRef::from(&s),
                OptValue::Linger(Some(Duration::from_secs(3))),
                false,
            )
            .unwrap();
        assert_eq!(
            SockOpt::Linger.get(SockRef::from(&s), false).unwrap(),
            OptValue::Linger(Some(Duration::from_secs(3)))
        );
        SockOpt::RcvBuf
            .set(SockRef::from(&s), OptValue::Int(8192), false)
            .unwrap();
        // Linux doubles the requested size to leave room for bookkeeping.
        assert_eq!(
            SockOpt::RcvBuf.get(SockRef::from(&s), false).unwrap(),
            OptValue::Int(16384)
        );
        assert!(SockOpt::NoDelay
            .set(SockRef::from(&s), OptValue::Int(1), false)
            .is_err());
    }
}
