//! The properties every decoder of socklab-frame keeps, as plain functions
//! over bytes that panic (assert) when one is broken.
//!
//! Shared by the proptest suite (`tests/props.rs`, which feeds them generated
//! inputs in `cargo test`) and by the cargo-fuzz targets (`fuzz/`, which
//! include this file with `#[path]` and feed them what libFuzzer makes), so
//! that CI's short run and the long fuzzing campaigns check the same things.
//!
//! Only the crate's public API is used.

#![allow(dead_code)] // each user calls some of them

use std::fmt::Debug;

use socklab_frame::{
    check_name, split_data, DigestAlg, FrameError, Framing, Header, Kind, Message, NameError,
    Reply, Request, Status, Trailer, WireError, DIGEST_LEN, MAGIC, MAX_MESSAGE_LEN, MAX_NAME,
    MAX_REASON, VERSION,
};

/// What a decoder answers: an item and the bytes it used, or "read more".
pub type Decoded<T, E> = Result<Option<(T, usize)>, E>;

/// What a reader of a stream saw: each decoded item or the error it stopped
/// at, and the bytes left in its buffer at the end (none once it gave up).
pub type Seen<T, E> = (Vec<Result<T, E>>, Vec<u8>);

/// Above this many bytes, a message's proper prefixes are checked at a few
/// places only, to keep a check fast: the first 32 (every field boundary of
/// the transfer messages is within them: the longest fixed part, a header's,
/// is 25 bytes), the middle and the last 16. Any prefix that ends inside a
/// name, a reason, a digest, a line or a payload is the same case for the
/// decoder as its neighbours.
const EVERY_PREFIX_UP_TO: usize = 48;

// --- reading a stream -----------------------------------------------------------

/// Decodes everything `buf` holds, as a reader does after each read.
/// Returns false once the stream is bad.
fn drain<T, E>(
    buf: &mut Vec<u8>,
    seen: &mut Vec<Result<T, E>>,
    decode: &impl Fn(&[u8]) -> Decoded<T, E>,
) -> bool {
    loop {
        match decode(buf) {
            Ok(Some((item, used))) => {
                assert!(
                    used > 0 && used <= buf.len(),
                    "used {used} of {}",
                    buf.len()
                );
                buf.drain(..used);
                seen.push(Ok(item));
            }
            Ok(None) => return true,
            Err(e) => {
                seen.push(Err(e));
                buf.clear();
                return false;
            }
        }
    }
}

/// Feeds `bytes` one read at a time, cut at `cuts` (positions taken modulo
/// `bytes.len() + 1`, in any order, repeats allowed).
pub fn feed<T, E>(
    bytes: &[u8],
    cuts: &[usize],
    decode: impl Fn(&[u8]) -> Decoded<T, E>,
) -> Seen<T, E> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    for pair in at.windows(2) {
        buf.extend_from_slice(&bytes[pair[0]..pair[1]]);
        if !drain(&mut buf, &mut seen, &decode) {
            break;
        }
    }
    (seen, buf)
}

/// The lengths of the proper prefixes of a `len`-byte message to check.
fn proper_prefixes(len: usize) -> Vec<usize> {
    if len <= EVERY_PREFIX_UP_TO {
        (0..len).collect()
    } else {
        (0..32)
            .chain(len / 2..len / 2 + 1)
            .chain(len - 16..len)
            .collect()
    }
}

/// Every proper prefix of `msg`, a whole message, asks for more bytes.
fn prefixes_are_incomplete<T: Debug, E: Debug>(
    msg: &[u8],
    decode: impl Fn(&[u8]) -> Decoded<T, E>,
) {
    for n in proper_prefixes(msg.len()) {
        let got = decode(&msg[..n]);
        assert!(
            matches!(got, Ok(None)),
            "prefix of {n} of the {}-byte message {:?} gave {got:?}",
            msg.len(),
            msg.escape_ascii().to_string()
        );
    }
}

// --- framing --------------------------------------------------------------------

