//! The few system calls socket2 and tokio do not wrap.

use std::io;
use std::os::fd::RawFd;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Bytes waiting in a socket's receive queue (FIONREAD).
pub(crate) fn inq(fd: RawFd) -> io::Result<usize> {
    ioctl_int(fd, libc::FIONREAD as _)
}

/// Bytes in a socket's send queue not yet sent to the peer (SIOCOUTQNSD).
pub(crate) fn notsent(fd: RawFd) -> io::Result<usize> {
    ioctl_int(fd, libc::SIOCOUTQNSD as _)
}

/// An ioctl that writes one `int`: socket2, tokio and nix offer no safe
/// call for FIONREAD or SIOCOUTQNSD (nix's ioctl macros generate `unsafe`
/// functions), so this one stays `unsafe`.
fn ioctl_int(fd: RawFd, request: libc::c_ulong) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    // SAFETY: `fd` is an open socket owned by the caller for the duration of
    // the call, and `value` is a valid out-pointer for an int-sized result.
    let rc = unsafe { libc::ioctl(fd, request as _, &mut value) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(value).unwrap_or(0))
}

/// Raises the soft limit on open files to the hard limit, so one session can
/// hold many thousands of sockets. Returns the new soft limit.
///
/// # Errors
/// The OS error of `getrlimit`/`setrlimit`.
pub fn raise_fd_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        return Ok(hard);
    }
    Ok(soft)
}
