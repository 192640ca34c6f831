//! Socket commands, step by step (`socket`, `set`, `get`, `bind`, `listen
//! NAME`, `accept`, `connect NAME`, `shutdown`, `close`) and practical
//! (`listen PORT`, `connect HOST PORT`, `udp`), and how a socket is read and
//! listed (`watch`, `sockets`).

use std::net::Shutdown;

use socklab_net::{Command, Family, Mode, OptKind, OptValue, Proto, Role, ServeMode, SockOpt};

use super::common::{socket_arg, target, within};
use crate::args::{
    duration_of, host_port, number_of, port_of, resolve, Args, CmdError, CmdResult, Exit,
};
use crate::parse::{Span, Token};
use crate::render;
use crate::session::Session;

/// `socket tcp|udp [v4|v6] [as NAME]`, `socket unix [stream|dgram] [as NAME]`
pub async fn socket(s: &mut Session, mut a: Args) -> CmdResult {
    let name = a.as_name()?;
    let (proto, _) = a.choice("a protocol", &["tcp", "udp", "unix"])?;
    if proto == "unix" {
        return super::unix::socket(s, a, name).await;
    }
    let proto = if proto == "udp" {
        Proto::Udp
    } else {
        Proto::Tcp
    };
    let family = if a.keyword("v6") {
        Family::V6
    } else {
        a.keyword("v4");
        Family::V4
    };
    a.done()?;
    let info = s.lab.socket(proto, family, name.as_deref())?;
    s.say(format!("{} = {}", info.name, render::py_socket(&info)));
    Ok(())
}

/// `set NAME OPTION VALUE`
pub async fn set(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let opt = opt_arg(&mut a)?;
    let t = a.token("a value")?;
    a.done()?;
    let w = t.word().unwrap_or("");
    let value = match opt.kind() {
        OptKind::Bool => match w.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => OptValue::Bool(true),
            "off" | "false" | "no" | "0" => OptValue::Bool(false),
            _ => {
                return Err(CmdError::at(
                    t.span,
                    format!("{opt} is on or off, not '{w}'"),
                ))
            }
        },
        OptKind::Int => {
            // The TTL is one byte of the IP header: 1 to 255 hops.
            let range = if opt == SockOpt::Ttl {
                1..=255
            } else if opt == SockOpt::MulticastTtl {
                0..=255
            } else {
                1..=(1 << 30)
            };
            OptValue::Int(number_of(&t, &format!("a value for {opt}"), range)?)
        }
        OptKind::Addr => OptValue::Addr(w.parse().map_err(|_| {
            CmdError::at(t.span, format!("{opt} takes an IPv4 address, not '{w}'"))
        })?),
        OptKind::Linger => {
            if w.eq_ignore_ascii_case("off") {
                OptValue::Linger(None)
            } else {
                OptValue::Linger(Some(duration_of(&t)?))
            }
        }
    };
    s.lab.set_opt(&name, opt, value)?;
    let info = s.lab.info(&name)?;
    s.say(format!("{name}: {} = {value}", opt.c_name()));
    let before_bind = matches!(
        opt,
        SockOpt::ReuseAddr | SockOpt::ReusePort | SockOpt::V6Only
    );
    if before_bind && (info.role != Role::Fresh || info.state == "bound") {
        s.say(note(
            "note-already-bound",
            &[("name", &name), ("opt", &opt.to_string())],
        ));
    }
    Ok(())
}

/// `get NAME OPTION`
pub async fn get(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let opt = opt_arg(&mut a)?;
    a.done()?;
    let v = s.lab.get_opt(&name, opt)?;
    s.say(format!("{name}: {} = {v}", opt.c_name()));
    Ok(())
}

