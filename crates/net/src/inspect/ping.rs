//! `ping`: is a host reachable, and how long does a round trip take?
//!
//! ICMP echo when this process may send it: through an unprivileged ICMP
//! datagram socket (Linux allows one to the groups in
//! `net.ipv4.ping_group_range`) or a raw socket (root or CAP_NET_RAW).
//! Otherwise the time a TCP connect to a given port takes: a completed
//! handshake and a refusal (RST) both prove the host is up.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{self, Instant, MissedTickBehavior};

/// Where Linux lists the groups allowed unprivileged ICMP sockets.
const PING_GROUP_FILE: &str = "/proc/sys/net/ipv4/ping_group_range";
/// The fewest and most probes one `ping` sends.
pub const PING_COUNT: std::ops::RangeInclusive<u32> = 1..=1000;
/// The longest interval and timeout `ping` takes.
pub const PING_MAX_WAIT: Duration = Duration::from_secs(3600);
/// What an echo request carries after its header.
const PAYLOAD: &[u8] = b"socklab ping 0123456789abcdef";

/// How `ping` should probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// ICMP echo if this process may send it, else TCP connect to the port.
    Auto,
    /// ICMP echo only; an error if it is not allowed.
    Icmp,
    /// TCP connect to the port only.
    Tcp,
}

/// How `ping` did probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeMethod {
    /// ICMP echo over an unprivileged ICMP datagram socket.
    IcmpDatagram,
    /// ICMP echo over a raw socket (root or CAP_NET_RAW).
    IcmpRaw,
    /// The time a TCP connect to `port` takes.
    Tcp {
        /// The port connected to.
        port: u16,
    },
}

impl ProbeMethod {
    /// One line of English saying what an answer to this kind of probe
    /// proves.
    pub fn meaning(self) -> &'static str {
        match self {
            ProbeMethod::IcmpDatagram | ProbeMethod::IcmpRaw => {
                "ICMP echo: a reply means the host's IP stack answered; the time is one round trip"
            }
            ProbeMethod::Tcp { .. } => {
                "TCP connect: a completed handshake and a refused connection (RST) both prove \
                 the host is up; the time is one round trip (SYN to SYN-ACK or RST)"
            }
        }
    }
}

/// What became of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// ICMP: an echo reply came back after `time`.
    Reply {
        /// The round-trip time.
        time: Duration,
    },
    /// TCP: the handshake completed after `time` (the connection was closed
    /// at once).
    Connected {
        /// The time the connect took.
        time: Duration,
    },
    /// TCP: the host refused the connection (RST) after `time`. Nothing
    /// listens on the port, but the host is up: this counts as an answer.
    Refused {
        /// The time until the refusal.
        time: Duration,
    },
    /// No answer within the timeout.
    Timeout,
    /// The probe failed: the OS error's text (network unreachable, …).
    Error(String),
}

impl ProbeOutcome {
    /// The round-trip time, if the probe was answered.
    pub fn time(&self) -> Option<Duration> {
        match self {
            ProbeOutcome::Reply { time }
            | ProbeOutcome::Connected { time }
            | ProbeOutcome::Refused { time } => Some(*time),
            ProbeOutcome::Timeout | ProbeOutcome::Error(_) => None,
        }
    }
}

/// One probe and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The sequence number, counting from 1.
    pub seq: u32,
    /// What became of it.
    pub outcome: ProbeOutcome,
}

/// The result of a `ping`.
#[derive(Debug, Clone, PartialEq)]
pub struct PingReport {
    /// The address probed (a v4-mapped IPv6 address is probed as IPv4).
    pub target: IpAddr,
    /// How it was probed.
    pub method: ProbeMethod,
    /// Why that method, in one line ("ICMP needs privilege here (…); using
    /// TCP connect to port 22").
    pub reason: String,
    /// Every probe, in order.
    pub probes: Vec<Probe>,
    /// Probes sent.
    pub sent: u32,
    /// Probes answered (ICMP replies; TCP connects and refusals).
    pub answered: u32,
    /// Unanswered probes in percent of those sent.
    pub loss_percent: f64,
    /// The shortest round trip, `None` if nothing answered.
    pub min: Option<Duration>,
    /// The mean round trip, `None` if nothing answered.
    pub avg: Option<Duration>,
    /// The longest round trip, `None` if nothing answered.
    pub max: Option<Duration>,
}

