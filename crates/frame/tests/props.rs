//! Properties of every decoder, through the public API only:
//! - decode(encode(x)) == x, for each framing and each message type;
//! - any bytes, cut into reads anywhere and fed to an accumulating buffer,
//!   decode to the same messages and the same error as the whole stream, and
//!   nothing panics;
//! - the checks of `checks/mod.rs`, which the fuzz targets of `fuzz/` run
//!   for millions of inputs, here on a few hundred generated ones each (the
//!   tests named `fuzz_*`, one per target), so that CI runs every target's
//!   properties in seconds.

mod checks;

use checks::{decode_frame, feed, Decoded, Seen};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use socklab_frame::{
    split_data, DigestAlg, FrameError, Framing, Header, Message, Reply, Request, Status, Trailer,
    WireError, MAGIC, MAX_NAME, MAX_REASON, VERSION,
};

/// Feeds `bytes` whole.
fn whole<T, E>(bytes: &[u8], decode: impl Fn(&[u8]) -> Decoded<T, E>) -> Seen<T, E> {
    feed(bytes, &[], decode)
}

// --- strategies ---------------------------------------------------------------

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        (0usize..24).prop_map(|max| Framing::Line { max }),
        (0u32..48).prop_map(|max| Framing::Len { max }),
    ]
}

/// A message `framing` can carry: shaped from arbitrary bytes.
fn fit(framing: Framing, mut msg: Vec<u8>) -> Vec<u8> {
    match framing {
        Framing::Raw => {}
        Framing::Line { max } => {
            msg.truncate(max);
            for b in &mut msg {
                if *b == b'\n' {
                    *b = b'n';
                }
            }
            if let Some(last) = msg.last_mut().filter(|b| **b == b'\r') {
                *last = b'r';
            }
        }
        Framing::Len { max } => msg.truncate(max as usize),
    }
    msg
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r'), Just(0u8)],
        0..max,
    )
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,63}",
        "[a-z./\\\\:]{0,255}".prop_map(|s| s.chars().take(MAX_NAME).collect()),
        any::<String>().prop_map(|s| {
            let mut end = s.len().min(MAX_NAME);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        }),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (name(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(name, a, b, edge)| {
        let (size, offset) = if edge {
            (u64::MAX, a)
        } else {
            (a.max(b), a.min(b))
        };
        Header {
            name,
            size,
            alg: DigestAlg::Blake3,
            offset,
        }
    })
}

fn request() -> impl Strategy<Value = Request> {
    (name(), any::<u64>()).prop_map(|(name, offset)| Request { name, offset })
}

fn reply() -> impl Strategy<Value = Reply> {
    (
        select(Status::ALL.to_vec()),
        any::<u64>(),
        prop_oneof!["\\PC{0,256}", any::<String>()],
    )
        .prop_map(|(status, offset, reason)| Reply::new(status, offset, &reason))
}

fn trailer() -> impl Strategy<Value = Trailer> {
    any::<[u8; 32]>().prop_map(|digest| Trailer {
        alg: DigestAlg::Blake3,
        digest,
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        header().prop_map(Message::Header),
        request().prop_map(Message::Request),
        reply().prop_map(Message::Reply),
        trailer().prop_map(Message::Trailer),
    ]
}

/// Where a stream is cut into reads (taken modulo its length + 1).
fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..12)
}

/// Byte flips: (where, xor with).
fn flips() -> impl Strategy<Value = Vec<(Index, u8)>> {
    prop::collection::vec((any::<Index>(), 1u8..), 0..3)
}

fn flip(bytes: &mut [u8], flips: &[(Index, u8)]) {
    if bytes.is_empty() {
        return;
    }
    for (at, x) in flips {
        let at = at.index(bytes.len());
        bytes[at] ^= x;
    }
}

