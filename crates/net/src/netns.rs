//! Where a socket is made: the root network namespace, or a lab host's.
//!
//! A *place* is a network namespace socklab made for a host (`hosts.rs`):
//! a file descriptor of the namespace and one thread parked inside it
//! (`setns`), which makes what must be made there: sockets, programs, a
//! read of the namespace's `/proc/net` files. A socket keeps the namespace
//! it was made in for life, so only its creation needs the thread; after
//! that it is an ordinary socket of the runtime.
//!
//! Which place a command works in is a task-local value: `on HOST …` runs
//! the command inside [`within`], and every socket the lab creates goes
//! through [`socket`], which asks [`current`]. Outside any place (the root
//! namespace) a socket is made as usual, but never aimed at the lab's LAN
//! ([`guard`]): the root namespace has no interface there, and its routes
//! would carry such traffic off this machine.

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use nix::sched::CloneFlags;
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{NetError, Result};
use crate::settle::lock;

/// A job for a place's thread.
type Job = Box<dyn FnOnce() + Send>;

/// A lab host's network namespace and the thread that works inside it.
pub struct Place {
    /// The host's name (`teacher`, `student3`).
    pub host: Arc<str>,
    /// The host's address on the LAN.
    pub addr: Ipv4Addr,
    /// Jobs for the thread inside the namespace.
    jobs: Mutex<mpsc::Sender<Job>>,
    /// That thread's id, to read the namespace's `/proc/…/net` files.
    tid: i32,
    /// Its link is down or loses packets: nothing sent to or from it is
    /// waited for.
    unreliable: AtomicBool,
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Place")
            .field("host", &self.host)
            .field("addr", &self.addr)
            .finish()
    }
}

/// A place's thread is gone (it could not enter the namespace).
fn gone() -> io::Error {
    io::Error::other("the host's namespace thread has ended")
}

impl Place {
    /// Opens the namespace at `path` (`/run/netns/NAME`) for `host` and
    /// parks a thread inside it.
    ///
    /// # Errors
    /// The namespace cannot be opened or entered (`setns` needs
    /// CAP_SYS_ADMIN).
    pub fn open(host: &str, addr: Ipv4Addr, path: &Path) -> io::Result<Arc<Place>> {
        let ns = File::open(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        thread::Builder::new()
            .name(format!("netns-{host}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let entered = nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
                    .map(|()| nix::unistd::gettid().as_raw())
                    .map_err(io::Error::from);
                drop(ns);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                }
            })?;
        let tid = ready_rx.recv().map_err(|_| gone())??;
        Ok(Arc::new(Place {
            host: host.into(),
            addr,
            jobs: Mutex::new(tx),
            tid,
            unreliable: AtomicBool::new(false),
        }))
    }

    /// Runs `f` on the thread inside the namespace and returns what it
    /// returned. `f` should be short: one place runs one job at a time.
    ///
    /// # Errors
    /// The thread is gone.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.jobs)
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())
    }

    /// Hands `f` to the thread inside the namespace without waiting for
    /// it.
    ///
    /// # Errors
    /// The thread is gone.
    pub fn run_later(&self, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        lock(&self.jobs).send(Box::new(f)).map_err(|_| gone())
    }

    /// Marks its link as down or lossy (or not).
    pub fn set_unreliable(&self, yes: bool) {
        self.unreliable.store(yes, Ordering::SeqCst);
    }

    /// The path of the namespace's `/proc/net/FILE` (`tcp`, `tcp6`).
    pub fn proc_net(&self, file: &str) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/task/{}/net/{file}",
            std::process::id(),
            self.tid
        ))
    }
}

tokio::task_local! {
    /// The place the current command works in (none: the root namespace).
    static HERE: Arc<Place>;
}

/// Runs `fut` with `place` as the place its sockets and programs are made
/// in.
pub async fn within<F: Future>(place: Arc<Place>, fut: F) -> F::Output {
    HERE.scope(place, fut).await
}

