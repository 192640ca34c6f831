//! File servers in the lab: a listener whose clients are served by the
//! transfer protocol (`serve files`) or saved raw until EOF (`serve raw`),
//! one task per connection, each reported as one event.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::error::{NetError, Result};
use crate::event::{Event, Transfer};
use crate::lab::{accept_backoff, lock, Background, Entry, Lab, State, SETTLE_LIMIT};
use crate::transfer::{self, ReceiverConfig};
use crate::SocketInfo;

/// How many transfers one file server runs at once; more clients wait in
/// the accept queue.
pub const MAX_TRANSFERS: usize = 64;
/// How many finished clients a file server remembers, to settle uploads
/// from this lab.
const SERVED_MEMORY: usize = 1024;

/// What a file server does with each connection.
#[derive(Debug, Clone)]
pub enum FileService {
    /// The verified transfer protocol: uploads into the directory,
    /// downloads from it.
    Files(ReceiverConfig),
    /// Save what the connection sends, until EOF, as this file (the
    /// lecture's §12 server, done safely).
    Raw {
        /// Where the bytes go (through a temporary file, renamed at EOF).
        dest: PathBuf,
        /// Replace an existing file.
        overwrite: bool,
    },
}

impl Lab {
    /// A server on `addr` whose every client is served as `service` says.
    ///
    /// # Errors
    /// The name is taken, or the OS refused (address in use, …).
    pub fn serve_files(
        &self,
        addr: SocketAddr,
        name: Option<&str>,
        service: FileService,
    ) -> Result<SocketInfo> {
        let name = self.claim_name(name)?;
        let (e, listener) = self.server_entry(name, addr, 1024)?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(files_loop(
            self.clone(),
            e.clone(),
            listener,
            Arc::new(service),
            cancel.clone(),
        ));
        *lock(&e.background) = Some(Background {
            cancel,
            task,
            wake: None,
        });
        self.bump();
        Ok(e.info())
    }

    /// Takes a connection out of the lab, for a transfer to own: its
    /// background reader stops and the name is free again.
    ///
    /// # Errors
    /// Not a connection, or busy elsewhere.
    pub async fn take_stream(&self, name: &str) -> Result<TcpStream> {
        let e = self.get(name)?;
        e.stream()?;
        e.stop_background().await;
        let e = lock(&self.inner.sockets)
            .remove(name)
            .ok_or_else(|| NetError::NoSuchSocket(name.to_string()))?;
        let state = std::mem::replace(&mut *lock(&e.state), State::Closed);
        let State::Stream(arc) = state else {
            return Err(NetError::state(name, "is not a connection"));
        };
        Arc::try_unwrap(arc).map_err(|_| NetError::state(name, "is in use"))
    }

    /// After a transfer from `local` to `server` has ended on this side:
    /// when the server is a file server of this lab, waits until it has
    /// reported its side of that transfer.
    ///
    /// # Errors
    /// The server did not report in time.
    pub async fn settle_served(&self, local: SocketAddr, server: SocketAddr) -> Result<()> {
        let Some(e) = self.file_server_at(server) else {
            return Ok(());
        };
        let mut rx = self.inner.generation.subscribe();
        let wait = async {
            while !lock(&e.served).contains(&local) {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(SETTLE_LIMIT, wait)
            .await
            .map_err(|_| NetError::Timeout {
                what: format!("waiting for {} to report the transfer", e.name),
                after: SETTLE_LIMIT,
            })
    }

    fn file_server_at(&self, addr: SocketAddr) -> Option<Arc<Entry>> {
        lock(&self.inner.sockets)
            .values()
            .find(|l| l.is_file_server() && l.listens_at(addr))
            .cloned()
    }
}

impl Entry {
    fn is_file_server(&self) -> bool {
        *lock(&self.file_server)
    }
}

async fn files_loop(
    lab: Lab,
    e: Arc<Entry>,
    listener: Arc<TcpListener>,
    service: Arc<FileService>,
    cancel: CancellationToken,
) {
    *lock(&e.file_server) = true;
    let events = lab.inner.events.clone();
    let slots = Arc::new(Semaphore::new(MAX_TRANSFERS));
    let mut backoff = Duration::from_millis(10);
    loop {
        // A slot first: past the limit, clients wait in the accept queue.
        let permit = tokio::select! {
            _ = cancel.cancelled() => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                e.accepted.fetch_add(1, Ordering::SeqCst);
                let (lab, e, service, events) =
                    (lab.clone(), e.clone(), service.clone(), events.clone());
                tokio::spawn(async move {
                    let outcome = match &*service {
                        FileService::Files(cfg) => {
                            Transfer::Files(transfer::serve_connection(stream, cfg).await)
                        }
                        FileService::Raw { dest, overwrite } => {
                            Transfer::Raw(transfer::receive_raw(stream, dest, *overwrite).await)
                        }
                    };
                    // Reported before the settling waiter can see it.
                    let _ = events
                        .send(Event::Served {
                            server: e.name.clone(),
                            peer,
                            outcome: Box::new(outcome),
                        })
                        .await;
                    {
                        let mut served = lock(&e.served);
                        served.push(peer);
                        if served.len() > SERVED_MEMORY {
                            served.remove(0);
                        }
                    }
                    lab.bump();
                    drop(permit);
                });
            }
            Err(error) => {
                drop(permit);
                if !accept_backoff(&events, &e.name, error, &mut backoff, &cancel).await {
                    return;
                }
            }
        }
    }
}
