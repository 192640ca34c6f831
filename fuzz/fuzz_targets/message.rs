#![no_main]
//! See fuzz/README.md.

#[path = "../../crates/frame/tests/checks/mod.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

use socklab_frame::Message;

// Input: cuts (see checks::cuts_and_rest), then the stream. The same bytes
// also make one message of each kind to encode and decode
// (checks::messages_from).
fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = checks::cuts_and_rest(data);
    checks::wire_stream::<Message>(stream, &cuts);
    let (header, request, reply, trailer) = checks::messages_from(stream);
    checks::wire_round_trip(&Message::Header(header));
    checks::wire_round_trip(&Message::Request(request));
    checks::wire_round_trip(&Message::Reply(reply));
    checks::wire_round_trip(&Message::Trailer(trailer));
});
