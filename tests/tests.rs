//! socklab's integration tests: one binary, a module per area.

mod cli;
mod python;
mod repl;
mod sessions;
mod support;
