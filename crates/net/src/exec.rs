//! The program kind of tube: a child process whose stdin and stdout are
//! the stream (`exec`), its stderr shown as events of its own, its exit
//! reported; and a listener's client wired to a program (`listen … exec`,
//! as `ncat --exec` does).

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::budget::Payload;
use crate::error::{NetError, Result};
use crate::event::{Event, Sink};
use crate::readbuf::Source;
use crate::settle::{lock, wait_until, SETTLE_LIMIT};
use crate::tube::{Tube, Wire, READ_CHUNK};

/// How long a program may take to end by itself once its input is closed,
/// before it is asked to (SIGTERM), and again before it is made to
/// (SIGKILL).
const GRACE: Duration = Duration::from_secs(2);

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The program (looked up in `PATH` when it has no `/`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for a in &self.args {
            if a.is_empty() || a.contains(char::is_whitespace) {
                write!(f, " {a:?}")?;
            } else {
                write!(f, " {a}")?;
            }
        }
        Ok(())
    }
}

impl Command {
    /// Starts the program with its three standard streams piped, in a
    /// process group of its own (so ending it ends what it started: a
    /// pipeline, a shell's children). It dies with this process
    /// (PR_SET_PDEATHSIG) and when its handle is dropped.
    fn spawn(&self) -> io::Result<Child> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: the closure runs in the child between fork and exec and
        // only makes one system call (prctl), which is async-signal-safe;
        // it allocates nothing and touches no lock.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)
            });
        }
        cmd.spawn()
    }
}

/// A program's stdin and stdout as a wire.
struct PipeWire {
    stdin: Mutex<Option<ChildStdin>>,
    stdout: Mutex<Option<ChildStdout>>,
}

fn pipe_closed(which: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("the program's {which} is closed"),
    )
}

impl Source for PipeWire {
    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        let mut stdout = lock(&self.stdout);
        let Some(out) = stdout.as_mut() else {
            return Poll::Ready(Err(pipe_closed("stdout")));
        };
        let mut limited = bytes::BufMut::limit(&mut *buf, max);
        tokio_util::io::poll_read_buf(Pin::new(out), cx, &mut limited)
    }
}

impl Wire for PipeWire {
    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut stdin = lock(&self.stdin);
        match stdin.as_mut() {
            Some(input) => Pin::new(input).poll_write(cx, data),
            None => Poll::Ready(Err(pipe_closed("stdin"))),
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            drop(lock(&self.stdin).take());
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            drop(lock(&self.stdout).take());
        }
        Ok(())
    }

    fn close(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// What `close` asks of a running program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Nothing (yet).
    Run,
    /// SIGTERM.
    Term,
    /// SIGKILL.
    Kill,
}

/// A program of the lab: a tube over its stdin/stdout, its process id,
/// and its exit once reaped.
pub(crate) struct Program {
    /// The byte stream.
    pub(crate) tube: Arc<Tube>,
    /// The process id.
    pub(crate) pid: u32,
    /// What was run.
    pub(crate) command: Command,
    /// The exit status, once the program ended and was reaped (and its
    /// exit reported).
    exit: watch::Sender<Option<Option<ExitStatus>>>,
    /// Asks the watcher to end the program.
    stop: watch::Sender<Stop>,
}

impl Program {
    /// Starts `command` as tube `name`; its stderr and its exit are
    /// reported on `events`.
    ///
    /// # Errors
    /// The program cannot be started (not found, not executable).
    pub(crate) fn start(name: Arc<str>, command: Command, events: Sink) -> Result<Program> {
        let mut child = match crate::netns::current() {
            // Forked by the thread inside the host's namespace, the
            // program starts there (and dies with that thread: the host).
            Some(place) => {
                let runtime = tokio::runtime::Handle::current();
                let command = command.clone();
                place
                    .run(move || {
                        let _guard = runtime.enter();
                        command.spawn()
                    })
                    .and_then(|r| r)
            }
            None => command.spawn(),
        }
        .map_err(NetError::os("exec"))?;
        let pid = child.id().unwrap_or(0);
        let wire = Arc::new(PipeWire {
            stdin: Mutex::new(child.stdin.take()),
            stdout: Mutex::new(child.stdout.take()),
        });
        let tube = Arc::new(Tube::new(name.clone(), wire, true));
        let exit = watch::Sender::new(None);
        let stop = watch::Sender::new(Stop::Run);
        let watcher = Watcher {
            name,
            stderr: child.stderr.take(),
            tube: Some(tube.clone()),
            events,
        };
        let (exit_tx, stop_rx) = (exit.clone(), stop.subscribe());
        tokio::spawn(async move {
            let status = watcher.run(child, stop_rx).await;
            exit_tx.send_replace(Some(status));
        });
        Ok(Program {
            tube,
            pid,
            command,
            exit,
            stop,
        })
    }

