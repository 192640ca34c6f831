//! `interfaces`: this machine's network interfaces, from `getifaddrs`.

use std::io;
use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::{if_nametoindex, InterfaceFlags};
use nix::sys::socket::SockaddrStorage;

/// The state flags of an interface (`SIOCGIFFLAGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IfFlags {
    /// IFF_UP: switched on by the administrator.
    pub up: bool,
    /// IFF_RUNNING: the link is operational (cable in, carrier present).
    pub running: bool,
    /// IFF_LOOPBACK: the loopback interface, which leads back to this machine.
    pub loopback: bool,
    /// IFF_BROADCAST: the link supports broadcast.
    pub broadcast: bool,
    /// IFF_MULTICAST: the link supports multicast.
    pub multicast: bool,
    /// IFF_POINTOPOINT: the link has exactly one peer (a tunnel, PPP).
    pub point_to_point: bool,
}

impl From<InterfaceFlags> for IfFlags {
    fn from(f: InterfaceFlags) -> Self {
        IfFlags {
            up: f.contains(InterfaceFlags::IFF_UP),
            running: f.contains(InterfaceFlags::IFF_RUNNING),
            loopback: f.contains(InterfaceFlags::IFF_LOOPBACK),
            broadcast: f.contains(InterfaceFlags::IFF_BROADCAST),
            multicast: f.contains(InterfaceFlags::IFF_MULTICAST),
            point_to_point: f.contains(InterfaceFlags::IFF_POINTOPOINT),
        }
    }
}

/// One IP address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length taken from the netmask; `None` when the OS gave no
    /// netmask or a non-contiguous one.
    pub prefix: Option<u8>,
    /// IPv4 on a broadcast link: the broadcast address of the network.
    pub broadcast: Option<IpAddr>,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The interface's name (`lo`, `eth0`).
    pub name: String,
    /// The kernel's interface index, `None` if the interface vanished while
    /// it was being listed.
    pub index: Option<u32>,
    /// Its state flags.
    pub flags: IfFlags,
    /// Its hardware (MAC) address, when the OS reports one (all zeros for
    /// loopback).
    pub mac: Option<[u8; 6]>,
    /// Its IPv4 and IPv6 addresses, in the order the OS gave them.
    pub addrs: Vec<IfAddr>,
}

/// Every network interface of this machine with its addresses and flags
/// (what `ip addr` or `ifconfig` show), ordered by interface index.
/// Interfaces without any IP address are listed too.
///
/// # Errors
/// The OS error of `getifaddrs`.
pub fn interfaces() -> io::Result<Vec<Interface>> {
    // A lab host's interfaces are seen from inside its namespace.
    crate::netns::run_here(interfaces_here)?
}

fn interfaces_here() -> io::Result<Vec<Interface>> {
    let mut list: Vec<Interface> = Vec::new();
    for entry in getifaddrs().map_err(io::Error::from)? {
        let pos = match list.iter().position(|i| i.name == entry.interface_name) {
            Some(pos) => pos,
            None => {
                list.push(Interface {
                    index: if_nametoindex(entry.interface_name.as_str()).ok(),
                    name: entry.interface_name.clone(),
                    flags: entry.flags.into(),
                    mac: None,
                    addrs: Vec::new(),
                });
                list.len() - 1
            }
        };
        let iface = &mut list[pos];
        let Some(address) = entry.address.as_ref() else {
            continue;
        };
        if let Some(link) = address.as_link_addr() {
            if link.halen() == 6 {
                iface.mac = iface.mac.or(link.addr());
            }
            continue;
        }
        let Some(addr) = ip_of(address) else {
            continue;
        };
        iface.addrs.push(IfAddr {
            addr,
            prefix: entry.netmask.as_ref().and_then(prefix_of),
            broadcast: entry
                .broadcast
                .as_ref()
                .and_then(ip_of)
                .filter(|_| addr.is_ipv4()),
        });
    }
    list.sort_by(|a, b| {
        let key = |i: &Interface| i.index.unwrap_or(u32::MAX);
        key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
    });
    Ok(list)
}

fn ip_of(s: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// The prefix length of a netmask, if its one bits are contiguous.
fn prefix_of(s: &SockaddrStorage) -> Option<u8> {
    let mask = match ip_of(s)? {
        // Shifted to the top, where IPv6 masks start.
        IpAddr::V4(m) => u128::from(u32::from(m)) << 96,
        IpAddr::V6(m) => u128::from(m),
    };
    let ones = mask.leading_ones();
    // At most 128 ones: fits a u8.
    (mask.count_ones() == ones).then_some(ones as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn loopback_is_listed() {
        let list = interfaces().unwrap();
        let lo = list
            .iter()
            .find(|i| {
                i.addrs
                    .iter()
                    .any(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST))
            })
            .unwrap_or_else(|| panic!("no interface has 127.0.0.1: {list:?}"));
        let a = lo
            .addrs
            .iter()
            .find(|a| a.addr == IpAddr::V4(Ipv4Addr::LOCALHOST))
            .unwrap();
        assert_eq!(a.prefix, Some(8), "{lo:?}");
        assert!(lo.flags.up && lo.flags.loopback, "{lo:?}");
        assert!(lo.index.is_some(), "{lo:?}");
    }

    #[test]
    fn ordered_and_unique() {
        let list = interfaces().unwrap();
        for pair in list.windows(2) {
            assert!(pair[0].index <= pair[1].index || pair[1].index.is_none());
            assert_ne!(pair[0].name, pair[1].name);
        }
        assert_eq!(list, interfaces().unwrap(), "two listings differ");
    }

    #[test]
    fn netmask_prefixes() {
        let v4 =
            |m: [u8; 4]| SockaddrStorage::from(std::net::SocketAddr::from((Ipv4Addr::from(m), 0)));
        let v6 = |m: u128| {
            SockaddrStorage::from(std::net::SocketAddr::from((std::net::Ipv6Addr::from(m), 0)))
        };
        assert_eq!(prefix_of(&v4([255, 0, 0, 0])), Some(8));
        assert_eq!(prefix_of(&v4([255, 255, 255, 255])), Some(32));
        assert_eq!(prefix_of(&v4([0, 0, 0, 0])), Some(0));
        assert_eq!(prefix_of(&v4([255, 0, 255, 0])), None);
        assert_eq!(prefix_of(&v6(u128::MAX << 64)), Some(64));
        assert_eq!(prefix_of(&v6(u128::MAX)), Some(128));
    }
}
