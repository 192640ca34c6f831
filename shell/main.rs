//! socklab: a socket laboratory. A REPL on a terminal, a script runner
//! otherwise.

mod args;
mod catalogue;
mod commands;
mod dispatch;
mod driver;
mod guide;
mod lang;
mod lesson;
mod out;
mod parse;
mod pattern;
mod render;
mod repl;
mod report;
mod script;
mod session;
mod stable;
mod transcript;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::args::{Exit, Fatal};
use crate::lang::Lang;

/// A socket laboratory: real sockets, one command at a time.
#[derive(Parser)]
#[command(
    name = "socklab",
    version,
    about,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    after_help = "On a terminal, socklab is an interactive shell (type `help`).\n\
                  With FILE, or with standard input not a terminal, it runs a session script and prints its transcript.\n\
                  `socklab record FILE.sock…` keeps each stable transcript in FILE.out; `socklab check FILE.sock…` compares\n\
                  with it (exit status 1 if any differs).\n\
                  Exit status: 0 ok; 64 usage; 65 data (expect saw the end of the stream first, or a `!` line succeeded);\n\
                  66 no input; 69 unavailable (refused); 71 OS error; 74 I/O error; 75 timed out (every wait);\n\
                  130 interrupted (Ctrl-C); 129 SIGHUP and 143 SIGTERM (after the same clean-up as Ctrl-D)."
)]
struct Cli {
    /// Record or check stable transcripts (without one: run FILE, the
    /// script on standard input, or the REPL).
    #[command(subcommand)]
    command: Option<Action>,
    /// A session file to run (its first line may be `#!`). Without it:
    /// the REPL on a terminal, or the script on standard input.
    file: Option<PathBuf>,
    /// Go on after a failing command (the exit status still reports the
    /// first failure).
    #[arg(long)]
    keep_going: bool,
    /// In a script, how long a waiting command (connect, accept, recv,
    /// expect, wait, send, …) waits when it names no timeout.
    #[arg(long, global = true, default_value = "10s", value_parser = wait_arg)]
    wait: Duration,
    /// The language of lessons and explanations: zh (中文), en or both
    /// (default; or $SOCKLAB_LANG).
    #[arg(long, value_parser = lang_arg)]
    lang: Option<Lang>,
    /// On a terminal, start in guided lesson N (a number or a name, as
    /// `lessons` lists them).
    #[arg(long, value_parser = lesson_arg)]
    lesson: Option<usize>,
    /// Print a stable transcript: what the machine decides is named, not
    /// numbered (ports `{srv.port}`, pids `{pid1}`, `{time}`, `{rate}`, …),
    /// so two runs of a session give the same bytes.
    #[arg(long)]
    stable: bool,
}

fn lang_arg(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("'{s}' is not a language: zh, en or both"))
}

fn lesson_arg(s: &str) -> Result<usize, String> {
    guide::find(s).ok_or_else(|| {
        format!(
            "no lesson '{s}': 1 to {} (or a name, like greeting)",
            guide::LESSONS.len()
        )
    })
}

/// What `socklab record` and `socklab check` do.
#[derive(Subcommand)]
enum Action {
    /// Run session files with --stable; keep each transcript in FILE.out.
    ///
    /// FILE.out holds standard output, then standard error and the exit
    /// status when there are any (`lesson.sock` is kept in `lesson.out`).
    /// Where FILE.out exists, its lines that still match are kept (its
    /// ` (re)`, ` (glob)` and `...` lines among them: see `check --help`);
    /// only the others are rewritten.
    Record {
        /// Session files (`lesson.sock` is recorded in `lesson.out`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The longest one session file may run (then it is stopped, and
        /// its transcript says so).
        #[arg(long, default_value = "600s", value_parser = limit_arg)]
        limit: Duration,
    },
    /// Run session files with --stable; compare each with its FILE.out.
    ///
    /// Prints a unified diff for each that differs, then a summary line;
    /// exit status 1 if any differs or has no FILE.out.
    ///
    /// A line of FILE.out is itself, byte for byte, except (as in cram):
    /// a line ending in ` (re)` is a regular expression for the whole line;
    /// a line ending in ` (glob)` is a glob for the whole line (`*` any
    /// characters, `?` one, `\*` `\?` `\\` themselves); a line `...` stands
    /// for 0 to 100 lines of anything. Write them by hand for what the
    /// machine decides beyond what --stable names (interfaces, services,
    /// the kernel's numbers).
    Check {
        /// Session files, each with its recorded FILE.out.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The longest one session file may run (then it is stopped, and
        /// its transcript says so).
        #[arg(long, default_value = "600s", value_parser = limit_arg)]
        limit: Duration,
    },
}

