//! `ip`: what an address (and an optional prefix) means.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// The IP version of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4: 4 bytes, written as four decimal numbers (`127.0.0.1`).
    V4,
    /// IPv6: 16 bytes, written as eight hex groups (`::1`).
    V6,
}

impl IpVersion {
    /// How many bits an address of this version has (32 or 128).
    pub fn bits(self) -> u8 {
        match self {
            IpVersion::V4 => 32,
            IpVersion::V6 => 128,
        }
    }

    /// The version's name, `IPv4` or `IPv6`.
    pub fn name(self) -> &'static str {
        match self {
            IpVersion::V4 => "IPv4",
            IpVersion::V6 => "IPv6",
        }
    }
}

impl fmt::Display for IpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an address may be used: which special block it falls in, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `0.0.0.0` or `::`: no particular address.
    Unspecified,
    /// `127.0.0.0/8` or `::1`: this machine itself.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16` (RFC 1918) or `fc00::/7` (unique-local).
    Private,
    /// `100.64/10` (RFC 6598): carrier-grade NAT space.
    Shared,
    /// `169.254/16` or `fe80::/10`: valid on one link only.
    LinkLocal,
    /// `224/4` or `ff00::/8`: a group address.
    Multicast,
    /// `255.255.255.255`: the limited broadcast address.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Set aside by IANA for special use (`0/8`, `240/4`, `198.18/15`,
    /// `192.0.0/24`; IPv6 outside `2000::/3` not listed above).
    Reserved,
    /// Everything else: a public, Internet-routable address.
    Global,
}

impl Scope {
    /// The scope's short name (`loopback`, `link-local`, …).
    pub fn name(self) -> &'static str {
        match self {
            Scope::Unspecified => "unspecified",
            Scope::Loopback => "loopback",
            Scope::Private => "private",
            Scope::Shared => "shared",
            Scope::LinkLocal => "link-local",
            Scope::Multicast => "multicast",
            Scope::Broadcast => "broadcast",
            Scope::Documentation => "documentation",
            Scope::Reserved => "reserved",
            Scope::Global => "global",
        }
    }

    /// One line of English saying what an address of this scope means.
    pub fn meaning(self) -> &'static str {
        match self {
            Scope::Unspecified => {
                "no particular address: bound, it means every local address; never a destination"
            }
            Scope::Loopback => "this machine itself: packets sent here never leave it",
            Scope::Private => {
                "private (LAN) address: used inside one site, not routed on the Internet; \
                 reached from outside only through NAT or a VPN"
            }
            Scope::Shared => {
                "shared address (carrier-grade NAT, RFC 6598): between an ISP's NAT and its \
                 customers, not routed on the Internet"
            }
            Scope::LinkLocal => {
                "link-local address: valid on one link (one cable or Wi-Fi network) only, \
                 assigned automatically, never forwarded by routers"
            }
            Scope::Multicast => {
                "multicast group: one datagram reaches every host that joined the group \
                 (UDP, never TCP)"
            }
            Scope::Broadcast => {
                "limited broadcast: every host on this link; routers never forward it \
                 (UDP with SO_BROADCAST, never TCP)"
            }
            Scope::Documentation => {
                "documentation address: set aside for examples (RFC 5737, RFC 3849), \
                 never routed on the Internet"
            }
            Scope::Reserved => {
                "reserved for special use: not an ordinary host address, not routed on the Internet"
            }
            Scope::Global => "global (public) address: routable on the Internet",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything `ip ADDR[/PREFIX]` shows about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpReport {
    /// The address as parsed.
    pub addr: IpAddr,
    /// IPv4 or IPv6 (a v4-mapped IPv6 address is IPv6: it was written as one).
    pub version: IpVersion,
    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    pub bytes: Vec<u8>,
    /// The canonical text: dotted quad for IPv4, the RFC 5952 compressed
    /// form for IPv6 (`2001:db8::1`).
    pub canonical: String,
    /// IPv6 only: all eight groups, four hex digits each
    /// (`2001:0db8:0000:0000:0000:0000:0000:0001`).
    pub expanded: Option<String>,
    /// For a v4-mapped IPv6 address (`::ffff:127.0.0.1`), the IPv4 address it
    /// stands for; `scope` and `block` then describe that IPv4 address.
    pub mapped_v4: Option<Ipv4Addr>,
    /// Where the address may be used.
    pub scope: Scope,
    /// The special block the address falls in (`127.0.0.0/8`), or `None` for
    /// a global address.
    pub block: Option<&'static str>,
    /// The network, when a prefix was given.
    pub network: Option<Network>,
}

/// The network `ADDR/PREFIX` belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// The prefix length.
    pub prefix: u8,
    /// The netmask (`255.255.255.0` for an IPv4 /24).
    pub netmask: IpAddr,
    /// The network address: the address with every host bit cleared.
    pub network: IpAddr,
    /// IPv4 only: the directed broadcast address (every host bit set).
    /// `None` for IPv6 (no broadcast) and for IPv4 /31 and /32 (RFC 3021).
    pub broadcast: Option<Ipv4Addr>,
    /// The first address a host may use.
    pub first_host: IpAddr,
    /// The last address a host may use.
    pub last_host: IpAddr,
    /// How many addresses hosts may use: IPv4 excludes the network and
    /// broadcast addresses (except /31: 2, /32: 1); IPv6 excludes the
    /// network address, which is the Subnet-Router anycast address
    /// (RFC 4291 §2.6.1; except /127: 2 (RFC 6164), /128: 1).
    pub hosts: u128,
    /// Bits left for hosts: the network holds `2^host_bits` addresses.
    pub host_bits: u8,
    /// Whether the given address is the network's own address rather than
    /// a host in it (never for /31, /32, /127, /128, where it is a host).
    pub is_network_address: bool,
    /// Whether the given address is the network's broadcast address (IPv4).
    pub is_broadcast_address: bool,
}

