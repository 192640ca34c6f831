//! How things look: bytes, addresses, sockets, events, errors, tables.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use socklab_net::transfer::{digest_hex, escape_shown, is_hidden, quote_name, Served};
use socklab_net::{Event, Family, NetError, Role, SocketInfo, Transfer, UnixAddr};
use socklab_tasks::{Ending, Line, LineKind};

use crate::catalogue;
use crate::parse::Span;
use unicode_width::UnicodeWidthStr;

/// How received bytes are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Quoted text when the bytes are text, a hexdump otherwise.
    Auto,
    /// Always quoted text (with escapes for what is not printable).
    Text,
    /// Always a hexdump.
    Hex,
}

impl Format {
    /// What `format` calls it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Text => "text",
            Format::Hex => "hex",
        }
    }

    /// The format stored as `i` (see [`Format::index`]); Auto if unknown.
    pub fn from_index(i: u8) -> Format {
        match i {
            1 => Format::Text,
            2 => Format::Hex,
            _ => Format::Auto,
        }
    }

    /// A number for the format, to keep it in an atomic.
    pub fn index(self) -> u8 {
        match self {
            Format::Auto => 0,
            Format::Text => 1,
            Format::Hex => 2,
        }
    }
}

/// This session's temporary directory (`{tmp}`), when it has made one:
/// paths under it are shown as `{tmp}/…`, so transcripts do not depend on
/// its random name. The session owns the directory; renderers get this view
/// of it passed in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tmp<'a>(pub Option<&'a Path>);

impl Tmp<'_> {
    /// A path as the person sees it: under `{tmp}` relative to it.
    pub fn path(self, p: &Path) -> String {
        if let Some(tmp) = self.0 {
            if let Ok(rest) = p.strip_prefix(tmp) {
                let rest = rest.display().to_string();
                return if rest.is_empty() {
                    "{tmp}".to_string()
                } else {
                    format!("{{tmp}}/{rest}")
                };
            }
        }
        p.display().to_string()
    }

    /// Text with the temporary directory written as `{tmp}` (for messages
    /// that name a path in their own words).
    pub fn text(self, text: &str) -> String {
        match self.0 {
            Some(tmp) => text.replace(&tmp.display().to_string(), "{tmp}"),
            None => text.to_string(),
        }
    }

    /// A command line with the temporary directory written as `{tmp}`, and
    /// a span of the original line moved to where it now falls.
    pub fn line(self, line: &str, span: Span) -> (String, Span) {
        let Some(tmp) = self.0.map(|t| t.display().to_string()) else {
            return (line.to_string(), span);
        };
        let mut out = String::new();
        let (mut start, mut end) = (span.start, span.end);
        let mut rest = line;
        let mut at = 0;
        while let Some(i) = rest.find(&tmp) {
            let pos = at + i;
            out.push_str(&rest[..i]);
            out.push_str("{tmp}");
            let shrink = tmp.len() - "{tmp}".len();
            if pos + tmp.len() <= span.start {
                start -= shrink;
            }
            if pos + tmp.len() <= span.end {
                end -= shrink;
            }
            rest = &rest[i + tmp.len()..];
            at = pos + tmp.len();
        }
        out.push_str(rest);
        (
            out,
            Span {
                start,
                end: end.max(start),
            },
        )
    }
}

/// Most characters of text shown for one message; the rest is counted.
const TEXT_SHOWN: usize = 100;
/// How many of a payload's first bytes decide whether it is text.
const TEXT_DECIDES: usize = 4096;
/// Most bytes of a hexdump shown for one message.
const HEX_SHOWN: usize = 256;

/// `127.0.0.1:5555` or `[::1]:5555`.
pub fn addr(a: &SocketAddr) -> String {
    a.to_string()
}

