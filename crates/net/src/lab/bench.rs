//! `bench serve`: a bench server is a listener of the lab (listed by
//! `sockets`, closed by `close`, ended with the session) whose clients are
//! served by `bench::serve`; and which lab entry a `bench` command names.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use super::{Kind, Lab};
use crate::bench::serve::Server;
use crate::error::{NetError, Result};
use crate::listener::Service;
use crate::model::SocketInfo;
use crate::netns;

/// With port 0, how many ports the OS picks for UDP before one is free for
/// TCP too.
const PORT_TRIES: u32 = 16;

impl Lab {
    /// A bench server on `addr`, TCP and UDP on the same port (port 0: the
    /// OS picks one free for both).
    ///
    /// # Errors
    /// The name is taken, or the OS refused (address in use, …).
    pub fn serve_bench(&self, addr: SocketAddr, name: Option<&str>) -> Result<SocketInfo> {
        netns::guard(netns::current().as_deref(), addr.ip())?;
        if netns::current().is_some() {
            return Err(NetError::state(
                name.unwrap_or("bench"),
                "bench servers run in this shell's own network namespace, not on a lab host",
            ));
        }
        let tries = if addr.port() == 0 { PORT_TRIES } else { 1 };
        let mut last = None;
        for _ in 0..tries {
            let udp = UdpSocket::bind(addr).map_err(|e| NetError::Os {
                op: "bind (the bench server's UDP echo)",
                source: e,
            })?;
            let at = udp.local_addr().map_err(NetError::os("bind"))?;
            let server = Service::Bench(Arc::new(Server::new(udp)));
            match self.server(at, 1024, name, server) {
                Ok(info) => return Ok(info),
                Err(e) if addr.port() == 0 && is_in_use(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| NetError::state("bench", "no free port")))
    }

    /// The address of the bench server `name` of this lab.
    ///
    /// # Errors
    /// No such entry, or it is no bench server.
    pub fn bench_addr(&self, name: &str) -> Result<SocketAddr> {
        let e = self.get(name)?;
        let kind = crate::settle::lock(&e.kind);
        match &*kind {
            Kind::Listener(l) if matches!(l.service, Service::Bench(_)) => l
                .local()
                .ok_or_else(|| NetError::state(name, "has no address")),
            _ => Err(NetError::state(
                name,
                "is no bench server (start one with `bench serve PORT`, or give HOST PORT)",
            )),
        }
    }

    /// Whether a bench server of this lab listens at `addr`.
    pub fn is_bench_server(&self, addr: SocketAddr) -> bool {
        self.listeners().iter().any(|l| {
            matches!(l.service, Service::Bench(_))
                && l.local().is_some_and(|a| {
                    a.port() == addr.port() && (a.ip() == addr.ip() || a.ip().is_unspecified())
                })
        })
    }
}

fn is_in_use(e: &NetError) -> bool {
    e.os_error()
        .is_some_and(|e| e.raw_os_error() == Some(libc::EADDRINUSE))
}
