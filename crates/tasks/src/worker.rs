//! The worker-process side: what the socklab binary does when it is started
//! as a process worker.

use std::ffi::OsString;
use std::io::Write;

use crate::line::WireLine;
use crate::sys;
use crate::workload::Workload;

/// The hidden first argument that makes the socklab binary a process worker:
/// `socklab --socklab-worker PARENT_PID NAME TIMES EVERY_US ARG`. A command
/// line parser of the binary must never see it: call
/// [`worker_main_if_requested`] before parsing arguments.
pub const WORKER_FLAG: &str = "--socklab-worker";

/// Exit status of a worker process whose arguments were wrong.
pub(crate) const EXIT_USAGE: i32 = 64;
/// Exit status of a worker process whose parent was gone before it could ask
/// to die with it.
pub(crate) const EXIT_ORPHAN: i32 = 69;
/// Exit status of a worker process that could not write its output.
pub(crate) const EXIT_OUTPUT: i32 = 74;

/// Runs this process as a process worker, then exits, if its first argument
/// is [`WORKER_FLAG`]; otherwise returns at once and does nothing.
///
/// Call it first thing in `main()` of any binary whose process workers are
/// started by [`crate::Jobs`] (by default `std::env::current_exe()`: the
/// socklab binary itself). A worker asks the kernel to SIGKILL it when its
/// parent dies (`PR_SET_PDEATHSIG`), so it never outlives the shell; it
/// writes one line per step to stdout and error messages to stderr, both
/// pipes to the parent.
pub fn worker_main_if_requested() {
    let mut args = std::env::args_os();
    let _program = args.next();
    if args.next().as_deref() != Some(WORKER_FLAG.as_ref()) {
        return;
    }
    let rest: Vec<OsString> = args.take(16).collect();
    std::process::exit(worker_main(&rest));
}

/// The worker's life; returns the exit status.
fn worker_main(args: &[OsString]) -> i32 {
    let args: Vec<String> = match args.iter().map(|a| a.clone().into_string()).collect() {
        Ok(args) => args,
        Err(_) => {
            eprintln!("socklab worker: arguments are not UTF-8");
            return EXIT_USAGE;
        }
    };
    let Some((parent, spec)) = args.split_first() else {
        eprintln!("socklab worker: usage: {WORKER_FLAG} PARENT_PID NAME TIMES EVERY_US ARG");
        return EXIT_USAGE;
    };
    let Ok(parent) = parent.parse::<u32>() else {
        eprintln!("socklab worker: parent PID is not a number: '{parent}'");
        return EXIT_USAGE;
    };
    match sys::die_with_parent(parent) {
        Ok(true) => {}
        Ok(false) => return EXIT_ORPHAN,
        Err(e) => {
            eprintln!("socklab worker: prctl(PR_SET_PDEATHSIG): {e}");
            return EXIT_USAGE;
        }
    }
    let workload = match Workload::from_args(spec) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("socklab worker: {e}");
            return EXIT_USAGE;
        }
    };
    let pid = std::process::id();
    let tid = sys::gettid();
    let pause = workload.pause();
    let mut out = std::io::stdout().lock();
    let mut steps = workload.run();
    while let Some((step, text)) = steps.next_text() {
        let line = WireLine {
            step,
            pid,
            tid,
            mono: sys::mono_now(),
            text,
        };
        if out
            .write_all(line.encode().as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            // The parent stopped reading: nobody wants the rest.
            return EXIT_OUTPUT;
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    0
}