/// Whether bytes read as text: UTF-8 (a multi-byte character cut off at
/// the very end is allowed, since a read may split one) without control
/// characters other than tab, CR and LF.
pub fn is_text(data: &[u8]) -> bool {
    let valid = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() && data.len() - e.valid_up_to() < 4 => {
            // SAFETY-free: valid_up_to marks a valid prefix.
            match std::str::from_utf8(&data[..e.valid_up_to()]) {
                Ok(s) => s,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    valid
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

/// Bytes as a double-quoted string: printable characters as they are,
/// `\n \r \t \\ \" \0` escaped, other bytes as `\xNN`. At most `limit`
/// characters; the rest is counted (`… (+120 bytes)`).
pub fn quote(data: &[u8], limit: usize) -> String {
    let mut out = String::from("\"");
    let mut rest = data;
    let mut shown = 0;
    while !rest.is_empty() {
        if shown >= limit {
            out.push('"');
            let _ = write!(out, " … (+{} bytes)", rest.len());
            return out;
        }
        let (ch, len) = match std::str::from_utf8(&rest[..rest.len().min(4)]) {
            Ok(s) => first_char(s),
            Err(e) if e.valid_up_to() > 0 => {
                // Only the valid prefix decodes.
                match std::str::from_utf8(&rest[..e.valid_up_to()]) {
                    Ok(s) => first_char(s),
                    Err(_) => (None, 1),
                }
            }
            Err(_) => (None, 1),
        };
        match ch {
            Some('\n') => out.push_str("\\n"),
            Some('\r') => out.push_str("\\r"),
            Some('\t') => out.push_str("\\t"),
            Some('\\') => out.push_str("\\\\"),
            Some('"') => out.push_str("\\\""),
            Some('\0') => out.push_str("\\0"),
            Some(c) if is_hidden(c) && !c.is_control() => {
                out.push_str(&escape_shown(c.encode_utf8(&mut [0; 4])))
            }
            Some(c) if !c.is_control() => out.push(c),
            _ => {
                for b in &rest[..len] {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
        }
        rest = &rest[len..];
        shown += 1;
    }
    out.push('"');
    out
}

fn first_char(s: &str) -> (Option<char>, usize) {
    match s.chars().next() {
        Some(c) => (Some(c), c.len_utf8()),
        None => (None, 1),
    }
}

/// A hexdump like `xxd`: offset, 16 bytes in hex, the printable ASCII.
/// At most `limit` bytes; the rest is counted.
pub fn hexdump(data: &[u8], limit: usize, indent: &str) -> String {
    let mut out = String::new();
    for (i, chunk) in data[..data.len().min(limit)].chunks(16).enumerate() {
        let _ = write!(out, "{indent}{:04x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        for b in chunk {
            out.push(if b.is_ascii_graphic() || *b == b' ' {
                *b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
    if data.len() > limit {
        let _ = writeln!(out, "{indent}… (+{} bytes)", data.len() - limit);
    }
    out.pop();
    out
}

/// `N bytes "text"` or `N bytes:` and a hexdump on the lines below.
pub fn payload(data: &[u8], total: usize, format: Format) -> String {
    let count = count_bytes(total);
    let as_text = match format {
        Format::Text => true,
        Format::Hex => false,
        // Decided on the first bytes, as a script's merged reads are
        // (they keep the first 4 KiB): a 1 MiB read is not walked through
        // character by character on its way to the screen.
        Format::Auto => is_text(&data[..data.len().min(TEXT_DECIDES)]),
    };
    if data.is_empty() {
        count
    } else if as_text {
        let mut q = quote(data, TEXT_SHOWN);
        if total > data.len() && !q.ends_with("bytes)") {
            let _ = write!(q, " … (+{} bytes)", total - data.len());
        }
        format!("{count} {q}")
    } else {
        let mut d = hexdump(data, HEX_SHOWN, "    ");
        if total > data.len().max(HEX_SHOWN) {
            let _ = write!(d, "\n    … (+{} bytes)", total - data.len().max(HEX_SHOWN));
        }
        format!("{count}:\n{d}")
    }
}

/// `total` bytes of `byte` (a `fill:SIZE`), shown as [`payload`] shows
/// them, without holding them.
pub fn repeated(byte: u8, total: u64, format: Format) -> String {
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let head = match format {
        Format::Hex => HEX_SHOWN,
        Format::Text | Format::Auto => TEXT_SHOWN,
    };
    payload(&vec![byte; total.min(head)], total, format)
}

fn count_bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// A Python-style tuple of an address: `('127.0.0.1', 5555)` or
/// `('::1', 5555, 0, 0)`.
pub fn py_addr(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => format!("('{}', {})", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!(
            "('{}', {}, {}, {})",
            v6.ip(),
            v6.port(),
            v6.flowinfo(),
            v6.scope_id()
        ),
    }
}

/// A UNIX address: the path, `@name` (abstract), or `(unnamed)`.
pub fn unix_addr(a: &UnixAddr) -> String {
    a.to_string()
}

/// A UNIX socket the way Python's `print(socket)` shows it: an address
/// is shown only when there is one (a path or an abstract name).
fn py_unix_socket(s: &SocketInfo, u: &socklab_net::UnixInfo) -> String {
    let ty = if u.dgram { "SOCK_DGRAM" } else { "SOCK_STREAM" };
    let mut out = format!(
        "<socket.socket fd={}, family=AF_UNIX, type={ty}, proto=0",
        s.fd
    );
    if u.local != UnixAddr::Unnamed {
        let _ = write!(out, ", laddr={}", unix_addr(&u.local));
    }
    if let Some(p) = u.peer.as_ref().filter(|p| **p != UnixAddr::Unnamed) {
        let _ = write!(out, ", raddr={}", unix_addr(p));
    }
    out.push('>');
    out
}

/// The socket the way Python's `print(socket)` shows it.
pub fn py_socket(s: &SocketInfo) -> String {
    if let Some(u) = &s.unix {
        return py_unix_socket(s, u);
    }
    let (Some(family), None) = (s.family, &s.program) else {
        // A program: what Python's subprocess.Popen would say of it.
        let (pid, cmd) = s.program.clone().unwrap_or_default();
        return format!("<Popen: pid {pid}, args: {cmd}>");
    };
    let ty = if s.role == Role::Datagram {
        "SOCK_DGRAM"
    } else {
        "SOCK_STREAM"
    };
    let mut out = format!(
        "<socket.socket fd={}, family={}, type={ty}, proto=0",
        s.fd,
        family.c_name()
    );
    let laddr = s.local.unwrap_or_else(|| family.unspecified());
    let _ = write!(out, ", laddr={}", py_addr(&laddr));
    if let Some(p) = s.peer {
        let _ = write!(out, ", raddr={}", py_addr(&p));
    }
    out.push('>');
    out
}

/// One event as a line (or a few, for a hexdump).
pub fn event(ev: &Event, format: Format, tmp: Tmp<'_>) -> String {
    match ev {
        Event::Accepted {
            listener,
            conn,
            peer,
        } => {
            format!("{listener}: accepted {conn} from {}", addr(peer))
        }
        Event::UnixAccepted {
            listener,
            conn,
            peer,
        } => match peer {
            UnixAddr::Unnamed => {
                format!("{listener}: accepted {conn} (the client is unnamed, as UNIX clients usually are: `info {conn}` says who it is)")
            }
            _ => format!(
                "{listener}: accepted {conn} from {}",
                tmp.text(&unix_addr(peer))
            ),
        },
        Event::Data { socket, data } => {
            format!("{socket} <- {}", payload(data, data.len(), format))
        }
        Event::Datagram { socket, from, data } => {
            format!(
                "{socket} <- from {}: {}",
                addr(from),
                payload(data, data.len(), format)
            )
        }
        Event::Served {
            server,
            peer,
            outcome,
        } => served(server, peer, outcome, tmp),
        Event::Segment { .. } | Event::States { .. } => trace_event(ev),
        Event::Message {
            socket,
            framing,
            data,
        } => {
            format!(
                "{socket} <- {framing}: {}",
                payload(data, data.len(), format)
            )
        }
        Event::FrameError { socket, error } => {
            format!("{socket} !! {error}; no longer read in the background (recv, or close it)")
        }
        Event::PeerClosed { socket } => format!("{socket} <- peer closed (EOF)"),
        Event::Retired { socket, listener } => format!(
            "{socket}: closed by socklab: its client left and nothing was left to read ({listener} keeps at most {} such connections open)",
            socklab_net::KEEP_DEPARTED
        ),
        Event::Dropped { socket, datagrams } => format!(
            "{socket} !! {datagrams} datagram(s) not shown: they came faster than they could be printed (the session's memory budget for events is spent); UDP has no flow control"
        ),
        Event::Reset { socket } => format!(
            "{socket} <- reset by the peer (RST): data in flight is lost; Python raises ConnectionResetError"
        ),
        Event::Failed { socket, error } => {
            let mut s = format!("{socket} !! {error}");
            if let Some(h) = explain_io_in(error, "   ") {
                let _ = write!(s, "\n   {h}");
            }
            s
        }
        Event::AcceptFailed {
            listener,
            error,
            retry_in,
        } => {
            format!("{listener} !! accept failed: {error}; trying again in {retry_in:?}")
        }
        Event::Stderr { .. } | Event::Started { .. } | Event::Exited { .. } => {
            program_event(ev, format)
        }
        Event::Relayed { pair, way, data } => format!(
            "{pair} {}: {}",
            way.words(),
            payload(data, data.len(), format)
        ),
        Event::Note { socket, text } => format!("{socket}: {text}"),
        Event::Chat { chat, user, line } => {
            format!("{chat} <{user}> {}", payload(line, line.len(), format))
        }
        Event::TlsReady { socket, facts } => tls_facts(socket, facts),
        Event::TlsFailed {
            socket,
            peer,
            error,
        } => format!(
            "{socket} !! TLS handshake with {} failed: {error}; the client was let go",
            addr(peer)
        ),
        // Never printed: the REPL's printer takes marks out first.
        Event::Mark(_) => String::new(),
    }
}

/// What `trace` reports (a captured segment, or a path of states) as a
/// line.
fn trace_event(ev: &Event) -> String {
    match ev {
        Event::Segment {
            from,
            to,
            flags,
            seq,
            ack,
            window,
            len,
            note,
        } => {
            let mut s = format!("{from} -> {to} [{flags}] seq={seq}");
            if let Some(a) = ack {
                let _ = write!(s, " ack={a}");
            }
            if let Some(w) = window {
                let _ = write!(s, " win={w}");
            }
            if *len > 0 {
                let _ = write!(s, " len={len}");
            }
            if let Some(n) = note {
                let _ = write!(s, " ({n})");
            }
            s
        }
        Event::States { socket, path } => {
            let names: Vec<&str> = path.iter().map(|s| s.name()).collect();
            format!("{socket}: {}", names.join(" => "))
        }
        other => format!("{}: {other:?}", other.socket()),
    }
}

/// The faults in force on a relay or a pair, in words.
pub fn faults(f: &socklab_net::Faults) -> String {
    let words = f.words();
    if words.is_empty() {
        "no faults: bytes are forwarded as they come".to_string()
    } else {
        format!("faults now: {}", words.join(", "))
    }
}

/// What a TLS handshake agreed, as one line: version, cipher suite,
/// ALPN, the name a client asked for, and the peer's certificate.
pub fn tls_facts(name: &str, f: &socklab_net::TlsFacts) -> String {
    let mut s = format!("{name}: TLS: {}, {}", f.version, f.suite);
    match &f.alpn {
        Some(p) => {
            let _ = write!(s, ", ALPN {p}");
        }
        None => s.push_str(", no ALPN"),
    }
    if let Some(sni) = &f.sni {
        let _ = write!(s, ", SNI {sni}");
    }
    let whose = match f.side {
        socklab_net::Side::Client => "server",
        socklab_net::Side::Server => "client",
    };
    match &f.peer_cert {
        Some(c) => {
            let _ = write!(
                s,
                "; {whose} certificate {}, issued by {}, valid {} to {}, SHA-256 {}",
                c.subject, c.issuer, c.not_before, c.not_after, c.fingerprint
            );
        }
        None => {
            let _ = write!(s, "; no {whose} certificate");
        }
    }
    s
}

/// A program's events (`exec`, `listen … exec`) as a line.
fn program_event(ev: &Event, format: Format) -> String {
    match ev {
        Event::Stderr { socket, data } => {
            format!("{socket} <- stderr: {}", payload(data, data.len(), format))
        }
        Event::Started {
            socket,
            pid,
            command,
        } => format!("{socket}: started `{command}` (pid {pid})"),
        Event::Exited { socket, status } => format!("{socket}: {}", exit_text(*status)),
        other => format!("{}: {other:?}", other.socket()),
    }
}

/// `text` cut to at most `max` characters, an ellipsis marking the cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// How a program ended, in words.
pub fn exit_text(status: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Some(status) = status else {
        return "ended (the OS could not say how)".to_string();
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
        _ => format!("ended: {status}"),
    }
}

/// The name of a signal that ends programs.
fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

/// How a file server's report looks.
pub fn served(server: &str, peer: &SocketAddr, outcome: &Transfer, tmp: Tmp<'_>) -> String {
    let from = addr(peer);
    match outcome {
        Transfer::Files(Ok(Served::Uploaded { name, size, digest, resumed_from, path, .. })) => {
            let mut s = format!("{server}: received {} from {from}: {size} bytes, blake3 {}", quote_name(name), digest_hex(digest));
            if *resumed_from > 0 {
                let _ = write!(s, " (resumed: {resumed_from} bytes were kept from a cut upload)");
            }
            let _ = write!(s, "; verified, saved as {}", escape_shown(&tmp.path(path)));
            s
        }
        Transfer::Files(Ok(Served::Downloaded { name, size, offset, .. })) => {
            let from_byte = if *offset > 0 { format!(" from byte {offset}") } else { String::new() };
            format!("{server}: sent {} to {from}: {size} bytes{from_byte}; verified by the client", quote_name(name))
        }
        Transfer::Files(Ok(Served::Refused { name, status, reason, kept })) => {
            let what = name.as_deref().map_or(String::new(), |n| format!(" {}", quote_name(n)));
            let mut s = format!("{server} !! refused{what} from {from}: {status}: {}", tmp.text(reason));
            if *kept > 0 {
                let _ = write!(s, "; nothing under the final name");
            }
            s
        }
        Transfer::Files(Err(e)) => format!("{server} !! {from}: {}", tmp.text(&e.to_string())),
        Transfer::Raw(Ok(r)) => format!(
            "{server}: saved {} bytes from {from} as {} (raw: whatever came before the close; nothing verified)",
            r.bytes,
            escape_shown(&tmp.path(&r.path))
        ),
        Transfer::Raw(Err(e)) => format!("{server} !! {from}: {}", tmp.text(&e.to_string())),
    }
}

/// How one worker line looks: the worker, which process and thread it ran
/// on (named relative to the shell, so a transcript says it even with the
/// numbers filtered), and its text. `elapsed` adds the time since the job
/// started (terminals only: it differs on every run).
pub fn job_line(l: &Line, shell_pid: u32, elapsed: bool) -> String {
    let whose = if l.pid == shell_pid {
        "the shell's process"
    } else {
        "a process of its own"
    };
    let thread = if l.pid != shell_pid {
        "its main thread"
    } else if l.tid == shell_pid {
        "the shell's main thread"
    } else {
        "another thread"
    };
    let time = if elapsed {
        format!(" +{:.3}s", l.elapsed.as_secs_f64())
    } else {
        String::new()
    };
    let head = format!(
        "[{} pid {} ({whose}) tid {} ({thread}){time}]",
        l.workload, l.pid, l.tid
    );
    match l.kind {
        LineKind::Step => format!("{head} {}", l.text),
        LineKind::Error => format!("{head} error: {}", l.text),
        LineKind::End(e) => format!("{}: {} {}", l.job, l.workload, ending(e)),
    }
}

fn ending(e: Ending) -> &'static str {
    match e {
        Ending::Done => "finished",
        Ending::Killed => "killed",
        Ending::Failed => "failed",
    }
}

/// What a session says when it ends, having closed `n` sockets.
pub fn bye(n: usize) -> String {
    format!("closed {n} socket{}; bye", if n == 1 { "" } else { "s" })
}

/// A table with a header row; columns as wide as their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    // Stable transcripts name cells before the columns are measured.
    let named: Vec<Vec<String>>;
    let rows = if crate::stable::on() {
        named = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| crate::stable::apply(c).into_owned())
                    .collect()
            })
            .collect();
        &named
    } else {
        rows
    };
    let mut widths: Vec<usize> = header.iter().map(|h| UnicodeWidthStr::width(*h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(UnicodeWidthStr::width(c.as_str()));
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(UnicodeWidthStr::width(*c));
                l.push_str(c);
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out.pop();
    out
}

/// The `sockets` table.
pub fn sockets(list: &[SocketInfo]) -> String {
    if list.is_empty() {
        return "no sockets".to_string();
    }
    let hosts = list.iter().any(|s| s.host.is_some());
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let v6 = s.family == Some(Family::V6);
            let kind = match (s.role, v6) {
                _ if s.unix.is_some() => match s.role {
                    Role::Listener => "unix listen",
                    Role::Stream => "unix conn",
                    Role::Datagram => "unix dgram",
                    _ => "unix",
                },
                (Role::Stream, false) if s.tls.is_some() => "tls conn",
                (Role::Stream, true) if s.tls.is_some() => "tls6 conn",
                (Role::Fresh, false) => "tcp",
                (Role::Fresh, true) => "tcp6",
                (Role::Listener, false) => "tcp listen",
                (Role::Listener, true) => "tcp6 listen",
                (Role::Stream, false) => "tcp conn",
                (Role::Stream, true) => "tcp6 conn",
                (Role::Datagram, false) => "udp",
                (Role::Datagram, true) => "udp6",
                (Role::Program, _) => "program",
            };
            let mode = match s.mode {
                socklab_net::Mode::Watched => "events",
                socklab_net::Mode::Manual => "manual",
            };
            let state = match s.role {
                Role::Listener => format!("{} ({} accepted)", s.state, s.accepted),
                Role::Datagram => format!(
                    "{} ({} in, {} out)",
                    s.state, s.datagrams_in, s.datagrams_out
                ),
                _ => s.state.clone(),
            };
            let mut row = vec![
                s.name.clone(),
                kind.to_string(),
                s.tcp_state
                    .map_or("-".to_string(), |t| t.name().to_string()),
                match (&s.program, &s.unix) {
                    (Some((pid, _)), _) => format!("pid {pid}"),
                    (None, Some(u)) => unix_addr(&u.local),
                    (None, None) => s.local.map_or("-".into(), |a| addr(&a)),
                },
                match (&s.program, &s.unix) {
                    (Some((_, cmd)), _) => shorten(cmd, 32),
                    // An accepted client is usually unnamed; `info` says
                    // which process it is (SO_PEERCRED).
                    (None, Some(u)) => u.peer.as_ref().map_or("-".into(), unix_addr),
                    (None, None) => s.peer.map_or("-".into(), |a| addr(&a)),
                },
                state,
                mode.to_string(),
                s.bytes_in.to_string(),
                s.bytes_out.to_string(),
            ];
            if hosts {
                row.insert(1, s.host.clone().unwrap_or_else(|| "-".into()));
            }
            row
        })
        .collect();
    let mut header = vec![
        "NAME", "KIND", "TCP", "LOCAL", "PEER", "STATE", "READ BY", "IN", "OUT",
    ];
    // A HOST column only in a classroom (`on HOST …`).
    if hosts {
        header.insert(1, "HOST");
    }
    table(&header, &rows)
}

/// A TCP_INFO value with its unit.
pub fn info_value(v: &socklab_net::tcp::InfoValue) -> String {
    use socklab_net::tcp::InfoValue as V;
    match v {
        V::State(s) => s.name().to_string(),
        // Stable transcripts: how long and how fast differ on every run.
        V::Time(_) if crate::stable::on() => "{time}".to_string(),
        V::Rate(_) if crate::stable::on() => "{rate}".to_string(),
        V::Time(d) if d.as_micros() < 1000 => format!("{} µs", d.as_micros()),
        V::Time(d) => format!("{:.3} ms", d.as_secs_f64() * 1000.0),
        V::Bytes(n) => count_bytes(*n as usize),
        V::Segments(n) => format!("{n} segments"),
        V::Count(n) => n.to_string(),
        V::Rate(n) => format!("{n} bytes/s"),
        V::Unlimited => "unlimited".to_string(),
        V::Text(t) => t.to_string(),
    }
}

/// One line on what an OS error means for the learner, in the session's
/// language (`catalogue`); under `both`, the Chinese follows on a line of
/// its own, indented by `sep`.
pub fn explain_io_in(e: &io::Error, sep: &str) -> Option<String> {
    let id = match e.raw_os_error()? {
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EPIPE => "EPIPE",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EHOSTUNREACH | libc::ENETUNREACH => "EHOSTUNREACH",
        libc::ENOTCONN => "ENOTCONN",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::EISCONN => "EISCONN",
        libc::EINVAL => "EINVAL",
        libc::EMFILE | libc::ENFILE => "EMFILE",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        _ => return None,
    };
    Some(catalogue::text(id, sep))
}

/// [`explain_io_in`] for a hint line of an error (indented by two).
pub fn explain_io(e: &io::Error) -> Option<String> {
    explain_io_in(e, HINT_INDENT)
}

/// How far a hint line is indented under its error.
pub const HINT_INDENT: &str = "  ";

/// The hint for "Address already in use" on a socket whose SO_REUSEADDR is
/// `reuseaddr` (`name` is the socket, to name it in a command).
pub fn address_in_use(name: &str, reuseaddr: bool) -> String {
    if reuseaddr {
        catalogue::text("in-use-reuseaddr-on", HINT_INDENT)
    } else {
        catalogue::text_with("in-use-reuseaddr-off", HINT_INDENT, name)
    }
}

/// The hint for a lab error, if it carries an OS error with one. Some
/// errors mean different things for different calls.
pub fn explain(e: &NetError) -> Option<String> {
    let io = e.os_error()?;
    let id = match (e, io.raw_os_error()) {
        (
            NetError::Os {
                op: "sendto" | "send",
                ..
            },
            Some(libc::EACCES),
        ) => "send-broadcast",
        (
            NetError::Os {
                op: "recvfrom" | "recv" | "send",
                ..
            },
            Some(libc::ECONNREFUSED),
        ) => "udp-refused",
        (
            NetError::Os {
                op: "setsockopt", ..
            },
            Some(libc::EINVAL),
        ) => "setsockopt-range",
        // Permission to bind a low port, and to run a program, are the
        // two denials a learner meets; another call's means neither.
        (
            NetError::Os {
                op: "bind" | "listen",
                ..
            },
            Some(libc::EACCES),
        ) => "EACCES",
        (NetError::Os { op: "exec", .. }, Some(libc::EACCES)) => "exec-denied",
        _ => return explain_io(io),
    };
    Some(catalogue::text(id, HINT_INDENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_and_keeps_chinese() {
        assert_eq!(quote(b"hi\r\n\t\"\\\0", 100), r#""hi\r\n\t\"\\\0""#);
        assert_eq!(quote("敲代码...0".as_bytes(), 100), "\"敲代码...0\"");
        assert_eq!(quote(&[0xff, b'a'], 100), r#""\xffa""#);
        assert_eq!(quote(b"abcdef", 3), "\"abc\" … (+3 bytes)");
    }

    #[test]
    fn text_detection() {
        assert!(is_text(b"Welcome to study socket!\n"));
        assert!(is_text("收到".as_bytes()));
        // A read may cut a multi-byte character; still text.
        assert!(is_text(&"收到".as_bytes()[..4]));
        assert!(!is_text(&[0, 1, 2, 0xff]));
        assert!(!is_text(b"\x1b[31m"));
    }

    #[test]
    fn hexdump_layout() {
        let d = hexdump(b"Hello, world!\x00\x01\x02\x03", 256, "");
        assert_eq!(
            d,
            "0000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 00 01 02  |Hello, world!...|\n0010  03                                                |.|"
        );
    }

    /// `send NAME fill:SIZE` no longer holds its bytes: what it shows of
    /// them is what the whole showed (transcripts unchanged).
    #[test]
    fn a_fill_shows_as_its_whole_bytes_did() {
        for n in [0, 1, 99, 100, 101, 255, 256, 257, 70_000] {
            for f in [Format::Auto, Format::Text, Format::Hex] {
                assert_eq!(
                    repeated(b'x', n, f),
                    payload(&vec![b'x'; n as usize], n as usize, f),
                    "{n} {f:?}"
                );
            }
        }
    }

    #[test]
    fn payload_picks_text_or_hex() {
        assert_eq!(payload(b"886", 3, Format::Auto), "3 bytes \"886\"");
        assert_eq!(
            payload(b"886", 3, Format::Hex),
            "3 bytes:\n    0000  38 38 36                                          |886|"
        );
        assert!(payload(&[0, 1], 2, Format::Auto).starts_with("2 bytes:\n"));
        assert_eq!(payload(b"x", 1, Format::Auto), "1 byte \"x\"");
    }

    #[test]
    fn python_style_socket() {
        let s = SocketInfo {
            name: "s1".into(),
            fd: 3,
            family: Some(Family::V4),
            role: Role::Fresh,
            mode: socklab_net::Mode::Manual,
            local: None,
            peer: None,
            state: "created".into(),
            bytes_in: 0,
            bytes_out: 0,
            accepted: 0,
            datagrams_in: 0,
            datagrams_out: 0,
            tcp_state: None,
            program: None,
            outside: false,
            unix: None,
            tls: None,
            host: None,
        };
        assert_eq!(
            py_socket(&s),
            "<socket.socket fd=3, family=AF_INET, type=SOCK_STREAM, proto=0, laddr=('0.0.0.0', 0)>"
        );
    }

    #[test]
    fn explains_address_in_use() {
        let e = io::Error::from_raw_os_error(libc::EADDRINUSE);
        assert!(explain_io(&e).unwrap().contains("TIME_WAIT"));
    }

    /// Regression: a program that could not be run for want of permission
    /// was explained as a port below 1024 needing privilege.
    #[test]
    fn permission_denied_is_explained_by_what_was_denied() {
        let denied = |op| NetError::Os {
            op,
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        let bind = explain(&denied("bind")).unwrap_or_default();
        assert!(bind.contains("1024"), "{bind}");
        let exec = explain(&denied("exec")).unwrap_or_default();
        assert!(
            exec.contains("may not run that program") && !exec.contains("1024"),
            "{exec}"
        );
        assert!(explain(&denied("connect")).is_none());
    }
}
