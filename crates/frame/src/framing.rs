//! Message framing: how a byte stream is cut into messages.
//!
//! Grammar (`max` is the framing's limit):
//!
//! ```text
//! raw   := BYTE+                         (everything buffered is one message)
//! line  := body ("\r\n" | "\n")          (body: bytes other than LF, at most max;
//!                                         a CR right before the LF is not part of it)
//! len   := length:u32be payload          (length <= max; payload: length bytes)
//! ```

use std::fmt;
use std::str::FromStr;

use nom::bytes::streaming::{tag, take};
use nom::error::{ErrorKind, ParseError};
use nom::number::streaming::be_u32;
use nom::sequence::terminated;
use nom::{Err, IResult, Needed, Parser};

/// The longest line, in bytes without its terminator, that `line` framing
/// accepts unless told otherwise.
pub const DEFAULT_LINE_MAX: usize = 8192;

/// The largest payload, in bytes, that `len` framing accepts unless told
/// otherwise (1 MiB).
pub const DEFAULT_LEN_MAX: u32 = 1 << 20;

/// How a byte stream is cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No framing: every chunk of bytes is a message as it comes. This is
    /// what `recv` shows, and why it cannot be trusted to keep messages
    /// apart.
    Raw,
    /// A message ends at LF; a CRLF ending is accepted and the CR dropped.
    /// The message excludes its terminator.
    Line {
        /// The longest message, in bytes, without its terminator. A line that
        /// has more than this many bytes before its terminator is an error as
        /// soon as `max + 1` of them are buffered.
        max: usize,
    },
    /// A u32 big-endian length prefix, then that many bytes.
    Len {
        /// The largest payload, in bytes. A larger prefix is an error before
        /// any of the payload is taken.
        max: u32,
    },
}

/// Why a stream or a message does not fit its framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// More than `max` bytes arrived without a line terminator.
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The framing's limit.
        max: usize,
    },
    /// A length prefix declared more than the maximum.
    #[error("frame of {len} bytes exceeds the {max}-byte maximum")]
    FrameTooLarge {
        /// The declared length.
        len: u64,
        /// The framing's limit.
        max: u64,
    },
    /// A message to send as a line contains LF, which would end it early.
    #[error("a line cannot contain LF (found one at byte {at})")]
    Newline {
        /// Where the first LF is, counted from 0.
        at: usize,
    },
    /// A message to send as a line ends with CR, which the receiver would
    /// take for part of a CRLF terminator and drop.
    #[error("a line cannot end with CR (the receiver would drop it as part of CRLF)")]
    TrailingCr,
    /// A message to send as a line is longer than the framing's limit.
    #[error("line of {len} bytes exceeds the {max}-byte maximum")]
    LineTooLongToSend {
        /// The message's length.
        len: usize,
        /// The framing's limit.
        max: usize,
    },
    /// A nom rule failed in a way the grammar does not name. The parsers of
    /// this crate do not produce it; it exists so that no input can panic.
    #[error("malformed frame ({0})")]
    Malformed(String),
}

impl<'a> ParseError<&'a [u8]> for FrameError {
    fn from_error_kind(_: &'a [u8], kind: ErrorKind) -> Self {
        FrameError::Malformed(kind.description().to_owned())
    }

    fn append(_: &'a [u8], _: ErrorKind, other: Self) -> Self {
        other
    }
}

/// A framing name other than `raw`, `line` or `len`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown framing '{0}' (expected raw, line or len)")]
pub struct UnknownFraming(pub String);

type Res<'a, T> = IResult<&'a [u8], T, FrameError>;

impl Framing {
    /// The names [`Framing::from_str`] accepts, in the order to show them.
    pub const NAMES: [&'static str; 3] = ["raw", "line", "len"];

    /// The framing's name: `raw`, `line` or `len`.
    pub fn name(&self) -> &'static str {
        match self {
            Framing::Raw => "raw",
            Framing::Line { .. } => "line",
            Framing::Len { .. } => "len",
        }
    }

