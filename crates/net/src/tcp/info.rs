//! `TCP_INFO`: what the kernel knows about one TCP socket (Linux
//! `struct tcp_info`, `include/uapi/linux/tcp.h`), decoded into plain
//! units.

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::RawFd;
use std::time::Duration;

use super::TcpState;

// Short, for the many values of [`TcpInfo::summary`].
use InfoValue as V;

/// Linux's `struct tcp_info` up to `tcpi_total_rto_time` (Linux 6.7, 248
/// bytes; Linux 6.18 adds ECN counters up to 280 bytes, not read here).
/// Kernels copy `min(our length, their length)` bytes and say how many:
/// an older kernel fills a prefix, a newer one stops at our end.
#[repr(C)]
#[derive(Default)]
struct RawTcpInfo {
    tcpi_state: u8,
    tcpi_ca_state: u8,
    tcpi_retransmits: u8,
    tcpi_probes: u8,
    tcpi_backoff: u8,
    tcpi_options: u8,
    /// Bit fields: `tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4`.
    tcpi_wscale: u8,
    /// Bit fields: `tcpi_delivery_rate_app_limited : 1,
    /// tcpi_fastopen_client_fail : 2`.
    tcpi_app_limited_fastopen: u8,

    tcpi_rto: u32,
    tcpi_ato: u32,
    tcpi_snd_mss: u32,
    tcpi_rcv_mss: u32,

    tcpi_unacked: u32,
    tcpi_sacked: u32,
    tcpi_lost: u32,
    tcpi_retrans: u32,
    tcpi_fackets: u32,

    tcpi_last_data_sent: u32,
    tcpi_last_ack_sent: u32,
    tcpi_last_data_recv: u32,
    tcpi_last_ack_recv: u32,

    tcpi_pmtu: u32,
    tcpi_rcv_ssthresh: u32,
    tcpi_rtt: u32,
    tcpi_rttvar: u32,
    tcpi_snd_ssthresh: u32,
    tcpi_snd_cwnd: u32,
    tcpi_advmss: u32,
    tcpi_reordering: u32,

    tcpi_rcv_rtt: u32,
    tcpi_rcv_space: u32,

    tcpi_total_retrans: u32,

    tcpi_pacing_rate: u64,
    tcpi_max_pacing_rate: u64,
    tcpi_bytes_acked: u64,
    tcpi_bytes_received: u64,
    tcpi_segs_out: u32,
    tcpi_segs_in: u32,

    tcpi_notsent_bytes: u32,
    tcpi_min_rtt: u32,
    tcpi_data_segs_in: u32,
    tcpi_data_segs_out: u32,

    tcpi_delivery_rate: u64,

    tcpi_busy_time: u64,
    tcpi_rwnd_limited: u64,
    tcpi_sndbuf_limited: u64,

    tcpi_delivered: u32,
    tcpi_delivered_ce: u32,

    tcpi_bytes_sent: u64,
    tcpi_bytes_retrans: u64,
    tcpi_dsack_dups: u32,
    tcpi_reord_seen: u32,

    tcpi_rcv_ooopack: u32,

    tcpi_snd_wnd: u32,
    tcpi_rcv_wnd: u32,

    tcpi_rehash: u32,

    tcpi_total_rto: u16,
    tcpi_total_rto_recoveries: u16,
    tcpi_total_rto_time: u32,
}

// The offsets every Linux since 2.6 agrees on, and the known sizes of
// older versions of the struct.
const _: () = {
    assert!(offset_of!(RawTcpInfo, tcpi_rto) == 8);
    assert!(offset_of!(RawTcpInfo, tcpi_total_retrans) == 100);
    assert!(offset_of!(RawTcpInfo, tcpi_pacing_rate) == 104);
    assert!(offset_of!(RawTcpInfo, tcpi_segs_in) + 4 == 144);
    assert!(offset_of!(RawTcpInfo, tcpi_snd_wnd) + 4 == 232);
    assert!(size_of::<RawTcpInfo>() == 248);
};

