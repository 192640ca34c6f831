//! The lecture's own programs as real peers: the §7 server and the §8
//! client (tests/python/*.py, changed only to use a port the OS picks)
//! talk to socklab running a script on its standard input.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long any one step may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

/// A child process whose output is read by background threads, so that
/// every wait on it has a deadline. It is killed if the test fails.
struct Proc {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Lines of standard output; disconnected at end of file.
    lines: Receiver<String>,
    /// All of standard error, sent once at end of file.
    stderr: Receiver<String>,
    /// The standard output read so far.
    seen: Vec<String>,
}

/// What a finished process printed.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Proc {
    fn spawn(what: &str, mut cmd: Command) -> std::io::Result<Proc> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut err = child.stderr.take().expect("stderr is piped");
        let (line_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = err.read_to_end(&mut bytes);
            let _ = err_tx.send(String::from_utf8_lossy(&bytes).into_owned());
        });
        Ok(Proc {
            what: what.to_string(),
            child,
            stdin,
            lines,
            stderr,
            seen: Vec::new(),
        })
    }

    /// Writes to the process's standard input.
    fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin.write_all(text.as_bytes()).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Waits for the next line of output that `wanted` accepts (earlier lines
    /// are kept in `seen`).
    fn line_where(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{} printed no expected line within {WAIT:?}; stdout so far:\n{}",
                        self.what,
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{} closed its output before the expected line; stdout:\n{}\nstderr:\n{}",
                    self.what,
                    self.seen.join("\n"),
                    self.stderr.recv_timeout(WAIT).unwrap_or_default()
                ),
            }
        }
    }

    /// Closes standard input and waits (with a deadline) for the process to
    /// end; returns its status and everything it printed.
    fn finish(&mut self) -> Finished {
        self.stdin = None;
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{} did not finish within {WAIT:?}; stdout so far:\n{}",
                        self.what,
                        self.seen.join("\n")
                    )
                }
            }
        }
        let stderr = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("{} kept its standard error open", self.what));
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{} closed its output but did not exit within {WAIT:?}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Finished {
            status,
            stdout: self.seen.join("\n"),
            stderr,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `python3 -u tests/python/NAME ARGS`.
fn python(name: &str, args: &[&str]) -> Proc {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "python", name]
        .iter()
        .collect();
    let mut cmd = Command::new("python3");
    cmd.arg("-u")
        .arg(&path)
        .args(args)
        .env("PYTHONIOENCODING", "utf-8");
    Proc::spawn(&format!("python3 {name}"), cmd).unwrap_or_else(|e| {
        panic!(
            "these tests run the lecture's Python programs, but `python3` cannot be started: {e}"
        )
    })
}

/// socklab with a script on its (piped) standard input.
fn socklab() -> Proc {
    Proc::spawn("socklab", Command::new(env!("CARGO_BIN_EXE_socklab"))).expect("socklab starts")
}

/// Lecture §7 + §8 with socklab as the client: it reads the server's
/// greeting and its reply is what the Python server prints.
#[test]
fn socklab_client_talks_to_the_lectures_python_server() {
    let mut server = python("server.py", &[]);
    let first = server.line_where(|_| true);
    let port: u16 = first
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("server.py's first line should be its port, got {first:?}"));

    let mut shell = socklab();
    shell.write(&format!(
        "connect 127.0.0.1 {port} as cli\n\
         expect cli \"Welcome to study socket!\" timeout 10s\n\
         send cli \"收到, 已开始学习, So Easy!\"\n\
         close cli\n"
    ));
    let shell = shell.finish();
    assert!(
        shell.status.success(),
        "socklab failed ({}):\nstdout:\n{}\nstderr:\n{}",
        shell.status,
        shell.stdout,
        shell.stderr
    );
    let server = server.finish();
    let report = format!(
        "socklab stdout:\n{}\nsocklab stderr:\n{}\nserver.py stdout:\n{}\nserver.py stderr:\n{}",
        shell.stdout, shell.stderr, server.stdout, server.stderr
    );
    assert!(
        shell
            .stdout
            .contains(r#"cli: matched "Welcome to study socket!" (24 bytes taken)"#),
        "socklab should show the server's greeting as what expect took (a peer outside the lab: its data is shown by the command that takes it):\n{report}"
    );
    assert!(
        server.status.success(),
        "server.py failed ({}):\n{report}",
        server.status
    );
    assert!(
        server
            .stdout
            .contains("服务器端收到回执信息: 收到, 已开始学习, So Easy!"),
        "the Python server should print socklab's reply, decoded as UTF-8:\n{report}"
    );
}

