//! A delay line for kernels without netem: socklab holds the frames a host
//! sends for the link's delay (± jitter), then lets them onto the LAN.
//!
//! In the LAN's namespace the host's bridge port (`pN`, the veth end facing
//! its `eth0`) leaves the bridge, and a second veth pair joins it: `eN` is
//! the new bridge port, `dN` the end socklab writes into. Two `AF_PACKET`
//! raw sockets, made inside the LAN's namespace, carry Ethernet frames
//! between `pN` and `dN`: what the host sends waits in a timer queue, what
//! comes to it is passed on at once. The frames are real and unchanged
//! (with `PACKET_VNET_HDR`, so a large TCP send stays one GSO frame with
//! its checksum still to fill, as the kernel had it); only their timing is
//! socklab's.
//!
//! What `delay D` means is netem's on the host's `eth0`: what the host
//! *sends* waits D; what it receives does not. A ping from another host
//! to a delayed host sees D once (the reply waits).
//!
//! Jitter keeps each direction's order: a frame never leaves before the one
//! sent before it (netem without a rate reorders; a LAN does not), so a
//! frame's wait is `max(delay ± jitter, the previous frame's)`.
//!
//! Memory is bounded: at most [`MAX_HELD_FRAMES`] frames and
//! [`MAX_HELD_BYTES`] bytes wait in one line, and [`MAX_HELD_TOTAL`] bytes
//! in all the lines of the process; past that a frame is dropped and
//! counted, as a full queue on a real link drops it.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::{recv, send, MsgFlags};
use nix::sys::time::TimeSpec;

use crate::netns::Place;
use crate::settle::lock;

/// At most this many frames wait in one delay line.
pub const MAX_HELD_FRAMES: usize = 8192;
/// At most this many bytes wait in one delay line.
pub const MAX_HELD_BYTES: usize = 16 << 20;
/// At most this many bytes wait in all the delay lines of the process.
pub const MAX_HELD_TOTAL: usize = 64 << 20;

/// The bytes waiting in all the delay lines.
static HELD_TOTAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// One read: the largest GSO frame (64 KiB of IP packet), its Ethernet and
/// virtio headers.
const FRAME_BUF: usize = 65536 + 256;
/// Frames read from one side before the other side and the timers get
/// their turn.
const BATCH: usize = 64;
/// The receive buffer asked for each packet socket.
const SOCKET_RCVBUF: usize = 4 << 20;

/// How long frames wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// What every frame waits.
    pub delay: Duration,
    /// At most this much more or less, uniformly.
    pub jitter: Option<Duration>,
}

/// What a delay line counted.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames the host sent that were delayed and passed on.
    pub delayed: AtomicU64,
    /// Frames passed to the host.
    pub passed: AtomicU64,
    /// Frames dropped: the queue was full, or the kernel refused a send.
    pub dropped: AtomicU64,
}

/// A running delay line. Dropping it stops its thread (the frames still
/// waiting are lost, as on a cable pulled out); the veth pair and the
/// bridge port are the caller's to restore.
pub struct DelayLine {
    /// The timing, shared with the thread (changed in place).
    timing: Arc<Mutex<Timing>>,
    /// What it counted.
    counters: Arc<Counters>,
    /// Dropping it wakes the thread to end.
    stop: Option<UnixStream>,
    /// The thread.
    thread: Option<JoinHandle<()>>,
}

