//! Which socket is a UNIX connection's other end: the kernel's socket
//! diagnostics (NETLINK_SOCK_DIAG, as `ss -x` asks), one exact query per
//! socket for its peer's inode. TCP pairs its ends by address; a UNIX
//! client is usually unnamed, so its inode is what names it.
//!
//! The request and answer are laid out by hand (linux/sock_diag.h,
//! linux/unix_diag.h, linux/netlink.h); only the few bytes read are
//! parsed, every length checked before it is used.

use std::io::Read;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// linux/sock_diag.h: SOCK_DIAG_BY_FAMILY.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// linux/netlink.h: NETLINK_SOCK_DIAG.
const NETLINK_SOCK_DIAG: i32 = 4;
/// linux/netlink.h: NLM_F_REQUEST.
const NLM_F_REQUEST: u16 = 1;
/// linux/netlink.h: NLMSG_ERROR.
const NLMSG_ERROR: u16 = 2;
/// linux/unix_diag.h: UDIAG_SHOW_PEER.
const UDIAG_SHOW_PEER: u32 = 0x04;
/// linux/unix_diag.h: UNIX_DIAG_PEER.
const UNIX_DIAG_PEER: u16 = 2;
/// The size of `struct nlmsghdr`.
const NLMSG_HDR: usize = 16;
/// The size of `struct unix_diag_msg`.
const UNIX_DIAG_MSG: usize = 16;
/// How long the kernel may take to answer (it answers at once).
const ANSWER_WAIT: Duration = Duration::from_secs(1);

/// The inode of the socket at the other end of the UNIX socket `inode`,
/// when the kernel says (`None` when it has none, or sock_diag is not
/// available).
pub(super) fn peer_inode(inode: u64) -> Option<u64> {
    let ino = u32::try_from(inode).ok()?;
    let sock = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::DGRAM,
        Some(Protocol::from(NETLINK_SOCK_DIAG)),
    )
    .ok()?;
    sock.set_read_timeout(Some(ANSWER_WAIT)).ok()?;
    sock.send(&request(ino)).ok()?;
    let mut buf = [0u8; 8192];
    let n = (&sock).read(&mut buf).ok()?;
    parse_peer(&buf[..n.min(buf.len())], ino)
}

/// An exact query for socket `ino`, asking for its peer.
fn request(ino: u32) -> Vec<u8> {
    let len = (NLMSG_HDR + 24) as u32;
    let mut m = Vec::with_capacity(len as usize);
    // struct nlmsghdr
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
                                              // struct unix_diag_req
    m.push(libc::AF_UNIX as u8); // sdiag_family
    m.push(0); // sdiag_protocol
    m.extend_from_slice(&0u16.to_ne_bytes()); // pad
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: any
    m.extend_from_slice(&ino.to_ne_bytes()); // udiag_ino
    m.extend_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes()); // udiag_show
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // cookie: none
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The UNIX_DIAG_PEER attribute of the answer about `ino`.
fn parse_peer(b: &[u8], ino: u32) -> Option<u64> {
    let len = (u32_at(b, 0)? as usize).min(b.len());
    let ty = u16_at(b, 4)?;
    if ty == NLMSG_ERROR || ty != SOCK_DIAG_BY_FAMILY || len < NLMSG_HDR + UNIX_DIAG_MSG {
        return None;
    }
    let msg = &b[NLMSG_HDR..len];
    if u32_at(msg, 4)? != ino {
        return None;
    }
    let mut at = UNIX_DIAG_MSG;
    // struct rtattr { u16 len; u16 type; } then the data, 4-byte aligned.
    while at + 4 <= msg.len() {
        let alen = u16_at(msg, at)? as usize;
        let aty = u16_at(msg, at + 2)?;
        if alen < 4 || at + alen > msg.len() {
            return None;
        }
        if aty == UNIX_DIAG_PEER {
            return u32_at(msg, at + 4).map(u64::from);
        }
        at += (alen + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn ino(s: &UnixStream) -> u64 {
        nix::sys::stat::fstat(s.as_fd())
            .map(|st| st.st_ino)
            .unwrap()
    }

    #[test]
    fn a_pair_names_each_other() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(peer_inode(ino(&a)), Some(ino(&b)));
        assert_eq!(peer_inode(ino(&b)), Some(ino(&a)));
    }

    #[test]
    fn hostile_answers_parse_to_nothing() {
        assert_eq!(parse_peer(&[], 1), None);
        assert_eq!(parse_peer(&[0xff; 64], 1), None);
        let mut m = request(7);
        m.truncate(20);
        assert_eq!(parse_peer(&m, 7), None);
    }
}
