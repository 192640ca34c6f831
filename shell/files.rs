//! File transfer (lecture §12, done right): `serve files|raw`, `upload`,
//! `download`, and the small file commands lessons need (`write`, `files`,
//! `compare`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use socklab_net::transfer::{self, digest_hex, ReceiverConfig, Served, TransferError};
use socklab_net::{FileService, Role, Transfer};
use tokio::net::TcpStream;

use crate::args::{host_port, number_of, Args, CmdError, CmdResult, Exit};
use crate::parse::Token;
use crate::render::{self, show_path};
use crate::session::Session;

impl From<TransferError> for CmdError {
    fn from(e: TransferError) -> CmdError {
        let exit = if e.status().is_some() {
            Exit::Data
        } else {
            Exit::Io
        };
        CmdError::new(exit, render::hide_tmp(&e.to_string()))
    }
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
        if !path.is_dir() {
            return Err(CmdError::at(
                target.span,
                format!("{} is not a directory", show_path(&path)),
            ));
        }
        let mut cfg = ReceiverConfig::new(&path);
        cfg.overwrite = overwrite;
        cfg.max_size = max_size;
        FileService::Files(cfg)
    } else {
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
        FileService::Raw {
            dest: path.clone(),
            overwrite,
        }
    };
    let info = s
        .lab
        .serve_files(addr, name.as_deref(), service)
        .map_err(|e| CmdError::from(e).os_at(pt.span))?;
    let local = info.local.unwrap_or(addr);
    let port_note = if addr.port() == 0 {
        format!(" (port 0: the OS picked free port {})", local.port())
    } else {
        String::new()
    };
    s.say(format!(
        "{}: serving on {}{port_note}",
        info.name,
        render::addr(&local)
    ));
    if kind == "files" {
        let limit = max_size.map_or("no size limit but free space".to_string(), |m| {
            format!("at most {m} bytes")
        });
        s.say(format!(
            "   uploads go into {} and nowhere else ({}{}); its files can be downloaded",
            show_path(&path),
            limit,
            if overwrite {
                "; existing files are replaced"
            } else {
                "; existing files are kept"
            }
        ));
    } else {
        s.say(format!(
            "   raw: what each client sends until it closes is saved as {} (no name, size or digest: nothing can be verified)",
            show_path(&path)
        ));
    }
    if !local.ip().is_loopback() {
        s.say(format!(
            "   note: {} is not loopback: other machines can connect to it",
            local.ip()
        ));
    }
    Ok(())
}

/// A connection for a transfer: an existing connection taken out of the
/// lab, or, for a file server of this shell, a new one.
async fn transfer_stream(
    s: &mut Session,
    name: String,
    span: crate::parse::Span,
) -> CmdResult<(String, TcpStream)> {
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
            let to = s.lab.connect_addr_of(&name)?;
            let stream = TcpStream::connect(to)
                .await
                .map_err(|e| CmdError::new(Exit::Unavailable, format!("connect to {name}: {e}")))?;
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

/// `upload NAME FILE [as REMOTE_NAME] [resume]`, `upload --raw NAME FILE`
pub async fn upload(s: &mut Session, mut a: Args) -> CmdResult {
    let raw = a.keyword_anywhere("--raw") || a.keyword_anywhere("raw");
    let resume = a.keyword_anywhere("resume");
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
            format!("{} is not a file", show_path(&file)),
        ));
    }
    let (name, stream) = transfer_stream(s, name, span).await?;
    let local = stream.local_addr().ok();
    let server = stream.peer_addr().ok();
    let pb = progress_bar(s, &format!("upload {}", show_path(&file)));
    let progress = |done: u64, total: u64| {
        if let Some(pb) = &pb {
            pb.set_length(total);
            pb.set_position(done);
        }
    };
    if raw {
        let report = transfer::upload_raw(stream, &file, progress).await;
        if let Some(pb) = &pb {
            pb.finish_and_clear();
        }
        if let (Some(l), Some(p)) = (local, server) {
            s.lab.settle_served(l, p).await?;
        }
        let report = report?;
        s.say(format!(
            "{name} -> raw: {} bytes of {} in {}, then shutdown(write){}",
            report.bytes,
            show_path(&file),
            timing(report.elapsed, report.bytes),
            if report.peer_closed {
                "; the receiver closed"
            } else {
                ""
            }
        ));
        s.say("   raw carries no name, size or digest: the receiver cannot tell a whole file from a cut one");
    } else {
        let remote_name = match remote {
            Some(r) => r,
            None => file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| CmdError::at(ft.span, "name it with `as NAME`"))?,
        };
        let report = transfer::upload(stream, &file, &remote_name, resume, progress).await;
        if let Some(pb) = &pb {
            pb.finish_and_clear();
        }
        let settle = |s: &Session| {
            let lab = s.lab.clone();
            async move {
                if let (Some(l), Some(p)) = (local, server) {
                    lab.settle_served(l, p).await?;
                }
                Ok::<(), CmdError>(())
            }
        };
        match report {
            Ok(r) => {
                s.say(format!(
                    "{name} -> uploaded {:?}: {} bytes{} in {}, blake3 {} (verified by the receiver)",
                    r.name,
                    r.size,
                    if r.resumed_from > 0 { format!(" (resumed at byte {})", r.resumed_from) } else { String::new() },
                    timing(r.elapsed, r.sent),
                    digest_hex(&r.digest)
                ));
                settle(s).await?;
            }
            Err(e) => {
                settle(s).await?;
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// `download NAME REMOTE_NAME [as LOCAL_FILE] [overwrite]`
pub async fn download(s: &mut Session, mut a: Args) -> CmdResult {
    let overwrite = a.keyword_anywhere("overwrite");
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
            format!("{} exists; add `overwrite` to replace it", show_path(&dest)),
        ));
    }
    let (name, stream) = transfer_stream(s, name, span).await?;
    let local = stream.local_addr().ok();
    let server = stream.peer_addr().ok();
    let pb = progress_bar(s, &format!("download {remote}"));
    let report = transfer::download(stream, &remote, &dest, overwrite, |done, total| {
        if let Some(pb) = &pb {
            pb.set_length(total);
            pb.set_position(done);
        }
    })
    .await;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    if let (Some(l), Some(p)) = (local, server) {
        s.lab.settle_served(l, p).await?;
    }
    let r = report?;
    s.say(format!(
        "{name} <- downloaded {:?}: {} bytes{} in {}, blake3 {} (verified here), saved as {}",
        r.name,
        r.size,
        if r.resumed_from > 0 {
            format!(" (resumed at byte {})", r.resumed_from)
        } else {
            String::new()
        },
        timing(r.elapsed, r.received),
        digest_hex(&r.digest),
        show_path(&r.path)
    ));
    Ok(())
}

