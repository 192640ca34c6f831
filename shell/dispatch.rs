//! Running one line: cut it into tokens, look its command up in a table,
//! run the handler, and let what it made cross the wire settle (trace).

use std::future::Future;
use std::pin::Pin;

use crate::args::{Args, CmdError, CmdResult, Exit};
use crate::parse::{self, Span};
use crate::session::Session;

/// A command's future.
pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = CmdResult> + 'a>>;
/// A command's handler.
pub type Handler = for<'a> fn(&'a mut Session, Args) -> BoxFuture<'a>;

/// One command of the shell.
pub struct Command {
    /// What the user types.
    pub name: &'static str,
    /// Other names for it.
    pub aliases: &'static [&'static str],
    /// Its forms, one per line.
    pub usage: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// More on how to use it.
    pub help: &'static str,
    /// Runs it.
    pub run: Handler,
}

/// The command of `table` called `name` (or one of its aliases).
pub fn find(table: &'static [Command], name: &str) -> Option<&'static Command> {
    table
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// The name in `table` nearest to a mistyped one, if any is near.
pub fn nearest(table: &'static [Command], name: &str) -> Option<&'static str> {
    table
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
        .map(|n| (strsim::damerau_levenshtein(name, n), n))
        .filter(|(d, n)| *d <= 2 && *d < n.len())
        .min()
        .map(|(_, n)| n)
}

/// Parses and runs one line with the commands of `table`.
pub async fn execute(s: &mut Session, table: &'static [Command], line: &str) -> CmdResult {
    let toks = parse::tokenize(line).map_err(|e| CmdError::at(e.span, e.message))?;
    let mut toks = toks.into_iter();
    let Some(first) = toks.next() else {
        return Ok(());
    };
    let Some(name) = first.word() else {
        return Err(CmdError::at(first.span, "expected a command name"));
    };
    let Some(cmd) = find(table, name) else {
        let e = CmdError::at(first.span, format!("unknown command '{name}'"));
        return Err(match nearest(table, name) {
            Some(n) => CmdError {
                message: format!("unknown command '{name}'; did you mean '{n}'?"),
                ..e
            },
            None => e.hint(crate::catalogue::text("help-lists", "  ")),
        });
    };
    let end = line.trim_end().len();
    let args = Args::new(line, toks.collect(), Span { start: end, end });
    let result = (cmd.run)(s, args).await;
    // What the command made cross the wire (trace on) belongs to it.
    s.lab.trace_settle().await;
    result.map_err(|e| with_usage(e, cmd.usage))
}

/// A "missing …" usage error without a hint gets the command's usage as
/// one.
fn with_usage(mut e: CmdError, usage: &str) -> CmdError {
    if e.exit == Exit::Usage && e.hint.is_none() && e.message.starts_with("missing") {
        e.hint = Some(format!("usage: {}", usage.replace('\n', " | ")));
    }
    e
}
