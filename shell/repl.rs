//! The interactive shell on a terminal: rustyline with history,
//! completion and hints; events print above the line being typed.

use std::borrow::Cow;
use std::path::PathBuf;

use anyhow::Context as _;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Context, Editor, Helper, Validator};
use socklab_net::{Lab, SockOpt};
use tokio::runtime::Runtime;
use tokio::signal::unix::Signal;

use crate::args::{error_text, CmdError, Exit, Fatal};
use crate::commands::{self, COMMANDS, KEYWORDS};
use crate::driver::{self, Opened, PROMPT};
use crate::out::Out;
use crate::render;
use crate::session::Session;

/// Completion, hints and highlighting for the line being typed.
#[derive(Helper, Validator)]
struct ShellHelper {
    lab: Lab,
    files: FilenameCompleter,
    history: HistoryHinter,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        // After the last whitespace character, which may be more than one
        // byte (a no-break space, an ideographic space).
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        let prior: Vec<&str> = before[..start].split_whitespace().collect();
        let pairs = |items: Vec<String>| -> Vec<Pair> {
            items
                .into_iter()
                .filter(|c| c.starts_with(word))
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: format!("{c} "),
                })
                .collect()
        };
        let candidates = match prior.as_slice() {
            [] => {
                let names = COMMANDS
                    .iter()
                    .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
                    .map(str::to_string)
                    .collect();
                pairs(names)
            }
            [cmd, _] if matches!(*cmd, "set" | "get" | "setsockopt" | "getsockopt") => {
                pairs(SockOpt::ALL.iter().map(|o| o.name().to_string()).collect())
            }
            [cmd] if matches!(*cmd, "help" | "?") => {
                pairs(COMMANDS.iter().map(|c| c.name.to_string()).collect())
            }
            // The classroom: host names, and after `on HOST` a command.
            [cmd] if matches!(*cmd, "on" | "link") => pairs(host_names()),
            ["host", "del"] => pairs(host_names()),
            ["host"] => pairs(["add", "del", "lan"].map(String::from).to_vec()),
            ["on", _] => pairs(COMMANDS.iter().map(|c| c.name.to_string()).collect()),
            _ if word.starts_with(['/', '.', '~']) => return self.files.complete(line, pos, ctx),
            _ => {
                let mut items = self.lab.names();
                items.extend(KEYWORDS.iter().map(|k| k.to_string()));
                let found = pairs(items);
                if found.is_empty() {
                    return self.files.complete(line, pos, ctx);
                }
                found
            }
        };
        Ok((start, candidates))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        if pos < line.len() {
            return None;
        }
        // `listen ` shows the rest of its usage.
        if let Some(name) = line.strip_suffix(' ') {
            if !name.contains(' ') {
                if let Some(c) = commands::find(name) {
                    let first = c.usage.lines().next().unwrap_or("");
                    return first.split_once(' ').map(|(_, rest)| rest.to_string());
                }
            }
        }
        self.history.hint(line, pos, ctx)
    }
}

impl Highlighter for ShellHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

/// The lab's hosts, for completion.
fn host_names() -> Vec<String> {
    socklab_net::netns::places()
        .iter()
        .map(|p| p.host.to_string())
        .collect()
}

/// Where history is kept: `$SOCKLAB_HISTORY`, else the user's state (or
/// data) directory.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SOCKLAB_HISTORY") {
        return Some(PathBuf::from(p));
    }
    let dir = dirs::state_dir().or_else(dirs::data_dir)?.join("socklab");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

