//! `port`: what a port number means, here and in general.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Type};

/// Where this machine keeps its ephemeral port range.
const PORT_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// Where Linux says from which port on binding needs no privilege.
const UNPRIVILEGED_START_FILE: &str = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
/// The system's table of service names.
const SERVICES_FILE: &str = "/etc/services";

/// The IANA class of a port number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortClass {
    /// Port 0: not a real port; binding it means "any free port".
    Any,
    /// 1-1023: system (well-known) ports.
    System,
    /// 1024-49151: registered ports.
    Registered,
    /// 49152-65535: dynamic (private) ports.
    Dynamic,
}

impl PortClass {
    /// The class of port `port`.
    pub fn of(port: u16) -> PortClass {
        match port {
            0 => PortClass::Any,
            1..=1023 => PortClass::System,
            1024..=49151 => PortClass::Registered,
            49152..=u16::MAX => PortClass::Dynamic,
        }
    }

    /// The class's short name (`system (well-known)`, …).
    pub fn name(self) -> &'static str {
        match self {
            PortClass::Any => "any",
            PortClass::System => "system (well-known)",
            PortClass::Registered => "registered",
            PortClass::Dynamic => "dynamic/private",
        }
    }

    /// The first and last port of the class.
    pub fn range(self) -> (u16, u16) {
        match self {
            PortClass::Any => (0, 0),
            PortClass::System => (1, 1023),
            PortClass::Registered => (1024, 49151),
            PortClass::Dynamic => (49152, u16::MAX),
        }
    }

    /// One line of English saying what a port of this class means.
    pub fn meaning(self) -> &'static str {
        match self {
            PortClass::Any => "port 0 is not a real port: binding it asks the OS for any free port",
            PortClass::System => {
                "system (well-known) port, 1-1023: assigned by IANA to standard services; \
                 binding one needs privilege on most systems"
            }
            PortClass::Registered => {
                "registered port, 1024-49151: IANA records services here, but any program \
                 may bind one"
            }
            PortClass::Dynamic => {
                "dynamic/private port, 49152-65535: never registered; meant for temporary \
                 (client-side) use"
            }
        }
    }
}

impl fmt::Display for PortClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The ports this machine picks from when a socket needs a local port and
/// none was given (connect without bind, bind to port 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EphemeralRange {
    /// The first port of the range.
    pub low: u16,
    /// The last port of the range.
    pub high: u16,
}

impl EphemeralRange {
    /// Whether `port` is in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }
}

/// Where service names came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceSource {
    /// The system's `/etc/services`.
    EtcServices,
    /// socklab's small built-in table (`/etc/services` was not readable).
    BuiltIn,
}

/// The service names registered for a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Services {
    /// Names for TCP, primary name first, then aliases (`http`, `www`).
    pub tcp: Vec<String>,
    /// Names for UDP, the same way.
    pub udp: Vec<String>,
    /// Where the names came from.
    pub source: ServiceSource,
}

/// Whether binding 127.0.0.1:PORT works right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindCheck {
    /// The bind worked (the socket was closed at once). Port 0 is always
    /// free: it means any port.
    Free,
    /// Another socket holds the port (EADDRINUSE).
    InUse,
    /// This process may not bind the port (EACCES: a system port without
    /// root or CAP_NET_BIND_SERVICE).
    NeedsPrivilege,
    /// The bind failed for another reason: the OS error's text.
    Failed(String),
}

/// Everything `port N` shows about one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortReport {
    /// The port.
    pub port: u16,
    /// Its IANA class.
    pub class: PortClass,
    /// This machine's ephemeral range, `None` when it could not be read.
    pub ephemeral: Option<EphemeralRange>,
    /// Whether the port is in the ephemeral range (`None` when unknown).
    pub in_ephemeral: Option<bool>,
    /// The first port an unprivileged process may bind
    /// (`net.ipv4.ip_unprivileged_port_start`, 1024 unless changed), `None`
    /// when it could not be read.
    pub unprivileged_start: Option<u16>,
    /// The service names registered for the port.
    pub services: Services,
    /// Whether a TCP socket can bind 127.0.0.1:PORT now.
    pub free_tcp: BindCheck,
    /// Whether a UDP socket can bind 127.0.0.1:PORT now.
    pub free_udp: BindCheck,
}

/// Why `port` could not take its argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Not a port number at all (negative, or more than 65535).
    #[error("{0} is out of range: ports are 0-65535")]
    OutOfRange(i64),
}