/// Lecture §8's Python client against a socklab server: the client prints
/// socklab's greeting and socklab sees the client's reply.
#[test]
fn lectures_python_client_talks_to_socklab_server() {
    let mut shell = socklab();
    shell.write("listen 0 as srv\n");
    let listening = shell.line_where(|l| l.starts_with("srv: listening on 127.0.0.1:"));
    let port: u16 = listening["srv: listening on 127.0.0.1:".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {listening:?}"));

    let mut client = python("client.py", &[&port.to_string()]);
    shell.write(
        "accept srv timeout 10s\n\
         send srv.1 \"Welcome to study socket!\"\n\
         expect srv.1 \"So Easy!\" timeout 10s\n\
         quit\n",
    );
    let shell = shell.finish();
    assert!(
        shell.status.success(),
        "socklab failed ({}):\nstdout:\n{}\nstderr:\n{}",
        shell.status,
        shell.stdout,
        shell.stderr
    );
    let client = client.finish();
    let report = format!(
        "socklab stdout:\n{}\nsocklab stderr:\n{}\nclient.py stdout:\n{}\nclient.py stderr:\n{}",
        shell.stdout, shell.stderr, client.stdout, client.stderr
    );
    assert!(
        shell
            .stdout
            .lines()
            .any(|l| l.starts_with("srv.1 <- ") && l.contains("收到, 已开始学习, So Easy!")),
        "socklab should show the client's whole reply, as text, as data received on srv.1:\n{report}"
    );
    assert!(
        client.status.success(),
        "client.py failed ({}):\n{report}",
        client.status
    );
    assert!(
        client
            .stdout
            .contains("客户端接收到: Welcome to study socket!"),
        "the Python client should print socklab's greeting:\n{report}"
    );
}

/// Some bytes worth uploading: text in two scripts and every byte value,
/// several of the lecture's 1024-byte chunks long.
fn upload_payload() -> Vec<u8> {
    let mut data = "吃葡萄不吐葡萄皮，不吃葡萄倒吐葡萄皮。\n"
        .repeat(40)
        .into_bytes();
    data.extend((0..=255u8).cycle().take(3000));
    data
}

/// Lecture §12's Python server receives socklab's raw upload (the bytes,
/// then shutdown(write)) and saves a byte-identical file.
#[test]
fn lectures_python_upload_server_receives_socklabs_raw_upload() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("绕口令.txt");
    std::fs::write(&src, upload_payload()).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();

    let mut server = python("upload_server.py", &[data.to_str().unwrap()]);
    let port: u16 = server
        .line_where(|_| true)
        .trim()
        .parse()
        .expect("the port first");
    let mut shell = socklab();
    shell.write(&format!(
        "connect 127.0.0.1 {port} as up\nupload --raw up \"{}\"\nquit\n",
        src.display()
    ));
    let shell = shell.finish();
    assert!(
        shell.status.success(),
        "socklab: {}\n{}",
        shell.stdout,
        shell.stderr
    );
    assert!(
        shell.stdout.contains("up -> raw: 5320 bytes"),
        "{}",
        shell.stdout
    );
    let server = server.finish();
    assert!(
        server.status.success(),
        "upload_server.py: {}",
        server.stderr
    );
    assert_eq!(
        std::fs::read(data.join("hg.txt")).unwrap(),
        upload_payload(),
        "hg.txt is byte-identical"
    );
}

/// Lecture §12's Python client uploads to socklab's raw receiver, which
/// saves a byte-identical file (atomically, under the name it was given).
#[test]
fn lectures_python_upload_client_uploads_to_socklabs_raw_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("绕口令.txt");
    std::fs::write(&src, upload_payload()).unwrap();
    let dest = dir.path().join("hg.txt");

    let mut shell = socklab();
    shell.write(&format!("serve raw \"{}\" 0 as raw\n", dest.display()));
    let serving = shell.line_where(|l| l.starts_with("raw: serving on 127.0.0.1:"));
    let port: u16 = serving["raw: serving on 127.0.0.1:".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {serving:?}"));
    let mut client = python(
        "upload_client.py",
        &[&port.to_string(), src.to_str().unwrap()],
    );
    let client = client.finish();
    assert!(
        client.status.success(),
        "upload_client.py: {}",
        client.stderr
    );
    let saved = shell.line_where(|l| l.starts_with("raw: saved "));
    assert!(
        saved.starts_with("raw: saved 5320 bytes from 127.0.0.1:"),
        "{saved}"
    );
    shell.write("quit\n");
    let shell = shell.finish();
    assert!(
        shell.status.success(),
        "socklab: {}\n{}",
        shell.stdout,
        shell.stderr
    );
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        upload_payload(),
        "hg.txt is byte-identical"
    );
}