/// `framing.decode`, owning its answer.
pub fn decode_frame(framing: Framing) -> impl Fn(&[u8]) -> Decoded<Vec<u8>, FrameError> {
    move |buf| {
        framing
            .decode(buf)
            .map(|r| r.map(|(msg, used)| (msg.to_vec(), used)))
    }
}

/// The most bytes `framing` may need buffered before it answers: a buffer
/// that still asks for more is shorter than this.
pub fn frame_bound(framing: Framing) -> usize {
    match framing {
        Framing::Raw => 1,
        // max bytes, then CR LF.
        Framing::Line { max } => max.saturating_add(2),
        Framing::Len { max } => 4usize.saturating_add(max as usize),
    }
}

/// `raw`: every non-empty read is one message, every byte is delivered once,
/// in order, and nothing is ever an error.
pub fn raw_stream(stream: &[u8], cuts: &[usize]) {
    let (seen, left) = feed(stream, cuts, decode_frame(Framing::Raw));
    assert!(left.is_empty(), "raw kept {left:?}");
    let mut got = Vec::new();
    for msg in seen {
        let msg = msg.expect("raw never fails");
        assert!(!msg.is_empty(), "raw gave an empty message");
        got.extend(msg);
    }
    assert_eq!(got, stream);
    assert_eq!(Framing::Raw.decode(&[]), Ok(None));
    let mut out = Vec::new();
    Framing::Raw
        .encode(stream, &mut out)
        .expect("raw encodes anything");
    assert_eq!(out, stream);
}

/// `line` and `len` (not `raw`, whose messages are the reads themselves):
/// - the stream gives the same messages and error however it is cut;
/// - each message is within the limit, and is what its bytes say (for
///   `line`: the bytes before LF, less a CR right before it; for `len`: the
///   payload its prefix declares);
/// - every proper prefix of a message's bytes asks for more;
/// - an error is the one the limit names, and is decided within
///   [`frame_bound`] bytes (so memory stays bounded by the limit);
/// - a buffer that asks for more is shorter than that bound;
/// - encode(m), where it is allowed, decodes back to m.
pub fn framed_stream(framing: Framing, stream: &[u8], cuts: &[usize]) {
    assert_ne!(framing, Framing::Raw, "see raw_stream");
    let whole = feed(stream, &[], decode_frame(framing));
    assert_eq!(
        feed(stream, cuts, decode_frame(framing)),
        whole,
        "{framing:?}: the cuts {cuts:?} changed what was read"
    );
    let bound = frame_bound(framing);
    let mut at = 0;
    for item in &whole.0 {
        let buf = &stream[at..];
        match item {
            Ok(msg) => {
                let used = framed_message(framing, buf, msg);
                at += used;
            }
            Err(e) => {
                frame_error(framing, buf, e);
                at = stream.len();
            }
        }
    }
    let left = &stream[at..];
    assert_eq!(left, &whole.1[..], "the reader kept the wrong bytes");
    if whole.0.last().is_none_or(Result::is_ok) {
        assert!(
            left.len() < bound,
            "{framing:?} still asks for more after {} bytes",
            left.len()
        );
    }
}

/// One message decoded from the start of `buf`: checks it; returns the bytes
/// it used.
fn framed_message(framing: Framing, buf: &[u8], msg: &[u8]) -> usize {
    let (got, used) = framing
        .decode(buf)
        .expect("decoded once")
        .expect("decoded once");
    assert_eq!(got, msg);
    let bytes = &buf[..used];
    match framing {
        Framing::Raw => unreachable!(),
        Framing::Line { max } => {
            assert!(msg.len() <= max, "line of {} over {max}", msg.len());
            assert!(!msg.contains(&b'\n'));
            let crlf = [msg, b"\r\n"].concat();
            let lf = [msg, b"\n"].concat();
            assert!(
                bytes == lf || bytes == crlf,
                "line {:?} from {:?}",
                msg.escape_ascii().to_string(),
                bytes.escape_ascii().to_string()
            );
        }
        Framing::Len { max } => {
            assert!(msg.len() <= max as usize);
            assert_eq!(used, 4 + msg.len());
            assert_eq!(bytes[..4], (msg.len() as u32).to_be_bytes());
            assert_eq!(&bytes[4..], msg);
        }
    }
    prefixes_are_incomplete(bytes, decode_frame(framing));
    framed_round_trip(framing, msg);
    used
}

