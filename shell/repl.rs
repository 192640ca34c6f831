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
use crate::guide::{Progress, LESSONS};
use crate::lang::{self, Lang};
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
pub fn run(rt: &Runtime, lesson: Option<usize>) -> i32 {
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
    session.lesson = lesson;
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
        if let Some(n) = session.lesson.take() {
            match walk(rt, rl, session, interrupts, n) {
                Walked::Left => {}
                Walked::Ended(e) => return e,
            }
            if session.quit {
                return Ended::Quit;
            }
        }
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

/// How a guided lesson ended.
enum Walked {
    /// Done, or `quit lesson`: the REPL goes on.
    Left,
    /// The session ended during it.
    Ended(Ended),
}

/// What the learner typed at a step, or a question.
enum Typed {
    /// A line to run (or an answer).
    Line(String),
    /// `back`, `skip`, `again`, `quit lesson` (or Ctrl-C).
    Back,
    Skip,
    Again,
    Leave,
    /// Ctrl-D, or the terminal could not be read.
    Ended(Ended),
}

/// Reads one line with `initial` already typed; the walk's words are
/// recognised here.
fn read_step(rl: &mut Editor<ShellHelper, DefaultHistory>, prompt: &str, initial: &str) -> Typed {
    match rl.readline_with_initial(prompt, (initial, "")) {
        Ok(line) => match line.trim() {
            "back" | "上一步" => Typed::Back,
            "skip" | "跳过" => Typed::Skip,
            "again" | "再来" => Typed::Again,
            "quit lesson" | "退出" => Typed::Leave,
            _ => Typed::Line(line),
        },
        Err(ReadlineError::Interrupted) => Typed::Leave,
        Err(ReadlineError::Eof) => Typed::Ended(Ended::Eof),
        Err(e) => {
            eprintln!("error: cannot read the terminal: {e}");
            Typed::Ended(Ended::Unreadable)
        }
    }
}

/// Walks lesson `n` of `guide::LESSONS`: each step's explanation, maybe a
/// question, then its command on the line, run with Enter; progress is
/// recorded after each step.
fn walk(
    rt: &Runtime,
    rl: &mut Editor<ShellHelper, DefaultHistory>,
    session: &mut Session,
    interrupts: &mut Signal,
    n: usize,
) -> Walked {
    let Some(file) = LESSONS.get(n) else {
        return Walked::Left;
    };
    let steps = match file.steps() {
        Ok(s) => s,
        Err(e) => {
            session.say(format!("error: {}: {e}", file.file));
            return Walked::Left;
        }
    };
    let mut progress = Progress::load();
    let l = lang::current();
    let h = file.header();
    let (k, of) = (n + 1, LESSONS.len());
    let which = match l {
        Lang::Zh => format!("第 {k}/{of} 课"),
        _ => format!("Lesson {k}/{of}"),
    };
    session.say(format!("== {which} · §{} · {} ==", h.section, h.title));
    session.say(l.pick(
        "Enter 运行行上的命令 (可以先修改, 或输入你自己的); back 上一步, skip 跳过, again 再来一次, quit lesson 退出课程",
        "Enter runs the command on the line (edit it first, or type your own); back, skip, again, quit lesson",
        "",
    ));
    let total = steps.len();
    let mut at = 0;
    // Each turn shows one step, or moves back; bounded by the learner.
    while at < total {
        let step = &steps[at];
        for t in step.text(l) {
            session.say(format!("\x1b[36m{t}\x1b[0m"));
        }
        let Some(command) = &step.command else {
            at += 1;
            continue;
        };
        let mut guess = None;
        if let Some(p) = &step.predict {
            for q in p.question(l) {
                session.say(format!("? {q}"));
            }
            let prompt = match l {
                Lang::Zh => "你的预测> ",
                Lang::En => "your guess> ",
                Lang::Both => "your guess 你的预测> ",
            };
            match read_step(rl, prompt, "") {
                Typed::Line(g) => guess = Some(g),
                Typed::Back => {
                    at = at.saturating_sub(1);
                    continue;
                }
                Typed::Skip => {
                    at += 1;
                    continue;
                }
                Typed::Again => continue,
                Typed::Leave => return Walked::Left,
                Typed::Ended(e) => return Walked::Ended(e),
            }
        }
        match read_step(rl, PROMPT, command) {
            Typed::Line(line) => {
                eval_print(rt, session, interrupts, &line);
                if let (Some(p), Some(g)) = (&step.predict, guess) {
                    let verdict = if p.is_right(&g) {
                        l.pick("✓ 猜对了!", "✓ You predicted right!", "  ")
                    } else {
                        let answer = p.answers.first().map_or("", String::as_str);
                        l.pick(
                            &format!("✗ 没猜对: 你猜 {}, 答案是 {answer}", g.trim()),
                            &format!("✗ Not quite: you said {}, the answer is {answer}", g.trim()),
                            "  ",
                        )
                    };
                    session.say(verdict);
                }
                if session.quit {
                    return Walked::Left;
                }
                at += 1;
                let _ = progress.record(file.file, at, total);
            }
            Typed::Back => at = at.saturating_sub(1),
            Typed::Skip => at += 1,
            Typed::Again => {}
            Typed::Leave => return Walked::Left,
            Typed::Ended(e) => return Walked::Ended(e),
        }
    }
    let _ = progress.record(file.file, total, total);
    session.say(l.pick(
        "== 本课完成. `lessons` 列出所有课程 ==",
        "== Lesson done. `lessons` lists them all ==",
        "",
    ));
    Walked::Left
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