/// The place the running command works in; `None` in the root namespace.
pub fn current() -> Option<Arc<Place>> {
    HERE.try_with(Arc::clone).ok()
}

/// Runs `f` where the current command works: on the place's thread, or
/// right here in the root namespace.
///
/// # Errors
/// The place's thread is gone.
pub fn run_here<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    match current() {
        Some(p) => p.run(f),
        None => Ok(f()),
    }
}

/// `socket()` in the current place: every socket the lab makes is made
/// here.
///
/// # Errors
/// The OS refused, or the place's thread is gone.
pub(crate) fn socket(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<Socket> {
    run_here(move || Socket::new(domain, ty, protocol))?
}

/// `socket()` in `place` (`None`: the root namespace).
///
/// # Errors
/// The OS refused, or the place's thread is gone.
pub(crate) fn socket_in(
    place: Option<&Place>,
    domain: Domain,
    ty: Type,
    protocol: Option<Protocol>,
) -> io::Result<Socket> {
    match place {
        Some(p) => p.run(move || Socket::new(domain, ty, protocol))?,
        None => Socket::new(domain, ty, protocol),
    }
}

/// Every place of this process, in the order they were made.
static PLACES: Mutex<Vec<Arc<Place>>> = Mutex::new(Vec::new());

/// The lab's LAN, address and prefix length (192.168.24.0/24 unless set).
static LAN: Mutex<(Ipv4Addr, u8)> = Mutex::new((Ipv4Addr::new(192, 168, 24, 0), 24));

/// The LAN's own namespace (its bridge), where `trace` captures and delay
/// lines run; not a host, so not among [`places`].
static LAN_PLACE: Mutex<Option<Arc<Place>>> = Mutex::new(None);

/// Sets (or forgets) the place of the LAN's namespace.
pub fn set_lan_place(place: Option<Arc<Place>>) {
    *lock(&LAN_PLACE) = place;
}

/// The place of the LAN's namespace, while there is a LAN.
pub fn lan_place() -> Option<Arc<Place>> {
    lock(&LAN_PLACE).clone()
}

/// Adds a place to those whose sockets the kernel tables show.
pub fn register(place: Arc<Place>) {
    lock(&PLACES).push(place);
}

/// Removes the place of `host`.
pub fn unregister(host: &str) {
    lock(&PLACES).retain(|p| &*p.host != host);
}

/// Every place now.
pub fn places() -> Vec<Arc<Place>> {
    lock(&PLACES).clone()
}

/// The lab's LAN: its network address and prefix length.
pub fn lan() -> (Ipv4Addr, u8) {
    *lock(&LAN)
}

/// Sets the lab's LAN (the network part of `addr` is kept).
pub fn set_lan(addr: Ipv4Addr, prefix: u8) {
    let prefix = prefix.min(32);
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    *lock(&LAN) = (Ipv4Addr::from(u32::from(addr) & mask), prefix);
}

/// Whether `ip` is on the lab's LAN.
pub fn on_lan(ip: IpAddr) -> bool {
    let IpAddr::V4(v4) = ip else {
        return false;
    };
    let (net, prefix) = lan();
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(v4) & mask == u32::from(net) || v4 == Ipv4Addr::BROADCAST && !places().is_empty()
}

/// Whether what a socket in `from` sends to one in `to` surely arrives
/// (no link down or lossy on the way; a host's own loopback always
/// delivers).
pub(crate) fn reliable(from: Option<&Arc<Place>>, to: Option<&Arc<Place>>) -> bool {
    let bad = |p: Option<&Arc<Place>>| p.is_some_and(|p| p.unreliable.load(Ordering::SeqCst));
    same(from.map(|p| &**p), to.map(|p| &**p)) || !(bad(from) || bad(to))
}

/// Whether every host's link carries (none is down or lossy now).
pub(crate) fn all_reliable() -> bool {
    places()
        .iter()
        .all(|p| !p.unreliable.load(Ordering::SeqCst))
}

/// Whether two sockets are in the same place.
pub(crate) fn same(a: Option<&Place>, b: Option<&Place>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => std::ptr::eq(a, b),
        _ => false,
    }
}

