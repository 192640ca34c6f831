//! Where output goes (standard output, or above the line being typed on a
//! terminal), and the settings that say how it looks.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use rustyline::ExternalPrinter;

use crate::render::{Format, Tmp};

/// Where output goes.
pub struct Out {
    /// On a terminal: rustyline's printer, which prints above the line being
    /// typed (and straight to the terminal when no line is being read).
    printer: Option<Mutex<Box<dyn ExternalPrinter + Send>>>,
    /// Print nothing for now (a guided lesson's `back` runs the steps
    /// before again without showing them).
    muted: AtomicBool,
    /// Print nothing (tests that only care that nothing panics).
    #[cfg(test)]
    quiet: bool,
}

impl Out {
    /// Plain standard output (scripts).
    pub fn plain() -> Out {
        Out {
            printer: None,
            muted: AtomicBool::new(false),
            #[cfg(test)]
            quiet: false,
        }
    }

    /// Output that goes nowhere.
    #[cfg(test)]
    pub fn quiet() -> Out {
        Out {
            printer: None,
            muted: AtomicBool::new(false),
            quiet: true,
        }
    }

    /// Through rustyline's external printer (the REPL).
    pub fn terminal(printer: Box<dyn ExternalPrinter + Send>) -> Out {
        Out {
            printer: Some(Mutex::new(printer)),
            muted: AtomicBool::new(false),
            #[cfg(test)]
            quiet: false,
        }
    }

    /// Stops printing (`true`) or prints again (`false`).
    pub fn mute(&self, on: bool) {
        self.muted.store(on, Ordering::SeqCst);
    }

    /// Prints one message (one or more lines).
    pub fn line(&self, msg: &str) {
        if self.muted.load(Ordering::SeqCst) {
            return;
        }
        #[cfg(test)]
        if self.quiet {
            return;
        }
        let msg = &*crate::stable::apply(msg);
        if let Some(p) = &self.printer {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            if p.print(format!("{msg}\n")).is_ok() {
                return;
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{msg}");
        let _ = out.flush();
    }
}

/// How output looks, shared by the session (which changes it) and the
/// printer of reports (which may run on a task of its own).
#[derive(Default)]
pub struct Settings {
    /// How bytes are shown ([`Format::index`]).
    format: AtomicU8,
    /// The session's temporary directory, once `{tmp}` has made it.
    tmp: OnceLock<PathBuf>,
}

impl Settings {
    /// How bytes are shown.
    pub fn format(&self) -> Format {
        Format::from_index(self.format.load(Ordering::Relaxed))
    }

    /// Changes how bytes are shown.
    pub fn set_format(&self, f: Format) {
        self.format.store(f.index(), Ordering::Relaxed);
    }

    /// The temporary directory, to show paths under it as `{tmp}/…`.
    pub fn tmp(&self) -> Tmp<'_> {
        Tmp(self.tmp.get().map(PathBuf::as_path))
    }

    /// Records the temporary directory (the first one made stays).
    pub fn set_tmp(&self, dir: PathBuf) {
        let _ = self.tmp.set(dir);
    }
}
