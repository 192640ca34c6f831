//! File servers' service: what one client of `serve files` or `serve raw`
//! gets (the transfer protocol, or its bytes saved raw until EOF).

use std::path::PathBuf;

use tokio::net::TcpStream;

use crate::event::Transfer;
pub(crate) use crate::transfer::Admission;
use crate::transfer::{self, ReceiverConfig};

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

/// Serves one client as `service` says (a `Files` client admitted by
/// `admission`); what happened, for the report.
pub(crate) async fn serve_one(
    stream: TcpStream,
    service: &FileService,
    admission: &Admission,
) -> Transfer {
    match service {
        FileService::Files(cfg) => {
            Transfer::Files(transfer::serve_admitted(stream, cfg, admission).await)
        }
        FileService::Raw { dest, overwrite } => {
            Transfer::Raw(transfer::receive_raw(stream, dest, *overwrite).await)
        }
    }
}