/// The congestion-avoidance state (`tcpi_ca_state`, Linux
/// `enum tcp_ca_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaState {
    /// Nothing bad has happened: normal sending.
    Open,
    /// Duplicate ACKs or SACKs arrived: something may be lost or reordered.
    Disorder,
    /// The window was reduced after an ECN congestion signal.
    Cwr,
    /// Fast retransmit: recovering from a loss.
    Recovery,
    /// A retransmission timeout fired: everything in flight counts as lost.
    Loss,
    /// A value this code does not know.
    Other(u8),
}

impl CaState {
    fn from_raw(raw: u8) -> CaState {
        match raw {
            0 => CaState::Open,
            1 => CaState::Disorder,
            2 => CaState::Cwr,
            3 => CaState::Recovery,
            4 => CaState::Loss,
            other => CaState::Other(other),
        }
    }

    /// Linux's name: `Open`, `Disorder`, `CWR`, `Recovery`, `Loss`.
    pub fn name(self) -> &'static str {
        match self {
            CaState::Open => "Open",
            CaState::Disorder => "Disorder",
            CaState::Cwr => "CWR",
            CaState::Recovery => "Recovery",
            CaState::Loss => "Loss",
            CaState::Other(_) => "unknown",
        }
    }

    /// One line of English.
    pub fn meaning(self) -> &'static str {
        match self {
            CaState::Open => "normal sending, nothing lost",
            CaState::Disorder => "duplicate ACKs seen: a segment may be lost or reordered",
            CaState::Cwr => "window reduced after an ECN congestion signal",
            CaState::Recovery => "fast retransmit: recovering from a loss",
            CaState::Loss => "a retransmission timeout fired",
            CaState::Other(_) => "a state this version of socklab does not know",
        }
    }
}

/// The TCP options the handshake agreed on (`tcpi_options`, window
/// scales).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpOptions {
    /// Timestamps (RFC 7323) are on.
    pub timestamps: bool,
    /// Selective acknowledgements (RFC 2018) are on.
    pub sack: bool,
    /// Window scaling is on: (shift for the windows this side receives
    /// from the peer, shift for the windows it sends).
    pub window_scale: Option<(u8, u8)>,
    /// ECN was negotiated.
    pub ecn: bool,
    /// ECN marks were seen.
    pub ecn_seen: bool,
    /// The SYN carried data (TCP Fast Open).
    pub syn_data: bool,
}