// --- properties -----------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn framing_round_trips(framing in framing(), msgs in prop::collection::vec(bytes(64), 0..8)) {
        let msgs: Vec<Vec<u8>> = msgs.into_iter().map(|m| fit(framing, m)).collect();
        let mut stream = Vec::new();
        for m in &msgs {
            framing.encode(m, &mut stream).unwrap();
        }
        let (seen, left) = whole(&stream, decode_frame(framing));
        let want: Vec<Result<Vec<u8>, FrameError>> = msgs.into_iter().map(Ok).collect();
        prop_assert_eq!(seen, want);
        prop_assert!(left.is_empty());
    }

    #[test]
    fn raw_round_trips(msg in bytes(64)) {
        let mut stream = Vec::new();
        Framing::Raw.encode(&msg, &mut stream).unwrap();
        let (seen, left) = whole(&stream, decode_frame(Framing::Raw));
        let want: Vec<Result<Vec<u8>, FrameError>> =
            if msg.is_empty() { vec![] } else { vec![Ok(msg)] };
        prop_assert_eq!(seen, want);
        prop_assert!(left.is_empty());
    }

    #[test]
    fn framing_ignores_how_the_stream_was_cut(
        framing in framing(),
        msgs in prop::collection::vec(bytes(40), 0..6),
        noise in bytes(80),
        flips in flips(),
        cuts in cuts(),
    ) {
        // Mostly well-framed, with damage; then anything at all.
        let mut stream = Vec::new();
        for m in msgs {
            framing.encode(&fit(framing, m), &mut stream).unwrap();
        }
        flip(&mut stream, &flips);
        stream.extend(noise);
        prop_assert_eq!(feed(&stream, &cuts, decode_frame(framing)), whole(&stream, decode_frame(framing)));
    }

    #[test]
    fn raw_delivers_every_byte_once(stream in bytes(200), cuts in cuts()) {
        let (seen, left) = feed(&stream, &cuts, decode_frame(Framing::Raw));
        let got: Vec<u8> = seen.into_iter().flat_map(|m| m.unwrap()).collect();
        prop_assert_eq!(got, stream);
        prop_assert!(left.is_empty());
    }

    #[test]
    fn header_round_trips(h in header()) {
        let mut out = Vec::new();
        h.encode(&mut out).unwrap();
        prop_assert_eq!(Header::decode(&out), Ok(Some((h.clone(), out.len()))));
        prop_assert_eq!(Message::decode(&out), Ok(Some((Message::Header(h), out.len()))));
    }

    #[test]
    fn request_round_trips(r in request()) {
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        prop_assert_eq!(Request::decode(&out), Ok(Some((r.clone(), out.len()))));
        prop_assert_eq!(Message::decode(&out), Ok(Some((Message::Request(r), out.len()))));
    }

    #[test]
    fn reply_round_trips(r in reply()) {
        prop_assert!(r.reason.len() <= MAX_REASON);
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        prop_assert_eq!(Reply::decode(&out), Ok(Some((r.clone(), out.len()))));
        prop_assert_eq!(Message::decode(&out), Ok(Some((Message::Reply(r), out.len()))));
    }

    #[test]
    fn trailer_round_trips(t in trailer()) {
        let mut out = Vec::new();
        t.encode(&mut out);
        prop_assert_eq!(Trailer::decode(&out), Ok(Some((t.clone(), out.len()))));
        prop_assert_eq!(Message::decode(&out), Ok(Some((Message::Trailer(t), out.len()))));
    }

    #[test]
    fn message_stream_round_trips(msgs in prop::collection::vec(message(), 0..6), cuts in cuts()) {
        let mut stream = Vec::new();
        for m in &msgs {
            m.encode(&mut stream).unwrap();
        }
        let want: Vec<Result<Message, WireError>> = msgs.into_iter().map(Ok).collect();
        prop_assert_eq!(feed(&stream, &cuts, Message::decode), (want, vec![]));
    }

    #[test]
    fn messages_ignore_how_the_stream_was_cut(
        msgs in prop::collection::vec(message(), 0..5),
        flips in flips(),
        noise in bytes(64),
        cuts in cuts(),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            m.encode(&mut stream).unwrap();
        }
        flip(&mut stream, &flips);
        stream.extend(noise);
        prop_assert_eq!(feed(&stream, &cuts, Message::decode), whole(&stream, Message::decode));
        prop_assert_eq!(feed(&stream, &cuts, Header::decode), whole(&stream, Header::decode));
        prop_assert_eq!(feed(&stream, &cuts, Request::decode), whole(&stream, Request::decode));
        prop_assert_eq!(feed(&stream, &cuts, Reply::decode), whole(&stream, Reply::decode));
        prop_assert_eq!(feed(&stream, &cuts, Trailer::decode), whole(&stream, Trailer::decode));
    }

    #[test]
    fn arbitrary_bytes_after_a_preamble(
        kind in 0u8..6,
        body in bytes(400),
        cuts in cuts(),
    ) {
        // Past the magic and version, so the body rules see the bytes.
        let mut stream = MAGIC.to_vec();
        stream.extend([VERSION, kind]);
        stream.extend(body);
        prop_assert_eq!(feed(&stream, &cuts, Message::decode), whole(&stream, Message::decode));
    }

    #[test]
    fn arbitrary_bytes(stream in bytes(300), cuts in cuts(), framing in framing()) {
        prop_assert_eq!(feed(&stream, &cuts, Message::decode), whole(&stream, Message::decode));
        prop_assert_eq!(feed(&stream, &cuts, decode_frame(framing)), whole(&stream, decode_frame(framing)));
    }

    #[test]
    fn upload_stream_read_in_any_pieces(
        name in name(),
        data in bytes(300),
        start in any::<Index>(),
        digest in any::<[u8; 32]>(),
        cuts in cuts(),
    ) {
        // What a sender writes after the OK reply said where to start.
        let start = start.index(data.len() + 1);
        let header = Header {
            name,
            size: data.len() as u64,
            alg: DigestAlg::Blake3,
            offset: data.len() as u64,
        };
        let trailer = Trailer { alg: DigestAlg::Blake3, digest };
        let mut stream = Vec::new();
        header.encode(&mut stream).unwrap();
        stream.extend_from_slice(&data[start..]);
        trailer.encode(&mut stream);

        // A receiver: header, then `size - start` counted bytes, then trailer.
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        at.extend([0, stream.len()]);
        at.sort_unstable();
        at.dedup();
        let mut buf = Vec::new();
        let mut got_header = None;
        let mut remaining = 0u64;
        let mut got_data = Vec::new();
        let mut got_trailer = None;
        for pair in at.windows(2) {
            buf.extend_from_slice(&stream[pair[0]..pair[1]]);
            if got_header.is_none() {
                if let Some((h, used)) = Header::decode(&buf).unwrap() {
                    buf.drain(..used);
                    remaining = h.size - start as u64;
                    got_header = Some(h);
                }
            }
            if got_header.is_some() {
                let (chunk, _) = split_data(&buf, remaining);
                let n = chunk.len();
                got_data.extend_from_slice(chunk);
                remaining -= n as u64;
                buf.drain(..n);
                if remaining == 0 {
                    if let Some((t, used)) = Trailer::decode(&buf).unwrap() {
                        buf.drain(..used);
                        got_trailer = Some(t);
                    }
                }
            }
        }
        prop_assert_eq!(got_header, Some(header));
        prop_assert_eq!(&got_data[..], &data[start..]);
        prop_assert_eq!(got_trailer, Some(trailer));
        prop_assert!(buf.is_empty());
    }
}

