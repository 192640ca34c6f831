//! TCP segments as a capture sees them, their flags, and sequence numbers
//! made relative to each direction's start.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::BitOr;
use std::time::Instant;

use etherparse::{LaxNetSlice, LaxSlicedPacket, TcpOptionElement, TransportSlice};

/// The control bits of a TCP header, in the header's bit order (FIN is
/// bit 0 … CWR bit 7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No more data from the sender: its half of the connection closes.
    pub const FIN: Flags = Flags(0x01);
    /// Synchronize sequence numbers: opens a connection.
    pub const SYN: Flags = Flags(0x02);
    /// Reset: the connection is refused or aborted.
    pub const RST: Flags = Flags(0x04);
    /// Push: hand the data to the application now.
    pub const PSH: Flags = Flags(0x08);
    /// The acknowledgement number is valid.
    pub const ACK: Flags = Flags(0x10);
    /// The urgent pointer is valid.
    pub const URG: Flags = Flags(0x20);
    /// ECN echo.
    pub const ECE: Flags = Flags(0x40);
    /// Congestion window reduced.
    pub const CWR: Flags = Flags(0x80);

    /// The flags in text order (Wireshark's): FIN, SYN, RST, PSH, ACK,
    /// URG, ECE, CWR.
    const NAMED: [(Flags, &'static str); 8] = [
        (Flags::FIN, "FIN"),
        (Flags::SYN, "SYN"),
        (Flags::RST, "RST"),
        (Flags::PSH, "PSH"),
        (Flags::ACK, "ACK"),
        (Flags::URG, "URG"),
        (Flags::ECE, "ECE"),
        (Flags::CWR, "CWR"),
    ];

    /// The flags of the header's flag byte.
    pub fn from_bits(bits: u8) -> Flags {
        Flags(bits)
    }

    /// The header's flag byte.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl fmt::Display for Flags {
    /// `SYN`, `SYN,ACK`, `PSH,ACK`, `FIN,ACK`, `RST`; `none` when no flag
    /// is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (flag, name) in Flags::NAMED {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({self})")
    }
}

/// One TCP segment that crossed the loopback interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The sender.
    pub src: SocketAddr,
    /// The receiver.
    pub dst: SocketAddr,
    /// The control bits.
    pub flags: Flags,
    /// The sequence number, as on the wire.
    pub seq: u32,
    /// The acknowledgement number, as on the wire (meaningful with ACK).
    pub ack: u32,
    /// The window field, as on the wire (unscaled; see [`Relative`]).
    pub window: u16,
    /// The window-scale option (on a SYN or SYN-ACK).
    pub window_scale: Option<u8>,
    /// The maximum-segment-size option (on a SYN or SYN-ACK).
    pub mss: Option<u16>,
    /// Bytes of data carried.
    pub payload_len: usize,
    /// When the capture read it.
    pub ts: Instant,
}

/// The segment's flags as text: `SYN`, `SYN,ACK`, `ACK`, `PSH,ACK`,
/// `FIN,ACK`, `RST`, `RST,ACK`, … (`none` for a segment without flags).
pub fn flags_text(segment: &Segment) -> String {
    segment.flags.to_string()
}

