//! The TCP state machine (RFC 9293 §3.3.2, Linux `include/net/tcp_states.h`):
//! the eleven states and the orderly paths between them.

use std::fmt;

/// The state of a TCP socket, as Linux numbers it (`TCP_ESTABLISHED` = 1 …
/// `TCP_CLOSING` = 11): the value of `tcpi_state` and of the `st` column of
/// `/proc/net/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    /// Connected: data flows both ways.
    Established,
    /// `connect` sent a SYN and waits for the SYN-ACK.
    SynSent,
    /// A SYN arrived and a SYN-ACK went back; waiting for the final ACK.
    SynRecv,
    /// This side closed first and sent its FIN; waiting for it to be ACKed.
    FinWait1,
    /// This side's FIN was ACKed; waiting for the peer's FIN.
    FinWait2,
    /// Both FINs were exchanged and this side closed first: it waits
    /// 2×MSL (60 s on Linux) so that late segments die out.
    TimeWait,
    /// No connection: a fresh or finished socket.
    Close,
    /// The peer closed first (its FIN arrived); waiting for this side to
    /// close.
    CloseWait,
    /// This side closed after the peer; waiting for the ACK of its FIN.
    LastAck,
    /// Waiting for connections (`listen`).
    Listen,
    /// Both sides closed at once: each sent a FIN before receiving the
    /// other's.
    Closing,
}

