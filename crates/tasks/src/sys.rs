//! The few system calls std lacks: thread ids, the shared monotonic clock,
//! resource usage and the parent-death signal, through nix's safe wrappers.

use std::io;
use std::time::Duration;

use nix::sys::prctl;
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::signal::Signal;
use nix::sys::time::TimeVal;
use nix::time::{clock_gettime, ClockId};
use nix::unistd;

/// The calling thread's kernel thread id (`gettid`, asked once per
/// thread: a task asks at every step).
pub fn gettid() -> u32 {
    thread_local! {
        static TID: u32 = u32::try_from(unistd::gettid().as_raw()).unwrap_or(0);
    }
    TID.with(|tid| *tid)
}

/// `CLOCK_MONOTONIC` now, as time since boot. Unlike [`std::time::Instant`],
/// the value can be written down and read in another process: every process
/// on the machine reads the same clock, so a worker process stamps its lines
/// with it and the parent turns the stamp into time since the job started.
pub fn mono_now() -> Duration {
    let Ok(ts) = clock_gettime(ClockId::CLOCK_MONOTONIC) else {
        return Duration::ZERO;
    };
    Duration::new(
        u64::try_from(ts.tv_sec()).unwrap_or(0),
        u32::try_from(ts.tv_nsec()).unwrap_or(0),
    )
}

/// CPU time (user + system) used so far by this process (`RUSAGE_SELF`, all
/// threads) and by its children that have been waited for
/// (`RUSAGE_CHILDREN`).
///
/// # Errors
/// The OS error of `getrusage`.
pub fn cpu_used() -> io::Result<Duration> {
    Ok(rusage(UsageWho::RUSAGE_SELF)? + rusage(UsageWho::RUSAGE_CHILDREN)?)
}

/// User plus system CPU time of `who`.
fn rusage(who: UsageWho) -> io::Result<Duration> {
    let usage = getrusage(who)?;
    Ok(timeval(usage.user_time()) + timeval(usage.system_time()))
}

/// A `timeval` as a [`Duration`] (negative parts count as zero).
fn timeval(tv: TimeVal) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec()).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec()).unwrap_or(0))
}

/// Asks the kernel to SIGKILL this process when its parent dies, then checks
/// that the parent is still `expected_parent` (if it died before the call,
/// the signal will never come: the caller must exit). Returns whether the
/// parent is still there.
///
/// # Errors
/// The OS error of `prctl(PR_SET_PDEATHSIG)`.
pub fn die_with_parent(expected_parent: u32) -> io::Result<bool> {
    prctl::set_pdeathsig(Signal::SIGKILL)?;
    let parent = unistd::getppid().as_raw();
    Ok(u32::try_from(parent).ok() == Some(expected_parent))
}
