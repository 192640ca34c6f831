//! UNIX-domain sockets: the `unix:PATH` and `unix:@NAME` forms of
//! `socket`, `bind`, `listen`, `connect`, `sendto` and `recvfrom`, and
//! what `info` shows of a UNIX connection (its peer's credentials). The
//! handlers of `sockets.rs` and `data.rs` hand over here when an address
//! or a socket is UNIX.

use socklab_net::{Command, ServeMode, SocketInfo, UnixAddr};

use super::common::{data_of, within};
use crate::args::{number_of, Args, CmdError, CmdResult};
use crate::parse::{Span, Token};
use crate::render;
use crate::session::Session;

/// Whether a token is a UNIX address (`unix:…`).
pub fn is_unix_token(t: &Token) -> bool {
    token_text(t).is_some_and(|w| w.starts_with("unix:"))
}

fn token_text(t: &Token) -> Option<String> {
    match t.word() {
        Some(w) => Some(w.to_string()),
        None => String::from_utf8(t.bytes()).ok(),
    }
}

/// A UNIX address from a token: `unix:PATH`, `unix:@NAME`, or (when
/// `bare` allows, for a socket known to be UNIX) `PATH` or `@NAME`.
pub fn unix_addr(t: &Token, bare: bool) -> CmdResult<UnixAddr> {
    let text =
        token_text(t).ok_or_else(|| CmdError::at(t.span, "a UNIX address is text (UTF-8)"))?;
    let rest = match text.strip_prefix("unix:") {
        Some(rest) => rest,
        None if bare => text.as_str(),
        None => {
            return Err(CmdError::at(
                t.span,
                "a UNIX address is written unix:PATH (or unix:@NAME for an abstract name)",
            ))
        }
    };
    UnixAddr::parse(rest).map_err(|m| CmdError::at(t.span, m))
}

/// An address as the person sees it (the session's temporary directory as
/// `{tmp}`).
fn shown(s: &Session, a: &UnixAddr) -> String {
    s.tmp().text(&render::unix_addr(a))
}

/// A lab error whose text may name a path under `{tmp}`.
fn err(s: &Session, e: socklab_net::NetError) -> CmdError {
    let mut c = CmdError::from(e);
    c.message = s.tmp().text(&c.message);
    c
}

/// `socket unix [stream|dgram] [as NAME]` (after `unix`).
pub async fn socket(s: &mut Session, mut a: Args, name: Option<String>) -> CmdResult {
    let dgram = if a.keyword("dgram") {
        true
    } else {
        a.keyword("stream");
        false
    };
    a.done()?;
    let info = s.lab.socket_unix(dgram, name.as_deref())?;
    s.say(format!("{} = {}", info.name, render::py_socket(&info)));
    Ok(())
}

/// `bind NAME [unix:]PATH`, `bind NAME [unix:]@NAME`.
pub async fn bind(s: &mut Session, mut a: Args, name: String) -> CmdResult {
    let t = a.token("a path (or unix:@NAME)")?;
    if let Some(more) = a.peek() {
        return Err(CmdError::at(
            more.span,
            format!("{name} is a UNIX socket: its address is one path (unix:PATH) or unix:@NAME, not a host and port"),
        ));
    }
    let addr = unix_addr(&t, true)?;
    let info = s
        .lab
        .bind_unix(&name, &addr)
        .map_err(|e| err(s, e).os_at(t.span))?;
    s.say(format!("{name}: bound to {}", local_of(s, &info)));
    if let UnixAddr::Path(_) = addr {
        s.say(format!(
            "   the bind made the socket file {}; socklab removes it when {name} is closed",
            shown(s, &addr)
        ));
    }
    Ok(())
}

fn local_of(s: &Session, info: &SocketInfo) -> String {
    info.unix
        .as_ref()
        .map(|u| shown(s, &u.local))
        .unwrap_or_default()
}

