//! The few system calls socket2 and tokio do not wrap.

use std::io;
use std::os::fd::RawFd;

/// Bytes waiting in a socket's receive queue (FIONREAD).
pub(crate) fn inq(fd: RawFd) -> io::Result<usize> {
    ioctl_int(fd, libc::FIONREAD as _)
}

/// Bytes in a socket's send queue not yet sent to the peer (SIOCOUTQNSD).
pub(crate) fn notsent(fd: RawFd) -> io::Result<usize> {
    ioctl_int(fd, libc::SIOCOUTQNSD as _)
}

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
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid, initialised rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}