/// encode(msg) decodes back to msg, or encode refuses for the reason it
/// documents and leaves `out` alone.
pub fn framed_round_trip(framing: Framing, msg: &[u8]) {
    let mut out = b"before".to_vec();
    match framing.encode(msg, &mut out) {
        Ok(()) => {
            let encoded = &out[6..];
            assert_eq!(
                framing.decode(encoded),
                Ok(Some((msg, encoded.len()))),
                "{framing:?} does not round-trip {:?}",
                msg.escape_ascii().to_string()
            );
            if framing != Framing::Raw {
                prefixes_are_incomplete(encoded, decode_frame(framing));
            }
        }
        Err(e) => {
            assert_eq!(out, b"before", "a refused encode wrote");
            let want = match framing {
                Framing::Raw => None,
                Framing::Line { max } => {
                    if let Some(at) = msg.iter().position(|&b| b == b'\n') {
                        Some(FrameError::Newline { at })
                    } else if msg.last() == Some(&b'\r') {
                        Some(FrameError::TrailingCr)
                    } else if msg.len() > max {
                        Some(FrameError::LineTooLongToSend {
                            len: msg.len(),
                            max,
                        })
                    } else {
                        None
                    }
                }
                Framing::Len { max } => {
                    (msg.len() > max as usize).then(|| FrameError::FrameTooLarge {
                        len: msg.len() as u64,
                        max: u64::from(max),
                    })
                }
            };
            assert_eq!(Some(e), want, "{framing:?} refused {msg:?}");
        }
    }
}

/// The error a stream stopped at, from the start of `buf`.
fn frame_error(framing: Framing, buf: &[u8], e: &FrameError) {
    match (framing, e) {
        (Framing::Line { max }, FrameError::LineTooLong { max: m }) => assert_eq!(*m, max),
        (Framing::Len { max }, FrameError::FrameTooLarge { len, max: m }) => {
            assert_eq!(*m, u64::from(max));
            assert!(*len > u64::from(max));
            assert_eq!(buf[..4], (*len as u32).to_be_bytes());
        }
        _ => panic!("{framing:?} failed with {e:?}"),
    }
    let within = &buf[..buf.len().min(frame_bound(framing))];
    assert_eq!(
        framing
            .decode(within)
            .map(|r| r.map(|(m, u)| (m.to_vec(), u))),
        Err(e.clone()),
        "{framing:?}: the error needed more than {} bytes",
        within.len()
    );
    assert!(!e.to_string().is_empty());
}

// --- the transfer protocol ----------------------------------------------------------

/// One message type of the transfer protocol, for the generic checks.
pub trait Wire: Sized + Clone + PartialEq + Debug {
    /// Its kind.
    const KIND: Option<Kind>;
    /// `Self::decode`.
    fn decode(buf: &[u8]) -> Decoded<Self, WireError>;
    /// `Self::encode`.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError>;
    /// The message, as [`Message`].
    fn into_message(self) -> Message;
    /// What must hold of any decoded value besides its encoding.
    fn check(&self) {}
}

impl Wire for Header {
    const KIND: Option<Kind> = Some(Kind::Header);
    fn decode(buf: &[u8]) -> Decoded<Self, WireError> {
        Header::decode(buf)
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        Header::encode(self, out)
    }
    fn into_message(self) -> Message {
        Message::Header(self)
    }
    fn check(&self) {
        assert!(self.offset <= self.size, "{self:?}");
        assert!(self.name.len() <= MAX_NAME);
        for held in [0, 1, self.offset, self.size, u64::MAX] {
            let at = self.resume_at(held);
            assert!(at <= held && at <= self.offset && at <= self.size);
        }
    }
}