/// What `TCP_INFO` says about a socket, in plain units.
///
/// Fields newer kernels added are `Option`s: `None` when the kernel's
/// struct was too short to hold them. Times are [`Duration`]s (the kernel
/// gives microseconds for `rtt`, `rto`, …, milliseconds for the `last_*`
/// ages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpInfo {
    /// How many bytes of `struct tcp_info` the kernel filled.
    pub len: usize,
    /// The connection's state.
    pub state: TcpState,
    /// Congestion-avoidance state.
    pub ca_state: CaState,
    /// Unrecovered retransmission timeouts for the oldest unacked segment.
    pub retransmits: u8,
    /// Zero-window probes sent without an answer.
    pub probes: u8,
    /// Exponential backoff of the retransmission timer.
    pub backoff: u8,
    /// Options agreed in the handshake.
    pub options: TcpOptions,
    /// Retransmission timeout.
    pub rto: Duration,
    /// Delayed-ACK timeout.
    pub ato: Duration,
    /// Largest segment this side sends (bytes).
    pub snd_mss: u32,
    /// Estimated largest segment the peer sends (bytes).
    pub rcv_mss: u32,
    /// Segments sent and not yet acknowledged. For a LISTEN socket: the
    /// connections waiting in the accept queue.
    pub unacked: u32,
    /// Segments selectively acknowledged. For a LISTEN socket: the accept
    /// queue's limit (the `listen` backlog as the kernel applied it).
    pub sacked: u32,
    /// Segments considered lost.
    pub lost: u32,
    /// Segments retransmitted and not yet acknowledged.
    pub retrans: u32,
    /// Time since data was last sent.
    pub last_data_sent: Duration,
    /// Time since data was last received.
    pub last_data_recv: Duration,
    /// Time since an ACK was last received.
    pub last_ack_recv: Duration,
    /// Path MTU (bytes).
    pub pmtu: u32,
    /// Slow-start threshold of the receive window (bytes).
    pub rcv_ssthresh: u32,
    /// Smoothed round-trip time.
    pub rtt: Duration,
    /// Round-trip time variation (mean deviation).
    pub rttvar: Duration,
    /// Slow-start threshold (segments); [`TcpInfo::INFINITE_SSTHRESH`]
    /// while still in the first slow start.
    pub snd_ssthresh: u32,
    /// Congestion window (segments).
    pub snd_cwnd: u32,
    /// MSS this side advertised (bytes).
    pub advmss: u32,
    /// How much reordering the connection tolerates (segments).
    pub reordering: u32,
    /// Round-trip time measured by the receiver.
    pub rcv_rtt: Duration,
    /// Receive-buffer autotuning's estimate of the space needed (bytes).
    pub rcv_space: u32,
    /// Segments retransmitted over the whole connection.
    pub total_retrans: u32,
    /// Pacing rate (bytes per second).
    pub pacing_rate: Option<u64>,
    /// Sequence space the peer acknowledged: the data bytes that arrived,
    /// plus one for the SYN (and one for the FIN, once acknowledged).
    pub bytes_acked: Option<u64>,
    /// Sequence space received: the data bytes, plus one for the peer's
    /// FIN once it arrived.
    pub bytes_received: Option<u64>,
    /// Segments sent, including pure ACKs and retransmissions.
    pub segs_out: Option<u32>,
    /// Segments received, including pure ACKs.
    pub segs_in: Option<u32>,
    /// Bytes in the send queue not yet sent.
    pub notsent_bytes: Option<u32>,
    /// Smallest round-trip time seen.
    pub min_rtt: Option<Duration>,
    /// Segments received that carried data.
    pub data_segs_in: Option<u32>,
    /// Segments sent that carried data.
    pub data_segs_out: Option<u32>,
    /// Most recent delivery rate (bytes per second).
    pub delivery_rate: Option<u64>,
    /// Time spent with data in flight.
    pub busy_time: Option<Duration>,
    /// Time sending was limited by the peer's receive window.
    pub rwnd_limited: Option<Duration>,
    /// Time sending was limited by this side's send buffer.
    pub sndbuf_limited: Option<Duration>,
    /// Segments delivered (acknowledged, including SACKed).
    pub delivered: Option<u32>,
    /// Bytes of data sent, including retransmissions.
    pub bytes_sent: Option<u64>,
    /// Bytes of data retransmitted.
    pub bytes_retrans: Option<u64>,
    /// Duplicate segments the peer reported (D-SACK).
    pub dsack_dups: Option<u32>,
    /// Reordering events seen.
    pub reord_seen: Option<u32>,
    /// Out-of-order segments received.
    pub rcv_ooopack: Option<u32>,
    /// The peer's receive window, scaled (bytes): how much more it accepts.
    pub snd_wnd: Option<u32>,
    /// This side's advertised receive window, scaled (bytes).
    pub rcv_wnd: Option<u32>,
    /// Retransmission timeouts over the whole connection, SYN ones included.
    pub total_rto: Option<u16>,
    /// Time spent recovering from retransmission timeouts.
    pub total_rto_time: Option<Duration>,
}

impl TcpInfo {
    /// The `snd_ssthresh` of a connection that has not left its first slow
    /// start (Linux `TCP_INFINITE_SSTHRESH`).
    pub const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

    /// For a LISTEN socket, (connections waiting in the accept queue, the
    /// queue's limit): the `listen` backlog at work (lecture §10).
    pub fn accept_queue(&self) -> Option<(u32, u32)> {
        (self.state == TcpState::Listen).then_some((self.unacked, self.sacked))
    }