/// `bind NAME HOST PORT`, `bind NAME [unix:]PATH`
pub async fn bind(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    if s.lab.is_unix(&name) || a.peek().is_some_and(super::unix::is_unix_token) {
        return super::unix::bind(s, a, name).await;
    }
    let host = a.token("a host")?;
    let pt = a.token("a port")?;
    a.done()?;
    let port = port_of(&pt)?;
    let addr = resolve(&host, port).await?;
    let info = s.lab.bind(&name, addr).map_err(|e| {
        // Whether SO_REUSEADDR would help depends on whether it is on.
        let reuse = matches!(
            s.lab.get_opt(&name, SockOpt::ReuseAddr),
            Ok(OptValue::Bool(true))
        );
        in_use_hint(e, &name, reuse).os_at(pt.span)
    })?;
    let local = info.local.unwrap_or(addr);
    s.say(format!(
        "{name}: bound to {}{}",
        render::addr(&local),
        port_note(port, info.local)
    ));
    Ok(())
}

/// `listen NAME [BACKLOG]`,
/// `listen [HOST] PORT [backlog N] [mode iterative|thread|task] [as NAME]`
pub async fn listen(s: &mut Session, mut a: Args) -> CmdResult {
    // `listen NAME [BACKLOG]`: the step-by-step listen() call.
    if let Some(w) = a.peek_word() {
        if s.lab.exists(w) {
            let name = socket_arg(s, &mut a)?;
            let backlog = match a.peek() {
                Some(_) => {
                    let t = a.token("a backlog")?;
                    number_of(&t, "a backlog", 0..=65535)? as i32
                }
                None => 128,
            };
            a.done()?;
            if s.lab.is_unix(&name) {
                return super::unix::listen_step(s, &name, backlog);
            }
            let unbound = is_unbound(s, &name);
            let info = s.lab.listen(&name, backlog)?;
            let at = info.local.map(|l| render::addr(&l)).unwrap_or_default();
            s.say(format!("{name}: listening on {at} (backlog {backlog}); clients wait in the queue until `accept {name}`"));
            if let (true, Some(local)) = (unbound, info.local) {
                s.say(note(
                    "note-listen-bound",
                    &[("name", &name), ("addr", &render::addr(&local))],
                ));
            }
            if let Some(local) = info.local {
                note_exposure(s, local);
            }
            return Ok(());
        }
    }
    serve(s, a).await
}

/// `listen [HOST] PORT [backlog N] [mode …] [as NAME] [exec PROGRAM …]`:
/// a server that accepts every client by itself.
async fn serve(s: &mut Session, mut a: Args) -> CmdResult {
    let program = match a.split_off("exec") {
        Some((at, toks)) => Some(program_of(at, toks)?),
        None => None,
    };
    let mut name = a.as_name()?;
    let how = match a.option("mode", "iterative, thread or task")? {
        Some(t) if program.is_some() => {
            return Err(CmdError::at(
                t.span,
                "a server that runs a program per client has no mode",
            ))
        }
        Some(t) => t
            .word()
            .and_then(|w| w.parse::<ServeMode>().ok())
            .ok_or_else(|| CmdError::at(t.span, "a server's mode is iterative, thread or task"))?,
        None => ServeMode::Task,
    };
    let backlog = match a.option("backlog", "a number")? {
        Some(t) => number_of(&t, "a backlog", 0..=65535)? as i32,
        None => 1024,
    };
    if a.peek().is_some_and(super::unix::is_unix_token) {
        let t = a.token("a UNIX address")?;
        a.done()?;
        let (program, name) = match program {
            Some((command, as_name)) => (Some(command), as_name.or(name)),
            None => (None, name),
        };
        return super::unix::serve(s, t, backlog, name, how, program).await;
    }
    let (addr, pt) = host_port(&mut a).await?;
    a.done()?;
    let port = addr.port();
    let info = match program {
        Some((command, as_name)) => {
            name = as_name.or(name);
            let shown = command.to_string();
            let info = s
                .lab
                .serve_exec(addr, backlog, name.as_deref(), command)
                .map_err(|e| in_use_hint(e, "", true).os_at(pt.span))?;
            let local = info.local.unwrap_or(addr);
            s.say(format!(
                "{}: listening on {}{}; each client ({}.1, {}.2, …) is wired to its own `{shown}`: its bytes are the program's stdin, the program's stdout goes back",
                info.name,
                render::addr(&local),
                port_note(port, info.local),
                info.name,
                info.name
            ));
            info
        }
        None => {
            let info = s
                .lab
                .serve(addr, backlog, name.as_deref(), how)
                .map_err(|e| in_use_hint(e, "", true).os_at(pt.span))?;
            say_server(s, &info, how, port);
            info
        }
    };
    note_exposure(s, info.local.unwrap_or(addr));
    Ok(())
}

