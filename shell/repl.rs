//! The interactive shell on a terminal: rustyline with history,
//! completion and hints; events print above the line being typed.

mod grammar;

use std::borrow::Cow;
use std::path::PathBuf;

use anyhow::Context as _;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Context, Editor, Helper, Validator};
use socklab_net::{Lab, OptKind, Role, SockOpt};
use socklab_tasks::JobNames;
use tokio::runtime::Runtime;
use tokio::signal::unix::Signal;

use crate::args::{error_text, CmdError, Exit, Fatal};
use crate::commands::{self, COMMANDS};
use crate::driver::{self, Opened, PROMPT};
use crate::guide::{Progress, Step, LESSONS};
use crate::lang::{self, Lang};
use crate::out::Out;
use crate::parse::{self, Token};
use crate::render;
use crate::session::Session;
use grammar::{Facts, Slot, Term, Tok};

/// Completion, hints and highlighting for the line being typed.
#[derive(Helper, Validator)]
struct ShellHelper {
    lab: Lab,
    jobs: JobNames,
    files: FilenameCompleter,
    history: HistoryHinter,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let Some(before) = line.get(..pos) else {
            return Ok((0, Vec::new()));
        };
        // After the last whitespace character, which may be more than one
        // byte (a no-break space, an ideographic space).
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        // Inside an unfinished quote there is nothing to complete.
        let Ok(toks) = parse::tokenize(&before[..start]) else {
            return Ok((start, Vec::new()));
        };
        let toks: Vec<Tok<'_>> = toks.iter().map(Token::word).collect();
        if toks.is_empty() {
            let names = COMMANDS
                .iter()
                .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()));
            return Ok((start, words(word, names)));
        }
        let facts = self.facts();
        let Some(a) = grammar::analyse(&toks, &facts) else {
            if word.starts_with(['/', '.', '~']) {
                return self.files.complete_path(line, pos);
            }
            return Ok((start, Vec::new()));
        };
        let mut found: Vec<Pair> = Vec::new();
        for term in grammar::next_terms(&a) {
            for p in self.offer(term, a.command.name, &toks, &facts, before, start)? {
                if !found.iter().any(|f| f.replacement == p.replacement) {
                    found.push(p);
                }
            }
        }
        Ok((start, found))
    }
}

impl ShellHelper {
    /// A quick snapshot of the lab's sockets and their roles.
    fn facts(&self) -> Facts {
        Facts {
            sockets: self
                .lab
                .list()
                .into_iter()
                .map(|i| (i.name, i.role))
                .collect(),
            jobs: self.jobs.names(),
        }
    }