    /// The fields worth showing to a person, each with its value in its
    /// unit and one line of meaning, in a fixed order. Fields this kernel
    /// does not report are left out; so are those that mean nothing in
    /// the socket's state (a LISTEN socket shows its accept queue, not its
    /// round-trip time).
    pub fn summary(&self) -> Vec<InfoField> {
        let mut out = Fields::default();
        out.push("state", V::State(self.state), self.state.meaning());
        if let Some((queued, limit)) = self.accept_queue() {
            out.accept_queue(queued, limit);
            return out.0;
        }
        if matches!(self.state, TcpState::Close) {
            return out.0;
        }
        self.round_trip_fields(&mut out);
        self.window_fields(&mut out);
        self.byte_fields(&mut out);
        self.segment_fields(&mut out);
        self.activity_fields(&mut out);
        out.0
    }

    /// The round-trip times and the retransmission timeout.
    fn round_trip_fields(&self, out: &mut Fields) {
        out.push(
            "rtt",
            V::Time(self.rtt),
            "smoothed round-trip time: how long a segment takes to be acknowledged",
        );
        out.push(
            "rttvar",
            V::Time(self.rttvar),
            "how much the round-trip time varies",
        );
        out.push_some(
            "min rtt",
            self.min_rtt.map(V::Time),
            "the smallest round-trip time seen",
        );
        out.push(
            "rto",
            V::Time(self.rto),
            "retransmission timeout: how long to wait for an ACK before sending again",
        );
    }

    /// What limits sending: the congestion window and state, segment and
    /// packet sizes, both sides' receive windows.
    fn window_fields(&self, out: &mut Fields) {
        out.push(
            "cwnd",
            V::Segments(u64::from(self.snd_cwnd)),
            "congestion window: segments that may be in flight unacknowledged",
        );
        let ssthresh = if self.snd_ssthresh >= Self::INFINITE_SSTHRESH {
            V::Unlimited
        } else {
            V::Segments(u64::from(self.snd_ssthresh))
        };
        out.push(
            "ssthresh",
            ssthresh,
            "slow-start threshold: below it the window doubles every round trip",
        );
        out.push(
            "congestion",
            V::Text(self.ca_state.name()),
            self.ca_state.meaning(),
        );
        out.push(
            "mss",
            V::Bytes(u64::from(self.snd_mss)),
            "maximum segment size: the most data one segment carries",
        );
        out.push(
            "peer mss",
            V::Bytes(u64::from(self.rcv_mss)),
            "the largest segment the peer seems to send",
        );
        out.push(
            "pmtu",
            V::Bytes(u64::from(self.pmtu)),
            "path MTU: the largest IP packet on the path",
        );
        out.push_some(
            "peer window",
            self.snd_wnd.map(|wnd| V::Bytes(u64::from(wnd))),
            "how much more the peer is ready to receive",
        );
        out.push_some(
            "window",
            self.rcv_wnd.map(|wnd| V::Bytes(u64::from(wnd))),
            "how much more this side told the peer it may send",
        );
    }

    /// What is in flight and what was sent, acknowledged, received and
    /// sent again.
    fn byte_fields(&self, out: &mut Fields) {
        out.push(
            "unacked",
            V::Segments(u64::from(self.unacked)),
            "segments sent and not yet acknowledged",
        );
        out.push(
            "retransmits",
            V::Count(u64::from(self.total_retrans)),
            "segments sent again over the connection's life",
        );
        out.push_some(
            "bytes sent",
            self.bytes_sent.map(V::Bytes),
            "data bytes sent, retransmissions included",
        );
        out.push_some(
            "bytes acked",
            self.bytes_acked.map(V::Bytes),
            "bytes the peer acknowledged (this side's SYN and FIN count one each)",
        );
        out.push_some(
            "bytes received",
            self.bytes_received.map(V::Bytes),
            "bytes received (the peer's FIN counts one)",
        );
        out.push_some(
            "bytes retransmitted",
            self.bytes_retrans.map(V::Bytes),
            "data bytes sent more than once",
        );
        out.push_some(
            "not sent",
            self.notsent_bytes.map(|n| V::Bytes(u64::from(n))),
            "bytes written by the program and still waiting in the send buffer",
        );
    }