/// A lab error as a command error; "Address already in use" gets the hint
/// that fits the socket: SO_REUSEADDR is advice only when it is off (`listen
/// PORT` servers have it on; `name` is empty then).
fn in_use_hint(e: socklab_net::NetError, name: &str, reuseaddr: bool) -> CmdError {
    let in_use = e.os_error().and_then(std::io::Error::raw_os_error) == Some(libc::EADDRINUSE);
    let c = CmdError::from(e);
    if in_use {
        c.hint(render::address_in_use(name, reuseaddr))
    } else {
        c
    }
}

/// What a new event server says of itself.
fn say_server(s: &Session, info: &socklab_net::SocketInfo, how: ServeMode, port: u16) {
    let local = info.local.map(|l| render::addr(&l)).unwrap_or_default();
    s.say(format!(
        "{}: listening on {local}{}; clients become {}.1, {}.2, …",
        info.name,
        port_note(port, info.local),
        info.name,
        info.name
    ));
    match how {
        ServeMode::Iterative => s.say(note("serve-iterative", &[("name", &info.name)])),
        ServeMode::Thread => s.say(note("serve-thread", &[])),
        ServeMode::Task => {}
    }
}

/// Whether socket `name` has no local address yet (an implicit bind is
/// still to come).
pub(super) fn is_unbound(s: &Session, name: &str) -> bool {
    s.lab
        .info(name)
        .is_ok_and(|i| i.local.is_none_or(|l| l.port() == 0))
}

/// A server reachable from other machines says so.
pub(super) fn note_exposure(s: &Session, local: std::net::SocketAddr) {
    if let Some(place) = socklab_net::netns::current() {
        // A lab host's addresses are on the lab's LAN only.
        if !local.ip().is_loopback() {
            let id = if local.ip().is_unspecified() {
                "note-lab-every-interface"
            } else {
                "note-lab-lan"
            };
            s.say(note(
                id,
                &[("addr", &local.ip().to_string()), ("host", &place.host)],
            ));
        }
        return;
    }
    if !local.ip().is_loopback() {
        let id = if local.ip().is_unspecified() {
            "note-every-interface-connect"
        } else {
            "note-non-loopback-connect"
        };
        s.say(note(id, &[("addr", &local.ip().to_string())]));
    }
}

/// A note under a command's output (`   note: …`), in the session's
/// language (under `both`, the Chinese on the next line, as indented).
pub(super) fn note(id: &str, args: &[(&str, &str)]) -> String {
    format!("   {}", crate::catalogue::fill(id, "   ", args))
}

/// `exec PROGRAM [ARGS…] [as NAME]`
pub async fn exec(s: &mut Session, mut a: Args) -> CmdResult {
    let at = a.end();
    let (command, name) = program_of(at, a.rest())?;
    // A path under `{tmp}` is shown so, as typed: transcripts stay the same.
    let shown = s.tmp().text(&command.to_string());
    let info = s.lab.exec(command, name.as_deref())?;
    let pid = info.program.as_ref().map_or(0, |p| p.0);
    s.say(format!(
        "{}: running `{shown}` (pid {pid}); send writes to its stdin, its stdout arrives as events, its stderr as `{} <- stderr: …`",
        info.name, info.name
    ));
    Ok(())
}

