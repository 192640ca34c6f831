//! How a traffic log looks: `socat -v` records (text or hex) and the
//! classic pcap format. Pure functions over bytes; no I/O.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Which way bytes went, seen from the stream of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Written to the stream (`send`): `>`.
    Out,
    /// Read from the stream (by its reader or a command): `<`.
    In,
}

impl Direction {
    /// `>` or `<`, as `socat -v` marks them.
    pub fn mark(self) -> char {
        match self {
            Direction::Out => '>',
            Direction::In => '<',
        }
    }
}

/// `2026/11/30 12:00:00.123456` (UTC), as `socat -v` writes its times.
pub(crate) fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}/{m:02}/{day:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// The (year, month, day) of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The header line of a stream record:
/// `> 2026/11/30 12:00:00.123456  cli  length=6 from=0 to=5` (`from` and
/// `to`: the offsets of the first and last byte in that direction).
pub(crate) fn stream_header(
    dir: Direction,
    time: SystemTime,
    name: &str,
    from: u64,
    len: usize,
) -> String {
    let to = (from + len as u64).saturating_sub(1);
    format!(
        "{} {}  {name}  length={len} from={from} to={to}\n",
        dir.mark(),
        timestamp(time)
    )
}

/// The header line of a datagram record:
/// `< 2026/11/30 12:00:00.123456  u1  datagram length=5 peer=127.0.0.1:9000`.
pub(crate) fn datagram_header(
    dir: Direction,
    time: SystemTime,
    name: &str,
    peer: Option<SocketAddr>,
    len: usize,
) -> String {
    let mut line = format!(
        "{} {}  {name}  datagram length={len}",
        dir.mark(),
        timestamp(time)
    );
    if let Some(p) = peer {
        let _ = write!(line, " peer={p}");
    }
    line.push('\n');
    line
}

/// The line that says records were dropped.
pub(crate) fn dropped_line(time: SystemTime, n: u64) -> String {
    format!(
        "! {}  {n} record(s) dropped here: the log writer fell behind\n",
        timestamp(time)
    )
}

/// A line about a stream: `! 2026/11/30 12:00:00.123456  cli  TEXT`.
pub(crate) fn note_line(time: SystemTime, name: &str, text: &str) -> String {
    format!("! {}  {name}  {text}\n", timestamp(time))
}

/// The data as `socat -v` shows it: printable ASCII, tabs and newlines as
/// they are, `\r` as the two characters `\r`, any other byte as `.`;
/// ends with a newline.
pub(crate) fn text(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() + 1);
    for &b in data {
        match b {
            b'\n' | b'\t' | 0x20..=0x7e => out.push(char::from(b)),
            b'\r' => out.push_str("\\r"),
            _ => out.push('.'),
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The data as `socat -x -v` shows it: lines of at most 16 bytes (a line
/// also ends after a newline byte), each ` xx` per byte, padded to 48
/// columns, two blanks, then the bytes as characters (`.` for anything
/// not printable); then `--`.
pub(crate) fn hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 + 8);
    let mut line: Vec<u8> = Vec::with_capacity(16);
    let flush = |line: &mut Vec<u8>, out: &mut String| {
        let mut cols = String::with_capacity(48);
        for b in line.iter() {
            let _ = write!(cols, " {b:02x}");
        }
        let shown: String = line
            .iter()
            .map(|&b| match b {
                0x20..=0x7e => char::from(b),
                _ => '.',
            })
            .collect();
        let _ = writeln!(out, "{cols:<48}  {shown}");
        line.clear();
    };
    for &b in data {
        line.push(b);
        if line.len() == 16 || b == b'\n' {
            flush(&mut line, &mut out);
        }
    }
    if !line.is_empty() {
        flush(&mut line, &mut out);
    }
    out.push_str("--\n");
    out
}

/// The classic pcap file format (libpcap 2.4, microsecond times): what
/// tcpdump, Wireshark and every capture tool read.
pub(crate) mod pcap {
    use std::time::{SystemTime, UNIX_EPOCH};

    /// The magic number, written in this machine's byte order (readers
    /// take either).
    pub(crate) const MAGIC: u32 = 0xa1b2_c3d4;
    /// LINKTYPE_ETHERNET: what an AF_PACKET socket on `lo` reads (Linux
    /// gives the loopback interface an all-zero Ethernet header).
    pub(crate) const LINKTYPE_ETHERNET: u32 = 1;
    /// The longest frame stored.
    pub(crate) const SNAPLEN: u32 = 262_144;

    /// The 24-byte file header.
    pub(crate) fn file_header() -> [u8; 24] {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC.to_ne_bytes());
        h[4..6].copy_from_slice(&2u16.to_ne_bytes());
        h[6..8].copy_from_slice(&4u16.to_ne_bytes());
        // thiszone and sigfigs stay 0.
        h[16..20].copy_from_slice(&SNAPLEN.to_ne_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        h
    }

    /// Whether `h` is a file header this writer may append to (its own
    /// byte order and link type).
    pub(crate) fn is_appendable(h: &[u8]) -> bool {
        h.len() >= 24
            && h[0..4] == MAGIC.to_ne_bytes()
            && h[20..24] == LINKTYPE_ETHERNET.to_ne_bytes()
    }

    /// The 16-byte header of one frame: when, how much is stored, how long
    /// the frame was.
    pub(crate) fn record_header(time: SystemTime, stored: usize, len: usize) -> [u8; 16] {
        let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        let stored = u32::try_from(stored).unwrap_or(u32::MAX);
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_ne_bytes());
        h[4..8].copy_from_slice(&d.subsec_micros().to_ne_bytes());
        h[8..12].copy_from_slice(&stored.to_ne_bytes());
        h[12..16].copy_from_slice(&len.to_ne_bytes());
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        assert_eq!(timestamp(at(0, 0)), "1970/01/01 00:00:00.000000");
        // 2026-11-30 12:00:00 UTC.
        assert_eq!(
            timestamp(at(1_796_040_000, 123_456)),
            "2026/11/30 12:00:00.123456"
        );
        // A leap day.
        assert_eq!(timestamp(at(951_782_400, 1)), "2000/02/29 00:00:00.000001");
    }

    #[test]
    fn headers_read_like_socat() {
        let t = at(1_796_040_000, 123_456);
        assert_eq!(
            stream_header(Direction::Out, t, "cli", 0, 6),
            "> 2026/11/30 12:00:00.123456  cli  length=6 from=0 to=5\n"
        );
        assert_eq!(
            stream_header(Direction::In, t, "srv.1", 6, 3),
            "< 2026/11/30 12:00:00.123456  srv.1  length=3 from=6 to=8\n"
        );
        let peer = "127.0.0.1:9000".parse().ok();
        assert_eq!(
            datagram_header(Direction::In, t, "u1", peer, 5),
            "< 2026/11/30 12:00:00.123456  u1  datagram length=5 peer=127.0.0.1:9000\n"
        );
    }

    #[test]
    fn text_shows_lines_cr_and_dots() {
        assert_eq!(text(b"hello\n\x01\x02bin\r\n"), "hello\n..bin\\r\n");
        assert_eq!(text(b"no newline"), "no newline\n");
        assert_eq!(text("é".as_bytes()), "..\n");
    }

    #[test]
    fn hex_matches_socat_x() {
        let got = hex(b"hello\n\x01\x02bin\r\nabcdefghijklmnopqrstuvwxyz");
        let want = concat!(
            " 68 65 6c 6c 6f 0a                                hello.\n",
            " 01 02 62 69 6e 0d 0a                             ..bin..\n",
            " 61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70  abcdefghijklmnop\n",
            " 71 72 73 74 75 76 77 78 79 7a                    qrstuvwxyz\n",
            "--\n",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn pcap_headers() {
        let h = pcap::file_header();
        assert!(pcap::is_appendable(&h));
        assert!(!pcap::is_appendable(b"not a pcap file at all, no"));
        let r = pcap::record_header(at(10, 20), 60, 70);
        assert_eq!(&r[0..4], &10u32.to_ne_bytes());
        assert_eq!(&r[4..8], &20u32.to_ne_bytes());
        assert_eq!(&r[8..12], &60u32.to_ne_bytes());
        assert_eq!(&r[12..16], &70u32.to_ne_bytes());
    }
}
