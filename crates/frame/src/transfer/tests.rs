use nom::Needed;

use super::*;

/// The preamble of a version-1 message of `kind`.
fn pre(kind: u8) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend([VERSION, kind]);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn failure<T>(e: WireError) -> Res<'static, T> {
    Err(Err::Failure(e))
}

fn header(name: &str, size: u64, offset: u64) -> Header {
    Header {
        name: name.to_owned(),
        size,
        alg: DigestAlg::Blake3,
        offset,
    }
}

/// The bytes `docs/protocol.md` shows for its example upload.
const DOC_HEADER: &[u8] = b"SLFT\x01\x01\x01\
    \x00\x00\x00\x00\x00\x00\x00\x0b\
    \x00\x00\x00\x00\x00\x00\x00\x0b\
    \x00\x06hg.txt";
const DOC_REPLY: &[u8] = b"SLFT\x01\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
const DOC_REPLY_DONE: &[u8] = b"SLFT\x01\x03\x00\x00\x00\x00\x00\x00\x00\x00\x0b\x00\x06stored";
const DOC_REQUEST: &[u8] = b"SLFT\x01\x02\x00\x00\x00\x00\x00\x00\x00\x04\x00\x06hg.txt";

// --- one test per rule ------------------------------------------------------

#[test]
fn magic_rule() {
    assert_eq!(magic(b"SLFTx"), Ok((&b"x"[..], ())));
    assert_eq!(magic(b"SLF"), Err(Err::Incomplete(Needed::new(1))));
    // Waits for four bytes, so the error is the same however the stream is cut.
    assert_eq!(magic(b"GE"), Err(Err::Incomplete(Needed::new(2))));
    assert_eq!(
        magic(b"GET /"),
        failure(WireError::BadMagic { found: *b"GET " })
    );
}

#[test]
fn version_rule() {
    assert_eq!(version(b"\x01"), Ok((&b""[..], 1)));
    assert_eq!(version(b""), Err(Err::Incomplete(Needed::new(1))));
    assert_eq!(
        version(b"\x07"),
        failure(WireError::UnknownVersion { version: 7 })
    );
}

#[test]
fn kind_rule() {
    for k in [Kind::Header, Kind::Request, Kind::Reply, Kind::Trailer] {
        assert_eq!(kind(&[k.code()]), Ok((&b""[..], k)));
    }
    assert_eq!(kind(b"\x00"), failure(WireError::UnknownKind { code: 0 }));
    assert_eq!(kind(b"\x05"), failure(WireError::UnknownKind { code: 5 }));
}

#[test]
fn preamble_rule() {
    assert_eq!(preamble(&pre(3)), Ok((&b""[..], Kind::Reply)));
    assert_eq!(preamble(b"SLFT\x01"), Err(Err::Incomplete(Needed::new(1))));
    assert_eq!(
        preamble(b"SLFT\x02\x01"),
        failure(WireError::UnknownVersion { version: 2 })
    );
}

#[test]
fn expect_rule() {
    assert_eq!(expect(Kind::Reply)(&pre(3)), Ok((&b""[..], Kind::Reply)));
    assert_eq!(
        expect(Kind::Reply)(&pre(1)),
        failure(WireError::UnexpectedKind {
            expected: Kind::Reply,
            found: Kind::Header
        })
    );
}

#[test]
fn digest_alg_rule() {
    assert_eq!(digest_alg(b"\x01"), Ok((&b""[..], DigestAlg::Blake3)));
    assert_eq!(
        digest_alg(b"\x00"),
        failure(WireError::UnknownDigest { id: 0 })
    );
    assert_eq!(
        digest_alg(b"\x02"),
        failure(WireError::UnknownDigest { id: 2 })
    );
}

#[test]
fn status_rule() {
    for s in Status::ALL {
        assert_eq!(status(&[s.code()]), Ok((&b""[..], s)));
    }
    assert_eq!(
        status(b"\x0d"),
        failure(WireError::UnknownStatus { code: 13 })
    );
}

#[test]
fn offset_upto_rule() {
    let eight = 8u64.to_be_bytes();
    assert_eq!(offset_upto(8)(&eight), Ok((&b""[..], 8)));
    assert_eq!(
        offset_upto(7)(&eight),
        failure(WireError::OffsetBeyondSize { offset: 8, size: 7 })
    );
    assert_eq!(
        offset_upto(7)(&eight[..3]),
        Err(Err::Incomplete(Needed::new(5)))
    );
}

