//! File transfer (lecture §12, done right): `serve files|raw`, `upload`,
//! `download`, and the small file commands lessons need (`write`, `files`,
//! `compare`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use socklab_net::transfer::{self, digest_hex, ReceiverConfig, TransferError};
use socklab_net::{FileService, Role};
use tokio::net::TcpStream;

use super::common::data_of;
use crate::args::{host_port, number_of, Args, CmdError, CmdResult, Exit};
use crate::parse::{Span, Token};
use crate::render::{self, Tmp};
use crate::session::Session;

/// A failed transfer as a command's error (paths under `{tmp}` written so).
fn transfer_error(e: TransferError, tmp: Tmp<'_>) -> CmdError {
    let exit = if e.status().is_some() {
        Exit::Data
    } else if matches!(
        e,
        TransferError::Timeout { .. } | TransferError::TooSlow { .. }
    ) {
        Exit::TempFail
    } else {
        Exit::Io
    };
    CmdError::new(exit, tmp.text(&e.to_string()))
}

/// A path argument (a word or a quoted string).
fn path_of(t: &Token) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&t.bytes()).into_owned())
}

/// `serve files DIR [HOST] PORT [as NAME] [overwrite] [max-size SIZE]`,
/// `serve raw FILE [HOST] PORT [as NAME] [overwrite]`
pub async fn serve(s: &mut Session, mut a: Args) -> CmdResult {
    let name = a.as_name()?;
    let overwrite = a.keyword_anywhere("overwrite");
    let max_size = match a.option("max-size", "a size like 10M")? {
        Some(t) => Some(number_of(&t, "a size", 0..=u64::MAX)?),
        None => None,
    };
    let (kind, kind_span) = a.choice("what to serve", &["files", "raw"])?;
    let target = a.token(if kind == "files" {
        "a directory"
    } else {
        "a file to save into"
    })?;
    let path = path_of(&target);
    let (addr, pt) = host_port(&mut a).await?;
    a.done()?;
    let service = if kind == "files" {
        files_service(s, &target, overwrite, max_size)?
    } else {
        raw_service(&target, kind_span, overwrite, max_size)?
    };
    let info = s
        .lab
        .serve_files(addr, name.as_deref(), service)
        .map_err(|e| CmdError::from(e).os_at(pt.span))?;
    let local = info.local.unwrap_or(addr);
    let port_note = super::sockets::port_note(addr.port(), info.local);
    s.say(format!(
        "{}: serving on {}{port_note}",
        info.name,
        render::addr(&local)
    ));
    s.say(serving_text(s.tmp(), kind, &path, max_size, overwrite));
    super::sockets::note_exposure(s, local);
    Ok(())
}

/// `serve files DIR`: verified uploads into DIR, downloads from it.
fn files_service(
    s: &Session,
    target: &Token,
    overwrite: bool,
    max_size: Option<u64>,
) -> CmdResult<FileService> {
    let path = path_of(target);
    if !path.is_dir() {
        return Err(CmdError::at(
            target.span,
            format!("{} is not a directory", s.tmp().path(&path)),
        ));
    }
    let mut cfg = ReceiverConfig::new(&path);
    cfg.overwrite = overwrite;
    cfg.max_size = max_size;
    Ok(FileService::Files(cfg))
}

/// `serve raw FILE`: what each client sends, saved as FILE.
fn raw_service(
    target: &Token,
    kind_span: Span,
    overwrite: bool,
    max_size: Option<u64>,
) -> CmdResult<FileService> {
    let path = path_of(target);
    if max_size.is_some() {
        return Err(CmdError::at(
            kind_span,
            "max-size needs a declared size: raw uploads declare none",
        ));
    }
    match path.parent() {
        Some(d) if d.as_os_str().is_empty() || d.is_dir() => {}
        _ => {
            return Err(CmdError::at(
                target.span,
                "the file's directory does not exist",
            ))
        }
    }
    Ok(FileService::Raw {
        dest: path,
        overwrite,
    })
}

