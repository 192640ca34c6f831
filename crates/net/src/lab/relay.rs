//! Relays and chat brokers in the lab: starting them, setting faults,
//! what `sockets` and `info` show of them, and the settlement of the lab's
//! clients that talk through them (the lab is their [`Host`]).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use super::{Entry, Kind, Lab};
use crate::chat::ChatServer;
use crate::conn::Conn;
use crate::error::{NetError, Result};
use crate::event::Sink;
use crate::listener::{Listener, Service};
use crate::model::{Mode, Role, SocketInfo};
use crate::netns;
use crate::relay::{Fault, Faults, Flow, Host, Pair, RelayServer, Settling};
use crate::settle::{lock, wait_until, SETTLE_LIMIT};

impl Host for Lab {
    fn sink(&self) -> Sink {
        self.inner.events.clone()
    }

    fn adopt_pair(&self, pair: Arc<Pair>, order: (u64, u64)) -> Result<()> {
        let entry = Entry::new(pair.name.clone(), order, Kind::Pair(pair));
        self.insert(entry)
    }

    fn forget_pair(&self, name: &str) {
        let mut sockets = lock(&self.inner.sockets);
        let ours = sockets
            .get(name)
            .is_some_and(|e| matches!(&*lock(&e.kind), Kind::Pair(_)));
        if ours {
            sockets.remove(name);
        }
    }

    fn settle_delivered(&self, conn: Arc<Conn>) -> Settling<'_> {
        Box::pin(async move {
            let total = conn.tube.bytes_out();
            if let Some(peer) = self.lab_peer(&conn) {
                let what = || format!("waiting for {} to report", peer.tube.name);
                let _ = wait_until(what, SETTLE_LIMIT, peer.tube.watch_progress(), |p| {
                    !p.watched || p.bytes_in >= total || p.eof || p.failed
                })
                .await;
            } else if let Some(flow) = self.brokered_flow(&conn) {
                let _ = settle_flow(&conn, flow, Some(total)).await;
            }
        })
    }

    fn settle_ended(&self, conn: Arc<Conn>) -> Settling<'_> {
        Box::pin(async move {
            if let Some(peer) = self.lab_peer(&conn) {
                let what = || format!("waiting for {} to report", peer.tube.name);
                let _ = wait_until(what, SETTLE_LIMIT, peer.tube.watch_progress(), |p| {
                    !p.watched || p.eof || p.failed
                })
                .await;
            } else if let Some(flow) = self.brokered_flow(&conn) {
                let _ = settle_flow(&conn, flow, None).await;
            }
        })
    }

    fn settle_accept(&self, local: SocketAddr, peer: SocketAddr) -> Settling<'_> {
        Box::pin(async move {
            let _ = Lab::settle_accept(self, netns::current().as_deref(), local, peer).await;
        })
    }
}

/// Waits until a relay or chat has handled what `c` sent (`Some(total)`:
/// that many bytes; `None`: its end of stream), or holds it (a stall), or
/// ended.
pub(super) async fn settle_flow(
    c: &Conn,
    flow: watch::Receiver<Flow>,
    total: Option<u64>,
) -> Result<()> {
    let what = || format!("waiting for the relay or chat {} talks to", c.tube.name);
    wait_until(what, SETTLE_LIMIT, flow, |f| {
        f.ended || f.held || total.is_some_and(|t| f.done >= t)
    })
    .await
    .map(|_| ())
}

/// A pair as `sockets` lists it: the client's leg, and where it leads.
pub(super) fn pair_info(p: &Pair, info: &mut SocketInfo) {
    let (up, down) = p.moved();
    info.role = Role::Stream;
    info.fd = p.client.fd();
    info.family = Some(p.client.family());
    info.mode = Mode::Watched;
    info.local = Some(p.client.local);
    info.peer = Some(p.client.peer);
    info.bytes_in = up;
    info.bytes_out = down;
    info.tcp_state = p.client.kernel_state();
    let mut state = format!(
        "relaying to {} (from {})",
        p.upstream.peer, p.upstream.local
    );
    let faults = p.faults().words();
    if !faults.is_empty() {
        state.push_str(&format!("; faults: {}", faults.join(", ")));
    }
    info.state = state;
}

/// A relay's or chat's state as `sockets` lists it.
pub(super) fn listener_state(l: &Listener, info: &mut SocketInfo) {
    match &l.service {
        Service::Relay(r) => {
            info.state = format!("relaying to {}", r.upstream);
            let faults = lock(&r.faults).words();
            if !faults.is_empty() {
                info.state
                    .push_str(&format!("; faults: {}", faults.join(", ")));
            }
        }
        Service::Chat(c) => {
            let members: Vec<String> = c
                .members()
                .iter()
                .map(|(u, a)| format!("<{u}> {a}"))
                .collect();
            info.state = if members.is_empty() {
                "chat, nobody connected".to_string()
            } else {
                format!("chat: {}", members.join(", "))
            };
        }
        _ => {}
    }
}

/// Where a fault is set: a relay (its pairs too) or one pair.
enum Target {
    Relay(Arc<RelayServer>),
    Pair(Arc<Pair>),
}

