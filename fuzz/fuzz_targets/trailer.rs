#![no_main]
//! See fuzz/README.md.

#[path = "../../crates/frame/tests/checks/mod.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

use socklab_frame::Trailer;

// Input: cuts (see checks::cuts_and_rest), then the stream. The same bytes
// also make a trailer to encode and decode (checks::messages_from).
fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = checks::cuts_and_rest(data);
    checks::wire_stream::<Trailer>(stream, &cuts);
    checks::wire_round_trip(&checks::messages_from(stream).3);
});
