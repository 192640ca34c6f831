//! Things that happen to sockets without being asked for at that moment.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::budget::{Budget, Payload};

/// What a file server did with one client.
#[derive(Debug)]
pub enum Transfer {
    /// The transfer protocol (`serve files`).
    Files(Result<crate::transfer::Served, crate::transfer::TransferError>),
    /// A raw receive until EOF (`serve raw`).
    Raw(Result<crate::transfer::RawReport, crate::transfer::TransferError>),
}

/// Which way a relay pair forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// From the client to the upstream.
    Up = 0,
    /// From the upstream to the client.
    Down = 1,
}

impl Way {
    /// `client -> upstream` or `upstream -> client`.
    pub fn words(self) -> &'static str {
        match self {
            Way::Up => "client -> upstream",
            Way::Down => "upstream -> client",
        }
    }

    /// The leg this way reads: `client` or `upstream`.
    pub fn source(self) -> &'static str {
        match self {
            Way::Up => "client",
            Way::Down => "upstream",
        }
    }

    /// The leg this way writes: `upstream` or `client`.
    pub fn sink(self) -> &'static str {
        match self {
            Way::Up => "upstream",
            Way::Down => "client",
        }
    }
}

/// One background happening, sent on the lab's event channel.
#[derive(Debug)]
pub enum Event {
    /// A watched listener accepted a client, now known as `conn`.
    Accepted {
        /// The listener's name.
        listener: Arc<str>,
        /// The name given to the accepted connection (`srv.1`).
        conn: Arc<str>,
        /// The client's address.
        peer: SocketAddr,
    },
    /// A watched connection read these bytes (one read).
    Data {
        /// The connection's name.
        socket: Arc<str>,
        /// What the read returned.
        data: Payload,
    },
    /// `trace` (capture): one segment crossed the loopback interface.
    Segment {
        /// The sending socket's name (or address).
        from: String,
        /// The receiving socket's name (or address).
        to: String,
        /// `SYN`, `SYN,ACK`, `PSH,ACK`, …
        flags: String,
        /// Relative sequence number.
        seq: u32,
        /// Relative acknowledgement number, if ACK is set.
        ack: Option<u32>,
        /// The window offered, scaled, when known.
        window: Option<u32>,
        /// Payload bytes.
        len: usize,
        /// What it repeats, if anything: `retransmission`, `dup ACK 2`.
        note: Option<String>,
    },
    /// `trace` (observation): a connection's kernel state changed; the
    /// first and last states were read, the ones between are the path the
    /// TCP state diagram takes.
    States {
        /// The socket's name.
        socket: Arc<str>,
        /// From the state seen before to the state seen now.
        path: Vec<crate::tcp::TcpState>,
    },
    /// A file server finished with one client.
    Served {
        /// The server's name.
        server: Arc<str>,
        /// The client.
        peer: SocketAddr,
        /// What happened.
        outcome: Box<Transfer>,
    },
    /// A watched connection with framing received one whole message.
    Message {
        /// The connection's name.
        socket: Arc<str>,
        /// The framing that cut it (`line`, `len`).
        framing: &'static str,
        /// The message, without its framing.
        data: Payload,
    },
    /// A watched connection's bytes broke its framing (a line too long, a
    /// frame too large, a message cut off by the close); reading stops.
    FrameError {
        /// The connection's name.
        socket: Arc<str>,
        /// What was wrong.
        error: String,
    },
    /// A watched UDP socket received a datagram.
    Datagram {
        /// The socket's name.
        socket: Arc<str>,
        /// The sender.
        from: SocketAddr,
        /// The datagram.
        data: Payload,
    },
    /// A watched connection read end-of-stream: the peer closed (or shut
    /// down) its sending side.
    PeerClosed {
        /// The connection's name.
        socket: Arc<str>,
    },
    /// A watched connection was reset by its peer (RST: the peer closed
    /// with data unread, set SO_LINGER 0, or crashed); Python raises
    /// `ConnectionResetError`.
    Reset {
        /// The connection's name.
        socket: Arc<str>,
    },
    /// A watched connection failed (other than a reset).
    Failed {
        /// The connection's name.
        socket: Arc<str>,
        /// The OS error.
        error: io::Error,
    },
    /// A program wrote to its stderr (`exec`, `listen … exec`).
    Stderr {
        /// The program's name in the lab.
        socket: Arc<str>,
        /// What it wrote (one read).
        data: Payload,
    },
    /// A `listen … exec` server started a program for a client.
    Started {
        /// The client's name (`srv.1`).
        socket: Arc<str>,
        /// The program's process id.
        pid: u32,
        /// The command line.
        command: String,
    },
    /// A program ended and was reaped.
    Exited {
        /// The program's name in the lab (or the client's it served).
        socket: Arc<str>,
        /// How it ended (`None`: the OS could not say).
        status: Option<std::process::ExitStatus>,
    },
    /// A watched UDP socket dropped datagrams: the session's memory budget
    /// for events was spent (the person reads slower than they come).
    Dropped {
        /// The socket's name.
        socket: Arc<str>,
        /// How many datagrams were dropped since the last report.
        datagrams: u64,
    },
    /// A server's connection whose client had left, with nothing left to
    /// read, was closed by socklab: a server keeps at most
    /// `KEEP_DEPARTED` such connections open (its descriptors are not
    /// held forever).
    Retired {
        /// The connection's name (`srv.1`).
        socket: Arc<str>,
        /// Its server.
        listener: Arc<str>,
    },
    /// A relay pair read these bytes from one leg (one read), to forward
    /// them to the other.
    Relayed {
        /// The pair's name (`r.1`).
        pair: Arc<str>,
        /// Which way.
        way: Way,
        /// What the read returned.
        data: Payload,
    },
    /// A relay or chat broker says what it did (an upstream connected or
    /// refused, a half-close forwarded, a fault acted, a client joined or
    /// left).
    Note {
        /// The relay, pair or chat.
        socket: Arc<str>,
        /// What happened, in words.
        text: String,
    },
    /// A chat client sent a line, passed on to the others.
    Chat {
        /// The chat's name.
        chat: Arc<str>,
        /// The client's name (`user1`).
        user: Arc<str>,
        /// The line, without its newline.
        line: Payload,
    },
    /// A watched UNIX listener accepted a client, now known as `conn`.
    UnixAccepted {
        /// The listener's name.
        listener: Arc<str>,
        /// The name given to the accepted connection (`srv.1`).
        conn: Arc<str>,
        /// The client's address (unnamed, unless the client bound one).
        peer: crate::model::UnixAddr,
    },
    /// A TLS server's client finished its handshake: what it agreed.
    TlsReady {
        /// The client's name (`srv.1`).
        socket: Arc<str>,
        /// Version, cipher suite, ALPN, the name asked for.
        facts: Arc<crate::model::TlsFacts>,
    },
    /// A TLS server's handshake with a client failed; the client was let
    /// go (it got no name).
    TlsFailed {
        /// The server's name.
        socket: Arc<str>,
        /// The client.
        peer: SocketAddr,
        /// Why, in words, with the library's text.
        error: crate::model::TlsError,
    },
    /// A watched listener's accept failed; it tries again after `retry_in`.
    AcceptFailed {
        /// The listener's name.
        listener: Arc<str>,
        /// The OS error (often "Too many open files").
        error: io::Error,
        /// The back-off before the next try.
        retry_in: Duration,
    },
    /// A point the shell placed in the stream of events
    /// ([`crate::Lab::mark`]): when it comes out of the channel, every
    /// event sent before it has come out too. Nothing happened; never
    /// shown.
    Mark(u64),
}

