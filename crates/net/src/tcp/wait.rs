//! Waiting for the kernel to reach a state: the observers that let the
//! shell settle a command before it reports what the kernel did.
//!
//! The kernel gives no event when a socket changes state or a row appears
//! in its table, so these functions poll: every [`POLL_INTERVAL`], up to a
//! deadline the caller gives. Their only job is to observe a state change;
//! they are never used as a delay.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use tokio::time::Instant;

use super::{socket_table, tcp_info, TableRow, TcpInfo, TcpState};

/// The pause between two looks at the kernel's state.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// What a wait can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Reading the state failed (the socket is not TCP, the table is
    /// unreadable).
    #[error("reading the TCP state: {0}")]
    Os(#[from] io::Error),
    /// The state was not reached in time.
    #[error("{what}: not reached within {after:?}")]
    Timeout {
        /// What was waited for, in words.
        what: String,
        /// How long it waited.
        after: Duration,
    },
}

/// Polls `TCP_INFO` of `fd` until `done` accepts it, and returns that
/// [`TcpInfo`]. Use it to settle: wait until a sender's `unacked` is 0
/// (the peer's ACK arrived), until a state is reached, ….
///
/// # Errors
/// [`WaitError::Os`] if `TCP_INFO` fails, [`WaitError::Timeout`] (naming
/// `what`) if `done` never accepts within `timeout`.
pub async fn wait_info(
    fd: RawFd,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&TcpInfo) -> bool,
) -> Result<TcpInfo, WaitError> {
    let deadline = Instant::now() + timeout;
    loop {
        let info = tcp_info(fd)?;
        if done(&info) {
            return Ok(info);
        }
        if Instant::now() >= deadline {
            return Err(WaitError::Timeout {
                what: format!("{what} (still {})", info.state),
                after: timeout,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Polls the state of `fd` until it is one of `states`, and returns it.
///
/// # Errors
/// As [`wait_info`].
pub async fn wait_state(
    fd: RawFd,
    states: &[TcpState],
    timeout: Duration,
) -> Result<TcpState, WaitError> {
    let names: Vec<&str> = states.iter().map(|s| s.name()).collect();
    let what = format!("state {}", names.join(" or "));
    let info = wait_info(fd, &what, timeout, |info| states.contains(&info.state)).await?;
    Ok(info.state)
}

/// Polls the OS's socket table until `done` accepts it, and returns that
/// table. Use it for what no file descriptor shows any more: a closed
/// connection reaching TIME_WAIT, or leaving LAST_ACK.
///
/// # Errors
/// [`WaitError::Os`] if the table cannot be read, [`WaitError::Timeout`]
/// (naming `what`) if `done` never accepts within `timeout`.
pub async fn wait_table(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&[TableRow]) -> bool,
) -> Result<Vec<TableRow>, WaitError> {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = socket_table()?;
        if done(&rows) {
            return Ok(rows);
        }
        if Instant::now() >= deadline {
            return Err(WaitError::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
