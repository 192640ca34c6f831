//! Helpers that several groups of handlers share: a socket-name argument,
//! a time limit, a DATA argument, a connect target.

use std::future::Future;
use std::time::Duration;

use crate::args::{port_of, resolve, Args, CmdError, CmdResult, Exit};
use crate::parse::Token;
use crate::session::Session;

/// Takes a socket name and checks that it exists (with a suggestion when
/// it does not).
pub fn socket_arg(s: &Session, a: &mut Args) -> CmdResult<String> {
    let (name, span) = a.word("a socket name")?;
    if !s.lab.exists(&name) {
        let names = s.lab.names();
        let near = names
            .iter()
            .map(|n| (strsim::levenshtein(&name, n), n))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, n)| n.clone());
        let mut e = CmdError::at(span, format!("no socket named '{name}'"));
        e = match near {
            Some(n) => e.hint(crate::catalogue::fill(
                "no-socket-near",
                crate::render::HINT_INDENT,
                &[("name", &n)],
            )),
            None if names.is_empty() => e.hint(crate::catalogue::text(
                "no-sockets-yet",
                crate::render::HINT_INDENT,
            )),
            None => e.hint(format!("sockets: {}", names.join(", "))),
        };
        return Err(e);
    }
    Ok(name)
}

/// Runs `fut` under a time limit (the command's own, else the session's).
pub async fn within<T>(
    limit: Option<Duration>,
    what: String,
    fut: impl Future<Output = CmdResult<T>>,
) -> CmdResult<T> {
    match limit {
        None => fut.await,
        Some(t) => match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => Err(CmdError::new(
                Exit::TempFail,
                format!("{what}: gave up after {}", show_duration(t)),
            )),
        },
    }
}

/// A duration as a person writes it: `2s`, `250ms`.
pub fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The largest `fill:SIZE` a DATA argument held whole in memory may be.
pub const FILL_WHOLE: u64 = 64 << 20;
/// The largest `fill:SIZE` at all (`send` on a byte stream writes it from
/// one small buffer, again and again).
pub const FILL_MAX: u64 = 16 << 30;

/// The bytes of a DATA argument: a word, a quoted string, `hex:...`, or
/// `fill:SIZE` (SIZE bytes of `x`, for sizes too long to type; at most
/// [`FILL_WHOLE`] here, since they are held whole).
pub fn data_of(t: &Token) -> CmdResult<Vec<u8>> {
    if let Some(n) = fill_of(t)? {
        if n > FILL_WHOLE {
            return Err(CmdError::at(
                t.span,
                "fill: at most 64M bytes here (send on a stream takes up to 16G)",
            ));
        }
        return Ok(vec![b'x'; n as usize]);
    }
    Ok(t.bytes())
}

/// The SIZE of a `fill:SIZE` DATA argument (at most [`FILL_MAX`]); `None`
/// for any other DATA.
pub fn fill_of(t: &Token) -> CmdResult<Option<u64>> {
    let Some(size) = t.word().and_then(|w| w.strip_prefix("fill:")) else {
        return Ok(None);
    };
    let n = crate::parse::size(size).map_err(|m| CmdError::at(t.span, m))?;
    if n > FILL_MAX {
        return Err(CmdError::at(t.span, "fill: at most 16G bytes"));
    }
    Ok(Some(n))
}

/// `HOST PORT`, or the name of a socket of this shell with a port.
pub async fn target(s: &Session, a: &mut Args) -> CmdResult<std::net::SocketAddr> {
    if a.len() == 1 {
        if let Some(w) = a.peek_word() {
            if s.lab.exists(w) {
                let (w, span) = a.word("a listener")?;
                return s
                    .lab
                    .connect_addr_of(&w)
                    .map_err(|e| CmdError::from(e).or_at(span));
            }
            if w.parse::<u16>().is_err() {
                let (w, span) = a.word("a host")?;
                return Err(CmdError::at(
                    span,
                    format!("no socket named '{w}', and a host needs a PORT after it"),
                ));
            }
        }
    }
    let host = a.token("a host (or a listener's name)")?;
    let pt = a.token("a port")?;
    let port = port_of(&pt)?;
    resolve(&host, port).await
}
