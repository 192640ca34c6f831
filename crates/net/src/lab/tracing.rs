//! `trace on|off` and the report after each command: the lab hands the
//! tracer a view of its TCP sockets.

use std::sync::Arc;

use super::{Kind, Lab};
use crate::error::Result;
use crate::settle::lock;
use crate::trace::{ConnView, TraceMode, TraceWish, Tracer, View};

impl Lab {
    /// Starts tracing. Returns the mode, and why it is not a capture when
    /// a capture was possible to want (or, capturing the LAN's bridge
    /// alone, why not the loopback interface).
    ///
    /// # Errors
    /// A capture was required and is not possible.
    pub fn trace_on(&self, wish: TraceWish) -> Result<(TraceMode, Option<String>)> {
        self.trace_off();
        let (tracer, why) = Tracer::start(wish, &self.trace_view())?;
        let mode = tracer.mode();
        *lock(&self.inner.tracer) = Some(Arc::new(tracer));
        Ok((mode, why))
    }

    /// Stops tracing.
    pub fn trace_off(&self) {
        if let Some(t) = lock(&self.inner.tracer).take() {
            if let Ok(t) = Arc::try_unwrap(t) {
                t.stop();
            }
        }
    }

    /// The mode `trace` runs in, if it is on.
    pub fn tracing(&self) -> Option<TraceMode> {
        lock(&self.inner.tracer).as_ref().map(|t| t.mode())
    }

    /// After a command: lets the connections settle (data acknowledged),
    /// then reports what crossed (capture) or which states were passed
    /// through (observation) as events, so the transcript holds exactly
    /// what the command caused.
    pub async fn trace_settle(&self) {
        self.log_track();
        let Some(tracer) = lock(&self.inner.tracer).clone() else {
            return;
        };
        for ev in tracer.settle(&self.trace_view()).await {
            let _ = self.inner.events.send(ev).await;
        }
    }

    /// What the tracer needs to know of the lab now.
    pub(super) fn trace_view(&self) -> View {
        let mut view = View::default();
        for e in self.sorted() {
            // A host's sockets cross the LAN, the others loopback: their
            // ports are kept apart (a host's port space is its own).
            let ports_before = view.ports.len();
            match &*lock(&e.kind) {
                Kind::Fresh(f) => {
                    let port = f.socket.local_addr().ok().and_then(|a| a.as_socket());
                    view.ports
                        .extend(port.map(|a| a.port()).filter(|p| *p != 0));
                }
                Kind::Listener(l) => {
                    if let Some(local) = l.local() {
                        view.ports.push(local.port());
                        view.listeners.push((l.name.clone(), local));
                    }
                }
                Kind::Conn(c) => {
                    if c.tube.progress().reset {
                        view.resets.push((c.local, c.peer));
                    }
                    view.ports.push(c.local.port());
                    view.conns.push(ConnView {
                        name: c.tube.name.clone(),
                        local: c.local,
                        peer: c.peer,
                        fd: c.fd(),
                        state: c.kernel_state(),
                    });
                }
                Kind::Pair(p) => {
                    let upstream: Arc<str> = Arc::from(format!("{} (upstream)", p.name));
                    for (leg, name) in [(&p.client, p.name.clone()), (&p.upstream, upstream)] {
                        view.ports.push(leg.local.port());
                        view.conns.push(ConnView {
                            name,
                            local: leg.local,
                            peer: leg.peer,
                            fd: leg.fd(),
                            state: leg.kernel_state(),
                        });
                    }
                }
                // trace watches TCP over loopback; UNIX sockets never cross it.
                Kind::Program(_)
                | Kind::Udp(_)
                | Kind::UnixFresh(_)
                | Kind::Unix(_)
                | Kind::UnixDgram(_)
                | Kind::Busy => {}
            }
            if e.place.is_some() {
                let moved = view.ports.split_off(ports_before);
                view.lan_ports.extend(moved);
            }
        }
        let departed = lock(&self.inner.departed);
        view.resets.extend(
            departed
                .iter()
                .filter(|d| d.reset)
                .map(|d| (d.local, d.peer)),
        );
        view.departed = departed
            .iter()
            .map(|d| (d.local, d.peer, d.name.clone()))
            .collect();
        view
    }
}
