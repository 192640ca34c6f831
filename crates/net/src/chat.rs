//! A chat broker (`chat PORT`, as `ncat --chat`): every client is a tube
//! named `<user1>`, `<user2>`, … in join order; every line a client sends
//! goes to all the others as `<userN> line`; joins and leaves are
//! announced to the others in ncat's words (`<announce> 127.0.0.1 is
//! connected as <user1>.`, `<announce> <user1> is disconnected.`).
//!
//! Bounds: a line is at most [`MAX_LINE`] bytes (a client that sends more
//! without a newline is told so and disconnected, so a client holds at most
//! `MAX_LINE` + 16 KiB); a write to a member that does not read gives up
//! after [`SLOW_MEMBER`] and disconnects that member; at most
//! [`MAX_MEMBERS`] members at once (more wait in the accept queue).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::budget::Payload;
use crate::conn::{Accepts, Conn};
use crate::event::{Event, Sink};
use crate::relay::{Flow, Host};
use crate::settle::lock;
use crate::tube::READ_CHUNK;

/// The longest line a member may send (without its newline).
pub const MAX_LINE: usize = 64 * 1024;
/// How many members a chat has at once.
pub const MAX_MEMBERS: usize = 256;
/// How long a write to one member may take before that member is dropped.
const SLOW_MEMBER: Duration = Duration::from_secs(10);

/// A chat's members and numbering (the listener's service).
pub(crate) struct ChatServer {
    /// Accepts reported (once the new member is announced).
    pub(crate) accepts: Arc<Accepts>,
    /// Caps the members.
    pub(crate) slots: Arc<Semaphore>,
    /// The members, in join order.
    members: Mutex<Vec<Arc<Member>>>,
    /// Numbers members.
    next_user: AtomicU64,
}

impl Default for ChatServer {
    fn default() -> ChatServer {
        ChatServer {
            accepts: Arc::default(),
            slots: Arc::new(Semaphore::new(MAX_MEMBERS)),
            members: Mutex::new(Vec::new()),
            next_user: AtomicU64::new(1),
        }
    }
}

impl ChatServer {
    /// The members' names and addresses, in join order.
    pub(crate) fn members(&self) -> Vec<(Arc<str>, SocketAddr)> {
        lock(&self.members)
            .iter()
            .map(|m| (m.user.clone(), m.conn.peer))
            .collect()
    }

    /// The connection of the member at `to` whose client is at `from`.
    pub(crate) fn member_conn(&self, from: SocketAddr, to: SocketAddr) -> Option<Arc<Conn>> {
        lock(&self.members)
            .iter()
            .find(|m| m.conn.peer == from && m.conn.local == to)
            .map(|m| m.conn.clone())
    }

    /// The flow of what the lab socket at `from` sends to the member whose
    /// address is `to`.
    pub(crate) fn flow_from(
        &self,
        from: SocketAddr,
        to: SocketAddr,
    ) -> Option<watch::Receiver<Flow>> {
        lock(&self.members)
            .iter()
            .find(|m| m.conn.peer == from && m.conn.local == to)
            .map(|m| m.flow.subscribe())
    }
}

/// One client of a chat.
struct Member {
    /// `user1`.
    user: Arc<str>,
    /// Its connection.
    conn: Arc<Conn>,
    /// What it sent that was passed on.
    flow: watch::Sender<Flow>,
    /// One writer at a time, so lines from two members never interleave.
    writing: tokio::sync::Mutex<()>,
}

impl Member {
    /// Writes `text` (within [`SLOW_MEMBER`]); `false` when it failed.
    async fn write(&self, text: &[u8]) -> bool {
        let _one = self.writing.lock().await;
        matches!(
            tokio::time::timeout(SLOW_MEMBER, self.conn.tube.send(text)).await,
            Ok(Ok(_))
        )
    }
}

/// `127.0.0.1`, `::1`: how ncat names where a member came from.
fn host_of(a: &SocketAddr) -> String {
    a.ip().to_string()
}

