//! A packet capture on the loopback interface, reduced to the TCP segments
//! of a set of ports.
//!
//! An `AF_PACKET` socket bound to `lo` (never any other interface, never
//! promiscuous) sees every loopback frame twice: once leaving
//! (`PACKET_OUTGOING`) and once arriving (`PACKET_HOST`). The capture keeps
//! the arriving copy only, so each segment is reported once, at the moment
//! the receiving side's TCP is about to process it.
//!
//! A capture of the lab's LAN ([`Capture::start_on_lan`]) is the same
//! reader on the bridge `br0` inside the LAN's namespace, made promiscuous
//! for the socket (`PACKET_MR_PROMISC`), so every frame the bridge passes
//! between two hosts is seen once, as it crosses the bridge.

use std::collections::BTreeSet;
use std::io;
use std::io::IoSliceMut;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use nix::errno::Errno;
use nix::net::if_::if_nametoindex;
use nix::sys::socket::{
    recvmsg, setsockopt, socket, sockopt, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockType,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::segment::{decode_frame, Segment};

/// How many segments the channel of a capture holds.
pub const CAPTURE_CHANNEL: usize = 1024;
/// The read buffer: the largest loopback frame (MTU 65536 plus the
/// Ethernet header) fits; a larger (GSO) frame is read in part and its
/// data length taken from its real size.
const FRAME_BUF: usize = 65536 + 256;
/// The receive buffer asked for the packet socket, so that bursts wait in
/// the kernel rather than being dropped there.
const SOCKET_RCVBUF: usize = 4 << 20;
/// What starts the payload of a flush marker.
const MARKER_MAGIC: &[u8; 8] = b"socklab!";

/// What starting or using a capture can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// This process may not capture packets: it needs root or
    /// CAP_NET_RAW. The shell falls back to observing socket states.
    #[error("capturing packets needs root or CAP_NET_RAW: {0}")]
    NotPermitted(#[source] io::Error),
    /// There is no loopback interface named `lo`.
    #[error("no loopback interface named 'lo': {0}")]
    NoLoopback(#[source] io::Error),
    /// A system call failed.
    #[error("capture: {call}: {source}")]
    Os {
        /// The call (`socket`, `bind`, `recvfrom`, …).
        call: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The capture runs as a tokio task, and there is no runtime.
    #[error("capture: must be started inside a tokio runtime")]
    NoRuntime,
    /// The capture stopped (stopped, or its reader failed: see
    /// [`Capture::failure`]), or the receiver was dropped.
    #[error("the capture has stopped")]
    Stopped,
    /// [`Capture::flush`] did not see its marker in time.
    #[error("capture: frames still unread after {0:?}")]
    FlushTimeout(Duration),
}

impl CaptureError {
    /// Wraps the OS error of `call`.
    fn os(call: &'static str, source: io::Error) -> CaptureError {
        CaptureError::Os { call, source }
    }
}

/// What gets a copy of each frame a capture keeps: the bytes read (at
/// most the read buffer) and the frame's real length.
pub type Tee = Box<dyn Fn(&[u8], usize) + Send + Sync>;

/// The ports whose segments a capture keeps; shared with the capture and
/// changed while it runs (the shell adds a port as it binds or connects a
/// socket).
#[derive(Debug, Default)]
pub struct PortSet {
    /// The ports.
    ports: RwLock<BTreeSet<u16>>,
}

impl PortSet {
    /// An empty set.
    pub fn new() -> PortSet {
        PortSet::default()
    }

    /// Adds `port`; true if it was not there.
    pub fn insert(&self, port: u16) -> bool {
        self.ports
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(port)
    }

    /// Removes `port`; true if it was there.
    pub fn remove(&self, port: u16) -> bool {
        self.ports
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&port)
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.ports
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&port)
    }

    /// The ports, in ascending order.
    pub fn to_vec(&self) -> Vec<u16> {
        self.ports
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }
}

impl FromIterator<u16> for PortSet {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> PortSet {
        PortSet {
            ports: RwLock::new(iter.into_iter().collect()),
        }
    }
}

/// Counters of a running capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaptureStats {
    /// Frames read from `lo` (every protocol, every port).
    pub frames: u64,
    /// Of those, outgoing copies skipped (each loopback frame is also seen
    /// arriving).
    pub outgoing_skipped: u64,
    /// Segments of the watched ports sent on the channel.
    pub segments: u64,
    /// Segments of the watched ports lost because the channel was full.
    pub channel_drops: u64,
    /// Frames the kernel dropped because the capture socket's buffer was
    /// full (`PACKET_STATISTICS`).
    pub kernel_drops: u64,
}

