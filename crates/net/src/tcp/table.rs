//! The OS's table of TCP sockets: `/proc/net/tcp` and `/proc/net/tcp6`,
//! the source of `netstat` and of the connections no process holds any
//! more (TIME_WAIT).

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::time::Duration;

use nix::unistd::{sysconf, SysconfVar};

use super::TcpState;

/// Where Linux lists IPv4 TCP sockets.
const TCP4: &str = "/proc/net/tcp";
/// Where Linux lists IPv6 TCP sockets (absent when IPv6 is off).
const TCP6: &str = "/proc/net/tcp6";

/// One row of the OS's TCP socket table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRow {
    /// The local address. For a TIME_WAIT row, the side that closed first
    /// and holds the port.
    pub local: SocketAddr,
    /// The remote address (`0.0.0.0:0` or `[::]:0` for a listener).
    pub remote: SocketAddr,
    /// The TCP state.
    pub state: TcpState,
    /// Bytes in the send queue not yet acknowledged (0 for a LISTEN row:
    /// unlike `ss`, this table does not show the backlog; see
    /// [`super::TcpInfo::accept_queue`]).
    pub tx_queue: u32,
    /// Bytes received and not yet read. For a LISTEN row: connections in
    /// the accept queue.
    pub rx_queue: u32,
    /// The timer running on the socket.
    pub timer: Timer,
    /// Unrecovered retransmission timeouts (or, for a keepalive timer,
    /// unanswered probes).
    pub retransmits: u32,
    /// The owner's user id.
    pub uid: u32,
    /// The socket's inode number (`socket:[INODE]` in `/proc/PID/fd`); 0
    /// for rows no file refers to (TIME_WAIT, embryonic connections).
    pub inode: u64,
}

impl TableRow {
    /// Whether the local or the remote port is `port`.
    pub fn has_port(&self, port: u16) -> bool {
        self.local.port() == port || self.remote.port() == port
    }
}

/// A socket's timer (`tr` and `tm->when` columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timer {
    /// Which timer.
    pub kind: TimerKind,
    /// Time left until it fires (0 when none runs; negative remainders,
    /// a timer already due, read as 0).
    pub expires: Duration,
}

/// Which timer runs on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// No timer.
    None,
    /// Retransmission (also tail-loss probe; and the SYN-ACK timer of an
    /// embryonic connection).
    Retransmit,
    /// Keepalive, or another use of the socket timer (FIN_WAIT_2 timeout).
    Keepalive,
    /// The TIME_WAIT timer: when it fires, the port is free.
    TimeWait,
    /// Zero-window probe: the peer's window is closed.
    ZeroWindowProbe,
    /// A value this code does not know.
    Other(u8),
}

impl TimerKind {
    fn from_raw(raw: u8) -> TimerKind {
        match raw {
            0 => TimerKind::None,
            1 => TimerKind::Retransmit,
            2 => TimerKind::Keepalive,
            3 => TimerKind::TimeWait,
            4 => TimerKind::ZeroWindowProbe,
            other => TimerKind::Other(other),
        }
    }

    /// A short name: `none`, `retransmit`, `keepalive`, `time-wait`,
    /// `zero-window-probe`.
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::None => "none",
            TimerKind::Retransmit => "retransmit",
            TimerKind::Keepalive => "keepalive",
            TimerKind::TimeWait => "time-wait",
            TimerKind::ZeroWindowProbe => "zero-window-probe",
            TimerKind::Other(_) => "unknown",
        }
    }
}

