//! Transfers over real loopback connections into temporary directories.
//!
//! Hostile peers are written by hand ([`Hand`]) with `socklab-frame`'s
//! encoders or raw bytes. No test sleeps: each waits on the operation it
//! checks (a reply, a task's result, an end of stream).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use socklab_frame::{DigestAlg, Header, Reply, Request, Status, Trailer, MAGIC, MAX_NAME, VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::store::Meta;
use super::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

type ServeResult = Result<Served, TransferError>;

/// A fresh directory under the system's temporary directory, removed with
/// everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "socklab-transfer-test-{}-{}-{nanos:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        match std::fs::create_dir(&path) {
            Ok(()) => return TempDir(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", path.display()),
        }
    }
}

/// A receiver on 127.0.0.1 that serves exactly one connection.
async fn serve_once(cfg: &ReceiverConfig) -> (SocketAddr, JoinHandle<ServeResult>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let cfg = cfg.clone();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        serve_connection(stream, &cfg).await
    });
    (addr, task)
}

/// A receiver on 127.0.0.1 that serves every connection in its own task,
/// as the shell does, and hands back each result.
async fn serve_many(
    cfg: &ReceiverConfig,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<ServeResult>,
    JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let cfg = cfg.clone();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (cfg, tx) = (cfg.clone(), tx.clone());
            tokio::spawn(async move {
                let _ = tx.send(serve_connection(stream, &cfg).await);
            });
        }
    });
    (addr, rx, task)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// Deterministic bytes that do not repeat with a short period.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// The names in a directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether a directory holds exactly one kept partial (a slot's two files)
/// and nothing else.
fn holds_only_partial(dir: &Path) -> bool {
    let names = entries(dir);
    names.len() == 2
        && names.iter().all(|n| n.starts_with(RESERVED_PREFIX))
        && names.iter().any(|n| n.ends_with(".part"))
        && names.iter().any(|n| n.ends_with(".meta"))
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).expect("write source file");
    path
}

fn header_bytes(name: &str, size: u64, offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    Header {
        name: name.to_owned(),
        size,
        alg: DigestAlg::Blake3,
        offset,
    }
    .encode(&mut out)
    .expect("encode header");
    out
}

/// A header with any name bytes (too long, not UTF-8), built by hand.
fn raw_header(name: &[u8], size: u64, offset: u64) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend([VERSION, 1, 1]);
    out.extend(size.to_be_bytes());
    out.extend(offset.to_be_bytes());
    out.extend(u16::try_from(name.len()).expect("len").to_be_bytes());
    out.extend(name);
    out
}

fn trailer_bytes(digest: [u8; 32]) -> Vec<u8> {
    let mut out = Vec::new();
    Trailer {
        alg: DigestAlg::Blake3,
        digest,
    }
    .encode(&mut out);
    out
}

fn request_bytes(name: &str, offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    Request {
        name: name.to_owned(),
        offset,
    }
    .encode(&mut out)
    .expect("encode request");
    out
}

fn reply_bytes(status: Status, offset: u64, reason: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Reply::new(status, offset, reason)
        .encode(&mut out)
        .expect("encode reply");
    out
}

fn hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}

/// A peer driven by hand: writes what the test says, reads replies.
struct Hand {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Hand {
    async fn connect(addr: SocketAddr) -> Hand {
        Hand::wrap(connect(addr).await)
    }