    /// Cuts the first message off `buf`, the bytes received so far.
    ///
    /// Returns the message (borrowed from `buf`, terminator or prefix
    /// removed) and how many bytes of `buf` it used, or `None` when `buf`
    /// holds no complete message yet. With [`Framing::Raw`] every non-empty
    /// buffer is one message.
    ///
    /// # Errors
    ///
    /// [`FrameError::LineTooLong`] or [`FrameError::FrameTooLarge`]: the
    /// stream broke the framing's limit; no later message can be trusted.
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Option<(&'a [u8], usize)>, FrameError> {
        let parsed = match *self {
            Framing::Raw => raw(buf),
            Framing::Line { max } => line(max).parse(buf),
            Framing::Len { max } => len_frame(max).parse(buf),
        };
        match parsed {
            Ok((rest, msg)) => Ok(Some((msg, buf.len() - rest.len()))),
            Err(Err::Incomplete(_)) => Ok(None),
            Err(Err::Error(e) | Err::Failure(e)) => Err(e),
        }
    }

    /// Appends `msg`, framed, to `out`. On error `out` is left as it was.
    ///
    /// # Errors
    ///
    /// For `line`: [`FrameError::Newline`] if `msg` contains LF,
    /// [`FrameError::TrailingCr`] if it ends with CR,
    /// [`FrameError::LineTooLongToSend`] if it is longer than `max`.
    /// For `len`: [`FrameError::FrameTooLarge`] if it is longer than `max`.
    pub fn encode(&self, msg: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        match *self {
            Framing::Raw => out.extend_from_slice(msg),
            Framing::Line { max } => {
                if let Some(at) = msg.iter().position(|&b| b == b'\n') {
                    return Err(FrameError::Newline { at });
                }
                if msg.last() == Some(&b'\r') {
                    return Err(FrameError::TrailingCr);
                }
                if msg.len() > max {
                    return Err(FrameError::LineTooLongToSend {
                        len: msg.len(),
                        max,
                    });
                }
                out.extend_from_slice(msg);
                out.push(b'\n');
            }
            Framing::Len { max } => {
                let len = u32::try_from(msg.len())
                    .ok()
                    .filter(|&len| len <= max)
                    .ok_or(FrameError::FrameTooLarge {
                        len: msg.len() as u64,
                        max: u64::from(max),
                    })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(msg);
            }
        }
        Ok(())
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Framing {
    type Err = UnknownFraming;

    /// `raw`, `line` (limit [`DEFAULT_LINE_MAX`]) or `len` (limit
    /// [`DEFAULT_LEN_MAX`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "raw" => Ok(Framing::Raw),
            "line" => Ok(Framing::Line {
                max: DEFAULT_LINE_MAX,
            }),
            "len" => Ok(Framing::Len {
                max: DEFAULT_LEN_MAX,
            }),
            _ => Err(UnknownFraming(s.to_owned())),
        }
    }
}

// ---------------------------------------------------------------------------
// Grammar rules
// ---------------------------------------------------------------------------

/// `raw := BYTE+`: all of the input, if there is any.
fn raw(i: &[u8]) -> Res<'_, &[u8]> {
    if i.is_empty() {
        Err(Err::Incomplete(Needed::new(1)))
    } else {
        Ok((&[], i))
    }
}

/// The bytes before the first LF, CR included, looking no further than a
/// line of `max` bytes plus CRLF could reach. Fails as soon as the input
/// proves the line has more than `max` bytes.
fn line_raw(max: usize) -> impl Fn(&[u8]) -> Res<'_, &[u8]> {
    move |i: &[u8]| {
        // A line of `max` bytes may be followed by CR before its LF.
        let with_cr = max.saturating_add(1);
        match i
            .iter()
            .take(with_cr.saturating_add(1))
            .position(|&b| b == b'\n')
        {
            Some(at) => {
                let (body, rest) = i.split_at(at);
                Ok((rest, body))
            }
            // No LF within reach: more than `max` bytes before the terminator.
            None if i.len() > with_cr => Err(Err::Failure(FrameError::LineTooLong { max })),
            // `max + 1` bytes: too long unless the last is the CR of a CRLF.
            None if i.len() == with_cr && i.last() != Some(&b'\r') => {
                Err(Err::Failure(FrameError::LineTooLong { max }))
            }
            None => Err(Err::Incomplete(Needed::new(1))),
        }
    }
}

/// `"\n"`, the end of a line.
fn lf(i: &[u8]) -> Res<'_, &[u8]> {
    tag(&b"\n"[..]).parse(i)
}

/// `line := body ("\r\n" | "\n")`: the body, without its terminator.
fn line(max: usize) -> impl Fn(&[u8]) -> Res<'_, &[u8]> {
    move |i: &[u8]| {
        let (rest, body) = terminated(line_raw(max), lf).parse(i)?;
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.len() > max {
            return Err(Err::Failure(FrameError::LineTooLong { max }));
        }
        Ok((rest, body))
    }
}

