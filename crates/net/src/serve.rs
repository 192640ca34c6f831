//! How a server built by [`Lab::serve`] serves its clients (lecture §10):
//! one at a time, a thread each, or a task each.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{NetError, Result};
use crate::event::Event;
use crate::lab::{lock, push_inbox, Background, Entry, Lab, Mode};

/// How a server serves its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServeMode {
    /// One async task per client (the default): thousands at little cost.
    #[default]
    Task,
    /// One OS thread per client, blocking in its reads.
    Thread,
    /// One client at a time, like the lecture's `while True: accept()`
    /// loop: the next client is accepted only when the current one has
    /// closed; meanwhile it waits, connected, in the backlog.
    Iterative,
}

impl ServeMode {
    /// Every mode, as `help` lists them.
    pub const ALL: [ServeMode; 3] = [ServeMode::Iterative, ServeMode::Thread, ServeMode::Task];

    /// The mode's name in commands.
    pub fn name(self) -> &'static str {
        match self {
            ServeMode::Task => "task",
            ServeMode::Thread => "thread",
            ServeMode::Iterative => "iterative",
        }
    }
}

impl std::str::FromStr for ServeMode {
    type Err = ();

    fn from_str(s: &str) -> Result<ServeMode, ()> {
        ServeMode::ALL.into_iter().find(|m| m.name() == s).ok_or(())
    }
}

impl Lab {
    /// Reads a connection on an OS thread of its own (a blocking `poll` +
    /// `read` loop), reporting events as the task reader does.
    pub(crate) fn start_thread_reader(
        &self,
        e: &Arc<Entry>,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<()> {
        let stream = e.stream()?;
        let (wake_rx, wake_tx) = pipe().map_err(NetError::os("pipe"))?;
        *lock(&e.mode) = Mode::Watched;
        e.progress.send_modify(|p| p.watched = true);
        let cancel = CancellationToken::new();
        let events = self.inner.events.clone();
        let entry = e.clone();
        let stop = cancel.clone();
        // An OS thread of its own (not the runtime's blocking pool, which
        // file transfers need); the slot caps how many there are.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("read {}", e.name))
            .spawn(move || {
                thread_read_loop(&entry, &stream, &wake_rx, &events, &stop);
                drop(slot);
                let _ = done_tx.send(());
            })
            .map_err(NetError::os("thread"))?;
        let task = tokio::spawn(async move {
            let _ = done_rx.await;
        });
        *lock(&e.background) = Some(Background {
            cancel,
            task,
            wake: Some(wake_tx),
        });
        Ok(())
    }
}

/// A non-blocking pipe: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Blocks in poll(2) until the socket is readable or the wake pipe is
/// written (cancellation), then reads without blocking. The socket's
/// descriptor stays non-blocking (it is shared with the runtime), so the
/// thread waits in poll, never in read.
fn thread_read_loop(
    e: &Arc<Entry>,
    stream: &Arc<TcpStream>,
    wake: &OwnedFd,
    events: &mpsc::Sender<Event>,
    cancel: &CancellationToken,
) {
    let fd = stream.as_raw_fd();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd structures.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if cancel.is_cancelled() || fds[1].revents != 0 {
            break;
        }
        if rc < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let _ = events.blocking_send(Event::Failed {
                socket: e.name.clone(),
                error,
            });
            e.progress.send_modify(|p| p.failed = true);
            break;
        }
        // SAFETY-free: a borrowed view of the same socket for read(2).
        let result = (&*std_view(stream)).read(&mut buf);
        match result {
            Ok(0) => {
                if let Some(ev) = e.leftover() {
                    let _ = events.blocking_send(ev);
                }
                let _ = events.blocking_send(Event::PeerClosed {
                    socket: e.name.clone(),
                });
                e.progress.send_modify(|p| p.eof = true);
                break;
            }
            Ok(n) => {
                push_inbox(e, &buf[..n]);
                let (cut, broken) = e.cut(Bytes::copy_from_slice(&buf[..n]));
                for ev in cut {
                    let _ = events.blocking_send(ev);
                }
                if broken {
                    e.stop_reading(n);
                    return;
                }
                e.add_in(n);
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => {
                let _ = events.blocking_send(Event::Failed {
                    socket: e.name.clone(),
                    error,
                });
                e.progress.send_modify(|p| p.failed = true);
                break;
            }
        }
    }
    e.progress.send_modify(|p| p.watched = false);
}

/// A `std::net::TcpStream` over the same descriptor, not owning it.
fn std_view(stream: &TcpStream) -> std::mem::ManuallyDrop<std::net::TcpStream> {
    // SAFETY: the descriptor stays open while `stream` (an Arc held by the
    // caller) lives; ManuallyDrop keeps this view from closing it.
    std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(stream.as_raw_fd()) })
}