    fn wrap(s: TcpStream) -> Hand {
        Hand { s, buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.expect("hand write");
    }

    /// Reads one message with `decode`; `None` at end of stream or on a
    /// reset.
    async fn read<T>(&mut self, decode: wire::Decoder<T>) -> Option<T> {
        loop {
            if let Some((msg, used)) = decode(&self.buf).expect("valid message") {
                self.buf.drain(..used);
                return Some(msg);
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn reply(&mut self) -> Reply {
        self.read(Reply::decode).await.expect("a reply")
    }

    /// Reads exactly `n` bytes of data (after what is buffered).
    async fn data(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let mut chunk = vec![0u8; CHUNK];
            let got = self.s.read(&mut chunk).await.expect("hand read");
            assert!(got > 0, "stream ended inside the data");
            self.buf.extend_from_slice(&chunk[..got]);
        }
        self.buf.drain(..n).collect()
    }

    /// Reads until the peer closes.
    async fn until_eof(&mut self) {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = self.s.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    }

    /// Drops the connection with a reset (SO_LINGER 0) instead of a FIN.
    #[allow(deprecated)]
    fn reset(self) {
        self.s
            .set_linger(Some(std::time::Duration::ZERO))
            .expect("SO_LINGER");
    }
}

/// Sends `bytes` as a whole first message and returns the receiver's reply
/// and its own account.
async fn first_message(cfg: &ReceiverConfig, bytes: &[u8]) -> (Reply, ServeResult) {
    let (addr, task) = serve_once(cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(bytes).await;
    let reply = hand.reply().await;
    drop(hand);
    (reply, task.await.expect("server task"))
}

fn refused_status(served: &ServeResult) -> Option<Status> {
    match served {
        Ok(Served::Refused { status, .. }) => Some(*status),
        _ => None,
    }
}

/// Uploads `data` as `name` with the real client; returns both sides'
/// results.
async fn upload_data(
    cfg: &ReceiverConfig,
    name: &str,
    data: &[u8],
    resume: bool,
) -> (Result<UploadReport, TransferError>, ServeResult) {
    let src = tempdir();
    let file = write_file(src.path(), "source", data);
    let (addr, task) = serve_once(cfg).await;
    let report = upload(connect(addr).await, &file, name, resume, |_, _| {}).await;
    (report, task.await.expect("server task"))
}

/// Sends a header, takes the OK, sends `data` (part of the file) and drops
/// the connection (with a reset if `reset`). Returns the receiver's
/// account.
async fn cut_upload(
    cfg: &ReceiverConfig,
    name: &str,
    size: u64,
    data: &[u8],
    reset: bool,
) -> ServeResult {
    let (addr, task) = serve_once(cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(&header_bytes(name, size, size)).await;
    let ok = hand.reply().await;
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    hand.send(data).await;
    if reset {
        hand.reset();
    } else {
        drop(hand);
    }
    task.await.expect("server task")
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

#[tokio::test]
async fn upload_and_download_round_trip_byte_identical() {
    let cases: [(&str, Vec<u8>); 4] = [
        ("empty.bin", Vec::new()),
        ("one.bin", vec![0x5a]),
        ("big.bin", content(1024 * 1024 + 1, 1)),
        (
            "绕口令.txt",
            "吃葡萄不吐葡萄皮，不吃葡萄倒吐葡萄皮。\n"
                .repeat(100)
                .into_bytes(),
        ),
    ];
    for (name, data) in cases {
        let srv = tempdir();
        let cfg = ReceiverConfig::new(srv.path());
        let src = tempdir();
        let file = write_file(src.path(), "source", &data);
        let size = data.len() as u64;

        let (addr, task) = serve_once(&cfg).await;
        let mut seen = Vec::new();
        let report = upload(connect(addr).await, &file, name, true, |n, t| {
            seen.push((n, t))
        })
        .await
        .expect("upload");
        let served = task.await.expect("task").expect("served");
        assert_eq!(report.size, size, "{name}");
        assert_eq!(report.sent, size);
        assert_eq!(report.resumed_from, 0);
        assert_eq!(report.digest, hash(&data), "{name}");
        assert!(
            seen.windows(2).all(|w| w[0].0 <= w[1].0),
            "progress goes forward"
        );
        assert_eq!(seen.last(), Some(&(size, size)));
        assert_eq!(
            served,
            Served::Uploaded {
                name: name.to_owned(),
                size,
                digest: hash(&data),
                resumed_from: 0,
                path: srv.path().join(name),
                elapsed: match &served {
                    Served::Uploaded { elapsed, .. } => *elapsed,
                    _ => std::time::Duration::ZERO,
                },
            }
        );
        assert_eq!(std::fs::read(srv.path().join(name)).expect("stored"), data);
        assert_eq!(entries(srv.path()), [name], "no working files left");
        let line = report.to_string();
        assert!(line.contains(&digest_hex(&report.digest)), "{line}");
        assert!(line.contains("MiB/s"), "{line}");

        let dl = tempdir();
        let local = dl.path().join(name);
        let (addr, task) = serve_once(&cfg).await;
        let mut seen = Vec::new();
        let got = download(connect(addr).await, name, &local, false, |n, t| {
            seen.push((n, t))
        })
        .await
        .expect("download");
        let served = task.await.expect("task").expect("served");
        assert_eq!(std::fs::read(&local).expect("downloaded"), data, "{name}");
        assert_eq!(got.digest, hash(&data));
        assert_eq!((got.size, got.received, got.resumed_from), (size, size, 0));
        assert_eq!(seen.last(), Some(&(size, size)));
        assert!(
            matches!(served, Served::Downloaded { size: s, offset: 0, digest, .. } if s == size && digest == hash(&data))
        );
        assert_eq!(entries(dl.path()), [name]);
    }
}

#[tokio::test]
async fn empty_file_by_hand_is_stored() {
    let srv = tempdir();
    let cfg = ReceiverConfig::new(srv.path());
    let (addr, task) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(&header_bytes("zero", 0, 0)).await;
    assert_eq!(hand.reply().await.status, Status::Ok);
    hand.send(&trailer_bytes(hash(b""))).await;
    let done = hand.reply().await;
    assert_eq!((done.status, done.offset), (Status::Ok, 0));
    drop(hand);
    assert!(matches!(
        task.await.expect("task"),
        Ok(Served::Uploaded { size: 0, .. })
    ));
    assert_eq!(std::fs::read(srv.path().join("zero")).expect("stored"), b"");
}

// ---------------------------------------------------------------------------
// Hostile names
// ---------------------------------------------------------------------------

#[tokio::test]
async fn hostile_upload_names_are_refused_and_nothing_is_created() {
    let root = tempdir();
    let dir = root.path().join("recv");
    let outside = root.path().join("outside");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("target.txt"), b"untouched").expect("write");
    std::os::unix::fs::symlink(outside.join("target.txt"), dir.join("link")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("nothing.txt"), dir.join("dangling")).expect("symlink");
    std::os::unix::fs::symlink(&outside, dir.join("outdir")).expect("symlink");
    std::fs::create_dir(dir.join("sub")).expect("mkdir");
    let before = entries(&dir);
    let long = "a".repeat(MAX_NAME + 1);

    let table: Vec<(Vec<u8>, Status)> = vec![
        (b"".to_vec(), Status::BadName),
        (b".".to_vec(), Status::BadName),
        (b"..".to_vec(), Status::BadName),
        (b"a/b".to_vec(), Status::BadName),
        (b"a\\b".to_vec(), Status::BadName),
        (b"/etc/passwd".to_vec(), Status::BadName),
        (b"C:x".to_vec(), Status::BadName),
        (b"a\0b".to_vec(), Status::BadName),
        (b"a\nb".to_vec(), Status::BadName),
        (b"\x1b[2J".to_vec(), Status::BadName),
        (long.into_bytes(), Status::BadName),
        (vec![b'a', 0xff, b'b'], Status::BadName),
        (b"outdir/x".to_vec(), Status::BadName),
        (b"../outside/target.txt".to_vec(), Status::BadName),
        (b".socklab-x.part".to_vec(), Status::BadName),
        (b"link".to_vec(), Status::BadName),
        (b"dangling".to_vec(), Status::BadName),
        (b"outdir".to_vec(), Status::BadName),
        (b"sub".to_vec(), Status::Exists),
    ];
    for overwrite in [false, true] {
        let cfg = ReceiverConfig {
            overwrite,
            ..ReceiverConfig::new(&dir)
        };
        for (name, want) in &table {
            let (reply, served) = first_message(&cfg, &raw_header(name, 5, 5)).await;
            let shown = String::from_utf8_lossy(name);
            assert_eq!(reply.status, *want, "{shown:?}: {reply:?}");
            assert!(!reply.reason.is_empty(), "{shown:?} has a reason");
            assert_eq!(
                refused_status(&served),
                Some(*want),
                "{shown:?}: {served:?}"
            );
            assert_eq!(entries(&dir), before, "{shown:?} created nothing");
        }
    }
    assert_eq!(entries(&outside), ["target.txt"]);
    assert_eq!(
        std::fs::read(outside.join("target.txt")).expect("read"),
        b"untouched"
    );
}

#[tokio::test]
async fn refusal_reasons_say_what_is_wrong() {
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let (reply, served) = first_message(&cfg, &header_bytes("..", 1, 1)).await;
    assert_eq!(reply.reason, "file name '..' would leave the directory");
    let Ok(Served::Refused { name, reason, .. }) = served else {
        panic!("refused: {served:?}");
    };
    assert_eq!(name.as_deref(), Some(".."));
    assert_eq!(reason, reply.reason);

    // The name is kept as it came and escaped once, when shown (issue 10
    // item 15: it was escaped here and again by whoever printed it).
    let (_, served) = first_message(&cfg, &header_bytes("a\x1b[2Jb", 1, 1)).await;
    let Ok(Served::Refused { name, .. }) = served else {
        panic!("refused: {served:?}");
    };
    assert_eq!(name.as_deref(), Some("a\x1b[2Jb"));
    assert_eq!(quote_name("a\x1b[2Jb"), "\"a\\u{1b}[2Jb\"");

    // The client's error carries the receiver's status and reason.
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("pw")).expect("symlink");
    let (report, _) = upload_data(&cfg, "pw", b"x", false).await;
    let err = report.expect_err("refused");
    assert_eq!(err.status(), Some(Status::BadName));
    assert_eq!(
        err.to_string(),
        "receiver refused \"pw\": bad name: \"pw\" is a symbolic link in the receiving directory; refusing to write through it"
    );
}

#[tokio::test]
async fn client_refuses_bad_names_before_sending() {
    let src = tempdir();
    let file = write_file(src.path(), "f", b"data");
    for name in ["", "..", "a/b", "/etc/passwd", "C:x", "a\nb"] {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let err = upload(ours, &file, name, false, |_, _| {})
            .await
            .expect_err("bad name");
        assert!(
            matches!(err, TransferError::BadName { .. }),
            "{name:?}: {err}"
        );
        let mut sent = Vec::new();
        theirs.read_to_end(&mut sent).await.expect("read");
        assert!(sent.is_empty(), "{name:?}: nothing sent");

        let (ours, _theirs) = tokio::io::duplex(1024);
        let err = download(ours, name, &src.path().join("out"), false, |_, _| {})
            .await
            .expect_err("bad name");
        assert!(
            matches!(err, TransferError::BadName { .. }),
            "{name:?}: {err}"
        );
    }
}

#[tokio::test]
async fn hostile_download_requests_are_refused() {
    let root = tempdir();
    let dir = root.path().join("srv");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(root.path().join("secret"), b"secret").expect("write");
    std::os::unix::fs::symlink(root.path().join("secret"), dir.join("link")).expect("symlink");
    std::fs::create_dir(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join(".socklab-tmp-1-2"), b"working").expect("write");
    let cfg = ReceiverConfig::new(&dir);
    let table = [
        ("..", Status::BadName),
        ("/etc/passwd", Status::BadName),
        ("a/b", Status::BadName),
        ("../secret", Status::BadName),
        ("link", Status::BadName),
        (".socklab-tmp-1-2", Status::BadName),
        ("sub", Status::NotFound),
        ("missing", Status::NotFound),
    ];
    for (name, want) in table {
        let (reply, served) = first_message(&cfg, &request_bytes(name, 0)).await;
        assert_eq!(reply.status, want, "{name:?}: {reply:?}");
        assert_eq!(refused_status(&served), Some(want), "{name:?}");
    }
    // The real client reports the server's refusal.
    let out = tempdir();
    let (addr, task) = serve_once(&cfg).await;
    let err = download(
        connect(addr).await,
        "missing",
        &out.path().join("m"),
        false,
        |_, _| {},
    )
    .await
    .expect_err("not found");
    assert!(
        matches!(
            &err,
            TransferError::Refused {
                peer: "server",
                status: Status::NotFound,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        refused_status(&task.await.expect("task")),
        Some(Status::NotFound)
    );
    assert!(entries(out.path()).is_empty());
}

// ---------------------------------------------------------------------------
// Hostile headers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn hostile_headers_get_the_right_status_and_leave_no_file() {
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let limited = ReceiverConfig {
        max_size: Some(100),
        ..ReceiverConfig::new(dir.path())
    };
    let mut name_256 = raw_header(&[b'n'; 255], 1, 0);
    name_256[23..25].copy_from_slice(&256u16.to_be_bytes());
    let mut version_2 = header_bytes("v", 1, 0);
    version_2[4] = 2;
    let mut digest_7 = header_bytes("d", 1, 0);
    digest_7[6] = 7;
    let mut kind_9 = header_bytes("k", 1, 0);
    kind_9[5] = 9;
    let mut offset_beyond = header_bytes("o", 10, 0);
    offset_beyond[15..23].copy_from_slice(&11u64.to_be_bytes());

    let table: Vec<(&str, &ReceiverConfig, Vec<u8>, &[Status])> = vec![
        (
            "size u64::MAX",
            &cfg,
            header_bytes("huge", u64::MAX, 0),
            &[Status::NoSpace, Status::TooLarge],
        ),
        (
            "size over max_size",
            &limited,
            header_bytes("big", 101, 0),
            &[Status::TooLarge],
        ),
        (
            "size u64::MAX, limited",
            &limited,
            header_bytes("huge", u64::MAX, 0),
            &[Status::TooLarge],
        ),
        ("name length 256", &cfg, name_256, &[Status::BadName]),
        (
            "name length 65535",
            &cfg,
            raw_header(&[], 1, 0)[..23]
                .iter()
                .copied()
                .chain([0xff, 0xff])
                .collect(),
            &[Status::BadName],
        ),
        (
            "unknown version",
            &cfg,
            version_2,
            &[Status::UnknownVersion],
        ),
        (
            "unknown digest id",
            &cfg,
            digest_7,
            &[Status::UnknownDigest],
        ),
        ("unknown kind", &cfg, kind_9, &[Status::BadHeader]),
        (
            "offset beyond size",
            &cfg,
            offset_beyond,
            &[Status::BadHeader],
        ),
        (
            "garbage",
            &cfg,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            &[Status::BadHeader],
        ),
        (
            "a trailer first",
            &cfg,
            trailer_bytes([0; 32]),
            &[Status::BadHeader],
        ),
        (
            "a reply first",
            &cfg,
            reply_bytes(Status::Ok, 0, "hi"),
            &[Status::BadHeader],
        ),
    ];
    for (what, cfg, bytes, want) in table {
        let (reply, served) = first_message(cfg, &bytes).await;
        assert!(want.contains(&reply.status), "{what}: {reply:?}");
        assert_eq!(refused_status(&served), Some(reply.status), "{what}");
        assert!(entries(dir.path()).is_empty(), "{what}: no file");
    }
}

#[tokio::test]
async fn silent_or_truncated_first_message_is_an_error_not_a_file() {
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    for bytes in [&b""[..], b"SLF", &header_bytes("x", 5, 5)[..20]] {
        let (addr, task) = serve_once(&cfg).await;
        let mut hand = Hand::connect(addr).await;
        hand.send(bytes).await;
        drop(hand);
        let served = task.await.expect("task");
        assert!(
            matches!(served, Err(TransferError::Closed { .. })),
            "{served:?}"
        );
    }
    assert!(entries(dir.path()).is_empty());
}

// ---------------------------------------------------------------------------
// Cut streams and resume
// ---------------------------------------------------------------------------

#[tokio::test]
async fn cut_uploads_leave_no_file_and_resume_to_the_right_digest() {
    let size = 3 * CHUNK + 123;
    let data = content(size, 7);
    let size = size as u64;
    let cuts = [
        0,
        1,
        1000,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        150_000,
        size as usize,
    ];
    for (i, &k) in cuts.iter().enumerate() {
        let reset = i % 2 == 1;
        let dir = tempdir();
        let cfg = ReceiverConfig::new(dir.path());
        let served = cut_upload(&cfg, "cut.bin", size, &data[..k], reset).await;
        let Ok(Served::Refused {
            status: Status::ShortData,
            kept,
            reason,
            ..
        }) = served
        else {
            panic!("cut at {k}: {served:?}");
        };
        // A reset may destroy bytes still in flight; a FIN never does.
        if reset {
            assert!(kept <= k as u64, "cut at {k}: kept {kept}");
        } else {
            assert_eq!(kept, k as u64, "cut at {k}: {reason}");
        }
        assert!(!dir.path().join("cut.bin").exists(), "cut at {k}");
        if kept > 0 {
            assert!(holds_only_partial(dir.path()), "{:?}", entries(dir.path()));
        } else {
            assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
        }

        let (report, served) = upload_data(&cfg, "cut.bin", &data, true).await;
        let report = report.expect("resumed upload");
        assert_eq!(report.resumed_from, kept, "cut at {k}");
        assert_eq!(report.sent, size - kept);
        assert_eq!(report.digest, hash(&data));
        assert!(
            matches!(served, Ok(Served::Uploaded { resumed_from, .. }) if resumed_from == kept)
        );
        assert_eq!(
            std::fs::read(dir.path().join("cut.bin")).expect("stored"),
            data
        );
        assert_eq!(entries(dir.path()), ["cut.bin"], "cut at {k}");
    }
}

#[tokio::test]
async fn a_cut_inside_the_trailer_keeps_all_the_data() {
    let data = content(5000, 3);
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let mut bytes = data.clone();
    bytes.extend_from_slice(&trailer_bytes(hash(&data))[..10]);
    let served = cut_upload(&cfg, "t.bin", 5000, &bytes, false).await;
    assert!(
        matches!(
            served,
            Ok(Served::Refused {
                status: Status::ShortData,
                kept: 5000,
                ..
            })
        ),
        "{served:?}"
    );
    let (report, _) = upload_data(&cfg, "t.bin", &data, true).await;
    let report = report.expect("resumed");
    assert_eq!((report.resumed_from, report.sent), (5000, 0));
    assert_eq!(
        std::fs::read(dir.path().join("t.bin")).expect("stored"),
        data
    );
    assert_eq!(entries(dir.path()), ["t.bin"]);
}

#[tokio::test]
async fn partials_that_do_not_match_are_discarded() {
    let data = content(100_000, 9);
    let size = data.len() as u64;

    // Resume not allowed: start afresh.
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    cut_upload(&cfg, "f", size, &data[..1000], false)
        .await
        .expect("cut");
    let (report, _) = upload_data(&cfg, "f", &data, false).await;
    assert_eq!(report.expect("upload").resumed_from, 0);
    assert_eq!(entries(dir.path()), ["f"]);

    // Another size: another file.
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    cut_upload(&cfg, "f", size, &data[..1000], false)
        .await
        .expect("cut");
    let other = content(100_001, 10);
    let (report, _) = upload_data(&cfg, "f", &other, true).await;
    assert_eq!(report.expect("upload").resumed_from, 0);
    assert_eq!(std::fs::read(dir.path().join("f")).expect("stored"), other);
    assert_eq!(entries(dir.path()), ["f"]);

    // The kept bytes changed on disk: the sidecar's digest catches it.
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    cut_upload(&cfg, "f", size, &data[..1000], false)
        .await
        .expect("cut");
    let part = entries(dir.path())
        .into_iter()
        .find(|n| n.ends_with(".part"))
        .expect("a partial");
    let mut bytes = std::fs::read(dir.path().join(&part)).expect("read");
    bytes[10] ^= 1;
    std::fs::write(dir.path().join(&part), bytes).expect("write");
    let (report, _) = upload_data(&cfg, "f", &data, true).await;
    assert_eq!(report.expect("upload").resumed_from, 0);
    assert_eq!(std::fs::read(dir.path().join("f")).expect("stored"), data);

    // A garbage sidecar: nothing is resumed.
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    cut_upload(&cfg, "f", size, &data[..1000], false)
        .await
        .expect("cut");
    let meta = entries(dir.path())
        .into_iter()
        .find(|n| n.ends_with(".meta"))
        .expect("a sidecar");
    std::fs::write(dir.path().join(meta), b"socklab-partial 1\nheld 99999999\n").expect("write");
    let (report, _) = upload_data(&cfg, "f", &data, true).await;
    assert_eq!(report.expect("upload").resumed_from, 0);
    assert_eq!(entries(dir.path()), ["f"]);

    // The sender allows only part of what is held.
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    cut_upload(&cfg, "f", size, &data[..1000], false)
        .await
        .expect("cut");
    let (addr, task) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(&header_bytes("f", size, 500)).await;
    let ok = hand.reply().await;
    assert_eq!((ok.status, ok.offset), (Status::Ok, 500));
    hand.send(&data[500..]).await;
    hand.send(&trailer_bytes(hash(&data))).await;
    assert_eq!(hand.reply().await.status, Status::Ok);
    drop(hand);
    assert!(matches!(
        task.await.expect("task"),
        Ok(Served::Uploaded {
            resumed_from: 500,
            ..
        })
    ));
    assert_eq!(std::fs::read(dir.path().join("f")).expect("stored"), data);
}

#[tokio::test]
async fn a_stalled_sender_times_out_and_its_bytes_are_kept() {
    let dir = tempdir();
    let cfg = ReceiverConfig {
        idle_timeout: std::time::Duration::from_millis(200),
        ..ReceiverConfig::new(dir.path())
    };
    let (addr, task) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(&header_bytes("slow", 10_000, 10_000)).await;
    assert_eq!(hand.reply().await.status, Status::Ok);
    hand.send(&[7; 1000]).await;
    // The test waits for the receiver to give up, not for a clock.
    let served = task.await.expect("task");
    let Ok(Served::Refused {
        status: Status::ShortData,
        kept: 1000,
        reason,
        ..
    }) = served
    else {
        panic!("{served:?}");
    };
    assert!(reason.contains("nothing arrived"), "{reason}");
    let reply = hand.reply().await;
    assert_eq!((reply.status, reply.offset), (Status::ShortData, 1000));
    assert!(holds_only_partial(dir.path()));
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_digest_is_refused_and_nothing_is_kept() {
    let data = content(70_000, 4);
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    // Once fresh, once after a resume.
    cut_upload(&cfg, "d", 70_000, &data[..1234], false)
        .await
        .expect("cut");
    for start in [1234u64, 0] {
        let (addr, task) = serve_once(&cfg).await;
        let mut hand = Hand::connect(addr).await;
        hand.send(&header_bytes("d", 70_000, 70_000)).await;
        let ok = hand.reply().await;
        assert_eq!(ok.offset, start);
        hand.send(&data[start as usize..]).await;
        let mut wrong = hash(&data);
        wrong[0] ^= 0xff;
        hand.send(&trailer_bytes(wrong)).await;
        let verdict = hand.reply().await;
        assert_eq!(
            (verdict.status, verdict.offset),
            (Status::DigestMismatch, 0)
        );
        assert!(
            verdict.reason.contains(&digest_hex(&hash(&data))),
            "{}",
            verdict.reason
        );
        drop(hand);
        let served = task.await.expect("task");
        assert!(matches!(
            served,
            Ok(Served::Refused {
                status: Status::DigestMismatch,
                kept: 0,
                ..
            })
        ));
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }
}

#[tokio::test]
async fn too_much_data_breaks_the_trailer_and_nothing_is_kept() {
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let (addr, task) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(&header_bytes("m", 5, 5)).await;
    assert_eq!(hand.reply().await.status, Status::Ok);
    hand.send(b"0123456789").await;
    hand.send(&trailer_bytes(hash(b"01234"))).await;
    assert_eq!(hand.reply().await.status, Status::BadHeader);
    drop(hand);
    assert_eq!(
        refused_status(&task.await.expect("task")),
        Some(Status::BadHeader)
    );
    assert!(entries(dir.path()).is_empty());
}

// ---------------------------------------------------------------------------
// Concurrency and overwrite
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_uploads_of_one_name_at_once_never_mix() {
    let a = content(200_000, 21);
    let b = content(150_000, 22);
    for overwrite in [false, true] {
        let dir = tempdir();
        let cfg = ReceiverConfig {
            overwrite,
            ..ReceiverConfig::new(dir.path())
        };
        let (addr, mut results, server) = serve_many(&cfg).await;
        // Both are accepted before either sends data.
        let mut first = Hand::connect(addr).await;
        first.send(&header_bytes("same", a.len() as u64, 0)).await;
        assert_eq!(first.reply().await.status, Status::Ok);
        let mut second = Hand::connect(addr).await;
        second.send(&header_bytes("same", b.len() as u64, 0)).await;
        assert_eq!(second.reply().await.status, Status::Ok);
        // The second finishes first.
        second.send(&b).await;
        second.send(&trailer_bytes(hash(&b))).await;
        assert_eq!(second.reply().await.status, Status::Ok);
        drop(second);
        assert_eq!(std::fs::read(dir.path().join("same")).expect("stored"), b);
        first.send(&a).await;
        first.send(&trailer_bytes(hash(&a))).await;
        let verdict = first.reply().await;
        drop(first);
        let (want_status, want) = if overwrite {
            (Status::Ok, &a)
        } else {
            (Status::Exists, &b)
        };
        assert_eq!(verdict.status, want_status, "{verdict:?}");
        assert_eq!(
            &std::fs::read(dir.path().join("same")).expect("stored"),
            want
        );
        for _ in 0..2 {
            results.recv().await.expect("a result").ok();
        }
        server.abort();
        assert_eq!(entries(dir.path()), ["same"], "overwrite {overwrite}");
    }
}

#[tokio::test]
async fn overwrite_is_refused_unless_allowed() {
    let dir = tempdir();
    std::fs::write(dir.path().join("x"), b"old").expect("write");
    let keep = ReceiverConfig::new(dir.path());
    let (report, served) = upload_data(&keep, "x", b"new", true).await;
    let err = report.expect_err("exists");
    assert!(
        matches!(
            &err,
            TransferError::Refused {
                status: Status::Exists,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(refused_status(&served), Some(Status::Exists));
    assert_eq!(std::fs::read(dir.path().join("x")).expect("read"), b"old");

    let replace = ReceiverConfig {
        overwrite: true,
        ..ReceiverConfig::new(dir.path())
    };
    let (report, _) = upload_data(&replace, "x", b"new", true).await;
    report.expect("replaced");
    assert_eq!(std::fs::read(dir.path().join("x")).expect("read"), b"new");
    assert_eq!(entries(dir.path()), ["x"]);

    // The same rule on the download side.
    let out = tempdir();
    let local = out.path().join("x");
    std::fs::write(&local, b"mine").expect("write");
    let (addr, task) = serve_once(&keep).await;
    let err = download(connect(addr).await, "x", &local, false, |_, _| {})
        .await
        .expect_err("exists");
    assert!(matches!(err, TransferError::Exists { .. }), "{err}");
    assert_eq!(std::fs::read(&local).expect("read"), b"mine");
    drop(task);
    let (addr, task) = serve_once(&keep).await;
    download(connect(addr).await, "x", &local, true, |_, _| {})
        .await
        .expect("replaced");
    task.await.expect("task").expect("served");
    assert_eq!(std::fs::read(&local).expect("read"), b"new");
    assert_eq!(entries(out.path()), ["x"]);

    // A symbolic link as the local destination is refused.
    std::os::unix::fs::symlink(dir.path().join("x"), out.path().join("ln")).expect("symlink");
    let (ours, _theirs) = tokio::io::duplex(64);
    let err = download(ours, "x", &out.path().join("ln"), true, |_, _| {})
        .await
        .expect_err("symlink");
    assert!(matches!(err, TransferError::Symlink { .. }), "{err}");
}

#[tokio::test]
async fn other_clients_are_served_while_one_stalls() {
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let (addr, mut results, server) = serve_many(&cfg).await;
    let mut stalled = Hand::connect(addr).await;
    stalled.send(&header_bytes("slow", 1000, 1000)[..12]).await;
    let src = tempdir();
    let file = write_file(src.path(), "s", b"meanwhile");
    upload(connect(addr).await, &file, "fast", false, |_, _| {})
        .await
        .expect("served while another stalls");
    assert!(matches!(
        results.recv().await.expect("result"),
        Ok(Served::Uploaded { .. })
    ));
    drop(stalled);
    assert!(matches!(
        results.recv().await.expect("result"),
        Err(TransferError::Closed { .. })
    ));
    server.abort();
    assert_eq!(entries(dir.path()), ["fast"]);
}

// ---------------------------------------------------------------------------
// A receiver that refuses mid-stream, a sender that lies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_refusal_mid_stream_reaches_the_uploader() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        let mut hand = Hand::wrap(s);
        let header = hand.read(Header::decode).await.expect("header");
        hand.send(&reply_bytes(Status::Ok, 0, "ready")).await;
        hand.data(100_000).await;
        hand.send(&reply_bytes(Status::NoSpace, 0, "disk full (test)"))
            .await;
        hand.s.shutdown().await.expect("shutdown");
        hand.until_eof().await;
        header
    });
    let src = tempdir();
    let file = write_file(src.path(), "big", &content(16 << 20, 5));
    let err = upload(connect(addr).await, &file, "big", false, |_, _| {})
        .await
        .expect_err("refused mid-stream");
    assert!(
        matches!(&err, TransferError::Refused { peer: "receiver", status: Status::NoSpace, reason, .. } if reason == "disk full (test)"),
        "{err}"
    );
    assert_eq!(fake.await.expect("fake").size, 16 << 20);
}

/// A fake download server: answers the request, sends a header, `data` and
/// (if given) a trailer, and returns the client's verdict if one comes.
async fn fake_download_server(
    name: &'static str,
    size: u64,
    data: Vec<u8>,
    trailer: Option<[u8; 32]>,
) -> (SocketAddr, JoinHandle<(Request, Option<Reply>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        let mut hand = Hand::wrap(s);
        let request = hand.read(Request::decode).await.expect("request");
        let start = request.resume_at(size);
        hand.send(&reply_bytes(Status::Ok, start, "sending")).await;
        let mut out = Vec::new();
        Header {
            name: name.to_owned(),
            size,
            alg: DigestAlg::Blake3,
            offset: start,
        }
        .encode(&mut out)
        .expect("encode");
        hand.send(&out).await;
        hand.send(&data[start as usize..]).await;
        let verdict = match trailer {
            Some(digest) => {
                hand.send(&trailer_bytes(digest)).await;
                hand.read(Reply::decode).await
            }
            None => None,
        };
        (request, verdict)
    });
    (addr, task)
}

#[tokio::test]
async fn downloads_verify_keep_cut_data_and_resume() {
    let data = content(300_000, 11);
    let size = data.len() as u64;
    let out = tempdir();
    let local = out.path().join("got.bin");

    // Cut after 100 000 bytes: nothing under the name, the bytes kept.
    let (addr, fake) = fake_download_server("f", size, data[..100_000].to_vec(), None).await;
    let err = download(connect(addr).await, "f", &local, false, |_, _| {})
        .await
        .expect_err("cut");
    assert!(
        matches!(
            &err,
            TransferError::Stopped {
                status: Status::ShortData,
                kept: 100_000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(fake.await.expect("fake").0.offset, 0);
    assert!(!local.exists());
    assert!(holds_only_partial(out.path()), "{:?}", entries(out.path()));

    // A lying server: the right bytes, the wrong digest. The resumed
    // prefix and the new bytes are all discarded.
    let mut wrong = hash(&data);
    wrong[31] ^= 1;
    let (addr, fake) = fake_download_server("f", size, data.clone(), Some(wrong)).await;
    let err = download(connect(addr).await, "f", &local, false, |_, _| {})
        .await
        .expect_err("mismatch");
    assert_eq!(err.status(), Some(Status::DigestMismatch), "{err}");
    let (request, verdict) = fake.await.expect("fake");
    assert_eq!(request.offset, 100_000, "resume offered");
    assert_eq!(verdict.map(|r| r.status), Some(Status::DigestMismatch));
    assert!(entries(out.path()).is_empty(), "{:?}", entries(out.path()));

    // Cut again, then resume from a real server.
    let (addr, fake) = fake_download_server("f", size, data[..123_456].to_vec(), None).await;
    download(connect(addr).await, "f", &local, false, |_, _| {})
        .await
        .expect_err("cut");
    fake.await.expect("fake");
    let srv = tempdir();
    write_file(srv.path(), "f", &data);
    let (addr, task) = serve_once(&ReceiverConfig::new(srv.path())).await;
    let report = download(connect(addr).await, "f", &local, false, |_, _| {})
        .await
        .expect("resumed");
    assert_eq!(
        (report.resumed_from, report.received),
        (123_456, size - 123_456)
    );
    assert_eq!(report.digest, hash(&data));
    assert!(matches!(
        task.await.expect("task"),
        Ok(Served::Downloaded {
            offset: 123_456,
            ..
        })
    ));
    assert_eq!(std::fs::read(&local).expect("read"), data);
    assert_eq!(entries(out.path()), ["got.bin"]);

    // A header for another file is refused.
    let (addr, fake) = fake_download_server("other", 3, b"abc".to_vec(), Some(hash(b"abc"))).await;
    let err = download(
        connect(addr).await,
        "f",
        &out.path().join("o"),
        false,
        |_, _| {},
    )
    .await
    .expect_err("wrong header");
    assert!(matches!(err, TransferError::Unexpected { .. }), "{err}");
    drop(fake);
    assert_eq!(entries(out.path()), ["got.bin"]);
}

// ---------------------------------------------------------------------------
// Raw (lecture §12)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn raw_upload_to_raw_receive_is_byte_identical() {
    let data = content(CHUNK * 5 + 17, 31);
    let src = tempdir();
    let file = write_file(src.path(), "hg.txt", &data);
    let dst = tempdir();
    let dest = dst.path().join("hg.txt");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let receiver = {
        let dest = dest.clone();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            receive_raw(s, &dest, false).await
        })
    };
    let mut last = (0, 0);
    let sent = upload_raw(connect(addr).await, &file, |n, t| last = (n, t))
        .await
        .expect("raw upload");
    let got = receiver.await.expect("task").expect("raw receive");
    assert_eq!(sent.bytes, data.len() as u64);
    assert_eq!(last, (sent.bytes, sent.bytes));
    assert!(sent.peer_closed);
    assert_eq!(got.bytes, sent.bytes);
    assert_eq!(got.digest, sent.digest);
    assert_eq!(got.digest, hash(&data));
    assert_eq!(std::fs::read(&dest).expect("read"), data);
    assert_eq!(entries(dst.path()), ["hg.txt"]);
    assert!(got.to_string().contains("nothing was verified"));
}

#[tokio::test]
async fn raw_receive_from_a_plain_client_and_raw_upload_to_a_plain_server() {
    // The lecture's client: write everything, shut down, wait for close.
    let dst = tempdir();
    let dest = dst.path().join("绕口令.txt");
    let data = "四是四，十是十\n".repeat(5000).into_bytes();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let receiver = {
        let dest = dest.clone();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            receive_raw(s, &dest, false).await
        })
    };
    let mut client = connect(addr).await;
    for piece in data.chunks(1024) {
        client.write_all(piece).await.expect("write");
    }
    client.shutdown().await.expect("shutdown");
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.expect("read to end");
    let got = receiver.await.expect("task").expect("raw receive");
    assert_eq!(got.bytes, data.len() as u64);
    assert_eq!(std::fs::read(&dest).expect("read"), data);

    // The lecture's server: read until end of stream, then close.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.expect("read");
        all
    });
    let sent = upload_raw(connect(addr).await, &dest, |_, _| {})
        .await
        .expect("raw upload");
    assert_eq!(server.await.expect("server"), data);
    assert!(sent.peer_closed);
}

#[tokio::test]
async fn raw_receive_refuses_links_and_existing_files_and_drops_reset_streams() {
    let dst = tempdir();
    let outside = tempdir();
    std::fs::write(outside.path().join("t"), b"untouched").expect("write");
    std::os::unix::fs::symlink(outside.path().join("t"), dst.path().join("ln")).expect("symlink");
    std::fs::write(dst.path().join("old"), b"old").expect("write");
    for (name, overwrite) in [("ln", true), ("old", false)] {
        let (ours, _theirs) = tokio::io::duplex(64);
        let err = receive_raw(ours, &dst.path().join(name), overwrite)
            .await
            .expect_err("refused");
        assert!(
            matches!(
                err,
                TransferError::Symlink { .. } | TransferError::Exists { .. }
            ),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(outside.path().join("t")).expect("read"),
        b"untouched"
    );
    assert_eq!(std::fs::read(dst.path().join("old")).expect("read"), b"old");

    // A connection reset is not an end of file: nothing is saved.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let dest = dst.path().join("reset");
    let receiver = {
        let dest = dest.clone();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            receive_raw(s, &dest, false).await
        })
    };
    let mut hand = Hand::connect(addr).await;
    hand.send(&[1; 5000]).await;
    hand.reset();
    let err = receiver.await.expect("task").expect_err("reset");
    assert!(matches!(err, TransferError::Connection { .. }), "{err}");
    assert_eq!(entries(dst.path()), ["ln", "old"]);
}

// ---------------------------------------------------------------------------
// Pieces
// ---------------------------------------------------------------------------

#[test]
fn sidecar_round_trips_and_rejects_garbage() {
    let meta = Meta {
        name: "绕口令.txt".to_owned(),
        size: 1000,
        alg: DigestAlg::Blake3,
        held: 600,
        digest: hash(b"x"),
    };
    assert_eq!(Meta::parse(&meta.encode()), Some(meta.clone()));
    let text = meta.encode();
    for bad in [
        String::new(),
        text.replace("held 600", "held 1001"),
        text.replace("alg 1", "alg 2"),
        text.replace("socklab-partial 1", "socklab-partial 2"),
        format!("{text}extra\n"),
        text.replace("size 1000", "size -1"),
        text.lines().take(4).collect::<Vec<_>>().join("\n"),
    ] {
        assert_eq!(Meta::parse(&bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn offered_files_are_plain_files_only() {
    let dir = tempdir();
    std::fs::write(dir.path().join("b.txt"), b"bb").expect("write");
    std::fs::write(dir.path().join("a.txt"), b"a").expect("write");
    std::fs::write(dir.path().join(".socklab-x.part"), b"p").expect("write");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("ln")).expect("symlink");
    let offered = list_offered(dir.path()).await.expect("list");
    assert_eq!(
        offered,
        [
            Offered {
                name: "a.txt".to_owned(),
                size: 1
            },
            Offered {
                name: "b.txt".to_owned(),
                size: 2
            }
        ]
    );
}

#[test]
fn digests_print_as_lowercase_hex_and_reports_as_one_line() {
    let digest = hash(b"hello world");
    assert_eq!(
        digest_hex(&digest),
        blake3::hash(b"hello world").to_hex().as_str()
    );
    let report = UploadReport {
        name: "hg.txt".to_owned(),
        size: 2 * 1024 * 1024,
        sent: 1024 * 1024,
        resumed_from: 1024 * 1024,
        digest,
        elapsed: std::time::Duration::from_millis(500),
    };
    assert_eq!(report.mib_per_s(), 2.0);
    assert_eq!(
        report.to_string(),
        format!(
            "uploaded \"hg.txt\": 2097152 bytes (resumed at 1048576, sent 1048576) in 0.500 s, 2.00 MiB/s, blake3 {} (verified by the receiver)",
            digest_hex(&digest)
        )
    );
    assert!(!report.to_string().contains('\n'));
}

#[tokio::test]
async fn a_cancelled_receiver_leaves_no_working_file() {
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let (addr, task) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(&header_bytes("c", 100_000, 100_000)).await;
    assert_eq!(hand.reply().await.status, Status::Ok);
    hand.send(&[1; 10_000]).await;
    task.abort();
    assert!(task.await.expect_err("cancelled").is_cancelled());
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[tokio::test]
async fn a_kept_download_partial_of_another_size_is_discarded() {
    let out = tempdir();
    let local = out.path().join("f");
    let old = content(300_000, 1);
    let (addr, fake) = fake_download_server("f", 300_000, old[..1000].to_vec(), None).await;
    download(connect(addr).await, "f", &local, false, |_, _| {})
        .await
        .expect_err("cut");
    fake.await.expect("fake");
    assert!(holds_only_partial(out.path()));

    let new = content(200_000, 2);
    let (addr, fake) = fake_download_server("f", 200_000, new.clone(), Some(hash(&new))).await;
    let err = download(connect(addr).await, "f", &local, false, |_, _| {})
        .await
        .expect_err("stale partial");
    assert!(
        matches!(
            &err,
            TransferError::Stopped {
                status: Status::DigestMismatch,
                kept: 0,
                ..
            }
        ),
        "{err}"
    );
    let (request, _) = fake.await.expect("fake");
    assert_eq!(request.offset, 1000);
    assert!(entries(out.path()).is_empty(), "{:?}", entries(out.path()));

    // The next attempt starts afresh and succeeds.
    let srv = tempdir();
    write_file(srv.path(), "f", &new);
    let (addr, _task) = serve_once(&ReceiverConfig::new(srv.path())).await;
    let report = download(connect(addr).await, "f", &local, false, |_, _| {})
        .await
        .expect("fresh");
    assert_eq!(report.resumed_from, 0);
    assert_eq!(std::fs::read(&local).expect("read"), new);
}

/// The shell runs transfers in spawned tasks: their futures must be `Send`.
#[test]
fn transfer_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let cfg = ReceiverConfig::new("/nonexistent");
    let path = Path::new("/nonexistent");
    let (a, _) = tokio::io::duplex(1);
    let served = serve_connection(a, &cfg);
    is_send(&served);
    let (a, _) = tokio::io::duplex(1);
    let up = upload(a, path, "x", true, |_, _| {});
    is_send(&up);
    let (a, _) = tokio::io::duplex(1);
    let down = download(a, "x", path, false, |_, _| {});
    is_send(&down);
    let (a, _) = tokio::io::duplex(1);
    let raw_up = upload_raw(a, path, |_, _| {});
    is_send(&raw_up);
    let (a, _) = tokio::io::duplex(1);
    let raw_in = receive_raw(a, path, false);
    is_send(&raw_in);
}

// ---------------------------------------------------------------------------
// Issue 10: faults
// ---------------------------------------------------------------------------

/// Bytes of kept partials in `dir` re-hashed from disk so far.
fn rehashed_in(dir: &Path) -> u64 {
    store::REHASHED
        .lock()
        .expect("counts")
        .get(dir)
        .copied()
        .unwrap_or(0)
}

/// Issue 10 item 14: a resume header does not make the receiver re-hash
/// the whole partial. 20 resume headers against a 2 MiB partial (each
/// connection then closes: a cut, which keeps the partial again) re-read
/// none of it (before: 20 × 2 MiB = 40 MiB hashed); the final resumed
/// upload is still verified end to end.
#[tokio::test]
async fn resume_headers_do_not_rehash_the_partial() {
    let data = content(4 << 20, 14);
    let size = data.len() as u64;
    let held = 2u64 << 20;
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let cut = cut_upload(&cfg, "big", size, &data[..held as usize], false).await;
    assert!(
        matches!(cut, Ok(Served::Refused { kept, .. }) if kept == held),
        "{cut:?}"
    );
    for _ in 0..20 {
        let (addr, task) = serve_once(&cfg).await;
        let mut hand = Hand::connect(addr).await;
        hand.send(&header_bytes("big", size, size)).await;
        let ok = hand.reply().await;
        assert_eq!((ok.status, ok.offset), (Status::Ok, held));
        drop(hand);
        let served = task.await.expect("server task");
        assert!(
            matches!(served, Ok(Served::Refused { kept, .. }) if kept == held),
            "{served:?}"
        );
    }
    assert_eq!(
        rehashed_in(dir.path()),
        0,
        "bytes re-hashed for 20 resume headers"
    );
    let (report, served) = upload_data(&cfg, "big", &data, true).await;
    assert_eq!(report.expect("upload").resumed_from, held, "{served:?}");
    assert_eq!(std::fs::read(dir.path().join("big")).expect("stored"), data);
    assert_eq!(rehashed_in(dir.path()), 0);
}

/// Issue 10 item 14: a partial changed on disk since it was kept is
/// re-hashed (once) and, its digest no longer matching, not resumed.
#[tokio::test]
async fn a_changed_partial_is_rehashed_and_discarded() {
    let data = content(100_000, 15);
    let size = data.len() as u64;
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    cut_upload(&cfg, "f", size, &data[..50_000], false)
        .await
        .expect("cut");
    let part = dir.path().join(
        entries(dir.path())
            .into_iter()
            .find(|n| n.ends_with(".part"))
            .expect("a partial"),
    );
    let mut bytes = std::fs::read(&part).expect("read");
    bytes[7] ^= 1;
    std::fs::write(&part, bytes).expect("write");
    let (report, _) = upload_data(&cfg, "f", &data, true).await;
    assert_eq!(report.expect("upload").resumed_from, 0);
    assert_eq!(rehashed_in(dir.path()), 50_000);
    assert_eq!(std::fs::read(dir.path().join("f")).expect("stored"), data);
}

/// Issue 10 item 16: a `.part` planted in the receiving directory (mode
/// 0644, with a sidecar that matches it) is not resumed from: it is
/// replaced, the upload starts at byte 0, and the stored file has mode
/// 0600 (before: it resumed after the planted bytes and kept 0644).
#[tokio::test]
async fn a_planted_partial_is_replaced_and_files_are_stored_0600() {
    use std::os::unix::fs::PermissionsExt;
    let data = content(10_000, 16);
    let size = data.len() as u64;
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let key = store::slot_key(b"p.bin");
    let part = dir.path().join(format!("{RESERVED_PREFIX}{key}.part"));
    let meta = dir.path().join(format!("{RESERVED_PREFIX}{key}.meta"));
    std::fs::write(&part, &data[..4000]).expect("plant");
    std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let record = Meta {
        name: "p.bin".to_owned(),
        size,
        alg: DigestAlg::Blake3,
        held: 4000,
        digest: hash(&data[..4000]),
    };
    std::fs::write(&meta, record.encode()).expect("plant sidecar");
    let (report, served) = upload_data(&cfg, "p.bin", &data, true).await;
    assert_eq!(report.expect("upload").resumed_from, 0, "{served:?}");
    let stored = dir.path().join("p.bin");
    assert_eq!(std::fs::read(&stored).expect("stored"), data);
    let mode = std::fs::metadata(&stored)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o600);
    assert_eq!(entries(dir.path()), ["p.bin"]);
}

/// Issue 10 item 16: a resume slot does not survive a later complete
/// upload of the same name. One upload holds the slot (its header
/// answered, some data sent); another uploads the whole file meanwhile
/// (through a temporary file); when the first is cut, it keeps nothing
/// (before: its partial stayed, for a name that is complete).
#[tokio::test]
async fn a_complete_upload_leaves_no_stale_resume_slot() {
    let data = content(50_000, 17);
    let size = data.len() as u64;
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let (addr, first) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(&header_bytes("s.bin", size, size)).await;
    assert_eq!(hand.reply().await.status, Status::Ok);
    hand.send(&data[..10_000]).await;
    let (report, _) = upload_data(&cfg, "s.bin", &data, true).await;
    assert_eq!(report.expect("upload").resumed_from, 0);
    drop(hand);
    let served = first.await.expect("server task");
    assert!(
        matches!(served, Ok(Served::Refused { kept: 0, .. })),
        "{served:?}"
    );
    assert_eq!(entries(dir.path()), ["s.bin"]);
    assert_eq!(
        std::fs::read(dir.path().join("s.bin")).expect("stored"),
        data
    );
}

/// Issue 10 item 10: a transfer cancelled while it writes its resume
/// record leaves nothing behind: the record is written whole before the
/// clean-up of the dropped transfer runs, or not at all. Driven through
/// the store: `keep` is polled until its blocking write has started, then
/// the transfer is dropped (as a session's teardown drops it).
#[test]
fn a_resume_record_being_written_at_teardown_leaves_nothing() {
    for round in 0..64 {
        let dir = tempdir();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut work = store::Work::open(dir.path(), b"t.bin").await.expect("open");
            work.file.write_all(&[7; 4096]).await.expect("write");
            let meta = Meta {
                name: "t.bin".to_owned(),
                size: 8192,
                alg: DigestAlg::Blake3,
                held: 4096,
                digest: hash(&[7; 4096]),
            };
            let hasher = blake3::Hasher::new();
            let new_meta = dir.path().join(format!(
                "{RESERVED_PREFIX}{}.meta-new",
                store::slot_key(b"t.bin")
            ));
            // Drive the keep until its record is being written (the `-new`
            // file exists), then drop it and the working file there, as a
            // session's teardown drops a transfer. Bounded: a round whose
            // keep finished first just checks the other order.
            let keep = work.keep(&meta, &hasher);
            tokio::pin!(keep);
            for _ in 0..100_000 {
                if futures_poll_once(keep.as_mut()).await.is_some() || new_meta.exists() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        });
        // The runtime's end waits for every blocking call it started.
        drop(rt);
        let left = entries(dir.path());
        assert!(
            left.is_empty() || holds_only_partial(dir.path()),
            "round {round}: {left:?}"
        );
        assert!(
            !left.iter().any(|n| n.ends_with("-new")),
            "round {round}: {left:?}"
        );
    }
}

/// Polls a future once; its output if it was ready.
async fn futures_poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let mut f = f;
    std::future::poll_fn(|cx| match f.as_mut().poll(cx) {
        std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

/// Issue 10 item 11: a client that trickles its header is cut at the
/// header deadline (the whole header is due, not each byte), and one that
/// trickles its data is cut by the rate floor, which a byte now and then
/// does not reset; the trickled data is kept for a resume.
#[tokio::test]
async fn trickles_are_cut_by_the_header_deadline_and_the_rate_floor() {
    use std::time::Duration;
    let dir = tempdir();
    let mut cfg = ReceiverConfig::new(dir.path());
    cfg.header_deadline = Duration::from_millis(300);
    cfg.floor = Some(Floor {
        bytes: 1000,
        window: Duration::from_millis(300),
    });
    let header = header_bytes("t.bin", 100_000, 100_000);

    let (addr, task) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    let trickle = async {
        for b in &header[..20] {
            if hand.s.write_all(std::slice::from_ref(b)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    };
    let (_, served) = tokio::join!(trickle, task);
    assert!(
        matches!(served.expect("task"), Err(TransferError::Timeout { .. })),
        "a trickled header is cut at the deadline"
    );

    let (addr, task) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(&header).await;
    assert_eq!(hand.reply().await.status, Status::Ok);
    let trickle = async {
        for _ in 0..40 {
            if hand.s.write_all(&[1]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    };
    let (_, served) = tokio::join!(trickle, task);
    match served.expect("task") {
        Ok(Served::Refused {
            status,
            reason,
            kept,
            ..
        }) => {
            assert_eq!(status, Status::ShortData);
            assert!(reason.contains("too slow"), "{reason}");
            assert!(kept > 0);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Issue 11: the data on a thread of its own
// ---------------------------------------------------------------------------

/// Reads until the end of stream (or a reset); how many bytes came. Gives
/// up after 30 s: a connection still open then is held by a stray thread.
async fn drain_to_eof(hand: &mut Hand) -> Option<usize> {
    let mut total = hand.buf.len();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(30), hand.s.read(&mut chunk))
                .await
                .ok()?;
        match read {
            Ok(0) | Err(_) => return Some(total),
            Ok(n) => total += n,
        }
    }
}

#[tokio::test]
async fn a_dropped_upload_stops_its_thread_and_closes_the_connection() {
    let size = 40 * 1024 * 1024;
    let src = tempdir();
    let file = write_file(src.path(), "big.bin", &content(size, 41));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (flowing, data_came) = tokio::sync::oneshot::channel::<()>();
    let (dropped, upload_gone) = tokio::sync::oneshot::channel::<()>();
    let peer = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        let mut hand = Hand::wrap(s);
        hand.read(Header::decode).await.expect("a header");
        hand.send(&reply_bytes(Status::Ok, 0, "ready")).await;
        hand.data(1).await;
        let _ = flowing.send(());
        let _ = upload_gone.await;
        drain_to_eof(&mut hand).await
    });
    let upload = upload(connect(addr).await, &file, "big.bin", false, |_, _| {});
    tokio::select! {
        r = upload => panic!("the peer took 1 byte: the upload cannot end ({r:?})"),
        _ = data_came => {}
    }
    // The upload's future is gone (as on Ctrl-C or a deadline).
    let _ = dropped.send(());
    let got = peer.await.expect("peer task");
    let got = got.expect("the connection closes when the upload is dropped");
    assert!(
        got < size,
        "a dropped upload stops sending: {got} of {size} bytes came"
    );
}

#[tokio::test]
async fn a_cancelled_receiver_closes_the_connection_at_once() {
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let (addr, task) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    hand.send(&header_bytes("c", 100_000_000, 0)).await;
    assert_eq!(hand.reply().await.status, Status::Ok);
    hand.send(&[1; 100_000]).await;
    task.abort();
    assert!(task.await.expect_err("cancelled").is_cancelled());
    assert!(
        drain_to_eof(&mut hand).await.is_some(),
        "the receiver's connection closes with its task"
    );
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[tokio::test]
async fn pieces_larger_than_the_thread_buffer_and_odd_sizes_round_trip() {
    for size in [
        pump::BIG - 1,
        pump::BIG,
        pump::BIG + 1,
        3 * pump::BIG + 12_345,
    ] {
        let srv = tempdir();
        let cfg = ReceiverConfig::new(srv.path());
        let data = content(size, size as u64);
        let (report, served) = upload_data(&cfg, "f.bin", &data, false).await;
        let report = report.expect("upload");
        assert_eq!(report.digest, hash(&data), "{size}");
        assert!(matches!(served, Ok(Served::Uploaded { .. })), "{served:?}");
        assert_eq!(std::fs::read(srv.path().join("f.bin")).expect("read"), data);
        let out = tempdir();
        let local = out.path().join("back.bin");
        let (addr, task) = serve_once(&cfg).await;
        let got = download(connect(addr).await, "f.bin", &local, false, |_, _| {})
            .await
            .expect("download");
        assert!(matches!(
            task.await.expect("task"),
            Ok(Served::Downloaded { .. })
        ));
        assert_eq!(got.digest, hash(&data));
        assert_eq!(std::fs::read(&local).expect("read"), data);
    }
}

/// Regression (issue 11): the receiving thread raises the socket's
/// low-water mark while data flows. A trailer that comes after a pause,
/// once the connection is back with tokio, is smaller than that mark: the
/// mark must be back at one byte, or tokio is never told the trailer came
/// and the upload hangs until its idle limit.
#[tokio::test]
async fn a_trailer_that_comes_after_a_pause_is_read_at_once() {
    let dir = tempdir();
    let cfg = ReceiverConfig::new(dir.path());
    let (addr, task) = serve_once(&cfg).await;
    let mut hand = Hand::connect(addr).await;
    let data = content(3 * pump::BIG + 7, 11);
    hand.send(&header_bytes("late.bin", data.len() as u64, 0))
        .await;
    assert_eq!(hand.reply().await.status, Status::Ok);
    hand.send(&data).await;
    // Long enough for the thread to end and hand the socket back.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    hand.send(&trailer_bytes(hash(&data))).await;
    let verdict = tokio::time::timeout(std::time::Duration::from_secs(10), hand.reply())
        .await
        .expect("the verdict comes without waiting for the idle limit");
    assert_eq!(verdict.status, Status::Ok, "{verdict:?}");
    assert!(matches!(
        task.await.expect("task"),
        Ok(Served::Uploaded { .. })
    ));
    assert_eq!(
        std::fs::read(dir.path().join("late.bin")).expect("read"),
        data
    );
}

/// Regression (issue 11, found in review): a receiver that refuses at once,
/// its refusal in the same packet as its "ready", was only heard after the
/// sender had sent the whole file: the transfer thread reads the socket
/// itself and never looked at what the connection had read already.
#[tokio::test]
async fn a_refusal_sent_with_the_ready_reply_stops_the_upload_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        let mut hand = Hand::wrap(s);
        let header = hand.read(Header::decode).await.expect("header");
        let mut both = reply_bytes(Status::Ok, 0, "ready");
        both.extend(reply_bytes(Status::NoSpace, 0, "full at once (test)"));
        hand.send(&both).await;
        // Everything the sender sends until it closes.
        let mut got = 0usize;
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(30), hand.s.read(&mut chunk))
                .await
            {
                Ok(Ok(n)) if n > 0 => got += n,
                _ => break,
            }
        }
        (header, got)
    });
    let src = tempdir();
    let size = 64usize << 20;
    let file = write_file(src.path(), "big", &content(size, 9));
    let err = upload(connect(addr).await, &file, "big", false, |_, _| {})
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, TransferError::Refused { peer: "receiver", status: Status::NoSpace, reason, .. } if reason == "full at once (test)"),
        "{err}"
    );
    let (header, got) = fake.await.expect("fake");
    assert_eq!(header.size, size as u64);
    assert_eq!(
        got, 0,
        "no data follows a refusal the sender had already read"
    );
}

/// The same, the refusal split: its first bytes come with the "ready"
/// reply, the rest later. The bytes the connection had read go to the
/// transfer thread, which reads the rest: the refusal arrives whole.
#[tokio::test]
async fn a_refusal_begun_with_the_ready_reply_is_read_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        let mut hand = Hand::wrap(s);
        hand.read(Header::decode).await.expect("header");
        let ready = reply_bytes(Status::Ok, 0, "ready");
        let refusal = reply_bytes(Status::NoSpace, 0, "full, said in two parts (test)");
        let mut first = ready.clone();
        first.extend_from_slice(&refusal[..5]);
        hand.send(&first).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        hand.send(&refusal[5..]).await;
        hand.until_eof().await;
    });
    let src = tempdir();
    let file = write_file(src.path(), "big", &content(64 << 20, 3));
    let err = upload(connect(addr).await, &file, "big", false, |_, _| {})
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, TransferError::Refused { peer: "receiver", status: Status::NoSpace, reason, .. } if reason == "full, said in two parts (test)"),
        "{err}"
    );
    fake.await.expect("fake");
}
