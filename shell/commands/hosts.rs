//! The classroom: `host`, `hosts`, `link`, and what `on HOST …` needs
//! (the command itself lives beside the table it dispatches through).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use socklab_net::hosts::{HostError, HostInfo, Link};
use socklab_net::netns::{self, Place};

use crate::args::{duration_of, number_of, Args, CmdError, CmdResult, Exit};
use crate::parse::Span;
use crate::render;
use crate::session::Session;

/// A host error for the person.
fn host_error(e: HostError) -> CmdError {
    let exit = match e {
        HostError::Usage(_) => Exit::Usage,
        HostError::Missing(_) => Exit::Unavailable,
        HostError::System { .. } => Exit::OsErr,
    };
    CmdError::new(exit, e.to_string())
}

/// `host add NAME [ADDR]`, `host add PREFIX COUNT`, `host del NAME`,
/// `host lan NET/PREFIX`
pub async fn host(s: &mut Session, mut a: Args) -> CmdResult {
    let (verb, _) = a.choice("what to do", &["add", "del", "lan"])?;
    match verb {
        "add" => add(s, a),
        "del" => del(s, a),
        _ => lan(s, a),
    }
}

fn add(s: &mut Session, mut a: Args) -> CmdResult {
    let (name, span) = a.word("a host name")?;
    let wanted: Vec<(String, Option<Ipv4Addr>)> = match a.peek() {
        None => vec![(name, None)],
        Some(t) => {
            let t = t.clone();
            let w = t.word().unwrap_or("").to_string();
            a.token("an address or a count")?;
            if w.contains('.') {
                let ip: Ipv4Addr = w.parse().map_err(|_| {
                    CmdError::at(t.span, format!("expected an IPv4 address, found '{w}'"))
                })?;
                vec![(name, Some(ip))]
            } else {
                let n = number_of(&t, "a number of hosts", 1..=250)?;
                (1..=n).map(|k| (format!("{name}{k}"), None)).collect()
            }
        }
    };
    a.done()?;
    let made = s
        .hosts()
        .add(&wanted)
        .map_err(|e| host_error(e).or_at(span))?;
    if let [one] = &made[..] {
        s.say(format!(
            "{}: host {}/{} on the lab LAN (netns {}, {})",
            one.name, one.addr, one.prefix, one.netns, one.iface
        ));
    } else if let (Some(first), Some(last)) = (made.first(), made.last()) {
        s.say(format!(
            "{} hosts: {} ({}) … {} ({}) on the lab LAN",
            made.len(),
            first.name,
            first.addr,
            last.name,
            last.addr
        ));
    }
    Ok(())
}

fn del(s: &mut Session, mut a: Args) -> CmdResult {
    let (name, span) = a.word("a host name")?;
    a.done()?;
    let held: Vec<String> = s
        .lab
        .list()
        .into_iter()
        .filter(|i| i.host.as_deref() == Some(name.as_str()))
        .map(|i| i.name)
        .collect();
    if !held.is_empty() {
        return Err(CmdError::at(
            span,
            format!("{name} still holds {}: close them first", held.join(", ")),
        ));
    }
    s.hosts()
        .remove(&name)
        .map_err(|e| host_error(e).or_at(span))?;
    s.say(format!("{name}: removed"));
    Ok(())
}

fn lan(s: &mut Session, mut a: Args) -> CmdResult {
    let (w, span) = a.word("a LAN like 192.168.24.0/24")?;
    a.done()?;
    let bad = || {
        CmdError::at(
            span,
            format!("expected a LAN like 10.0.0.0/24, found '{w}'"),
        )
    };
    let (addr, prefix) = w.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    s.hosts()
        .set_lan(addr, prefix)
        .map_err(|e| host_error(e).or_at(span))?;
    let (net, prefix) = netns::lan();
    s.say(format!("the lab LAN is {net}/{prefix}"));
    Ok(())
}

/// `hosts`
pub async fn hosts(s: &mut Session, a: Args) -> CmdResult {
    a.done()?;
    let list = s.hosts().list();
    if list.is_empty() {
        let (net, prefix) = netns::lan();
        s.say(format!(
            "no hosts (the lab LAN is {net}/{prefix}; `host add teacher` makes one)"
        ));
        return Ok(());
    }
    let sockets = s.lab.list();
    s.say(render_hosts(&list, |h| {
        sockets
            .iter()
            .filter(|i| i.host.as_deref() == Some(h))
            .map(|i| i.name.clone())
            .collect()
    }));
    Ok(())
}

/// The table of hosts.
fn render_hosts(list: &[HostInfo], held: impl Fn(&str) -> Vec<String>) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|h| {
            let names = held(&h.name);
            vec![
                h.name.clone(),
                format!("{}/{}", h.addr, h.prefix),
                h.iface.clone(),
                match h.line_drops.filter(|n| *n > 0) {
                    Some(n) => format!("{} ({n} frames dropped: delay line full)", h.link),
                    None => h.link.to_string(),
                },
                if names.is_empty() {
                    "-".to_string()
                } else {
                    names.join(" ")
                },
            ]
        })
        .collect();
    render::table(&["HOST", "ADDRESS", "INTERFACE", "LINK", "SOCKETS"], &rows)
}