impl Lab {
    /// A relay on `addr`: every client gets a pair of legs (`NAME.1`, …),
    /// its own connection to `upstream`, and every byte either way is an
    /// event.
    ///
    /// # Errors
    /// The name is taken, or the OS refused (address in use, …).
    pub fn relay(
        &self,
        addr: SocketAddr,
        upstream: SocketAddr,
        name: Option<&str>,
    ) -> Result<SocketInfo> {
        // A relay forwards from where it is: its upstream obeys the same
        // rule as a connect made there.
        netns::guard(netns::current().as_deref(), upstream.ip())?;
        let server = Arc::new(RelayServer::new(upstream));
        self.server(addr, 1024, name, Service::Relay(server))
    }

    /// A chat broker on `addr` (`ncat --chat`).
    ///
    /// # Errors
    /// The name is taken, or the OS refused (address in use, …).
    pub fn chat(&self, addr: SocketAddr, name: Option<&str>) -> Result<SocketInfo> {
        let server = Arc::new(ChatServer::default());
        self.server(addr, 1024, name, Service::Chat(server))
    }

    fn fault_target(&self, name: &str) -> Result<Target> {
        let e = self.get(name)?;
        let kind = lock(&e.kind);
        match &*kind {
            Kind::Pair(p) => Ok(Target::Pair(p.clone())),
            Kind::Listener(l) => match &l.service {
                Service::Relay(r) => Ok(Target::Relay(r.clone())),
                _ => Err(NetError::state(
                    name,
                    "is not a relay (faults are set on a relay or one of its pairs)",
                )),
            },
            _ => Err(NetError::state(
                name,
                "is not a relay (faults are set on a relay or one of its pairs)",
            )),
        }
    }

    /// The faults in force on a relay or a pair; `None` for anything else.
    pub fn faults(&self, name: &str) -> Option<Faults> {
        match self.fault_target(name).ok()? {
            Target::Relay(r) => Some(lock(&r.faults).clone()),
            Target::Pair(p) => Some(p.faults()),
        }
    }

    /// Sets (or clears) a fault on a relay (every open pair and every
    /// future one) or on one pair. Once a stall is lifted, waits until what
    /// the lab's sockets sent meanwhile has come through. Returns the
    /// faults now in force.
    ///
    /// # Errors
    /// Not a relay or a pair; what was held did not come through in time.
    pub async fn fault(&self, name: &str, fault: &Fault) -> Result<Faults> {
        let pairs = match self.fault_target(name)? {
            Target::Relay(r) => {
                r.apply(fault);
                r.pairs()
            }
            Target::Pair(p) => {
                p.apply(fault);
                vec![p]
            }
        };
        for p in &pairs {
            self.settle_pair(p).await?;
        }
        Ok(self.faults(name).unwrap_or_default())
    }

    /// Resets a pair, or every pair of a relay, now (SO_LINGER 0, then
    /// close); returns how many pairs.
    ///
    /// # Errors
    /// Not a relay or a pair.
    pub async fn reset_pairs(&self, name: &str) -> Result<usize> {
        let pairs = match self.fault_target(name)? {
            Target::Relay(r) => r.pairs(),
            Target::Pair(p) => vec![p],
        };
        for p in &pairs {
            p.end(true).await;
        }
        Ok(pairs.len())
    }

    /// Waits until what the lab's sockets at either end of `p` sent has
    /// been forwarded (or is held by a stall, or the pair ended).
    async fn settle_pair(&self, p: &Pair) -> Result<()> {
        for leg in [&p.client, &p.upstream] {
            let Some(sender) = self.find_conn(leg.peer, leg.local) else {
                continue;
            };
            if let Some(flow) = p.flow_from(leg.peer, leg.local) {
                settle_flow(&sender, flow, Some(sender.tube.bytes_out())).await?;
            }
        }
        Ok(())
    }

    /// After `c` (a lab socket) connected to a chat: waits until it has
    /// reported the chat's welcome (written before the join was
    /// announced). To a relay whose upstream refused: until it has reported
    /// the close of its leg.
    pub(super) async fn settle_welcome(&self, c: &Conn) -> Result<()> {
        let mut total = None;
        for l in self.listeners() {
            match &l.service {
                Service::Chat(chat) => {
                    if let Some(m) = chat.member_conn(c.local, c.peer) {
                        total = Some(m.tube.bytes_out());
                    }
                }
                Service::Relay(r)
                    if l.listens_at(l.place.as_deref(), c.peer) && r.refused(c.local) =>
                {
                    total = Some(u64::MAX);
                }
                _ => {}
            }
        }
        let Some(total) = total else {
            return Ok(());
        };
        let what = || format!("waiting for {} to report the chat's welcome", c.tube.name);
        wait_until(what, SETTLE_LIMIT, c.tube.watch_progress(), |p| {
            !p.watched || p.eof || p.failed || p.bytes_in >= total
        })
        .await
        .map(|_| ())
    }

    /// The flow of a relay pair or chat that `c` (a lab socket) sends
    /// into, when it is connected to one.
    pub(super) fn brokered_flow(&self, c: &Conn) -> Option<watch::Receiver<Flow>> {
        let sockets: Vec<Arc<Entry>> = lock(&self.inner.sockets).values().cloned().collect();
        sockets.iter().find_map(|e| match &*lock(&e.kind) {
            Kind::Pair(p) => p.flow_from(c.local, c.peer),
            Kind::Listener(l) => match &l.service {
                Service::Chat(chat) => chat.flow_from(c.local, c.peer),
                _ => None,
            },
            _ => None,
        })
    }
}