/// Why `ping` could not run.
#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// The target is on the lab's LAN and this is the root namespace.
    #[error(transparent)]
    OffLan(#[from] crate::error::NetError),
    /// The count is not 1-1000.
    #[error("{0} probes: ping sends 1-1000")]
    Count(u32),
    /// A zero timeout would give up on every probe before its answer.
    #[error("a timeout of 0 gives up on every probe before it can be answered")]
    ZeroTimeout,
    /// The interval or the timeout is longer than [`PING_MAX_WAIT`].
    #[error("{what} of {given:?} is longer than ping waits (at most an hour)")]
    TooLong {
        /// `an interval` or `a timeout`.
        what: &'static str,
        /// The duration given.
        given: Duration,
    },
    /// TCP probing was asked for without a port.
    #[error("a TCP ping needs a port to connect to")]
    NoPort,
    /// ICMP is not allowed here and no port was given for TCP probing.
    #[error("{reason}; give a port to measure TCP connect time instead")]
    NoMethod {
        /// Why ICMP is not available.
        reason: String,
    },
    /// ICMP was asked for and is not allowed here.
    #[error("no ICMP socket: {reason}")]
    IcmpUnavailable {
        /// Why, for both kinds of ICMP socket.
        reason: String,
        /// The error of the last attempt (the raw socket).
        #[source]
        source: io::Error,
    },
    /// A system call on the ICMP socket failed.
    #[error("{op}: {source}")]
    Os {
        /// The call.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Pings `target` `count` times, one probe `every` interval, each waiting
/// at most `timeout` for its answer: ICMP echo when allowed, else TCP
/// connect to `port`. The same as [`ping_with`] with [`Method::Auto`].
///
/// # Errors
/// See [`ping_with`].
pub async fn ping(
    target: IpAddr,
    port: Option<u16>,
    count: u32,
    every: Duration,
    timeout: Duration,
) -> Result<PingReport, PingError> {
    ping_with(Method::Auto, target, port, count, every, timeout).await
}

/// Pings `target` with `method`: `count` probes (1-1000), paced `every`
/// interval (0 means back to back; a probe waits for its answer before the
/// next one goes), each waiting at most `timeout` (not 0; both at most
/// [`PING_MAX_WAIT`]). TCP probes connect to
/// `port`. A v4-mapped IPv6 target is probed as the IPv4 address.
///
/// # Errors
/// [`PingError::Count`], [`PingError::ZeroTimeout`], [`PingError::TooLong`];
/// [`PingError::NoPort`]
/// for TCP without a port; [`PingError::NoMethod`] when ICMP is not allowed
/// and there is no port; [`PingError::IcmpUnavailable`] when ICMP was asked
/// for and is not allowed; [`PingError::Os`] when the ICMP socket cannot be
/// set up. A failed probe is not an error: it is a [`ProbeOutcome`].
pub async fn ping_with(
    method: Method,
    target: IpAddr,
    port: Option<u16>,
    count: u32,
    every: Duration,
    timeout: Duration,
) -> Result<PingReport, PingError> {
    if !PING_COUNT.contains(&count) {
        return Err(PingError::Count(count));
    }
    if timeout.is_zero() {
        return Err(PingError::ZeroTimeout);
    }
    for (what, given) in [("an interval", every), ("a timeout", timeout)] {
        if given > PING_MAX_WAIT {
            return Err(PingError::TooLong { what, given });
        }
    }
    let target = target.to_canonical();
    crate::netns::guard(crate::netns::current().as_deref(), target)?;
    let v6 = target.is_ipv6();
    let choice = choose(method, port, |kind| open_icmp(kind, v6))?;
    let pacer = Pacer::new(every);
    let (method, reason, probes) = match choice {
        Choice::Icmp(kind, socket, reason) => {
            let probes = icmp_probes(socket, kind, target, count, pacer, timeout)
                .await
                .map_err(|source| PingError::Os {
                    op: "ICMP socket",
                    source,
                })?;
            let method = match kind {
                IcmpKind::Datagram => ProbeMethod::IcmpDatagram,
                IcmpKind::Raw => ProbeMethod::IcmpRaw,
            };
            (method, reason, probes)
        }
        Choice::Tcp(port, reason) => {
            let probes = tcp_probes(target, port, count, pacer, timeout).await;
            (ProbeMethod::Tcp { port }, reason, probes)
        }
    };
    Ok(report(target, method, reason, probes))
}

fn report(target: IpAddr, method: ProbeMethod, reason: String, probes: Vec<Probe>) -> PingReport {
    let times: Vec<Duration> = probes.iter().filter_map(|p| p.outcome.time()).collect();
    // Both counts are at most 1000, the bound on `count`.
    let sent = probes.len() as u32;
    let answered = times.len() as u32;
    let loss_percent = if sent == 0 {
        0.0
    } else {
        f64::from(sent - answered) * 100.0 / f64::from(sent)
    };
    let avg = (answered > 0).then(|| times.iter().sum::<Duration>() / answered);
    PingReport {
        target,
        method,
        reason,
        sent,
        answered,
        loss_percent,
        min: times.iter().min().copied(),
        avg,
        max: times.iter().max().copied(),
        probes,
    }
}

/// The two kinds of ICMP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IcmpKind {
    /// `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`: unprivileged "ping
    /// socket"; the kernel sets the identifier and checksum and hands this
    /// socket only the replies meant for it.
    Datagram,
    /// `socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)`: needs CAP_NET_RAW; sees
    /// every ICMP packet (IPv4: with its IP header).
    Raw,
}

fn open_icmp(kind: IcmpKind, v6: bool) -> io::Result<Socket> {
    let (domain, protocol) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let ty = match kind {
        IcmpKind::Datagram => Type::DGRAM,
        IcmpKind::Raw => Type::RAW,
    };
    crate::netns::socket(domain, ty, Some(protocol))
}

/// The method `ping` settled on.
#[derive(Debug)]
enum Choice<S> {
    /// ICMP echo over this socket, and why.
    Icmp(IcmpKind, S, String),
    /// TCP connect to this port, and why.
    Tcp(u16, String),
}

/// Picks the method: ICMP datagram socket, else raw socket, else TCP.
/// `open` makes the ICMP sockets (a stand-in in tests).
fn choose<S>(
    method: Method,
    port: Option<u16>,
    mut open: impl FnMut(IcmpKind) -> io::Result<S>,
) -> Result<Choice<S>, PingError> {
    if method == Method::Tcp {
        let port = port.ok_or(PingError::NoPort)?;
        return Ok(Choice::Tcp(
            port,
            format!("TCP connect to port {port}, as asked"),
        ));
    }
    let dgram_err = match open(IcmpKind::Datagram) {
        Ok(s) => {
            return Ok(Choice::Icmp(
                IcmpKind::Datagram,
                s,
                "ICMP echo through an unprivileged ICMP socket \
                 (net.ipv4.ping_group_range allows this process's group)"
                    .to_string(),
            ))
        }
        Err(e) => e,
    };
    // A refusal that led to another method is a reason, not an error: it
    // is said in words, without the OS's "(os error N)".
    let dgram_why = if is_permission(&dgram_err) {
        format!(
            "the unprivileged ICMP socket is not allowed here{}",
            group_note(&dgram_err)
        )
    } else {
        format!(
            "the unprivileged ICMP socket is not available here ({})",
            plain(&dgram_err)
        )
    };
    let raw_err = match open(IcmpKind::Raw) {
        Ok(s) => {
            return Ok(Choice::Icmp(
                IcmpKind::Raw,
                s,
                format!(
                    "ICMP echo through a raw socket, which this process may open (it has root or \
                     CAP_NET_RAW), because {dgram_why}"
                ),
            ))
        }
        Err(e) => e,
    };
    let raw_why = if is_permission(&raw_err) {
        "a raw socket needs root or CAP_NET_RAW".to_string()
    } else {
        format!("a raw socket is not available ({})", plain(&raw_err))
    };
    let needs = if is_permission(&dgram_err) && is_permission(&raw_err) {
        "ICMP needs privilege here"
    } else {
        "ICMP is not available here"
    };
    let reason = format!("{needs} ({dgram_why}; {raw_why})");
    match (method, port) {
        (Method::Icmp, _) => Err(PingError::IcmpUnavailable {
            reason,
            source: raw_err,
        }),
        (_, Some(port)) => Ok(Choice::Tcp(
            port,
            format!("{reason}; using TCP connect to port {port}"),
        )),
        (_, None) => Err(PingError::NoMethod { reason }),
    }
}

/// An OS error in words, without its "(os error N)".
fn plain(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn is_permission(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied
}

/// Why the kernel refused an unprivileged ICMP socket, if it was the group
/// check: " (group G is not in net.ipv4.ping_group_range L-H)".
fn group_note(e: &io::Error) -> String {
    if !is_permission(e) {
        return String::new();
    }
    let Ok(text) = std::fs::read_to_string(PING_GROUP_FILE) else {
        return String::new();
    };
    let range: Vec<u32> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let gid = nix::unistd::getegid();
    // In a user namespace of socklab's own (no root), groups it does not
    // map read as the overflow group: "1 0" (none) reads "65534 65534".
    let overflow = std::fs::read_to_string("/proc/sys/kernel/overflowgid")
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    match range[..] {
        [low, high] if crate::hosts::rootless::active() && low == high && Some(low) == overflow => {
            " (net.ipv4.ping_group_range allows no group of this user namespace)".to_string()
        }
        [low, high] if low > high => {
            format!(" (net.ipv4.ping_group_range \"{low} {high}\" allows no group)")
        }
        [low, high] => format!(" (group {gid} is not in net.ipv4.ping_group_range {low}-{high})"),
        _ => String::new(),
    }
}

/// Paces probes: one per period, the first at once. A probe that takes
/// longer than a period delays the ones after it instead of bunching them.
struct Pacer(Option<time::Interval>);

impl Pacer {
    fn new(every: Duration) -> Pacer {
        Pacer((!every.is_zero()).then(|| {
            let mut interval = time::interval(every);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        }))
    }

    async fn tick(&mut self) {
        if let Some(interval) = &mut self.0 {
            interval.tick().await;
        }
    }
}

/// The identifier of this process's next raw-socket ping; the kernel picks
/// it for datagram sockets. Distinct per ping so that two pings of one
/// process do not take each other's replies.
fn next_ident() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Truncation intended: the identifier field has 16 bits.
    (std::process::id() as u16).wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An ICMP or ICMPv6 echo request.
fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let kind = if v6 { 128 } else { 8 };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&ident.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(PAYLOAD);
    // The kernel fills the ICMPv6 checksum itself (it covers a pseudo
    // header this socket does not see); the ICMPv4 one is ours to fill.
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The identifier and sequence number of an echo reply in `packet`, or
/// `None` if it is not one. A raw IPv4 socket's packets start with the IP
/// header.
fn echo_reply(packet: &[u8], kind: IcmpKind, v6: bool) -> Option<(u16, u16)> {
    let icmp = if kind == IcmpKind::Raw && !v6 {
        let header_len = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(header_len..)?
    } else {
        packet
    };
    let reply_type = if v6 { 129 } else { 0 };
    match icmp {
        [t, 0, _, _, i0, i1, s0, s1, ..] if *t == reply_type => Some((
            u16::from_be_bytes([*i0, *i1]),
            u16::from_be_bytes([*s0, *s1]),
        )),
        _ => None,
    }
}

async fn icmp_probes(
    socket: Socket,
    kind: IcmpKind,
    target: IpAddr,
    count: u32,
    mut pacer: Pacer,
    timeout: Duration,
) -> io::Result<Vec<Probe>> {
    socket.set_nonblocking(true)?;
    // An ICMP socket is a datagram socket as far as sendto/recvfrom go;
    // tokio's UdpSocket drives exactly those calls.
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
    let v6 = target.is_ipv6();
    let ident = next_ident();
    let to = SocketAddr::new(target, 0);
    let mut buf = vec![0u8; 2048];
    let mut probes = Vec::new();
    for seq in 1..=count {
        pacer.tick().await;
        // Sequence numbers are 16 bits on the wire; `count` is at most 1000.
        let wire_seq = seq as u16;
        let start = Instant::now();
        let deadline = start + timeout;
        let outcome = match socket.send_to(&echo_request(v6, ident, wire_seq), to).await {
            Err(e) => ProbeOutcome::Error(e.to_string()),
            Ok(_) => loop {
                match time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
                    Err(_) => break ProbeOutcome::Timeout,
                    Ok(Err(e)) => break ProbeOutcome::Error(e.to_string()),
                    Ok(Ok((n, from))) => {
                        let time = start.elapsed();
                        let ours = match echo_reply(&buf[..n], kind, v6) {
                            // The kernel matched a datagram socket's replies.
                            Some((id, s)) => {
                                s == wire_seq && (kind == IcmpKind::Datagram || id == ident)
                            }
                            None => false,
                        };
                        if ours && from.ip().to_canonical() == target {
                            break ProbeOutcome::Reply { time };
                        }
                    }
                }
            },
        };
        probes.push(Probe { seq, outcome });
    }
    Ok(probes)
}

/// A TCP connect from the current place (a lab host's, or this shell's).
async fn tcp_connect(to: SocketAddr) -> io::Result<TcpStream> {
    let domain = if to.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = crate::netns::socket(domain, Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    tokio::net::TcpSocket::from_std_stream(s.into())
        .connect(to)
        .await
}

async fn tcp_probes(
    target: IpAddr,
    port: u16,
    count: u32,
    mut pacer: Pacer,
    timeout: Duration,
) -> Vec<Probe> {
    let to = SocketAddr::new(target, port);
    let mut probes = Vec::new();
    for seq in 1..=count {
        pacer.tick().await;
        let start = Instant::now();
        let outcome = match time::timeout(timeout, tcp_connect(to)).await {
            Err(_) => ProbeOutcome::Timeout,
            Ok(Ok(stream)) => {
                let time = start.elapsed();
                drop(stream);
                ProbeOutcome::Connected { time }
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => ProbeOutcome::Refused {
                time: start.elapsed(),
            },
            Ok(Err(e)) => ProbeOutcome::Error(e.to_string()),
        };
        probes.push(Probe { seq, outcome });
    }
    probes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};

    const LOCAL4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const LOCAL6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
    const EVERY: Duration = Duration::from_millis(10);
    const WAIT: Duration = Duration::from_secs(5);

    fn denied(_: IcmpKind) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::EACCES))
    }

    fn check_stats(r: &PingReport, count: u32) {
        assert_eq!(r.sent, count);
        assert_eq!(r.probes.len(), count as usize);
        let seqs: Vec<u32> = r.probes.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, (1..=count).collect::<Vec<_>>());
        assert_eq!(r.answered, count, "{r:?}");
        assert_eq!(r.loss_percent, 0.0);
        let (min, avg, max) = (r.min.unwrap(), r.avg.unwrap(), r.max.unwrap());
        assert!(min <= avg && avg <= max, "{r:?}");
    }

    #[tokio::test]
    async fn tcp_to_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let r = ping_with(Method::Tcp, LOCAL4, Some(port), 3, EVERY, WAIT)
            .await
            .unwrap();
        assert_eq!(r.method, ProbeMethod::Tcp { port });
        assert_eq!(r.reason, format!("TCP connect to port {port}, as asked"));
        check_stats(&r, 3);
        for p in &r.probes {
            assert!(matches!(p.outcome, ProbeOutcome::Connected { .. }), "{p:?}");
        }
    }

    #[tokio::test]
    async fn tcp_to_a_closed_port_is_refused_but_timed() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = ping_with(Method::Tcp, LOCAL4, Some(port), 2, EVERY, WAIT)
            .await
            .unwrap();
        check_stats(&r, 2);
        for p in &r.probes {
            assert!(matches!(p.outcome, ProbeOutcome::Refused { .. }), "{p:?}");
        }
    }

    #[tokio::test]
    async fn tcp_over_ipv6_and_mapped() {
        let listener = TcpListener::bind("[::1]:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let r = ping_with(Method::Tcp, LOCAL6, Some(port), 1, EVERY, WAIT)
            .await
            .unwrap();
        check_stats(&r, 1);
        let mapped = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        let r = ping_with(Method::Tcp, mapped, Some(port), 1, Duration::ZERO, WAIT)
            .await
            .unwrap();
        assert_eq!(r.target, LOCAL4);
    }

    #[tokio::test]
    async fn bad_arguments() {
        let err = |r: Result<PingReport, PingError>| r.unwrap_err().to_string();
        let cases = [
            (
                err(ping_with(Method::Tcp, LOCAL4, Some(1), 0, EVERY, WAIT).await),
                "0 probes: ping sends 1-1000",
            ),
            (
                err(ping_with(Method::Tcp, LOCAL4, Some(1), 1001, EVERY, WAIT).await),
                "1001 probes: ping sends 1-1000",
            ),
            (
                err(ping_with(Method::Tcp, LOCAL4, Some(1), 1, EVERY, Duration::ZERO).await),
                "a timeout of 0 gives up on every probe before it can be answered",
            ),
            (
                err(ping_with(Method::Tcp, LOCAL4, None, 1, EVERY, WAIT).await),
                "a TCP ping needs a port to connect to",
            ),
            (
                err(ping_with(Method::Tcp, LOCAL4, Some(1), 1, Duration::MAX, WAIT).await),
                "an interval of 18446744073709551615.999999999s is longer than ping waits \
                 (at most an hour)",
            ),
            (
                err(ping_with(Method::Tcp, LOCAL4, Some(1), 1, EVERY, Duration::MAX).await),
                "a timeout of 18446744073709551615.999999999s is longer than ping waits \
                 (at most an hour)",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    /// The fallback, whatever this process may do: ICMP refused for lack of
    /// privilege.
    /// Issue 10 item 3: a ping that works says which method it used and
    /// why, in words: the refusal that led there is a reason, not an error
    /// ("Permission denied (os error 13)" on a successful line misled).
    #[test]
    fn a_working_method_gives_its_reason_without_os_errors() {
        let raw_only = |k| match k {
            IcmpKind::Datagram => denied(k),
            IcmpKind::Raw => Ok(()),
        };
        let unsupported = |_| Err::<(), _>(io::Error::from_raw_os_error(libc::EAFNOSUPPORT));
        let reasons = [
            choose(Method::Auto, None, raw_only),
            choose(Method::Auto, Some(22), denied),
            choose(Method::Auto, Some(7), unsupported),
        ]
        .map(|c| match c.unwrap() {
            Choice::Icmp(_, (), reason) | Choice::Tcp(_, reason) => reason,
        });
        for reason in &reasons {
            assert!(!reason.contains("os error"), "{reason}");
            assert!(!reason.contains("Permission denied"), "{reason}");
        }
        assert!(
            reasons[0].starts_with("ICMP echo through a raw socket")
                && reasons[0].contains("because the unprivileged ICMP socket is not allowed here"),
            "{}",
            reasons[0]
        );
        assert!(
            reasons[2].contains("not available here (Address family"),
            "{}",
            reasons[2]
        );
    }

    #[test]
    fn fallback_when_icmp_is_denied() {
        match choose(Method::Auto, Some(22), denied).unwrap() {
            Choice::Tcp(22, reason) => {
                assert!(
                    reason.starts_with("ICMP needs privilege here ("),
                    "{reason}"
                );
                assert!(
                    reason.ends_with("; using TCP connect to port 22"),
                    "{reason}"
                );
                assert!(reason.contains("needs root or CAP_NET_RAW"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let e = choose(Method::Auto, None, denied).unwrap_err();
        assert!(matches!(e, PingError::NoMethod { .. }), "{e:?}");
        assert!(e
            .to_string()
            .ends_with("; give a port to measure TCP connect time instead"));
        let e = choose(Method::Icmp, Some(22), denied).unwrap_err();
        assert!(matches!(e, PingError::IcmpUnavailable { .. }), "{e:?}");
    }

    #[test]
    fn datagram_first_then_raw() {
        let c = choose(Method::Auto, None, |_| Ok(())).unwrap();
        assert!(
            matches!(c, Choice::Icmp(IcmpKind::Datagram, (), _)),
            "{c:?}"
        );
        let raw_only = |k| match k {
            IcmpKind::Datagram => denied(k),
            IcmpKind::Raw => Ok(()),
        };
        match choose(Method::Icmp, None, raw_only).unwrap() {
            Choice::Icmp(IcmpKind::Raw, (), reason) => {
                assert!(
                    reason.starts_with("ICMP echo through a raw socket"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        let unsupported = |_| Err::<(), _>(io::Error::from_raw_os_error(libc::EAFNOSUPPORT));
        match choose(Method::Auto, Some(7), unsupported).unwrap() {
            Choice::Tcp(7, reason) => {
                assert!(
                    reason.starts_with("ICMP is not available here ("),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    /// The real thing: ICMP where this process may, else the reported
    /// fallback to TCP.
    #[tokio::test]
    async fn auto_pings_loopback() {
        let listener4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let listener6 = TcpListener::bind("[::1]:0").unwrap();
        for (target, listener) in [(LOCAL4, &listener4), (LOCAL6, &listener6)] {
            let port = listener.local_addr().unwrap().port();
            let v6 = target.is_ipv6();
            let dgram = open_icmp(IcmpKind::Datagram, v6);
            let raw = open_icmp(IcmpKind::Raw, v6);
            let r = ping(target, Some(port), 3, EVERY, WAIT).await.unwrap();
            match (&dgram, &raw) {
                (Ok(_), _) => assert_eq!(r.method, ProbeMethod::IcmpDatagram, "{r:?}"),
                (Err(_), Ok(_)) => assert_eq!(r.method, ProbeMethod::IcmpRaw, "{r:?}"),
                (Err(d), Err(w)) => {
                    assert_eq!(r.method, ProbeMethod::Tcp { port }, "{r:?}");
                    if is_permission(d) && is_permission(w) {
                        assert!(r.reason.starts_with("ICMP needs privilege here"), "{r:?}");
                    }
                    assert!(r
                        .reason
                        .ends_with(&format!("using TCP connect to port {port}")));
                }
            }
            check_stats(&r, 3);
            if r.method != (ProbeMethod::Tcp { port }) {
                for p in &r.probes {
                    assert!(matches!(p.outcome, ProbeOutcome::Reply { .. }), "{p:?}");
                }
            }
        }
    }

    /// Two pings at once from one process each get their own replies.
    #[tokio::test]
    async fn concurrent_icmp_pings() {
        if open_icmp(IcmpKind::Datagram, false).is_err() && open_icmp(IcmpKind::Raw, false).is_err()
        {
            // Covered by `fallback_when_icmp_is_denied`; nothing to race here.
            return;
        }
        let a = ping_with(Method::Icmp, LOCAL4, None, 5, EVERY, WAIT);
        let b = ping_with(Method::Icmp, LOCAL4, None, 5, EVERY, WAIT);
        let (a, b) = tokio::join!(a, b);
        check_stats(&a.unwrap(), 5);
        check_stats(&b.unwrap(), 5);
    }

    #[test]
    fn packets() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to 0");
        assert_eq!(&echo_request(true, 1, 2)[..8], &[128, 0, 0, 0, 0, 1, 0, 2]);
        assert_eq!(checksum(&[0x01]), !0x0100);

        let reply4 = [0, 0, 0, 0, 0x12, 0x34, 0, 7];
        assert_eq!(
            echo_reply(&reply4, IcmpKind::Datagram, false),
            Some((0x1234, 7))
        );
        let mut with_ip = vec![0x45; 1];
        with_ip.extend_from_slice(&[0; 19]);
        with_ip.extend_from_slice(&reply4);
        assert_eq!(
            echo_reply(&with_ip, IcmpKind::Raw, false),
            Some((0x1234, 7))
        );
        assert_eq!(echo_reply(&p, IcmpKind::Datagram, false), None, "a request");
        assert_eq!(
            echo_reply(&[129, 0, 0, 0, 0, 1, 0, 2], IcmpKind::Raw, true),
            Some((1, 2))
        );
        assert_eq!(echo_reply(&[0, 0, 0], IcmpKind::Datagram, false), None);
        assert_eq!(echo_reply(&[], IcmpKind::Raw, false), None);
        assert_eq!(echo_reply(&[0x4f, 0, 0], IcmpKind::Raw, false), None);
    }

    #[test]
    fn stats() {
        let ms = Duration::from_millis;
        let probes = vec![
            Probe {
                seq: 1,
                outcome: ProbeOutcome::Connected { time: ms(2) },
            },
            Probe {
                seq: 2,
                outcome: ProbeOutcome::Timeout,
            },
            Probe {
                seq: 3,
                outcome: ProbeOutcome::Refused { time: ms(4) },
            },
            Probe {
                seq: 4,
                outcome: ProbeOutcome::Error("x".into()),
            },
        ];
        let r = report(LOCAL4, ProbeMethod::Tcp { port: 1 }, String::new(), probes);
        assert_eq!((r.sent, r.answered), (4, 2));
        assert_eq!(r.loss_percent, 50.0);
        assert_eq!(
            (r.min, r.avg, r.max),
            (Some(ms(2)), Some(ms(3)), Some(ms(4)))
        );
        let r = report(
            LOCAL4,
            ProbeMethod::IcmpRaw,
            String::new(),
            vec![Probe {
                seq: 1,
                outcome: ProbeOutcome::Timeout,
            }],
        );
        assert_eq!(r.loss_percent, 100.0);
        assert_eq!((r.min, r.avg, r.max), (None, None, None));
    }
}
