//! Data over sockets: `send`, `recv`, `expect`, `frame`, and UDP's
//! `sendto`/`recvfrom`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socklab_net::{Framing, ReadOutcome};

use super::common::{data_of, fill_of, socket_arg, target, within};
use crate::args::{number_of, Args, CmdError, CmdResult, Exit};
use crate::render;
use crate::session::Session;

/// `send NAME DATA [timeout DUR]`
pub async fn send(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    let data = a.token("the data to send")?;
    a.done()?;
    let raw = matches!(s.lab.framing(&name), Ok(Framing::Raw));
    if let Some(n) = fill_of(&data)? {
        if raw && s.lab.is_stream(&name) {
            return send_fill(s, &name, n, limit).await;
        }
    }
    let bytes = data_of(&data)?;
    let bytes = if raw {
        bytes
    } else {
        s.lab
            .frame(&name, &bytes)
            .map_err(|e| CmdError::from(e).or_at(data.span))?
    };
    let lab = s.lab.clone();
    let before = sent_by(s, &name);
    let total = bytes.len() as u64;
    let n = within(limit, format!("send {name}"), async {
        Ok(lab.send(&name, &bytes).await?)
    })
    .await
    .map_err(|e| gave_up(s, &name, before, total, e))?;
    s.say(format!(
        "{name} -> {}",
        render::payload(&bytes, n, s.format())
    ));
    Ok(())
}

/// `send NAME fill:SIZE` on a byte stream: SIZE bytes of `x` written from
/// a small buffer (memory stays flat up to the largest fill), shown as
/// any send of them is.
async fn send_fill(s: &mut Session, name: &str, total: u64, limit: Option<Duration>) -> CmdResult {
    let lab = s.lab.clone();
    let before = sent_by(s, name);
    let n = within(limit, format!("send {name}"), async {
        Ok(lab.send_fill(name, b'x', total).await?)
    })
    .await
    .map_err(|e| gave_up(s, name, before, total, e))?;
    s.say(format!(
        "{name} -> {}",
        render::repeated(b'x', n, s.format())
    ));
    Ok(())
}

/// Bytes `name` has written so far.
fn sent_by(s: &Session, name: &str) -> u64 {
    s.lab.info(name).map_or(0, |i| i.bytes_out)
}

/// A send that ran out of time says what really went before the wait
/// gave up (the lecture's lesson: report the bytes really sent).
fn gave_up(s: &Session, name: &str, before: u64, total: u64, e: CmdError) -> CmdError {
    if e.exit != Exit::TempFail {
        return e;
    }
    let went = sent_by(s, name).saturating_sub(before);
    let e = CmdError {
        message: format!("{}: {went} of {total} bytes were sent", e.message),
        ..e
    };
    if went > BUFFERS_HOLD {
        // More went than the kernel's buffers hold: the peer reads, the
        // size needs more time than the wait gives.
        return e.hint("the peer is reading, but all of it takes longer than the wait: give the send `timeout DUR`");
    }
    e.hint(crate::catalogue::text("send-stalled", render::HINT_INDENT))
}

/// More than the send and receive buffers of a loopback connection hold
/// together (Linux's largest defaults: 4 MiB + 6 MiB).
const BUFFERS_HOLD: u64 = 16 << 20;

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
    .await
    .map_err(|e| {
        if e.exit != Exit::TempFail {
            return e;
        }
        // recv returns at the first byte: running out of time means none
        // came. Say from whom it was awaited, and what came before.
        let hint = match s.lab.info(&name) {
            Ok(i) => crate::catalogue::fill(
                "recv-nothing-from",
                render::HINT_INDENT,
                &[
                    (
                        "peer",
                        &i.peer
                            .map_or("(address unknown)".to_string(), |p| render::addr(&p)),
                    ),
                    ("name", &name),
                    (
                        "bytes",
                        &render::payload(&[], i.bytes_in as usize, s.format()),
                    ),
                ],
            ),
            Err(_) => crate::catalogue::text("recv-nothing", render::HINT_INDENT),
        };
        e.hint(hint)
    })?;
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

/// What `expect` waits for: how it is shown, the matcher, and for a regex
/// where its last match began (it may start after bytes it skips).
struct Pattern {
    shown: String,
    matcher: Matcher,
    began: Option<Arc<AtomicUsize>>,
    /// The longest match the matcher makes (a text's length; a regex has
    /// no bound): the lab then searches each read once.
    longest: Option<usize>,
}