impl Event {
    /// The name of the socket the event belongs to.
    pub fn socket(&self) -> &str {
        match self {
            Event::Accepted { listener, .. }
            | Event::UnixAccepted { listener, .. }
            | Event::AcceptFailed { listener, .. } => listener,
            Event::Served { server, .. } => server,
            Event::Relayed { pair, .. } => pair,
            Event::Chat { chat, .. } => chat,
            Event::Note { socket, .. } => socket,
            Event::Segment { from, .. } => from,
            Event::States { socket, .. } => socket,
            Event::Data { socket, .. }
            | Event::Datagram { socket, .. }
            | Event::Message { socket, .. }
            | Event::FrameError { socket, .. }
            | Event::PeerClosed { socket }
            | Event::Reset { socket }
            | Event::Dropped { socket, .. }
            | Event::Retired { socket, .. }
            | Event::Stderr { socket, .. }
            | Event::Started { socket, .. }
            | Event::Exited { socket, .. }
            | Event::TlsReady { socket, .. }
            | Event::TlsFailed { socket, .. }
            | Event::Failed { socket, .. } => socket,
            Event::Mark(_) => "",
        }
    }
}

/// Where background tasks send their events, and the budget the bytes
/// they carry are counted against.
#[derive(Clone)]
pub(crate) struct Sink {
    /// The session's event channel.
    events: mpsc::Sender<Event>,
    /// The session's memory budget for event payloads.
    pub(crate) budget: Budget,
}

impl Sink {
    /// A sink over `events`, with `budget`.
    pub(crate) fn new(events: mpsc::Sender<Event>, budget: Budget) -> Sink {
        Sink { events, budget }
    }

    /// Sends an event (waits while the channel is full).
    ///
    /// # Errors
    /// Nobody receives any more.
    pub(crate) async fn send(&self, ev: Event) -> Result<(), mpsc::error::SendError<Event>> {
        self.events.send(ev).await
    }
}
