//! TLS: servers whose clients handshake first (`listen … tls`), TLS
//! connections (`connect … tls`), upgrading a connection in place
//! (`starttls`), and the session's generated certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::Type;

use super::{Kind, Lab};
use crate::conn::{connect_socket, Conn};
use crate::error::{NetError, Result};
use crate::listener::{ServeMode, Service};
use crate::model::Side;
use crate::model::{Family, Mode, SocketInfo};
use crate::netns;
use crate::settle::lock;
use crate::tls::{self, ClientWish, ServerWish, SessionCert, Trust};

impl Lab {
    /// The certificate this session's TLS servers use when given none,
    /// made at first use.
    fn session_cert(&self, name: &str) -> Result<Arc<SessionCert>> {
        let mut cert = lock(&self.inner.session_cert);
        if let Some(c) = &*cert {
            return Ok(c.clone());
        }
        let made = Arc::new(SessionCert::generate().map_err(|error| NetError::TlsSetup {
            name: name.to_string(),
            error,
        })?);
        *cert = Some(made.clone());
        Ok(made)
    }

    /// The session's CA certificate (PEM, for `curl --cacert`) and the
    /// SHA-256 fingerprint of the server certificate it signed; made now
    /// if no server used them yet.
    ///
    /// # Errors
    /// The certificate could not be made.
    pub fn session_ca(&self) -> Result<(String, String)> {
        let c = self.session_cert("session")?;
        Ok((c.ca_pem.clone(), c.fingerprint.clone()))
    }

    /// A server configuration for `wish` (named `name` in errors).
    fn server_config(&self, name: &str, wish: &ServerWish) -> Result<Arc<rustls::ServerConfig>> {
        let session = match &wish.cert {
            Some(_) => None,
            None => Some(self.session_cert(name)?),
        };
        tls::server_config(wish, session.as_deref()).map_err(|error| NetError::TlsSetup {
            name: name.to_string(),
            error,
        })
    }

    fn client_config(&self, name: &str, wish: &ClientWish) -> Result<Arc<rustls::ClientConfig>> {
        let session = match wish.trust {
            Trust::Session => Some(self.session_cert(name)?),
            _ => None,
        };
        tls::client_config(wish, session.as_deref()).map_err(|error| NetError::TlsSetup {
            name: name.to_string(),
            error,
        })
    }

    /// `listen … tls`: a server whose every client does a TLS handshake
    /// first (each within [`tls::HANDSHAKE_LIMIT`], on a task of its own);
    /// a client whose handshake fails is reported and let go. Without a
    /// certificate, the session's generated one serves.
    ///
    /// # Errors
    /// The name is taken, a certificate or key file is not one, the mode
    /// is `thread`, or the OS refused (address in use, …).
    pub fn serve_tls(
        &self,
        addr: SocketAddr,
        backlog: i32,
        name: Option<&str>,
        how: ServeMode,
        wish: &ServerWish,
    ) -> Result<SocketInfo> {
        let shown = name.unwrap_or("the server");
        if how == ServeMode::Thread {
            return Err(NetError::state(
                shown,
                "cannot be a TLS server in mode thread (its reader threads read raw descriptors; use mode task or iterative)",
            ));
        }
        let config = self.server_config(shown, wish)?;
        self.server(addr, backlog, name, Service::events_tls(how, config))
    }