/// Why `ip` could not read its argument. [`IpError::span`] says which bytes
/// of the input are wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    /// No address was given.
    #[error("no address: give one such as 127.0.0.1 or ::1, optionally with /PREFIX")]
    Empty,
    /// Dotted text with the wrong number of parts (`1.2.3`).
    #[error(
        "{text} has {found} part{s}; an IPv4 address has 4 numbers separated by dots (a.b.c.d)",
        s = if *found == 1 { "" } else { "s" }
    )]
    V4Parts {
        /// The address text.
        text: String,
        /// How many dot-separated parts it has.
        found: usize,
        /// Where the text is in the input.
        at: Range<usize>,
    },
    /// One octet of an IPv4 address is wrong (`300.1.1.1`).
    #[error("octet {index} of {text}: {reason}")]
    V4Octet {
        /// The address text.
        text: String,
        /// Which octet, counting from 1.
        index: usize,
        /// What is wrong with it ("300 is more than 255").
        reason: String,
        /// Where the octet is in the input.
        at: Range<usize>,
    },
    /// Colon text that is not a valid IPv6 address.
    #[error("{text} is not a valid IPv6 address: {reason}")]
    V6 {
        /// The address text.
        text: String,
        /// What is wrong with it.
        reason: String,
        /// Where the problem is in the input.
        at: Range<usize>,
    },
    /// Text that looks like neither version (`abc`).
    #[error(
        "{text} is not an IP address: expected a.b.c.d (IPv4) or hex groups separated by \
         colons (IPv6)"
    )]
    NotAnAddress {
        /// The address text.
        text: String,
        /// Where it is in the input.
        at: Range<usize>,
    },
    /// The text after `/` is not a number (`1.2.3.4/x`).
    #[error("/{text}: the prefix length must be a number such as /24")]
    PrefixNotNumber {
        /// The text after the slash.
        text: String,
        /// Where it is in the input.
        at: Range<usize>,
    },
    /// The prefix is longer than the address (`1.2.3.4/33`).
    #[error("/{text}: an {version} prefix is 0-{max}")]
    PrefixTooLong {
        /// The text after the slash.
        text: String,
        /// The address's version.
        version: IpVersion,
        /// The longest prefix for that version (32 or 128).
        max: u8,
        /// Where the prefix is in the input.
        at: Range<usize>,
    },
}

