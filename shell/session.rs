//! One session's state: the lab, the jobs, where output goes, its settings
//! and its temporary directory. Running a line is `dispatch`'s; opening and
//! closing a session is `driver`'s.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use regex::Regex;
use socklab_net::hosts::Hosts;
use socklab_net::Lab;
use socklab_tasks::Jobs;

use crate::render::{Format, Tmp};
use crate::report::{JobLines, Printer};

/// The state of one session.
pub struct Session {
    /// Every socket.
    pub lab: Lab,
    /// Jobs started by `spawn`.
    pub jobs: Jobs,
    /// Where output and reports go, and how they look.
    pub printer: Arc<Printer>,
    /// Job lines on their way to the command that follows their job
    /// (scripts).
    pub job_lines: Arc<JobLines>,
    /// How long a waiting command waits when it names no timeout (scripts).
    pub wait_limit: Option<Duration>,
    /// Set by `quit`.
    pub quit: bool,
    /// On a terminal (lines print as they come) rather than a script.
    pub interactive: bool,
    /// The stream the command that just ran closed: in a script, what that
    /// stream's outside peer reported is printed after it.
    pub closed_stream: Option<String>,
    /// The last [`socklab_net::Event::Mark`] the REPL's printer took out of
    /// the stream of events (`None` where no printer task runs: scripts).
    pub marks: Option<tokio::sync::watch::Receiver<u64>>,
    /// `{tmp}`: a directory of this session's own, removed when it ends.
    tmp: OnceLock<Option<tempfile::TempDir>>,
    /// The lab's hosts (`host add`), removed when it ends.
    pub hosts: Arc<Mutex<Hosts>>,
    /// The lesson `lesson N` asked the REPL to walk (an index of
    /// `guide::LESSONS`).
    pub lesson: Option<usize>,
}

impl Session {
    /// A session over `lab` and `jobs`; a script when it has a
    /// `wait_limit`, a terminal when not.
    pub fn new(
        lab: Lab,
        jobs: Jobs,
        printer: Arc<Printer>,
        job_lines: Arc<JobLines>,
        wait_limit: Option<Duration>,
    ) -> Session {
        Session {
            lab,
            jobs,
            printer,
            job_lines,
            wait_limit,
            quit: false,
            interactive: wait_limit.is_none(),
            closed_stream: None,
            marks: None,
            tmp: OnceLock::new(),
            hosts: Arc::new(Mutex::new(Hosts::new())),
            lesson: None,
        }
    }

    /// The lab's hosts.
    pub fn hosts(&self) -> MutexGuard<'_, Hosts> {
        self.hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Prints a line of a command's output.
    pub fn say(&self, msg: impl AsRef<str>) {
        self.printer.say(msg.as_ref());
    }

    /// How bytes are shown.
    pub fn format(&self) -> Format {
        self.printer.settings().format()
    }

    /// Changes how bytes are shown.
    pub fn set_format(&self, f: Format) {
        self.printer.settings().set_format(f);
    }

    /// The temporary directory, to show paths under it as `{tmp}/…`.
    pub fn tmp(&self) -> Tmp<'_> {
        self.printer.settings().tmp()
    }

    /// Kills every job and closes every socket; returns how many sockets
    /// were closed.
    pub async fn end(&self) -> usize {
        let _ = self.jobs.kill_all().await;
        let n = self.lab.close_all().await;
        self.hosts().clear();
        n
    }

    /// Replaces `{NAME.port}`, `{NAME.host}` and `{NAME.addr}` with the
    /// local port, host or address of socket NAME (so a script can name a
    /// port the OS picked). Anything else in braces stays as it is.
    pub fn expand(&self, line: &str) -> String {
        let line = self.expand_tmp(line);
        let line = line.as_str();
        static FIELD: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"\{([\p{L}_][\p{L}\p{N}_.-]*)\.(port|host|addr)\}").expect("valid regex")
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
                self.printer.settings().set_tmp(d.path().to_path_buf());
                line.replace("{tmp}", &d.path().display().to_string())
            }
            None => line.to_string(),
        }
    }
}
