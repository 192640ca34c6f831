//! One session: the lab, the settings, where output goes, and running one
//! line.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use regex::Regex;
use rustyline::ExternalPrinter;
use socklab_net::{Event, Lab};
use socklab_tasks::{Jobs, Line};
use tokio::sync::mpsc;

use crate::args::{Args, CmdError, CmdResult};
use crate::commands;
use crate::parse::{self, Span};
use crate::render::{self, Format};

/// Where output goes.
pub struct Out {
    /// On a terminal: rustyline's printer, which prints above the line being
    /// typed (and straight to the terminal when no line is being read).
    printer: Option<Mutex<Box<dyn ExternalPrinter + Send>>>,
    /// Print nothing (tests that only care that nothing panics).
    #[cfg(test)]
    quiet: bool,
}

impl Out {
    /// Plain standard output (scripts).
    pub fn plain() -> Out {
        Out {
            printer: None,
            #[cfg(test)]
            quiet: false,
        }
    }

    /// Output that goes nowhere.
    #[cfg(test)]
    pub fn quiet() -> Out {
        Out {
            printer: None,
            quiet: true,
        }
    }

    /// Through rustyline's external printer (the REPL).
    pub fn terminal(printer: Box<dyn ExternalPrinter + Send>) -> Out {
        Out {
            printer: Some(Mutex::new(printer)),
            #[cfg(test)]
            quiet: false,
        }
    }

    /// Prints one message (one or more lines).
    pub fn line(&self, msg: &str) {
        #[cfg(test)]
        if self.quiet {
            return;
        }
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

/// Settings shared with the background printer.
#[derive(Default)]
pub struct Settings {
    format: AtomicU8,
}

impl Settings {
    /// How bytes are shown.
    pub fn format(&self) -> Format {
        Format::from_index(self.format.load(Ordering::Relaxed))
    }
}

/// The state of one session.
pub struct Session {
    /// Every socket.
    pub lab: Lab,
    /// Shared settings.
    pub settings: Arc<Settings>,
    /// Where output goes.
    pub out: Arc<Out>,
    /// How long a waiting command waits when it names no timeout (scripts).
    pub wait_limit: Option<Duration>,
    /// Set by `quit`.
    pub quit: bool,
    /// Jobs started by `spawn`.
    pub jobs: Jobs,
    /// Where job lines arrive, in script mode (on a terminal a printer task
    /// owns the receiver).
    pub job_lines: Option<mpsc::Receiver<Line>>,
    /// Lines of background jobs not yet printed, by job.
    pub held_lines: HashMap<String, Vec<Line>>,
    /// This process's id, to say which lines come from the shell's process.
    pub shell_pid: u32,
    /// On a terminal (lines print as they come) rather than a script.
    pub interactive: bool,
    /// `{tmp}`: a directory of this session's own, removed when it ends.
    tmp: std::sync::OnceLock<Option<tempfile::TempDir>>,
}

impl Session {
    /// A session over `lab`.
    pub fn new(lab: Lab, out: Arc<Out>, wait_limit: Option<Duration>) -> Session {
        let (jobs, job_lines) = Jobs::new(1024);
        Session {
            lab,
            settings: Arc::new(Settings::default()),
            out,
            wait_limit,
            quit: false,
            jobs,
            job_lines: Some(job_lines),
            held_lines: HashMap::new(),
            shell_pid: std::process::id(),
            interactive: wait_limit.is_none(),
            tmp: std::sync::OnceLock::new(),
        }
    }

    /// Prints a line of a command's output.
    pub fn say(&self, msg: impl AsRef<str>) {
        self.out.line(msg.as_ref());
    }

    /// How bytes are shown.
    pub fn format(&self) -> Format {
        self.settings.format()
    }

    /// Changes how bytes are shown.
    pub fn set_format(&self, f: Format) {
        self.settings.format.store(f.index(), Ordering::Relaxed);
    }

    /// Replaces `{NAME.port}`, `{NAME.host}` and `{NAME.addr}` with the
    /// local port, host or address of socket NAME (so a script can name a
    /// port the OS picked). Anything else in braces stays as it is.
    pub fn expand(&self, line: &str) -> String {
        let line = self.expand_tmp(line);
        let line = line.as_str();
        static FIELD: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\.(port|host|addr)\}").expect("valid regex")
        });
        FIELD
            .replace_all(line, |c: &regex::Captures<'_>| {
                let whole = c[0].to_string();
                let addr = self.lab.info(&c[1]).ok().and_then(|i| i.local);
                match addr.or_else(|| self.lab.closed_addr(&c[1])) {
                    Some(a) => match &c[2] {
                        "port" => a.port().to_string(),
                        "host" => a.ip().to_string(),
                        _ => a.to_string(),
                    },
                    None => whole,
                }
            })
            .into_owned()
    }

    /// Replaces `{tmp}` with this session's own temporary directory (made
    /// at first use, removed at exit).
    fn expand_tmp(&self, line: &str) -> String {
        if !line.contains("{tmp}") {
            return line.to_string();
        }
        let dir = self
            .tmp
            .get_or_init(|| tempfile::Builder::new().prefix("socklab-").tempdir().ok());
        match dir {
            Some(d) => {
                let _ = render::TMP.set(d.path().to_path_buf());
                line.replace("{tmp}", &d.path().display().to_string())
            }
            None => line.to_string(),
        }
    }

    /// Parses and runs one line.
    pub async fn execute(&mut self, line: &str) -> CmdResult {
        let toks = parse::tokenize(line).map_err(|e| CmdError::at(e.span, e.message))?;
        let mut toks = toks.into_iter();
        let Some(first) = toks.next() else {
            return Ok(());
        };
        let Some(name) = first.word() else {
            return Err(CmdError::at(first.span, "expected a command name"));
        };
        let Some(cmd) = commands::find(name) else {
            let e = CmdError::at(first.span, format!("unknown command '{name}'"));
            return Err(match commands::nearest(name) {
                Some(n) => CmdError {
                    message: format!("unknown command '{name}'; did you mean '{n}'?"),
                    ..e
                },
                None => e.hint("`help` lists the commands"),
            });
        };
        let end = line.trim_end().len();
        let args = Args::new(line, toks.collect(), Span { start: end, end });
        let usage = cmd.usage;
        let result = (cmd.run)(self, args).await;
        // What the command made cross the wire (trace on) belongs to it.
        self.lab.trace_settle().await;
        result.map_err(|mut e| {
            if e.exit == crate::args::Exit::Usage
                && e.hint.is_none()
                && e.message.starts_with("missing")
            {
                e.hint = Some(format!("usage: {}", usage.replace('\n', " | ")));
            }
            e
        })
    }
}

