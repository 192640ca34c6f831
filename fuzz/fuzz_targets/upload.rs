#![no_main]
//! See fuzz/README.md.

#[path = "../../crates/frame/tests/checks/mod.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

// Input: cuts (see checks::cuts_and_rest), what the receiver holds already
// (u64 big-endian), then the stream: header, data, trailer.
fuzz_target!(|data: &[u8]| {
    let (cuts, rest) = checks::cuts_and_rest(data);
    let Some((held, stream)) = rest.split_first_chunk::<8>() else {
        return;
    };
    checks::upload_stream(stream, &cuts, u64::from_be_bytes(*held));
});