/// `link HOST delay DUR [jitter DUR] [loss PCT] [rate RATE]`,
/// `link HOST down|up|clear`
pub async fn link(s: &mut Session, mut a: Args) -> CmdResult {
    let (name, span) = a.word("a host name")?;
    let old = s
        .hosts()
        .link(&name)
        .ok_or_else(|| CmdError::at(span, format!("no host named '{name}'")))?;
    let mut link = old.clone();
    if a.len() == 0 {
        return Err(CmdError::at(
            a.end(),
            "missing a setting: delay DUR, jitter DUR, loss PCT, rate RATE, down, up or clear",
        ));
    }
    while a.len() > 0 {
        let (kw, _) = a.choice(
            "a setting",
            &["delay", "jitter", "loss", "rate", "down", "up", "clear"],
        )?;
        match kw {
            "down" => link.down = true,
            "up" => link.down = false,
            "clear" => {
                link = Link {
                    down: link.down,
                    ..Link::default()
                }
            }
            "delay" | "jitter" => {
                let t = a.token("a duration like 50ms")?;
                let d = duration_of(&t)?;
                if d > Duration::from_secs(60) {
                    return Err(CmdError::at(t.span, "at most 60s"));
                }
                let d = (!d.is_zero()).then_some(d);
                if kw == "delay" {
                    // No delay, no jitter around it.
                    if d.is_none() {
                        link.jitter = None;
                    }
                    link.delay = d;
                } else {
                    link.jitter = d;
                }
            }
            "loss" => {
                let t = a.token("a percentage like 10%")?;
                let w = t.word().unwrap_or("");
                let pct: f64 = w
                    .trim_end_matches('%')
                    .parse()
                    .ok()
                    .filter(|p: &f64| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        CmdError::at(t.span, format!("expected a loss like 10%, found '{w}'"))
                    })?;
                link.loss = (pct > 0.0).then_some(pct);
            }
            _ => {
                let t = a.token("a rate like 1mbit")?;
                let w = t.word().unwrap_or("").to_ascii_lowercase();
                let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                let unit = &w[digits.len()..];
                let ok = !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && digits.len() <= 9
                    && ["bit", "kbit", "mbit", "gbit", "bps", "kbps", "mbps"].contains(&unit);
                if !ok {
                    return Err(CmdError::at(
                        t.span,
                        format!("expected a rate like 1mbit, 500kbit or 100kbps, found '{w}'"),
                    ));
                }
                link.rate = Some(w);
            }
        }
    }
    if link.jitter.is_some() && link.delay.is_none() {
        return Err(CmdError::at(span, "jitter needs a delay"));
    }
    let info = s
        .hosts()
        .set_link(&name, link)
        .map_err(|e| host_error(e).or_at(span))?;
    s.say(format!("{name}: link {}", info.link));
    Ok(())
}

/// What `on HOST COMMAND…` runs: the host's place, the rest of the line,
/// and where that rest starts in the line (to move error carets back).
///
/// # Errors
/// No such host, no command, or `on` inside `on`.
pub fn enter(s: &Session, a: &mut Args) -> CmdResult<(Arc<Place>, String, usize)> {
    let (name, span) = a.word("a host name")?;
    let found = s.hosts().place(&name);
    let place = found.ok_or_else(|| {
        let e = CmdError::at(span, format!("no host named '{name}'"));
        if s.hosts().is_empty() {
            e.hint("there are no hosts yet: `host add teacher` makes one")
        } else {
            e.hint("`hosts` lists them")
        }
    })?;
    let first = a
        .peek()
        .map(|t| t.span.start)
        .ok_or_else(|| CmdError::at(a.end(), "missing a command to run on the host"))?;
    if a.peek_word() == Some("on") {
        return Err(CmdError::at(
            a.end(),
            "`on` takes one host; a command runs on one host at a time",
        ));
    }
    let rest = a.rest_text().unwrap_or("").to_string();
    a.rest();
    Ok((place, rest, first))
}

/// Moves an error's caret from the rest of the line back into the line.
pub fn shift(mut e: CmdError, offset: usize) -> CmdError {
    if let Some(sp) = e.span {
        e.span = Some(Span {
            start: sp.start + offset,
            end: sp.end + offset,
        });
    }
    e
}

/// `join NAME GROUP [IFADDR]`, `leave NAME GROUP [IFADDR]`
pub async fn membership(s: &mut Session, mut a: Args, join: bool) -> CmdResult {
    let name = super::common::socket_arg(s, &mut a)?;
    let ip = |a: &mut Args, what: &str| -> CmdResult<Ipv4Addr> {
        let (w, span) = a.word(what)?;
        w.parse()
            .map_err(|_| CmdError::at(span, format!("expected {what}, found '{w}'")))
    };
    let gspan = a.peek().map(|t| t.span);
    let group = ip(&mut a, "a multicast group like 224.1.1.1")?;
    if !group.is_multicast() {
        return Err(CmdError::at(
            gspan.unwrap_or(a.end()),
            format!("{group} is not a multicast group (224.0.0.0 to 239.255.255.255)"),
        ));
    }
    let iface = match a.len() {
        0 => None,
        _ => Some(ip(&mut a, "the address of the interface to join on")?),
    };
    a.done()?;
    s.lab.membership(&name, group, iface, join)?;
    let (verb, call) = if join {
        ("joined", "IP_ADD_MEMBERSHIP")
    } else {
        ("left", "IP_DROP_MEMBERSHIP")
    };
    s.say(format!("{name}: {verb} {group} ({call})"));
    Ok(())
}