    /// Whether the program has ended (and its end was reported).
    pub(crate) fn exited(&self) -> Option<Option<ExitStatus>> {
        *self.exit.borrow()
    }

    /// Ends the program: its stdin is closed (a program that reads until
    /// EOF ends by itself); one that goes on is sent SIGTERM after
    /// [`GRACE`], then SIGKILL. Returns once it was reaped and its exit
    /// reported, then lets go of its pipes.
    ///
    /// # Errors
    /// It did not end even after SIGKILL (within the settle limit).
    pub(crate) async fn close(&self) -> Result<()> {
        let _ = self.tube.shutdown(Shutdown::Write).await;
        for (ask, limit) in [
            (Stop::Term, GRACE),
            (Stop::Kill, GRACE),
            (Stop::Kill, SETTLE_LIMIT),
        ] {
            if self.wait_exit(limit).await.is_ok() {
                break;
            }
            self.stop.send_replace(ask);
        }
        let result = self.wait_exit(Duration::ZERO).await;
        self.tube.close().await;
        result
    }

    /// Asks for the program (and its process group) to be killed now,
    /// without waiting.
    pub(crate) fn signal_kill(&self) {
        self.stop.send_replace(Stop::Kill);
    }

    /// Kills the program at once and waits until it is reaped (the end of
    /// a session).
    pub(crate) async fn kill(&self) {
        self.signal_kill();
        let _ = self.wait_exit(SETTLE_LIMIT).await;
        self.tube.close().await;
    }

    async fn wait_exit(&self, limit: Duration) -> Result<()> {
        let what = || format!("waiting for {} (pid {}) to end", self.tube.name, self.pid);
        wait_until(what, limit, self.exit.subscribe(), |e| e.is_some())
            .await
            .map(|_| ())
    }
}

/// Reports a program's stderr and exit, and ends it when asked.
struct Watcher {
    /// The name its events carry.
    name: Arc<str>,
    /// Its stderr, read into events.
    stderr: Option<ChildStderr>,
    /// Its stdout's tube: the exit is reported after the tube's end of
    /// stream, so "peer closed" comes before "exited".
    tube: Option<Arc<Tube>>,
    /// Where the events go.
    events: Sink,
}

impl Watcher {
    async fn run(self, mut child: Child, mut stop: watch::Receiver<Stop>) -> Option<ExitStatus> {
        let pid = child.id();
        let stderr = report_stderr(self.stderr, &self.name, &self.events);
        tokio::pin!(stderr);
        let mut stderr_done = false;
        let mut asking = true;
        let status = loop {
            tokio::select! {
                s = child.wait() => break s.ok(),
                () = &mut stderr, if !stderr_done => stderr_done = true,
                r = stop.changed(), if asking => {
                    // Nobody can ask any more once the sender is gone: kill.
                    let ask = if r.is_ok() { *stop.borrow_and_update() } else { Stop::Kill };
                    asking = r.is_ok();
                    end(pid, ask);
                }
            }
        };
        // What it wrote to stderr before it ended (a descendant may hold the
        // pipe: a bounded wait).
        if !stderr_done {
            let _ = tokio::time::timeout(GRACE, stderr).await;
        }
        if let Some(tube) = &self.tube {
            let what = String::new;
            let _ = wait_until(what, GRACE, tube.watch_progress(), |p| {
                !p.watched || p.eof || p.failed
            })
            .await;
        }
        let exited = Event::Exited {
            socket: self.name.clone(),
            status,
        };
        let _ = self.events.send(exited).await;
        status
    }
}