impl IpError {
    /// The byte range of the input that is wrong (for a caret under it), or
    /// `None` when nothing was given.
    pub fn span(&self) -> Option<Range<usize>> {
        match self {
            IpError::Empty => None,
            IpError::V4Parts { at, .. }
            | IpError::V4Octet { at, .. }
            | IpError::V6 { at, .. }
            | IpError::NotAnAddress { at, .. }
            | IpError::PrefixNotNumber { at, .. }
            | IpError::PrefixTooLong { at, .. } => Some(at.clone()),
        }
    }
}

/// Analyzes `ADDR` or `ADDR/PREFIX`, IPv4 or IPv6.
///
/// # Errors
/// [`IpError`] naming the part that is wrong: the address (for IPv4, which
/// octet), or the prefix.
pub fn analyze(input: &str) -> Result<IpReport, IpError> {
    let (addr_text, prefix_text) = match input.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (input, None),
    };
    if addr_text.is_empty() {
        return Err(IpError::Empty);
    }
    let addr = parse_addr(addr_text)?;
    let version = match addr {
        IpAddr::V4(_) => IpVersion::V4,
        IpAddr::V6(_) => IpVersion::V6,
    };
    let network = match prefix_text {
        Some(text) => {
            let start = addr_text.len() + 1;
            let prefix = parse_prefix(text, version, start..input.len())?;
            Some(network(addr, prefix))
        }
        None => None,
    };
    let (bytes, expanded, mapped_v4) = match addr {
        IpAddr::V4(a) => (a.octets().to_vec(), None, None),
        IpAddr::V6(a) => {
            let groups: Vec<String> = a.segments().iter().map(|g| format!("{g:04x}")).collect();
            (
                a.octets().to_vec(),
                Some(groups.join(":")),
                a.to_ipv4_mapped(),
            )
        }
    };
    let (scope, block) = match (addr, mapped_v4) {
        (_, Some(v4)) | (IpAddr::V4(v4), None) => {
            classify(u128::from(u32::from(v4)), 32, V4_BLOCKS, Scope::Global)
        }
        (IpAddr::V6(v6), None) => classify(u128::from(v6), 128, V6_BLOCKS, Scope::Reserved),
    };
    Ok(IpReport {
        addr,
        version,
        bytes,
        canonical: addr.to_string(),
        expanded,
        mapped_v4,
        scope,
        block,
        network,
    })
}

/// One special block: its first address, prefix length, scope and name.
type Block = (u128, u8, Scope, &'static str);

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    u32::from_be_bytes([a, b, c, d]) as u128
}

/// IPv4 special blocks, first match wins (single addresses first).
const V4_BLOCKS: &[Block] = &[
    (v4(0, 0, 0, 0), 32, Scope::Unspecified, "0.0.0.0/32"),
    (
        v4(255, 255, 255, 255),
        32,
        Scope::Broadcast,
        "255.255.255.255/32",
    ),
    (v4(127, 0, 0, 0), 8, Scope::Loopback, "127.0.0.0/8"),
    (v4(10, 0, 0, 0), 8, Scope::Private, "10.0.0.0/8"), // private range: classification only
    (v4(172, 16, 0, 0), 12, Scope::Private, "172.16.0.0/12"), // private range: classification only
    (v4(192, 168, 0, 0), 16, Scope::Private, "192.168.0.0/16"), // private range: classification only
    (v4(100, 64, 0, 0), 10, Scope::Shared, "100.64.0.0/10"),
    (v4(169, 254, 0, 0), 16, Scope::LinkLocal, "169.254.0.0/16"),
    (v4(224, 0, 0, 0), 4, Scope::Multicast, "224.0.0.0/4"),
    (v4(192, 0, 2, 0), 24, Scope::Documentation, "192.0.2.0/24"),
    (
        v4(198, 51, 100, 0),
        24,
        Scope::Documentation,
        "198.51.100.0/24",
    ),
    (
        v4(203, 0, 113, 0),
        24,
        Scope::Documentation,
        "203.0.113.0/24",
    ),
    (v4(0, 0, 0, 0), 8, Scope::Reserved, "0.0.0.0/8"),
    (v4(192, 0, 0, 0), 24, Scope::Reserved, "192.0.0.0/24"),
    (v4(198, 18, 0, 0), 15, Scope::Reserved, "198.18.0.0/15"),
    (v4(240, 0, 0, 0), 4, Scope::Reserved, "240.0.0.0/4"),
];

