//! `log`: the lab opens and closes traffic logs (`tap.rs` writes them) and
//! tells a pcap log which ports are the lab's.

use std::path::Path;

use super::Lab;
use crate::error::Result;
use crate::tap::{self, LogForm, LogInfo};

impl Lab {
    /// Starts logging to `path` (created 0600 if missing, appended to):
    /// every byte of the streams named in `names` (a name covers `NAME`
    /// and `NAME.N`; none: every stream, present and future) as text or a
    /// hex dump, or (pcap) the frames on `lo` of the lab's TCP ports.
    ///
    /// # Errors
    /// The file cannot be opened or is open as a log already; a pcap file
    /// that is not one; capturing is not permitted.
    pub fn log_open(&self, path: &Path, form: LogForm, names: Vec<String>) -> Result<LogInfo> {
        let ports = if form == LogForm::Pcap {
            self.trace_view().ports
        } else {
            Vec::new()
        };
        tap::open(path, form, names, &ports)
    }

    /// Closes the log at `path`, or every log: what was logged is in the
    /// file when this returns. Returns what each closed log did.
    ///
    /// # Errors
    /// No log is open at `path`.
    pub async fn log_off(&self, path: Option<&Path>) -> Result<Vec<LogInfo>> {
        tap::close(path).await
    }

    /// The open logs, in the order they were opened.
    pub fn logs(&self) -> Vec<LogInfo> {
        tap::list()
    }

    /// After a command: a pcap log keeps the segments of the lab's TCP
    /// ports as they are now.
    pub(super) fn log_track(&self) {
        if tap::wants_ports() {
            tap::track_ports(&self.trace_view().ports);
        }
    }
}
