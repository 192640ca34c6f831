//! socklab-tasks' integration tests: one binary, its own `main`.
//!
//! Why no libtest: process workers are this program re-executed with the
//! hidden `--socklab-worker` flag, and libtest's `main` would reject the
//! flag (and print its own lines on the worker's stdout, which is the
//! worker's wire). So, like the socklab binary, `main` calls
//! `worker_main_if_requested()` first; then it runs the tests below, one at
//! a time (which also keeps the /proc checks free of other tests' children).
//! `cargo test -p socklab-tasks --test tests -- NAME` runs the tests whose
//! name contains NAME.

mod errors;
mod kill;
mod measure;
mod modes;
mod support;

use std::process::ExitCode;

fn main() -> ExitCode {
    socklab_tasks::worker_main_if_requested();
    if std::env::args().nth(1).as_deref() == Some(kill::MIDDLE_FLAG) {
        return kill::middle();
    }
    let tests = [modes::TESTS, kill::TESTS, errors::TESTS, measure::TESTS].concat();
    support::run(&tests)
}