fn timing(elapsed: Duration, bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64().max(1e-9);
    format!("{:.3} s, {mib:.2} MiB/s", elapsed.as_secs_f64())
}

/// How a file server's report looks.
pub fn served_text(server: &str, peer: &SocketAddr, outcome: &Transfer) -> String {
    let from = render::addr(peer);
    match outcome {
        Transfer::Files(Ok(Served::Uploaded { name, size, digest, resumed_from, path, .. })) => {
            let mut s = format!("{server}: received {name:?} from {from}: {size} bytes, blake3 {}", digest_hex(digest));
            if *resumed_from > 0 {
                let _ = write!(s, " (resumed: {resumed_from} bytes were kept from a cut upload)");
            }
            let _ = write!(s, "; verified, saved as {}", show_path(path));
            s
        }
        Transfer::Files(Ok(Served::Downloaded { name, size, offset, .. })) => {
            let from_byte = if *offset > 0 { format!(" from byte {offset}") } else { String::new() };
            format!("{server}: sent {name:?} to {from}: {size} bytes{from_byte}; verified by the client")
        }
        Transfer::Files(Ok(Served::Refused { name, status, reason, kept })) => {
            let what = name.as_deref().map_or(String::new(), |n| format!(" {n:?}"));
            let mut s = format!("{server} !! refused{what} from {from}: {status}: {}", render::hide_tmp(reason));
            if *kept > 0 {
                let _ = write!(s, "; nothing under the final name");
            }
            s
        }
        Transfer::Files(Err(e)) => format!("{server} !! {from}: {}", render::hide_tmp(&e.to_string())),
        Transfer::Raw(Ok(r)) => format!(
            "{server}: saved {} bytes from {from} as {} (raw: whatever came before the close; nothing verified)",
            r.bytes,
            show_path(&r.path)
        ),
        Transfer::Raw(Err(e)) => format!("{server} !! {from}: {}", render::hide_tmp(&e.to_string())),
    }
}

/// `write FILE DATA` — creates (or replaces) a file, for lessons and tests.
pub async fn write(s: &mut Session, mut a: Args) -> CmdResult {
    let ft = a.token("a file")?;
    let data = a.token("the data to write")?;
    a.done()?;
    let path = path_of(&ft);
    let bytes = crate::commands::data_of(&data)?;
    std::fs::write(&path, &bytes).map_err(|e| {
        CmdError::new(Exit::Io, format!("write {}: {e}", show_path(&path))).or_at(ft.span)
    })?;
    s.say(format!(
        "{}: {} bytes written",
        show_path(&path),
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
        CmdError::new(Exit::Io, format!("mkdir {}: {e}", show_path(&path))).or_at(t.span)
    })?;
    s.say(format!("{}: directory ready", show_path(&path)));
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
        CmdError::new(Exit::Io, format!("files {}: {e}", show_path(&path))).or_at(t.span)
    })?;
    for entry in dir.flatten() {
        let meta = entry.metadata();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = match &meta {
            Ok(m) if m.is_dir() => "dir",
            Ok(_) if name.starts_with(transfer::RESERVED_PREFIX) => "partial (kept to resume)",
            Ok(_) => "file",
            Err(_) => "?",
        };
        let size = meta.map(|m| m.len()).unwrap_or(0);
        rows.push(vec![name, size.to_string(), kind.to_string()]);
    }
    rows.sort();
    if rows.is_empty() {
        s.say(format!("{}: empty", show_path(&path)));
    } else {
        s.say(format!("{}:", show_path(&path)));
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
            .map_err(|e| CmdError::new(Exit::Io, format!("{}: {e}", show_path(p))).or_at(t.span))
    };
    let (x, y) = (read(&pa, &at)?, read(&pb, &bt)?);
    if x == y {
        let digest = transfer::digest_hex(blake3::hash(&x).as_bytes());
        s.say(format!(
            "{} and {} are byte-identical: {} bytes, blake3 {digest}",
            show_path(&pa),
            show_path(&pb),
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
            show_path(&pa),
            x.len(),
            show_path(&pb),
            y.len()
        ),
    ))
}