/// Whether `to` is a broadcast address of the lab (255.255.255.255, or
/// the LAN's own broadcast address).
pub fn is_lab_broadcast(to: IpAddr) -> bool {
    let IpAddr::V4(v4) = to else {
        return false;
    };
    let (net, prefix) = lan();
    let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    v4 == Ipv4Addr::BROADCAST || u32::from(v4) == u32::from(net) | host_bits
}

/// Whether a socket bound to `local` in `place` gets what a socket in
/// `from` sends to `to` (port and address; multicast membership is the
/// caller's to check). Outside the LAN, the old rule of one namespace:
/// the same port, and the address or the wildcard.
pub(crate) fn delivers(
    place: Option<&Place>,
    local: std::net::SocketAddr,
    from: Option<&Place>,
    to: std::net::SocketAddr,
) -> bool {
    if local.port() != to.port() || local.is_ipv4() != to.is_ipv4() {
        return false;
    }
    let bound = |ip: IpAddr| local.ip() == ip || local.ip().is_unspecified();
    let ip = to.ip();
    let in_lab = !places().is_empty();
    if in_lab && (is_lab_broadcast(ip) || ip.is_multicast()) {
        // Every host on the LAN, the sender's own included.
        return place.is_some() && from.is_some() && bound(ip);
    }
    if in_lab && on_lan(ip) {
        return place.is_some_and(|p| IpAddr::V4(p.addr) == ip) && from.is_some() && bound(ip);
    }
    same(place, from) && bound(ip)
}

/// Refuses to aim a socket of the root namespace (`place` is `None`) at the
/// lab's LAN, where only lab hosts are, or at a multicast group, which only
/// lab hosts use (from here it would leave this machine).
///
/// # Errors
/// [`NetError::OffLan`] when `ip` is on the LAN or multicast and `place`
/// is the root.
pub(crate) fn guard(place: Option<&Place>, ip: IpAddr) -> Result<()> {
    if place.is_none() && (on_lan(ip) || ip.is_multicast()) {
        let (net, prefix) = lan();
        let why = if ip.is_multicast() {
            "is a multicast group: multicast is sent and received only inside the lab's hosts"
                .to_string()
        } else {
            format!(
                "is on the lab's LAN ({net}/{prefix}); this shell's own network has no way there"
            )
        };
        return Err(NetError::OffLan { addr: ip, why });
    }
    Ok(())
}

/// Refuses a program of the root namespace whose arguments name an
/// address of the lab's LAN or a multicast group (`exec ping
/// 192.168.24.148`, `nc 192.168.24.148:5556`): from here such traffic
/// would leave the machine. Numbers that look like an IPv4 address are
/// looked for inside each argument.
///
/// # Errors
/// [`NetError::OffLan`] naming the first such address.
pub(crate) fn guard_args<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<()> {
    if current().is_some() {
        return Ok(());
    }
    for arg in args {
        for piece in arg.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
            if let Ok(ip) = piece.parse::<Ipv4Addr>() {
                guard(None, IpAddr::V4(ip))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lan_is_the_lectures() {
        assert!(on_lan("192.168.24.148".parse().unwrap()));
        assert!(!on_lan("192.168.25.1".parse().unwrap()));
        assert!(!on_lan("127.0.0.1".parse().unwrap()));
        assert!(guard(None, "192.168.24.3".parse().unwrap()).is_err());
        assert!(guard(None, "127.0.0.1".parse().unwrap()).is_ok());
        assert!(guard_args(["nc", "192.168.24.148:5556"]).is_err());
        assert!(guard_args(["ping", "-c1", "224.0.0.1"]).is_err());
        assert!(guard_args(["cat", "1.2.3", "127.0.0.1:80", "v1.2.3.4"]).is_ok());
    }
}
