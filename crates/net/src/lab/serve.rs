//! The practical commands: servers (`listen PORT`, file servers, `listen
//! … exec`), watched connections (`connect HOST PORT`), programs
//! (`exec`), and switching a stream between watched and manual.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::Type;
use tokio::net::{TcpListener, TcpStream};

use super::{Kind, Lab};
use crate::conn::{connect_socket, Conn};
use crate::error::{NetError, Result};
use crate::exec::{Command, Program};
use crate::files::FileService;
use crate::listener::{Listener, ServeMode, Service};
use crate::model::{Family, SocketInfo};
use crate::netns;
use crate::settle::{lock, SETTLE_LIMIT};

impl Lab {
    /// socket + bind + listen, then accept every client in the background;
    /// clients are named `NAME.1`, `NAME.2`, …. SO_REUSEADDR is set, as
    /// servers do, so a restart does not wait for TIME_WAIT.
    ///
    /// # Errors
    /// The name is taken or the OS refused (address in use, …).
    pub fn serve(
        &self,
        addr: SocketAddr,
        backlog: i32,
        name: Option<&str>,
        how: ServeMode,
    ) -> Result<SocketInfo> {
        self.server(addr, backlog, name, Service::events(how))
    }

    /// A server on `addr` whose every client is served as `service` says
    /// (`serve files`, `serve raw`), one report per client.
    ///
    /// # Errors
    /// The name is taken, or the OS refused (address in use, …).
    pub fn serve_files(
        &self,
        addr: SocketAddr,
        name: Option<&str>,
        service: FileService,
    ) -> Result<SocketInfo> {
        self.server(addr, 1024, name, Service::files(service))
    }

    /// A server on `addr` whose every client is wired to its own run of
    /// `command` (the client's bytes are its stdin, its stdout goes back),
    /// as `ncat --exec` does; each start and exit is an event.
    ///
    /// # Errors
    /// The name is taken, or the OS refused (address in use, …).
    pub fn serve_exec(
        &self,
        addr: SocketAddr,
        backlog: i32,
        name: Option<&str>,
        command: Command,
    ) -> Result<SocketInfo> {
        netns::guard_args(
            std::iter::once(command.program.as_str())
                .chain(command.args.iter().map(String::as_str)),
        )?;
        self.server(addr, backlog, name, Service::exec(command))
    }

    /// socket + SO_REUSEADDR + bind + listen, as servers do (so a restart
    /// does not wait for TIME_WAIT), added to the lab with its service
    /// running.
    pub(super) fn server(
        &self,
        addr: SocketAddr,
        backlog: i32,
        name: Option<&str>,
        service: Service,
    ) -> Result<SocketInfo> {
        netns::guard(netns::current().as_deref(), addr.ip())?;
        let name = self.claim_name(name)?;
        let family = Family::of(&addr);
        let sock = crate::netns::socket(family.domain(), Type::STREAM, None)
            .map_err(NetError::os("socket"))?;
        sock.set_nonblocking(true).map_err(NetError::os("socket"))?;
        sock.set_reuse_address(true)
            .map_err(NetError::os("setsockopt"))?;
        sock.bind(&addr.into()).map_err(NetError::os("bind"))?;
        sock.listen(backlog).map_err(NetError::os("listen"))?;
        let socket = TcpListener::from_std(sock.into()).map_err(NetError::os("listen"))?;
        let order = self.next_order();
        let l = Arc::new(Listener::new(
            name.clone(),
            order,
            socket,
            service,
            netns::current(),
        ));
        let e = super::Entry::new(name, (order, 0), Kind::Listener(l.clone()));
        self.insert(e.clone())?;
        l.start(Arc::new(self.clone()));
        Ok(e.info())
    }