    /// `connect HOST PORT tls`: a TCP connection, then a TLS handshake as
    /// the client (`host` is the name asked for unless `wish.sni` says
    /// otherwise), within `timeout` (else [`tls::HANDSHAKE_LIMIT`]). The
    /// new stream is watched: its plaintext arrives as events.
    ///
    /// # Errors
    /// The name is taken, a CA file is not one, the connect failed, or the
    /// handshake did (its error says why in words).
    pub async fn dial_tls(
        &self,
        to: SocketAddr,
        host: &str,
        name: Option<&str>,
        timeout: Option<Duration>,
        wish: &ClientWish,
    ) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let listener = self
            .listeners()
            .into_iter()
            .find(|l| l.listens_at(netns::current().as_deref(), to));
        if let Some(l) = listener.as_ref().filter(|l| !l.is_tls()) {
            return Err(NetError::state(
                &l.name,
                "is a plain TCP server of this shell: it would take the TLS handshake for data (`listen … tls` makes a TLS server)",
            ));
        }
        let config = self.client_config(&name, wish)?;
        let sni = wish.sni.as_deref().unwrap_or(host);
        let server_name = tls::server_name(sni).map_err(|error| NetError::TlsSetup {
            name: name.to_string(),
            error,
        })?;
        let session = tls::client(config, server_name).map_err(|error| NetError::TlsSetup {
            name: name.to_string(),
            error,
        })?;
        netns::guard(netns::current().as_deref(), to.ip())?;
        let sock = netns::socket(Family::of(&to).domain(), Type::STREAM, None)
            .map_err(NetError::os("socket"))?;
        let stream = connect_socket(sock, to, timeout)
            .await
            .map_err(|(e, _)| e)?;
        let local = stream.local_addr().map_err(NetError::os("getsockname"))?;
        let limit = timeout.unwrap_or(tls::HANDSHAKE_LIMIT);
        match tls::handshake(&stream, session, &[], Side::Client, limit).await {
            Ok((session, facts)) => {
                let outside = !self.lab_tubes_at(netns::current().as_deref(), to);
                let c = Arc::new(Conn::new(name.clone(), stream, None, outside)?);
                tls::upgrade(&c, session, facts)?;
                let e = self.add(name, Kind::Conn(c.clone()))?;
                c.tube.start_reader(self.inner.events.clone());
                self.settle_accept(netns::current().as_deref(), c.local, c.peer)
                    .await?;
                Ok(e.info())
            }
            Err(error) => {
                // Let go first: a server of this lab then reports its side
                // of the failure, and this command settles on that report.
                drop(stream);
                self.settle_accept(netns::current().as_deref(), local, to)
                    .await?;
                Err(NetError::Handshake {
                    name: name.to_string(),
                    error,
                })
            }
        }
    }

    /// `starttls NAME`: the connection carries TLS from now on. A
    /// connection a listener accepted is the TLS server, one that connected
    /// the client. When its other end is a connection of this lab too, both
    /// ends are upgraded together (each plays its part). Readers are
    /// stopped first (no byte of the handshake is taken for data; a hello
    /// the reader took already starts the server's handshake) and started
    /// again after. Returns each end upgraded, NAME first.
    ///
    /// # Errors
    /// Not a TCP connection, TLS already, a certificate file that is not
    /// one, or a failed handshake.
    pub async fn starttls(
        &self,
        name: &str,
        client: &ClientWish,
        server: &ServerWish,
        limit: Option<Duration>,
    ) -> Result<Vec<SocketInfo>> {
        let c = self.get(name)?.conn()?;
        let mut ends = vec![c.clone()];
        if let Some(peer) = self.find_conn(c.peer, c.local) {
            ends.push(peer);
        }
        for end in &ends {
            if end.tls().is_some() {
                return Err(NetError::state(&end.tube.name, "carries TLS already"));
            }
        }
        let limit = limit.unwrap_or(tls::HANDSHAKE_LIMIT);
        let mut plans = Vec::new();
        for end in &ends {
            let side = self.side_of(end);
            let session = match side {
                Side::Server => {
                    let config = self.server_config(&end.tube.name, server)?;
                    tls::server(config)
                }
                Side::Client => {
                    let config = self.client_config(&end.tube.name, client)?;
                    let sni = client
                        .sni
                        .clone()
                        .unwrap_or_else(|| end.peer.ip().to_string());
                    tls::server_name(&sni).and_then(|n| tls::client(config, n))
                }
            }
            .map_err(|error| NetError::TlsSetup {
                name: end.tube.name.to_string(),
                error,
            })?;
            plans.push((side, session));
        }
        // Nobody reads while the stream changes hands.
        let mut watched = Vec::new();
        for end in &ends {
            watched.push(end.tube.mode() == Mode::Watched);
            end.tube.stop_reader().await;
        }
        let shake = |end: &Arc<Conn>, (side, session): (Side, rustls::Connection)| {
            let end = end.clone();
            async move {
                let stream = end.stream()?;
                let early = match side {
                    Side::Server => end.tube.take_early_tls(),
                    Side::Client => bytes::Bytes::new(),
                };
                tls::handshake(&stream, session, &early, side, limit)
                    .await
                    .map_err(|error| NetError::Handshake {
                        name: end.tube.name.to_string(),
                        error,
                    })
            }
        };
        let mut plans = plans.into_iter();
        let results = match (plans.next(), plans.next()) {
            (Some(a), Some(b)) => {
                let (ra, rb) = tokio::join!(shake(&ends[0], a), shake(&ends[1], b));
                vec![ra, rb]
            }
            (Some(a), None) => vec![shake(&ends[0], a).await],
            _ => Vec::new(),
        };
        let mut failure = None;
        for (end, result) in ends.iter().zip(results) {
            match result {
                Ok((session, facts)) => tls::upgrade(end, session, facts)?,
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        // Read again as before (after a failure too: what the peer says
        // next, or its close, shows).
        for (end, watched) in ends.iter().zip(watched) {
            if watched {
                end.tube.start_reader(self.inner.events.clone());
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(ends
            .iter()
            .filter_map(|end| self.info(&end.tube.name).ok())
            .collect())
    }

    /// Which part a connection plays in a TLS handshake: one a listener of
    /// this lab accepted is the server.
    fn side_of(&self, c: &Conn) -> Side {
        let accepted = c.parent.is_some()
            || self
                .listeners()
                .iter()
                .any(|l| l.listens_at(netns::current().as_deref(), c.local));
        if accepted {
            Side::Server
        } else {
            Side::Client
        }
    }
}