/// `listen unix:PATH [backlog N] [mode …] [as NAME] [exec PROGRAM …]`,
/// after the caller took the mode, backlog, name and program.
pub async fn serve(
    s: &mut Session,
    t: Token,
    backlog: i32,
    name: Option<String>,
    how: ServeMode,
    program: Option<Command>,
) -> CmdResult {
    let addr = unix_addr(&t, false)?;
    let info = match program {
        Some(command) => {
            let shown_cmd = command.to_string();
            let info = s
                .lab
                .serve_unix_exec(&addr, backlog, name.as_deref(), command)
                .map_err(|e| err(s, e).os_at(t.span))?;
            s.say(format!(
                "{}: listening on {}; each client ({}.1, {}.2, …) is wired to its own `{shown_cmd}`: its bytes are the program's stdin, the program's stdout goes back",
                info.name,
                local_of(s, &info),
                info.name,
                info.name
            ));
            info
        }
        None => {
            let info = s
                .lab
                .serve_unix(&addr, backlog, name.as_deref(), how)
                .map_err(|e| err(s, e).os_at(t.span))?;
            s.say(format!(
                "{}: listening on {}; clients become {}.1, {}.2, …",
                info.name,
                local_of(s, &info),
                info.name,
                info.name
            ));
            match how {
                ServeMode::Iterative => s.say(format!(
                    "   iterative: one client at a time; the next waits in the backlog until `close {}.N`",
                    info.name
                )),
                ServeMode::Thread => s.say("   thread: one OS thread reads each client"),
                ServeMode::Task => {}
            }
            info
        }
    };
    match addr {
        UnixAddr::Path(_) => s.say(format!(
            "   a socket file, reachable by this machine's programs that may open {}; socklab removes it when {} is closed",
            shown(s, &addr),
            info.name
        )),
        _ => s.say(
            "   an abstract name: no file; any program of this machine (in this network namespace) can connect",
        ),
    }
    Ok(())
}

/// Whether the next argument is a UNIX address: `unix:…`, or the name of
/// a UNIX listener of this shell (alone on the rest of the line).
pub fn is_unix_target(s: &Session, a: &Args) -> bool {
    if a.peek().is_some_and(is_unix_token) {
        return true;
    }
    a.len() == 1 && a.peek_word().is_some_and(|w| listener_addr(s, w).is_some())
}

/// The address of a UNIX listener of this shell.
fn listener_addr(s: &Session, name: &str) -> Option<UnixAddr> {
    s.lab
        .info(name)
        .ok()
        .filter(|i| i.role == socklab_net::Role::Listener)
        .and_then(|i| i.unix)
        .map(|u| u.local)
}

/// `connect unix:PATH|LISTENER [as NAME]` (watched) or `connect NAME
/// unix:PATH|LISTENER` (step by step, read with `recv`).
pub async fn connect(
    s: &mut Session,
    t: Token,
    fresh: Option<String>,
    name: Option<String>,
) -> CmdResult {
    let to = match t.word().and_then(|w| listener_addr(s, w)) {
        Some(a) => a,
        None => unix_addr(&t, false)?,
    };
    let lab = s.lab.clone();
    let info = match fresh {
        Some(fresh) => lab.connect_unix(&fresh, &to).await,
        None => lab.dial_unix(&to, name.as_deref()).await,
    }
    .map_err(|e| err(s, e).os_at(t.span))?;
    s.say(format!(
        "{}: connected to {} (UNIX stream)",
        info.name,
        shown(s, &to)
    ));
    Ok(())
}

/// `sendto NAME unix:PATH DATA` (the caller took NAME and DATA).
pub async fn sendto(s: &mut Session, name: String, t: Token, data: Token) -> CmdResult {
    let to = unix_addr(&t, true)?;
    let bytes = data_of(&data)?;
    let lab = s.lab.clone();
    let n = within(s.wait_limit, format!("sendto {name}"), async {
        Ok(lab.sendto_unix(&name, &to, &bytes).await?)
    })
    .await
    .map_err(|e| e.os_at(t.span))?;
    s.say(format!(
        "{name} -> {}: {}",
        shown(s, &to),
        render::payload(&bytes, n, s.format())
    ));
    Ok(())
}

/// `recvfrom NAME [MAX] [timeout DUR]` on a UNIX datagram socket.
pub async fn recvfrom(
    s: &mut Session,
    mut a: Args,
    name: String,
    limit: Option<std::time::Duration>,
) -> CmdResult {
    let max = match a.peek() {
        Some(_) => {
            let t = a.token("a size")?;
            number_of(&t, "a size", 1..=65536)? as usize
        }
        None => 65536,
    };
    a.done()?;
    let lab = s.lab.clone();
    let d = within(limit, format!("recvfrom {name}"), async {
        Ok(lab.recvfrom_unix(&name, max).await?)
    })
    .await?;
    s.say(format!(
        "{name} <- recvfrom({max}) from {}: {}",
        shown(s, &d.from),
        render::payload(&d.data, d.data.len(), s.format())
    ));
    Ok(())
}