#[test]
fn name_rule() {
    assert_eq!(name(b"\x00\x02hi!"), Ok((&b"!"[..], "hi".to_owned())));
    assert_eq!(name(b"\x00\x00"), Ok((&b""[..], String::new())));
    assert_eq!(name(b"\x00\x02h"), Err(Err::Incomplete(Needed::new(1))));
    assert_eq!(name(b"\x00\xff"), Err(Err::Incomplete(Needed::new(255))));
    // The length is refused before any of the name is needed.
    assert_eq!(
        name(b"\x01\x00"),
        failure(WireError::NameTooLong { len: 256 })
    );
    assert_eq!(
        name(b"\xff\xff"),
        failure(WireError::NameTooLong { len: 65535 })
    );
    assert_eq!(name(b"\x00\x01\xff"), failure(WireError::NameNotUtf8));
}

#[test]
fn reason_rule() {
    assert_eq!(reason(b"\x00\x02ok"), Ok((&b""[..], "ok".to_owned())));
    assert_eq!(reason(b"\x04\x00"), Err(Err::Incomplete(Needed::new(1024))));
    assert_eq!(
        reason(b"\x04\x01"),
        failure(WireError::ReasonTooLong { len: 1025 })
    );
    assert_eq!(reason(b"\x00\x01\x80"), failure(WireError::ReasonNotUtf8));
}

#[test]
fn digest_rule() {
    let bytes = [7u8; 33];
    assert_eq!(
        digest(DigestAlg::Blake3)(&bytes),
        Ok((&bytes[32..], [7u8; 32]))
    );
    assert_eq!(
        digest(DigestAlg::Blake3)(&bytes[..31]),
        Err(Err::Incomplete(Needed::new(1)))
    );
}

#[test]
fn header_body_rule() {
    assert_eq!(
        header_body(&DOC_HEADER[6..]),
        Ok((&b""[..], header("hg.txt", 11, 11)))
    );
    let beyond = cat(&[
        b"\x01",
        &5u64.to_be_bytes(),
        &6u64.to_be_bytes(),
        b"\x00\x00",
    ]);
    assert_eq!(
        header_body(&beyond),
        failure(WireError::OffsetBeyondSize { offset: 6, size: 5 })
    );
}

#[test]
fn request_body_rule() {
    assert_eq!(
        request_body(&DOC_REQUEST[6..]),
        Ok((
            &b""[..],
            Request {
                name: "hg.txt".to_owned(),
                offset: 4
            }
        ))
    );
}

#[test]
fn reply_body_rule() {
    assert_eq!(
        reply_body(&DOC_REPLY_DONE[6..]),
        Ok((&b""[..], Reply::new(Status::Ok, 11, "stored")))
    );
}

#[test]
fn trailer_body_rule() {
    let body = cat(&[b"\x01", &[9u8; 32]]);
    assert_eq!(
        trailer_body(&body),
        Ok((
            &b""[..],
            Trailer {
                alg: DigestAlg::Blake3,
                digest: [9; 32]
            }
        ))
    );
    assert_eq!(
        trailer_body(b"\x03"),
        failure(WireError::UnknownDigest { id: 3 })
    );
}

#[test]
fn message_rule() {
    assert_eq!(
        message(DOC_REPLY),
        Ok((&b""[..], Message::Reply(Reply::new(Status::Ok, 0, ""))))
    );
    assert_eq!(
        message(DOC_HEADER),
        Ok((&b""[..], Message::Header(header("hg.txt", 11, 11))))
    );
}

// --- the documented bytes -----------------------------------------------------

#[test]
fn encodings_match_the_protocol_doc() {
    let mut out = Vec::new();
    header("hg.txt", 11, 11).encode(&mut out).unwrap();
    assert_eq!(out, DOC_HEADER);

    out.clear();
    Reply::new(Status::Ok, 0, "").encode(&mut out).unwrap();
    assert_eq!(out, DOC_REPLY);

    out.clear();
    Reply::new(Status::Ok, 11, "stored")
        .encode(&mut out)
        .unwrap();
    assert_eq!(out, DOC_REPLY_DONE);

    out.clear();
    Request {
        name: "hg.txt".to_owned(),
        offset: 4,
    }
    .encode(&mut out)
    .unwrap();
    assert_eq!(out, DOC_REQUEST);

    out.clear();
    Trailer {
        alg: DigestAlg::Blake3,
        digest: [0xab; 32],
    }
    .encode(&mut out);
    assert_eq!(out, cat(&[b"SLFT\x01\x04\x01", &[0xab; 32]]));
}