// --- the fuzz targets' properties (checks/mod.rs), one test per target ---

proptest! {
    // Each case checks much (every prefix of every message, the stream cut
    // and whole): fewer cases keep `cargo test` within seconds; the fuzz
    // campaigns run millions.
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn fuzz_frame_raw(stream in bytes(200), cuts in cuts()) {
        checks::raw_stream(&stream, &cuts);
    }

    #[test]
    fn fuzz_frame_line(
        max in prop_oneof![0usize..24, 0usize..255, Just(usize::MAX)],
        msgs in prop::collection::vec(bytes(40), 0..6),
        flips in flips(),
        noise in bytes(80),
        cuts in cuts(),
    ) {
        let framing = Framing::Line { max };
        let stream = framed(framing, &msgs, &flips, noise);
        checks::framed_stream(framing, &stream, &cuts);
        checks::framed_round_trip(framing, &stream);
        for m in &msgs {
            checks::framed_round_trip(framing, m);
        }
    }

    #[test]
    fn fuzz_frame_len(
        max in prop_oneof![0u32..48, 0u32..255, Just(u32::MAX)],
        msgs in prop::collection::vec(bytes(40), 0..6),
        flips in flips(),
        noise in bytes(80),
        cuts in cuts(),
    ) {
        let framing = Framing::Len { max };
        let stream = framed(framing, &msgs, &flips, noise);
        checks::framed_stream(framing, &stream, &cuts);
        checks::framed_round_trip(framing, &stream);
        for m in &msgs {
            checks::framed_round_trip(framing, m);
        }
    }

    #[test]
    fn fuzz_header(stream in wire_bytes(), cuts in cuts(), made in source_bytes()) {
        checks::wire_stream::<Header>(&stream, &cuts);
        checks::wire_round_trip(&checks::messages_from(&made).0);
    }

    #[test]
    fn fuzz_request(stream in wire_bytes(), cuts in cuts(), made in source_bytes()) {
        checks::wire_stream::<Request>(&stream, &cuts);
        checks::wire_round_trip(&checks::messages_from(&made).1);
    }

    #[test]
    fn fuzz_reply(stream in wire_bytes(), cuts in cuts(), made in source_bytes()) {
        checks::wire_stream::<Reply>(&stream, &cuts);
        checks::wire_round_trip(&checks::messages_from(&made).2);
    }

    #[test]
    fn fuzz_trailer(stream in wire_bytes(), cuts in cuts(), made in source_bytes()) {
        checks::wire_stream::<Trailer>(&stream, &cuts);
        checks::wire_round_trip(&checks::messages_from(&made).3);
    }

    #[test]
    fn fuzz_message(stream in wire_bytes(), cuts in cuts(), made in source_bytes()) {
        checks::wire_stream::<Message>(&stream, &cuts);
        let (header, request, reply, trailer) = checks::messages_from(&made);
        checks::wire_round_trip(&Message::Header(header));
        checks::wire_round_trip(&Message::Request(request));
        checks::wire_round_trip(&Message::Reply(reply));
        checks::wire_round_trip(&Message::Trailer(trailer));
    }

    #[test]
    fn fuzz_upload(
        name in name(),
        data in bytes(200),
        held in prop_oneof![0u64..220, any::<u64>()],
        digest in any::<[u8; 32]>(),
        flips in flips(),
        noise in bytes(48),
        cuts in cuts(),
    ) {
        let size = data.len() as u64;
        let header = Header { name, size, alg: DigestAlg::Blake3, offset: size };
        let start = usize::try_from(header.resume_at(held)).unwrap();
        let mut stream = Vec::new();
        header.encode(&mut stream).unwrap();
        stream.extend_from_slice(&data[start..]);
        Trailer { alg: DigestAlg::Blake3, digest }.encode(&mut stream);
        flip(&mut stream, &flips);
        stream.extend(noise);
        checks::upload_stream(&stream, &cuts, held);
    }

    #[test]
    fn fuzz_name(name in prop_oneof![
        name(),
        any::<String>(),
        "[./\\\\:a-zA-Z\\x00-\\x1f\\x7f\\u{85}\\u{202e}]{0,4}",
        "a{250,260}",
    ]) {
        checks::name(&name);
    }
}