/// `listen NAME [BACKLOG]` on a UNIX socket made by `socket unix`.
pub fn listen_step(s: &Session, name: &str, backlog: i32) -> CmdResult {
    let unbound = s
        .lab
        .info(name)
        .is_ok_and(|i| i.unix.is_some_and(|u| u.local == UnixAddr::Unnamed));
    let info = s.lab.listen(name, backlog).map_err(|e| {
        let c = err(s, e);
        if unbound {
            c.hint(format!(
                "a UNIX socket must be bound before listen (unlike TCP, the kernel picks no address for it): `bind {name} PATH` or `bind {name} unix:@NAME` first"
            ))
        } else {
            c
        }
    })?;
    s.say(format!(
        "{name}: listening on {} (backlog {backlog}); clients wait in the queue until `accept {name}`",
        local_of(s, &info)
    ));
    Ok(())
}

/// The list with paths under the session's temporary directory written
/// `{tmp}/…` (before the table is laid out, so its columns line up).
pub fn tmp_paths(s: &Session, list: Vec<SocketInfo>) -> Vec<SocketInfo> {
    let fix = |a: &mut UnixAddr| {
        if let UnixAddr::Path(p) = a {
            *p = std::path::PathBuf::from(s.tmp().path(p));
        }
    };
    list.into_iter()
        .map(|mut i| {
            if let Some(u) = &mut i.unix {
                fix(&mut u.local);
                if let Some(p) = &mut u.peer {
                    fix(p);
                }
            }
            i
        })
        .collect()
}

/// `info NAME` of a UNIX socket: its addresses and, for a connection, who
/// the peer is (SO_PEERCRED).
pub fn info(s: &Session, name: &str, info: &SocketInfo, at: Span) -> CmdResult {
    let Some(u) = &info.unix else {
        return Err(CmdError::at(at, format!("{name} is not a UNIX socket")));
    };
    let mut rows = vec![vec![
        "local".to_string(),
        shown(s, &u.local),
        "its own address (a client usually has none)".to_string(),
    ]];
    if let Some(peer) = &u.peer {
        rows.push(vec![
            "peer".to_string(),
            shown(s, peer),
            "the other end's address".to_string(),
        ]);
    }
    let Some(cred) = u.cred else {
        let what = if u.dgram { "datagram" } else { "stream" };
        s.say(format!("{name}: a UNIX {what} socket"));
        s.say(render::table(&["FIELD", "VALUE", "MEANING"], &rows));
        if u.peer.is_none() {
            s.say("   no peer: SO_PEERCRED is for a connected stream socket");
        }
        return Ok(());
    };
    let me = std::process::id() as i32;
    let pid = cred
        .pid
        .map_or_else(|| "unknown".to_string(), |p| p.to_string());
    let whose = if cred.pid == Some(me) {
        "the peer's process: this socklab itself (both ends are in this shell)"
    } else {
        "the peer's process, as the kernel recorded it at connect"
    };
    rows.push(vec!["pid".to_string(), pid, whose.to_string()]);
    rows.push(vec![
        "uid".to_string(),
        cred.uid.to_string(),
        format!("the peer's user{}", user_note(cred.uid)),
    ]);
    rows.push(vec![
        "gid".to_string(),
        cred.gid.to_string(),
        "the peer's group".to_string(),
    ]);
    s.say(format!(
        "{name}: SO_PEERCRED, who is at the other end (the kernel's word: it cannot be forged)"
    ));
    s.say(render::table(&["FIELD", "VALUE", "MEANING"], &rows));
    Ok(())
}

fn user_note(uid: u32) -> String {
    let mine = nix::unistd::getuid().as_raw();
    match (uid, uid == mine) {
        (0, true) => " (root, as this socklab)".to_string(),
        (0, false) => " (root)".to_string(),
        (_, true) => " (the same user as this socklab)".to_string(),
        (_, false) => " (another user)".to_string(),
    }
}