    /// The completions of the word `before[start..]` as `term`, in
    /// `command`, after the words `toks`.
    fn offer(
        &self,
        term: &Term,
        command: &str,
        toks: &[Tok<'_>],
        facts: &Facts,
        before: &str,
        start: usize,
    ) -> rustyline::Result<Vec<Pair>> {
        let word = &before[start..];
        let (prefix, slot, suffix) = match term {
            Term::Lit(l) => return Ok(words(word, [l.as_str()])),
            Term::Slot {
                prefix,
                slot,
                suffix,
            } => (prefix.as_str(), *slot, suffix.as_str()),
        };
        if !word.starts_with(prefix) {
            // `unix:` is offered as it is, to be followed by the path.
            let offered = prefix.starts_with(word) && prefix.contains(char::is_alphabetic);
            return Ok(if offered {
                vec![Pair {
                    display: prefix.to_string(),
                    replacement: prefix.to_string(),
                }]
            } else {
                Vec::new()
            });
        }
        if !prefix.is_empty() && slot != Slot::Path {
            return Ok(Vec::new());
        }
        // `SERVER.*` is offered once the name is typed, past it: `close
        // srv<Tab>` completes `srv`.
        let sockets = |want: &[Role]| -> Vec<String> {
            facts
                .sockets
                .iter()
                .filter(|(n, r)| {
                    (want.is_empty() || want.contains(r))
                        && (suffix.is_empty() || word.len() > n.len())
                })
                .map(|(n, _)| format!("{n}{suffix}"))
                .collect()
        };
        let items: Vec<String> = match slot {
            Slot::Socket => sockets(grammar::roles(command)),
            Slot::Listener => sockets(&[Role::Listener]),
            Slot::Host => {
                let mut h = host_names();
                h.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
                h
            }
            Slot::ClassHost => host_names(),
            Slot::Path => {
                // The path after the prefix, completed as a path alone.
                let at = start + prefix.len();
                let path = &before[at..];
                let (from, pairs) = self.files.complete_path(path, path.len())?;
                let kept = path.get(..from).unwrap_or("");
                // A file is a whole word; a directory goes on.
                return Ok(pairs
                    .into_iter()
                    .map(|p| {
                        let space = if p.replacement.ends_with('/') {
                            ""
                        } else {
                            " "
                        };
                        Pair {
                            display: p.display,
                            replacement: format!("{prefix}{kept}{}{space}", p.replacement),
                        }
                    })
                    .collect());
            }
            Slot::Option => SockOpt::ALL.iter().map(|o| o.name().to_string()).collect(),
            Slot::Value => {
                let option = toks.last().copied().flatten();
                match SockOpt::ALL.iter().find(|o| Some(o.name()) == option) {
                    Some(o) if o.kind() == OptKind::Bool => vec!["on".into(), "off".into()],
                    Some(o) if o.kind() == OptKind::Linger => vec!["off".into()],
                    _ => Vec::new(),
                }
            }
            Slot::Command => COMMANDS
                .iter()
                .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
                .map(String::from)
                .collect(),
            Slot::CommandName => COMMANDS.iter().map(|c| c.name.to_string()).collect(),
            Slot::Workload => socklab_tasks::WORKLOADS
                .iter()
                .map(|(n, _)| n.to_string())
                .collect(),
            Slot::Job => facts.jobs.clone(),
            Slot::NewName | Slot::Number | Slot::Other => Vec::new(),
        };
        Ok(words(word, items.iter().map(String::as_str)))
    }
}

/// The items that start with `word`, each completed with a space after it.
fn words<'i>(word: &str, items: impl IntoIterator<Item = &'i str>) -> Vec<Pair> {
    items
        .into_iter()
        .filter(|c| c.starts_with(word))
        .map(|c| Pair {
            display: c.to_string(),
            replacement: format!("{c} "),
        })
        .collect()
}