/// Decodes one Ethernet frame of `frame_len` bytes, of which `frame` holds
/// the first ones (all of them unless the read buffer was too small), into
/// a TCP [`Segment`]. Anything else (not IP, not TCP, a fragment,
/// malformed) gives `None`; nothing here panics on any input.
pub(super) fn decode_frame(frame: &[u8], frame_len: usize, ts: Instant) -> Option<Segment> {
    let packet = LaxSlicedPacket::from_ethernet(frame).ok()?;
    let (src_ip, dst_ip, ip_payload) = match packet.net.as_ref()? {
        LaxNetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload(),
        ),
        LaxNetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload(),
        ),
        LaxNetSlice::Arp(_) => return None,
    };
    let Some(TransportSlice::Tcp(tcp)) = packet.transport.as_ref() else {
        return None;
    };
    let payload_len = if ip_payload.incomplete {
        // The buffer cut the frame: what follows the TCP header in the
        // whole frame is the data.
        let header_end = (tcp.payload().as_ptr() as usize).checked_sub(frame.as_ptr() as usize)?;
        frame_len.checked_sub(header_end)?
    } else {
        tcp.payload().len()
    };
    let mut window_scale = None;
    let mut mss = None;
    for option in tcp.options_iterator() {
        match option {
            Ok(TcpOptionElement::WindowScale(shift)) => window_scale = Some(shift),
            Ok(TcpOptionElement::MaximumSegmentSize(size)) => mss = Some(size),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let flags = [
        (tcp.fin(), Flags::FIN),
        (tcp.syn(), Flags::SYN),
        (tcp.rst(), Flags::RST),
        (tcp.psh(), Flags::PSH),
        (tcp.ack(), Flags::ACK),
        (tcp.urg(), Flags::URG),
        (tcp.ece(), Flags::ECE),
        (tcp.cwr(), Flags::CWR),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .fold(Flags::default(), |acc, (_, flag)| acc | flag);
    Some(Segment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        flags,
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        window: tcp.window_size(),
        window_scale,
        mss,
        payload_len,
        ts,
    })
}

/// A segment's numbers relative to its connection, from [`Relative`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelSeg {
    /// Sequence number relative to the sender's initial one: 0 for the
    /// SYN, 1 for the first data byte.
    pub seq: u32,
    /// Acknowledgement number relative to the receiver's initial sequence
    /// number; `None` without the ACK flag.
    pub ack: Option<u32>,
    /// The window in bytes, scaled as the handshake agreed; `None` when
    /// the handshake was not seen (the scale is unknown: see
    /// [`Segment::window`] for the raw field).
    pub window: Option<u32>,
}

/// What [`Relative`] remembers of one direction of a connection.
#[derive(Debug, Clone, Copy)]
struct Direction {
    /// The initial sequence number (or the first one seen).
    isn: u32,
    /// Whether the SYN of this direction was seen.
    saw_syn: bool,
    /// The window-scale option of that SYN.
    wscale: Option<u8>,
}

/// Turns raw sequence and acknowledgement numbers into relative ones, per
/// connection and direction, the way packet analysers show them.
///
/// Each direction's base is its initial sequence number, taken from its
/// SYN; a direction whose SYN was not seen (the capture began later)
/// counts from the first number seen: its first sequence number, or the
/// first acknowledgement of it. A new SYN on the same four addresses
/// (the port reused) starts the connection afresh.
#[derive(Debug, Default, Clone)]
pub struct Relative {
    /// Per (sender, receiver).
    dirs: HashMap<(SocketAddr, SocketAddr), Direction>,
}

impl Relative {
    /// Remembers nothing yet.
    pub fn new() -> Relative {
        Relative::default()
    }

    /// Takes `segment` into account and returns its relative numbers.
    pub fn observe(&mut self, segment: &Segment) -> RelSeg {
        let fwd = (segment.src, segment.dst);
        let back = (segment.dst, segment.src);
        let syn = segment.flags.contains(Flags::SYN);
        let has_ack = segment.flags.contains(Flags::ACK);
        if syn {
            if !has_ack {
                // A new connection: forget the reverse direction's past.
                self.dirs.remove(&back);
            }
            self.dirs.insert(
                fwd,
                Direction {
                    isn: segment.seq,
                    saw_syn: true,
                    wscale: segment.window_scale,
                },
            );
        }
        let this = *self.dirs.entry(fwd).or_insert(Direction {
            isn: segment.seq,
            saw_syn: false,
            wscale: None,
        });
        let ack = has_ack.then(|| {
            let other = self.dirs.entry(back).or_insert(Direction {
                isn: segment.ack,
                saw_syn: false,
                wscale: None,
            });
            segment.ack.wrapping_sub(other.isn)
        });
        let window = if syn {
            // The window of a SYN is never scaled.
            Some(u32::from(segment.window))
        } else {
            match self.dirs.get(&back) {
                Some(other) if this.saw_syn && other.saw_syn => {
                    // Scaling is on only when both SYNs offered it.
                    let shift = match (this.wscale, other.wscale) {
                        (Some(shift), Some(_)) => u32::from(shift.min(14)),
                        _ => 0,
                    };
                    Some(u32::from(segment.window) << shift)
                }
                _ => None,
            }
        };
        RelSeg {
            seq: segment.seq.wrapping_sub(this.isn),
            ack,
            window,
        }
    }