/// A program's command line from tokens: the program, its arguments, and
/// a trailing `as NAME` (socklab's, not the program's; quote an argument
/// that is the word as).
fn program_of(at: Span, mut toks: Vec<Token>) -> CmdResult<(Command, Option<String>)> {
    let n = toks.len();
    let name = if n >= 3 && toks[n - 2].word() == Some("as") {
        let t = toks
            .pop()
            .ok_or_else(|| CmdError::at(at, "missing a name"))?;
        toks.pop();
        let w = t
            .word()
            .ok_or_else(|| CmdError::at(t.span, "a name is a bare word"))?;
        crate::parse::name(w).map_err(|m| CmdError::at(t.span, m))?;
        Some(w.to_string())
    } else {
        None
    };
    let mut words = toks.into_iter().map(|t| match t.word() {
        Some(w) => Ok(w.to_string()),
        None => String::from_utf8(t.bytes())
            .map_err(|_| CmdError::at(t.span, "a program's arguments are text (UTF-8)")),
    });
    let program = words
        .next()
        .ok_or_else(|| CmdError::at(at, "missing a program to run"))??;
    let args = words.collect::<CmdResult<Vec<String>>>()?;
    Ok((Command { program, args }, name))
}

/// `accept NAME [as CONN] [timeout DUR]`
pub async fn accept(s: &mut Session, mut a: Args) -> CmdResult {
    let conn = a.as_name()?;
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    a.done()?;
    let lab = s.lab.clone();
    let info = within(limit, format!("accept {name}"), async {
        Ok(lab.accept(&name, conn.as_deref()).await?)
    })
    .await
    .map_err(|e| {
        if e.exit != Exit::TempFail {
            return e;
        }
        let so_far = s.lab.info(&name).map_or(0, |i| i.accepted);
        e.hint(crate::catalogue::fill(
            "accept-timeout",
            render::HINT_INDENT,
            &[("name", &name), ("n", &so_far.to_string())],
        ))
    })?;
    let peer = match &info.unix {
        Some(u) => u
            .peer
            .as_ref()
            .map(|p| s.tmp().text(&render::unix_addr(p)))
            .unwrap_or_default(),
        None => info.peer.map(|p| render::addr(&p)).unwrap_or_default(),
    };
    if info.mode == Mode::Watched {
        s.say(format!(
            "{name}: next client is {} (from {peer})",
            info.name
        ));
    } else {
        s.say(format!("{name}: accepted {} from {peer}", info.name));
        s.say(format!(
            "{} = {}",
            info.name,
            s.tmp().text(&render::py_socket(&info))
        ));
    }
    Ok(())
}

/// `connect NAME HOST PORT [timeout DUR]`,
/// `connect NAME LISTENER [timeout DUR]`,
/// `connect HOST PORT [as NAME] [timeout DUR]`,
/// `connect LISTENER [as NAME] [timeout DUR]`
pub async fn connect(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let first = a.peek_word().map(str::to_string);
    let fresh = first
        .as_deref()
        .and_then(|w| s.lab.info(w).ok())
        .filter(|i| matches!(i.role, Role::Fresh | Role::Datagram));
    if let Some(info) = fresh {
        // `connect NAME HOST PORT` / `connect NAME LISTENER`.
        let name = info.name;
        a.token("a socket name")?;
        if let Some(n) = a.as_name()? {
            return Err(CmdError::usage(format!(
                "{name} has a name already; `as {n}` applies to new connections"
            )));
        }
        if super::unix::is_unix_target(s, &a) {
            let t = a.token("a UNIX address")?;
            a.done()?;
            return super::unix::connect(s, t, Some(name), None).await;
        }
        let to = target(s, &mut a).await?;
        a.done()?;
        let lab = s.lab.clone();
        // The connect enforces the limit itself, and keeps the socket (still
        // connecting, SYN_SENT) when it runs out, as a real one would.
        let info = lab
            .connect(&name, to, limit)
            .await
            .map_err(|e| connect_timed_out(e, to))?;
        say_connected(s, &info);
        return Ok(());
    }
    let name = a.as_name()?;
    if super::unix::is_unix_target(s, &a) {
        let t = a.token("a UNIX address")?;
        a.done()?;
        return super::unix::connect(s, t, None, name).await;
    }
    let to = target(s, &mut a).await?;
    a.done()?;
    let lab = s.lab.clone();
    let info = lab
        .dial(to, name.as_deref(), limit)
        .await
        .map_err(|e| connect_timed_out(e, to))?;
    say_connected(s, &info);
    Ok(())
}