#[test]
fn codes_are_stable() {
    let codes: Vec<(u8, String)> = Status::ALL
        .iter()
        .map(|s| (s.code(), s.to_string()))
        .collect();
    let want = [
        "ok",
        "bad name",
        "exists",
        "too large",
        "no space",
        "digest mismatch",
        "short data",
        "bad header",
        "unknown version",
        "unknown digest",
        "busy",
        "internal error",
        "not found",
    ];
    let want: Vec<(u8, String)> = (0u8..).zip(want.map(str::to_owned)).collect();
    assert_eq!(codes, want);
    assert_eq!(DigestAlg::Blake3.id(), 1);
    assert_eq!(DigestAlg::Blake3.to_string(), "BLAKE3-256");
    assert_eq!(Kind::from_code(0), None);
    assert_eq!(MAX_MESSAGE_LEN, 1041);
}

// --- decode: incremental, and every error -------------------------------------

#[test]
fn decode_wants_more_until_the_last_byte() {
    for end in 0..DOC_HEADER.len() {
        assert_eq!(Header::decode(&DOC_HEADER[..end]), Ok(None), "{end} bytes");
        assert_eq!(Message::decode(&DOC_HEADER[..end]), Ok(None), "{end} bytes");
    }
    let more = cat(&[DOC_HEADER, b"data"]);
    assert_eq!(
        Header::decode(&more),
        Ok(Some((header("hg.txt", 11, 11), DOC_HEADER.len())))
    );
}

#[test]
fn size_u64_max_is_legal_on_the_wire() {
    let h = header("big", u64::MAX, u64::MAX);
    let mut out = Vec::new();
    h.encode(&mut out).unwrap();
    assert_eq!(Header::decode(&out), Ok(Some((h, out.len()))));
}

#[test]
fn each_decoder_refuses_other_kinds() {
    assert_eq!(
        Reply::decode(DOC_HEADER),
        Err(WireError::UnexpectedKind {
            expected: Kind::Reply,
            found: Kind::Header
        })
    );
    assert_eq!(
        Header::decode(DOC_REQUEST),
        Err(WireError::UnexpectedKind {
            expected: Kind::Header,
            found: Kind::Request
        })
    );
    assert_eq!(
        Request::decode(DOC_REPLY),
        Err(WireError::UnexpectedKind {
            expected: Kind::Request,
            found: Kind::Reply
        })
    );
    assert_eq!(
        Trailer::decode(DOC_REPLY),
        Err(WireError::UnexpectedKind {
            expected: Kind::Trailer,
            found: Kind::Reply
        })
    );
}

#[test]
fn wire_errors_and_their_reasons() {
    let long_name = cat(&[&pre(1), b"\x01", &[0; 16], b"\x01\x00"]);
    let bad_utf8 = cat(&[&pre(2), &[0; 8], b"\x00\x02\xc3\x28"]);
    let long_reason = cat(&[&pre(3), b"\x00", &[0; 8], b"\x04\x01"]);
    let beyond = cat(&[&pre(1), b"\x01", &1u64.to_be_bytes(), &2u64.to_be_bytes()]);
    let table: Vec<(Vec<u8>, WireError, &str, Status)> = vec![
        (
            b"GET / HTTP/1.1\r\n".to_vec(),
            WireError::BadMagic { found: *b"GET " },
            "not a socklab transfer message: starts with \"GET \", not \"SLFT\"",
            Status::BadHeader,
        ),
        (
            b"\x00\xff\r\nxx".to_vec(),
            WireError::BadMagic {
                found: *b"\x00\xff\r\n",
            },
            "not a socklab transfer message: starts with \"\\x00\\xff\\r\\n\", not \"SLFT\"",
            Status::BadHeader,
        ),
        (
            b"SLFT\x07\x01".to_vec(),
            WireError::UnknownVersion { version: 7 },
            "unknown protocol version 7 (this side speaks version 1)",
            Status::UnknownVersion,
        ),
        (
            b"SLFT\x01\x09".to_vec(),
            WireError::UnknownKind { code: 9 },
            "unknown message kind 9",
            Status::BadHeader,
        ),
        (
            cat(&[&pre(1), b"\x02"]),
            WireError::UnknownDigest { id: 2 },
            "unknown digest algorithm 2 (known: 1 = BLAKE3-256)",
            Status::UnknownDigest,
        ),
        (
            cat(&[&pre(4), b"\x00"]),
            WireError::UnknownDigest { id: 0 },
            "unknown digest algorithm 0 (known: 1 = BLAKE3-256)",
            Status::UnknownDigest,
        ),
        (
            cat(&[&pre(3), b"\x63"]),
            WireError::UnknownStatus { code: 99 },
            "unknown status code 99",
            Status::BadHeader,
        ),
        (
            long_name,
            WireError::NameTooLong { len: 256 },
            "file name of 256 bytes exceeds the 255-byte maximum",
            Status::BadName,
        ),
        (
            bad_utf8,
            WireError::NameNotUtf8,
            "file name is not valid UTF-8",
            Status::BadName,
        ),
        (
            long_reason,
            WireError::ReasonTooLong { len: 1025 },
            "reason of 1025 bytes exceeds the 1024-byte maximum",
            Status::BadHeader,
        ),
        (
            cat(&[&pre(3), b"\x00", &[0; 8], b"\x00\x01\xff"]),
            WireError::ReasonNotUtf8,
            "reason is not valid UTF-8",
            Status::BadHeader,
        ),
        (
            beyond,
            WireError::OffsetBeyondSize { offset: 2, size: 1 },
            "offset 2 is beyond the file's size of 1 bytes",
            Status::BadHeader,
        ),
    ];
    for (bytes, err, text, status) in table {
        assert_eq!(Message::decode(&bytes), Err(err.clone()), "{bytes:?}");
        assert_eq!(err.to_string(), text);
        assert_eq!(err.status(), status, "{err}");
    }
    assert_eq!(
        WireError::UnexpectedKind {
            expected: Kind::Reply,
            found: Kind::Header
        }
        .to_string(),
        "expected a reply, got a header"
    );
}

