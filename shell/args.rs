//! Walking a command's tokens: positional values, `KEYWORD VALUE` options,
//! and errors that point at the column they are about.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use socklab_net::NetError;

use crate::parse::{self, Span, Token, TokenKind};
use crate::render::{self, Tmp};

/// What kind of failure, for the exit status of a script (sysexits.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 64: the command line was wrong.
    Usage = 64,
    /// 65: data did not match (an `expect` failed).
    Data = 65,
    /// 66: the session file cannot be read.
    NoInput = 66,
    /// 69: a service was unavailable (connection refused, unreachable).
    Unavailable = 69,
    /// 71: another operating-system error.
    OsErr = 71,
    /// 74: an input/output error on a file or terminal.
    Io = 74,
    /// 75: a wait ran out of time.
    TempFail = 75,
    /// 130: interrupted by Ctrl-C.
    Interrupted = 130,
}

/// A command that failed: one line for the person, maybe a column to point
/// at, maybe one more line on what it means.
#[derive(Debug)]
pub struct CmdError {
    /// What went wrong.
    pub message: String,
    /// Where in the line (for the caret), when it is about one argument.
    pub span: Option<Span>,
    /// One line on what it means, for a learner.
    pub hint: Option<String>,
    /// The exit status a script stops with.
    pub exit: Exit,
}

impl CmdError {
    /// A usage error about the argument at `span`.
    pub fn at(span: Span, message: impl Into<String>) -> CmdError {
        CmdError {
            message: message.into(),
            span: Some(span),
            hint: None,
            exit: Exit::Usage,
        }
    }

    /// A usage error not about one argument.
    pub fn usage(message: impl Into<String>) -> CmdError {
        CmdError {
            message: message.into(),
            span: None,
            hint: None,
            exit: Exit::Usage,
        }
    }

    /// An error of a given kind.
    pub fn new(exit: Exit, message: impl Into<String>) -> CmdError {
        CmdError {
            message: message.into(),
            span: None,
            hint: None,
            exit,
        }
    }

    /// Adds the hint line.
    pub fn hint(mut self, hint: impl Into<String>) -> CmdError {
        self.hint = Some(hint.into());
        self
    }

    /// Points at `span` when the error came from the operating system (an
    /// address in use, say, is about the address argument); errors about the
    /// socket's state are not about that argument.
    pub fn os_at(self, span: Span) -> CmdError {
        if matches!(self.exit, Exit::OsErr | Exit::Unavailable) {
            self.or_at(span)
        } else {
            self
        }
    }

    /// Points at a span, unless it points somewhere already.
    pub fn or_at(mut self, span: Span) -> CmdError {
        self.span.get_or_insert(span);
        self
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<NetError> for CmdError {
    fn from(e: NetError) -> CmdError {
        let exit = match &e {
            NetError::NoSuchSocket(_)
            | NetError::NameTaken(_)
            | NetError::WrongState { .. }
            | NetError::Family { .. }
            | NetError::OffLan { .. } => Exit::Usage,
            NetError::UnixInUse { .. } => Exit::OsErr,
            NetError::Timeout { .. } => Exit::TempFail,
            NetError::Resolve { .. } | NetError::Handshake { .. } => Exit::Unavailable,
            NetError::TlsSetup { .. } => Exit::Data,
            NetError::Os { source, .. } | NetError::PartialSend { source, .. } => match source
                .raw_os_error()
            {
                Some(
                    libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH | libc::ETIMEDOUT,
                ) => Exit::Unavailable,
                _ => Exit::OsErr,
            },
        };
        CmdError {
            message: e.to_string(),
            span: None,
            hint: render::explain(&e),
            exit,
        }
    }
}

/// Result of a command.
pub type CmdResult<T = ()> = Result<T, CmdError>;

/// Formats an error for the person: the message, the line with a caret
/// under the column when there is one, and the hint.
pub fn error_text(prefix: &str, line: &str, e: &CmdError, tmp: Tmp<'_>) -> String {
    let mut s = format!("{prefix}error: {}", e.message);
    if let Some(span) = e.span {
        let (shown, span) = tmp.line(line, span);
        s.push('\n');
        s.push_str(&parse::caret(&shown, span, "  "));
    }
    if let Some(h) = &e.hint {
        s.push_str("\n  ");
        s.push_str(h);
    }
    s
}

/// Why the program cannot go on (it cannot start, or cannot read its
/// session file): what it was doing, and the exit status that says so. The
/// context of an `anyhow::Error` that leaves the program.
#[derive(Debug)]
pub struct Fatal {
    /// The exit status.
    pub exit: Exit,
    /// What failed, like "cannot read lesson.sock".
    pub doing: String,
}

impl Fatal {
    /// A failure while `doing` something, ending the program with `exit`.
    pub fn new(exit: Exit, doing: impl Into<String>) -> Fatal {
        Fatal {
            exit,
            doing: doing.into(),
        }
    }

    /// The exit status an error leaves the program with: its [`Fatal`]
    /// context's, else 1.
    pub fn status_of(e: &anyhow::Error) -> i32 {
        e.downcast_ref::<Fatal>().map_or(1, |f| f.exit as i32)
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.doing)
    }
}

/// The tokens of one command line after the command's name.
pub struct Args {
    /// The whole line the tokens came from.
    line: std::sync::Arc<str>,
    toks: Vec<Token>,
    /// The command name's span, for "missing argument" errors.
    end: Span,
}

impl Args {
    /// The tokens after the command name; `end` is where a missing argument
    /// is pointed at (just past the line).
    pub fn new(line: &str, toks: Vec<Token>, end: Span) -> Args {
        Args {
            line: std::sync::Arc::from(line),
            toks,
            end,
        }
    }