/// IPv6 blocks, first match wins. Outside all of them (outside `2000::/3`,
/// the global unicast space, and the blocks above it): reserved.
const V6_BLOCKS: &[Block] = &[
    (0, 128, Scope::Unspecified, "::/128"),
    (1, 128, Scope::Loopback, "::1/128"),
    (0xfe80 << 112, 10, Scope::LinkLocal, "fe80::/10"),
    (0xfc00 << 112, 7, Scope::Private, "fc00::/7"),
    (0xff00 << 112, 8, Scope::Multicast, "ff00::/8"),
    (0x2001_0db8 << 96, 32, Scope::Documentation, "2001:db8::/32"),
    (0x3fff << 112, 20, Scope::Documentation, "3fff::/20"),
    (0x2000 << 112, 3, Scope::Global, "2000::/3"),
];

/// The first of `blocks` that holds `addr` (a `bits`-bit address), or
/// `otherwise` with no block. A global block is not reported as a block.
fn classify(
    addr: u128,
    bits: u8,
    blocks: &[Block],
    otherwise: Scope,
) -> (Scope, Option<&'static str>) {
    for &(start, len, scope, name) in blocks {
        if addr & !host_mask(bits, len) == start {
            return (scope, (scope != Scope::Global).then_some(name));
        }
    }
    (otherwise, None)
}

/// The host bits of a `bits`-bit address with a `prefix`-bit network part.
fn host_mask(bits: u8, prefix: u8) -> u128 {
    let host_bits = bits - prefix;
    if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    }
}

fn to_addr(version: IpVersion, value: u128) -> IpAddr {
    match version {
        // The value came from a 32-bit address and masks within 32 bits.
        IpVersion::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpVersion::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

fn network(addr: IpAddr, prefix: u8) -> Network {
    let (version, value) = match addr {
        IpAddr::V4(a) => (IpVersion::V4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (IpVersion::V6, u128::from(a)),
    };
    let bits = version.bits();
    let hosts_mask = host_mask(bits, prefix);
    let full = host_mask(bits, 0);
    let net = value & !hosts_mask;
    let top = net | hosts_mask;
    let host_bits = bits - prefix;
    // Prefixes whose every address is a host: IPv4 /31 /32 (RFC 3021),
    // IPv6 /127 (RFC 6164) /128.
    let all_hosts = host_bits <= 1;
    let (first, last, hosts) = if all_hosts {
        (net, top, hosts_mask + 1)
    } else {
        match version {
            IpVersion::V4 => (net + 1, top - 1, hosts_mask - 1),
            IpVersion::V6 => (net + 1, top, hosts_mask),
        }
    };
    let broadcast = match version {
        IpVersion::V4 if !all_hosts => Some(Ipv4Addr::from(top as u32)),
        _ => None,
    };
    Network {
        prefix,
        netmask: to_addr(version, full & !hosts_mask),
        network: to_addr(version, net),
        broadcast,
        first_host: to_addr(version, first),
        last_host: to_addr(version, last),
        hosts,
        host_bits,
        is_network_address: !all_hosts && value == net,
        is_broadcast_address: broadcast.is_some() && value == top,
    }
}

fn parse_prefix(text: &str, version: IpVersion, at: Range<usize>) -> Result<u8, IpError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IpError::PrefixNotNumber {
            text: text.to_string(),
            at,
        });
    }
    let max = version.bits();
    match text.parse::<u8>() {
        Ok(p) if p <= max => Ok(p),
        // Too many digits for a u8, or a number past the maximum.
        _ => Err(IpError::PrefixTooLong {
            text: text.to_string(),
            version,
            max,
            at,
        }),
    }
}

fn parse_addr(text: &str) -> Result<IpAddr, IpError> {
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(addr);
    }
    if text.contains(':') {
        let (reason, at) = v6_problem(text);
        return Err(IpError::V6 {
            text: text.to_string(),
            reason,
            at,
        });
    }
    if text.contains('.') || text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(v4_problem(text, 0));
    }
    Err(IpError::NotAnAddress {
        text: text.to_string(),
        at: 0..text.len(),
    })
}