impl Wire for Request {
    const KIND: Option<Kind> = Some(Kind::Request);
    fn decode(buf: &[u8]) -> Decoded<Self, WireError> {
        Request::decode(buf)
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        Request::encode(self, out)
    }
    fn into_message(self) -> Message {
        Message::Request(self)
    }
    fn check(&self) {
        assert!(self.name.len() <= MAX_NAME);
        for size in [0, 1, self.offset, u64::MAX] {
            assert!(self.resume_at(size) <= size);
        }
    }
}

impl Wire for Reply {
    const KIND: Option<Kind> = Some(Kind::Reply);
    fn decode(buf: &[u8]) -> Decoded<Self, WireError> {
        Reply::decode(buf)
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        Reply::encode(self, out)
    }
    fn into_message(self) -> Message {
        Message::Reply(self)
    }
    fn check(&self) {
        assert!(self.reason.len() <= MAX_REASON);
        assert_eq!(Reply::new(self.status, self.offset, &self.reason), *self);
        assert!(!self.status.to_string().is_empty());
    }
}

impl Wire for Trailer {
    const KIND: Option<Kind> = Some(Kind::Trailer);
    fn decode(buf: &[u8]) -> Decoded<Self, WireError> {
        Trailer::decode(buf)
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        Trailer::encode(self, out);
        Ok(())
    }
    fn into_message(self) -> Message {
        Message::Trailer(self)
    }
    fn check(&self) {
        assert_eq!(self.alg.digest_len(), DIGEST_LEN);
    }
}

impl Wire for Message {
    const KIND: Option<Kind> = None;
    fn decode(buf: &[u8]) -> Decoded<Self, WireError> {
        Message::decode(buf)
    }
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        Message::encode(self, out)
    }
    fn into_message(self) -> Message {
        self
    }
    fn check(&self) {
        match self {
            Message::Header(m) => m.check(),
            Message::Request(m) => m.check(),
            Message::Reply(m) => m.check(),
            Message::Trailer(m) => m.check(),
        }
    }
}

/// The length of the encoded message of a kind, at most.
fn max_len(kind: Option<Kind>) -> usize {
    match kind {
        Some(Kind::Header) => 6 + 1 + 8 + 8 + 2 + MAX_NAME,
        Some(Kind::Request) => 6 + 8 + 2 + MAX_NAME,
        Some(Kind::Reply) => 6 + 1 + 8 + 2 + MAX_REASON,
        Some(Kind::Trailer) => 6 + 1 + DIGEST_LEN,
        None => MAX_MESSAGE_LEN,
    }
}

/// Any bytes, read as a stream of `T`s:
/// - the same messages and error however the stream is cut;
/// - each message re-encodes to exactly the bytes it came from (so
///   decode(encode(m)) == m), and is at most its kind's longest;
/// - every proper prefix of a message's bytes asks for more;
/// - an error is decided within [`MAX_MESSAGE_LEN`] bytes, is one the
///   decoder may give, and names a status;
/// - a buffer that asks for more is shorter than the longest message;
/// - the typed decoder agrees with [`Message::decode`].
pub fn wire_stream<T: Wire>(stream: &[u8], cuts: &[usize]) {
    let whole = feed(stream, &[], T::decode);
    assert_eq!(
        feed(stream, cuts, T::decode),
        whole,
        "the cuts {cuts:?} changed what was read"
    );
    let mut at = 0;
    for item in &whole.0 {
        let buf = &stream[at..];
        match item {
            Ok(msg) => at += wire_message(buf, msg),
            Err(e) => {
                wire_error::<T>(buf, e);
                at = stream.len();
            }
        }
    }
    let left = &stream[at..];
    assert_eq!(left, &whole.1[..], "the reader kept the wrong bytes");
    if whole.0.last().is_none_or(Result::is_ok) {
        assert!(
            left.len() < max_len(T::KIND),
            "{:?} still asks for more after {} bytes",
            T::KIND,
            left.len()
        );
    }
    agrees_with_message::<T>(stream);
}