/// What a file server does with what it receives.
fn serving_text(
    tmp: Tmp<'_>,
    kind: &str,
    path: &Path,
    max_size: Option<u64>,
    overwrite: bool,
) -> String {
    let dir = tmp.path(path).to_string();
    if kind == "files" {
        let id = match (max_size.is_some(), overwrite) {
            (true, true) => "serve-files-max-replace",
            (true, false) => "serve-files-max-keep",
            (false, true) => "serve-files-replace",
            (false, false) => "serve-files-keep",
        };
        let max = max_size.map(|m| m.to_string()).unwrap_or_default();
        super::sockets::note(id, &[("dir", &dir), ("max", &max)])
    } else {
        super::sockets::note("serve-raw", &[("path", &dir)])
    }
}

/// A connection for a transfer: an existing connection taken out of the
/// lab, or, for a file server of this shell, a new one.
async fn transfer_stream(s: &Session, name: String, span: Span) -> CmdResult<(String, TcpStream)> {
    let info = s
        .lab
        .info(&name)
        .map_err(|e| CmdError::from(e).or_at(span))?;
    match info.role {
        Role::Stream => {
            let stream = s.lab.take_stream(&name).await?;
            Ok((name, stream))
        }
        Role::Listener => {
            let stream = s.lab.listener_stream(&name).await.map_err(|e| {
                let e = CmdError::from(e);
                CmdError {
                    message: format!("connect to {name}: {}", e.message),
                    ..e
                }
            })?;
            Ok((name, stream))
        }
        _ => Err(CmdError::at(span, format!("{name} is not a connection"))),
    }
}

/// A progress bar on a terminal; nothing in a script (one summary line
/// instead).
fn progress_bar(s: &Session, what: &str) -> Option<ProgressBar> {
    if !s.interactive {
        return None;
    }
    let pb = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    Some(pb)
}

/// How long a transfer waits for its peer without progress: `timeout DUR`,
/// else the script's `--wait`, else [`transfer::DEFAULT_IDLE_TIMEOUT`].
fn transfer_wait(s: &Session, a: &mut Args) -> CmdResult<Duration> {
    Ok(a.timeout()?
        .or(s.wait_limit)
        .unwrap_or(transfer::DEFAULT_IDLE_TIMEOUT))
}

/// `upload NAME FILE [as REMOTE_NAME] [resume] [timeout DUR]`,
/// `upload --raw NAME FILE [timeout DUR]`
pub async fn upload(s: &mut Session, mut a: Args) -> CmdResult {
    let raw = a.keyword_anywhere("--raw") || a.keyword_anywhere("raw");
    let resume = a.keyword_anywhere("resume");
    let wait = transfer_wait(s, &mut a)?;
    let remote = a.as_name_raw()?;
    if let Some(r) = &remote {
        socklab_frame::check_name(r).map_err(|why| {
            CmdError::new(
                Exit::Data,
                format!("{r:?} is not a file name a receiver accepts: {why}"),
            )
        })?;
    }
    let (name, span) = a.word("a connection (or a file server of this shell)")?;
    let ft = a.token("a file to upload")?;
    a.done()?;
    let file = path_of(&ft);
    if !file.is_file() {
        return Err(CmdError::at(
            ft.span,
            format!("{} is not a file", s.tmp().path(&file)),
        ));
    }
    let (name, stream) = transfer_stream(s, name, span).await?;
    let ends = Ends::of(&stream);
    let pb = progress_bar(s, &format!("upload {}", s.tmp().path(&file)));
    if raw {
        return upload_raw(s, &name, stream, &file, wait, ends, pb).await;
    }
    let remote_name = match remote {
        Some(r) => r,
        None => file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| CmdError::at(ft.span, "name it with `as NAME`"))?,
    };
    let report =
        transfer::upload_within(stream, &file, &remote_name, resume, wait, progress(&pb)).await;
    let r = ends.finish(s, pb, report).await?;
    s.say(format!(
        "{name} -> uploaded {}: {} bytes{} in {}, blake3 {} (verified by the receiver)",
        transfer::quote_name(&r.name),
        r.size,
        resumed(r.resumed_from),
        timing(r.elapsed, r.sent),
        digest_hex(&r.digest)
    ));
    Ok(())
}

