#![no_main]
//! See fuzz/README.md.

#[path = "../../crates/frame/tests/checks/mod.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

// Input: the name, as UTF-8 (other bytes are replaced, so that every input
// is a name to check).
fuzz_target!(|data: &[u8]| {
    checks::name(&String::from_utf8_lossy(data));
});