    /// Connects a new socket to `to`; its data arrives as events.
    ///
    /// # Errors
    /// The name is taken, refused, or timed out.
    pub async fn dial(
        &self,
        to: SocketAddr,
        name: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<SocketInfo> {
        netns::guard(netns::current().as_deref(), to.ip())?;
        let name = self.claim_name(name)?;
        let sock = crate::netns::socket(Family::of(&to).domain(), Type::STREAM, None)
            .map_err(NetError::os("socket"))?;
        let stream = connect_socket(sock, to, timeout)
            .await
            .map_err(|(e, _)| e)?;
        let outside = !self.lab_tubes_at(netns::current().as_deref(), to);
        let c = Arc::new(Conn::new(name.clone(), stream, None, outside)?);
        let e = self.add(name, Kind::Conn(c.clone()))?;
        c.tube.start_reader(self.inner.events.clone());
        // A TLS server of this lab reports its client once a handshake is
        // done, and this plain client will not make one.
        let place = netns::current();
        let tls_server = self
            .listeners()
            .iter()
            .any(|l| l.is_tls() && l.listens_at(place.as_deref(), to));
        if !tls_server {
            self.settle_accept(place.as_deref(), c.local, c.peer)
                .await?;
            self.settle_welcome(&c).await?;
        }
        Ok(e.info())
    }

    /// A new connection to listener `name` of this lab, not added to the
    /// lab (a transfer's stream). It is made in the current place, or, from
    /// the root namespace, in the listener's own host.
    ///
    /// # Errors
    /// No such listener, or the connect failed.
    pub async fn listener_stream(&self, name: &str) -> Result<TcpStream> {
        let to = self.connect_addr_of(name)?;
        let place = netns::current().or_else(|| self.get(name).ok().and_then(|e| e.place.clone()));
        netns::guard(place.as_deref(), to.ip())?;
        let sock = netns::socket_in(
            place.as_deref(),
            Family::of(&to).domain(),
            Type::STREAM,
            None,
        )
        .map_err(NetError::os("socket"))?;
        connect_socket(sock, to, None).await.map_err(|(e, _)| e)
    }

    /// Starts `command` with its stdin and stdout as a stream of the lab
    /// (read in the background: its output arrives as events); its stderr
    /// and its exit are events too.
    ///
    /// # Errors
    /// The name is taken, or the program cannot be started.
    pub fn exec(&self, command: Command, name: Option<&str>) -> Result<SocketInfo> {
        netns::guard_args(
            std::iter::once(command.program.as_str())
                .chain(command.args.iter().map(String::as_str)),
        )?;
        let name = self.claim_name(name)?;
        let p = Arc::new(Program::start(
            name.clone(),
            command,
            self.inner.events.clone(),
        )?);
        let e = self.add(name, Kind::Program(p.clone()))?;
        p.tube.start_reader(self.inner.events.clone());
        Ok(e.info())
    }

    /// Switches a stream between watched (background reads, events) and
    /// manual (reads on request).
    ///
    /// # Errors
    /// Not a connection, a program or a UDP socket.
    pub async fn set_watch(&self, name: &str, on: bool) -> Result<()> {
        let e = self.get(name)?;
        if let Ok(u) = e.udp() {
            if on && !u.has_reader() {
                u.start_reader(self.inner.events.clone());
            } else if !on {
                u.stop_reader().await;
            }
            return Ok(());
        }
        let tube = e.tube()?;
        if !on {
            tube.stop_reader().await;
        } else if !tube.has_reader() && !tube.progress().eof {
            tube.start_reader(self.inner.events.clone());
        }
        Ok(())
    }

    /// Takes a connection out of the lab, for a transfer to own: its
    /// background reader stops and the name is free again.
    ///
    /// # Errors
    /// Not a connection, or busy elsewhere.
    pub async fn take_stream(&self, name: &str) -> Result<TcpStream> {
        let e = self.get(name)?;
        let c = e.conn()?;
        if c.tls().is_some() {
            return Err(NetError::state(
                name,
                "carries TLS: file transfers run over plain TCP connections only",
            ));
        }
        c.tube.stop_reader().await;
        let Kind::Conn(owned) = std::mem::replace(&mut *lock(&e.kind), Kind::Busy) else {
            return Err(NetError::state(name, "is busy"));
        };
        drop(owned);
        match Arc::try_unwrap(c) {
            Ok(c) => {
                lock(&self.inner.sockets).remove(name);
                // Gone from the lab: an iterative server serving it moves on.
                if let Some(parent) = &c.parent {
                    parent.done_with(c.peer);
                }
                c.tube.mark_closed();
                c.into_stream()
            }
            Err(c) => {
                // Still held elsewhere: it stays in the lab as it was.
                *lock(&e.kind) = Kind::Conn(c);
                Err(NetError::state(name, "is in use"))
            }
        }
    }

    /// After a transfer from `local` to `server` has ended on this side:
    /// when the server is a file server of this lab, waits until it has
    /// reported its side of that transfer.
    ///
    /// # Errors
    /// The server did not report in time.
    pub async fn settle_served(&self, local: SocketAddr, server: SocketAddr) -> Result<()> {
        let listener = self
            .listeners()
            .into_iter()
            .find(|l| l.listens_at(netns::current().as_deref(), server));
        match listener {
            Some(l) => l.settle_finished(local, SETTLE_LIMIT).await,
            None => Ok(()),
        }
    }
}
