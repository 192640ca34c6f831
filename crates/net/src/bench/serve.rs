//! The server side of `bench serve`: each client says what it wants in its
//! header. A sink or an echo for `stream` and `rtt` runs on a thread of its
//! own with blocking reads (the fastest there is, and wakes no runtime); a
//! `hold` connection is a plain task with a 64-byte buffer (thousands of
//! them cost little); UDP datagrams are echoed by one thread.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::proto::{Mode, HEADER_LEN, READY};

/// A client's header must arrive within this.
const HEADER_WAIT: Duration = Duration::from_secs(10);
/// How often a server thread looks whether its server was closed.
const TICK: Duration = Duration::from_millis(200);
/// A sink or echo thread whose client sends nothing for this long is
/// closed.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// At most this many sink and echo threads per server; past that, clients
/// are served on the runtime (slower, still served).
pub const MAX_THREADS: usize = 128;
/// At most this many sink and echo clients on the runtime (64 KiB each);
/// past that, a client is closed. With the threads' buffers, a server's
/// sinks and echoes hold at most 32 + 64 MiB.
const MAX_ON_RUNTIME: usize = 1024;
/// A sink or echo thread's buffer.
const THREAD_BUFFER: usize = 256 * 1024;
/// A `hold` connection's buffer.
const HOLD_BUFFER: usize = 64;

/// One bench server's state.
pub(crate) struct Server {
    /// The UDP echo's socket, until the accept loop starts its thread.
    udp: Mutex<Option<UdpSocket>>,
    /// Sink and echo clients served (on threads, then on the runtime).
    threads: Arc<AtomicUsize>,
}

impl Server {
    /// A server whose UDP echo is `udp` (bound to the listener's port).
    pub(crate) fn new(udp: UdpSocket) -> Server {
        Server {
            udp: Mutex::new(Some(udp)),
            threads: Arc::default(),
        }
    }

    /// Starts the UDP echo (once); it ends when `cancel` is.
    pub(crate) fn start_udp(&self, cancel: &CancellationToken) {
        let udp = crate::settle::lock(&self.udp).take();
        if let Some(udp) = udp {
            let cancel = cancel.clone();
            let _ = std::thread::Builder::new()
                .name("bench-udp".to_string())
                .spawn(move || udp_echo(&udp, &cancel));
        }
    }

    /// Serves one client until it leaves or the server is closed.
    pub(crate) async fn client(self: Arc<Self>, mut stream: TcpStream, cancel: CancellationToken) {
        let mut header = [0u8; HEADER_LEN];
        let got = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(HEADER_WAIT, stream.read_exact(&mut header)) => r,
        };
        // No header (a `connect` bench, a port scan, a timeout): nothing to
        // serve.
        let Ok(Ok(_)) = got else { return };
        let Some(mode) = Mode::of(&header) else {
            return;
        };
        if stream.write_all(READY).await.is_err() {
            return;
        }
        match mode {
            Mode::Probe | Mode::Udp => {}
            Mode::Hold => hold(stream, &cancel).await,
            Mode::Sink | Mode::Echo => {
                let _ = stream.set_nodelay(true);
                let before = self.threads.fetch_add(1, Ordering::SeqCst);
                if before >= MAX_THREADS {
                    // Past the threads, on the runtime, up to a bound: a
                    // client beyond it is closed (memory stays bounded
                    // whatever connects).
                    if before < MAX_THREADS + MAX_ON_RUNTIME {
                        on_runtime(stream, mode == Mode::Echo, &cancel).await;
                    }
                    self.threads.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                let threads = self.threads.clone();
                let std = stream.into_std().and_then(|s| {
                    s.set_nonblocking(false)?;
                    Ok(s)
                });
                let Ok(std) = std else {
                    threads.fetch_sub(1, Ordering::SeqCst);
                    return;
                };
                let spawned = std::thread::Builder::new()
                    .name(
                        if mode == Mode::Echo {
                            "bench-echo"
                        } else {
                            "bench-sink"
                        }
                        .into(),
                    )
                    .spawn(move || {
                        on_thread(std, mode == Mode::Echo, &cancel);
                        threads.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    self.threads.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
}

/// A sink or an echo with blocking calls: each read wakes this thread and
/// nothing else.
fn on_thread(mut s: std::net::TcpStream, echo: bool, cancel: &CancellationToken) {
    if s.set_read_timeout(Some(TICK)).is_err() || s.set_write_timeout(Some(IDLE_LIMIT)).is_err() {
        return;
    }
    let mut buf = vec![0u8; THREAD_BUFFER];
    let mut last = Instant::now();
    // Bounded by the client and the server's close: the close is looked
    // at on every pass (a client that never stops sending never lets a
    // read time out).
    loop {
        if cancel.is_cancelled() {
            return;
        }
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if echo && s.write_all(&buf[..n]).is_err() {
                    return;
                }
                last = Instant::now();
            }
            Err(e) if super::proto::timed_out(&e) => {
                if cancel.is_cancelled() || last.elapsed() > IDLE_LIMIT {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// A sink or an echo on the runtime (when the threads are all taken).
async fn on_runtime(mut s: TcpStream, echo: bool, cancel: &CancellationToken) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(IDLE_LIMIT, s.read(&mut buf)) => r,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) if echo => {
                // A client that never reads must not keep the echo past
                // the server's close, nor past the idle limit.
                let wrote = tokio::select! {
                    _ = cancel.cancelled() => return,
                    w = tokio::time::timeout(IDLE_LIMIT, s.write_all(&buf[..n])) => w,
                };
                if !matches!(wrote, Ok(Ok(()))) {
                    return;
                }
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// A held connection: echoes what comes, with a tiny buffer, until the end
/// of stream or the server's close. No idle limit: holding is the point.
async fn hold(mut s: TcpStream, cancel: &CancellationToken) {
    let mut buf = [0u8; HOLD_BUFFER];
    loop {
        let read = tokio::select! {
            _ = cancel.cancelled() => return,
            r = s.read(&mut buf) => r,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // No idle limit, but the server's close ends a write that a
                // client which never reads would keep waiting.
                let wrote = tokio::select! {
                    _ = cancel.cancelled() => return,
                    w = s.write_all(&buf[..n]) => w,
                };
                if wrote.is_err() {
                    return;
                }
            }
        }
    }
}

/// The UDP echo: every datagram goes back to its sender, a bench header
/// is answered with `SLBREADY`. One datagram back per datagram in, never
/// more.
fn udp_echo(udp: &UdpSocket, cancel: &CancellationToken) {
    if udp.set_read_timeout(Some(TICK)).is_err() {
        return;
    }
    let mut buf = vec![0u8; super::MAX_MESSAGE + 1];
    while !cancel.is_cancelled() {
        match udp.recv_from(&mut buf) {
            Ok((n, from)) => {
                let reply = if Mode::of(&buf[..n]) == Some(Mode::Udp) {
                    &READY[..]
                } else {
                    &buf[..n]
                };
                let _ = udp.send_to(reply, from);
            }
            Err(e) if super::proto::timed_out(&e) => {}
            // An error the socket keeps giving: back off, still looking
            // at `cancel` often.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