/// `upload --raw`: the bytes of `file`, then shutdown(write).
async fn upload_raw(
    s: &Session,
    name: &str,
    stream: TcpStream,
    file: &Path,
    wait: Duration,
    ends: Ends,
    pb: Option<ProgressBar>,
) -> CmdResult {
    let report = transfer::upload_raw_within(stream, file, wait, progress(&pb)).await;
    let report = ends.finish(s, pb, report).await?;
    s.say(format!(
        "{name} -> raw: {} bytes of {} in {}, then shutdown(write){}",
        report.bytes,
        s.tmp().path(file),
        timing(report.elapsed, report.bytes),
        if report.peer_closed {
            "; the receiver closed"
        } else {
            ""
        }
    ));
    s.say(super::sockets::note("raw-unverified", &[]));
    Ok(())
}

/// The two ends of a transfer's connection: a file server of this shell
/// reports what it served, and a transfer waits for that report.
#[derive(Clone, Copy)]
struct Ends {
    local: Option<SocketAddr>,
    server: Option<SocketAddr>,
}

impl Ends {
    fn of(stream: &TcpStream) -> Ends {
        Ends {
            local: stream.local_addr().ok(),
            server: stream.peer_addr().ok(),
        }
    }

    /// After a transfer: clears the progress bar, settles on the server's
    /// report, and turns a failure into the command's error.
    async fn finish<T>(
        self,
        s: &Session,
        pb: Option<ProgressBar>,
        report: Result<T, TransferError>,
    ) -> CmdResult<T> {
        if let Some(pb) = &pb {
            pb.finish_and_clear();
        }
        self.settle(s).await?;
        report.map_err(|e| transfer_error(e, s.tmp()))
    }

    /// Waits for the report of a server of this shell on this connection.
    async fn settle(self, s: &Session) -> CmdResult {
        if let (Some(l), Some(p)) = (self.local, self.server) {
            s.lab.settle_served(l, p).await?;
        }
        Ok(())
    }
}

/// Moves a progress bar, if there is one.
fn progress(pb: &Option<ProgressBar>) -> impl FnMut(u64, u64) + '_ {
    move |done, total| {
        if let Some(pb) = pb {
            pb.set_length(total);
            pb.set_position(done);
        }
    }
}

/// `download NAME REMOTE_NAME [as LOCAL_FILE] [overwrite] [timeout DUR]`
pub async fn download(s: &mut Session, mut a: Args) -> CmdResult {
    let overwrite = a.keyword_anywhere("overwrite");
    let wait = transfer_wait(s, &mut a)?;
    let local_file = a.option("as", "a local file")?;
    let (name, span) = a.word("a connection (or a file server of this shell)")?;
    let rt = a.token("the name of the file to fetch")?;
    a.done()?;
    let remote = String::from_utf8_lossy(&rt.bytes()).into_owned();
    let dest = match &local_file {
        Some(t) => path_of(t),
        None => PathBuf::from(&remote),
    };
    if !overwrite && std::fs::symlink_metadata(&dest).is_ok() {
        return Err(CmdError::new(
            Exit::Data,
            format!(
                "{} exists; add `overwrite` to replace it",
                s.tmp().path(&dest)
            ),
        ));
    }
    let (name, stream) = transfer_stream(s, name, span).await?;
    let ends = Ends::of(&stream);
    let pb = progress_bar(s, &format!("download {remote}"));
    let report =
        transfer::download_within(stream, &remote, &dest, overwrite, wait, progress(&pb)).await;
    let r = ends.finish(s, pb, report).await?;
    s.say(format!(
        "{name} <- downloaded {}: {} bytes{} in {}, blake3 {} (verified here), saved as {}",
        transfer::quote_name(&r.name),
        r.size,
        resumed(r.resumed_from),
        timing(r.elapsed, r.received),
        digest_hex(&r.digest),
        transfer::escape_shown(&s.tmp().path(&r.path))
    ));
    Ok(())
}

fn timing(elapsed: Duration, bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64().max(1e-9);
    format!("{:.3} s, {mib:.2} MiB/s", elapsed.as_secs_f64())
}