    /// Takes the last token (DATA at the end of `sendto NAME HOST PORT DATA`).
    pub fn take_last(&mut self, what: &str) -> CmdResult<Token> {
        self.toks
            .pop()
            .ok_or_else(|| CmdError::at(self.end, format!("missing {what}")))
    }

    /// How many tokens are left.
    pub fn len(&self) -> usize {
        self.toks.len()
    }

    /// The next token, if any, without taking it.
    pub fn peek(&self) -> Option<&Token> {
        self.toks.first()
    }

    /// The next token as a bare word, without taking it.
    pub fn peek_word(&self) -> Option<&str> {
        self.toks.first().and_then(Token::word)
    }

    /// Takes the next token; `what` names it in the error when missing.
    pub fn token(&mut self, what: &str) -> CmdResult<Token> {
        if self.toks.is_empty() {
            return Err(CmdError::at(self.end, format!("missing {what}")));
        }
        Ok(self.toks.remove(0))
    }

    /// Takes the next token, which must be a bare word.
    pub fn word(&mut self, what: &str) -> CmdResult<(String, Span)> {
        let t = self.token(what)?;
        match t.kind {
            TokenKind::Word(w) => Ok((w, t.span)),
            _ => Err(CmdError::at(
                t.span,
                format!("expected {what}, found a quoted string"),
            )),
        }
    }

    /// Takes the next token if it is the bare word `kw`.
    pub fn keyword(&mut self, kw: &str) -> bool {
        if self.peek_word() == Some(kw) {
            self.toks.remove(0);
            true
        } else {
            false
        }
    }

    /// Takes the next word if it is one of `choices`.
    pub fn choice(
        &mut self,
        what: &str,
        choices: &[&'static str],
    ) -> CmdResult<(&'static str, Span)> {
        let (w, span) = self.word(what)?;
        choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(&w))
            .map(|c| (*c, span))
            .ok_or_else(|| {
                CmdError::at(
                    span,
                    format!("expected {what} ({}), found '{w}'", choices.join("|")),
                )
            })
    }