impl DelayLine {
    /// Starts a line between `host_port` (the host's veth end, off the
    /// bridge) and `lan_end` (the veth end whose peer is a bridge port),
    /// both interfaces of `lan`, the LAN's namespace.
    ///
    /// # Errors
    /// A packet socket cannot be made or bound there.
    pub fn start(
        lan: &Place,
        host_port: &str,
        lan_end: &str,
        timing: Timing,
    ) -> io::Result<DelayLine> {
        let (h, l) = (host_port.to_string(), lan_end.to_string());
        let (host_fd, lan_fd) =
            lan.run(move || -> io::Result<(OwnedFd, OwnedFd)> { Ok((open(&h)?, open(&l)?)) })??;
        let (stop, wake) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let timing = Arc::new(Mutex::new(timing));
        let counters = Arc::new(Counters::default());
        let line = Line {
            host: host_fd,
            lan: lan_fd,
            wake,
            timing: timing.clone(),
            counters: counters.clone(),
            queue: VecDeque::new(),
            held: 0,
            last_due: Instant::now(),
            rng: seed(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("delay-{host_port}"))
            .stack_size(256 * 1024)
            .spawn(move || line.run())?;
        Ok(DelayLine {
            timing,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Changes the timing; frames already waiting keep theirs.
    pub fn set(&self, timing: Timing) {
        *lock(&self.timing) = timing;
    }

    /// What it counted so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A frame waiting: when it leaves, and its bytes (virtio header first).
type Held = (Instant, Vec<u8>);

/// The thread's state.
struct Line {
    /// The packet socket on the host's port.
    host: OwnedFd,
    /// The packet socket on the LAN's end.
    lan: OwnedFd,
    /// Readable (end of stream) when the line is dropped.
    wake: UnixStream,
    /// The timing.
    timing: Arc<Mutex<Timing>>,
    /// Counters.
    counters: Arc<Counters>,
    /// The frames waiting, in the order they leave.
    queue: VecDeque<Held>,
    /// Their bytes.
    held: usize,
    /// When the last frame queued leaves.
    last_due: Instant,
    /// xorshift64 state for jitter.
    rng: u64,
}

impl Drop for Line {
    fn drop(&mut self) {
        // The frames still waiting are lost with the line.
        HELD_TOTAL.fetch_sub(self.held, Ordering::Relaxed);
    }
}

impl Line {
    fn run(mut self) {
        let mut buf = vec![0u8; FRAME_BUF];
        loop {
            let now = Instant::now();
            let timeout = self.queue.front().map(|(due, _)| {
                let d = due.saturating_duration_since(now);
                TimeSpec::from_duration(d)
            });
            let (woke, from_host, from_lan) = {
                let mut fds = [
                    PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.host.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.lan.as_fd(), PollFlags::POLLIN),
                ];
                match nix::poll::ppoll(&mut fds, timeout, None) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]), ready(&fds[2]))
            };
            if woke {
                return;
            }
            if from_host {
                self.take_from_host(&mut buf);
            }
            if from_lan {
                self.pass_to_host(&mut buf);
            }
            self.release();
        }
    }

    /// Reads what the host sent and queues it.
    fn take_from_host(&mut self, buf: &mut [u8]) {
        for _ in 0..BATCH {
            let Some(len) = read(self.host.as_raw_fd(), buf) else {
                return;
            };
            let now = Instant::now();
            let total = HELD_TOTAL.load(Ordering::Relaxed);
            if self.queue.len() >= MAX_HELD_FRAMES
                || self.held + len > MAX_HELD_BYTES
                || total + len > MAX_HELD_TOTAL
            {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            HELD_TOTAL.fetch_add(len, Ordering::Relaxed);
            let timing = *lock(&self.timing);
            let due = (now + self.wait(timing)).max(self.last_due);
            self.last_due = due;
            self.held += len;
            self.queue.push_back((due, buf[..len].to_vec()));
        }
    }

    /// Passes what came from the LAN to the host at once.
    fn pass_to_host(&mut self, buf: &mut [u8]) {
        for _ in 0..BATCH {
            let Some(len) = read(self.lan.as_raw_fd(), buf) else {
                return;
            };
            let counter = match send(self.host.as_raw_fd(), &buf[..len], MsgFlags::MSG_DONTWAIT) {
                Ok(_) => &self.counters.passed,
                Err(_) => &self.counters.dropped,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends every frame whose time has come onto the LAN.
    fn release(&mut self) {
        let now = Instant::now();
        while self.queue.front().is_some_and(|(due, _)| *due <= now) {
            let Some((_, frame)) = self.queue.pop_front() else {
                break;
            };
            self.held -= frame.len();
            HELD_TOTAL.fetch_sub(frame.len(), Ordering::Relaxed);
            let counter = match send(self.lan.as_raw_fd(), &frame, MsgFlags::MSG_DONTWAIT) {
                Ok(_) => &self.counters.delayed,
                Err(_) => &self.counters.dropped,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How long one frame waits: the delay, ± a uniform share of the
    /// jitter, never below zero.
    fn wait(&mut self, t: Timing) -> Duration {
        let Some(j) = t.jitter.filter(|j| !j.is_zero()) else {
            return t.delay;
        };
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        // A fraction in [-1, 1].
        let f = (self.rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let ns = t.delay.as_nanos() as f64 + f * j.as_nanos() as f64;
        Duration::from_nanos(ns.max(0.0) as u64)
    }
}

/// A seed for jitter (no two lines alike).
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

/// One frame, if one is waiting (a truncated one is skipped).
fn read(fd: RawFd, buf: &mut [u8]) -> Option<usize> {
    loop {
        match recv(fd, buf, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC) {
            Ok(n) if n <= buf.len() => return Some(n),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// A non-blocking packet socket bound to `iface` of this thread's
/// namespace: every frame it receives (not those it sends), with a virtio
/// header.
fn open(iface: &str) -> io::Result<OwnedFd> {
    use nix::sys::socket::{setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType};
    let index = nix::net::if_::if_nametoindex(iface)?;
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let _ = setsockopt(&fd, sockopt::RcvBuf, &SOCKET_RCVBUF);
    set_int(&fd, libc::PACKET_VNET_HDR, 1)?;
    set_int(&fd, libc::PACKET_IGNORE_OUTGOING, 1)?;
    let addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
        sll_ifindex: i32::try_from(index).map_err(|_| io::Error::other("interface index"))?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_ll of the size given, and `fd` an
    // open socket for the duration of the call (no crate wraps AF_PACKET
    // addresses with a safe constructor).
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// `setsockopt(SOL_PACKET, opt, value)`, an option no crate wraps.
fn set_int(fd: &OwnedFd, opt: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int of the size given, `fd` is open.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            std::ptr::addr_of!(value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bounds() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut line = Line {
            host: OwnedFd::from(a.try_clone().unwrap()),
            lan: OwnedFd::from(a),
            wake: UnixStream::pair().unwrap().0,
            timing: Arc::new(Mutex::new(Timing {
                delay: Duration::ZERO,
                jitter: None,
            })),
            counters: Arc::default(),
            queue: VecDeque::new(),
            held: 0,
            last_due: Instant::now(),
            rng: seed(),
        };
        let t = Timing {
            delay: Duration::from_millis(50),
            jitter: Some(Duration::from_millis(10)),
        };
        let waits: Vec<Duration> = (0..1000).map(|_| line.wait(t)).collect();
        assert!(waits.iter().all(|w| *w >= Duration::from_millis(40)));
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(60)));
        assert!(waits.iter().any(|w| *w < Duration::from_millis(45)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(55)));
        let small = Timing {
            delay: Duration::from_millis(1),
            jitter: Some(Duration::from_millis(5)),
        };
        assert!((0..100).all(|_| line.wait(small) <= Duration::from_millis(6)));
    }
}
