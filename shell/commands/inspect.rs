//! The three elements, inspected: `ip`, `port`, `ifconfig`, `resolve`,
//! `ping` (lecture §1-§3).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use socklab_net::inspect::{
    self, BindCheck, IpReport, Method, Network, PingReport, PortReport, ProbeOutcome,
};

use crate::args::{self, duration_of, number_of, port_of, Args, CmdError, CmdResult, Exit};
use crate::parse::Span;
use crate::session::Session;

/// `ip ADDR[/PREFIX]`
pub async fn ip(s: &mut Session, mut a: Args) -> CmdResult {
    let (w, span) = a.word("an address like 127.0.0.1 or 192.168.0.0/16")?; // classification only, never a target
    a.done()?;
    let report = inspect::analyze(&w).map_err(|e| {
        let at = e.span().map_or(span, |r| Span {
            start: span.start + r.start,
            end: span.start + r.end.max(r.start + 1),
        });
        CmdError::at(at, e.to_string())
    })?;
    s.say(render_ip(&report));
    Ok(())
}

fn render_ip(r: &IpReport) -> String {
    let mut out = format!(
        "{}: {}, {} bytes ({} bits)",
        r.canonical,
        r.version.name(),
        r.bytes.len(),
        r.bytes.len() * 8
    );
    let mut row = |k: &str, v: String| {
        let _ = write!(out, "\n  {k:<10} {v}");
    };
    if let Some(e) = &r.expanded {
        row("expanded", e.clone());
    }
    if r.bytes.len() == 4 {
        row(
            "decimal",
            r.bytes
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join("."),
        );
        row(
            "binary",
            r.bytes
                .iter()
                .map(|b| format!("{b:08b}"))
                .collect::<Vec<_>>()
                .join("."),
        );
    }
    row(
        "hex",
        r.bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    if let Some(v4) = r.mapped_v4 {
        row(
            "maps to",
            format!("{v4} (an IPv4 address written as IPv6: ::ffff:a.b.c.d)"),
        );
    }
    let block = r.block.map(|b| format!(" ({b})")).unwrap_or_default();
    row(
        "scope",
        format!("{}{block}: {}", r.scope.name(), r.scope.meaning()),
    );
    if let Some(n) = &r.network {
        network_rows(n, &mut row);
    }
    out
}

/// The rows about the network `ADDR/PREFIX` belongs to.
fn network_rows(n: &Network, row: &mut impl FnMut(&str, String)) {
    row(
        "network",
        format!("{}/{} (netmask {})", n.network, n.prefix, n.netmask),
    );
    if let Some(b) = n.broadcast {
        row("broadcast", b.to_string());
    }
    let hosts = if n.hosts == 1 {
        "1 host".to_string()
    } else {
        format!("{} hosts", n.hosts)
    };
    row(
        "hosts",
        format!("{} - {} ({hosts})", n.first_host, n.last_host),
    );
    if n.is_network_address {
        row(
            "note",
            "this is the network's own address, not a host's".to_string(),
        );
    } else if n.is_broadcast_address {
        row(
            "note",
            "this is the network's broadcast address, not a host's".to_string(),
        );
    }
}

/// `port N`
pub async fn port(s: &mut Session, mut a: Args) -> CmdResult {
    let (w, span) = a.word("a port number")?;
    a.done()?;
    let n: i64 = w.parse().map_err(|_| {
        CmdError::at(
            span,
            format!("expected a port number (0-65535), found '{w}'"),
        )
    })?;
    let r = inspect::port_info(n).map_err(|e| CmdError::at(span, e.to_string()))?;
    s.say(render_port(&r));
    Ok(())
}

fn render_port(r: &PortReport) -> String {
    let (lo, hi) = r.class.range();
    let range = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    };
    let mut out = format!(
        "port {}: {} port ({range})\n  meaning    {}",
        r.port,
        r.class.name(),
        r.class.meaning()
    );
    let names = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    let source = match r.services.source {
        inspect::ServiceSource::EtcServices => "from /etc/services",
        inspect::ServiceSource::BuiltIn => "built-in table",
    };
    let _ = write!(
        out,
        "\n  services   tcp: {}; udp: {} ({source})",
        names(&r.services.tcp),
        names(&r.services.udp)
    );
    if let (Some(e), true) = (r.ephemeral, r.port != 0) {
        let inside = if e.contains(r.port) {
            "inside it"
        } else {
            "outside it"
        };
        let _ = write!(
            out,
            "\n  ephemeral  {}-{} on this machine (ports the OS picks for clients and port 0); {} is {inside}",
            e.low, e.high, r.port
        );
    }
    let free = |b: &BindCheck| match b {
        BindCheck::Free => "free".to_string(),
        BindCheck::InUse => "in use".to_string(),
        BindCheck::NeedsPrivilege => "needs privilege".to_string(),
        BindCheck::Failed(why) => format!("cannot tell ({why})"),
    };
    let _ = write!(
        out,
        "\n  right now  tcp: {}; udp: {} (binding 127.0.0.1:{})",
        free(&r.free_tcp),
        free(&r.free_udp),
        r.port
    );
    out
}