/// What the capture's task and its handle share.
#[derive(Debug, Default)]
struct Shared {
    /// [`CaptureStats::frames`].
    frames: AtomicU64,
    /// [`CaptureStats::outgoing_skipped`].
    outgoing: AtomicU64,
    /// [`CaptureStats::segments`].
    segments: AtomicU64,
    /// [`CaptureStats::channel_drops`].
    channel_drops: AtomicU64,
    /// [`CaptureStats::kernel_drops`], as read so far (reading resets the
    /// kernel's counter).
    kernel_drops: AtomicU64,
    /// Why the reader stopped, if it failed.
    failure: Mutex<Option<io::Error>>,
}

/// A running capture of the TCP segments of some ports on `lo`. Stops
/// when dropped or [`stop`](Capture::stop)ped.
#[derive(Debug)]
pub struct Capture {
    /// The packet socket (the reader task holds it too).
    socket: Arc<AsyncFd<OwnedFd>>,
    /// The ports kept.
    ports: Arc<PortSet>,
    /// Counters.
    shared: Arc<Shared>,
    /// The reader task.
    task: JoinHandle<()>,
    /// What flush markers are sent from, and the last token sent (the
    /// lock orders tokens as they go out).
    marker: Mutex<(Marker, u64)>,
    /// The address of `marker`.
    marker_addr: SocketAddr,
    /// The last marker token the reader saw.
    seen: watch::Receiver<u64>,
}

/// Where a capture's flush markers come from.
#[derive(Debug)]
enum Marker {
    /// A UDP socket on loopback that sends to itself.
    Udp(UdpSocket),
    /// A packet socket on the LAN's bridge that sends frames to the
    /// bridge's own address (the bridge delivers them to no port; the
    /// capture sees them leave).
    Frame {
        /// The socket (bound to the bridge, receiving nothing).
        fd: OwnedFd,
        /// The bridge's address.
        mac: [u8; 6],
    },
}

/// The EtherType of a LAN flush marker (IEEE 802 local experimental).
const MARKER_ETHERTYPE: u16 = 0x88B5;

impl Capture {
    /// Starts capturing on the lab's LAN: the bridge `br0` of the LAN's
    /// namespace `lan`, as [`Capture::start`] does on `lo`.
    ///
    /// # Errors
    /// As [`Capture::start`]; [`CaptureError::Os`] when the LAN's
    /// namespace has no bridge or its thread is gone.
    pub fn start_on_lan(
        lan: &crate::netns::Place,
        ports: Arc<PortSet>,
    ) -> Result<(Capture, mpsc::Receiver<Segment>), CaptureError> {
        let opened = lan
            .run(|| -> Result<(OwnedFd, OwnedFd, [u8; 6]), CaptureError> {
                let fd = open_iface("br0", true)?;
                let mac = hardware_address("br0")
                    .ok_or_else(|| CaptureError::os("getifaddrs", io::Error::other("no br0")))?;
                let marker = open_sender("br0")?;
                Ok((fd, marker, mac))
            })
            .map_err(|e| CaptureError::os("entering the LAN's namespace", e))??;
        let (fd, marker_fd, mac) = opened;
        Capture::start_with(
            fd,
            Marker::Frame { fd: marker_fd, mac },
            MarkerKind::Frame(mac),
            ports,
            None,
        )
    }

    /// Starts capturing on `lo`: the segments whose source or destination
    /// port is in `ports` (read at every frame, so changes apply at once)
    /// arrive on the returned channel, in the order they crossed the
    /// interface, each once. The channel holds [`CAPTURE_CHANNEL`]
    /// segments; when it is full, new segments are counted in
    /// [`CaptureStats::channel_drops`] and dropped.
    ///
    /// Every frame that arrives on `lo` after this returns is seen.
    ///
    /// # Errors
    /// [`CaptureError::NotPermitted`] without root or CAP_NET_RAW (the
    /// caller should fall back to observation), [`CaptureError::NoRuntime`]
    /// outside a tokio runtime, [`CaptureError::NoLoopback`],
    /// [`CaptureError::Os`] for any other failing call.
    pub fn start(ports: Arc<PortSet>) -> Result<(Capture, mpsc::Receiver<Segment>), CaptureError> {
        Capture::start_inner(ports, None)
    }

