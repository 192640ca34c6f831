//! The interactive shell on a terminal: rustyline with history,
//! completion and hints; events print above the line being typed.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Context, Editor, Helper, Validator};
use socklab_net::{Lab, SockOpt};
use tokio::runtime::Runtime;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::args::{CmdError, Exit};
use crate::commands::{self, COMMANDS, KEYWORDS};
use crate::render;
use crate::script::PROMPT;
use crate::session::{error_text, Out, Session};

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

/// The stream of Ctrl-C (SIGINT) signals, from now on.
pub fn interrupts(rt: &Runtime) -> std::io::Result<Signal> {
    let _guard = rt.enter();
    signal(SignalKind::interrupt())
}

/// Runs the REPL until `quit` or Ctrl-D; returns the exit status.
pub fn run(rt: &Runtime) -> i32 {
    let config = Config::builder()
        .auto_add_history(true)
        .completion_type(CompletionType::List)
        .max_history_size(10_000)
        .map(|b| b.build())
        .unwrap_or_default();
    let mut rl: Editor<ShellHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return Exit::Io as i32;
        }
    };
    let out = match rl.create_external_printer() {
        Ok(p) => Arc::new(Out::terminal(Box::new(p))),
        Err(_) => Arc::new(Out::plain()),
    };
    let (lab, mut rx) = rt.block_on(async { Lab::new(1024) });
    rl.set_helper(Some(ShellHelper {
        lab: lab.clone(),
        files: FilenameCompleter::new(),
        history: HistoryHinter::new(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut session = Session::new(lab.clone(), out.clone(), None);
    // Ctrl-C while a command runs interrupts it (at the prompt, rustyline
    // reads it as a key). Installed once, so no Ctrl-C is ever lost.
    let mut interrupts = match interrupts(rt) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: cannot catch Ctrl-C: {e}");
            return Exit::OsErr as i32;
        }
    };
    // Events print as they happen, above the line being typed.
    let settings = session.settings.clone();
    let printer = out.clone();
    rt.spawn(async move {
        while let Some(ev) = rx.recv().await {
            printer.line(&render::event(&ev, settings.format()));
        }
    });
    // Job lines print as they come, with their time since the job started.
    if let Some(mut lines) = session.job_lines.take() {
        let printer = out.clone();
        let shell_pid = session.shell_pid;
        rt.spawn(async move {
            while let Some(l) = lines.recv().await {
                printer.line(&crate::jobs::line_text(&l, shell_pid, true));
            }
        });
    }
    out.line(&format!(
        "socklab {}: a socket laboratory. `help` lists the commands; Tab completes; Ctrl-D quits.",
        env!("CARGO_PKG_VERSION")
    ));
    let status = loop {
        match rl.readline(PROMPT) {
            Ok(line) => {
                let line = session.expand(&line);
                let result = rt.block_on(async {
                    tokio::select! {
                        r = session.execute(&line) => r,
                        _ = interrupts.recv() => Err(CmdError::new(Exit::Interrupted, "interrupted")),
                    }
                });
                match result {
                    // The terminal echoed ^C without a line break.
                    Err(e) if e.exit == Exit::Interrupted => {
                        out.line(&format!("\nerror: {}", e.message))
                    }
                    Err(e) => out.line(&error_text("", &line, &e)),
                    Ok(()) => {}
                }
                if session.quit {
                    break 0;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => {
                let _ = rt.block_on(session.jobs.kill_all());
                let n = rt.block_on(lab.close_all());
                out.line(&format!(
                    "closed {n} socket{}; bye",
                    if n == 1 { "" } else { "s" }
                ));
                break 0;
            }
            Err(e) => {
                eprintln!("error: cannot read the terminal: {e}");
                break Exit::Io as i32;
            }
        }
    };
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    status
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