    /// Forgets the connection between `a` and `b` (both directions).
    pub fn forget(&mut self, a: SocketAddr, b: SocketAddr) {
        self.dirs.remove(&(a, b));
        self.dirs.remove(&(b, a));
    }

    /// Forgets every connection.
    pub fn clear(&mut self) {
        self.dirs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn seg(src: &str, dst: &str, flags: Flags, seq: u32, ack: u32) -> Segment {
        Segment {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            flags,
            seq,
            ack,
            window: 100,
            window_scale: None,
            mss: None,
            payload_len: 0,
            ts: Instant::now(),
        }
    }

    #[test]
    fn flag_texts() {
        let cases = [
            (Flags::SYN, "SYN"),
            (Flags::SYN | Flags::ACK, "SYN,ACK"),
            (Flags::ACK, "ACK"),
            (Flags::PSH | Flags::ACK, "PSH,ACK"),
            (Flags::FIN | Flags::ACK, "FIN,ACK"),
            (Flags::FIN | Flags::PSH | Flags::ACK, "FIN,PSH,ACK"),
            (Flags::RST, "RST"),
            (Flags::RST | Flags::ACK, "RST,ACK"),
            (Flags::SYN | Flags::ECE | Flags::CWR, "SYN,ECE,CWR"),
            (Flags::default(), "none"),
        ];
        for (flags, text) in cases {
            let s = seg("127.0.0.1:1", "127.0.0.1:2", flags, 0, 0);
            assert_eq!(flags_text(&s), text);
            assert_eq!(Flags::from_bits(flags.bits()), flags);
        }
        assert!((Flags::SYN | Flags::ACK).contains(Flags::ACK));
        assert!(!Flags::SYN.contains(Flags::SYN | Flags::ACK));
    }

    #[test]
    fn relative_numbers_from_the_handshake() {
        let c = "127.0.0.1:40000";
        let s = "127.0.0.1:8080";
        let mut rel = Relative::new();
        let mut syn = seg(c, s, Flags::SYN, 1_000, 0);
        syn.window_scale = Some(7);
        let mut synack = seg(s, c, Flags::SYN | Flags::ACK, u32::MAX - 1, 1_001);
        synack.window_scale = Some(5);
        let steps = [
            (syn, 0, None, Some(100)),
            (synack, 0, Some(1), Some(100)),
            (
                seg(c, s, Flags::ACK, 1_001, u32::MAX),
                1,
                Some(1),
                Some(100 << 7),
            ),
            (
                seg(c, s, Flags::PSH | Flags::ACK, 1_001, u32::MAX),
                1,
                Some(1),
                Some(100 << 7),
            ),
            (
                seg(s, c, Flags::ACK, u32::MAX, 1_006),
                1,
                Some(6),
                Some(100 << 5),
            ),
            (
                seg(c, s, Flags::FIN | Flags::ACK, 1_006, u32::MAX),
                6,
                Some(1),
                Some(100 << 7),
            ),
            (
                seg(s, c, Flags::FIN | Flags::ACK, u32::MAX, 1_007),
                1,
                Some(7),
                Some(100 << 5),
            ),
            // The acknowledgement number wraps around 2^32.
            (seg(c, s, Flags::ACK, 1_007, 0), 7, Some(2), Some(100 << 7)),
        ];
        for (i, (segment, seq, ack, window)) in steps.into_iter().enumerate() {
            let got = rel.observe(&segment);
            assert_eq!(got, RelSeg { seq, ack, window }, "step {i}: {segment:?}");
        }
    }

    #[test]
    fn scaling_needs_both_sides() {
        let c = "127.0.0.1:40000";
        let s = "127.0.0.1:8080";
        let mut rel = Relative::new();
        let mut syn = seg(c, s, Flags::SYN, 10, 0);
        syn.window_scale = Some(7);
        rel.observe(&syn);
        rel.observe(&seg(s, c, Flags::SYN | Flags::ACK, 20, 11));
        let ack = rel.observe(&seg(c, s, Flags::ACK, 11, 21));
        assert_eq!(ack.window, Some(100));
    }

    #[test]
    fn relative_numbers_mid_connection_and_reuse() {
        let c = "[::1]:40000";
        let s = "[::1]:8080";
        let mut rel = Relative::new();
        // The capture began after the handshake: count from what is seen.
        let first = rel.observe(&seg(c, s, Flags::PSH | Flags::ACK, 500, 9_000));
        assert_eq!(
            first,
            RelSeg {
                seq: 0,
                ack: Some(0),
                window: None
            }
        );
        let reply = rel.observe(&seg(s, c, Flags::ACK, 9_000, 510));
        assert_eq!(
            reply,
            RelSeg {
                seq: 0,
                ack: Some(10),
                window: None
            }
        );
        // A new SYN on the same addresses starts afresh.
        assert_eq!(rel.observe(&seg(c, s, Flags::SYN, 7, 0)).seq, 0);
        let synack = rel.observe(&seg(s, c, Flags::SYN | Flags::ACK, 70, 8));
        assert_eq!((synack.seq, synack.ack), (0, Some(1)));
        rel.forget(c.parse().unwrap(), s.parse().unwrap());
        assert_eq!(rel.observe(&seg(c, s, Flags::ACK, 8, 71)).seq, 0);
        rel.clear();
        assert!(rel.dirs.is_empty());
    }

    fn frame_v4(flags: &[&str], payload: &[u8]) -> Vec<u8> {
        let mut tcp = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
            .tcp(40000, 8080, 1234, 65000);
        for flag in flags {
            tcp = match *flag {
                "syn" => tcp.syn(),
                "ack" => tcp.ack(99),
                "psh" => tcp.psh(),
                "fin" => tcp.fin(),
                "rst" => tcp.rst(),
                _ => tcp,
            };
        }
        let tcp = tcp
            .options(&[
                TcpOptionElement::MaximumSegmentSize(65483),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ])
            .unwrap();
        let mut out = Vec::new();
        tcp.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn decodes_ipv4_frames() {
        let frame = frame_v4(&["psh", "ack"], b"hello");
        let s = decode_frame(&frame, frame.len(), Instant::now()).unwrap();
        assert_eq!(s.src, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(s.dst, "127.0.0.2:8080".parse().unwrap());
        assert_eq!(s.flags, Flags::PSH | Flags::ACK);
        assert_eq!(
            (s.seq, s.ack, s.window, s.payload_len),
            (1234, 99, 65000, 5)
        );
        assert_eq!((s.mss, s.window_scale), (Some(65483), Some(7)));
        // A frame cut short by the read buffer keeps its real data length.
        let cut = &frame[..frame.len() - 3];
        let s = decode_frame(cut, frame.len(), Instant::now()).unwrap();
        assert_eq!(s.payload_len, 5);
    }

    #[test]
    fn decodes_ipv6_frames() {
        let builder = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv6(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                std::net::Ipv6Addr::LOCALHOST.octets(),
                64,
            )
            .tcp(8080, 40000, 7, 512)
            .syn()
            .ack(1);
        let mut frame = Vec::new();
        builder.write(&mut frame, &[]).unwrap();
        let s = decode_frame(&frame, frame.len(), Instant::now()).unwrap();
        assert_eq!(s.src, "[::1]:8080".parse().unwrap());
        assert_eq!(flags_text(&s), "SYN,ACK");
        assert_eq!(s.payload_len, 0);
    }

    #[test]
    fn other_frames_and_garbage_give_nothing() {
        let mut udp = Vec::new();
        PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .udp(1, 2)
            .write(&mut udp, b"x")
            .unwrap();
        assert_eq!(decode_frame(&udp, udp.len(), Instant::now()), None);
        let frame = frame_v4(&["syn"], b"");
        for end in 0..frame.len() {
            // Every truncation of a good frame, and noise: never a panic.
            let _ = decode_frame(&frame[..end], frame.len(), Instant::now());
            let _ = decode_frame(&frame[..end], 0, Instant::now());
        }
        let mut noise = frame.clone();
        for (i, byte) in noise.iter_mut().enumerate() {
            *byte = byte.wrapping_mul(31).wrapping_add(i as u8);
        }
        let _ = decode_frame(&noise, noise.len(), Instant::now());
        assert_eq!(decode_frame(&[], 0, Instant::now()), None);
    }
}