    /// [`Capture::start`], and every frame kept (a segment of the watched
    /// ports) is also handed to `tee` as it was read (its start, and its
    /// real length), for a pcap file. `tee` runs on the capture's task:
    /// it must not wait.
    ///
    /// # Errors
    /// As [`Capture::start`].
    pub fn start_with_tee(
        ports: Arc<PortSet>,
        tee: Tee,
    ) -> Result<(Capture, mpsc::Receiver<Segment>), CaptureError> {
        Capture::start_inner(ports, Some(tee))
    }

    fn start_inner(
        ports: Arc<PortSet>,
        tee: Option<Tee>,
    ) -> Result<(Capture, mpsc::Receiver<Segment>), CaptureError> {
        tokio::runtime::Handle::try_current().map_err(|_| CaptureError::NoRuntime)?;
        let fd = open_loopback()?;
        let marker = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| CaptureError::os("bind (marker)", e))?;
        let marker_addr = marker
            .local_addr()
            .map_err(|e| CaptureError::os("getsockname (marker)", e))?;
        marker
            .connect(marker_addr)
            .map_err(|e| CaptureError::os("connect (marker)", e))?;
        marker
            .set_nonblocking(true)
            .map_err(|e| CaptureError::os("fcntl (marker)", e))?;
        Capture::start_with(
            fd,
            Marker::Udp(marker),
            MarkerKind::Udp(marker_addr),
            ports,
            tee,
        )
    }

    /// Starts the reader of packet socket `fd`.
    fn start_with(
        fd: OwnedFd,
        marker: Marker,
        kind: MarkerKind,
        ports: Arc<PortSet>,
        tee: Option<Tee>,
    ) -> Result<(Capture, mpsc::Receiver<Segment>), CaptureError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| CaptureError::NoRuntime)?;
        let marker_addr = match kind {
            MarkerKind::Udp(a) => a,
            MarkerKind::Frame(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        };
        let socket = {
            let _guard = runtime.enter();
            // SAFETY: the OwnedFd keeps its descriptor open, and the same,
            // for as long as the AsyncFd owns it. (tokio's safe
            // `AsyncFd::with_interest` is deprecated as unsound: this is
            // the call it asks for.)
            let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
            Arc::new(registered.map_err(|e| CaptureError::os("epoll", e.into()))?)
        };
        let (tx, rx) = mpsc::channel(CAPTURE_CHANNEL);
        let (seen_tx, seen) = watch::channel(0);
        let shared = Arc::new(Shared::default());
        let reader = Reader {
            socket: Arc::clone(&socket),
            ports: Arc::clone(&ports),
            shared: Arc::clone(&shared),
            tx,
            seen: seen_tx,
            marker: kind,
            tee,
        };
        let task = runtime.spawn(reader.run());
        let capture = Capture {
            socket,
            ports,
            shared,
            task,
            marker: Mutex::new((marker, 0)),
            marker_addr,
            seen,
        };
        Ok((capture, rx))
    }

    /// The set of ports kept (the one given to [`Capture::start`]).
    pub fn ports(&self) -> &Arc<PortSet> {
        &self.ports
    }

    /// Waits until the capture has read every frame that reached `lo`
    /// before this call, and sent every segment of the watched ports among
    /// them on the channel. After it returns, draining the channel with
    /// `try_recv` yields all of them: this is how a command's transcript
    /// gets every segment it caused and nothing that depends on timing.
    ///
    /// It sends a marker datagram over loopback to itself and waits for
    /// the reader to meet it: the reader takes frames in the order they
    /// arrived. A segment the kernel has not sent yet (a delayed ACK) is
    /// not covered: settle the sockets first (see [`super::wait_info`]).
    ///
    /// # Errors
    /// [`CaptureError::Stopped`] if the capture has stopped,
    /// [`CaptureError::FlushTimeout`] if the marker was not met within
    /// `timeout`, [`CaptureError::Os`] if the marker cannot be sent.
    pub async fn flush(&self, timeout: Duration) -> Result<(), CaptureError> {
        let token = {
            let mut marker = self.marker.lock().unwrap_or_else(PoisonError::into_inner);
            let token = marker.1 + 1;
            let mut payload = [0u8; 16];
            payload[..8].copy_from_slice(MARKER_MAGIC);
            payload[8..].copy_from_slice(&token.to_be_bytes());
            match &marker.0 {
                Marker::Udp(udp) => {
                    udp.send(&payload)
                        .map_err(|e| CaptureError::os("send (marker)", e))?;
                }
                Marker::Frame { fd, mac } => {
                    // To the bridge itself, from it: 14 header bytes, the
                    // payload, padded to Ethernet's 60.
                    let mut frame = [0u8; 60];
                    frame[..6].copy_from_slice(mac);
                    frame[6..12].copy_from_slice(mac);
                    frame[12..14].copy_from_slice(&MARKER_ETHERTYPE.to_be_bytes());
                    frame[14..30].copy_from_slice(&payload);
                    nix::sys::socket::send(fd.as_raw_fd(), &frame, MsgFlags::MSG_DONTWAIT)
                        .map_err(|e| CaptureError::os("send (marker)", e.into()))?;
                }
            }
            marker.1 = token;
            token
        };
        let mut seen = self.seen.clone();
        let result = tokio::time::timeout(timeout, seen.wait_for(|&seen| seen >= token)).await;
        self.drain_markers();
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(CaptureError::Stopped),
            Err(_) => Err(CaptureError::FlushTimeout(timeout)),
        }
    }

    /// Reads the marker datagrams out of their socket's queue (the capture
    /// saw them on the wire; their content is not needed).
    fn drain_markers(&self) {
        let marker = self.marker.lock().unwrap_or_else(PoisonError::into_inner);
        let mut buf = [0u8; 16];
        if let Marker::Udp(udp) = &marker.0 {
            while udp.recv(&mut buf).is_ok() {}
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CaptureStats {
        if let Ok(drops) = kernel_drops(self.socket.get_ref().as_raw_fd()) {
            self.shared
                .kernel_drops
                .fetch_add(u64::from(drops), Ordering::Relaxed);
        }
        CaptureStats {
            frames: self.shared.frames.load(Ordering::Relaxed),
            outgoing_skipped: self.shared.outgoing.load(Ordering::Relaxed),
            segments: self.shared.segments.load(Ordering::Relaxed),
            channel_drops: self.shared.channel_drops.load(Ordering::Relaxed),
            kernel_drops: self.shared.kernel_drops.load(Ordering::Relaxed),
        }
    }

    /// Why the reader stopped, if a system call failed (a copy of the OS
    /// error).
    pub fn failure(&self) -> Option<io::Error> {
        let failure = self
            .shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        failure.as_ref().map(|e| match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(e.kind(), e.to_string()),
        })
    }

    /// Whether the reader still runs. False once it has stopped (its
    /// receiver dropped, or a failed call), consistently with
    /// [`Capture::flush`] saying [`CaptureError::Stopped`].
    pub fn is_running(&self) -> bool {
        // The reader owns the marker's sender: it is gone with the reader.
        self.seen.has_changed().is_ok()
    }

    /// Stops the capture: the socket closes and the channel ends once
    /// drained.
    pub fn stop(self) {
        drop(self);
    }

    /// The address flush markers come from (and go to): loopback traffic
    /// of the capture itself, never in the segments.
    pub fn marker_addr(&self) -> SocketAddr {
        self.marker_addr
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The reader task's state.
struct Reader {
    /// The packet socket.
    socket: Arc<AsyncFd<OwnedFd>>,
    /// The ports kept.
    ports: Arc<PortSet>,
    /// Counters and failure.
    shared: Arc<Shared>,
    /// Where segments go.
    tx: mpsc::Sender<Segment>,
    /// Publishes the last marker token met.
    seen: watch::Sender<u64>,
    /// How markers are recognised.
    marker: MarkerKind,
    /// Who gets a copy of every frame kept.
    tee: Option<Tee>,
}

impl Reader {
    /// Reads frames until the capture is dropped, the receiver is gone,
    /// or a call fails.
    async fn run(self) {
        let mut buf = vec![0u8; FRAME_BUF];
        loop {
            let mut guard = match self.socket.readable().await {
                Ok(guard) => guard,
                Err(e) => return self.fail(e),
            };
            loop {
                let read = guard.try_io(|fd| recv_frame(fd.get_ref().as_raw_fd(), &mut buf));
                match read {
                    Err(_would_block) => break,
                    Ok(Ok((len, pkttype))) => {
                        let stored = &buf[..len.min(buf.len())];
                        if !self.frame(stored, len, pkttype) {
                            return;
                        }
                    }
                    Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Ok(Err(e)) => return self.fail(e),
                }
            }
        }
    }

    /// Handles one frame of `len` bytes (`frame` holds its start). False
    /// when the receiver is gone.
    fn frame(&self, frame: &[u8], len: usize, pkttype: u8) -> bool {
        self.shared.frames.fetch_add(1, Ordering::Relaxed);
        let outgoing = pkttype == libc::PACKET_OUTGOING;
        // On the LAN the marker is only ever seen leaving the bridge.
        if outgoing && !matches!(self.marker, MarkerKind::Frame(_)) {
            self.shared.outgoing.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let token = match self.marker {
            MarkerKind::Udp(addr) => marker_token(frame, addr),
            MarkerKind::Frame(mac) => frame_marker_token(frame, mac),
        };
        if outgoing && token.is_none() {
            self.shared.outgoing.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if let Some(token) = token {
            self.seen.send_if_modified(|seen| {
                let newer = token > *seen;
                if newer {
                    *seen = token;
                }
                newer
            });
            return true;
        }
        let Some(segment) = decode_frame(frame, len, Instant::now()) else {
            return true;
        };
        if !self.ports.contains(segment.src.port()) && !self.ports.contains(segment.dst.port()) {
            return true;
        }
        if let Some(tee) = &self.tee {
            tee(frame, len);
        }
        match self.tx.try_send(segment) {
            Ok(()) => {
                self.shared.segments.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.channel_drops.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Records why the reader stops.
    fn fail(&self, error: io::Error) {
        *self
            .shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

/// How a reader knows a flush marker.
#[derive(Debug, Clone, Copy)]
enum MarkerKind {
    /// A UDP datagram from this address to itself.
    Udp(SocketAddr),
    /// A frame from and to the bridge's address, of [`MARKER_ETHERTYPE`].
    Frame([u8; 6]),
}

/// The token of a LAN flush marker frame.
fn frame_marker_token(frame: &[u8], mac: [u8; 6]) -> Option<u64> {
    if frame.get(..6)? != mac || frame.get(6..12)? != mac {
        return None;
    }
    if frame.get(12..14)? != MARKER_ETHERTYPE.to_be_bytes() {
        return None;
    }
    let payload = frame.get(14..30)?;
    if payload.get(..8)? != MARKER_MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?))
}

/// The token of a flush marker: a UDP datagram from `marker` to itself
/// whose payload is the magic and a big-endian u64.
fn marker_token(frame: &[u8], marker: SocketAddr) -> Option<u64> {
    let packet = LaxSlicedPacket::from_ethernet(frame).ok()?;
    let LaxNetSlice::Ipv4(ip) = packet.net.as_ref()? else {
        return None;
    };
    let Some(TransportSlice::Udp(udp)) = packet.transport.as_ref() else {
        return None;
    };
    let from = SocketAddr::new(ip.header().source_addr().into(), udp.source_port());
    let to = SocketAddr::new(
        ip.header().destination_addr().into(),
        udp.destination_port(),
    );
    if from != marker || to != marker {
        return None;
    }
    let payload = udp.payload();
    if payload.len() != 16 || payload.get(..8)? != MARKER_MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?))
}

/// Opens a non-blocking `AF_PACKET` raw socket that receives every frame
/// of `lo` and nothing else (not promiscuous).
pub(super) fn open_loopback() -> Result<OwnedFd, CaptureError> {
    open_iface("lo", false)
}

/// Opens a non-blocking `AF_PACKET` raw socket that receives every frame
/// of interface `name` of this thread's namespace; `promiscuous`: also
/// those the interface would not take for itself (a bridge's forwarded
/// frames), for as long as the socket is open.
fn open_iface(name: &str, promiscuous: bool) -> Result<OwnedFd, CaptureError> {
    let missing = |e: io::Error| {
        if name == "lo" {
            CaptureError::NoLoopback(e)
        } else {
            CaptureError::os("if_nametoindex", e)
        }
    };
    let ifindex = if_nametoindex(name).map_err(|e| missing(e.into()))?;
    let ifindex = i32::try_from(ifindex).map_err(|_| missing(io::Error::other("index")))?;
    // Protocol 0: the socket receives nothing until it is bound to `lo`
    // with ETH_P_ALL, so no frame of another interface gets queued.
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|errno| match errno {
        Errno::EPERM | Errno::EACCES => CaptureError::NotPermitted(errno.into()),
        _ => CaptureError::os("socket", errno.into()),
    })?;
    // A bigger buffer lets bursts wait; refusal (a limit) is not fatal.
    let _ = setsockopt(&fd, sockopt::RcvBuf, &SOCKET_RCVBUF);
    bind_all_frames(&fd, ifindex, libc::ETH_P_ALL as u16)?;
    if promiscuous {
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex,
            mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        // SAFETY: `mreq` is a valid packet_mreq of the size given; `fd` is
        // open. (No crate wraps PACKET_ADD_MEMBERSHIP.)
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                std::ptr::addr_of!(mreq).cast(),
                socklen::<libc::packet_mreq>(),
            )
        };
        if rc != 0 {
            return Err(CaptureError::os(
                "PACKET_ADD_MEMBERSHIP",
                io::Error::last_os_error(),
            ));
        }
    }
    Ok(fd)
}

/// A packet socket on interface `name` that only sends (bound with
/// protocol 0, it receives nothing).
fn open_sender(name: &str) -> Result<OwnedFd, CaptureError> {
    let ifindex = if_nametoindex(name).map_err(|e| CaptureError::os("if_nametoindex", e.into()))?;
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| CaptureError::os("if_nametoindex", io::Error::other("index")))?;
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|errno| match errno {
        Errno::EPERM | Errno::EACCES => CaptureError::NotPermitted(errno.into()),
        _ => CaptureError::os("socket", errno.into()),
    })?;
    bind_all_frames(&fd, ifindex, 0)?;
    Ok(fd)
}