/// Runs the REPL until `quit` or Ctrl-D; returns the exit status.
pub fn run(rt: &Runtime) -> i32 {
    let mut rl = match editor() {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Fatal::status_of(&e);
        }
    };
    let out = match rl.create_external_printer() {
        Ok(p) => Out::terminal(Box::new(p)),
        Err(_) => Out::plain(),
    };
    let Opened {
        mut session,
        mut reports,
        mut interrupts,
    } = match driver::open(rt, out, None) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Fatal::status_of(&e);
        }
    };
    rl.set_helper(Some(ShellHelper {
        lab: session.lab.clone(),
        files: FilenameCompleter::new(),
        history: HistoryHinter::new(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    // Events and job lines print as they happen, above the line being
    // typed (job lines with their time since the job started).
    let printer = session.printer.clone();
    rt.spawn(async move {
        while let Some(r) = reports.recv().await {
            printer.print(&r);
        }
    });
    session.say(format!(
        "socklab {}: a socket laboratory. `help` lists the commands; Tab completes; Ctrl-D quits.",
        env!("CARGO_PKG_VERSION")
    ));
    let ended = read_eval_print(rt, &mut rl, &mut session, &mut interrupts);
    let closed = driver::close(rt, &session);
    if ended == Ended::Eof {
        session.say(render::bye(closed));
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    match ended {
        Ended::Quit | Ended::Eof => 0,
        Ended::Unreadable => Exit::Io as i32,
    }
}

/// How a REPL session ended.
#[derive(PartialEq, Eq)]
enum Ended {
    /// `quit` (which said bye itself).
    Quit,
    /// Ctrl-D.
    Eof,
    /// The terminal could not be read.
    Unreadable,
}

/// The line editor, with history, completion and hints.
fn editor() -> anyhow::Result<Editor<ShellHelper, DefaultHistory>> {
    let config = Config::builder()
        .auto_add_history(true)
        .completion_type(CompletionType::List)
        .max_history_size(10_000)
        .map(|b| b.build())
        .unwrap_or_default();
    Editor::with_config(config).context(Fatal::new(Exit::Io, "cannot start the line editor"))
}

/// Reads and runs lines until the session ends.
fn read_eval_print(
    rt: &Runtime,
    rl: &mut Editor<ShellHelper, DefaultHistory>,
    session: &mut Session,
    interrupts: &mut Signal,
) -> Ended {
    loop {
        match rl.readline(PROMPT) {
            Ok(line) => {
                eval_print(rt, session, interrupts, &line);
                if session.quit {
                    return Ended::Quit;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return Ended::Eof,
            Err(e) => {
                eprintln!("error: cannot read the terminal: {e}");
                return Ended::Unreadable;
            }
        }
    }
}

/// Runs one typed line; Ctrl-C while it runs interrupts it (at the
/// prompt, rustyline reads Ctrl-C as a key).
fn eval_print(rt: &Runtime, session: &mut Session, interrupts: &mut Signal, line: &str) {
    let line = session.expand(line);
    let result = rt.block_on(async {
        tokio::select! {
            r = commands::execute(session, &line) => r,
            _ = interrupts.recv() => Err(CmdError::new(Exit::Interrupted, "interrupted")),
        }
    });
    match result {
        // The terminal echoed ^C without a line break.
        Err(e) if e.exit == Exit::Interrupted => session.say(format!("\nerror: {}", e.message)),
        Err(e) => session.say(error_text("", &line, &e, session.tmp())),
        Ok(()) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::DefaultHistory;

    /// Regression: Tab after a multi-byte space (U+00A0, U+3000) sliced the
    /// line inside the character and panicked the REPL.
    #[test]
    fn completion_after_multibyte_spaces_does_not_panic() {
        let (lab, _rx) = Lab::new(8);
        let helper = ShellHelper {
            lab,
            files: FilenameCompleter::new(),
            history: HistoryHinter::new(),
        };
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        for line in ["send\u{a0}s", "send\u{3000}", "\u{3000}lis", "lis"] {
            let (start, _) = helper.complete(line, line.len(), &ctx).unwrap();
            assert!(line.is_char_boundary(start), "{line:?}");
        }
        let (start, found) = helper.complete("lis", 3, &ctx).unwrap();
        assert_eq!((start, found[0].replacement.as_str()), (0, "listen "));
    }
}