/// One message decoded from the start of `buf`; returns the bytes it used.
fn wire_message<T: Wire>(buf: &[u8], msg: &T) -> usize {
    let (got, used) = T::decode(buf).expect("decoded once").expect("decoded once");
    assert_eq!(&got, msg);
    assert!(used <= max_len(T::KIND), "{used}-byte {msg:?}");
    msg.check();
    let mut out = Vec::new();
    msg.encode(&mut out).expect("a decoded message encodes");
    assert_eq!(
        out,
        &buf[..used],
        "{msg:?} re-encodes to other bytes than it came from"
    );
    assert_eq!(T::decode(&out), Ok(Some((msg.clone(), used))));
    prefixes_are_incomplete(&out, T::decode);
    used
}

/// The error a stream of `T`s stopped at, from the start of `buf`.
fn wire_error<T: Wire>(buf: &[u8], e: &WireError) {
    let allowed = match e {
        WireError::Malformed(_) => false,
        WireError::UnexpectedKind { expected, found } => {
            T::KIND == Some(*expected) && *expected != *found
        }
        WireError::ReasonTooLong { .. }
        | WireError::ReasonNotUtf8
        | WireError::UnknownStatus { .. } => matches!(T::KIND, Some(Kind::Reply) | None),
        WireError::NameTooLong { .. } | WireError::NameNotUtf8 => {
            matches!(T::KIND, Some(Kind::Header | Kind::Request) | None)
        }
        WireError::OffsetBeyondSize { offset, size } => {
            offset > size && matches!(T::KIND, Some(Kind::Header) | None)
        }
        WireError::UnknownDigest { id } => {
            DigestAlg::from_id(*id).is_none()
                && matches!(T::KIND, Some(Kind::Header | Kind::Trailer) | None)
        }
        WireError::BadMagic { found } => *found != MAGIC && buf[..4] == found[..],
        WireError::UnknownVersion { version } => *version != VERSION && buf[4] == *version,
        WireError::UnknownKind { code } => Kind::from_code(*code).is_none() && buf[5] == *code,
    };
    assert!(allowed, "{:?} decoder gave {e:?}", T::KIND);
    let within = &buf[..buf.len().min(max_len(T::KIND))];
    assert_eq!(
        T::decode(within),
        Err(e.clone()),
        "the error needed more than {} bytes",
        within.len()
    );
    assert!(!e.to_string().is_empty());
    let _ = e.status();
}

/// The typed decoders and [`Message::decode`] answer alike on `buf`.
fn agrees_with_message<T: Wire>(buf: &[u8]) {
    let Some(kind) = T::KIND else { return };
    let typed = T::decode(buf);
    let any = Message::decode(buf);
    match (&typed, &any) {
        (Ok(Some((m, used))), _) => {
            assert_eq!(any, Ok(Some((m.clone().into_message(), *used))));
        }
        (Err(WireError::UnexpectedKind { found, .. }), _) => match &any {
            Ok(Some((m, _))) => assert_eq!(m.kind(), *found),
            Ok(None) => {}
            Err(e) => assert!(
                !matches!(
                    e,
                    WireError::BadMagic { .. } | WireError::UnknownVersion { .. }
                ),
                "{e:?}"
            ),
        },
        (Ok(None), _) => assert_eq!(any, Ok(None), "{kind} asks for more"),
        (Err(e), Err(f)) => assert_eq!(e, f),
        (Err(e), Ok(_)) => panic!("{kind} failed with {e:?}, any message did not"),
    }
}