/// `write FILE DATA` — creates (or replaces) a file, for lessons and tests.
pub async fn write(s: &mut Session, mut a: Args) -> CmdResult {
    let ft = a.token("a file")?;
    let data = a.token("the data to write")?;
    a.done()?;
    let path = path_of(&ft);
    let bytes = data_of(&data)?;
    std::fs::write(&path, &bytes).map_err(|e| {
        CmdError::new(Exit::Io, format!("write {}: {e}", s.tmp().path(&path))).or_at(ft.span)
    })?;
    s.say(format!(
        "{}: {} bytes written",
        s.tmp().path(&path),
        bytes.len()
    ));
    Ok(())
}

/// `mkdir DIR`
pub async fn mkdir(s: &mut Session, mut a: Args) -> CmdResult {
    let t = a.token("a directory")?;
    a.done()?;
    let path = path_of(&t);
    std::fs::create_dir_all(&path).map_err(|e| {
        CmdError::new(Exit::Io, format!("mkdir {}: {e}", s.tmp().path(&path))).or_at(t.span)
    })?;
    s.say(format!("{}: directory ready", s.tmp().path(&path)));
    Ok(())
}

/// `files DIR` — what a directory holds (name, size), hidden working files
/// included, so a learner sees that nothing partial carries a final name.
pub async fn files(s: &mut Session, mut a: Args) -> CmdResult {
    let t = a.token("a directory")?;
    a.done()?;
    let path = path_of(&t);
    let mut rows = Vec::new();
    let dir = std::fs::read_dir(&path).map_err(|e| {
        CmdError::new(Exit::Io, format!("files {}: {e}", s.tmp().path(&path))).or_at(t.span)
    })?;
    for entry in dir.flatten() {
        let meta = entry.metadata();
        let raw = entry.file_name().to_string_lossy().into_owned();
        let kind = match &meta {
            Ok(m) if m.is_dir() => "dir",
            Ok(_) if raw.starts_with(transfer::RESERVED_PREFIX) => "partial (kept to resume)",
            Ok(_) => "file",
            Err(_) => "?",
        };
        let size = meta.map(|m| m.len()).unwrap_or(0);
        rows.push(vec![
            transfer::escape_shown(&raw),
            size.to_string(),
            kind.to_string(),
        ]);
    }
    rows.sort();
    if rows.is_empty() {
        s.say(format!("{}: empty", s.tmp().path(&path)));
    } else {
        s.say(format!("{}:", s.tmp().path(&path)));
        s.say(render::table(&["NAME", "BYTES", "WHAT"], &rows));
    }
    Ok(())
}

/// `compare A B` — byte-identical or not, and where they first differ.
pub async fn compare(s: &mut Session, mut a: Args) -> CmdResult {
    let at = a.token("a file")?;
    let bt = a.token("another file")?;
    a.done()?;
    let (pa, pb) = (path_of(&at), path_of(&bt));
    let read = |p: &Path, t: &Token| {
        std::fs::read(p)
            .map_err(|e| CmdError::new(Exit::Io, format!("{}: {e}", s.tmp().path(p))).or_at(t.span))
    };
    let (x, y) = (read(&pa, &at)?, read(&pb, &bt)?);
    if x == y {
        let digest = transfer::digest_hex(blake3::hash(&x).as_bytes());
        s.say(format!(
            "{} and {} are byte-identical: {} bytes, blake3 {digest}",
            s.tmp().path(&pa),
            s.tmp().path(&pb),
            x.len()
        ));
        return Ok(());
    }
    let first = x
        .iter()
        .zip(&y)
        .position(|(p, q)| p != q)
        .unwrap_or(x.len().min(y.len()));
    Err(CmdError::new(
        Exit::Data,
        format!(
            "{} ({} bytes) and {} ({} bytes) differ from byte {first}",
            s.tmp().path(&pa),
            x.len(),
            s.tmp().path(&pb),
            y.len()
        ),
    ))
}

/// " (resumed at byte N)" for a transfer that went on from byte N.
fn resumed(from: u64) -> String {
    if from > 0 {
        format!(" (resumed at byte {from})")
    } else {
        String::new()
    }
}
