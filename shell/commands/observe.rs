//! Watching what the kernel does: `trace` (segments or TCP states after
//! each command) and `info` (TCP_INFO).

use socklab_net::{TraceMode, TraceWish};

use super::common::socket_arg;
use crate::args::{Args, CmdResult};
use crate::render;
use crate::session::Session;

/// `trace on [capture|observe]`, `trace off`
pub async fn trace(s: &mut Session, mut a: Args) -> CmdResult {
    let (on, _) = a.choice("on or off", &["on", "off"])?;
    if on == "off" {
        a.done()?;
        s.lab.trace_off();
        s.say("trace: off");
        return Ok(());
    }
    let wish = match a.peek() {
        Some(_) => match a.choice("a mode", &["capture", "observe"])?.0 {
            "capture" => TraceWish::Capture,
            _ => TraceWish::Observe,
        },
        // Tests pin the mode so a transcript does not depend on privilege.
        None => match std::env::var("SOCKLAB_TRACE").as_deref() {
            Ok("capture") => TraceWish::Capture,
            Ok("observe") => TraceWish::Observe,
            _ => TraceWish::Auto,
        },
    };
    a.done()?;
    let (mode, why) = s.lab.trace_on(wish)?;
    match (mode, why) {
        // Without root: the LAN's bridge alone (see hosts/rootless.rs).
        (TraceMode::Capture, Some(why)) => s.say(format!(
            "trace: capturing on the lab LAN's bridge only, this shell's ports; segments show after each command (not on the loopback interface: {why})"
        )),
        (TraceMode::Capture, None) if socklab_net::netns::lan_place().is_some() => s.say(
            "trace: capturing on the loopback interface (lo) and on the lab LAN's bridge, this shell's ports only; segments show after each command",
        ),
        (TraceMode::Capture, None) => s.say(
            "trace: capturing on the loopback interface (lo), this shell's ports only; segments show after each command",
        ),
        (TraceMode::Observe, why) => {
            if let Some(why) = why {
                s.say(format!("trace: cannot capture ({why}); observing instead"));
            }
            s.say(
                "trace: observing: each connection's kernel state (TCP_INFO, /proc/net/tcp) after each command, \
                 and the states TCP passes through between. An observation, not a capture: no segments are seen.",
            );
        }
    }
    Ok(())
}

/// `info NAME`
pub async fn info(s: &mut Session, mut a: Args) -> CmdResult {
    let at = a.end();
    let name = socket_arg(s, &mut a)?;
    a.done()?;
    if let Some(faults) = s.lab.faults(&name) {
        // A relay or a pair: where it leads and the faults in force.
        let i = s.lab.info(&name)?;
        let state = i.state.split("; faults:").next().unwrap_or_default();
        s.say(format!("{name}: {state}"));
        s.say(format!("{name}: {}", render::faults(&faults)));
        return Ok(());
    }
    if let Ok(i) = s.lab.info(&name) {
        if i.unix.is_some() {
            return super::unix::info(s, &name, &i, at);
        }
    }
    let info = s.lab.tcp_info(&name)?;
    let rows: Vec<Vec<String>> = info
        .summary()
        .into_iter()
        .map(|f| {
            vec![
                f.name.to_string(),
                render::info_value(&f.value),
                f.meaning.to_string(),
            ]
        })
        .collect();
    s.say(format!("{name}: TCP_INFO, as the kernel reports it now"));
    s.say(render::table(&["FIELD", "VALUE", "MEANING"], &rows));
    super::tls::facts(s, &name);
    Ok(())
}