/// decode(encode(m)) == m for a message built from anything: or encode
/// refuses it for the reason it documents, and writes nothing.
pub fn wire_round_trip<T: Wire>(msg: &T) {
    let mut out = b"before".to_vec();
    match msg.encode(&mut out) {
        Ok(()) => {
            let encoded = &out[6..];
            assert_eq!(T::decode(encoded), Ok(Some((msg.clone(), encoded.len()))));
            assert_eq!(
                Message::decode(encoded),
                Ok(Some((msg.clone().into_message(), encoded.len())))
            );
            prefixes_are_incomplete(encoded, T::decode);
        }
        Err(e) => {
            assert_eq!(out, b"before", "a refused encode wrote");
            let why = match msg.clone().into_message() {
                Message::Header(h) => {
                    if h.name.len() > MAX_NAME {
                        Some(WireError::NameTooLong { len: h.name.len() })
                    } else if h.offset > h.size {
                        Some(WireError::OffsetBeyondSize {
                            offset: h.offset,
                            size: h.size,
                        })
                    } else {
                        None
                    }
                }
                Message::Request(r) => (r.name.len() > MAX_NAME)
                    .then_some(WireError::NameTooLong { len: r.name.len() }),
                Message::Reply(r) => {
                    (r.reason.len() > MAX_REASON).then_some(WireError::ReasonTooLong {
                        len: r.reason.len(),
                    })
                }
                Message::Trailer(_) => None,
            };
            assert_eq!(Some(e), why, "{msg:?} refused");
        }
    }
}

/// Builds a message of each type from `bytes`, for [`wire_round_trip`]:
/// integers from the first bytes, the text from the rest (made UTF-8).
pub fn messages_from(bytes: &[u8]) -> (Header, Request, Reply, Trailer) {
    let word = |at: usize| -> u64 {
        let mut b = [0u8; 8];
        for (n, x) in b.iter_mut().enumerate() {
            *x = bytes.get(at + n).copied().unwrap_or(0);
        }
        u64::from_be_bytes(b)
    };
    let text = String::from_utf8_lossy(bytes.get(17..).unwrap_or_default()).into_owned();
    let status = Status::ALL[usize::from(bytes.first().copied().unwrap_or(0)) % Status::ALL.len()];
    let mut digest = [0u8; DIGEST_LEN];
    for (d, b) in digest.iter_mut().zip(bytes.iter().rev()) {
        *d = *b;
    }
    (
        Header {
            name: text.clone(),
            size: word(1),
            alg: DigestAlg::Blake3,
            offset: word(9),
        },
        Request {
            name: text.clone(),
            offset: word(1),
        },
        Reply {
            status,
            offset: word(1),
            reason: text,
        },
        Trailer {
            alg: DigestAlg::Blake3,
            digest,
        },
    )
}

/// A receiver of an upload over any bytes, cut anywhere: header, then
/// `size - start` counted data bytes ([`split_data`]), then the trailer.
/// However the stream is cut, it sees the same header, the same data, the
/// same trailer or error, and never holds more than a message's worth of
/// unparsed bytes.
pub fn upload_stream(stream: &[u8], cuts: &[usize], held: u64) {
    let whole = Upload::read(stream, &[], held);
    let cut = Upload::read(stream, cuts, held);
    assert_eq!(cut, whole, "the cuts {cuts:?} changed what was read");
    if let Some(h) = &whole.header {
        let start = h.resume_at(held);
        let due = h.size - start;
        let header_len = {
            let mut out = Vec::new();
            h.encode(&mut out).unwrap();
            out.len()
        };
        let after = &stream[header_len..];
        let expected = &after[..after.len().min(usize::try_from(due).unwrap_or(usize::MAX))];
        assert_eq!(whole.data, expected);
    }
}

/// What an upload receiver saw.
#[derive(Debug, PartialEq, Eq)]
struct Upload {
    header: Option<Header>,
    data: Vec<u8>,
    trailer: Option<Trailer>,
    error: Option<WireError>,
}