/// Tells what port `n` means: its class, whether it is in this machine's
/// ephemeral range, its service names, and whether it is free on 127.0.0.1
/// for TCP and UDP (tried with a real bind, closed at once).
///
/// # Errors
/// [`PortError::OutOfRange`] when `n` is not 0-65535.
pub fn port_info(n: i64) -> Result<PortReport, PortError> {
    let port = u16::try_from(n).map_err(|_| PortError::OutOfRange(n))?;
    let ephemeral = std::fs::read_to_string(PORT_RANGE_FILE)
        .ok()
        .and_then(|text| parse_port_range(&text));
    let unprivileged_start = std::fs::read_to_string(UNPRIVILEGED_START_FILE)
        .ok()
        .and_then(|text| text.trim().parse().ok());
    let services = match std::fs::read_to_string(SERVICES_FILE) {
        Ok(text) => {
            let (tcp, udp) = parse_services(&text, port);
            Services {
                tcp,
                udp,
                source: ServiceSource::EtcServices,
            }
        }
        Err(_) => builtin_services(port),
    };
    Ok(PortReport {
        port,
        class: PortClass::of(port),
        ephemeral,
        in_ephemeral: ephemeral.map(|r| r.contains(port)),
        unprivileged_start,
        services,
        free_tcp: bind_check(Type::STREAM, Protocol::TCP, port),
        free_udp: bind_check(Type::DGRAM, Protocol::UDP, port),
    })
}

/// Binds a fresh socket to 127.0.0.1:`port` and closes it. No SO_REUSEADDR:
/// the answer is what a plain `bind` would meet.
fn bind_check(ty: Type, protocol: Protocol, port: u16) -> BindCheck {
    if port == 0 {
        return BindCheck::Free;
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let result =
        crate::netns::socket(Domain::IPV4, ty, Some(protocol)).and_then(|s| s.bind(&addr.into()));
    match result {
        Ok(()) => BindCheck::Free,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => BindCheck::InUse,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => BindCheck::NeedsPrivilege,
        Err(e) => BindCheck::Failed(e.to_string()),
    }
}

/// Reads `ip_local_port_range` ("32768\t60999").
fn parse_port_range(text: &str) -> Option<EphemeralRange> {
    let mut words = text.split_whitespace().map(str::parse::<u16>);
    let low = words.next()?.ok()?;
    let high = words.next()?.ok()?;
    (low <= high && words.next().is_none()).then_some(EphemeralRange { low, high })
}

/// The TCP and UDP names for `port` in `/etc/services` text, each in file
/// order, primary name before its aliases, without repeats.
fn parse_services(text: &str, port: u16) -> (Vec<String>, Vec<String>) {
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((p, proto)) = port_proto.split_once('/') else {
            continue;
        };
        if p.parse::<u16>() != Ok(port) {
            continue;
        }
        let list = match proto {
            "tcp" => &mut tcp,
            "udp" => &mut udp,
            _ => continue,
        };
        for word in std::iter::once(name).chain(words) {
            if !list.iter().any(|n| n == word) {
                list.push(word.to_string());
            }
        }
    }
    (tcp, udp)
}

/// Well-known services, for machines without `/etc/services`:
/// (port, TCP name, UDP name).
const BUILT_IN: &[(u16, Option<&str>, Option<&str>)] = &[
    (20, Some("ftp-data"), None),
    (21, Some("ftp"), None),
    (22, Some("ssh"), None),
    (23, Some("telnet"), None),
    (25, Some("smtp"), None),
    (53, Some("domain"), Some("domain")),
    (67, None, Some("bootps")),
    (68, None, Some("bootpc")),
    (80, Some("http"), None),
    (110, Some("pop3"), None),
    (123, None, Some("ntp")),
    (143, Some("imap"), None),
    (443, Some("https"), Some("https")),
    (465, Some("submissions"), None),
    (587, Some("submission"), None),
    (993, Some("imaps"), None),
    (995, Some("pop3s"), None),
    (3306, Some("mysql"), None),
    (5432, Some("postgresql"), None),
    (6379, Some("redis"), None),
    (8080, Some("http-alt"), None),
];