/// `msgs`, fitted to `framing` and framed, then damaged by `flips`, then
/// `noise`.
fn framed(framing: Framing, msgs: &[Vec<u8>], flips: &[(Index, u8)], noise: Vec<u8>) -> Vec<u8> {
    let mut stream = Vec::new();
    for m in msgs {
        framing
            .encode(&fit(framing, m.clone()), &mut stream)
            .unwrap();
    }
    flip(&mut stream, flips);
    stream.extend(noise);
    stream
}

/// Bytes for a transfer decoder: messages with damage and noise after them,
/// a preamble and anything, or anything.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => (prop::collection::vec(message(), 0..4), flips(), bytes(64)).prop_map(
            |(msgs, flips, noise)| {
                let mut stream = Vec::new();
                for m in &msgs {
                    m.encode(&mut stream).unwrap();
                }
                flip(&mut stream, &flips);
                stream.extend(noise);
                stream
            }
        ),
        2 => (0u8..6, bytes(300)).prop_map(|(kind, body)| {
            let mut stream = MAGIC.to_vec();
            stream.extend([VERSION, kind]);
            stream.extend(body);
            stream
        }),
        4 => boundary_message(),
        1 => bytes(300),
    ]
}

/// A header, request or reply whose name or reason declares a length around
/// its limit (or any), followed by that many bytes: where a limit off by one
/// would show.
fn boundary_message() -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![
        Just(MAX_NAME),
        Just(MAX_NAME + 1),
        Just(MAX_REASON),
        Just(MAX_REASON + 1),
        any::<u16>().prop_map(usize::from),
    ];
    (1u8..=3, len, any::<u64>(), 0u8..14).prop_map(|(kind, len, n, status)| {
        let mut m = MAGIC.to_vec();
        m.extend([VERSION, kind]);
        match kind {
            1 => {
                m.push(DigestAlg::Blake3.id());
                m.extend(n.to_be_bytes());
                m.extend((n / 2).to_be_bytes());
            }
            2 => m.extend(n.to_be_bytes()),
            _ => {
                m.push(status);
                m.extend(n.to_be_bytes());
            }
        }
        m.extend((len as u16).to_be_bytes());
        m.extend(std::iter::repeat_n(b'a', len.min(2000)));
        m
    })
}

/// Bytes to make messages from ([`checks::messages_from`]): names and
/// reasons of every length around the limits.
fn source_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        bytes(300),
        "\\PC{0,300}".prop_map(String::into_bytes),
        (any::<[u8; 17]>(), 250usize..1040).prop_map(|(ints, n)| {
            let mut b = ints.to_vec();
            b.extend(std::iter::repeat_n(b'x', n));
            b
        }),
    ]
}