/// Every TCP socket in the OS's table (this network namespace), IPv4 rows
/// first, each file in its order. Lines that do not parse are skipped.
///
/// The table lists sockets of every process, and connections no process
/// holds (TIME_WAIT). Some kernels (gVisor) leave established connections
/// out; LISTEN and TIME_WAIT rows are always there.
///
/// # Errors
/// The error reading `/proc/net/tcp`. A missing `/proc/net/tcp6` (IPv6
/// off) is not an error.
pub fn socket_table() -> io::Result<Vec<TableRow>> {
    let mut rows = parse_table(&fs::read_to_string(TCP4)?, false);
    match fs::read_to_string(TCP6) {
        Ok(text) => rows.extend(parse_table(&text, true)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // The lab's hosts have tables of their own (their addresses are on
    // the LAN, so rows of two namespaces do not mix up). A host whose
    // table cannot be read is being removed.
    for place in crate::netns::places() {
        if let Ok(text) = fs::read_to_string(place.proc_net("tcp")) {
            rows.extend(parse_table(&text, false));
        }
    }
    Ok(rows)
}

/// The TIME_WAIT rows whose local or remote port is one of `ports`: the
/// closed connections of those ports that still hold them. The row's
/// `local` is the side that closed first. An unreadable table gives no
/// rows.
pub fn time_wait_for(ports: &[u16]) -> Vec<TableRow> {
    socket_table()
        .unwrap_or_default()
        .into_iter()
        .filter(|row| row.state == TcpState::TimeWait && ports.iter().any(|&p| row.has_port(p)))
        .collect()
}

/// The inode number of the socket `fd`: the `inode` column of its row in
/// the table, so the shell can tell which rows are its own sockets.
///
/// # Errors
/// The OS error of `fstat`.
pub fn socket_inode(fd: RawFd) -> io::Result<u64> {
    // nix's safe `fstat` wants a `BorrowedFd`, and making one from a bare
    // `RawFd` is itself `unsafe` (and panics on -1): the plain call stays.
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer; a bad `fd` is reported as EBADF.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.st_ino)
}

/// Clock ticks per second of the table's timer column (`USER_HZ`).
fn ticks_per_second() -> u64 {
    let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten();
    hz.and_then(|hz| u64::try_from(hz).ok())
        .filter(|&hz| hz > 0)
        .unwrap_or(100)
}

/// The rows of one table file's text (header and bad lines skipped).
fn parse_table(text: &str, v6: bool) -> Vec<TableRow> {
    let hz = ticks_per_second();
    text.lines()
        .filter_map(|line| parse_row(line, v6, hz))
        .collect()
}

/// One line of the table:
/// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode …`.
fn parse_row(line: &str, v6: bool, hz: u64) -> Option<TableRow> {
    let mut cols = line.split_whitespace();
    let sl = cols.next()?;
    if !sl.ends_with(':') {
        return None;
    }
    let local = parse_endpoint(cols.next()?, v6)?;
    let remote = parse_endpoint(cols.next()?, v6)?;
    let state = TcpState::from_raw(u8::from_str_radix(cols.next()?, 16).ok()?)?;
    let (tx, rx) = cols.next()?.split_once(':')?;
    let (tr, when) = cols.next()?.split_once(':')?;
    let retransmits = u32::from_str_radix(cols.next()?, 16).ok()?;
    let uid = cols.next()?.parse().ok()?;
    let _timeout = cols.next()?;
    let inode = cols.next()?.parse().ok()?;
    // `when` is printed as a signed number of clock ticks in hex: a timer
    // already due may show as a huge (negative) value; read it as 0.
    let ticks = u64::from_str_radix(when, 16).ok()?;
    let ticks = if ticks > u64::from(u32::MAX) / 2 {
        0
    } else {
        ticks
    };
    let expires = Duration::from_millis(ticks.saturating_mul(1000) / hz);
    Some(TableRow {
        local,
        remote,
        state,
        tx_queue: u32::from_str_radix(tx, 16).ok()?,
        rx_queue: u32::from_str_radix(rx, 16).ok()?,
        timer: Timer {
            kind: TimerKind::from_raw(u8::from_str_radix(tr, 16).ok()?),
            expires,
        },
        retransmits,
        uid,
        inode,
    })
}

/// `ADDR:PORT` in the table's hex: the address as the kernel's words in
/// host byte order (one for IPv4, four for IPv6), the port as a number.
fn parse_endpoint(text: &str, v6: bool) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = if v6 {
        if addr.len() != 32 || !addr.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
            let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        if addr.len() != 8 {
            return None;
        }
        let word = u32::from_str_radix(addr, 16).ok()?;
        IpAddr::V4(Ipv4Addr::from(word.to_ne_bytes()))
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Linux prints them (little-endian host).
    const TCP4_TEXT: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 41237 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   2: 0100007F:1F90 0100007F:D432 01 00000005:00000000 01:00000014 00000002  1000        0 41300 1 0000000000000000 20 4 30 10 -1
";

    const TCP6_TEXT: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5000 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:A000 0000000000000000FFFF00000100007F:1F90 06 00000000:00000000 03:FFFFFFFE 00000000     0        0 0 3 0000000000000000
";

    fn hz() -> u64 {
        ticks_per_second()
    }

    #[test]
    fn ipv4_rows() {
        if cfg!(target_endian = "big") {
            return;
        }
        let rows = parse_table(TCP4_TEXT, false);
        assert_eq!(rows.len(), 3);
        let listen = &rows[0];
        assert_eq!(listen.local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(listen.remote, "0.0.0.0:0".parse().unwrap());
        assert_eq!(listen.state, TcpState::Listen);
        assert_eq!(listen.rx_queue, 3);
        assert_eq!(listen.inode, 41237);
        assert_eq!(listen.timer.kind, TimerKind::None);
        let tw = &rows[1];
        assert_eq!(tw.local, "127.0.0.1:54321".parse().unwrap());
        assert_eq!(tw.state, TcpState::TimeWait);
        assert_eq!(tw.timer.kind, TimerKind::TimeWait);
        assert_eq!(
            tw.timer.expires,
            Duration::from_millis(0x1770 * 1000 / hz())
        );
        assert_eq!(tw.inode, 0);
        let est = &rows[2];
        assert_eq!(est.state, TcpState::Established);
        assert_eq!((est.tx_queue, est.retransmits, est.uid), (5, 2, 1000));
        assert_eq!(est.timer.kind, TimerKind::Retransmit);
        assert!(est.has_port(8080) && est.has_port(54322) && !est.has_port(1));
    }

    #[test]
    fn ipv6_rows() {
        if cfg!(target_endian = "big") {
            return;
        }
        let rows = parse_table(TCP6_TEXT, true);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].local, "[::1]:8080".parse().unwrap());
        assert_eq!(rows[1].local, "[::ffff:127.0.0.1]:40960".parse().unwrap());
        // A timer already due prints as a negative number.
        assert_eq!(rows[1].timer.expires, Duration::ZERO);
    }

    #[test]
    fn bad_lines_are_skipped() {
        let garbage = [
            "",
            "   ",
            "0: 0100007F:1F90",
            "0 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "0: 0100007G:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "0: 0100007F:1F90 00000000:0000 0C 00000000:00000000 00:00000000 00000000 0 0 1",
            "0: 0100007F:11F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "0: 0100007F:1F90 00000000:0000 0A 0000000000000000 00:00000000 00000000 0 0 1",
            "0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0",
            "0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 x 0 1",
            "0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 -1",
            "0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:FFFFFFFFFFFFFFFFFF 0 0 0 1",
            "0: é100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
        ];
        for line in garbage {
            assert_eq!(parse_row(line, false, 100), None, "{line:?}");
            assert_eq!(parse_row(line, true, 100), None, "{line:?}");
        }
        let v6_garbage = [
            "0: 0000000000000000000000000100000:1F90 00000000000000000000000000000000:0000 0A 0:0 00:0 0 0 0 1",
            "0: 00000000000000000000000001000é00:1F90 00000000000000000000000000000000:0000 0A 0:0 00:0 0 0 0 1",
        ];
        for line in v6_garbage {
            assert_eq!(parse_row(line, true, 100), None, "{line:?}");
        }
        // Every prefix of a good line, and the good line itself.
        for text in [TCP4_TEXT, TCP6_TEXT] {
            for line in text.lines() {
                for end in (0..line.len()).filter(|&i| line.is_char_boundary(i)) {
                    let _ = parse_row(&line[..end], false, 100);
                    let _ = parse_row(&line[..end], true, 100);
                }
            }
        }
    }

    #[test]
    fn the_real_table_lists_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        use std::os::fd::AsRawFd;
        let inode = socket_inode(listener.as_raw_fd()).unwrap();
        let rows = socket_table().unwrap();
        let row = rows
            .iter()
            .find(|r| r.local.port() == port && r.state == TcpState::Listen)
            .unwrap_or_else(|| panic!("no LISTEN row for port {port}"));
        assert_eq!(row.local, listener.local_addr().unwrap());
        assert_eq!(row.inode, inode);
        assert!(socket_inode(-1).is_err());
    }
}
