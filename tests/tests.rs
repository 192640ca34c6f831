//! socklab's integration tests: one binary, a module per area.

mod cli;
mod exec;
mod faults_transfer;
mod jobs;
mod python;
mod repl;
mod sessions;
mod support;