fn wait_arg(s: &str) -> Result<Duration, String> {
    parse::duration(s)
}

fn limit_arg(s: &str) -> Result<Duration, String> {
    match parse::duration(s)? {
        d if d.is_zero() => Err("a limit of 0 would stop every session at once".to_owned()),
        d => Ok(d),
    }
}

/// Closes every file descriptor above stderr that socklab inherited. Nothing
/// of socklab's is open yet; what a parent leaked (a pty, a pipe) would
/// otherwise shift the descriptor numbers socklab shows, and a transcript
/// must not depend on who started it.
fn close_inherited_fds() {
    // nix (0.31) has no close_range, hence the raw system call.
    // SAFETY: close_range only closes descriptors; none above 2 is in use by
    // this process yet (called first thing in main, before any thread).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc == 0 {
        return;
    }
    // Kernels before 5.9: close what /proc lists.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds.into_iter().filter(|fd| *fd > 2) {
        // Closing the read_dir's own descriptor (already dropped) is
        // harmless (EBADF).
        let _ = nix::unistd::close(fd);
    }
}

fn main() -> ExitCode {
    // A worker process of `spawn` is this program re-executed: be one, exit.
    socklab_tasks::worker_main_if_requested();
    // So is a `bench hold` client process.
    commands::hold_child_if_requested();
    close_inherited_fds();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(usage_error(&e)),
    };
    // Without root, hosts live in a user namespace of this shell's own;
    // entering one needs a process of one thread, so it is done here,
    // before the runtime. A refusal is said when a host is asked for.
    socklab_net::hosts::rootless::enter();
    let status = match &cli.command {
        Some(Action::Record { files, limit }) => transcript::record(files, cli.wait, *limit),
        Some(Action::Check { files, limit }) => transcript::check(files, cli.wait, *limit),
        None => run(&cli),
    };
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            eprintln!("error: {e:#}");
            Fatal::status_of(&e)
        }
    };
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

/// Prints what clap says about the command line; returns the exit status:
/// 0 for `--help` and `--version` (what was asked for was printed), 64
/// (usage) for a wrong command line, as `--help` promises.
fn usage_error(e: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
        _ => Exit::Usage as u8,
    }
}

/// Starts the runtime and runs the REPL or the script; returns the exit
/// status of the session, or why none could run.
fn run(cli: &Cli) -> anyhow::Result<i32> {
    let env_lang = std::env::var("SOCKLAB_LANG").ok();
    match (cli.lang, env_lang.as_deref()) {
        (Some(l), _) => lang::set(l),
        (None, Some(v)) if !v.is_empty() => match Lang::parse(v) {
            Some(l) => lang::set(l),
            None => {
                return Err(
                    anyhow::anyhow!("SOCKLAB_LANG='{v}' is not a language: zh, en or both")
                        .context(Fatal::new(Exit::Usage, "bad environment")),
                )
            }
        },
        _ => {}
    }
    if cli.lesson.is_some() && !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal())
    {
        return Err(anyhow::anyhow!(
            "a guided lesson needs a terminal; to run a lesson whole: socklab docs/lessons/FILE"
        )
        .context(Fatal::new(Exit::Usage, "--lesson")));
    }
    let _ = socklab_net::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context(Fatal::new(Exit::OsErr, "cannot start the runtime"))?;
    let status = match &cli.file {
        // A session file is read whole first: its descriptor is closed
        // before the first command, so it never shifts the fds shown.
        Some(path) => {
            let text = std::fs::read(path).with_context(|| {
                Fatal::new(Exit::NoInput, format!("cannot read {}", path.display()))
            })?;
            script::run(
                &rt,
                std::io::Cursor::new(text),
                &script::Options {
                    label: path.display().to_string(),
                    keep_going: cli.keep_going,
                    wait: cli.wait,
                    stable: cli.stable,
                },
            )
        }
        None if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            if cli.stable {
                anyhow::bail!(Fatal::new(
                    Exit::Usage,
                    "--stable is for scripts: give a session FILE, or pipe one to standard input"
                ));
            }
            repl::run(&rt, cli.lesson)
        }
        None => script::run(
            &rt,
            std::io::BufReader::new(std::io::stdin()),
            &script::Options {
                label: "<stdin>".to_string(),
                keep_going: cli.keep_going,
                wait: cli.wait,
                stable: cli.stable,
            },
        ),
    };
    // A SIGTERM or SIGHUP that is ending the session exits with its own
    // status once its clean-up is done.
    driver::await_ending(&rt);
    rt.shutdown_background();
    Ok(status)
}
