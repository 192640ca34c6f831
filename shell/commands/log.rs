//! `log`: traffic logs. Every byte in and out of the streams, as
//! `socat -v` writes it (text or hex), or the captured frames as a pcap
//! file; `log off` closes them, `log` alone lists them.

use std::path::PathBuf;

use socklab_net::{LogForm, LogInfo};

use crate::args::{Args, CmdError, CmdResult, Exit};
use crate::parse::Token;
use crate::render;
use crate::session::Session;

/// `log`, `log off [FILE]`, `log FILE [text|hex] [NAME…]`, `log FILE.pcap`
pub async fn log(s: &mut Session, mut a: Args) -> CmdResult {
    let Some(first) = a.peek().cloned() else {
        return list(s);
    };
    if first.word() == Some("off") {
        a.token("off")?;
        let file = match a.peek() {
            Some(_) => Some(a.token("a log file")?),
            None => None,
        };
        a.done()?;
        let path = file.as_ref().map(path_of);
        let closed = s.lab.log_off(path.as_deref()).await.map_err(|e| {
            let (span, shown) = match (&file, &path) {
                (Some(f), Some(p)) => (f.span, format!("log off {}", s.tmp().path(p))),
                _ => (first.span, "log off".to_string()),
            };
            prefixed(e, &shown).or_at(span)
        })?;
        if closed.is_empty() {
            s.say("log: off (no log was open)");
        }
        for info in closed {
            s.say(closed_text(s, &info));
        }
        return Ok(());
    }
    let file = a.token("a log file")?;
    let path = path_of(&file);
    if path.as_os_str().is_empty() {
        return Err(CmdError::at(
            file.span,
            "expected a log file, found an empty name",
        ));
    }
    let pcap = path.extension().is_some_and(|e| e == "pcap");
    let form = match a.peek_word() {
        Some(w) if w.eq_ignore_ascii_case("text") || w.eq_ignore_ascii_case("hex") => {
            let (w, span) = a.choice("a form", &["text", "hex"])?;
            if pcap {
                return Err(CmdError::at(
                    span,
                    "a .pcap file holds captured frames, not text or hex",
                )
                .hint("name the file otherwise for a text or hex log"));
            }
            if w == "hex" {
                LogForm::Hex
            } else {
                LogForm::Text
            }
        }
        _ if pcap => LogForm::Pcap,
        _ => LogForm::Text,
    };
    let mut names = Vec::new();
    while a.peek().is_some() {
        let (name, span) = a.word("a stream name")?;
        if pcap {
            return Err(CmdError::at(
                span,
                "a pcap log holds every segment of this shell's TCP ports; names choose streams of text and hex logs",
            ));
        }
        names.push(name);
    }
    let info = s
        .lab
        .log_open(&path, form, names)
        .map_err(|e| prefixed(e, &format!("log {}", s.tmp().path(&path))).or_at(file.span))?;
    s.say(opened_text(s, &info));
    Ok(())
}

/// `log` alone: what is being logged.
fn list(s: &Session) -> CmdResult {
    let logs = s.lab.logs();
    if logs.is_empty() {
        s.say("log: off (`log FILE` starts one)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = logs
        .iter()
        .map(|l| {
            vec![
                s.tmp().path(&l.path),
                l.form.name().to_string(),
                streams_text(l),
                l.records.to_string(),
                l.dropped.to_string(),
            ]
        })
        .collect();
    s.say(render::table(
        &["FILE", "FORM", "STREAMS", "RECORDS", "DROPPED"],
        &rows,
    ));
    Ok(())
}

fn streams_text(l: &LogInfo) -> String {
    match (l.form, l.names.is_empty()) {
        (LogForm::Pcap, _) => "TCP ports".to_string(),
        (_, true) => "all".to_string(),
        (_, false) => l.names.join(" "),
    }
}

fn opened_text(s: &Session, l: &LogInfo) -> String {
    let path = s.tmp().path(&l.path);
    let which = if l.names.is_empty() {
        "every stream, present and future".to_string()
    } else {
        let clients: Vec<String> = l.names.iter().map(|n| format!("{n}.N")).collect();
        format!("{} (and {})", l.names.join(", "), clients.join(", "))
    };
    match l.form {
        LogForm::Pcap => format!(
            "log: {path}: the frames on lo of this shell's TCP ports, as pcap (tcpdump -r, Wireshark)"
        ),
        LogForm::Text => format!("log: {path}: every byte in and out of {which}, as text (socat -v style, UTC)"),
        LogForm::Hex => format!("log: {path}: every byte in and out of {which}, as a hex dump (socat -v -x style, UTC)"),
    }
}

fn closed_text(s: &Session, l: &LogInfo) -> String {
    let mut line = format!(
        "log: {} closed: {} record(s) written",
        s.tmp().path(&l.path),
        l.records
    );
    if l.dropped > 0 {
        line.push_str(&format!(
            ", {} dropped (the writer fell behind; the log says where)",
            l.dropped
        ));
    }
    if let Some(why) = &l.failure {
        line.push_str(&format!("; writing failed: {why}"));
    }
    line
}

/// The lab's error, said after what was being done (`log FILE: …`); an
/// error of the OS on a file is an I/O error (exit 74).
fn prefixed(e: socklab_net::NetError, doing: &str) -> CmdError {
    let mut err = CmdError::from(e);
    err.message = format!("{doing}: {}", err.message);
    if err.exit == Exit::OsErr {
        err.exit = Exit::Io;
    }
    err
}

/// A path argument (a word or a quoted string).
fn path_of(t: &Token) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&t.bytes()).into_owned())
}
