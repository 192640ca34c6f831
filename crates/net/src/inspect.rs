//! Inspecting the three elements of a connection (lecture §1-§3): what an IP
//! address means ([`analyze`]), what a port means ([`port_info`]), this
//! machine's interfaces ([`interfaces`]), what a name resolves to
//! ([`resolve`]), and whether a host answers ([`ping`]).
//!
//! Everything here returns data for the shell to render; nothing prints.
//! Parsing never panics on user input: bad input is an error that says
//! which part is wrong.

mod iface;
mod ip;
mod ping;
mod port;

use std::io;
use std::net::IpAddr;

pub use iface::{interfaces, IfAddr, IfFlags, Interface};
pub use ip::{analyze, IpError, IpReport, IpVersion, Network, Scope};
pub use ping::{
    ping, ping_with, Method, PingError, PingReport, Probe, ProbeMethod, ProbeOutcome, PING_COUNT,
    PING_MAX_WAIT,
};
pub use port::{
    port_info, BindCheck, EphemeralRange, PortClass, PortError, PortReport, ServiceSource, Services,
};

/// Every address the system resolver (getaddrinfo: `/etc/hosts`, DNS, …)
/// gives for `host`, in its order, each once. An IP address in text
/// resolves to itself.
///
/// # Errors
/// The resolver's error (unknown name, no network, …).
pub async fn resolve(host: &str) -> io::Result<Vec<IpAddr>> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    for sa in tokio::net::lookup_host((host, 0)).await? {
        if !addrs.contains(&sa.ip()) {
            addrs.push(sa.ip());
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[tokio::test]
    async fn localhost_resolves_to_loopback() {
        let addrs = resolve("localhost").await.unwrap();
        assert!(
            addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST))
                || addrs.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST)),
            "{addrs:?}"
        );
        let mut unique = addrs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), addrs.len(), "{addrs:?}");
    }

    #[tokio::test]
    async fn literals_resolve_to_themselves() {
        let cases: &[(&str, IpAddr)] = &[
            ("127.0.0.1", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ("::1", IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        for (host, addr) in cases {
            assert_eq!(resolve(host).await.unwrap(), vec![*addr], "{host}");
        }
    }

    #[tokio::test]
    async fn bad_names_are_errors() {
        for host in ["a\0b", "127.0.0.1\0"] {
            assert!(resolve(host).await.is_err(), "{host:?}");
        }
    }
}