/// Formats an error for the person: the message, the line with a caret
/// under the column when there is one, and the hint.
pub fn error_text(prefix: &str, line: &str, e: &CmdError) -> String {
    let mut s = format!("{prefix}error: {}", e.message);
    if let Some(span) = e.span {
        let (shown, span) = render::hide_tmp_in_line(line, span);
        s.push('\n');
        s.push_str(&parse::caret(&shown, span, "  "));
    }
    if let Some(h) = &e.hint {
        s.push_str("\n  ");
        s.push_str(h);
    }
    s
}

/// Events that arrived while a script command ran, kept in arrival order
/// and printed after the command's own output. Consecutive reads of one
/// socket are merged into one message, since how the kernel cut a stream
/// into reads is timing, not content.
#[derive(Default)]
pub struct Pending {
    items: Vec<PendingItem>,
}

enum PendingItem {
    Data {
        socket: Arc<str>,
        shown: BytesMut,
        total: usize,
    },
    Other(Event),
}

/// How many bytes of merged data are kept for display.
const PENDING_SHOWN: usize = 4096;
/// Past this many pending items, older ones are printed at once.
const PENDING_MAX: usize = 10_000;

impl Pending {
    /// Adds an event.
    pub fn push(&mut self, ev: Event, out: &Out, format: Format) {
        if let Event::Data { socket, data } = &ev {
            if let Some(PendingItem::Data {
                socket: s,
                shown,
                total,
            }) = self.items.last_mut()
            {
                if s == socket {
                    let room = PENDING_SHOWN.saturating_sub(shown.len());
                    shown.extend_from_slice(&data[..data.len().min(room)]);
                    *total += data.len();
                    return;
                }
            }
            let mut shown = BytesMut::new();
            shown.extend_from_slice(&data[..data.len().min(PENDING_SHOWN)]);
            self.items.push(PendingItem::Data {
                socket: socket.clone(),
                shown,
                total: data.len(),
            });
        } else {
            self.items.push(PendingItem::Other(ev));
        }
        if self.items.len() > PENDING_MAX {
            let first = self.items.remove(0);
            print_item(first, out, format);
        }
    }

    /// Prints and forgets everything pending.
    pub fn flush(&mut self, out: &Out, format: Format) {
        for item in self.items.drain(..) {
            print_item(item, out, format);
        }
    }
}

fn print_item(item: PendingItem, out: &Out, format: Format) {
    match item {
        PendingItem::Data {
            socket,
            shown,
            total,
        } => {
            out.line(&format!(
                "{socket} <- {}",
                render::payload(&shown, total, format)
            ));
        }
        PendingItem::Other(ev) => out.line(&render::event(&ev, format)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Words of the command language, right and wrong, so random lines reach
    /// deep into the handlers instead of stopping at "unknown command".
    const WORDS: &[&str] = &[
        "socket",
        "tcp",
        "v4",
        "v6",
        "as",
        "x",
        "y",
        "srv",
        "srv.1",
        "listen",
        "0",
        "5",
        "127.0.0.1",
        "::1",
        "localhost",
        "connect",
        "send",
        "recv",
        "accept",
        "close",
        "shutdown",
        "read",
        "write",
        "both",
        "set",
        "get",
        "reuseaddr",
        "linger",
        "rcvbuf",
        "on",
        "off",
        "1K",
        "10ms",
        "0s",
        "timeout",
        "expect",
        "/a+/",
        "/[/",
        "\"q\"",
        "'\\x00'",
        "hex:00ff",
        "hex:0",
        "sockets",
        "format",
        "hex",
        "bind",
        "watch",
        "{x.port}",
        "{srv.addr}",
        "70000",
        "-1",
        "echo",
        "help",
        "sleep",
        "backlog",
        "\"",
        "#",
        "!",
        "é",
        "敲代码",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// No line, however wrong, panics the shell; each gives Ok or one error.
        #[test]
        fn random_command_lines_never_panic(
            lines in prop::collection::vec(prop::collection::vec(prop::sample::select(WORDS), 0..7), 1..10),
            junk in "\\PC{0,24}",
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let (lab, rx) = rt.block_on(async { Lab::new(64) });
            drop(rx);
            let mut s = Session::new(lab.clone(), Arc::new(Out::quiet()), Some(Duration::from_millis(20)));
            for words in lines.iter().map(|w| w.join(" ")).chain([junk.clone()]) {
                // Commands that create files at a path are left out: a test
                // writes only in directories of its own.
                let first = words.split_whitespace().next().unwrap_or("");
                if ["write", "mkdir", "serve", "upload", "download"].contains(&first) {
                    continue;
                }
                let line = s.expand(&words);
                let _ = rt.block_on(s.execute(&line));
            }
            rt.block_on(lab.close_all());
        }
    }
}
