#![no_main]
//! See fuzz/README.md.

#[path = "../../crates/frame/tests/checks/mod.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

use socklab_frame::Framing;

// Input: cuts (see checks::cuts_and_rest), the limit (one byte: 0 to 254, or
// 255 for u32::MAX), then the stream.
fuzz_target!(|data: &[u8]| {
    let (cuts, rest) = checks::cuts_and_rest(data);
    let Some((&max, stream)) = rest.split_first() else {
        return;
    };
    let max = if max == u8::MAX {
        u32::MAX
    } else {
        u32::from(max)
    };
    let framing = Framing::Len { max };
    checks::framed_stream(framing, stream, &cuts);
    checks::framed_round_trip(framing, stream);
});
