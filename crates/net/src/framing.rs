//! Framing on a watched connection: incoming bytes cut into messages with
//! `socklab-frame`, one event per message.

use bytes::{Buf, Bytes, BytesMut};
use socklab_frame::Framing;

use crate::error::{NetError, Result};
use crate::event::Event;
use crate::lab::{lock, Entry, Lab};

impl Entry {
    /// What one read becomes: the bytes as they came (raw), or every whole
    /// message now buffered. `true` means the stream broke its framing and
    /// reading must stop (the rest cannot be trusted to be cut right).
    pub(crate) fn cut(&self, chunk: Bytes) -> (Vec<Event>, bool) {
        let framing = *lock(&self.framing);
        if framing == Framing::Raw {
            return (
                vec![Event::Data {
                    socket: self.name.clone(),
                    data: chunk,
                }],
                false,
            );
        }
        let mut buf = lock(&self.framebuf);
        buf.extend_from_slice(&chunk);
        let mut out = Vec::new();
        loop {
            match framing.decode(&buf) {
                Ok(Some((msg, used))) => {
                    out.push(Event::Message {
                        socket: self.name.clone(),
                        framing: framing.name(),
                        data: Bytes::copy_from_slice(msg),
                    });
                    buf.advance(used);
                }
                Ok(None) => return (out, false),
                Err(e) => {
                    out.push(Event::FrameError {
                        socket: self.name.clone(),
                        error: e.to_string(),
                    });
                    buf.clear();
                    return (out, true);
                }
            }
        }
    }

    /// At end of stream: bytes of a message that never completed.
    pub(crate) fn leftover(&self) -> Option<Event> {
        let mut buf = lock(&self.framebuf);
        if buf.is_empty() {
            return None;
        }
        let n = buf.len();
        *buf = BytesMut::new();
        Some(Event::FrameError {
            socket: self.name.clone(),
            error: format!("the peer closed in the middle of a message ({n} bytes of it arrived)"),
        })
    }
}

impl Lab {
    /// Chooses how a connection's incoming bytes are cut into messages
    /// (shown one event per message) and how [`Lab::frame`] frames what is
    /// sent. Bytes already buffered for a half message are dropped.
    ///
    /// # Errors
    /// Not a TCP connection.
    pub fn set_framing(&self, name: &str, framing: Framing) -> Result<()> {
        let e = self.get(name)?;
        e.stream()?;
        *lock(&e.framing) = framing;
        lock(&e.framebuf).clear();
        Ok(())
    }

    /// The framing a connection uses.
    ///
    /// # Errors
    /// No such socket.
    pub fn framing(&self, name: &str) -> Result<Framing> {
        Ok(*lock(&self.get(name)?.framing))
    }

    /// `msg` framed as the connection's framing says (a line gets its LF, a
    /// `len` message its length prefix).
    ///
    /// # Errors
    /// The message does not fit the framing (a line with a LF in it, a
    /// message over the maximum).
    pub fn frame(&self, name: &str, msg: &[u8]) -> Result<Vec<u8>> {
        let framing = self.framing(name)?;
        let mut out = Vec::with_capacity(msg.len() + 4);
        framing
            .encode(msg, &mut out)
            .map_err(|e| NetError::state(name, format!("frames with {}: {e}", framing.name())))?;
        Ok(out)
    }
}