impl Hinter for ShellHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        if pos < line.len() {
            return None;
        }
        // After a space: the rest of the usage of the command being typed
        // (of the form its words so far match).
        if line.ends_with(char::is_whitespace) && !line.trim().is_empty() {
            if let Ok(toks) = parse::tokenize(line) {
                let toks: Vec<Tok<'_>> = toks.iter().map(Token::word).collect();
                if let Some(a) = grammar::analyse(&toks, &self.facts()) {
                    return grammar::rest_of_usage(&a);
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
        jobs: session.jobs.names(),
        files: FilenameCompleter::new(),
        history: HistoryHinter::new(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    // Events and job lines print as they happen, above the line being
    // typed (job lines with their time since the job started).
    // A mark (`Lab::mark`) is not printed: it says that every report
    // before it was (`step_back` waits for one before it unmutes).
    let printer = session.printer.clone();
    let (marked, marks) = tokio::sync::watch::channel(0u64);
    session.marks = Some(marks);
    rt.spawn(async move {
        while let Some(r) = reports.recv().await {
            if let crate::report::Report::Event(socklab_net::Event::Mark(id)) = r {
                let _ = marked.send(id);
                continue;
            }
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
    // What the learner ran at each step, and whether it succeeded (`back`
    // runs it again).
    let mut ran: Vec<Option<(String, bool)>> = vec![None; total];
    // A step whose command failed, though the lesson did not mean it to,
    // is offered again with the learner's line, its words not repeated.
    let mut retry: Option<String> = None;
    let mut guess = None;
    // Each turn shows one step, or moves back; bounded by the learner.
    while at < total {
        let step = &steps[at];
        if retry.is_none() {
            for t in step.text(l) {
                session.say(format!("\x1b[36m{t}\x1b[0m"));
            }
        }
        let Some(command) = &step.command else {
            at += 1;
            continue;
        };
        if retry.is_none() {
            guess = None;
        }
        if let Some(p) = step.predict.as_ref().filter(|_| retry.is_none()) {
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
                    at = step_back(rt, session, interrupts, &steps, &mut ran, at);
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
        let offered = retry.take().unwrap_or_else(|| command.clone());
        match read_step(rl, PROMPT, &offered) {
            Typed::Line(line) => {
                let ok = eval_print(rt, session, interrupts, &line);
                ran[at] = Some((line.clone(), ok));
                if !ok && !step.fails && !session.quit {
                    session.say(l.pick(
                        "这一步没有成功: 改一改这一行再按 Enter, 或者 skip 跳过",
                        "That did not work: fix the line and press Enter, or skip",
                        "",
                    ));
                    retry = Some(line);
                    continue;
                }
                if let (Some(p), Some(g)) = (&step.predict, guess.take()) {
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
            Typed::Back => at = step_back(rt, session, interrupts, &steps, &mut ran, at),
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

/// `back` at step `at` of a guided lesson: undoes the step before, as far
/// as a lab can be undone. Sockets cannot be un-created, so the lab starts
/// afresh instead (every socket closed, every program and job ended, the
/// lab's hosts removed, what it remembered of closed sockets forgotten,
/// `trace` off, `format auto`), and the lines the learner ran at the steps
/// before that one run again, in order, without their output (their own
/// lines where they typed their own; skipped steps stay skipped). A line
/// that fails now where it worked before (or the other way round) is
/// named. What stays: the kernel's TIME_WAIT entries of the closed
/// connections, files written under `{tmp}`, job numbers, and the lesson's
/// progress. Returns the step to show next.
fn step_back(
    rt: &Runtime,
    session: &mut Session,
    interrupts: &mut Signal,
    steps: &[Step],
    ran: &mut [Option<(String, bool)>],
    at: usize,
) -> usize {
    let l = lang::current();
    let Some(prev) = (0..at).rev().find(|&i| steps[i].command.is_some()) else {
        session.say(l.pick("已经是第一步了", "This is the first step already", ""));
        return at;
    };
    let again: Vec<(usize, String, bool)> = ran[..prev]
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.clone().map(|(line, ok)| (i, line, ok)))
        .collect();
    for r in &mut ran[prev..] {
        *r = None;
    }
    session.say(l.pick(
        &format!(
            "↩ 回到第 {} 步: 一个新的实验室, 之前的 {} 条命令重新运行 (不显示输出)",
            prev + 1,
            again.len()
        ),
        &format!(
            "↩ Back to step {}: a fresh lab, in which the {} command(s) before it ran again (their output not shown)",
            prev + 1,
            again.len()
        ),
        "",
    ));
    session.printer.mute(true);
    session.lab.trace_off();
    rt.block_on(session.end());
    session.lab.forget_closed();
    session.set_format(render::Format::Auto);
    session.closed_stream = None;
    let mut differ = Vec::new();
    for (i, line, ok) in again {
        let (line, now) = eval(rt, session, interrupts, &line);
        let interrupted = matches!(&now, Err(e) if e.exit == Exit::Interrupted);
        if now.is_ok() != ok {
            differ.push((i, line, now.err()));
        }
        if interrupted {
            break;
        }
    }
    // What the replay reported may still wait in the stream of events:
    // it is printed (that is, dropped, muted) before the mark comes out.
    if let Some(marks) = &mut session.marks {
        let id = *marks.borrow() + 1;
        let lab = session.lab.clone();
        let _ = rt.block_on(async {
            lab.mark(id).await;
            tokio::time::timeout(REPLAY_SETTLE, marks.wait_for(|seen| *seen >= id)).await
        });
    }
    session.printer.mute(false);
    for (i, line, e) in differ {
        session.say(match e {
            Some(e) => l.pick(
                &format!("  第 {} 步 ({line}) 这次失败了: {}", i + 1, e.message),
                &format!("  step {} ({line}) failed this time: {}", i + 1, e.message),
                "",
            ),
            None => l.pick(
                &format!("  第 {} 步 ({line}) 上次失败, 这次成功了", i + 1),
                &format!(
                    "  step {} ({line}) failed before, and worked this time",
                    i + 1
                ),
                "",
            ),
        });
    }
    prev
}

/// The longest `back` waits for the replay's reports to be printed
/// (dropped) before it prints again.
const REPLAY_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs one line (its `{NAME.port}` expanded, which it returns); Ctrl-C
/// while it runs interrupts it (at the prompt, rustyline reads Ctrl-C as a
/// key).
fn eval(
    rt: &Runtime,
    session: &mut Session,
    interrupts: &mut Signal,
    line: &str,
) -> (String, Result<(), CmdError>) {
    let line = session.expand(line);
    let result = rt.block_on(async {
        tokio::select! {
            r = commands::execute(session, &line) => r,
            _ = interrupts.recv() => Err(CmdError::new(Exit::Interrupted, "interrupted")),
        }
    });
    (line, result)
}

/// Runs one typed line and prints its error, if any; whether it worked.
fn eval_print(rt: &Runtime, session: &mut Session, interrupts: &mut Signal, line: &str) -> bool {
    let (line, result) = eval(rt, session, interrupts, line);
    match result {
        // The terminal echoed ^C without a line break.
        Err(e) if e.exit == Exit::Interrupted => session.say(format!("\nerror: {}", e.message)),
        Err(e) => session.say(error_text("", &line, &e, session.tmp())),
        Ok(()) => return true,
    }
    false
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
        let (jobs, _lines) = socklab_tasks::Jobs::new(8);
        let helper = ShellHelper {
            lab,
            jobs: jobs.names(),
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

/// Completion and hints, per position, with a lab holding real sockets of
/// every kind.
#[cfg(test)]
mod grammar_tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;
    use rustyline::history::DefaultHistory;
    use socklab_tasks::Jobs;

    use crate::report::{JobLines, Printer};

    /// A session with `srv` (a listener), `c` and `a` (the two ends of a
    /// connection to it), `f` (a fresh TCP socket), `u` (UDP) and `prog`
    /// (a program).
    struct Lab5 {
        rt: Runtime,
        session: Session,
        helper: ShellHelper,
        history: DefaultHistory,
    }

    impl Lab5 {
        fn new() -> Lab5 {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let (lab, rx) = rt.block_on(async { Lab::new(64) });
            drop(rx);
            let (jobs, _lines) = Jobs::new(64);
            let job_names = jobs.names();
            let (job_lines, _take) = JobLines::new(false);
            let printer = Arc::new(Printer::new(Out::quiet(), false));
            let mut session = Session::new(
                lab.clone(),
                jobs,
                printer,
                Arc::new(job_lines),
                Some(Duration::from_secs(5)),
            );
            for line in [
                "socket tcp as srv",
                "bind srv 127.0.0.1 0",
                "listen srv",
                "socket tcp as c",
                "connect c srv",
                "accept srv as a",
                "socket tcp as f",
                "socket udp as u",
                "exec cat as prog",
                "spawn nap as task times 100 every 1s background",
            ] {
                let line = session.expand(line);
                rt.block_on(commands::execute(&mut session, &line))
                    .unwrap_or_else(|e| panic!("{line}: {}", e.message));
            }
            let helper = ShellHelper {
                lab,
                jobs: job_names,
                files: FilenameCompleter::new(),
                history: HistoryHinter::new(),
            };
            Lab5 {
                rt,
                session,
                helper,
                history: DefaultHistory::new(),
            }
        }

        /// What Tab offers at the end of `line`.
        fn tab(&self, line: &str) -> Vec<String> {
            let ctx = Context::new(&self.history);
            let (start, found) = self.helper.complete(line, line.len(), &ctx).unwrap();
            assert!(line.is_char_boundary(start));
            found
                .into_iter()
                .map(|p| format!("{}{}", &line[..start], p.replacement))
                .collect()
        }

        /// The replacements Tab offers, without the line before them and
        /// their trailing space.
        fn words(&self, line: &str) -> Vec<String> {
            let ctx = Context::new(&self.history);
            let (_, found) = self.helper.complete(line, line.len(), &ctx).unwrap();
            found
                .into_iter()
                .map(|p| p.replacement.trim_end().to_string())
                .collect()
        }

        /// The hint shown at the end of `line`.
        fn hint(&self, line: &str) -> Option<String> {
            let ctx = Context::new(&self.history);
            self.helper.hint(line, line.len(), &ctx)
        }
    }

    impl Drop for Lab5 {
        fn drop(&mut self) {
            self.rt.block_on(self.session.lab.close_all());
        }
    }

    fn set(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn connect_offers_fresh_sockets_listeners_hosts_then_keywords() {
        let l = Lab5::new();
        let first = l.words("connect ");
        for w in ["f", "u", "srv", "localhost", "127.0.0.1", "::1", "unix:"] {
            assert!(first.contains(&w.to_string()), "{w} missing from {first:?}");
        }
        for w in ["c", "prog", "as", "timeout", "tls", "backlog"] {
            assert!(!first.contains(&w.to_string()), "{w} in {first:?}");
        }
        // After a fresh socket: where to (a host, a listener, a path).
        let second = l.words("connect f ");
        assert!(second.contains(&"srv".to_string()), "{second:?}");
        assert!(second.contains(&"localhost".to_string()), "{second:?}");
        assert!(!second.contains(&"f".to_string()), "{second:?}");
        assert!(!second.contains(&"c".to_string()), "{second:?}");
        // After a listener or a port: only the keywords that fit.
        assert_eq!(l.words("connect srv "), set(&["as", "timeout"]));
        assert_eq!(l.words("connect f srv "), set(&["timeout"]));
        assert_eq!(
            l.words("connect 127.0.0.1 5555 "),
            set(&["as", "timeout", "tls"])
        );
        assert_eq!(
            l.words("connect 127.0.0.1 5555 t"),
            set(&["timeout", "tls"])
        );
        assert_eq!(
            l.words("connect localhost 5555 tls "),
            set(&["sni", "alpn", "ca", "insecure", "as", "timeout"])
        );
        assert_eq!(
            l.tab("connect 127.0.0.1 5555 tls ca se"),
            set(&["connect 127.0.0.1 5555 tls ca session "])
        );
        // A name being given is free: nothing is offered.
        assert!(l.words("connect 127.0.0.1 5555 as ").is_empty());
    }

    #[test]
    fn set_offers_sockets_then_options_then_named_values() {
        let l = Lab5::new();
        assert_eq!(l.words("set "), set(&["srv", "c", "a", "f", "u", "prog"]));
        let options: Vec<String> = SockOpt::ALL.iter().map(|o| o.name().to_string()).collect();
        assert_eq!(l.words("set c "), options);
        assert_eq!(l.tab("set c nod"), set(&["set c nodelay "]));
        assert_eq!(l.words("set c nodelay "), set(&["on", "off"]));
        assert_eq!(l.words("setsockopt f reuseaddr o"), set(&["on", "off"]));
        assert_eq!(l.words("set c linger "), set(&["off"]));
        assert!(l.words("set c rcvbuf ").is_empty());
        assert!(l.words("set c nodelay on ").is_empty());
        assert_eq!(l.words("get c keep"), set(&["keepalive"]));
        assert!(l.words("get c keepalive ").is_empty());
    }

    #[test]
    fn frame_offers_streams_then_the_framings() {
        let l = Lab5::new();
        assert_eq!(l.words("frame "), set(&["c", "a", "prog"]));
        assert_eq!(l.words("frame c "), set(&["raw", "line", "len"]));
        assert_eq!(l.words("frame c l"), set(&["line", "len"]));
        assert_eq!(l.tab("frame prog r"), set(&["frame prog raw "]));
        assert!(l.words("frame c line ").is_empty());
    }

    #[test]
    fn upload_offers_streams_then_paths_then_its_keywords() {
        let l = Lab5::new();
        let dir = std::env::temp_dir().join(format!("socklab-complete-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("alpha.txt"), "a").unwrap();
        let d = dir.display();

        assert_eq!(l.words("upload "), set(&["c", "a", "prog", "--raw"]));
        assert_eq!(
            l.tab(&format!("upload c {d}/al")),
            set(&[&format!("upload c {d}/alpha.txt ")])
        );
        assert_eq!(
            l.tab(&format!("upload c {d}/s")),
            set(&[&format!("upload c {d}/sub/")])
        );
        assert_eq!(
            l.words(&format!("upload c {d}/alpha.txt ")),
            set(&["as", "resume", "timeout"])
        );
        assert_eq!(l.words("upload --raw "), set(&["c", "a", "prog"]));
        // `unix:PATH` completes the path after the prefix.
        assert_eq!(l.words("bind f uni"), set(&["unix:", "unix:@"]));
        assert_eq!(
            l.tab(&format!("bind f unix:{d}/al")),
            set(&[&format!("bind f unix:{d}/alpha.txt ")])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spawn_offers_workloads_then_its_keywords() {
        let l = Lab5::new();
        assert_eq!(
            l.words("spawn "),
            set(&["coding", "music", "primes", "nap"])
        );
        let after = l.words("spawn coding ");
        for w in ["music", "as", "times", "every", "background"] {
            assert!(after.contains(&w.to_string()), "{w} missing from {after:?}");
        }
        assert_eq!(
            l.words("spawn coding as "),
            set(&["process", "thread", "task"])
        );
        assert_eq!(
            l.words("spawn coding as thread times 5 "),
            set(&["every", "background"])
        );
    }

    #[test]
    fn trace_and_other_commands_offer_their_words() {
        let l = Lab5::new();
        assert_eq!(l.words("trace "), set(&["on", "off"]));
        assert_eq!(l.words("trace on "), set(&["capture", "observe"]));
        assert!(l.words("trace off ").is_empty());
        // Sockets of the right kind.
        assert_eq!(l.words("accept "), set(&["srv"]));
        assert_eq!(l.words("sendto "), set(&["u"]));
        assert_eq!(
            l.words("listen "),
            set(&["f", "localhost", "127.0.0.1", "::1", "unix:"])
        );
        let listen = l.words("listen 5555 ");
        for w in ["backlog", "mode", "as", "exec", "tls"] {
            assert!(
                listen.contains(&w.to_string()),
                "{w} missing from {listen:?}"
            );
        }
        assert!(!listen.contains(&"timeout".to_string()), "{listen:?}");
        assert_eq!(
            l.words("listen 5555 mode "),
            set(&["iterative", "thread", "task"])
        );
        assert_eq!(
            l.words("listen 5555 tls mode "),
            set(&["iterative", "task"])
        );
        assert_eq!(l.words("close s"), set(&["srv"]));
        assert_eq!(l.words("close srv."), set(&["srv.*"]));
        assert_eq!(l.words("watch c "), set(&["on", "off"]));
        assert_eq!(l.words("shutdown c "), set(&["read", "write", "both"]));
        assert_eq!(l.words("help fr"), set(&["frame"]));
        assert!(l.words("help frame ").is_empty());
        // After `on HOST` and `repeat N`, the command grammar again.
        assert!(l.words("on alice ").contains(&"connect".to_string()));
        assert_eq!(l.words("on alice frame c "), set(&["raw", "line", "len"]));
        assert_eq!(
            l.words("repeat 3 every 1s frame "),
            set(&["c", "a", "prog"])
        );
        assert!(l.words("repeat 3 ").contains(&"every".to_string()));
        // Jobs where a job goes.
        assert_eq!(l.words("kill "), set(&["job1"]));
        assert_eq!(l.words("wait "), set(&["job1", "timeout"]));
        // An unknown command offers nothing.
        assert!(l.words("lsiten ").is_empty());
    }

    #[test]
    fn hints_show_the_rest_of_the_matching_usage() {
        let l = Lab5::new();
        let hint = |line| l.hint(line);
        assert_eq!(hint("listen ").as_deref(), Some("NAME [BACKLOG]"));
        assert_eq!(
            hint("listen 5555 ").as_deref(),
            Some("[backlog N] [mode iterative|thread|task] [as NAME]")
        );
        assert_eq!(hint("listen f ").as_deref(), Some("[BACKLOG]"));
        assert_eq!(
            hint("connect 127.0.0.1 ").as_deref(),
            Some("PORT [as NAME] [timeout DUR]")
        );
        assert_eq!(
            hint("connect srv ").as_deref(),
            Some("[as NAME] [timeout DUR]")
        );
        assert_eq!(
            hint("connect 127.0.0.1 5555 as ").as_deref(),
            Some("NAME [timeout DUR]")
        );
        assert_eq!(
            hint("connect 127.0.0.1 5555 tls ").as_deref(),
            Some("[sni NAME] [alpn P,…] [ca FILE|session | insecure] [as NAME] [timeout DUR]")
        );
        assert_eq!(hint("on alice frame c ").as_deref(), Some("raw|line|len"));
        assert_eq!(hint("frame c raw "), None);
        assert_eq!(hint("sockets "), None);
        // Not at the end of the line: no hint.
        let ctx = Context::new(&l.history);
        assert_eq!(l.helper.hint("listen  ", 3, &ctx), None);
    }

    /// Words, spaces and broken text that completion and hints meet.
    const PIECES: &[&str] = &[
        "connect",
        "set",
        "frame",
        "on",
        "repeat",
        "upload",
        "spawn",
        "trace",
        "c",
        "srv",
        "f",
        "u",
        "prog",
        "as",
        "tls",
        "ca",
        "unix:",
        "unix:@",
        "5",
        "{c.port}",
        "/",
        "./",
        "~/",
        "\"",
        "'a b'",
        "hex:00",
        "\u{a0}",
        "\u{3000}",
        " ",
        "\t",
        "é",
        "敲代码",
        "[",
        "]",
        "|",
        "…",
        "*",
        "#",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// No line panics completion or hints, at any cursor position.
        #[test]
        fn completion_and_hints_never_panic(
            pieces in prop::collection::vec(prop::sample::select(PIECES), 0..8),
            junk in "\\PC{0,12}",
        ) {
            let l = shared();
            let ctx = Context::new(&l.history);
            for line in [pieces.join(" "), pieces.concat(), junk.clone()] {
                for (pos, _) in line.char_indices().chain([(line.len(), ' ')]) {
                    let (start, found) = l.helper.complete(&line, pos, &ctx).unwrap();
                    prop_assert!(line.is_char_boundary(start) && start <= pos);
                    prop_assert!(found.len() < 1000);
                    let _ = l.helper.hint(&line, pos, &ctx);
                }
            }
        }
    }

    /// One lab for the property test (its cases run one after another).
    fn shared() -> &'static Lab5 {
        static LAB: std::sync::OnceLock<Lab5> = std::sync::OnceLock::new();
        LAB.get_or_init(Lab5::new)
    }
}
