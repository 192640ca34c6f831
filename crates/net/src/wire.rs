//! The wire of a kernel stream socket, TCP or UNIX: one implementation of
//! [`Wire`] over tokio's readiness API, whatever the address family.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::{Arc, RwLock};
use std::task::{ready, Context, Poll};

use bytes::{BufMut, BytesMut};
use socket2::SockRef;
use tokio::net::{TcpStream, UnixStream};

use crate::readbuf::Source;
use crate::tube::Wire;

/// What a stream socket offers a wire: readiness and non-blocking I/O
/// (tokio's `TcpStream` and `UnixStream` both have it, under the same
/// names, with no trait of their own).
pub(crate) trait StreamSocket: AsFd + Send + Sync + 'static {
    /// Ready to read, or registered for a wake-up.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Reads what is there into `buf`, without waiting.
    fn try_read_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize>;
    /// Ready to write, or registered for a wake-up.
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Writes what fits, without waiting.
    fn try_write(&self, data: &[u8]) -> io::Result<usize>;
}

macro_rules! stream_socket {
    ($t:ty) => {
        impl StreamSocket for $t {
            fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_read_ready(self, cx)
            }
            fn try_read_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
                <$t>::try_read_buf(self, buf)
            }
            fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_write_ready(self, cx)
            }
            fn try_write(&self, data: &[u8]) -> io::Result<usize> {
                <$t>::try_write(self, data)
            }
        }
    };
}

stream_socket!(TcpStream);
stream_socket!(UnixStream);

/// A stream socket as a wire. The socket sits behind a lock only so
/// `close` can let go of it while others hold the wire.
pub(crate) struct SocketWire<S> {
    stream: RwLock<Option<Arc<S>>>,
}

/// A TCP connection's wire.
pub(crate) type TcpWire = SocketWire<TcpStream>;
/// A UNIX stream connection's wire.
pub(crate) type UnixWire = SocketWire<UnixStream>;

impl<S: StreamSocket> SocketWire<S> {
    /// A wire over `stream`.
    pub(crate) fn new(stream: S) -> SocketWire<S> {
        SocketWire {
            stream: RwLock::new(Some(Arc::new(stream))),
        }
    }

    /// Takes the stream out (for a transfer to own); the wire is closed
    /// from then on.
    pub(crate) fn take(&self) -> Option<Arc<S>> {
        self.stream
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The stream, unless closed.
    pub(crate) fn stream(&self) -> Option<Arc<S>> {
        self.stream
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn closed() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

impl<S: StreamSocket> Source for SocketWire<S> {
    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        let Some(stream) = self.stream() else {
            return Poll::Ready(Err(closed()));
        };
        loop {
            ready!(stream.poll_read_ready(cx))?;
            let mut limited = BufMut::limit(&mut *buf, max);
            match stream.try_read_buf(&mut limited) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl<S: StreamSocket> Wire for SocketWire<S> {
    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let Some(stream) = self.stream() else {
            return Poll::Ready(Err(closed()));
        };
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match stream.try_write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self.stream() {
            Some(s) => SockRef::from(&*s).shutdown(how),
            None => Err(closed()),
        }
    }

    fn close(&self) {
        drop(self.take());
    }

    fn pollable(&self) -> Option<Arc<dyn AsFd + Send + Sync>> {
        let stream: Arc<dyn AsFd + Send + Sync> = self.stream()?;
        Some(stream)
    }
}
