//! Looking inside TCP (lecture §4, §9, §10): the kernel's view of each
//! socket ([`tcp_info`]), the OS's socket table with the connections that
//! linger in TIME_WAIT ([`socket_table`], [`time_wait_for`]), and the
//! segments themselves as they cross the loopback interface ([`Capture`]).
//!
//! Two ways to show a connection open and close:
//! - **capture** (root or CAP_NET_RAW): [`Capture`] reads every frame on
//!   `lo`, keeps the TCP segments of the shell's ports, and [`Relative`]
//!   turns their sequence numbers into the small ones people read
//!   (SYN seq 0, first data byte 1).
//! - **observation** (no privilege): [`state_of`] before and after an
//!   operation, and [`path`] for the states passed through in between. This
//!   follows the kernel's state; it sees no segments, and says so.
//!
//! Nothing here prints. The kernel gives no event for a state change, so
//! the `wait_*` functions poll (every [`POLL_INTERVAL`], up to a deadline);
//! they exist to observe a change, never as delays. With them and
//! [`Capture::flush`], a command settles before the shell reports, which
//! keeps transcripts deterministic.
//!
//! # Settling a command before showing its segments
//! Which segments an operation causes is fixed; *when* the kernel sends
//! some of them is not (Linux delays an ACK up to ~40 ms, and an ACK still
//! pending when the program sends data or a FIN rides along with it). So
//! the shell waits for the kernel to reach the state that proves the last
//! segment crossed, then calls [`Capture::flush`], then drains the channel:
//! - `connect` to a lab listener: the accept (or [`TcpInfo::accept_queue`]
//!   of the listener) shows the final ACK arrived.
//! - `send`: [`wait_info`] on the sender until `unacked == 0`: the ACK
//!   arrived.
//! - `close` (or `shutdown write`) of the side closing first: the peer
//!   reported the end of stream, and the closer reached FIN_WAIT_2
//!   ([`wait_state`] on its descriptor after a shutdown; after a close the
//!   descriptor is gone, so [`wait_table`] for its row): its FIN was ACKed
//!   on its own, and the wave shows as FIN, ACK, FIN, ACK.
//! - `close` of the second side: [`wait_table`] until the first closer's
//!   row is TIME_WAIT and the second side's row is gone (LAST_ACK ended).

mod capture;
mod info;
mod segment;
mod state;
mod table;
mod wait;

pub use capture::{Capture, CaptureError, CaptureStats, PortSet, Tee, CAPTURE_CHANNEL};
pub use info::{state_of, tcp_info, CaState, InfoField, InfoValue, TcpInfo, TcpOptions};
pub use segment::{flags_text, Flags, RelSeg, Relative, Segment};
pub use state::{path, TcpState};
pub use table::{socket_inode, socket_table, time_wait_for, TableRow, Timer, TimerKind};
pub use wait::{wait_info, wait_state, wait_table, WaitError, POLL_INTERVAL};

#[cfg(test)]
mod tests;