    /// Segments out and in, all of them and those with data (each pair only
    /// when the kernel reports both).
    fn segment_fields(&self, out: &mut Fields) {
        if let (Some(out_), Some(in_)) = (self.segs_out, self.segs_in) {
            out.push(
                "segments out",
                V::Segments(u64::from(out_)),
                "segments sent, pure ACKs included",
            );
            out.push(
                "segments in",
                V::Segments(u64::from(in_)),
                "segments received, pure ACKs included",
            );
        }
        if let (Some(out_), Some(in_)) = (self.data_segs_out, self.data_segs_in) {
            out.push(
                "data segments out",
                V::Segments(u64::from(out_)),
                "segments sent that carried data",
            );
            out.push(
                "data segments in",
                V::Segments(u64::from(in_)),
                "segments received that carried data",
            );
        }
    }

    /// How busy the connection has been, and how long ago data moved.
    fn activity_fields(&self, out: &mut Fields) {
        out.push_some(
            "delivery rate",
            self.delivery_rate.map(V::Rate),
            "how fast data was recently delivered",
        );
        out.push_some(
            "busy time",
            self.busy_time.map(V::Time),
            "time spent with data in flight",
        );
        out.push(
            "last data sent",
            V::Time(self.last_data_sent),
            "time since data was last sent",
        );
        out.push(
            "last data received",
            V::Time(self.last_data_recv),
            "time since data was last received",
        );
    }
}

/// The lines of a [`TcpInfo::summary`] being written.
#[derive(Default)]
struct Fields(Vec<InfoField>);

impl Fields {
    /// Adds a line.
    fn push(&mut self, name: &'static str, value: InfoValue, meaning: &'static str) {
        self.0.push(InfoField {
            name,
            value,
            meaning,
        });
    }

    /// Adds a line for a value the kernel may not report; nothing if it
    /// did not.
    fn push_some(&mut self, name: &'static str, value: Option<InfoValue>, meaning: &'static str) {
        if let Some(value) = value {
            self.push(name, value, meaning);
        }
    }

    /// A LISTEN socket's lines: its accept queue and the queue's limit.
    fn accept_queue(&mut self, queued: u32, limit: u32) {
        self.push(
            "accept queue",
            V::Count(u64::from(queued)),
            "connections completed by the kernel, waiting for accept()",
        );
        self.push(
            "backlog",
            V::Count(u64::from(limit)),
            "the accept queue's limit (listen's backlog, capped by net.core.somaxconn)",
        );
    }
}

/// One line of [`TcpInfo::summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoField {
    /// Short name (`rtt`, `cwnd`, `bytes acked`).
    pub name: &'static str,
    /// The value, with its unit.
    pub value: InfoValue,
    /// One line of English.
    pub meaning: &'static str,
}

/// A value of [`InfoField`], with its unit; the shell decides how it looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoValue {
    /// A TCP state.
    State(TcpState),
    /// A time or a duration.
    Time(Duration),
    /// A number of bytes.
    Bytes(u64),
    /// A number of segments.
    Segments(u64),
    /// A plain count.
    Count(u64),
    /// Bytes per second.
    Rate(u64),
    /// No limit.
    Unlimited,
    /// A word.
    Text(&'static str),
}

/// `TCP_INFO` for the TCP socket `fd`: [`TcpInfo`].
///
/// # Errors
/// The OS error of `getsockopt` (`EBADF`; `ENOPROTOOPT` or `EOPNOTSUPP`
/// for a socket that is not TCP), or `InvalidData` when the kernel gave
/// too little or an unknown state.
pub fn tcp_info(fd: RawFd) -> io::Result<TcpInfo> {
    let mut raw = RawTcpInfo::default();
    let mut len = libc::socklen_t::try_from(size_of::<RawTcpInfo>())
        .map_err(|_| io::Error::other("struct tcp_info too large"))?;
    // Neither nix nor socket2 offers TCP_INFO (nor takes a bare `RawFd`):
    // the `getsockopt` stays a plain call.
    // SAFETY: `raw` is a valid, writable `repr(C)` buffer of `len` bytes of
    // plain integers (any bit pattern is valid); the kernel writes at most
    // `len` bytes and stores the count in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(raw).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    decode(&raw, usize::try_from(len).unwrap_or(0))
}