    /// Takes the bare word `kw` wherever it is among the remaining tokens.
    pub fn keyword_anywhere(&mut self, kw: &str) -> bool {
        match self.toks.iter().position(|t| t.word() == Some(kw)) {
            Some(i) => {
                self.toks.remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether the word `kw` is among the tokens left, standing for
    /// itself: not the value of one of `options` (`as tls` names
    /// something tls), and not after `exec` (a program's arguments).
    pub fn has_keyword(&self, kw: &str, options: &[&str]) -> bool {
        let mut prev: Option<&str> = None;
        for t in &self.toks {
            let w = t.word();
            if w == Some("exec") {
                return false;
            }
            if w == Some(kw) && !prev.is_some_and(|p| options.contains(&p)) {
                return true;
            }
            prev = w;
        }
        false
    }

    /// The text of the line from the next token on, as typed.
    pub fn rest_text(&self) -> Option<&str> {
        let first = self.toks.first()?;
        self.line.get(first.span.start..)
    }

    /// Takes a `/REGEX/` that starts at the next token and may contain
    /// blanks: it ends at the first `/` not escaped by a backslash that is
    /// followed by a blank or the end of the line. Returns the regex's text
    /// (without the slashes) and where it is; `None`, taking nothing, when
    /// the next token is not a word starting with `/` or no such closing
    /// `/` follows.
    pub fn slashed(&mut self) -> Option<(String, Span)> {
        let first = self.toks.first()?;
        if !first.word()?.starts_with('/') {
            return None;
        }
        let start = first.span.start;
        let body = self.line.get(start..)?.trim_end_matches(['\r', '\n']);
        let bytes = body.as_bytes();
        let mut i = 1;
        let close = loop {
            match bytes.get(i)? {
                b'\\' => i += 2,
                b'/' if matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')) => break i,
                _ => i += 1,
            }
        };
        let span = Span {
            start,
            end: start + close + 1,
        };
        let text = body.get(1..close)?.to_string();
        self.toks.retain(|t| t.span.start >= span.end);
        Some((text, span))
    }

    /// Finds `kw VALUE` among the remaining tokens (bare words only), takes
    /// both, and returns the value token. `kw` at the very end without a
    /// value is an error.
    pub fn option(&mut self, kw: &str, what: &str) -> CmdResult<Option<Token>> {
        let Some(i) = self.toks.iter().position(|t| t.word() == Some(kw)) else {
            return Ok(None);
        };
        if i + 1 >= self.toks.len() {
            return Err(CmdError::at(
                self.toks[i].span,
                format!("'{kw}' needs {what} after it"),
            ));
        }
        let value = self.toks.remove(i + 1);
        self.toks.remove(i);
        Ok(Some(value))
    }

    /// `as NAME`, validated.
    pub fn as_name(&mut self) -> CmdResult<Option<String>> {
        match self.option("as", "a name")? {
            None => Ok(None),
            Some(t) => {
                let w = t
                    .word()
                    .ok_or_else(|| CmdError::at(t.span, "a name is a bare word"))?;
                parse::name(w).map_err(|m| CmdError::at(t.span, m))?;
                Ok(Some(w.to_string()))
            }
        }
    }

    /// `as TEXT` where TEXT is any word or quoted string (a remote file
    /// name: the receiver, not the shell, decides what is acceptable).
    pub fn as_name_raw(&mut self) -> CmdResult<Option<String>> {
        Ok(self
            .option("as", "a name")?
            .map(|t| String::from_utf8_lossy(&t.bytes()).into_owned()))
    }

    /// `timeout DUR`.
    pub fn timeout(&mut self) -> CmdResult<Option<Duration>> {
        match self.option("timeout", "a duration (like 2s)")? {
            None => Ok(None),
            Some(t) => Ok(Some(duration_of(&t)?)),
        }
    }

    /// Errors when tokens are left over.
    pub fn done(self) -> CmdResult<()> {
        match self.toks.first() {
            None => Ok(()),
            Some(t) => Err(CmdError::at(t.span, "unexpected argument")),
        }
    }

    /// Takes the bare word `kw` and every token after it: the keyword's
    /// span and the tokens that followed (a program's command line).
    pub fn split_off(&mut self, kw: &str) -> Option<(Span, Vec<Token>)> {
        let i = self.toks.iter().position(|t| t.word() == Some(kw))?;
        let after = self.toks.split_off(i + 1);
        let keyword = self.toks.pop()?;
        Some((keyword.span, after))
    }

    /// Where a missing argument is pointed at.
    pub fn end(&self) -> Span {
        self.end
    }

    /// Takes all remaining tokens.
    pub fn rest(&mut self) -> Vec<Token> {
        std::mem::take(&mut self.toks)
    }
}

/// A duration from a token.
pub fn duration_of(t: &Token) -> CmdResult<Duration> {
    let w = t
        .word()
        .ok_or_else(|| CmdError::at(t.span, "expected a duration like 250ms, 2s or 1m"))?;
    parse::duration(w).map_err(|m| CmdError::at(t.span, m))
}

/// A port from a token.
pub fn port_of(t: &Token) -> CmdResult<u16> {
    let w = t
        .word()
        .ok_or_else(|| CmdError::at(t.span, "expected a port number (0-65535)"))?;
    parse::port(w).map_err(|m| CmdError::at(t.span, m))
}

/// A whole number from a token, within `range`.
pub fn number_of(t: &Token, what: &str, range: std::ops::RangeInclusive<u64>) -> CmdResult<u64> {
    let w = t.word().unwrap_or("");
    let n = parse::size(w)
        .map_err(|_| CmdError::at(t.span, format!("expected {what}, found '{w}'")))?;
    if !range.contains(&n) {
        return Err(CmdError::at(
            t.span,
            format!("{what} must be {}-{}, not {n}", range.start(), range.end()),
        ));
    }
    Ok(n)
}

/// `[HOST] PORT` as the last arguments of a command (HOST defaults to
/// 127.0.0.1); returns the address and the port's token (to point at).
pub async fn host_port(a: &mut Args) -> CmdResult<(SocketAddr, Token)> {
    let (host, pt) = match a.len() {
        0 => {
            return Err(a
                .token("a port")
                .err()
                .unwrap_or_else(|| CmdError::usage("missing a port")))
        }
        1 => (None, a.token("a port")?),
        _ => (Some(a.token("a host")?), a.token("a port")?),
    };
    let port = port_of(&pt)?;
    let addr = match &host {
        Some(h) => resolve(h, port).await?,
        None => SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), port),
    };
    Ok((addr, pt))
}

/// Resolves a host token and a port to one address. Literal addresses are
/// taken as they are; names go to the system resolver, and the first IPv4
/// answer is preferred (then the first of any family), so `localhost` is
/// 127.0.0.1.
pub async fn resolve(host: &Token, port: u16) -> CmdResult<SocketAddr> {
    let w = host
        .word()
        .ok_or_else(|| CmdError::at(host.span, "expected a host"))?;
    match parse::host(w).map_err(|m| CmdError::at(host.span, m))? {
        parse::Host::Ip(ip) => Ok(SocketAddr::new(ip, port)),
        parse::Host::Name(name) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|e| {
                    CmdError::new(Exit::Unavailable, format!("cannot resolve '{name}': {e}"))
                        .or_at(host.span)
                })?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| {
                    CmdError::new(Exit::Unavailable, format!("'{name}' has no address"))
                        .or_at(host.span)
                })
        }
    }
}