/// The hardware address of interface `name` of this thread's namespace.
fn hardware_address(name: &str) -> Option<[u8; 6]> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|i| {
        if i.interface_name != name {
            return None;
        }
        i.address?.as_link_addr()?.addr()
    })
}

/// Binds the packet socket `fd` to the interface `ifindex`, for frames of
/// `protocol` (`ETH_P_ALL`: every one; 0: none, a socket that only sends).
///
/// nix's `LinkAddr` has no safe constructor and socket2's `SockAddr` none
/// for `AF_PACKET`, so this `bind` stays a plain (`unsafe`) call.
fn bind_all_frames(fd: &OwnedFd, ifindex: i32, protocol: u16) -> Result<(), CaptureError> {
    let addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_ll of the size given, and `fd` an
    // open socket for the duration of the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(addr).cast(),
            socklen::<libc::sockaddr_ll>(),
        )
    };
    if rc != 0 {
        return Err(CaptureError::os("bind", io::Error::last_os_error()));
    }
    Ok(())
}

/// Reads one frame: (its whole length, which may exceed `buf`; its packet
/// type, `PACKET_HOST`, `PACKET_OUTGOING`, …). MSG_TRUNC makes the result
/// the frame's real length even when `buf` holds only its start.
fn recv_frame(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, u8)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<LinkAddr>(fd, &mut iov, None, MsgFlags::MSG_TRUNC)?;
    let pkttype = msg.address.map_or(0, |addr| addr.pkttype());
    Ok((msg.bytes, pkttype))
}

/// Frames the kernel dropped since the last call (`PACKET_STATISTICS`).
///
/// Neither nix nor socket2 knows this option, so the `getsockopt` stays a
/// plain (`unsafe`) call.
fn kernel_drops(fd: RawFd) -> io::Result<u32> {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = socklen::<libc::tpacket_stats>();
    // SAFETY: `stats` is a valid out-buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            std::ptr::addr_of_mut!(stats).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stats.tp_drops)
}

/// The size of `T` as a `socklen_t` (the C structs used here are small).
fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}