/// `expect NAME TEXT|/REGEX/ [timeout DUR]`
pub async fn expect(s: &mut Session, mut a: Args) -> CmdResult {
    // `timeout DUR` before the name or the pattern is taken first; after
    // them it is looked for only once the /regex/ (which may contain the
    // word) is taken.
    let mut early = match a.peek_word() {
        Some("timeout") => a.timeout()?,
        _ => None,
    };
    let name = socket_arg(s, &mut a)?;
    if a.peek_word() == Some("timeout") {
        early = early.or(a.timeout()?);
    }
    let regex = a.slashed();
    let limit = early.or(a.timeout()?).or(s.wait_limit);
    let pattern = pattern_of(regex, a)?;
    let lab = s.lab.clone();
    let what = format!("expect {name} {}", pattern.shown);
    let matcher = pattern.matcher;
    let longest = pattern.longest;
    let got = within(limit, what.clone(), async {
        // What the lab says here (the stream ended before a match) is about
        // the data: 65. Running out of time is 75, as for every wait.
        lab.expect_bounded(&name, matcher, longest)
            .await
            .map_err(|e| CmdError::new(Exit::Data, e.to_string()))
    })
    .await
    .map_err(|e| {
        if e.exit != Exit::TempFail {
            return e;
        }
        let hint = what_came(s, &name);
        e.hint(hint)
    })?;
    let matched = match &pattern.began {
        Some(began) => {
            let from = began.load(Ordering::SeqCst).min(got.len());
            format!(": {}", render::quote(&got[from..], 100))
        }
        None => String::new(),
    };
    s.say(format!(
        "{name}: matched {}{matched} ({} taken)",
        pattern.shown,
        render::payload(&[], got.len(), s.format())
    ));
    Ok(())
}

/// The pattern of an `expect`: a /regex/ (already taken from the line),
/// or the text of the next token.
fn pattern_of(regex: Option<(String, crate::parse::Span)>, mut a: Args) -> CmdResult<Pattern> {
    let Some((text, span)) = regex else {
        let pat = a.token("the text or /regex/ to wait for")?;
        a.done()?;
        let needle = pat.bytes();
        if needle.is_empty() {
            return Err(CmdError::at(pat.span, "expect needs something to wait for"));
        }
        let shown = render::quote(&needle, 80);
        // memmem, not a window compared at each byte: a flood is looked
        // through at every read while the match has not come.
        let finder = memchr::memmem::Finder::new(&needle).into_owned();
        return Ok(Pattern {
            shown,
            matcher: Box::new(move |b: &[u8]| finder.find(b).map(|i| i + finder.needle().len())),
            began: None,
            longest: Some(needle.len()),
        });
    };
    a.done()?;
    let re = regex::bytes::Regex::new(&text).map_err(|e| {
        // The regex crate explains on several lines; the last says what is wrong.
        let why = e.to_string();
        let why = why
            .lines()
            .last()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_string();
        CmdError::at(span, format!("bad regular expression: {why}"))
    })?;
    let began = Arc::new(AtomicUsize::new(0));
    let at = began.clone();
    Ok(Pattern {
        shown: format!("/{text}/"),
        matcher: Box::new(move |b: &[u8]| {
            re.find(b).map(|m| {
                at.store(m.start(), Ordering::SeqCst);
                m.end()
            })
        }),
        began: Some(began),
        longest: None,
    })
}

/// After an `expect` ran out of time: what did arrive since the last match.
fn what_came(s: &Session, name: &str) -> String {
    let seen = s.lab.unmatched(name, 1 << 20).unwrap_or_default();
    if seen.is_empty() {
        return format!("nothing arrived on {name} since the last match");
    }
    let from = seen.len().saturating_sub(80);
    format!(
        "{} arrived on {name} since the last match, none of it a match; {}: {}",
        render::payload(&[], seen.len(), s.format()),
        if from == 0 {
            "all of it"
        } else {
            "the last 80"
        },
        render::quote(&seen[from..], 80)
    )
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
    if s.lab.is_unix(&name) || a.peek().is_some_and(super::unix::is_unix_token) {
        let t = a.token("a UNIX address")?;
        a.done()?;
        return super::unix::sendto(s, name, t, data).await;
    }
    let to = target(s, &mut a).await?;
    a.done()?;
    let bytes = data_of(&data)?;
    let unbound = super::sockets::is_unbound(s, &name);
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
    if let (true, Ok(Some(local))) = (unbound, s.lab.info(&name).map(|i| i.local)) {
        s.say(super::sockets::note(
            "note-sendto-bound",
            &[("name", &name), ("addr", &render::addr(&local))],
        ));
        if local.ip().is_unspecified() {
            s.say(super::sockets::note(
                "note-every-interface-send",
                &[("addr", &local.ip().to_string())],
            ));
        }
    }
    Ok(())
}

/// `recvfrom NAME [MAX] [timeout DUR]`
pub async fn recvfrom(s: &mut Session, mut a: Args) -> CmdResult {
    let limit = a.timeout()?.or(s.wait_limit);
    let name = socket_arg(s, &mut a)?;
    if s.lab.is_unix(&name) {
        return super::unix::recvfrom(s, a, name, limit).await;
    }
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
        s.say(super::sockets::note(
            "udp-truncated",
            &[
                ("size", &d.size.to_string()),
                ("lost", &(d.size - d.data.len()).to_string()),
            ],
        ));
    }
    Ok(())
}
