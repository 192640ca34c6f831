//! Hosts without root: the shell enters a user namespace of its own at
//! start, as rootless containers do (`unshare -Um`, the user mapped to
//! themselves rather than to root).
//!
//! Making network namespaces, veths and bridges takes CAP_SYS_ADMIN and
//! CAP_NET_ADMIN. A process that is not root can still have them over
//! namespaces it owns: [`enter`] makes a user namespace and a mount
//! namespace, and mounts a tmpfs of its own on `/run/netns`, where `ip
//! netns` keeps its names. The user keeps their own uid and gid in it
//! (mapped to themselves, not to the namespace's root), so programs the
//! person runs (`exec`, `spawn`) see who they are, as outside socklab.
//! The shell itself holds every capability of the new namespace (the
//! kernel grants them at `unshare`, and the shell never executes
//! another program in its place), so everything the hosts feature does
//! in the shell works as it does for root, over namespaces this user
//! owns; the shell's network namespace stays the machine's (its
//! loopback, its routes, without privilege over them).
//!
//! A program executed by a user who is not uid 0 loses its capabilities.
//! The helpers socklab runs to build hosts (`ip`, `tc`) get theirs back
//! as ambient capabilities ([`keep_caps`]); the person's own programs
//! get none.
//!
//! `unshare(CLONE_NEWUSER)` needs a process of one thread, so [`enter`]
//! runs first thing in `main`, before the runtime; whether it worked (and
//! if not, why) is kept for [`super::privileges`] to say when a host is
//! asked for.
//!
//! A dead shell leaves nothing behind: its namespaces are reachable only
//! from its own mount namespace, which the kernel frees with its last
//! process.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, FileTypeExt as _};
use std::os::unix::io::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// What [`enter`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// The process is root: nothing to do.
    Root,
    /// It is in a user namespace of its own, where it may make hosts.
    Rootless,
    /// It could not enter one; why, in words (which sysctl, which step).
    Refused(String),
}

/// The outcome of [`enter`], once it ran.
static ENTERED: OnceLock<Entered> = OnceLock::new();

/// Set to a non-empty value, socklab stays out of user namespaces (hosts
/// then need root).
pub const OPT_OUT: &str = "SOCKLAB_NO_USERNS";

/// Enters a user namespace of this process's own when it is not root, so
/// that hosts can be made (see the module's text). Call it while the
/// process has one thread (first thing in `main`); a second call returns
/// what the first did.
pub fn enter() -> Entered {
    ENTERED.get_or_init(try_enter).clone()
}

/// What [`enter`] did; `None` when it never ran.
pub fn entered() -> Option<&'static Entered> {
    ENTERED.get()
}

/// Whether this shell made its hosts inside its own user namespace.
pub fn active() -> bool {
    entered() == Some(&Entered::Rootless)
}

fn try_enter() -> Entered {
    if nix::unistd::geteuid().is_root() {
        return Entered::Root;
    }
    if std::env::var_os(OPT_OUT).is_some_and(|v| !v.is_empty()) {
        return Entered::Refused(format!(
            "{OPT_OUT} is set, so socklab did not enter a user namespace of its own"
        ));
    }
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS) {
        return Entered::Refused(refused_unshare(e));
    }
    // From here the process is in the new namespaces whatever happens:
    // a failure leaves it there without privilege, and says why.
    let step = |what: &str, r: io::Result<()>| {
        r.map_err(|e| refused_inside(what, Errno::from_raw(e.raw_os_error().unwrap_or(0))))
    };
    let mapped = step(
        "writing /proc/self/setgroups",
        fs::write("/proc/self/setgroups", "deny"),
    )
    .and_then(|()| {
        step(
            "writing /proc/self/uid_map",
            fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")),
        )
    })
    .and_then(|()| {
        step(
            "writing /proc/self/gid_map",
            fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")),
        )
    })
    .and_then(|()| {
        // Nothing mounted here is seen outside (it could not be anyway,
        // from a less privileged mount namespace; this says so).
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| refused_inside("making the mounts private", e))
    })
    .and_then(|()| {
        private_netns_dir().map_err(|e| refused_inside("mounting a tmpfs on /run/netns", e))
    });
    match mapped {
        Ok(()) => Entered::Rootless,
        Err(why) => Entered::Refused(why),
    }
}

