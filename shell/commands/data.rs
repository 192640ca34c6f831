//! Data over sockets: `send`, `recv`, `expect`, `frame`, and UDP's
//! `sendto`/`recvfrom`.

use socklab_net::{Framing, ReadOutcome};

use super::common::{data_of, socket_arg, target, within};
use crate::args::{number_of, Args, CmdError, CmdResult, Exit};
use crate::parse::TokenKind;
use crate::render;
use crate::session::Session;

/// `send NAME DATA [timeout DUR]`
pub async fn send(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    let data = a.token("the data to send")?;
    a.done()?;
    let bytes = data_of(&data)?;
    let bytes = match s.lab.framing(&name) {
        Ok(f) if f != Framing::Raw => s
            .lab
            .frame(&name, &bytes)
            .map_err(|e| CmdError::from(e).or_at(data.span))?,
        _ => bytes,
    };
    let lab = s.lab.clone();
    let sent = || s.lab.info(&name).map_or(0, |i| i.bytes_out);
    let before = sent();
    let n = within(limit, format!("send {name}"), async {
        Ok(lab.send(&name, &bytes).await?)
    })
    .await
    .map_err(|e| {
        if e.exit != Exit::TempFail {
            return e;
        }
        // What really went before the wait gave up (the lecture's lesson:
        // report the bytes really sent).
        let went = sent().saturating_sub(before);
        let total = bytes.len();
        CmdError {
            message: format!("{}: {went} of {total} bytes were sent", e.message),
            ..e
        }
        .hint("the peer is not reading: its receive buffer and our send buffer are full, so the rest waits (sendall blocks)")
    })?;
    s.say(format!(
        "{name} -> {}",
        render::payload(&bytes, n, s.format())
    ));
    Ok(())
}

/// `recv NAME [MAX] [timeout DUR]`
pub async fn recv(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    let max = match a.peek() {
        Some(_) => {
            let t = a.token("a size")?;
            number_of(&t, "a size", 1..=(16 << 20))? as usize
        }
        None => 1024,
    };
    a.done()?;
    let lab = s.lab.clone();
    let got = within(limit, format!("recv {name}"), async {
        Ok(lab.recv(&name, max).await?)
    })
    .await?;
    match got {
        ReadOutcome::Data(d) => s.say(format!(
            "{name} <- recv({max}): {}",
            render::payload(&d, d.len(), s.format())
        )),
        ReadOutcome::Eof => s.say(format!(
            "{name} <- recv({max}): 0 bytes: the peer closed its side (EOF)"
        )),
    }
    Ok(())
}

/// Finds a match in received bytes; returns where the match ends.
type Matcher = Box<dyn FnMut(&[u8]) -> Option<usize> + Send>;

/// `expect NAME TEXT|/REGEX/ [timeout DUR]`
pub async fn expect(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    let pat = a.token("the text or /regex/ to wait for")?;
    a.done()?;
    let (shown, matcher): (String, Matcher) = match &pat.kind {
        TokenKind::Word(w) if w.len() >= 2 && w.starts_with('/') && w.ends_with('/') => {
            let re = regex::bytes::Regex::new(&w[1..w.len() - 1]).map_err(|e| {
                // The regex crate explains on several lines; the last says what is wrong.
                let why = e.to_string();
                let why = why
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .to_string();
                CmdError::at(pat.span, format!("bad regular expression: {why}"))
            })?;
            (
                w.clone(),
                Box::new(move |b: &[u8]| re.find(b).map(|m| m.end())),
            )
        }
        _ => {
            let needle = pat.bytes();
            if needle.is_empty() {
                return Err(CmdError::at(pat.span, "expect needs something to wait for"));
            }
            (
                render::quote(&needle, 80),
                Box::new(move |b: &[u8]| {
                    b.windows(needle.len())
                        .position(|w| w == needle.as_slice())
                        .map(|i| i + needle.len())
                }),
            )
        }
    };
    let lab = s.lab.clone();
    let what = format!("expect {name} {shown}");
    let got = within(limit, what.clone(), async {
        lab.expect(&name, matcher)
            .await
            .map_err(|e| CmdError::new(Exit::Data, e.to_string()))
    })
    .await
    .map_err(|mut e| {
        if e.exit == Exit::TempFail {
            e.exit = Exit::Data;
            let seen = s.lab.unmatched(&name, 200).unwrap_or_default();
            e = e.hint(if seen.is_empty() {
                "nothing arrived since the last match".to_string()
            } else {
                format!("arrived since the last match: {}", render::quote(&seen, 80))
            });
        }
        e
    })?;
    s.say(format!(
        "{name}: matched {shown} ({} taken)",
        render::payload(&[], got.len(), s.format())
    ));
    Ok(())
}

/// `frame NAME raw|line|len`
pub async fn frame(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let (f, _) = a.choice("a framing", &Framing::NAMES)?;
    a.done()?;
    let framing: Framing = f
        .parse()
        .map_err(|_| CmdError::usage(format!("unknown framing '{f}'")))?;
    s.lab.set_framing(&name, framing)?;
    s.say(match framing {
        Framing::Raw => format!("{name}: raw: each read shows as it comes; send writes the bytes as given"),
        Framing::Line { max } => {
            format!("{name}: line: one message per line (at most {max} bytes); send adds \"\\n\"")
        }
        Framing::Len { max } => format!(
            "{name}: len: a 4-byte length, then the message (at most {max} bytes); send adds the length"
        ),
    });
    Ok(())
}

/// `sendto NAME HOST PORT DATA`, `sendto NAME TARGET DATA`
pub async fn sendto(s: &mut Session, mut a: Args) -> CmdResult {
    let name = socket_arg(s, &mut a)?;
    let data = a.take_last("the data to send")?;
    let to = target(s, &mut a).await?;
    a.done()?;
    let bytes = data_of(&data)?;
    let lab = s.lab.clone();
    let n = within(s.wait_limit, format!("sendto {name}"), async {
        Ok(lab.sendto(&name, to, &bytes).await?)
    })
    .await
    .map_err(|e| e.os_at(data.span))?;
    s.say(format!(
        "{name} -> {}: {}",
        render::addr(&to),
        render::payload(&bytes, n, s.format())
    ));
    Ok(())
}

/// `recvfrom NAME [MAX] [timeout DUR]`
pub async fn recvfrom(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    let max = match a.peek() {
        Some(_) => {
            let t = a.token("a size")?;
            number_of(&t, "a size", 1..=65535)? as usize
        }
        None => 65535,
    };
    a.done()?;
    let lab = s.lab.clone();
    let d = within(limit, format!("recvfrom {name}"), async {
        Ok(lab.recvfrom(&name, max).await?)
    })
    .await?;
    s.say(format!(
        "{name} <- recvfrom({max}) from {}: {}",
        render::addr(&d.from),
        render::payload(&d.data, d.data.len(), s.format())
    ));
    if d.size > d.data.len() {
        s.say(format!(
            "   the datagram had {} bytes; {} did not fit and are lost (a datagram is read whole, once)",
            d.size,
            d.size - d.data.len()
        ));
    }
    Ok(())
}