/// `ifconfig`
pub async fn ifconfig(s: &mut Session, a: Args) -> CmdResult {
    a.done()?;
    let list = inspect::interfaces()
        .map_err(|e| CmdError::new(Exit::OsErr, format!("cannot list interfaces: {e}")))?;
    let mut out = String::new();
    for i in &list {
        let f = &i.flags;
        let flags: Vec<&str> = [
            (f.up, "up"),
            (f.running, "running"),
            (f.loopback, "loopback"),
            (f.broadcast, "broadcast"),
            (f.multicast, "multicast"),
            (f.point_to_point, "point-to-point"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        let _ = write!(out, "{}: <{}>", i.name, flags.join(","));
        if let Some(m) = i.mac {
            let mac: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
            let _ = write!(out, " ether {}", mac.join(":"));
        }
        for ad in &i.addrs {
            let fam = if ad.addr.is_ipv4() { "inet " } else { "inet6" };
            let prefix = ad.prefix.map(|p| format!("/{p}")).unwrap_or_default();
            let _ = write!(out, "\n    {fam} {}{prefix}", ad.addr);
            if let Some(b) = ad.broadcast {
                let _ = write!(out, "  broadcast {b}");
            }
        }
        out.push('\n');
    }
    out.pop();
    s.say(if out.is_empty() {
        "no interfaces".to_string()
    } else {
        out
    });
    Ok(())
}

/// `resolve HOST`
pub async fn resolve(s: &mut Session, mut a: Args) -> CmdResult {
    let (w, span) = a.word("a host name")?;
    a.done()?;
    let addrs = inspect::resolve(&w).await.map_err(|e| {
        CmdError::new(Exit::Unavailable, format!("cannot resolve '{w}': {e}")).or_at(span)
    })?;
    let list: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
    s.say(format!("{w}: {}", list.join(", ")));
    Ok(())
}

/// `ping HOST [PORT] [count N] [every DUR] [via icmp|tcp]`
pub async fn ping(s: &mut Session, mut a: Args) -> CmdResult {
    let count = match a.option("count", "a number")? {
        Some(t) => number_of(&t, "a count", 1..=1000)? as u32,
        None => 4,
    };
    let every = match a.option("every", "a duration")? {
        Some(t) => duration_of(&t)?,
        None => Duration::from_secs(1),
    };
    let method = match a.option("via", "icmp or tcp")? {
        Some(t) => match t.word() {
            Some("icmp") => Method::Icmp,
            Some("tcp") => Method::Tcp,
            _ => return Err(CmdError::at(t.span, "ping via icmp or via tcp")),
        },
        None => Method::Auto,
    };
    let host = a.token("a host")?;
    let port = match a.peek() {
        Some(_) => {
            let t = a.token("a port")?;
            Some(port_of(&t)?)
        }
        None => None,
    };
    a.done()?;
    let target = args::resolve(&host, 0).await?.ip();
    let timeout = s
        .wait_limit
        .unwrap_or(Duration::from_secs(2))
        .min(Duration::from_secs(2));
    let r = inspect::ping_with(method, target, port, count, every, timeout)
        .await
        .map_err(|e| CmdError::new(Exit::Unavailable, format!("ping {target}: {e}")))?;
    s.say(render_ping(&r));
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn render_ping(r: &PingReport) -> String {
    let mut out = format!("PING {} via {}: {}", r.target, r.method.meaning(), r.reason);
    for p in &r.probes {
        let what = match &p.outcome {
            ProbeOutcome::Reply { time } => format!("reply time={}", ms(*time)),
            ProbeOutcome::Connected { time } => format!("connected time={}", ms(*time)),
            ProbeOutcome::Refused { time } => format!(
                "refused time={} {}",
                ms(*time),
                crate::catalogue::inline("ping-refused")
            ),
            ProbeOutcome::Timeout => "no answer (timed out)".to_string(),
            ProbeOutcome::Error(e) => format!("error: {e}"),
        };
        let _ = write!(out, "\n  seq={} {what}", p.seq);
    }
    let _ = write!(
        out,
        "\n--- {} ping statistics ---\n{} sent, {} answered, {:.0}% loss",
        r.target, r.sent, r.answered, r.loss_percent
    );
    if let (Some(min), Some(avg), Some(max)) = (r.min, r.avg, r.max) {
        let _ = write!(out, "\nmin/avg/max = {}/{}/{}", ms(min), ms(avg), ms(max));
    }
    out
}