/// The TCP state of `fd`, from `TCP_INFO`.
///
/// # Errors
/// As [`tcp_info`].
pub fn state_of(fd: RawFd) -> io::Result<TcpState> {
    Ok(tcp_info(fd)?.state)
}

/// Turns the `len` bytes of `raw` the kernel filled into a [`TcpInfo`].
fn decode(raw: &RawTcpInfo, len: usize) -> io::Result<TcpInfo> {
    // Each field is present when the kernel's struct reached its end.
    macro_rules! opt {
        ($field:ident) => {
            (offset_of!(RawTcpInfo, $field) + size_of_val(&raw.$field) <= len).then_some(raw.$field)
        };
    }
    let us = |v: u32| Duration::from_micros(u64::from(v));
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    let state = checked_state(raw, len)?;
    Ok(TcpInfo {
        len,
        state,
        ca_state: CaState::from_raw(raw.tcpi_ca_state),
        retransmits: raw.tcpi_retransmits,
        probes: raw.tcpi_probes,
        backoff: raw.tcpi_backoff,
        options: TcpOptions::from_raw(raw.tcpi_options, raw.tcpi_wscale),
        rto: us(raw.tcpi_rto),
        ato: us(raw.tcpi_ato),
        snd_mss: raw.tcpi_snd_mss,
        rcv_mss: raw.tcpi_rcv_mss,
        unacked: raw.tcpi_unacked,
        sacked: raw.tcpi_sacked,
        lost: raw.tcpi_lost,
        retrans: raw.tcpi_retrans,
        last_data_sent: ms(raw.tcpi_last_data_sent),
        last_data_recv: ms(raw.tcpi_last_data_recv),
        last_ack_recv: ms(raw.tcpi_last_ack_recv),
        pmtu: raw.tcpi_pmtu,
        rcv_ssthresh: raw.tcpi_rcv_ssthresh,
        rtt: us(raw.tcpi_rtt),
        rttvar: us(raw.tcpi_rttvar),
        snd_ssthresh: raw.tcpi_snd_ssthresh,
        snd_cwnd: raw.tcpi_snd_cwnd,
        advmss: raw.tcpi_advmss,
        reordering: raw.tcpi_reordering,
        rcv_rtt: us(raw.tcpi_rcv_rtt),
        rcv_space: raw.tcpi_rcv_space,
        total_retrans: raw.tcpi_total_retrans,
        pacing_rate: opt!(tcpi_pacing_rate),
        bytes_acked: opt!(tcpi_bytes_acked),
        bytes_received: opt!(tcpi_bytes_received),
        segs_out: opt!(tcpi_segs_out),
        segs_in: opt!(tcpi_segs_in),
        notsent_bytes: opt!(tcpi_notsent_bytes),
        min_rtt: opt!(tcpi_min_rtt).map(us),
        data_segs_in: opt!(tcpi_data_segs_in),
        data_segs_out: opt!(tcpi_data_segs_out),
        delivery_rate: opt!(tcpi_delivery_rate),
        busy_time: opt!(tcpi_busy_time).map(Duration::from_micros),
        rwnd_limited: opt!(tcpi_rwnd_limited).map(Duration::from_micros),
        sndbuf_limited: opt!(tcpi_sndbuf_limited).map(Duration::from_micros),
        delivered: opt!(tcpi_delivered),
        bytes_sent: opt!(tcpi_bytes_sent),
        bytes_retrans: opt!(tcpi_bytes_retrans),
        dsack_dups: opt!(tcpi_dsack_dups),
        reord_seen: opt!(tcpi_reord_seen),
        rcv_ooopack: opt!(tcpi_rcv_ooopack),
        snd_wnd: opt!(tcpi_snd_wnd),
        rcv_wnd: opt!(tcpi_rcv_wnd),
        total_rto: opt!(tcpi_total_rto),
        total_rto_time: opt!(tcpi_total_rto_time).map(ms),
    })
}