fn builtin_services(port: u16) -> Services {
    let (tcp, udp) = BUILT_IN
        .iter()
        .find(|(p, _, _)| *p == port)
        .map_or((None, None), |&(_, tcp, udp)| (tcp, udp));
    let names = |name: Option<&str>| name.map(|n| vec![n.to_string()]).unwrap_or_default();
    Services {
        tcp: names(tcp),
        udp: names(udp),
        source: ServiceSource::BuiltIn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, UdpSocket};

    #[test]
    fn classes() {
        let cases: &[(i64, PortClass)] = &[
            (0, PortClass::Any),
            (1, PortClass::System),
            (1023, PortClass::System),
            (1024, PortClass::Registered),
            (49151, PortClass::Registered),
            (49152, PortClass::Dynamic),
            (65535, PortClass::Dynamic),
        ];
        for &(n, class) in cases {
            let report = port_info(n).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(i64::from(report.port), n);
            assert_eq!(report.class, class, "{n}");
            let (low, high) = class.range();
            assert!((low..=high).contains(&report.port), "{n}");
            assert_eq!(
                report.in_ephemeral,
                report.ephemeral.map(|r| r.contains(report.port))
            );
        }
    }

    #[test]
    fn out_of_range() {
        let cases: &[(i64, &str)] = &[
            (65536, "65536 is out of range: ports are 0-65535"),
            (-1, "-1 is out of range: ports are 0-65535"),
            (
                i64::MAX,
                "9223372036854775807 is out of range: ports are 0-65535",
            ),
            (
                i64::MIN,
                "-9223372036854775808 is out of range: ports are 0-65535",
            ),
        ];
        for &(n, message) in cases {
            assert_eq!(port_info(n).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn port_zero_is_free() {
        let report = port_info(0).unwrap();
        assert_eq!(report.free_tcp, BindCheck::Free);
        assert_eq!(report.free_udp, BindCheck::Free);
    }

    #[test]
    fn held_ports_are_not_free() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        assert_eq!(port_info(port.into()).unwrap().free_tcp, BindCheck::InUse);
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        assert_eq!(port_info(port.into()).unwrap().free_udp, BindCheck::InUse);
    }

    #[test]
    fn released_port_is_free_again() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The listener is closed; it never had a connection, so no TIME_WAIT.
        assert_eq!(port_info(port.into()).unwrap().free_tcp, BindCheck::Free);
    }

    #[test]
    fn ephemeral_range() {
        let cases: &[(&str, Option<(u16, u16)>)] = &[
            ("32768\t60999\n", Some((32768, 60999))),
            ("1024 65535", Some((1024, 65535))),
            ("60999 32768", None),
            ("32768", None),
            ("a b", None),
            ("1 2 3", None),
            ("", None),
        ];
        for &(text, want) in cases {
            let got = parse_port_range(text).map(|r| (r.low, r.high));
            assert_eq!(got, want, "{text:?}");
        }
        let r = EphemeralRange {
            low: 32768,
            high: 60999,
        };
        assert!(!r.contains(32767));
        assert!(r.contains(32768));
        assert!(r.contains(60999));
        assert!(!r.contains(61000));
    }

    #[test]
    fn services_file() {
        let text = "\
# comment 80/tcp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
http\t\t80/udp
domain\t\t53/tcp\t\t\t\t# Domain Name Server
domain\t\t53/udp
bootps\t\t67/udp
http-alt\t8080/tcp\twebcache
broken line
sctp-thing\t80/sctp
";
        let cases: &[(u16, &[&str], &[&str])] = &[
            (80, &["http", "www"], &["http"]),
            (53, &["domain"], &["domain"]),
            (67, &[], &["bootps"]),
            (8080, &["http-alt", "webcache"], &[]),
            (9, &[], &[]),
        ];
        for &(port, tcp, udp) in cases {
            let (t, u) = parse_services(text, port);
            assert_eq!(t, tcp, "{port}");
            assert_eq!(u, udp, "{port}");
        }
    }

    #[test]
    fn built_in_services() {
        let wanted = [
            20, 21, 22, 23, 25, 53, 67, 68, 80, 110, 123, 143, 443, 465, 587, 993, 995, 3306, 5432,
            6379, 8080,
        ];
        for port in wanted {
            let s = builtin_services(port);
            assert!(!(s.tcp.is_empty() && s.udp.is_empty()), "{port}");
            assert_eq!(s.source, ServiceSource::BuiltIn);
        }
        assert_eq!(builtin_services(22).tcp, ["ssh"]);
        assert_eq!(builtin_services(67).udp, ["bootps"]);
        assert!(builtin_services(12345).tcp.is_empty());
    }

    #[test]
    fn ssh_is_port_22() {
        let report = port_info(22).unwrap();
        assert!(report.services.tcp.iter().any(|n| n == "ssh"), "{report:?}");
    }
}
