//! Relays with faults and the chat broker: `relay`, `fault`, `chat`.

use socklab_net::Fault;

use crate::args::{duration_of, host_port, port_of, resolve, Args, CmdError, CmdResult};
use crate::commands::common::socket_arg;
use crate::parse;
use crate::render;
use crate::session::Session;

/// `relay [HOST] PORT to HOST PORT [as NAME]` (or `to LISTENER`).
pub async fn relay(s: &mut Session, mut a: Args) -> CmdResult {
    let name = a.as_name()?;
    let Some((to_span, up)) = a.split_off("to") else {
        return Err(CmdError::at(
            a.end(),
            "a relay needs `to HOST PORT`: where it relays its clients",
        ));
    };
    let upstream = match up.as_slice() {
        [l] if l.word().is_some_and(|w| s.lab.exists(w)) => {
            let w = l.word().unwrap_or_default();
            s.lab
                .connect_addr_of(w)
                .map_err(|e| CmdError::from(e).or_at(l.span))?
        }
        [l] => {
            return Err(CmdError::at(
                l.span,
                format!(
                    "no socket named '{}': after `to` comes HOST PORT, or the name of a listener of this shell",
                    String::from_utf8_lossy(&l.bytes())
                ),
            ))
        }
        [h, p] => resolve(h, port_of(p)?).await?,
        [_, _, extra, ..] => {
            return Err(CmdError::at(extra.span, "unexpected argument").hint(
                "after `to` comes HOST PORT (or a listener's name), then `as NAME` if you like",
            ))
        }
        _ => {
            return Err(CmdError::at(
                to_span,
                "`to` needs HOST PORT after it (or the name of a listener of this shell)",
            ))
        }
    };
    let (addr, pt) = host_port(&mut a).await?;
    a.done()?;
    let info = s
        .lab
        .relay(addr, upstream, name.as_deref())
        .map_err(|e| CmdError::from(e).os_at(pt.span))?;
    let local = info.local.unwrap_or(addr);
    let n = &info.name;
    s.say(format!(
        "{n}: relaying {} -> {}; each client gets a pair {n}.1, {n}.2, … (its leg and one upstream), every byte an event",
        render::addr(&local),
        render::addr(&upstream)
    ));
    Ok(())
}

/// `chat [HOST] PORT [as NAME]`
pub async fn chat(s: &mut Session, mut a: Args) -> CmdResult {
    let name = a.as_name()?;
    let (addr, pt) = host_port(&mut a).await?;
    a.done()?;
    let info = s
        .lab
        .chat(addr, name.as_deref())
        .map_err(|e| CmdError::from(e).os_at(pt.span))?;
    let local = info.local.unwrap_or(addr);
    s.say(format!(
        "{}: chat on {} (as ncat --chat): clients are <user1>, <user2>, …; each line goes to the others as `<userN> line`",
        info.name,
        render::addr(&local)
    ));
    Ok(())
}

/// `fault NAME latency DUR [jitter DUR] | bandwidth RATE | slice SIZE [DUR]
/// | limit BYTES | reset | stall | clear`
pub async fn fault(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    if s.lab.faults(&name).is_none() {
        return Err(CmdError::usage(format!(
            "{name} is not a relay: faults are set on a relay (`relay PORT to HOST PORT`) or one of its pairs"
        )));
    }
    let (what, _) = a.choice(
        "a fault",
        &[
            "latency",
            "bandwidth",
            "slice",
            "limit",
            "reset",
            "stall",
            "clear",
        ],
    )?;
    let fault = match what {
        "latency" => {
            let d = duration_of(&a.token("a delay (like 100ms)")?)?;
            let j = match a.option("jitter", "a duration (like 20ms)")? {
                Some(t) => duration_of(&t)?,
                None => std::time::Duration::ZERO,
            };
            Fault::Latency(d, j)
        }
        "bandwidth" => {
            let rate = size_arg(&mut a, "a rate in bytes per second (like 1M)")?;
            if rate == 0 {
                return Err(CmdError::usage(
                    "a bandwidth is at least 1 byte per second (`fault NAME stall` stops a relay)",
                ));
            }
            Fault::Bandwidth(rate)
        }
        "slice" => {
            let n = size_arg(&mut a, "a piece size in bytes (like 1)")?;
            if n == 0 || n > 1 << 20 {
                return Err(CmdError::usage("a slice is 1 to 1M bytes"));
            }
            let pause = match a.peek() {
                Some(_) => duration_of(&a.token("a pause")?)?,
                None => std::time::Duration::ZERO,
            };
            Fault::Slice(n as usize, pause)
        }
        "limit" => Fault::Limit(size_arg(&mut a, "a number of bytes")?),
        "stall" => Fault::Stall,
        "clear" => Fault::Clear,
        _ => {
            a.done()?;
            let n = s.lab.reset_pairs(&name).await?;
            s.say(format!(
                "{name}: reset {n} pair(s) now: SO_LINGER 0, then close, so both ends get an RST"
            ));
            return Ok(());
        }
    };
    a.done()?;
    let now = s.lab.fault(&name, &fault).await?;
    s.say(format!("{name}: {}", render::faults(&now)));
    Ok(())
}

fn size_arg(a: &mut Args, what: &str) -> CmdResult<u64> {
    let t = a.token(what)?;
    let w = t.word().unwrap_or_default();
    parse::size(w).map_err(|m| CmdError::at(t.span, m))
}
