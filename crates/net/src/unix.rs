//! The UNIX-domain kind: sockets named by a path in the file system (or a
//! name in Linux's abstract namespace), between programs of one machine.
//! A UNIX stream connection is a tube like a TCP one; what only it has is
//! here: its addresses (a path, `@name`, or unnamed), the peer's
//! credentials (SO_PEERCRED), the socket file a bind creates (removed
//! again by whoever created it), and the inode pairing that tells which
//! socket of the lab is a connection's other end (`diag.rs`). Datagram
//! UNIX sockets (`UnixDgram`) are read on request.

mod diag;

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use nix::sys::socket::{self as nixsock, MsgFlags, UnixAddr as NixAddr};
use socket2::{Domain, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::{UnixDatagram, UnixListener, UnixStream};

use crate::conn::Accepts;
use crate::error::{NetError, Result};
use crate::model::{PeerCred, UnixAddr};
use crate::tube::Tube;
use crate::wire::UnixWire;

/// The largest UNIX datagram socklab reads at once.
const DATAGRAM_MAX: usize = 65_536;

/// `addr` as the OS takes it.
fn to_nix(addr: &UnixAddr) -> Result<NixAddr> {
    addr.check_len()
        .map_err(|m| NetError::state("the address", m))?;
    let made = match addr {
        UnixAddr::Path(p) => NixAddr::new(p.as_path()),
        UnixAddr::Abstract(a) => NixAddr::new_abstract(a),
        UnixAddr::Unnamed => Ok(NixAddr::new_unnamed()),
    };
    made.map_err(|e| NetError::os("bind")(e.into()))
}

/// An address as the OS gave it.
fn of_nix(a: &NixAddr) -> UnixAddr {
    if let Some(p) = a.path() {
        return UnixAddr::Path(p.to_path_buf());
    }
    match a.as_abstract() {
        Some(name) => UnixAddr::Abstract(name.to_vec()),
        None => UnixAddr::Unnamed,
    }
}

/// The address a socket is bound to (getsockname).
fn local_of(fd: RawFd) -> UnixAddr {
    nixsock::getsockname::<NixAddr>(fd).map_or(UnixAddr::Unnamed, |a| of_nix(&a))
}

/// The address of a socket's peer (getpeername).
fn peer_of(fd: RawFd) -> UnixAddr {
    nixsock::getpeername::<NixAddr>(fd).map_or(UnixAddr::Unnamed, |a| of_nix(&a))
}

/// The socket file a bind made, removed when this is dropped, only if the
/// file at the path is still the one made (same device and inode), so a
/// file someone put there since is left alone.
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// Records the socket file a bind just made at `path`.
    fn made(path: &Path) -> Option<SocketFile> {
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(SocketFile {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let same = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino);
        if same {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A new UNIX socket of `ty` (stream or datagram), non-blocking.
pub(crate) fn new_socket(ty: Type) -> Result<Socket> {
    let s = crate::netns::socket(Domain::UNIX, ty, None).map_err(NetError::os("socket"))?;
    s.set_nonblocking(true).map_err(NetError::os("socket"))?;
    Ok(s)
}

/// `bind()` a UNIX socket to `addr`. A path gets a socket file, returned
/// as the guard that removes it. When the path exists already, says what
/// is there: a stale socket file (nobody listens), a live one, or another
/// kind of file; a stale file is never removed here.
pub(crate) fn bind(sock: &Socket, addr: &UnixAddr) -> Result<Option<SocketFile>> {
    let nix_addr = to_nix(addr)?;
    match nixsock::bind(sock.as_raw_fd(), &nix_addr) {
        Ok(()) => Ok(addr.path().and_then(SocketFile::made)),
        Err(nix::errno::Errno::EADDRINUSE) => Err(in_use(addr)),
        Err(e) => Err(NetError::os("bind")(e.into())),
    }
}

/// Why a bind to `addr` found it in use.
fn in_use(addr: &UnixAddr) -> NetError {
    let Some(path) = addr.path() else {
        return NetError::UnixInUse {
            addr: addr.to_string(),
            why: "is held by another socket (an abstract name has no file: it is free again when that socket closes)".to_string(),
        };
    };
    let shown = path.display();
    let why = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => match bound_at(path) {
            None => format!(
                "exists; no one is listening on it (a stale socket file, left by a server that did not remove it); remove it with `rm {shown}` (from here: `exec rm {shown}`), or pick another path"
            ),
            Some(true) => "exists, and a server is listening on it; pick another path, or stop that server".to_string(),
            Some(false) => "exists, and a socket is bound to it (not listening); pick another path".to_string(),
        },
        Ok(_) => "exists and is not a socket; bind never replaces a file: pick another path".to_string(),
        Err(_) => "is held by something else".to_string(),
    };
    NetError::UnixInUse {
        addr: shown.to_string(),
        why,
    }
}

/// Whether a socket of this machine is bound to `path`, and if so
/// whether it listens, as the kernel's table of UNIX sockets
/// (/proc/net/unix) says. Asked without connecting, so a live server sees
/// no probe.
fn bound_at(path: &Path) -> Option<bool> {
    // Flags __SO_ACCEPTCON: the socket listens.
    const ACCEPTCON: u32 = 0x0001_0000;
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let want = path.to_string_lossy();
    let canonical = std::fs::canonicalize(path).ok();
    let mut found = None;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 8 {
            continue;
        }
        let p = cols[7..].join(" ");
        let same = p == want || canonical.as_deref().is_some_and(|c| Path::new(&p) == c);
        if !same {
            continue;
        }
        let listening = u32::from_str_radix(cols[3], 16).is_ok_and(|f| f & ACCEPTCON != 0);
        found = Some(found.unwrap_or(false) || listening);
    }
    found
}

/// `connect()` a UNIX stream socket to `to`. A UNIX connect does not
/// wait for a handshake: it is queued at once, or refused (EAGAIN: the
/// listener's backlog is full). On failure the socket comes back.
pub(crate) fn connect(
    sock: Socket,
    to: &UnixAddr,
) -> std::result::Result<UnixStream, (NetError, Option<Socket>)> {
    let addr = match to_nix(to) {
        Ok(a) => a,
        Err(e) => return Err((e, Some(sock))),
    };
    if let Err(e) = nixsock::connect(sock.as_raw_fd(), &addr) {
        return Err((NetError::os("connect")(e.into()), Some(sock)));
    }
    let std: std::os::unix::net::UnixStream = sock.into();
    UnixStream::from_std(std).map_err(|e| (NetError::os("connect")(e), None))
}

/// socket + bind + listen: a UNIX listener at `addr`, with the socket
/// file it made.
pub(crate) fn listen_at(
    addr: &UnixAddr,
    backlog: i32,
) -> Result<(UnixListener, Option<SocketFile>)> {
    let sock = new_socket(Type::STREAM)?;
    let file = bind(&sock, addr)?;
    sock.listen(backlog).map_err(NetError::os("listen"))?;
    Ok((listener_of(sock)?, file))
}

/// A listening socket2 socket as a tokio listener.
pub(crate) fn listener_of(sock: Socket) -> Result<UnixListener> {
    let std: std::os::unix::net::UnixListener = sock.into();
    UnixListener::from_std(std).map_err(NetError::os("listen"))
}

/// The local address of a UNIX listener.
pub(crate) fn listener_addr(l: &UnixListener) -> UnixAddr {
    local_of(l.as_raw_fd())
}

/// The inode of a socket (fstat): what the kernel's socket tables name it by.
fn inode(fd: impl AsFd) -> u64 {
    nix::sys::stat::fstat(fd).map_or(0, |st| st.st_ino)
}

/// A UNIX stream connection of the lab: a tube, its addresses, who the
/// peer is, and which socket is its other end.
pub(crate) struct UnixConn {
    /// The byte stream.
    pub(crate) tube: Arc<Tube>,
    /// The same stream, as UNIX.
    wire: Arc<UnixWire>,
    /// Local address (a server's client: the server's path; a client:
    /// usually unnamed).
    pub(crate) local: UnixAddr,
    /// Peer address.
    pub(crate) peer: UnixAddr,
    /// The peer's credentials, as the kernel recorded them.
    pub(crate) cred: Option<PeerCred>,
    /// This socket's inode.
    pub(crate) inode: u64,
    /// The inode of the socket at the other end (sock_diag), 0 until the
    /// kernel says: a client's peer has no inode of its own until the
    /// server accepts it, so it is asked again when needed.
    peer_inode: AtomicU64,
    /// The accepting server's record, for a connection a self-accepting
    /// listener of the lab accepted.
    pub(crate) parent: Option<Arc<Accepts>>,
}

impl UnixConn {
    /// A connection named `name` over `stream`; `outside` when its peer
    /// is no socket of this lab.
    pub(crate) fn new(
        name: Arc<str>,
        stream: UnixStream,
        parent: Option<Arc<Accepts>>,
        outside: bool,
    ) -> UnixConn {
        let fd = stream.as_raw_fd();
        let local = local_of(fd);
        let peer = peer_of(fd);
        let cred = stream.peer_cred().ok().map(|c| PeerCred {
            pid: c.pid(),
            uid: c.uid(),
            gid: c.gid(),
        });
        let inode = inode(&stream);
        let peer_inode = AtomicU64::new(diag::peer_inode(inode).unwrap_or(0));
        let wire = Arc::new(UnixWire::new(stream));
        UnixConn {
            tube: Arc::new(Tube::new(name, wire.clone(), outside)),
            wire,
            local,
            peer,
            cred,
            inode,
            peer_inode,
            parent,
        }
    }

    /// The descriptor, or -1 once closed.
    pub(crate) fn fd(&self) -> RawFd {
        self.wire.stream().map_or(-1, |s| s.as_raw_fd())
    }

    /// The inode of the socket at the other end, once it has one.
    pub(crate) fn peer_inode(&self) -> Option<u64> {
        let known = self.peer_inode.load(Ordering::SeqCst);
        if known != 0 {
            return Some(known);
        }
        let found = diag::peer_inode(self.inode).filter(|i| *i != 0)?;
        self.peer_inode.store(found, Ordering::SeqCst);
        Some(found)
    }

    /// Before a manual read: waits until the stream is readable and at
    /// least `want()` bytes have arrived (what a lab peer wrote so far;
    /// a UNIX write lands in the peer's queue at once, so that is all of
    /// what it wrote), or the stream ended.
    ///
    /// # Errors
    /// The connection is closed or the OS refused.
    pub(crate) async fn await_arrival(&self, want: impl Fn() -> usize) -> Result<()> {
        let stream = self
            .wire
            .stream()
            .ok_or_else(|| NetError::state(&self.tube.name, "is closed"))?;
        loop {
            stream.readable().await.map_err(NetError::os("recv"))?;
            let want = want();
            let avail = crate::sys::inq(stream.as_raw_fd()).unwrap_or(0);
            if avail >= want.max(1) || want == 0 {
                return Ok(());
            }
            let _ = stream.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
    }

    /// A reference for socket options.
    pub(crate) fn with_sockref<T>(&self, f: impl FnOnce(SockRef<'_>) -> T) -> Result<T> {
        let s = self
            .wire
            .stream()
            .ok_or_else(|| NetError::state(&self.tube.name, "is closed"))?;
        Ok(f(SockRef::from(&*s)))
    }
}

/// The client key of an accepted UNIX stream: the inode of the client's
/// socket (its peer), which the client knows as its own inode.
pub(crate) fn client_inode(stream: &UnixStream) -> u64 {
    diag::peer_inode(inode(stream)).unwrap_or(0)
}

/// The peer address of a UNIX stream.
pub(crate) fn peer_addr(s: &UnixStream) -> UnixAddr {
    peer_of(s.as_raw_fd())
}

/// A UNIX socket made by `socket unix`, not yet listening or connected.
pub(crate) struct UnixFresh {
    /// The socket.
    pub(crate) socket: Socket,
    /// The socket file its bind made.
    pub(crate) file: Option<SocketFile>,
}

impl UnixFresh {
    /// The address it is bound to.
    pub(crate) fn local(&self) -> UnixAddr {
        local_of(self.socket.as_raw_fd())
    }
}

/// A UNIX datagram socket (read on request): every `sendto` one
/// datagram, every `recvfrom` one, edges kept, with its sender.
pub(crate) struct UnixDgram {
    /// The socket.
    socket: UnixDatagram,
    /// The socket file its bind made.
    file: std::sync::Mutex<Option<SocketFile>>,
    /// Bytes and datagrams received.
    pub(crate) received: (AtomicU64, AtomicU64),
    /// Bytes and datagrams sent.
    pub(crate) sent: (AtomicU64, AtomicU64),
}

/// One UNIX datagram as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixDatagramIn {
    /// The bytes read.
    pub data: Bytes,
    /// Who sent it (unnamed when the sender never bound).
    pub from: UnixAddr,
}

impl UnixDgram {
    /// A datagram socket over `sock`.
    pub(crate) fn new(sock: Socket, file: Option<SocketFile>) -> Result<UnixDgram> {
        let std: std::os::unix::net::UnixDatagram = sock.into();
        let socket = UnixDatagram::from_std(std).map_err(NetError::os("socket"))?;
        Ok(UnixDgram {
            socket,
            file: std::sync::Mutex::new(file),
            received: (AtomicU64::new(0), AtomicU64::new(0)),
            sent: (AtomicU64::new(0), AtomicU64::new(0)),
        })
    }

    /// The descriptor.
    pub(crate) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The address it is bound to.
    pub(crate) fn local(&self) -> UnixAddr {
        local_of(self.fd())
    }

    /// A reference for socket options.
    pub(crate) fn sockref(&self) -> SockRef<'_> {
        SockRef::from(&self.socket)
    }

    /// `bind()` to `addr`.
    pub(crate) fn bind(&self, addr: &UnixAddr) -> Result<()> {
        let file = bind(&socket2::SockRef::from(&self.socket), addr)?;
        *crate::settle::lock(&self.file) = file;
        Ok(())
    }

    /// `sendto()` one datagram.
    ///
    /// # Errors
    /// The OS refused (no one at that address: ECONNREFUSED or ENOENT).
    pub(crate) async fn sendto(&self, to: &UnixAddr, data: &[u8]) -> Result<usize> {
        let addr = to_nix(to)?;
        let fd = self.fd();
        let n = self
            .socket
            .async_io(Interest::WRITABLE, || {
                nixsock::sendto(fd, data, &addr, MsgFlags::empty()).map_err(io::Error::from)
            })
            .await
            .map_err(NetError::os("sendto"))?;
        self.sent.0.fetch_add(n as u64, Ordering::SeqCst);
        self.sent.1.fetch_add(1, Ordering::SeqCst);
        Ok(n)
    }

    /// `recvfrom()`: one datagram, at most `max` bytes of it.
    ///
    /// # Errors
    /// The OS refused.
    pub(crate) async fn recvfrom(&self, max: usize) -> Result<UnixDatagramIn> {
        let mut buf = vec![0u8; max.clamp(1, DATAGRAM_MAX)];
        let fd = self.fd();
        let (n, from) = self
            .socket
            .async_io(Interest::READABLE, || {
                nixsock::recvfrom::<NixAddr>(fd, &mut buf).map_err(io::Error::from)
            })
            .await
            .map_err(NetError::os("recvfrom"))?;
        buf.truncate(n);
        self.received.0.fetch_add(n as u64, Ordering::SeqCst);
        self.received.1.fetch_add(1, Ordering::SeqCst);
        Ok(UnixDatagramIn {
            data: Bytes::from(buf),
            from: from.map_or(UnixAddr::Unnamed, |a| of_nix(&a)),
        })
    }
}
