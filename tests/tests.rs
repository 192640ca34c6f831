//! socklab's integration tests: one binary, a module per area.

mod python;
mod repl;
mod sessions;
mod support;