/// What is wrong with IPv4 text `text` that std refused; `base` is its
/// offset in the input.
fn v4_problem(text: &str, base: usize) -> IpError {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return IpError::V4Parts {
            text: text.to_string(),
            found: parts.len(),
            at: base..base + text.len(),
        };
    }
    let mut start = base;
    for (i, part) in parts.iter().enumerate() {
        let at = start..start + part.len();
        start += part.len() + 1;
        let reason = if part.is_empty() {
            "empty (two dots in a row, or a dot at an end)".to_string()
        } else if let Some(c) = part.chars().find(|c| !c.is_ascii_digit()) {
            format!("{part}: '{c}' is not a decimal digit")
        } else if part.len() > 1 && part.starts_with('0') {
            format!("{part} has a leading zero (some systems read that as octal)")
        } else {
            match part.parse::<u32>() {
                Ok(n) if n <= 255 => continue,
                _ => format!("{part} is more than 255"),
            }
        };
        return IpError::V4Octet {
            text: text.to_string(),
            index: i + 1,
            reason,
            at,
        };
    }
    // Every part looked right, yet std refused: say no more than that.
    IpError::NotAnAddress {
        text: text.to_string(),
        at: base..base + text.len(),
    }
}

/// What is wrong with IPv6 text that std refused, and where.
fn v6_problem(text: &str) -> (String, Range<usize>) {
    let all = 0..text.len();
    if let Some(i) = text.find('%') {
        return (
            format!(
                "the zone index {} is not part of the address; leave it out",
                &text[i..]
            ),
            i..text.len(),
        );
    }
    if let Some((i, c)) = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
    {
        return (format!("'{c}' is not a hex digit"), i..i + c.len_utf8());
    }
    if let Some(i) = text.find(":::") {
        return ("three colons in a row".to_string(), i..i + 3);
    }
    let doubles: Vec<usize> = text.match_indices("::").map(|(i, _)| i).collect();
    if doubles.len() > 1 {
        return (
            ":: may appear only once (it stands for one run of zero groups)".to_string(),
            doubles[1]..doubles[1] + 2,
        );
    }
    if text.starts_with(':') && !text.starts_with("::") {
        return ("a single ':' cannot start an address".to_string(), 0..1);
    }
    if text.ends_with(':') && !text.ends_with("::") {
        return (
            "a single ':' cannot end an address".to_string(),
            text.len() - 1..text.len(),
        );
    }
    let mut groups = 0;
    let mut offset = 0;
    let pieces: Vec<&str> = text.split(':').collect();
    for (i, piece) in pieces.iter().enumerate() {
        let at = offset..offset + piece.len();
        offset += piece.len() + 1;
        if piece.contains('.') {
            if i + 1 != pieces.len() {
                return ("an IPv4 part may only end the address".to_string(), at);
            }
            if piece.parse::<Ipv4Addr>().is_err() {
                let inner = v4_problem(piece, at.start);
                let span = inner.span().unwrap_or(at);
                return (format!("in its IPv4 part, {inner}"), span);
            }
            groups += 2;
        } else if piece.len() > 4 {
            return (format!("{piece} has more than 4 hex digits"), at);
        } else if !piece.is_empty() {
            groups += 1;
        }
    }
    if doubles.is_empty() && groups != 8 {
        return (
            format!("it has {groups} groups; an IPv6 address has 8 (or fewer with ::)"),
            all,
        );
    }
    if !doubles.is_empty() && groups > 7 {
        return (
            format!("it has {groups} groups besides ::, which must stand for at least one"),
            all,
        );
    }
    ("not a valid IPv6 address".to_string(), all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the scope (and version) `analyze` gives each address.
    #[test]
    fn scopes() {
        let cases: &[(&str, IpVersion, Scope)] = &[
            ("127.0.0.1", IpVersion::V4, Scope::Loopback),
            ("127.255.0.9", IpVersion::V4, Scope::Loopback),
            ("10.1.2.3", IpVersion::V4, Scope::Private), // classification only, never a target
            ("172.16.0.1", IpVersion::V4, Scope::Private), // classification only, never a target
            ("172.31.255.255", IpVersion::V4, Scope::Private), // classification only, never a target
            ("172.32.0.1", IpVersion::V4, Scope::Global),
            ("192.168.24.148", IpVersion::V4, Scope::Private), // classification only, never a target
            ("169.254.1.1", IpVersion::V4, Scope::LinkLocal),
            ("224.0.0.1", IpVersion::V4, Scope::Multicast),
            ("239.255.255.250", IpVersion::V4, Scope::Multicast),
            ("255.255.255.255", IpVersion::V4, Scope::Broadcast),
            ("0.0.0.0", IpVersion::V4, Scope::Unspecified),
            ("192.0.2.1", IpVersion::V4, Scope::Documentation),
            ("198.51.100.7", IpVersion::V4, Scope::Documentation),
            ("203.0.113.255", IpVersion::V4, Scope::Documentation),
            ("100.64.0.1", IpVersion::V4, Scope::Shared),
            ("100.128.0.1", IpVersion::V4, Scope::Global),
            ("8.8.8.8", IpVersion::V4, Scope::Global),
            ("0.1.2.3", IpVersion::V4, Scope::Reserved),
            ("240.0.0.1", IpVersion::V4, Scope::Reserved),
            ("::1", IpVersion::V6, Scope::Loopback),
            ("::", IpVersion::V6, Scope::Unspecified),
            ("fe80::1", IpVersion::V6, Scope::LinkLocal),
            ("febf::1", IpVersion::V6, Scope::LinkLocal),
            ("fc00::1", IpVersion::V6, Scope::Private),
            ("fd12:3456::1", IpVersion::V6, Scope::Private),
            ("ff02::1", IpVersion::V6, Scope::Multicast),
            ("2001:db8::1", IpVersion::V6, Scope::Documentation),
            ("2606:4700::1", IpVersion::V6, Scope::Global),
            ("::2", IpVersion::V6, Scope::Reserved),
            ("::ffff:127.0.0.1", IpVersion::V6, Scope::Loopback),
            ("::ffff:8.8.8.8", IpVersion::V6, Scope::Global),
            ("::ffff:192.168.1.1", IpVersion::V6, Scope::Private), // classification only, never a target
        ];
        for &(input, version, scope) in cases {
            let report = analyze(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(report.version, version, "{input}");
            assert_eq!(report.scope, scope, "{input}");
            let blockless = scope == Scope::Global || input == "::2";
            assert_eq!(report.block.is_none(), blockless, "{input}");
            assert!(report.network.is_none(), "{input}");
            assert!(!scope.meaning().is_empty());
        }
    }

    #[test]
    fn bytes_and_text() {
        let r = analyze("192.168.24.148").unwrap(); // classification only, never a target
        assert_eq!(r.bytes, vec![192, 168, 24, 148]);
        assert_eq!(r.canonical, "192.168.24.148"); // classification only, never a target
        assert_eq!(r.expanded, None);
        assert_eq!(r.mapped_v4, None);
        assert_eq!(r.block, Some("192.168.0.0/16")); // classification only, never a target

        let r = analyze("2001:DB8:0:0::1").unwrap();
        assert_eq!(r.bytes.len(), 16);
        assert_eq!(&r.bytes[..4], &[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(r.bytes[15], 1);
        assert_eq!(r.canonical, "2001:db8::1");
        assert_eq!(
            r.expanded.as_deref(),
            Some("2001:0db8:0000:0000:0000:0000:0000:0001")
        );

        let r = analyze("::ffff:127.0.0.1").unwrap();
        assert_eq!(r.mapped_v4, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(r.bytes.len(), 16);
        assert_eq!(&r.bytes[10..], &[0xff, 0xff, 127, 0, 0, 1]);
        assert_eq!(r.canonical, "::ffff:127.0.0.1");
        assert_eq!(r.block, Some("127.0.0.0/8"));
    }

    /// (input, network, broadcast, first, last, hosts, is_network_address)
    type NetCase = (
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
        u128,
        bool,
    );

    /// Prefixes and what `analyze` must say about their networks.
    const NET_CASES: &[NetCase] = &[
        (
            "10.1.2.3/0", // classification only, never a target
            "0.0.0.0",
            Some("255.255.255.255"),
            "0.0.0.1",
            "255.255.255.254",
            (1 << 32) - 2,
            false,
        ),
        (
            "192.168.24.148/24",    // classification only, never a target
            "192.168.24.0",         // classification only, never a target
            Some("192.168.24.255"), // classification only, never a target
            "192.168.24.1",         // classification only, never a target
            "192.168.24.254",       // classification only, never a target
            254,
            false,
        ),
        (
            "192.168.24.0/24",      // classification only, never a target
            "192.168.24.0",         // classification only, never a target
            Some("192.168.24.255"), // classification only, never a target
            "192.168.24.1",         // classification only, never a target
            "192.168.24.254",       // classification only, never a target
            254,
            true,
        ),
        (
            "10.0.0.5/30",    // classification only, never a target
            "10.0.0.4",       // classification only, never a target
            Some("10.0.0.7"), // classification only, never a target
            "10.0.0.5",       // classification only, never a target
            "10.0.0.6",       // classification only, never a target
            2,
            false,
        ),
        (
            "10.0.0.0/31", // classification only, never a target
            "10.0.0.0",    // classification only, never a target
            None,
            "10.0.0.0", // classification only, never a target
            "10.0.0.1", // classification only, never a target
            2,
            false,
        ),
        (
            "10.0.0.1/31", // classification only, never a target
            "10.0.0.0",    // classification only, never a target
            None,
            "10.0.0.0", // classification only, never a target
            "10.0.0.1", // classification only, never a target
            2,
            false,
        ),
        (
            "10.0.0.9/32", // classification only, never a target
            "10.0.0.9",    // classification only, never a target
            None,
            "10.0.0.9", // classification only, never a target
            "10.0.0.9", // classification only, never a target
            1,
            false,
        ),
        (
            "::/0",
            "::",
            None,
            "::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            u128::MAX,
            true,
        ),
        (
            "2001:db8::1/64",
            "2001:db8::",
            None,
            "2001:db8::1",
            "2001:db8::ffff:ffff:ffff:ffff",
            (1 << 64) - 1,
            false,
        ),
        (
            "2001:db8::/64",
            "2001:db8::",
            None,
            "2001:db8::1",
            "2001:db8::ffff:ffff:ffff:ffff",
            (1 << 64) - 1,
            true,
        ),
        (
            "2001:db8::1/127",
            "2001:db8::",
            None,
            "2001:db8::",
            "2001:db8::1",
            2,
            false,
        ),
        ("::1/128", "::1", None, "::1", "::1", 1, false),
    ];

    #[test]
    fn prefixes() {
        for &(input, net, bcast, first, last, hosts, is_net) in NET_CASES {
            let n = analyze(input)
                .unwrap_or_else(|e| panic!("{input}: {e}"))
                .network
                .unwrap_or_else(|| panic!("{input}: no network"));
            assert_eq!(n.network.to_string(), net, "{input}");
            assert_eq!(
                n.broadcast.map(|b| b.to_string()).as_deref(),
                bcast,
                "{input}"
            );
            assert_eq!(n.first_host.to_string(), first, "{input}");
            assert_eq!(n.last_host.to_string(), last, "{input}");
            assert_eq!(n.hosts, hosts, "{input}");
            assert_eq!(n.is_network_address, is_net, "{input}");
        }
    }

    #[test]
    fn netmask_and_broadcast_address() {
        let n = analyze("192.168.24.255/24").unwrap().network.unwrap(); // classification only, never a target
        assert_eq!(n.netmask.to_string(), "255.255.255.0");
        assert_eq!(n.host_bits, 8);
        assert!(n.is_broadcast_address);
        let n = analyze("0.0.0.0/0").unwrap().network.unwrap();
        assert_eq!(n.netmask.to_string(), "0.0.0.0");
        assert_eq!(n.host_bits, 32);
        let n = analyze("fe80::1/64").unwrap().network.unwrap();
        assert_eq!(n.netmask.to_string(), "ffff:ffff:ffff:ffff::");
        assert!(!n.is_broadcast_address);
        let n = analyze("::1/128").unwrap().network.unwrap();
        assert_eq!(
            n.netmask.to_string(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(n.host_bits, 0);
    }

    #[test]
    fn bad_input() {
        let cases: &[(&str, &str, Option<Range<usize>>)] = &[
            ("300.1.1.1", "octet 1 of 300.1.1.1: 300 is more than 255", Some(0..3)),
            ("1.2.3.256", "octet 4 of 1.2.3.256: 256 is more than 255", Some(6..9)),
            ("1.2.3.99999999999", "octet 4 of 1.2.3.99999999999: 99999999999 is more than 255", Some(6..17)),
            (
                "1.2.3",
                "1.2.3 has 3 parts; an IPv4 address has 4 numbers separated by dots (a.b.c.d)",
                Some(0..5),
            ),
            (
                "1234",
                "1234 has 1 part; an IPv4 address has 4 numbers separated by dots (a.b.c.d)",
                Some(0..4),
            ),
            ("1..3.4", "octet 2 of 1..3.4: empty (two dots in a row, or a dot at an end)", Some(2..2)),
            ("1.2.3.a", "octet 4 of 1.2.3.a: a: 'a' is not a decimal digit", Some(6..7)),
            (
                "01.2.3.4",
                "octet 1 of 01.2.3.4: 01 has a leading zero (some systems read that as octal)",
                Some(0..2),
            ),
            ("1.2.3.4/33", "/33: an IPv4 prefix is 0-32", Some(8..10)),
            ("1.2.3.4/300", "/300: an IPv4 prefix is 0-32", Some(8..11)),
            ("::1/129", "/129: an IPv6 prefix is 0-128", Some(4..7)),
            (
                "abc",
                "abc is not an IP address: expected a.b.c.d (IPv4) or hex groups separated by \
                 colons (IPv6)",
                Some(0..3),
            ),
            ("1.2.3.4/x", "/x: the prefix length must be a number such as /24", Some(8..9)),
            ("1.2.3.4/", "/: the prefix length must be a number such as /24", Some(8..8)),
            ("1.2.3.4/-1", "/-1: the prefix length must be a number such as /24", Some(8..10)),
            ("1.2.3.4/+8", "/+8: the prefix length must be a number such as /24", Some(8..10)),
            ("1.2.3.4/24/8", "/24/8: the prefix length must be a number such as /24", Some(8..12)),
            ("", "no address: give one such as 127.0.0.1 or ::1, optionally with /PREFIX", None),
            ("/24", "no address: give one such as 127.0.0.1 or ::1, optionally with /PREFIX", None),
            ("1:2::3::4", "1:2::3::4 is not a valid IPv6 address: :: may appear only once (it stands for one run of zero groups)", Some(6..8)),
            ("12345::1", "12345::1 is not a valid IPv6 address: 12345 has more than 4 hex digits", Some(0..5)),
            ("fe80::g", "fe80::g is not a valid IPv6 address: 'g' is not a hex digit", Some(6..7)),
            ("fe80::1%eth0", "fe80::1%eth0 is not a valid IPv6 address: the zone index %eth0 is not part of the address; leave it out", Some(7..12)),
            ("1:2:3:4:5:6:7", "1:2:3:4:5:6:7 is not a valid IPv6 address: it has 7 groups; an IPv6 address has 8 (or fewer with ::)", Some(0..13)),
            ("1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8:9 is not a valid IPv6 address: it has 9 groups; an IPv6 address has 8 (or fewer with ::)", Some(0..17)),
            ("1:2:3:4::5:6:7:8", "1:2:3:4::5:6:7:8 is not a valid IPv6 address: it has 8 groups besides ::, which must stand for at least one", Some(0..16)),
            (":1::2", ":1::2 is not a valid IPv6 address: a single ':' cannot start an address", Some(0..1)),
            ("1::2:", "1::2: is not a valid IPv6 address: a single ':' cannot end an address", Some(4..5)),
            ("1:::2", "1:::2 is not a valid IPv6 address: three colons in a row", Some(1..4)),
            ("::ffff:1.2.3.300", "::ffff:1.2.3.300 is not a valid IPv6 address: in its IPv4 part, octet 4 of 1.2.3.300: 300 is more than 255", Some(13..16)),
            ("::1.2.3.4:5", "::1.2.3.4:5 is not a valid IPv6 address: an IPv4 part may only end the address", Some(2..9)),
            ("ü", "ü is not an IP address: expected a.b.c.d (IPv4) or hex groups separated by colons (IPv6)", Some(0..2)),
            ("::ü", "::ü is not a valid IPv6 address: 'ü' is not a hex digit", Some(2..4)),
        ];
        for (input, message, span) in cases {
            let err = analyze(input).expect_err(input);
            assert_eq!(err.to_string(), *message, "{input}");
            assert_eq!(err.span(), *span, "{input}");
        }
    }
}