/// The capabilities socklab's own helpers need over the namespaces it
/// made: CAP_SYS_ADMIN (`ip netns add` mounts, `ip -n`/`tc -n` enter a
/// namespace) and CAP_NET_ADMIN (links, addresses, bridges, qdiscs,
/// filters). Numbers of `linux/capability.h`. (CAP_NET_RAW is not among
/// them: the shell opens its raw and packet sockets itself.)
const HELPER_CAPS: [u32; 2] = [CAP_SYS_ADMIN, CAP_NET_ADMIN];
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// `_LINUX_CAPABILITY_VERSION_3`: two [`CapData`] (64 capabilities).
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`: one 32-capability word of each set.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Lets `command` (a helper of socklab's own: `ip`, `tc`) keep, across
/// its exec, the capabilities it needs over the namespaces this shell
/// made: without root the shell's user is not uid 0 in its namespace, so
/// a program it executes would otherwise start with none. Nothing as
/// root, or outside a user namespace of socklab's. Never call it for a
/// program the person asked for: those run with the user's rights alone.
pub(crate) fn keep_caps(command: &mut Command) {
    if !active() {
        return;
    }
    // SAFETY: `raise_ambient` makes three kinds of system call (capget,
    // capset, prctl) on values on its stack, and allocates nothing (its
    // error is an OS error code), so it is safe between fork and exec.
    unsafe {
        command.pre_exec(raise_ambient);
    }
}

/// In the child about to exec a helper: makes [`HELPER_CAPS`]
/// inheritable (the kernel requires it) and raises them as ambient
/// capabilities, which an exec by a non-root user keeps. Async-signal-safe:
/// no allocation, no lock.
fn raise_ambient() -> io::Result<()> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) with a version-3 header writes two `CapData`,
    // which `data` holds; both pointers are to live locals.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for cap in HELPER_CAPS {
        data[(cap / 32) as usize].inheritable |= 1 << (cap % 32);
    }
    // SAFETY: capset(2) reads the header and two `CapData` from live
    // locals; it changes only this (child) process's credentials.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for cap in HELPER_CAPS {
        // SAFETY: prctl(2) with integer arguments only.
        let raised = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                libc::c_ulong::from(cap),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if raised != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A tmpfs of this user on `/run/netns`. Where `/run` has no `netns`
/// directory (only root may make one), a tmpfs goes on `/run` instead,
/// holding a bind mount of each thing `/run` held (a symbolic link is
/// copied) and an empty `netns`.
fn private_netns_dir() -> nix::Result<()> {
    let netns = Path::new("/run/netns");
    if netns.is_dir() {
        return tmpfs(netns);
    }
    let old = fs::File::open("/run").map_err(io_errno)?;
    let entries: Vec<fs::DirEntry> = fs::read_dir("/run").map_err(io_errno)?.flatten().collect();
    tmpfs(Path::new("/run"))?;
    // The old /run stays reachable through the open descriptor.
    let from = Path::new("/proc/self/fd").join(old.as_raw_fd().to_string());
    for e in entries {
        let name = e.file_name();
        let (src, dst) = (from.join(&name), Path::new("/run").join(&name));
        let Ok(ty) = e.file_type() else { continue };
        // Best effort: what cannot be carried over is left out.
        if ty.is_symlink() {
            if let Ok(target) = fs::read_link(&src) {
                let _ = symlink(target, &dst);
            }
            continue;
        }
        let made = if ty.is_dir() {
            fs::create_dir(&dst)
        } else if ty.is_file() || ty.is_socket() || ty.is_fifo() {
            fs::File::create(&dst).map(drop)
        } else {
            continue;
        };
        if made.is_ok() {
            let _ = mount(
                Some(&src),
                &dst,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            );
        }
    }
    fs::create_dir(netns).map_err(io_errno)
}

/// Mounts an empty tmpfs (this user's, mode 0755) on `at`.
fn tmpfs(at: &Path) -> nix::Result<()> {
    mount(
        Some("socklab"),
        at,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=1m"),
    )
}

fn io_errno(e: io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

/// A sysctl's value, if this kernel has it.
fn sysctl(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Why `unshare(CLONE_NEWUSER)` failed, with the setting that forbids it.
fn refused_unshare(e: Errno) -> String {
    let base = format!("the kernel refused a user namespace (unshare(CLONE_NEWUSER): {e})");
    if sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return format!(
            "{base}: unprivileged user namespaces are off (sysctl kernel.unprivileged_userns_clone = 0; \
             as root: sysctl -w kernel.unprivileged_userns_clone=1)"
        );
    }
    if let Some(max) = sysctl("/proc/sys/user/max_user_namespaces") {
        if e == Errno::ENOSPC || max == "0" {
            return format!(
                "{base}: the limit of user namespaces is reached (sysctl user.max_user_namespaces = {max}; \
                 as root: sysctl -w user.max_user_namespaces=15000)"
            );
        }
    }
    if e == Errno::EPERM {
        return format!(
            "{base}: a security policy forbids them here (a container's seccomp filter, or a security module); \
             run socklab as root, or in a container started with user namespaces allowed"
        );
    }
    base
}

/// Why a step inside the new user namespace failed, with the setting
/// that forbids it where one is known.
fn refused_inside(what: &str, e: Errno) -> String {
    let base = format!("inside a user namespace of its own, {what} failed ({e})");
    if sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return format!(
            "{base}: AppArmor takes every capability from unprivileged user namespaces \
             (sysctl kernel.apparmor_restrict_unprivileged_userns = 1; as root: give socklab an \
             AppArmor profile with `userns,`, or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0)"
        );
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_step_and_the_errno() {
        let why = refused_inside("mounting a tmpfs on /run/netns", Errno::EPERM);
        assert!(
            why.contains("mounting a tmpfs on /run/netns failed (EPERM"),
            "{why}"
        );
        let why = refused_unshare(Errno::EINVAL);
        assert!(why.contains("unshare(CLONE_NEWUSER): EINVAL"), "{why}");
    }
}