/// Sends a program's process group the signal `ask` stands for. The child
/// is not reaped yet (only its watcher waits for it), so its pid, which is
/// its group's id, is still its own.
fn end(pid: Option<u32>, ask: Stop) {
    let signal = match ask {
        Stop::Run => return,
        Stop::Term => Signal::SIGTERM,
        Stop::Kill => Signal::SIGKILL,
    };
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(Pid::from_raw(pid), signal);
    }
}

/// Reads a program's stderr until EOF, one event per read.
async fn report_stderr(stderr: Option<ChildStderr>, name: &Arc<str>, events: &Sink) {
    let Some(mut err) = stderr else {
        return;
    };
    loop {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        match poll_fn(|cx| tokio_util::io::poll_read_buf(Pin::new(&mut err), cx, &mut buf)).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let charge = events.budget.take(n).await;
                let ev = Event::Stderr {
                    socket: name.clone(),
                    data: Payload::new(buf.freeze(), charge),
                };
                let _ = events.send(ev).await;
            }
        }
    }
}

/// Starts the program for a client of a `listen … exec` server and
/// reports it (or why it could not start).
pub(crate) async fn start_client(
    name: &Arc<str>,
    command: &Command,
    events: &Sink,
) -> Option<Child> {
    match command.spawn() {
        Ok(child) => {
            let started = Event::Started {
                socket: name.clone(),
                pid: child.id().unwrap_or(0),
                command: command.to_string(),
            };
            let _ = events.send(started).await;
            Some(child)
        }
        Err(error) => {
            let failed = Event::Failed {
                socket: name.clone(),
                error,
            };
            let _ = events.send(failed).await;
            None
        }
    }
}

/// Serves one client of a `listen … exec` server with its started
/// program (a TCP or UNIX stream): copies the client's bytes to its stdin and its stdout to the
/// client, until both directions end, then reaps it and reports its exit.
/// Stopped by `stop` (the server closing), which kills the program.
pub(crate) async fn serve_client<S>(
    name: Arc<str>,
    stream: S,
    mut child: Child,
    events: &Sink,
    stop: CancellationToken,
) where
    S: tokio::io::AsyncRead + AsyncWrite + Send + 'static,
{
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let watcher = Watcher {
        name,
        stderr: child.stderr.take(),
        tube: None,
        events: events.clone(),
    };
    let (mut from_client, mut to_client) = tokio::io::split(stream);
    // The client's bytes to the program's stdin; the client's EOF closes it.
    let upstream = async {
        if let Some(mut stdin) = stdin {
            let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
            let _ = stdin.shutdown().await;
        }
    };
    // The program's stdout to the client; its EOF shuts the client's side.
    let downstream = async {
        if let Some(mut stdout) = stdout {
            let _ = tokio::io::copy(&mut stdout, &mut to_client).await;
        }
        let _ = to_client.shutdown().await;
    };
    let watch = watcher.run(child, stop_rx);
    tokio::pin!(upstream, downstream, watch);
    // Once the client's side has ended, the program has GRACE to end by
    // itself, then it is asked to (SIGTERM), then made to (SIGKILL). Once
    // it has ended, what it wrote still goes to the client (within GRACE).
    let mut asks = [Stop::Term, Stop::Kill].into_iter();
    let mut deadline: Option<tokio::time::Instant> = None;
    let (mut up, mut down, mut exited, mut killed) = (false, false, false, false);
    loop {
        let grace = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut watch, if !exited => {
                exited = true;
                if down {
                    return;
                }
                deadline = Some(tokio::time::Instant::now() + GRACE);
            }
            () = &mut downstream, if !down => {
                down = true;
                if exited {
                    return;
                }
            }
            () = &mut upstream, if !up => {
                up = true;
                if !exited {
                    deadline = Some(tokio::time::Instant::now() + GRACE);
                }
            }
            () = grace => {
                if exited {
                    return;
                }
                stop_tx.send_replace(asks.next().unwrap_or(Stop::Kill));
                deadline = Some(tokio::time::Instant::now() + GRACE);
            }
            () = stop.cancelled(), if !killed => {
                killed = true;
                stop_tx.send_replace(Stop::Kill);
            }
        }
    }
}