/// Serves one member from join to leave.
pub(crate) async fn serve_client(
    host: Arc<dyn Host>,
    server: Arc<ChatServer>,
    chat: Arc<str>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    cancel: CancellationToken,
) {
    let sink = host.sink();
    let k = server.next_user.fetch_add(1, Ordering::SeqCst);
    let user: Arc<str> = Arc::from(format!("user{k}"));
    let Ok(conn) = Conn::new(Arc::from(format!("{chat}.{k}")), stream, None, false) else {
        server.accepts.announce(peer);
        return;
    };
    let member = Arc::new(Member {
        user: user.clone(),
        conn: Arc::new(conn),
        flow: watch::Sender::new(Flow::default()),
        writing: tokio::sync::Mutex::new(()),
    });
    let others = {
        let mut members = lock(&server.members);
        let others: Vec<Arc<Member>> = members.clone();
        members.push(member.clone());
        others
    };
    let _ = sink
        .send(Event::Note {
            socket: chat.clone(),
            text: format!("{peer} joined as <{user}>"),
        })
        .await;
    let joined = format!("<announce> {} is connected as <{user}>.\n", host_of(&peer));
    let already = if others.is_empty() {
        "nobody".to_string()
    } else {
        others
            .iter()
            .map(|m| format!("{} as <{}>", host_of(&m.conn.peer), m.user))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // The others first (each reported by its lab socket before the next),
    // then the newcomer, whose lab socket may not be in the lab yet: its
    // connect settles on the welcome, written before the accept is announced.
    broadcast(&*host, &server, &member, joined.as_bytes(), &chat, &sink).await;
    let welcome = format!("{joined}<announce> already connected: {already}.\n");
    member.write(welcome.as_bytes()).await;
    host.settle_delivered(member.conn.clone()).await;
    server.accepts.announce(peer);
    let why = tokio::select! {
        _ = cancel.cancelled() => None,
        why = listen(&*host, &server, &member, &chat, &sink) => Some(why),
    };
    lock(&server.members).retain(|m| !Arc::ptr_eq(m, &member));
    if let Some(why) = why {
        let _ = sink
            .send(Event::Note {
                socket: chat.clone(),
                text: format!("<{user}> left ({why})"),
            })
            .await;
        let bye = format!("<announce> <{user}> is disconnected.\n");
        broadcast(&*host, &server, &member, bye.as_bytes(), &chat, &sink).await;
    }
    member.conn.tube.close().await;
    host.settle_ended(member.conn.clone()).await;
    member.flow.send_modify(|f| f.ended = true);
    drop(slot);
}

/// Reads a member's lines and passes each on, until it leaves; says why.
async fn listen(
    host: &dyn Host,
    server: &Arc<ChatServer>,
    member: &Arc<Member>,
    chat: &Arc<str>,
    sink: &Sink,
) -> String {
    let mut partial = BytesMut::new();
    loop {
        let got = member.conn.tube.read_some(READ_CHUNK).await;
        let b = match got {
            Ok(b) if b.is_empty() => return "end of stream".to_string(),
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return "reset by the peer".to_string()
            }
            Err(e) => return e.to_string(),
        };
        partial.extend_from_slice(&b);
        while let Some(i) = partial.iter().position(|&c| c == b'\n') {
            let line = partial.split_to(i + 1).freeze();
            let text = line.slice(..i);
            let charge = sink.budget.take(text.len()).await;
            let _ = sink
                .send(Event::Chat {
                    chat: chat.clone(),
                    user: member.user.clone(),
                    line: Payload::new(text.clone(), charge),
                })
                .await;
            let mut out = Vec::with_capacity(line.len() + member.user.len() + 3);
            out.extend_from_slice(format!("<{}> ", member.user).as_bytes());
            out.extend_from_slice(&line);
            broadcast(host, server, member, &out, chat, sink).await;
        }
        if partial.len() > MAX_LINE {
            let told = format!(
                "<announce> your line is over {MAX_LINE} bytes without a newline: disconnected.\n"
            );
            member.write(told.as_bytes()).await;
            return format!("a line over {MAX_LINE} bytes without a newline: disconnected");
        }
        let n = b.len() as u64;
        member.flow.send_modify(|f| f.done += n);
    }
}

/// Writes `text` to every member but `from`, each reported by its lab
/// socket (if it is one) before this returns. A member that cannot take it
/// within [`SLOW_MEMBER`] is disconnected.
async fn broadcast(
    host: &dyn Host,
    server: &ChatServer,
    from: &Arc<Member>,
    text: &[u8],
    chat: &Arc<str>,
    sink: &Sink,
) {
    let to: Vec<Arc<Member>> = lock(&server.members)
        .iter()
        .filter(|m| !Arc::ptr_eq(m, from))
        .cloned()
        .collect();
    let text = Bytes::copy_from_slice(text);
    for m in to {
        if m.write(&text).await {
            host.settle_delivered(m.conn.clone()).await;
        } else {
            let _ = sink
                .send(Event::Note {
                    socket: chat.clone(),
                    text: format!(
                        "<{}> did not take a line within {SLOW_MEMBER:?}: disconnected",
                        m.user
                    ),
                })
                .await;
            let _ = m.conn.tube.shutdown(std::net::Shutdown::Both).await;
        }
    }
}