/// A connect that ran out of time says which side it waited for.
fn connect_timed_out(e: socklab_net::NetError, to: std::net::SocketAddr) -> CmdError {
    let handshake =
        matches!(&e, socklab_net::NetError::Timeout { what, .. } if what.starts_with("connect to"));
    let c = CmdError::from(e);
    if !handshake {
        return c;
    }
    c.hint(crate::catalogue::fill(
        "syn-timeout",
        render::HINT_INDENT,
        &[("addr", &render::addr(&to))],
    ))
}

/// `shutdown NAME read|write|both`
pub async fn shutdown(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let (how, _) = a.choice("a direction", &["read", "write", "both"])?;
    a.done()?;
    let program = s.lab.info(&name).is_ok_and(|i| i.role == Role::Program);
    let (how, said) = match (how, program) {
        ("read", false) => (Shutdown::Read, "shut down reading"),
        ("write", false) => (
            Shutdown::Write,
            "shut down writing: FIN sent; the peer reads EOF but may still send",
        ),
        (_, false) => (Shutdown::Both, "shut down both directions: FIN sent"),
        ("read", true) => (
            Shutdown::Read,
            "stopped reading its stdout (it gets SIGPIPE if it writes)",
        ),
        ("write", true) => (
            Shutdown::Write,
            "closed its stdin: the program reads EOF but may still write",
        ),
        (_, true) => (Shutdown::Both, "closed its stdin and stdout"),
    };
    let lab = s.lab.clone();
    within(s.wait_limit, format!("shutdown {name}"), async {
        Ok(lab.shutdown(&name, how).await?)
    })
    .await?;
    s.say(format!("{name}: {said}"));
    Ok(())
}

/// `close NAME`
pub async fn close(s: &mut Session, mut a: Args) -> CmdResult {
    if let Some(prefix) = a.peek_word().and_then(|w| w.strip_suffix(".*")) {
        let prefix = prefix.to_string();
        let t = a.token("a socket name")?;
        a.done()?;
        return close_children(s, &prefix, t.span).await;
    }
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    s.closed_stream = Some(name.clone());
    a.done()?;
    let lab = s.lab.clone();
    let (info, unread) = within(limit, format!("close {name}"), async {
        Ok(lab.close_unread(&name).await?)
    })
    .await?;
    let what = match info.role {
        Role::Listener if info.state.starts_with("chat") => {
            "closed; no longer listening, and every client of the chat was disconnected"
        }
        Role::Listener if info.state.starts_with("bench server") => {
            "closed; no longer listening, and its bench clients are disconnected"
        }
        Role::Listener => "closed; no longer listening (its accepted connections stay open)",
        Role::Fresh | Role::Stream | Role::Datagram | Role::Program => "closed",
    };
    s.say(format!("{name}: {what}"));
    // In a script an outside stream's data shows only as what commands
    // took: what nothing took is said here, once the close settled it.
    if info.outside && !s.interactive && !unread.is_empty() {
        s.say(format!(
            "{name}: received but never taken (no expect matched it): {}",
            render::payload(&unread, unread.len(), s.format())
        ));
    }
    Ok(())
}