/// `length:u32be`, checked against `max` before anything else is taken.
fn len_prefix(max: u32) -> impl Fn(&[u8]) -> Res<'_, usize> {
    move |i: &[u8]| {
        let (rest, len) = be_u32.parse(i)?;
        let too_large = FrameError::FrameTooLarge {
            len: u64::from(len),
            max: u64::from(max),
        };
        if len > max {
            return Err(Err::Failure(too_large));
        }
        let len = usize::try_from(len).map_err(|_| Err::Failure(too_large))?;
        Ok((rest, len))
    }
}

/// `len := length:u32be payload`: the payload.
fn len_frame(max: u32) -> impl Fn(&[u8]) -> Res<'_, &[u8]> {
    move |i: &[u8]| {
        let (rest, len) = len_prefix(max)(i)?;
        take(len).parse(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE4: Framing = Framing::Line { max: 4 };
    const LEN4: Framing = Framing::Len { max: 4 };

    /// Runs `framing.decode` and owns the answer.
    fn dec(framing: Framing, buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, FrameError> {
        framing
            .decode(buf)
            .map(|r| r.map(|(msg, used)| (msg.to_vec(), used)))
    }

    fn msg(m: &[u8], used: usize) -> Result<Option<(Vec<u8>, usize)>, FrameError> {
        Ok(Some((m.to_vec(), used)))
    }

    #[test]
    fn raw_rule() {
        assert_eq!(raw(b"abc"), Ok((&b""[..], &b"abc"[..])));
        assert_eq!(raw(b""), Err(Err::Incomplete(Needed::new(1))));
    }

    #[test]
    fn line_raw_rule() {
        let r = line_raw(4);
        assert_eq!(r(b"ab\ncd"), Ok((&b"\ncd"[..], &b"ab"[..])));
        assert_eq!(r(b"abcd\r\n"), Ok((&b"\n"[..], &b"abcd\r"[..])));
        assert_eq!(r(b"abcd"), Err(Err::Incomplete(Needed::new(1))));
        assert_eq!(r(b"abcd\r"), Err(Err::Incomplete(Needed::new(1))));
        assert_eq!(
            r(b"abcde"),
            Err(Err::Failure(FrameError::LineTooLong { max: 4 }))
        );
        assert_eq!(
            r(b"abcd\rx"),
            Err(Err::Failure(FrameError::LineTooLong { max: 4 }))
        );
        assert_eq!(line_raw(0)(b"\n"), Ok((&b"\n"[..], &b""[..])));
        assert_eq!(
            line_raw(usize::MAX)(b"abc"),
            Err(Err::Incomplete(Needed::new(1)))
        );
    }

    #[test]
    fn lf_rule() {
        assert_eq!(lf(b"\nx"), Ok((&b"x"[..], &b"\n"[..])));
        assert_eq!(lf(b""), Err(Err::Incomplete(Needed::new(1))));
        assert!(matches!(lf(b"x"), Err(Err::Error(_))));
    }

    #[test]
    fn line_rule() {
        let l = line(4);
        assert_eq!(l(b"hi\nrest"), Ok((&b"rest"[..], &b"hi"[..])));
        assert_eq!(l(b"hi\r\n"), Ok((&b""[..], &b"hi"[..])));
        assert_eq!(l(b"abcd\r\n"), Ok((&b""[..], &b"abcd"[..])));
        assert_eq!(l(b"a\rb\n"), Ok((&b""[..], &b"a\rb"[..])));
        assert_eq!(l(b"\r\r\n"), Ok((&b""[..], &b"\r"[..])));
        assert_eq!(
            l(b"abcde\n"),
            Err(Err::Failure(FrameError::LineTooLong { max: 4 }))
        );
        assert_eq!(
            l(b"abcd\r\r\n"),
            Err(Err::Failure(FrameError::LineTooLong { max: 4 }))
        );
    }

    #[test]
    fn len_prefix_rule() {
        assert_eq!(len_prefix(4)(b"\0\0\0\x04"), Ok((&b""[..], 4)));
        assert_eq!(
            len_prefix(4)(b"\0\0\0"),
            Err(Err::Incomplete(Needed::new(1)))
        );
        assert_eq!(
            len_prefix(4)(b"\0\0\0\x05"),
            Err(Err::Failure(FrameError::FrameTooLarge { len: 5, max: 4 }))
        );
    }

    #[test]
    fn len_frame_rule() {
        assert_eq!(len_frame(4)(b"\0\0\0\x02hi!"), Ok((&b"!"[..], &b"hi"[..])));
        assert_eq!(len_frame(4)(b"\0\0\0\0"), Ok((&b""[..], &b""[..])));
        assert_eq!(
            len_frame(4)(b"\0\0\0\x03hi"),
            Err(Err::Incomplete(Needed::new(1)))
        );
    }

    #[test]
    fn decode_raw() {
        assert_eq!(dec(Framing::Raw, b""), Ok(None));
        assert_eq!(dec(Framing::Raw, b"a\nb"), msg(b"a\nb", 3));
    }

    #[test]
    fn decode_line() {
        assert_eq!(dec(LINE4, b""), Ok(None));
        assert_eq!(dec(LINE4, b"ab"), Ok(None));
        assert_eq!(dec(LINE4, b"ab\ncd\n"), msg(b"ab", 3));
        assert_eq!(dec(LINE4, b"ab\r\ncd\n"), msg(b"ab", 4));
        assert_eq!(dec(LINE4, b"\n"), msg(b"", 1));
        assert_eq!(dec(LINE4, b"abcd\r"), Ok(None));
    }

    #[test]
    fn decode_line_too_long_errs_at_max_plus_one() {
        let too_long = Err(FrameError::LineTooLong { max: 4 });
        assert_eq!(dec(LINE4, b"abcd"), Ok(None));
        assert_eq!(dec(LINE4, b"abcde"), too_long);
        assert_eq!(dec(LINE4, b"abcde\n"), too_long);
        assert_eq!(dec(LINE4, b"abcdefghijklmnop"), too_long);
        assert_eq!(
            FrameError::LineTooLong { max: 8192 }.to_string(),
            "line longer than 8192 bytes"
        );
    }

    #[test]
    fn decode_len() {
        assert_eq!(dec(LEN4, b"\0\0"), Ok(None));
        assert_eq!(dec(LEN4, b"\0\0\0\x02h"), Ok(None));
        assert_eq!(dec(LEN4, b"\0\0\0\x02hi\0"), msg(b"hi", 6));
        assert_eq!(dec(LEN4, b"\0\0\0\0"), msg(b"", 4));
    }

    #[test]
    fn decode_len_too_large_errs_before_payload() {
        let err = dec(Framing::Len { max: 1 << 20 }, &5_000_000u32.to_be_bytes());
        assert_eq!(
            err,
            Err(FrameError::FrameTooLarge {
                len: 5_000_000,
                max: 1_048_576
            })
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "frame of 5000000 bytes exceeds the 1048576-byte maximum"
        );
        assert_eq!(
            dec(Framing::Len { max: 0 }, b"\xff\xff\xff\xff"),
            Err(FrameError::FrameTooLarge {
                len: u64::from(u32::MAX),
                max: 0
            })
        );
    }

    #[test]
    fn encode_each_framing() {
        let mut out = b"x".to_vec();
        Framing::Raw.encode(b"a\nb", &mut out).unwrap();
        LINE4.encode(b"a\rb", &mut out).unwrap();
        LEN4.encode(b"\n\n", &mut out).unwrap();
        assert_eq!(out, b"xa\nba\rb\n\0\0\0\x02\n\n");
    }

    #[test]
    fn encode_refusals_leave_out_alone() {
        let mut out = b"x".to_vec();
        assert_eq!(
            LINE4.encode(b"a\nb", &mut out),
            Err(FrameError::Newline { at: 1 })
        );
        assert_eq!(LINE4.encode(b"ab\r", &mut out), Err(FrameError::TrailingCr));
        assert_eq!(
            LINE4.encode(b"abcde", &mut out),
            Err(FrameError::LineTooLongToSend { len: 5, max: 4 })
        );
        assert_eq!(
            LEN4.encode(b"abcde", &mut out),
            Err(FrameError::FrameTooLarge { len: 5, max: 4 })
        );
        assert_eq!(out, b"x");
    }

    #[test]
    fn names() {
        for name in Framing::NAMES {
            let framing: Framing = name.parse().unwrap();
            assert_eq!(framing.name(), name);
            assert_eq!(framing.to_string(), name);
        }
        assert_eq!(
            "line".parse(),
            Ok(Framing::Line {
                max: DEFAULT_LINE_MAX
            })
        );
        assert_eq!(
            "len".parse(),
            Ok(Framing::Len {
                max: DEFAULT_LEN_MAX
            })
        );
        let err = "lines".parse::<Framing>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown framing 'lines' (expected raw, line or len)"
        );
    }
}