impl Upload {
    fn read(stream: &[u8], cuts: &[usize], held: u64) -> Upload {
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        at.extend([0, stream.len()]);
        at.sort_unstable();
        at.dedup();
        let mut seen = Upload {
            header: None,
            data: Vec::new(),
            trailer: None,
            error: None,
        };
        let mut buf = Vec::new();
        let mut remaining = 0u64;
        for pair in at.windows(2) {
            buf.extend_from_slice(&stream[pair[0]..pair[1]]);
            if seen.header.is_none() {
                match Header::decode(&buf) {
                    Ok(Some((h, used))) => {
                        buf.drain(..used);
                        remaining = h.size - h.resume_at(held);
                        seen.header = Some(h);
                    }
                    Ok(None) => {
                        assert!(buf.len() < MAX_MESSAGE_LEN);
                        continue;
                    }
                    Err(e) => {
                        seen.error = Some(e);
                        return seen;
                    }
                }
            }
            let (data, _) = split_data(&buf, remaining);
            let n = data.len();
            assert!(n as u64 <= remaining);
            seen.data.extend_from_slice(data);
            remaining -= n as u64;
            buf.drain(..n);
            if remaining == 0 {
                match Trailer::decode(&buf) {
                    Ok(Some((t, used))) => {
                        buf.drain(..used);
                        seen.trailer = Some(t);
                        return seen;
                    }
                    Ok(None) => assert!(buf.len() < MAX_MESSAGE_LEN),
                    Err(e) => {
                        seen.error = Some(e);
                        return seen;
                    }
                }
            }
        }
        seen
    }
}

// --- file names -------------------------------------------------------------------------

/// `check_name` on any string: accepted names are one plain component
/// within the limit; each refusal is the first rule the name breaks, and
/// says where.
pub fn name(name: &str) {
    match check_name(name) {
        Ok(()) => {
            assert!(!name.is_empty() && name.len() <= MAX_NAME);
            assert!(!name.contains(['/', '\\', '\0']));
            assert!(!name.chars().any(char::is_control));
            assert!(name != "." && name != "..");
            let mut chars = name.chars();
            if let (Some(first), Some(':')) = (chars.next(), chars.next()) {
                assert!(!first.is_ascii_alphabetic());
            }
            // What a receiver does with it: one component, the name itself.
            let path = std::path::Path::new("dir").join(name);
            let parts: Vec<_> = path.components().collect();
            assert_eq!(parts.len(), 2, "{name:?} is not one component");
            assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(name));
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            match e {
                NameError::Empty => assert!(name.is_empty()),
                NameError::TooLong { len } => assert!(len == name.len() && len > MAX_NAME),
                NameError::Nul { at } => {
                    assert_eq!(name.as_bytes()[at], 0);
                    assert!(!name[..at].chars().any(char::is_control));
                }
                NameError::Control { ch, at } => {
                    assert!(ch.is_control() && ch != '\0');
                    assert!(name[at..].starts_with(ch));
                    assert!(!name[..at].chars().any(char::is_control));
                }
                NameError::Dot => assert_eq!(name, "."),
                NameError::DotDot => assert_eq!(name, ".."),
                NameError::Absolute { sep } => assert!(name.starts_with(sep)),
                NameError::Drive { letter } => {
                    assert!(letter.is_ascii_alphabetic());
                    assert!(name.starts_with(letter) && name[1..].starts_with(':'));
                }
                NameError::Slash { at } => assert_eq!(name.find('/'), Some(at)),
                NameError::Backslash { at } => assert_eq!(name.find('\\'), Some(at)),
            }
        }
    }
}

// --- fuzz input layout ------------------------------------------------------------------------

/// Splits a fuzz input into cut positions and the rest: byte 0 says how many
/// cuts (modulo 16), then each cut is a big-endian u16. A short input has
/// no cuts.
pub fn cuts_and_rest(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = usize::from(n % 16);
    if rest.len() < 2 * n {
        return (Vec::new(), rest);
    }
    let (cuts, rest) = rest.split_at(2 * n);
    let cuts = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
        .collect();
    (cuts, rest)
}