impl TcpState {
    /// Every state, in Linux's numbering order.
    pub const ALL: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
    ];

    /// The state Linux numbers `raw`, if it is one of the eleven.
    /// (Linux's internal `TCP_NEW_SYN_RECV` (12) and `TCP_BOUND_INACTIVE`
    /// (13) never describe a socket a process holds; they give `None`.)
    pub fn from_raw(raw: u8) -> Option<TcpState> {
        match raw {
            1..=11 => Some(Self::ALL[usize::from(raw - 1)]),
            _ => None,
        }
    }

    /// Linux's number for this state.
    pub fn raw(self) -> u8 {
        match self {
            TcpState::Established => 1,
            TcpState::SynSent => 2,
            TcpState::SynRecv => 3,
            TcpState::FinWait1 => 4,
            TcpState::FinWait2 => 5,
            TcpState::TimeWait => 6,
            TcpState::Close => 7,
            TcpState::CloseWait => 8,
            TcpState::LastAck => 9,
            TcpState::Listen => 10,
            TcpState::Closing => 11,
        }
    }

    /// The conventional name, as `netstat` prints it: `ESTABLISHED`,
    /// `SYN_SENT`, `FIN_WAIT_1`, `TIME_WAIT`, `CLOSED`, …
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSED",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    /// One line of English: what a socket in this state is doing.
    pub fn meaning(self) -> &'static str {
        match self {
            TcpState::Established => "connected: data can flow both ways",
            TcpState::SynSent => "connecting: SYN sent, waiting for the SYN-ACK",
            TcpState::SynRecv => "SYN received and SYN-ACK sent, waiting for the final ACK",
            TcpState::FinWait1 => "closed first: FIN sent, waiting for its ACK",
            TcpState::FinWait2 => "closed first: FIN acknowledged, waiting for the peer's FIN",
            TcpState::TimeWait => {
                "closed first and both FINs exchanged: the port stays held for 2*MSL \
                 (60 s on Linux) so late segments die out"
            }
            TcpState::Close => "no connection",
            TcpState::CloseWait => {
                "the peer closed (its FIN arrived): waiting for this side to close"
            }
            TcpState::LastAck => "closed after the peer: FIN sent, waiting for its ACK",
            TcpState::Listen => "listening: waiting for connections",
            TcpState::Closing => {
                "both sides closed at once: waiting for the ACK of this side's FIN"
            }
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

use TcpState::*;

/// Active open: `connect`.
const ACTIVE_OPEN: &[TcpState] = &[Close, SynSent, Established];
/// Passive open: `listen`, then a client's handshake (the accepted socket
/// begins life in SYN_RECV; the listener itself stays in LISTEN).
const PASSIVE_OPEN: &[TcpState] = &[Close, Listen, SynRecv, Established];
/// Active close: this side's FIN goes first.
const ACTIVE_CLOSE: &[TcpState] = &[Established, FinWait1, FinWait2, TimeWait, Close];
/// Passive close: the peer's FIN goes first.
const PASSIVE_CLOSE: &[TcpState] = &[Established, CloseWait, LastAck, Close];
/// Simultaneous close: both FINs cross.
const SIMULTANEOUS_CLOSE: &[TcpState] = &[Established, FinWait1, Closing, TimeWait, Close];

/// The states an orderly connection passes through from `from` to `to`
/// (both included), on the standard TCP state diagram.
///
/// `closer` says whether this side closed first (sent its FIN before the
/// peer's arrived): it picks the active close (FIN_WAIT_1, FIN_WAIT_2,
/// TIME_WAIT) or the passive close (CLOSE_WAIT, LAST_ACK) when the two
/// states alone do not tell. A state only one of the paths has decides
/// by itself: FIN_WAIT_*/TIME_WAIT mean active, CLOSE_WAIT/LAST_ACK
/// passive, CLOSING the simultaneous close (FIN_WAIT_1, CLOSING,
/// TIME_WAIT). The open is read from `from`: CLOSED or SYN_SENT lead
/// through SYN_SENT (`connect`), LISTEN or SYN_RECV through SYN_RECV (an
/// accepted connection), and CLOSED → LISTEN is `listen`.
///
/// `from == to` gives `[from]`. When `to` does not follow `from` on an
/// orderly path the result is `[from, to]`: both ends were observed and
/// nothing is claimed in between. That covers an opening state (LISTEN,
/// SYN_SENT, SYN_RECV) going to CLOSED (a closed listener, a refused or
/// abandoned connect), a reset, and impossible pairs.
///
/// # How the shell uses it (observation mode)
/// Without the privilege to capture, the shell reads [`super::state_of`]
/// before and after an operation it performed (it knows which: a
/// `connect`, an `accept`, a `close`, and which side closed first) and
/// shows `path(before, after, closer)`: the first and last states as
/// *observed*, the ones between as *passed through*. Both ends are read
/// after the operation has settled (see [`super::wait_state`]), so the
/// list depends on what was done, never on timing, and the transcript is
/// deterministic. It is an observation of the kernel's state, not a
/// capture of segments, and should be labelled so.
pub fn path(from: TcpState, to: TcpState, closer: bool) -> Vec<TcpState> {
    if from == to {
        return vec![from];
    }
    if to == Close && matches!(from, Listen | SynSent | SynRecv) {
        // A refused or abandoned connect, a reset handshake, a closed
        // listener: no orderly path, the open just ended.
        return vec![from, to];
    }
    let in_any = |states: &[TcpState]| states.contains(&from) || states.contains(&to);
    let close: &[TcpState] = if in_any(&[Closing]) {
        SIMULTANEOUS_CLOSE
    } else if in_any(&[FinWait1, FinWait2, TimeWait]) {
        ACTIVE_CLOSE
    } else if in_any(&[CloseWait, LastAck]) {
        PASSIVE_CLOSE
    } else if closer {
        ACTIVE_CLOSE
    } else {
        PASSIVE_CLOSE
    };
    let open: &[TcpState] = if in_any(&[Listen, SynRecv]) {
        PASSIVE_OPEN
    } else {
        ACTIVE_OPEN
    };
    // The whole life of one side: open up to ESTABLISHED, then the close.
    let life: Vec<TcpState> = open.iter().chain(&close[1..]).copied().collect();
    let Some(start) = life.iter().position(|&s| s == from) else {
        return vec![from, to];
    };
    match life[start + 1..].iter().position(|&s| s == to) {
        Some(len) => life[start..=start + 1 + len].to_vec(),
        None => vec![from, to],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_numbers_round_trip() {
        for (i, state) in TcpState::ALL.iter().enumerate() {
            assert_eq!(usize::from(state.raw()), i + 1);
            assert_eq!(TcpState::from_raw(state.raw()), Some(*state));
            assert!(!state.meaning().is_empty());
        }
        for raw in [0, 12, 13, 255] {
            assert_eq!(TcpState::from_raw(raw), None, "{raw}");
        }
        assert_eq!(TcpState::TimeWait.to_string(), "TIME_WAIT");
        assert_eq!(TcpState::Close.name(), "CLOSED");
    }

    #[track_caller]
    fn check(from: TcpState, to: TcpState, closer: bool, expected: &[TcpState]) {
        assert_eq!(
            path(from, to, closer),
            expected,
            "{from} -> {to}, closer={closer}"
        );
    }

    #[test]
    fn open_paths() {
        check(Close, Established, false, &[Close, SynSent, Established]);
        check(Close, SynSent, true, &[Close, SynSent]);
        check(SynSent, Established, false, &[SynSent, Established]);
        check(Close, Listen, false, &[Close, Listen]);
        check(Listen, Established, false, &[Listen, SynRecv, Established]);
        check(SynRecv, Established, true, &[SynRecv, Established]);
    }

    #[test]
    fn close_paths() {
        check(
            Established,
            TimeWait,
            true,
            &[Established, FinWait1, FinWait2, TimeWait],
        );
        check(
            Established,
            FinWait2,
            false,
            &[Established, FinWait1, FinWait2],
        );
        check(FinWait1, TimeWait, false, &[FinWait1, FinWait2, TimeWait]);
        check(Established, CloseWait, true, &[Established, CloseWait]);
        check(CloseWait, Close, true, &[CloseWait, LastAck, Close]);
        check(
            Established,
            Close,
            false,
            &[Established, CloseWait, LastAck, Close],
        );
        check(
            Established,
            Close,
            true,
            &[Established, FinWait1, FinWait2, TimeWait, Close],
        );
        check(
            Established,
            TimeWait,
            true,
            &[Established, FinWait1, FinWait2, TimeWait],
        );
        check(FinWait1, Closing, true, &[FinWait1, Closing]);
        check(
            Established,
            Closing,
            false,
            &[Established, FinWait1, Closing],
        );
        check(Closing, TimeWait, true, &[Closing, TimeWait]);
    }

    #[test]
    fn whole_lives() {
        check(
            Close,
            TimeWait,
            true,
            &[Close, SynSent, Established, FinWait1, FinWait2, TimeWait],
        );
        check(
            Listen,
            LastAck,
            true,
            &[Listen, SynRecv, Established, CloseWait, LastAck],
        );
        check(SynSent, CloseWait, true, &[SynSent, Established, CloseWait]);
    }

    #[test]
    fn jumps_claim_nothing_between() {
        check(Established, Established, true, &[Established]);
        // Refused or aborted connect, reset connection, closed listener.
        check(SynSent, Close, false, &[SynSent, Close]);
        check(Listen, Close, false, &[Listen, Close]);
        // Backwards or contradictory pairs.
        check(TimeWait, Established, true, &[TimeWait, Established]);
        check(FinWait2, CloseWait, true, &[FinWait2, CloseWait]);
        check(LastAck, TimeWait, false, &[LastAck, TimeWait]);
        check(Listen, SynSent, false, &[Listen, SynSent]);
    }
}
