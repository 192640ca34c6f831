#![no_main]
//! See fuzz/README.md.

#[path = "../../crates/frame/tests/checks/mod.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

// Input: cuts (see checks::cuts_and_rest), then the stream.
fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = checks::cuts_and_rest(data);
    checks::raw_stream(stream, &cuts);
});