/// The connection's state, once the kernel's struct is known to hold at
/// least the fields of the oldest `struct tcp_info`.
fn checked_state(raw: &RawTcpInfo, len: usize) -> io::Result<TcpState> {
    if len <= offset_of!(RawTcpInfo, tcpi_total_retrans) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("TCP_INFO gave {len} bytes, fewer than the oldest struct tcp_info"),
        ));
    }
    TcpState::from_raw(raw.tcpi_state).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("TCP_INFO gave an unknown state {}", raw.tcpi_state),
        )
    })
}

impl TcpOptions {
    /// The options from `tcpi_options` (`TCPI_OPT_*` bits) and the window
    /// scales from `tcpi_wscale`.
    fn from_raw(bits: u8, wscale: u8) -> TcpOptions {
        TcpOptions {
            timestamps: bits & 1 != 0,
            sack: bits & 2 != 0,
            window_scale: (bits & 4 != 0).then_some(wscales(wscale)),
            ecn: bits & 8 != 0,
            ecn_seen: bits & 16 != 0,
            syn_data: bits & 32 != 0,
        }
    }
}

/// `(tcpi_snd_wscale, tcpi_rcv_wscale)` from their shared byte. C bit
/// fields fill from the low bits on little-endian targets, from the high
/// bits on big-endian ones.
fn wscales(byte: u8) -> (u8, u8) {
    if cfg!(target_endian = "little") {
        (byte & 0x0f, byte >> 4)
    } else {
        (byte >> 4, byte & 0x0f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_structs_leave_new_fields_out() {
        let raw = RawTcpInfo {
            tcpi_state: 1,
            tcpi_rtt: 1500,
            tcpi_bytes_acked: 7,
            tcpi_bytes_sent: 9,
            ..RawTcpInfo::default()
        };
        let info = decode(&raw, 104).unwrap();
        assert_eq!(info.state, TcpState::Established);
        assert_eq!(info.rtt, Duration::from_micros(1500));
        assert_eq!(info.bytes_acked, None);
        assert_eq!(info.pacing_rate, None);
        let info = decode(&raw, 144).unwrap();
        assert_eq!(info.bytes_acked, Some(7));
        assert_eq!(info.bytes_sent, None);
        let info = decode(&raw, 232).unwrap();
        assert_eq!(info.bytes_sent, Some(9));
        assert_eq!(info.snd_wnd, Some(0));
        assert_eq!(info.rcv_wnd, None);
        let info = decode(&raw, size_of::<RawTcpInfo>()).unwrap();
        assert_eq!(info.total_rto_time, Some(Duration::ZERO));
    }

    #[test]
    fn bad_structs_are_errors() {
        let raw = RawTcpInfo {
            tcpi_state: 1,
            ..RawTcpInfo::default()
        };
        assert!(decode(&raw, 0).is_err());
        assert!(decode(&raw, 100).is_err());
        let raw = RawTcpInfo {
            tcpi_state: 12,
            ..RawTcpInfo::default()
        };
        assert!(decode(&raw, 104).is_err());
    }

    #[test]
    fn window_scales_and_options() {
        let raw = RawTcpInfo {
            tcpi_state: 1,
            tcpi_options: 1 | 2 | 4,
            tcpi_wscale: if cfg!(target_endian = "little") {
                0x7 | (0x9 << 4)
            } else {
                (0x7 << 4) | 0x9
            },
            ..RawTcpInfo::default()
        };
        let info = decode(&raw, 104).unwrap();
        assert!(info.options.timestamps && info.options.sack && !info.options.ecn);
        assert_eq!(info.options.window_scale, Some((7, 9)));
    }

    #[test]
    fn not_a_tcp_socket() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        assert!(tcp_info(udp.as_raw_fd()).is_err());
        assert!(tcp_info(-1).is_err());
    }
}
