//! The few system calls std lacks: thread ids, the shared monotonic clock,
//! resource usage and the parent-death signal.

use std::io;
use std::time::Duration;

/// The calling thread's kernel thread id (`gettid`, asked once per
/// thread: a task asks at every step).
pub fn gettid() -> u32 {
    thread_local! {
        static TID: u32 = {
            // SAFETY: gettid takes no arguments, cannot fail and touches no
            // memory.
            let tid = unsafe { libc::syscall(libc::SYS_gettid) };
            u32::try_from(tid).unwrap_or(0)
        };
    }
    TID.with(|tid| *tid)
}

/// `CLOCK_MONOTONIC` now, as time since boot. Unlike [`std::time::Instant`],
/// the value can be written down and read in another process: every process
/// on the machine reads the same clock, so a worker process stamps its lines
/// with it and the parent turns the stamp into time since the job started.
pub fn mono_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// CPU time (user + system) used so far by this process (`RUSAGE_SELF`, all
/// threads) and by its children that have been waited for
/// (`RUSAGE_CHILDREN`).
pub fn cpu_used() -> io::Result<Duration> {
    Ok(rusage(libc::RUSAGE_SELF)? + rusage(libc::RUSAGE_CHILDREN)?)
}

fn rusage(who: libc::c_int) -> io::Result<Duration> {
    // SAFETY: an all-zero rusage is a valid value of a plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(timeval(ru.ru_utime) + timeval(ru.ru_stime))
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}

/// Asks the kernel to SIGKILL this process when its parent dies, then checks
/// that the parent is still `expected_parent` (if it died before the call,
/// the signal will never come: the caller must exit). Returns whether the
/// parent is still there.
pub fn die_with_parent(expected_parent: u32) -> io::Result<bool> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; no memory is touched.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getppid cannot fail.
    let parent = unsafe { libc::getppid() };
    Ok(u32::try_from(parent).ok() == Some(expected_parent))
}
