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
    // Once unshared, a process cannot leave its user namespace: had the
    // id maps then been refused (as AppArmor's default on Ubuntu refuses
    // them), the shell would go on as `nobody`, and every program it ran
    // too. A child tries those steps first; the shell follows only if the
    // child could.
    if let Err((step, e)) = probe(uid, gid) {
        return Entered::Refused(refusal(step, e));
    }
    // The child could, so this fails only if the system changed meanwhile:
    // then the shell is left without privilege, and says why.
    let mapped = map_ids(uid, gid)
        .map_err(|(step, e)| refusal(step, e))
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

/// The steps that cannot be undone, in order: the new user and mount
/// namespaces, then this user's ids mapped to themselves. On failure, the
/// step's number (see [`refusal`]) and the error.
fn map_ids(uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> Result<(), (u8, Errno)> {
    let errno = |e: io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(0));
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(|e| (0, e))?;
    fs::write("/proc/self/setgroups", "deny").map_err(|e| (1, errno(e)))?;
    fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")).map_err(|e| (2, errno(e)))?;
    fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")).map_err(|e| (3, errno(e)))?;
    Ok(())
}

/// Why step `step` of [`map_ids`] (or of its probe: 4) failed, in words.
fn refusal(step: u8, e: Errno) -> String {
    match step {
        0 => refused_unshare(e),
        1 => refused_inside("writing /proc/self/setgroups", e),
        2 => refused_inside("writing /proc/self/uid_map", e),
        3 => refused_inside("writing /proc/self/gid_map", e),
        _ => refused_inside("trying it in a child process first", e),
    }
}

/// Runs [`map_ids`] in a child process, which then exits: whether this
/// process may follow, without committing it.
fn probe(uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> Result<(), (u8, Errno)> {
    use nix::unistd::{fork, pipe, read, write, ForkResult};
    let (rx, tx) = pipe().map_err(|e| (4, e))?;
    // SAFETY: `enter` runs while the process has one thread (its stated
    // precondition: first thing in `main`), so the child is a whole copy
    // of it: no lock held by another thread, and it may allocate. It ends
    // with `_exit`, running no destructor and no exit handler of the
    // parent's.
    match unsafe { fork() }.map_err(|e| (4, e))? {
        ForkResult::Child => {
            drop(rx);
            let (step, errno) = match map_ids(uid, gid) {
                Ok(()) => (u8::MAX, 0),
                Err((step, e)) => (step, e as i32),
            };
            let mut said = [step, 0, 0, 0, 0];
            said[1..].copy_from_slice(&errno.to_le_bytes());
            let _ = write(&tx, &said);
            // SAFETY: `_exit` ends this child at once; nothing of it is
            // needed afterwards.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(tx);
            let mut said = [0u8; 5];
            let mut got = 0;
            // Bounded: the child writes once and exits (end of file).
            while got < said.len() {
                match read(&rx, &mut said[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(Errno::EINTR) => {}
                    Err(e) => {
                        got = 0;
                        said[0] = 4;
                        said[1..].copy_from_slice(&(e as i32).to_le_bytes());
                        break;
                    }
                }
            }
            let _ = nix::sys::wait::waitpid(child, None);
            let errno = i32::from_le_bytes([said[1], said[2], said[3], said[4]]);
            match (got, said[0]) {
                (5, u8::MAX) => Ok(()),
                (5, step) => Err((step, Errno::from_raw(errno))),
                // The child died before it said anything.
                _ => Err((4, Errno::from_raw(errno))),
            }
        }
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
