//! socklab's integration tests: one binary, a module per area.

mod bench;
mod cli;
mod compare;
mod exec;
mod faults;
mod faults_shell;
mod faults_transfer;
mod fill;
mod hosts;
mod jobs;
mod lessons;
mod log;
mod python;
mod relay;
mod repl;
mod rootless;
mod sessions;
mod stable;
mod support;
mod tls;
mod unix;