/// `close NAME.*`: every connection `NAME` accepted, at once.
async fn close_children(s: &mut Session, server: &str, at: crate::parse::Span) -> CmdResult {
    let prefix = format!("{server}.");
    let names: Vec<String> = s
        .lab
        .names()
        .into_iter()
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|k| k.parse::<u64>().is_ok())
        })
        .collect();
    if names.is_empty() {
        return Err(CmdError::at(
            at,
            format!("{server} has no accepted connections open"),
        ));
    }
    let lab = s.lab.clone();
    let results = within(s.wait_limit, format!("close {server}.*"), async {
        Ok(lab.close_many(&names).await)
    })
    .await?;
    let mut failed = None;
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(_) => s.say(format!("{name}: closed")),
            Err(e) => {
                s.say(format!("{name}: not closed: {e}"));
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// `watch NAME on|off`
pub async fn watch(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let (on, _) = a.choice("on or off", &["on", "off"])?;
    a.done()?;
    s.lab.set_watch(&name, on == "on").await?;
    let info = s.lab.info(&name)?;
    s.say(match info.mode {
        Mode::Watched => format!("{name}: read in the background; data shows as events"),
        Mode::Manual => format!("{name}: read on request; use recv"),
    });
    Ok(())
}

/// `sockets`
pub async fn sockets(s: &mut Session, a: Args) -> CmdResult {
    a.done()?;
    s.say(render::sockets(&super::unix::tmp_paths(s, s.lab.list())));
    let lingering = s.lab.lingering();
    if !lingering.is_empty() {
        let rows: Vec<Vec<String>> = lingering
            .iter()
            .map(|(name, row)| {
                vec![
                    name.clone(),
                    render::addr(&row.local),
                    render::addr(&row.remote),
                    format!("TIME_WAIT: {name} closed first, so its side holds the port"),
                ]
            })
            .collect();
        s.say("closed, but still held by the kernel:");
        s.say(render::table(&["CLOSED", "LOCAL", "PEER", "WHY"], &rows));
    }
    Ok(())
}

/// `udp [HOST] PORT [as NAME]`
pub async fn udp(s: &mut Session, mut a: Args) -> CmdResult {
    let name = a.as_name()?;
    let (addr, pt) = host_port(&mut a).await?;
    a.done()?;
    let port = addr.port();
    let info = s
        .lab
        .udp_serve(addr, name.as_deref())
        .map_err(|e| CmdError::from(e).os_at(pt.span))?;
    let local = info.local.unwrap_or(addr);
    s.say(format!(
        "{}: receiving UDP on {}{}; each datagram shows as an event",
        info.name,
        render::addr(&local),
        port_note(port, info.local)
    ));
    if !local.ip().is_loopback() {
        s.say(note(
            "note-not-loopback-send",
            &[("addr", &local.ip().to_string())],
        ));
    }
    Ok(())
}

fn opt_arg(a: &mut Args) -> CmdResult<SockOpt> {
    let (w, span) = a.word("an option")?;
    w.parse::<SockOpt>().map_err(|()| {
        let names: Vec<_> = SockOpt::ALL.iter().map(|o| o.name()).collect();
        CmdError::at(span, format!("unknown option '{w}'"))
            .hint(format!("options: {}", names.join(", ")))
    })
}

fn say_connected(s: &Session, info: &socklab_net::SocketInfo) {
    let peer = info.peer.map(|p| render::addr(&p)).unwrap_or_default();
    let local = info.local.map(|p| render::addr(&p)).unwrap_or_default();
    s.say(format!("{}: connected to {peer} from {local}", info.name));
    if info.role == Role::Datagram {
        s.say(note("udp-connect", &[]));
    }
}

/// ` (port 0: the OS picked free port N)` after a server's address when
/// port 0 was asked; empty otherwise.
pub(super) fn port_note(asked: u16, got: Option<std::net::SocketAddr>) -> String {
    match got {
        Some(a) if asked == 0 => format!(" (port 0: the OS picked free port {})", a.port()),
        _ => String::new(),
    }
}