// --- encode -----------------------------------------------------------------

#[test]
fn encode_refuses_what_decode_would_and_leaves_out_alone() {
    let mut out = b"x".to_vec();
    assert_eq!(
        header(&"n".repeat(256), 1, 0).encode(&mut out),
        Err(WireError::NameTooLong { len: 256 })
    );
    assert_eq!(
        header("n", 1, 2).encode(&mut out),
        Err(WireError::OffsetBeyondSize { offset: 2, size: 1 })
    );
    assert_eq!(
        Request {
            name: "n".repeat(70_000),
            offset: 0
        }
        .encode(&mut out),
        Err(WireError::NameTooLong { len: 70_000 })
    );
    let reply = Reply {
        status: Status::Internal,
        offset: 0,
        reason: "r".repeat(1025),
    };
    assert_eq!(
        reply.encode(&mut out),
        Err(WireError::ReasonTooLong { len: 1025 })
    );
    assert_eq!(out, b"x");
    // A name the receiver will refuse still travels: refusing it is policy.
    header("../etc/passwd", 1, 0).encode(&mut out).unwrap();
}

#[test]
fn reply_new_cuts_the_reason_at_a_char_boundary() {
    let r = Reply::new(Status::Internal, 3, &"é".repeat(600));
    assert_eq!(r.reason.len(), 1024);
    let r = Reply::new(Status::Internal, 3, &format!("x{}", "é".repeat(600)));
    assert_eq!(r.reason.len(), 1023);
    assert!(r.encode(&mut Vec::new()).is_ok());
    assert_eq!(Reply::new(Status::Ok, 0, "fine").reason, "fine");
}

#[test]
fn resume_points() {
    let h = header("f", 100, 100);
    assert_eq!(h.resume_at(0), 0);
    assert_eq!(h.resume_at(40), 40);
    assert_eq!(h.resume_at(500), 100);
    assert_eq!(header("f", 100, 0).resume_at(40), 0);
    assert_eq!(header("f", 100, 30).resume_at(40), 30);
    let r = Request {
        name: "f".to_owned(),
        offset: 40,
    };
    assert_eq!(r.resume_at(100), 40);
    assert_eq!(r.resume_at(40), 40);
    assert_eq!(r.resume_at(39), 0);
}

#[test]
fn split_data_takes_no_more_than_is_due() {
    let buf = b"datatrailer";
    assert_eq!(split_data(buf, 4), (&b"data"[..], &b"trailer"[..]));
    assert_eq!(split_data(buf, 0), (&b""[..], &buf[..]));
    assert_eq!(split_data(buf, 100), (&buf[..], &b""[..]));
    assert_eq!(split_data(buf, u64::MAX), (&buf[..], &b""[..]));
    assert_eq!(split_data(b"", 3), (&b""[..], &b""[..]));
}

#[test]
fn protocol_doc_lists_every_status() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let rows: Vec<(String, String)> = doc
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            match cells.as_slice() {
                ["", code, name, _, ""] if code.parse::<u8>().is_ok() && name.starts_with('`') => {
                    Some((code.to_string(), name.trim_matches('`').to_owned()))
                }
                _ => None,
            }
        })
        .collect();
    let want: Vec<(String, String)> = Status::ALL
        .iter()
        .map(|s| (s.code().to_string(), s.to_string()))
        .collect();
    assert_eq!(rows, want);
}
