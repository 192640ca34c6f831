//! Lexing of one shell line into tokens, and parsers for the typed values that
//! commands take (durations, sizes, ports, hosts and socket names).
//!
//! Everything here is built from nom 8 `complete` parsers, one small function
//! per grammar rule. Nothing in this module panics on any input.
//!
//! Line grammar (informal):
//!
//! ```text
//! line    := blank (token (blank token)*)? blank comment? END      (a trailing \r / \n is dropped first)
//! blank   := (' ' | '\t')*
//! comment := '#' anything                                        ('#' only where a token would start)
//! token   := quoted | hex | word
//! quoted  := '"' (text | escape)* '"' | '\'' (text | escape)* '\''   (then a blank or END must follow)
//! escape  := '\n' | '\r' | '\t' | '\\' | '\"' | '\'' | '\0' | '\x' HEX HEX | '\u{' HEX{1,6} '}'
//! hex     := 'hex:' (HEX HEX)*                                   (up to the next blank)
//! word    := any run of non-blank characters, not starting with '#', '"' or '\''
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while, take_while1, take_while_m_n};
use nom::character::complete::{char, digit0, digit1, one_of, satisfy};
use nom::combinator::{
    all_consuming, eof, map, map_opt, map_res, not, opt, recognize, rest, value, verify,
};
use nom::error::ErrorKind;
use nom::multi::{fold_many0, many0, separated_list1};
use nom::sequence::{delimited, pair, preceded, separated_pair, terminated};
use nom::{IResult, Parser};
use unicode_width::UnicodeWidthStr;

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// Byte offsets into the line, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset just past the last byte.
    pub end: usize,
}

/// What a token is, with its processed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word: a run of non-whitespace characters (not starting with a quote).
    Word(String),
    /// A quoted string "..." or '...' after escape processing. Bytes, because \xNN may make non-UTF-8.
    Quoted(Vec<u8>),
    /// A byte literal `hex:48656c6c6f` (digits case-insensitive, even count, may be empty `hex:` = zero bytes).
    Hex(Vec<u8>),
}

/// One token of a line, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token's kind and value.
    pub kind: TokenKind,
    /// Where the token is in the line (for a quoted string, including the quotes).
    pub span: Span,
}

/// A lexing error: what went wrong, and where in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The part of the line the error is about (may be empty at the end of the line).
    pub span: Span,
    /// A message for the user, saying what was expected.
    pub message: String,
}

/// A host given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 or IPv6 address literal.
    Ip(IpAddr),
    /// A DNS-style host name such as `localhost` or `example.com`, still to be resolved.
    Name(String),
}

impl Token {
    /// The token's bytes as data to send: Word -> its UTF-8, Quoted/Hex -> their bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match &self.kind {
            TokenKind::Word(word) => word.as_bytes().to_vec(),
            TokenKind::Quoted(bytes) | TokenKind::Hex(bytes) => bytes.clone(),
        }
    }

    /// Some(&str) for a Word, None otherwise.
    pub fn word(&self) -> Option<&str> {
        match &self.kind {
            TokenKind::Word(word) => Some(word),
            TokenKind::Quoted(_) | TokenKind::Hex(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Lexer error plumbing
// ---------------------------------------------------------------------------

/// The escapes a quoted string may use, for error messages.
const ESCAPES: &str = r#"\n \r \t \\ \" \' \0 \xNN \u{...}"#;

/// A lexer error. `from` and `to` are suffixes of the line being lexed: the
/// error's span runs from where `from` starts to where `to` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LexError<'a> {
    from: &'a str,
    to: &'a str,
    message: String,
}

impl<'a> LexError<'a> {
    fn new(from: &'a str, to: &'a str, message: impl Into<String>) -> Self {
        LexError {
            from,
            to,
            message: message.into(),
        }
    }

    /// Turns the error into byte offsets in a line of `line_len` bytes.
    fn into_parse_error(self, line_len: usize) -> ParseError {
        let start = line_len.saturating_sub(self.from.len());
        let end = line_len.saturating_sub(self.to.len()).max(start);
        ParseError {
            span: Span { start, end },
            message: self.message,
        }
    }
}

impl<'a> nom::error::ParseError<&'a str> for LexError<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        let message = match input.chars().next() {
            Some(c) => format!("unexpected '{}'", show_char(c)),
            None => "unexpected end of line".to_string(),
        };
        LexError::new(input, skip_char(input), message)
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Result of a lexer rule.
type LexResult<'a, T> = IResult<&'a str, T, LexError<'a>>;

/// A committed lexer error (no other alternative is tried) spanning `from` to `to`.
fn failure<'a, T>(from: &'a str, to: &'a str, message: impl Into<String>) -> LexResult<'a, T> {
    Err(nom::Err::Failure(LexError::new(from, to, message)))
}

/// `i` without its first character (empty stays empty).
fn skip_char(i: &str) -> &str {
    let mut chars = i.chars();
    chars.next();
    chars.as_str()
}

/// A character as it should appear inside '...' in a message.
fn show_char(c: char) -> String {
    if c.is_control() {
        c.escape_debug().to_string()
    } else {
        c.to_string()
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_hex_digit(c: char) -> bool {
    c.is_ascii_hexdigit()
}

// ---------------------------------------------------------------------------
// Lexer rules
// ---------------------------------------------------------------------------

/// blank: spaces and tabs (possibly none).
fn blank(i: &str) -> LexResult<'_, &str> {
    take_while(is_blank).parse(i)
}

/// comment: `#` and the rest of the line.
fn comment(i: &str) -> LexResult<'_, &str> {
    preceded(char('#'), rest).parse(i)
}

/// Two hex digits as one byte.
fn hex_pair(i: &str) -> LexResult<'_, u8> {
    map_opt(take_while_m_n(2, 2, is_hex_digit), |digits: &str| {
        u8::from_str_radix(digits, 16).ok()
    })
    .parse(i)
}

/// A one-character escape: `\n \r \t \\ \" \' \0`.
fn simple_escape(i: &str) -> LexResult<'_, u8> {
    preceded(
        char('\\'),
        alt((
            value(b'\n', char('n')),
            value(b'\r', char('r')),
            value(b'\t', char('t')),
            value(b'\\', char('\\')),
            value(b'"', char('"')),
            value(b'\'', char('\'')),
            value(0u8, char('0')),
        )),
    )
    .parse(i)
}

/// `\xNN`: exactly two hex digits, any byte.
fn hex_escape(i: &str) -> LexResult<'_, u8> {
    let (digits, _) = tag("\\x").parse(i)?;
    match hex_pair(digits) {
        Ok(done) => Ok(done),
        Err(_) => {
            let (to, _) = take_while_m_n(0, 2, is_hex_digit).parse(digits)?;
            failure(i, to, "\\x needs exactly 2 hex digits, like \\x41")
        }
    }
}

/// `\u{1F600}`: 1 to 6 hex digits in braces naming a Unicode scalar value.
fn unicode_escape(i: &str) -> LexResult<'_, char> {
    let (after, _) = tag("\\u").parse(i)?;
    let braced: LexResult<&str> =
        delimited(char('{'), take_while_m_n(1, 6, is_hex_digit), char('}')).parse(after);
    match braced {
        Ok((rest, digits)) => match u32::from_str_radix(digits, 16).ok().and_then(char::from_u32) {
            Some(c) => Ok((rest, c)),
            None => failure(
                i,
                rest,
                format!("\\u{{{digits}}} is not a valid Unicode character (D800-DFFF and values above 10FFFF are not allowed)"),
            ),
        },
        Err(_) => {
            let (to, _) =
                recognize((opt(char('{')), take_while(is_hex_digit), opt(char('}')))).parse(after)?;
            failure(i, to, "\\u needs 1 to 6 hex digits in braces, like \\u{1F600}")
        }
    }
}

/// A backslash followed by anything that is not a known escape: always an error.
/// A backslash at the very end is left alone (the string is then unterminated).
fn unknown_escape(i: &str) -> LexResult<'_, Piece<'_>> {
    let (after, _) = char('\\').parse(i)?;
    match after.chars().next() {
        None => Err(nom::Err::Error(LexError::new(
            i,
            after,
            "a backslash at the end of the line",
        ))),
        Some(c) => failure(
            i,
            skip_char(after),
            format!(
                "unknown escape '\\{}' (allowed escapes: {ESCAPES})",
                show_char(c)
            ),
        ),
    }
}

/// A piece of a quoted string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    /// Text copied as is.
    Text(&'a str),
    /// One byte from an escape.
    Byte(u8),
    /// One character from a `\u{...}` escape.
    Char(char),
}

impl Piece<'_> {
    fn append_to(self, out: &mut Vec<u8>) {
        match self {
            Piece::Text(text) => out.extend_from_slice(text.as_bytes()),
            Piece::Byte(byte) => out.push(byte),
            Piece::Char(c) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// escape: any backslash sequence inside a quoted string.
fn escape(i: &str) -> LexResult<'_, Piece<'_>> {
    alt((
        map(simple_escape, Piece::Byte),
        map(hex_escape, Piece::Byte),
        map(unicode_escape, Piece::Char),
        unknown_escape,
    ))
    .parse(i)
}

/// The inside of a string quoted with `quote`, up to (not including) the closing quote.
fn quoted_body<'a>(quote: char) -> impl Parser<&'a str, Output = Vec<u8>, Error = LexError<'a>> {
    fold_many0(
        alt((
            map(take_while1(move |c| c != quote && c != '\\'), Piece::Text),
            escape,
        )),
        Vec::new,
        |mut bytes, piece| {
            piece.append_to(&mut bytes);
            bytes
        },
    )
}

/// After a closing quote: a blank or the end of the line must follow.
fn end_of_quoted(i: &str) -> LexResult<'_, ()> {
    match not(satisfy::<_, _, LexError>(|c| !is_blank(c))).parse(i) {
        Ok(done) => Ok(done),
        Err(_) => failure(i, skip_char(i), "expected a space after the closing quote"),
    }
}

/// quoted: `"..."` or `'...'`, escapes processed.
fn quoted(i: &str) -> LexResult<'_, Vec<u8>> {
    let (body, quote) = one_of("\"'").parse(i)?;
    let (rest, bytes) = quoted_body(quote).parse(body)?;
    let closed: LexResult<char> = char(quote).parse(rest);
    let Ok((rest, _)) = closed else {
        return failure(
            i,
            "",
            format!("unterminated string: expected a closing {quote}"),
        );
    };
    let (rest, ()) = end_of_quoted(rest)?;
    Ok((rest, bytes))
}

/// hex: `hex:` and an even number of hex digits, up to the next blank.
fn hex_literal(i: &str) -> LexResult<'_, Vec<u8>> {
    let (digits, _) = tag("hex:").parse(i)?;
    let (rest, bytes) = many0(hex_pair).parse(digits)?;
    let (after, odd) = opt(satisfy(is_hex_digit)).parse(rest)?;
    if let Some(c) = after.chars().next().filter(|&c| !is_blank(c)) {
        return failure(
            after,
            skip_char(after),
            format!(
                "expected hex digits (0-9, a-f) after hex:, found '{}'",
                show_char(c)
            ),
        );
    }
    if odd.is_some() {
        return failure(digits, after, "hex: needs an even number of digits");
    }
    Ok((after, bytes))
}

/// word: a run of non-blank characters not starting with `#` or a quote.
fn word(i: &str) -> LexResult<'_, &str> {
    verify(take_while1(|c| !is_blank(c)), |w: &str| {
        !w.starts_with(['#', '"', '\''])
    })
    .parse(i)
}

/// token: a quoted string, a hex literal or a word.
fn token_kind(i: &str) -> LexResult<'_, TokenKind> {
    alt((
        map(quoted, TokenKind::Quoted),
        map(hex_literal, TokenKind::Hex),
        map(word, |w: &str| TokenKind::Word(w.to_string())),
    ))
    .parse(i)
}

/// A token with the input lengths before and after it (to compute its span).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Located {
    kind: TokenKind,
    len_before: usize,
    len_after: usize,
}

/// A token, remembering where it is.
fn located_token(i: &str) -> LexResult<'_, Located> {
    let (rest, kind) = token_kind(i)?;
    Ok((
        rest,
        Located {
            kind,
            len_before: i.len(),
            len_after: rest.len(),
        },
    ))
}

/// line: blank-separated tokens, then maybe a comment, then the end.
fn tokens(i: &str) -> LexResult<'_, Vec<Located>> {
    terminated(
        many0(preceded(blank, located_token)),
        (blank, opt(comment), eof),
    )
    .parse(i)
}

/// Tokenize a line. Blank line or comment-only line -> Ok(vec![]).
///
/// A trailing `\r` / `\n` is ignored. Error spans are always inside the line and on
/// character boundaries; an "unterminated string" error spans from the opening quote to
/// the end of the line (without the trailing newline).
pub fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let body = line.trim_end_matches(['\r', '\n']);
    let total = body.len();
    match tokens(body) {
        Ok((_, located)) => Ok(located
            .into_iter()
            .map(|l| Token {
                kind: l.kind,
                span: Span {
                    start: total.saturating_sub(l.len_before),
                    end: total.saturating_sub(l.len_after),
                },
            })
            .collect()),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.into_parse_error(total)),
        Err(nom::Err::Incomplete(_)) => Err(ParseError {
            span: Span {
                start: total,
                end: total,
            },
            message: "unexpected end of line".to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------
// Value parsers
// ---------------------------------------------------------------------------

/// The value of a run of ASCII digits, `None` if it does not fit in a u128.
fn whole_number(digits: &str) -> Option<u128> {
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        Some(0)
    } else {
        digits.parse().ok()
    }
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;
/// The longest duration accepted: one day.
const MAX_DURATION_NANOS: u128 = 24 * 3600 * NANOS_PER_SECOND;
const DURATION_HINT: &str = "expected a duration like 250ms, 2s or 1m";
const DURATION_UNITS: &str = "use us, ms, s, m or h";

/// A decimal number: `12` or `1.5`.
fn decimal(i: &str) -> IResult<&str, (&str, Option<&str>)> {
    pair(digit1, opt(preceded(char('.'), digit1))).parse(i)
}

/// A duration unit, as nanoseconds per unit: `us`, `ms`, `s`, `m`, `h`.
fn duration_unit(i: &str) -> IResult<&str, u128> {
    alt((
        value(1_000, tag("us")),
        value(1_000_000, tag("ms")),
        value(NANOS_PER_SECOND, tag("s")),
        value(60 * NANOS_PER_SECOND, tag("m")),
        value(3600 * NANOS_PER_SECOND, tag("h")),
    ))
    .parse(i)
}

/// A duration: a decimal number and a unit, e.g. `1.5s`.
fn duration_literal(i: &str) -> IResult<&str, ((&str, Option<&str>), u128)> {
    (decimal, duration_unit).parse(i)
}

/// `whole.fraction` times `unit`, truncated to whole nanoseconds; `None` on overflow.
/// Fraction digits beyond the 12th are ignored.
fn scaled(whole: &str, fraction: Option<&str>, unit: u128) -> Option<u128> {
    let mut total = whole_number(whole)?.checked_mul(unit)?;
    if let Some(fraction) = fraction {
        let fraction = fraction.get(..12).unwrap_or(fraction);
        let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        let part = whole_number(fraction)?.checked_mul(unit)? / scale;
        total = total.checked_add(part)?;
    }
    Some(total)
}

/// The message for a string that is not a duration.
fn duration_error(s: &str) -> String {
    match decimal(s) {
        Ok(("", _)) => format!("{DURATION_HINT}, found '{s}' with no unit ({DURATION_UNITS})"),
        Ok((unit, _)) if unit.chars().all(char::is_alphabetic) => {
            format!("{DURATION_HINT}, found '{s}': '{unit}' is not a unit ({DURATION_UNITS})")
        }
        _ => format!("{DURATION_HINT}, found '{s}'"),
    }
}

/// Durations: `250ms`, `2s`, `1m`, `1.5s`, `100us`, `0s`. Unit required. Error message says what was expected,
/// e.g. "expected a duration like 250ms, 2s or 1m". Reject overflow / absurd values (> 1 day) with a clear message.
///
/// Units are lowercase: `us`, `ms`, `s`, `m`, `h`. A fraction is allowed with any unit and is truncated to
/// whole nanoseconds. At most one day (`24h`) is accepted.
pub fn duration(s: &str) -> Result<Duration, String> {
    let Ok((_, ((whole, fraction), unit))) = all_consuming(duration_literal).parse(s) else {
        return Err(duration_error(s));
    };
    let too_long = || format!("duration '{s}' is too long: the longest allowed is 1 day (24h)");
    let nanos = scaled(whole, fraction, unit).ok_or_else(too_long)?;
    if nanos > MAX_DURATION_NANOS {
        return Err(too_long());
    }
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| too_long())
}

const SIZE_HINT: &str = "expected a size like 512, 64K or 1M";
const SIZE_UNITS: &str = "use K, M or G (or KiB, MiB, GiB); K = 1024";

/// A size unit, as bytes per unit: `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `B` (any case).
fn size_unit(i: &str) -> IResult<&str, u128> {
    alt((
        value(1 << 10, alt((tag_no_case("kib"), tag_no_case("k")))),
        value(1 << 20, alt((tag_no_case("mib"), tag_no_case("m")))),
        value(1 << 30, alt((tag_no_case("gib"), tag_no_case("g")))),
        value(1, tag_no_case("b")),
    ))
    .parse(i)
}

/// A size: digits and an optional unit, e.g. `64K`.
fn size_literal(i: &str) -> IResult<&str, (&str, Option<u128>)> {
    (digit1, opt(size_unit)).parse(i)
}

/// The message for a string that is not a size.
fn size_error(s: &str) -> String {
    match decimal(s) {
        Ok((_, (_, Some(_)))) => {
            format!("{SIZE_HINT}, found '{s}' (sizes are whole numbers of bytes)")
        }
        Ok((unit, _)) if !unit.is_empty() && unit.chars().all(char::is_alphabetic) => {
            format!("{SIZE_HINT}, found '{s}': '{unit}' is not a unit ({SIZE_UNITS})")
        }
        _ => format!("{SIZE_HINT}, found '{s}'"),
    }
}

/// Sizes: `512`, `64K`, `1M`, `2G` (binary: K=1024), also `64KiB`/`1MiB`, case-insensitive k/m/g. Overflow -> error.
///
/// A `B` suffix (`512B`) means bytes. Decimal units such as `KB` are rejected, to avoid 1000-vs-1024 confusion.
pub fn size(s: &str) -> Result<u64, String> {
    let Ok((_, (digits, unit))) = all_consuming(size_literal).parse(s) else {
        return Err(size_error(s));
    };
    whole_number(digits)
        .and_then(|n| n.checked_mul(unit.unwrap_or(1)))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| format!("size '{s}' is too large (it must be less than 16 EiB)"))
}

/// A port number as typed, with an optional minus sign (so `-1` can be called out of range).
fn port_number(i: &str) -> IResult<&str, (Option<char>, &str)> {
    pair(opt(char('-')), digit1).parse(i)
}

/// A TCP/UDP port 0..=65535. "70000" -> Err("port 70000 is out of range (0-65535)"), "-1" likewise says out of range,
/// "abc" -> Err("expected a port number (0-65535), found 'abc'").
pub fn port(s: &str) -> Result<u16, String> {
    let not_a_port = || format!("expected a port number (0-65535), found '{s}'");
    let Ok((_, (minus, digits))) = all_consuming(port_number).parse(s) else {
        return Err(not_a_port());
    };
    match (minus, whole_number(digits)) {
        (None, Some(n)) => {
            u16::try_from(n).map_err(|_| format!("port {s} is out of range (0-65535)"))
        }
        (Some(_), Some(0)) => Err(not_a_port()),
        _ => Err(format!("port {s} is out of range (0-65535)")),
    }
}

const HOST_HINT: &str =
    "expected a host (an IP address like 127.0.0.1 or ::1, or a name like localhost)";

/// The dot-separated numbers of something that looks like an IPv4 address (numbers may be empty: `1..2`).
fn ipv4_parts(i: &str) -> IResult<&str, Vec<&str>> {
    separated_list1(char('.'), digit0).parse(i)
}

/// An IPv6 address without brackets, e.g. `::1` or `::ffff:10.0.0.1`.
fn ipv6(i: &str) -> IResult<&str, Ipv6Addr> {
    map_res(
        take_while1(|c: char| c.is_ascii_hexdigit() || c == ':' || c == '.'),
        str::parse::<Ipv6Addr>,
    )
    .parse(i)
}

/// An IPv6 address in brackets, e.g. `[::1]`.
fn bracketed_ipv6(i: &str) -> IResult<&str, Ipv6Addr> {
    delimited(char('['), ipv6, char(']')).parse(i)
}

/// Anything in brackets (to explain errors such as `[::1]:80`).
fn bracketed_text(i: &str) -> IResult<&str, &str> {
    delimited(char('['), take_while(|c| c != ']'), char(']')).parse(i)
}

/// `host:port` (to explain that the port is a separate word).
fn host_and_port(i: &str) -> IResult<&str, (&str, &str)> {
    separated_pair(take_while1(|c| c != ':'), char(':'), digit1).parse(i)
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// The dot-separated labels of a host name (labels may be empty here; checked afterwards).
fn host_labels(i: &str) -> IResult<&str, Vec<&str>> {
    separated_list1(char('.'), take_while(is_label_char)).parse(i)
}

/// Checks a dotted-quad IPv4 address, explaining what is wrong.
fn checked_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    let bad = |why: &str| format!("'{s}' is not a valid IPv4 address: {why}");
    let needs_four = "it needs 4 numbers separated by dots, like 127.0.0.1";
    let Ok((_, parts)) = all_consuming(ipv4_parts).parse(s) else {
        return Err(bad(needs_four));
    };
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("a number is missing between the dots"));
    }
    if parts.len() != 4 {
        return Err(bad(needs_four));
    }
    let mut octets = Vec::with_capacity(4);
    for part in parts {
        if part.len() > 1 && part.starts_with('0') {
            return Err(bad(&format!("{part} has a leading zero")));
        }
        match part.parse::<u8>() {
            Ok(octet) => octets.push(octet),
            Err(_) => return Err(bad(&format!("{part} is more than 255"))),
        }
    }
    <[u8; 4]>::try_from(octets)
        .map(Ipv4Addr::from)
        .map_err(|_| bad(needs_four))
}

/// Checks a DNS-style host name, explaining what is wrong.
fn checked_host_name(s: &str) -> Result<&str, String> {
    if s.is_empty() {
        return Err(HOST_HINT.to_string());
    }
    if let Some(c) = s.chars().find(|&c| !is_label_char(c) && c != '.') {
        return Err(format!(
            "{HOST_HINT}, found '{s}': '{}' can't be in a host name",
            show_char(c)
        ));
    }
    let bad = |why: String| format!("'{s}' is not a valid host name: {why}");
    if s.len() > 253 {
        return Err(bad(format!(
            "it is {} characters long; the most is 253",
            s.len()
        )));
    }
    let Ok((_, labels)) = all_consuming(host_labels).parse(s) else {
        return Err(format!("{HOST_HINT}, found '{s}'"));
    };
    for label in labels {
        if label.is_empty() {
            return Err(bad(
                "it has an empty part (two dots in a row, or a dot at the start or end)"
                    .to_string(),
            ));
        }
        if label.len() > 63 {
            return Err(bad(format!(
                "the part '{label}' is {} characters long; the most is 63",
                label.len()
            )));
        }
        if label.starts_with('-') {
            return Err(bad(format!("the part '{label}' starts with '-'")));
        }
        if label.ends_with('-') {
            return Err(bad(format!("the part '{label}' ends with '-'")));
        }
    }
    Ok(s)
}

/// The message for a string that contains ':' but is not an IPv6 address.
fn colon_error(s: &str) -> String {
    let port_hint =
        format!("'{s}' is not a valid host: it looks like host:port; give the host and the port as separate words");
    if all_consuming(host_and_port).parse(s).is_ok() {
        return port_hint;
    }
    if let Ok((rest, _)) = bracketed_text(s) {
        if all_consuming(preceded(char::<_, nom::error::Error<&str>>(':'), digit1))
            .parse(rest)
            .is_ok()
        {
            return port_hint;
        }
    }
    if s.starts_with('[') {
        format!("'{s}' is not a valid IPv6 address in brackets, like [::1]")
    } else {
        format!("'{s}' is not a valid IPv6 address")
    }
}

/// A host: IPv4 literal, IPv6 literal (also in brackets `[::1]`), or a DNS-style host name (labels of [A-Za-z0-9-],
/// not starting/ending with '-', 1..=63 chars each, total <= 253; `localhost` is a Name). Invalid -> clear message
/// e.g. "'300.1.1.1' is not a valid IPv4 address: 300 is more than 255" where you can tell, else "expected a host (an IP address like 127.0.0.1 or ::1, or a name like localhost)".
///
/// Anything made only of digits and dots (such as `123` or `1.2.3`) is taken as an attempted IPv4 address,
/// never as a name. IPv6 zone ids (`fe80::1%eth0`) are not accepted.
pub fn host(s: &str) -> Result<Host, String> {
    if s.starts_with('[') {
        return all_consuming(bracketed_ipv6)
            .parse(s)
            .map(|(_, addr)| Host::Ip(IpAddr::V6(addr)))
            .map_err(|_| colon_error(s));
    }
    if s.contains(|c: char| c.is_ascii_digit()) && s.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return checked_ipv4(s).map(|addr| Host::Ip(IpAddr::V4(addr)));
    }
    if s.contains(':') {
        return all_consuming(ipv6)
            .parse(s)
            .map(|(_, addr)| Host::Ip(IpAddr::V6(addr)))
            .map_err(|_| colon_error(s));
    }
    checked_host_name(s).map(|name| Host::Name(name.to_string()))
}

/// What a socket name may look like, for error messages.
const NAME_RULE: &str =
    "a name starts with a letter (of any script: 服务器 is one) or '_' and has only letters, digits, '_' and '-', at most 32 characters";

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

/// A socket name: a Unicode letter or `_`, then up to 31 letters, digits,
/// `_` and `-` (`srv`, `服务器`).
fn socket_name(i: &str) -> IResult<&str, &str> {
    recognize(pair(
        satisfy(is_name_start),
        take_while_m_n(0, 31, is_name_char),
    ))
    .parse(i)
}

/// Why `s` is not a valid socket name.
fn name_problem(s: &str) -> String {
    if s.contains('.') {
        return "dots are reserved for names the shell makes, like srv.1".to_string();
    }
    match s.chars().next() {
        None => return "it is empty".to_string(),
        Some(c) if !is_name_start(c) => {
            return format!("it starts with '{}'", show_char(c));
        }
        Some(_) => {}
    }
    match s.chars().find(|&c| !is_name_char(c)) {
        Some(c) => format!("'{}' is not allowed", show_char(c)),
        None => format!("it is {} characters long", s.chars().count()),
    }
}

/// A socket name given with `as NAME`: a letter or `_`, then letters, digits, `_`, `-`, 32 characters at most. (Dots are reserved for names the shell makes,
/// like srv.1.) Error says what a name may contain.
pub fn name(s: &str) -> Result<&str, String> {
    match all_consuming(socket_name).parse(s) {
        Ok((_, name)) => Ok(name),
        Err(_) => Err(format!(
            "'{s}' is not a valid name: {} ({NAME_RULE})",
            name_problem(s)
        )),
    }
}

// ---------------------------------------------------------------------------
// Error display
// ---------------------------------------------------------------------------

/// The largest char boundary of `line` at or before `at` (clamped to the line).
fn floor_boundary(line: &str, at: usize) -> usize {
    let mut at = at.min(line.len());
    while at > 0 && !line.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The smallest char boundary of `line` at or after `at` (clamped to the line).
fn ceil_boundary(line: &str, at: usize) -> usize {
    let mut at = at.min(line.len());
    while at < line.len() && !line.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// Display column (0-based, in terminal cells, using unicode-width: CJK = 2 cells) of byte offset `at` in `line`.
///
/// An offset past the end counts as the end; an offset inside a character counts as that character's start.
/// A tab counts as one cell (the real width depends on the terminal's tab stops; [`caret`] copies tabs instead).
pub fn column(line: &str, at: usize) -> usize {
    line.get(..floor_boundary(line, at)).unwrap_or("").width()
}

/// Two lines for an error display: the line itself, then spaces and `^` carets under the span
/// (at least one caret; a span at end of line puts one caret just past the last char). Each line prefixed by `indent`.
/// Example: caret("listen 70000", Span{start:7,end:12}, "  ") == "  listen 70000\n         ^^^^^"
///
/// A trailing `\r` / `\n` of `line` is not shown. Tabs before the span are copied into the caret line so the
/// carets line up whatever the tab stops. Out-of-range or reversed spans are clamped, never a panic.
pub fn caret(line: &str, span: Span, indent: &str) -> String {
    let shown = line.trim_end_matches(['\r', '\n']);
    let start = floor_boundary(shown, span.start);
    let end = ceil_boundary(shown, span.end).max(start);
    let before = shown.get(..start).unwrap_or("");
    let marked = shown.get(start..end).unwrap_or("");
    let mut pad = String::new();
    for (n, piece) in before.split('\t').enumerate() {
        if n > 0 {
            pad.push('\t');
        }
        pad.push_str(&" ".repeat(piece.width()));
    }
    let carets = "^".repeat(marked.width().max(1));
    format!("{indent}{shown}\n{indent}{pad}{carets}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // ----- helpers -----

    fn kinds(line: &str) -> Vec<TokenKind> {
        match tokenize(line) {
            Ok(tokens) => tokens.into_iter().map(|t| t.kind).collect(),
            Err(e) => panic!("tokenize({line:?}) failed: {e:?}"),
        }
    }

    fn lex_error(line: &str) -> ParseError {
        match tokenize(line) {
            Ok(tokens) => panic!("tokenize({line:?}) should fail, got {tokens:?}"),
            Err(e) => e,
        }
    }

    fn w(s: &str) -> TokenKind {
        TokenKind::Word(s.to_string())
    }

    fn q(bytes: &[u8]) -> TokenKind {
        TokenKind::Quoted(bytes.to_vec())
    }

    fn span(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The one quoted token of `line`'s bytes.
    fn quoted_bytes(line: &str) -> Vec<u8> {
        match kinds(line).as_slice() {
            [TokenKind::Quoted(bytes)] => bytes.clone(),
            other => panic!("expected one quoted token from {line:?}, got {other:?}"),
        }
    }

    // ----- lexer rules -----

    #[test]
    fn blank_rule_takes_spaces_and_tabs_only() {
        assert_eq!(blank(" \t x"), Ok(("x", " \t ")));
        assert_eq!(blank("x "), Ok(("x ", "")));
    }

    #[test]
    fn comment_rule_takes_the_rest_of_the_line() {
        assert_eq!(comment("# hi \"there"), Ok(("", " hi \"there")));
        assert!(comment("x#").is_err());
    }

    #[test]
    fn hex_pair_rule_reads_two_digits_of_either_case() {
        assert_eq!(hex_pair("fFx"), Ok(("x", 0xff)));
        assert!(hex_pair("f").is_err());
        assert!(hex_pair("g0").is_err());
    }

    #[test]
    fn simple_escape_rule_handles_each_escape() {
        for (text, byte) in [
            ("\\n", b'\n'),
            ("\\r", b'\r'),
            ("\\t", b'\t'),
            ("\\\\", b'\\'),
            ("\\\"", b'"'),
            ("\\'", b'\''),
            ("\\0", 0),
        ] {
            assert_eq!(simple_escape(text), Ok(("", byte)), "{text}");
        }
        assert!(simple_escape("\\q").is_err());
    }

    #[test]
    fn each_escape_inside_a_quoted_string() {
        assert_eq!(quoted_bytes(r#""a\nb""#), b"a\nb");
        assert_eq!(quoted_bytes(r#""\r""#), b"\r");
        assert_eq!(quoted_bytes(r#""\t""#), b"\t");
        assert_eq!(quoted_bytes(r#""\\""#), b"\\");
        assert_eq!(quoted_bytes(r#""\"""#), b"\"");
        assert_eq!(quoted_bytes(r#""\'""#), b"'");
        assert_eq!(quoted_bytes(r#"'\"'"#), b"\"");
        assert_eq!(quoted_bytes(r#"'\''"#), b"'");
        assert_eq!(quoted_bytes(r#""\0""#), b"\0");
        assert_eq!(quoted_bytes(r#""\x41\xff\x00""#), b"A\xff\x00");
        assert_eq!(quoted_bytes(r#""\u{1F600}""#), "\u{1F600}".as_bytes());
    }

    #[test]
    fn hex_escape_rule_makes_any_byte() {
        assert_eq!(hex_escape("\\x41z"), Ok(("z", 0x41)));
        assert_eq!(hex_escape("\\xFf"), Ok(("", 0xff)));
        assert_eq!(hex_escape("\\x80"), Ok(("", 0x80)));
        assert!(matches!(hex_escape("\\n"), Err(nom::Err::Error(_))));
    }

    #[test]
    fn hex_escape_with_too_few_digits_is_an_error_at_the_backslash() {
        let e = lex_error(r#"send "ab\x4" x"#);
        assert_eq!(e.span, span(8, 11));
        assert_eq!(e.message, "\\x needs exactly 2 hex digits, like \\x41");
        let e = lex_error(r#""\xg1""#);
        assert_eq!(e.span, span(1, 3));
    }

    #[test]
    fn unicode_escape_rule_encodes_utf8() {
        assert_eq!(unicode_escape("\\u{41}"), Ok(("", 'A')));
        assert_eq!(unicode_escape("\\u{0}"), Ok(("", '\0')));
        assert_eq!(unicode_escape("\\u{6572}"), Ok(("", '敲')));
        assert_eq!(unicode_escape("\\u{10FFFF}!"), Ok(("!", '\u{10FFFF}')));
        assert_eq!(quoted_bytes(r#""\u{6572}\u{4EE3}""#), "敲代".as_bytes());
    }

    #[test]
    fn unicode_escape_rejects_surrogates_and_values_above_10ffff() {
        let e = lex_error(r#""\u{D800}""#);
        assert_eq!(e.span, span(1, 9));
        assert!(
            e.message.contains("not a valid Unicode character"),
            "{}",
            e.message
        );
        let e = lex_error(r#""\u{110000}""#);
        assert_eq!(e.span, span(1, 11));
        assert!(
            e.message.contains("not a valid Unicode character"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unicode_escape_needs_braces_and_one_to_six_digits() {
        let message = "\\u needs 1 to 6 hex digits in braces, like \\u{1F600}";
        for (line, bad) in [
            (r#""\u41""#, span(1, 5)),
            (r#""\u{}""#, span(1, 5)),
            (r#""\u{1234567}""#, span(1, 12)),
            (r#""\u{41""#, span(1, 6)),
            (r#""\u{zz}""#, span(1, 4)),
        ] {
            let e = lex_error(line);
            assert_eq!(e.message, message, "{line}");
            assert_eq!(e.span, bad, "{line}");
        }
    }

    #[test]
    fn unknown_escape_is_an_error_at_the_backslash_listing_the_escapes() {
        let e = lex_error(r#"send "a\qb""#);
        assert_eq!(e.span, span(7, 9));
        assert_eq!(
            e.message,
            r#"unknown escape '\q' (allowed escapes: \n \r \t \\ \" \' \0 \xNN \u{...})"#
        );
        let e = lex_error("\"\\敲\"");
        assert_eq!(e.span, span(1, 5));
        assert!(
            e.message.starts_with("unknown escape '\\敲'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn quoted_rule_reads_double_and_single_quotes() {
        assert_eq!(quoted("\"a b\" x"), Ok((" x", b"a b".to_vec())));
        assert_eq!(quoted("'it\"s'"), Ok(("", b"it\"s".to_vec())));
        assert_eq!(quoted("\"it's\""), Ok(("", b"it's".to_vec())));
        assert_eq!(quoted("\"\""), Ok(("", Vec::new())));
        assert!(matches!(quoted("x"), Err(nom::Err::Error(_))));
    }

    #[test]
    fn quoted_strings_keep_non_ascii_and_hashes() {
        assert_eq!(kinds("send x \"#\""), vec![w("send"), w("x"), q(b"#")]);
        assert_eq!(
            kinds("send '敲代码 ok'"),
            vec![w("send"), q("敲代码 ok".as_bytes())]
        );
    }

    #[test]
    fn unterminated_string_spans_from_the_quote_to_the_end_of_line() {
        let e = lex_error("send \"abc def");
        assert_eq!(e.message, "unterminated string: expected a closing \"");
        assert_eq!(e.span, span(5, 13));
        let e = lex_error("send 'abc\r\n");
        assert_eq!(e.message, "unterminated string: expected a closing '");
        assert_eq!(e.span, span(5, 9));
    }

    #[test]
    fn backslash_at_the_end_leaves_the_string_unterminated() {
        let e = lex_error("\"abc\\");
        assert_eq!(e.message, "unterminated string: expected a closing \"");
        assert_eq!(e.span, span(0, 5));
        let e = lex_error("\"abc\\\"");
        assert_eq!(e.span, span(0, 6));
    }

    #[test]
    fn closing_quote_must_be_followed_by_a_space() {
        let e = lex_error("\"ab\"cd");
        assert_eq!(e.message, "expected a space after the closing quote");
        assert_eq!(e.span, span(4, 5));
        let e = lex_error("'ab'敲");
        assert_eq!(e.span, span(4, 7));
        assert_eq!(lex_error("\"ab\"#c").span, span(4, 5));
        assert_eq!(kinds("\"ab\"\tcd"), vec![q(b"ab"), w("cd")]);
    }

    #[test]
    fn end_of_quoted_rule_accepts_blank_or_end() {
        assert_eq!(end_of_quoted(""), Ok(("", ())));
        assert_eq!(end_of_quoted(" x"), Ok((" x", ())));
        assert!(matches!(end_of_quoted("x"), Err(nom::Err::Failure(_))));
    }

    #[test]
    fn hex_literal_rule_decodes_bytes_of_either_case() {
        assert_eq!(hex_literal("hex:48656c6C6F"), Ok(("", b"Hello".to_vec())));
        assert_eq!(hex_literal("hex:00ff x"), Ok((" x", vec![0, 0xff])));
        assert_eq!(hex_literal("hex:"), Ok(("", Vec::new())));
        assert!(matches!(hex_literal("hexagon"), Err(nom::Err::Error(_))));
    }

    #[test]
    fn empty_hex_literal_is_zero_bytes() {
        assert_eq!(
            kinds("send hex:"),
            vec![w("send"), TokenKind::Hex(Vec::new())]
        );
    }

    #[test]
    fn hex_literal_bad_digit_points_at_the_digit() {
        let e = lex_error("send hex:41z2");
        assert_eq!(
            e.message,
            "expected hex digits (0-9, a-f) after hex:, found 'z'"
        );
        assert_eq!(e.span, span(11, 12));
        let e = lex_error("hex:4敲");
        assert_eq!(
            e.message,
            "expected hex digits (0-9, a-f) after hex:, found '敲'"
        );
        assert_eq!(e.span, span(5, 8));
        assert_eq!(lex_error("hex:\"41\"").span, span(4, 5));
    }

    #[test]
    fn hex_literal_with_odd_digit_count_is_an_error_on_the_digits() {
        let e = lex_error("send hex:414 x");
        assert_eq!(e.message, "hex: needs an even number of digits");
        assert_eq!(e.span, span(9, 12));
    }

    #[test]
    fn hex_prefix_is_lowercase_only() {
        assert_eq!(kinds("HEX:41 Hex:41"), vec![w("HEX:41"), w("Hex:41")]);
    }

    #[test]
    fn word_rule_takes_non_blank_runs() {
        assert_eq!(word("a#b c"), Ok((" c", "a#b")));
        assert!(word("#x").is_err());
        assert!(word("\"x").is_err());
        assert!(word("'x").is_err());
        assert!(word(" x").is_err());
    }

    #[test]
    fn words_may_contain_slashes_colons_brackets_dots_and_quotes() {
        assert_eq!(
            kinds("expect /re+gex/ ::1 [::1] srv.1 /tmp/x a\"b' 敲代码 hexagon"),
            vec![
                w("expect"),
                w("/re+gex/"),
                w("::1"),
                w("[::1]"),
                w("srv.1"),
                w("/tmp/x"),
                w("a\"b'"),
                w("敲代码"),
                w("hexagon"),
            ]
        );
    }

    #[test]
    fn token_kind_rule_picks_quoted_hex_or_word() {
        assert_eq!(token_kind("'a'"), Ok(("", q(b"a"))));
        assert_eq!(token_kind("hex:41"), Ok(("", TokenKind::Hex(vec![0x41]))));
        assert_eq!(token_kind("a'"), Ok(("", w("a'"))));
    }

    #[test]
    fn located_token_rule_reports_lengths_around_the_token() {
        let (rest, located) = located_token("ab cd").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rest, " cd");
        assert_eq!(
            located,
            Located {
                kind: w("ab"),
                len_before: 5,
                len_after: 3
            }
        );
    }

    #[test]
    fn tokens_rule_reads_a_whole_line() {
        let (rest, located) = tokens(" a  b # c").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(rest, "");
        assert_eq!(located.len(), 2);
    }

    #[test]
    fn tokenize_gives_spans_for_each_token() {
        let tokens =
            tokenize("send  \"hi there\"\thex:4142 敲 # note").unwrap_or_else(|e| panic!("{e:?}"));
        let spans: Vec<Span> = tokens.iter().map(|t| t.span).collect();
        assert_eq!(
            spans,
            vec![span(0, 4), span(6, 16), span(17, 25), span(26, 29)]
        );
        assert_eq!(tokens[1].kind, q(b"hi there"));
        assert_eq!(tokens[2].kind, TokenKind::Hex(b"AB".to_vec()));
    }

    #[test]
    fn blank_and_comment_only_lines_give_no_tokens() {
        for line in [
            "",
            "   ",
            "\t",
            "\n",
            "\r\n",
            "# just a comment",
            "   # indented \"comment",
            "#",
        ] {
            assert_eq!(tokenize(line), Ok(vec![]), "{line:?}");
        }
    }

    #[test]
    fn hash_starts_a_comment_only_at_the_start_of_a_token() {
        assert_eq!(kinds("a#b #c d"), vec![w("a#b")]);
        assert_eq!(kinds("a #"), vec![w("a")]);
    }

    #[test]
    fn trailing_newline_and_carriage_return_are_ignored() {
        assert_eq!(kinds("close a\r\n"), vec![w("close"), w("a")]);
        assert_eq!(kinds("close a\n"), vec![w("close"), w("a")]);
        assert_eq!(kinds("close 'a'\r"), vec![w("close"), q(b"a")]);
    }

    #[test]
    fn token_bytes_and_word_accessors() {
        let tokens = tokenize("敲 \"\\xff\" hex:00").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(tokens[0].bytes(), "敲".as_bytes());
        assert_eq!(tokens[0].word(), Some("敲"));
        assert_eq!(tokens[1].bytes(), vec![0xff]);
        assert_eq!(tokens[1].word(), None);
        assert_eq!(tokens[2].bytes(), vec![0]);
        assert_eq!(tokens[2].word(), None);
    }

    // ----- durations -----

    #[test]
    fn duration_accepts_every_unit() {
        assert_eq!(duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn duration_accepts_fractions_and_leading_zeros() {
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("0.25m"), Ok(Duration::from_secs(15)));
        assert_eq!(duration("1.5us"), Ok(Duration::from_nanos(1500)));
        assert_eq!(duration("007ms"), Ok(Duration::from_millis(7)));
        assert_eq!(
            duration("0.1234567890123456789s"),
            Ok(Duration::from_nanos(123_456_789))
        );
    }

    #[test]
    fn duration_rule_helpers_parse_number_and_unit() {
        assert_eq!(decimal("1.5s"), Ok(("s", ("1", Some("5")))));
        assert_eq!(decimal("1.s"), Ok((".s", ("1", None))));
        assert_eq!(duration_unit("ms"), Ok(("", 1_000_000)));
        assert_eq!(duration_unit("m"), Ok(("", 60_000_000_000)));
        assert_eq!(duration_literal("3us"), Ok(("", (("3", None), 1_000))));
    }

    #[test]
    fn duration_without_a_unit_says_so() {
        assert_eq!(
            duration("250"),
            Err("expected a duration like 250ms, 2s or 1m, found '250' with no unit (use us, ms, s, m or h)".into())
        );
    }

    #[test]
    fn duration_with_an_unknown_unit_names_it() {
        assert_eq!(
            duration("5sec"),
            Err("expected a duration like 250ms, 2s or 1m, found '5sec': 'sec' is not a unit (use us, ms, s, m or h)"
                .into())
        );
        assert!(duration("5S").is_err());
    }

    #[test]
    fn duration_garbage_says_what_was_expected() {
        for s in ["", "abc", "-1s", "1.s", ".5s", "1 s", "s"] {
            let e = duration(s).expect_err(s);
            assert!(
                e.starts_with("expected a duration like 250ms, 2s or 1m"),
                "{s}: {e}"
            );
        }
    }

    #[test]
    fn duration_over_one_day_or_overflowing_is_too_long() {
        assert_eq!(duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(duration("1440m"), Ok(Duration::from_secs(86_400)));
        assert_eq!(
            duration("86401s"),
            Err("duration '86401s' is too long: the longest allowed is 1 day (24h)".into())
        );
        assert!(duration("25h").is_err());
        let huge = format!("{}h", "9".repeat(60));
        assert!(duration(&huge).is_err_and(|e| e.contains("too long")));
        let long_zeros = format!("{}1s", "0".repeat(60));
        assert_eq!(duration(&long_zeros), Ok(Duration::from_secs(1)));
    }

    // ----- sizes -----

    #[test]
    fn size_accepts_plain_numbers_and_binary_units() {
        assert_eq!(size("512"), Ok(512));
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("512B"), Ok(512));
        assert_eq!(size("64K"), Ok(64 * 1024));
        assert_eq!(size("64k"), Ok(64 * 1024));
        assert_eq!(size("64KiB"), Ok(64 * 1024));
        assert_eq!(size("64kib"), Ok(64 * 1024));
        assert_eq!(size("1M"), Ok(1 << 20));
        assert_eq!(size("1mib"), Ok(1 << 20));
        assert_eq!(size("2G"), Ok(2 << 30));
        assert_eq!(size("2GiB"), Ok(2 << 30));
    }

    #[test]
    fn size_rule_helpers_parse_digits_and_unit() {
        assert_eq!(size_unit("KiB"), Ok(("", 1024)));
        assert_eq!(size_unit("kB"), Ok(("B", 1024)));
        assert_eq!(size_literal("8m"), Ok(("", ("8", Some(1 << 20)))));
        assert_eq!(size_literal("8"), Ok(("", ("8", None))));
    }

    #[test]
    fn size_errors_say_what_was_expected() {
        assert_eq!(
            size("abc"),
            Err("expected a size like 512, 64K or 1M, found 'abc'".into())
        );
        assert_eq!(
            size(""),
            Err("expected a size like 512, 64K or 1M, found ''".into())
        );
        assert_eq!(
            size("64KB"),
            Err("expected a size like 512, 64K or 1M, found '64KB': 'KB' is not a unit (use K, M or G (or KiB, MiB, GiB); K = 1024)".into())
        );
        assert!(size("1.5K").is_err_and(|e| e.contains("whole numbers")));
        assert!(size("-1").is_err());
    }

    #[test]
    fn size_overflow_is_an_error() {
        assert_eq!(size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            size("18446744073709551616"),
            Err("size '18446744073709551616' is too large (it must be less than 16 EiB)".into())
        );
        assert!(size("17179869184G").is_err());
        assert!(size(&"9".repeat(100)).is_err());
    }

    // ----- ports -----

    #[test]
    fn port_accepts_the_whole_range() {
        assert_eq!(port("0"), Ok(0));
        assert_eq!(port("80"), Ok(80));
        assert_eq!(port("080"), Ok(80));
        assert_eq!(port("65535"), Ok(65535));
    }

    #[test]
    fn port_number_rule_reads_an_optional_minus_and_digits() {
        assert_eq!(port_number("-12x"), Ok(("x", (Some('-'), "12"))));
        assert_eq!(port_number("12"), Ok(("", (None, "12"))));
    }

    #[test]
    fn port_out_of_range_says_so() {
        assert_eq!(
            port("65536"),
            Err("port 65536 is out of range (0-65535)".into())
        );
        assert_eq!(
            port("70000"),
            Err("port 70000 is out of range (0-65535)".into())
        );
        assert_eq!(port("-1"), Err("port -1 is out of range (0-65535)".into()));
        let huge = "9".repeat(50);
        assert_eq!(
            port(&huge),
            Err(format!("port {huge} is out of range (0-65535)"))
        );
    }

    #[test]
    fn port_that_is_not_a_number_says_what_was_expected() {
        assert_eq!(
            port("abc"),
            Err("expected a port number (0-65535), found 'abc'".into())
        );
        assert_eq!(
            port(""),
            Err("expected a port number (0-65535), found ''".into())
        );
        assert_eq!(
            port("80x"),
            Err("expected a port number (0-65535), found '80x'".into())
        );
        assert_eq!(
            port("+80"),
            Err("expected a port number (0-65535), found '+80'".into())
        );
        assert_eq!(
            port("-0"),
            Err("expected a port number (0-65535), found '-0'".into())
        );
    }

    // ----- hosts -----

    fn ip(s: &str) -> Result<Host, String> {
        Ok(Host::Ip(s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))))
    }

    #[test]
    fn host_accepts_ipv4() {
        assert_eq!(host("127.0.0.1"), ip("127.0.0.1"));
        assert_eq!(host("0.0.0.0"), ip("0.0.0.0"));
        assert_eq!(host("255.255.255.255"), ip("255.255.255.255"));
    }

    #[test]
    fn host_accepts_ipv6_with_or_without_brackets() {
        assert_eq!(host("::1"), ip("::1"));
        assert_eq!(host("[::1]"), ip("::1"));
        assert_eq!(host("fe80::1:2"), ip("fe80::1:2"));
        assert_eq!(host("[2001:DB8::1]"), ip("2001:db8::1"));
        assert_eq!(host("::ffff:10.0.0.1"), ip("::ffff:10.0.0.1")); // classification only, never a target
    }

    #[test]
    fn host_accepts_names() {
        for s in [
            "localhost",
            "example.com",
            "a-b.c0",
            "x",
            "A1.b2-c3.D4",
            "1.2.3.example",
        ] {
            assert_eq!(host(s), Ok(Host::Name(s.to_string())), "{s}");
        }
        let longest = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(longest.len(), 253);
        assert_eq!(host(&longest), Ok(Host::Name(longest.clone())));
    }

    #[test]
    fn host_rule_helpers() {
        assert_eq!(ipv4_parts("1..2"), Ok(("", vec!["1", "", "2"])));
        assert!(ipv6("::1]").is_ok_and(|(rest, a)| rest == "]" && a == Ipv6Addr::LOCALHOST));
        assert_eq!(bracketed_ipv6("[::]"), Ok(("", Ipv6Addr::UNSPECIFIED)));
        assert_eq!(bracketed_text("[x]:1"), Ok((":1", "x")));
        assert_eq!(host_and_port("a:80"), Ok(("", ("a", "80"))));
        assert_eq!(host_labels("a.b-"), Ok(("", vec!["a", "b-"])));
    }

    #[test]
    fn host_invalid_ipv4_explains_why() {
        assert_eq!(
            host("300.1.1.1"),
            Err("'300.1.1.1' is not a valid IPv4 address: 300 is more than 255".into())
        );
        assert_eq!(
            host("1.2.3"),
            Err("'1.2.3' is not a valid IPv4 address: it needs 4 numbers separated by dots, like 127.0.0.1".into())
        );
        assert_eq!(
            host("1.2.3.4.5"),
            Err("'1.2.3.4.5' is not a valid IPv4 address: it needs 4 numbers separated by dots, like 127.0.0.1".into())
        );
        assert_eq!(
            host("1..2.3"),
            Err(
                "'1..2.3' is not a valid IPv4 address: a number is missing between the dots".into()
            )
        );
        assert_eq!(
            host("01.2.3.4"),
            Err("'01.2.3.4' is not a valid IPv4 address: 01 has a leading zero".into())
        );
        assert!(host("123").is_err_and(|e| e.contains("not a valid IPv4 address")));
    }

    #[test]
    fn host_invalid_ipv6_explains_why() {
        assert_eq!(
            host("1:::2"),
            Err("'1:::2' is not a valid IPv6 address".into())
        );
        assert_eq!(
            host("[1.2.3.4]"),
            Err("'[1.2.3.4]' is not a valid IPv6 address in brackets, like [::1]".into())
        );
        assert_eq!(
            host("[::1"),
            Err("'[::1' is not a valid IPv6 address in brackets, like [::1]".into())
        );
        assert!(host("fe80::1%eth0").is_err_and(|e| e.contains("not a valid IPv6 address")));
    }

    #[test]
    fn host_with_a_port_attached_says_to_separate_them() {
        let hint = "looks like host:port; give the host and the port as separate words";
        for s in ["localhost:8080", "127.0.0.1:80", "[::1]:80"] {
            assert!(host(s).is_err_and(|e| e.contains(hint)), "{s}");
        }
    }

    #[test]
    fn host_invalid_names_explain_why() {
        assert_eq!(
            host("-a.com"),
            Err("'-a.com' is not a valid host name: the part '-a' starts with '-'".into())
        );
        assert_eq!(
            host("a-.com"),
            Err("'a-.com' is not a valid host name: the part 'a-' ends with '-'".into())
        );
        assert!(host("a..b").is_err_and(|e| e.contains("empty part")));
        assert!(host("a.").is_err_and(|e| e.contains("empty part")));
        assert!(host(&"a".repeat(64)).is_err_and(|e| e.contains("the most is 63")));
        let too_long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62),
        ]
        .join(".");
        assert!(host(&too_long).is_err_and(|e| e.contains("the most is 253")));
    }

    #[test]
    fn host_that_is_not_anything_gets_the_general_message() {
        let general =
            "expected a host (an IP address like 127.0.0.1 or ::1, or a name like localhost)";
        assert_eq!(host(""), Err(general.to_string()));
        assert_eq!(
            host("foo_bar"),
            Err(format!(
                "{general}, found 'foo_bar': '_' can't be in a host name"
            ))
        );
        assert_eq!(
            host("/tmp/x"),
            Err(format!(
                "{general}, found '/tmp/x': '/' can't be in a host name"
            ))
        );
        assert!(host("敲代码").is_err_and(|e| e.starts_with(general)));
    }

    // ----- names -----

    #[test]
    fn name_accepts_letters_digits_underscore_dash() {
        let longest = format!("a{}", "b".repeat(31));
        for s in [
            "a",
            "_",
            "srv",
            "_x1",
            "client-2",
            "A_b-9",
            longest.as_str(),
        ] {
            assert_eq!(name(s), Ok(s), "{s}");
        }
    }

    /// Issue 14: a name may be Chinese (any Unicode letter starts one);
    /// 32 characters, not bytes.
    #[test]
    fn chinese_names_are_names() {
        for s in ["服务器", "客户端_1", "预留-a", "σ", "_服务器"] {
            assert_eq!(name(s), Ok(s), "{s}");
        }
        let long = "服".repeat(33);
        assert!(name(&long).is_err());
        assert!(name(&long[..32 * 3]).is_ok());
        assert!(name("1服务器").is_err() && name("服务器.1").is_err() && name("服 务").is_err());
    }

    #[test]
    fn socket_name_rule_stops_after_32_characters() {
        let long = "a".repeat(40);
        assert_eq!(socket_name(&long), Ok((&long[32..], &long[..32])));
        assert!(socket_name("1a").is_err());
    }

    #[test]
    fn name_errors_say_what_a_name_may_contain() {
        let rule = "(a name starts with a letter (of any script: 服务器 is one) or '_' and has only letters, digits, '_' and '-', at most 32 characters)";
        assert_eq!(
            name(""),
            Err(format!("'' is not a valid name: it is empty {rule}"))
        );
        assert_eq!(
            name("1abc"),
            Err(format!(
                "'1abc' is not a valid name: it starts with '1' {rule}"
            ))
        );
        assert_eq!(
            name("-x"),
            Err(format!(
                "'-x' is not a valid name: it starts with '-' {rule}"
            ))
        );
        assert_eq!(
            name("srv.1"),
            Err(format!("'srv.1' is not a valid name: dots are reserved for names the shell makes, like srv.1 {rule}"))
        );
        assert_eq!(
            name("a b"),
            Err(format!(
                "'a b' is not a valid name: ' ' is not allowed {rule}"
            ))
        );
        // Any letter is a letter (issue 14: 服务器, café); punctuation is not.
        assert_eq!(name("café"), Ok("café"));
        assert_eq!(
            name("a/b"),
            Err(format!(
                "'a/b' is not a valid name: '/' is not allowed {rule}"
            ))
        );
        let long = "a".repeat(33);
        assert_eq!(
            name(&long),
            Err(format!(
                "'{long}' is not a valid name: it is 33 characters long {rule}"
            ))
        );
    }

    // ----- column and caret -----

    #[test]
    fn column_counts_cells_with_cjk_as_two() {
        assert_eq!(column("listen 70000", 7), 7);
        assert_eq!(column("send 敲代码 x", 5), 5);
        assert_eq!(column("send 敲代码 x", 14), 11);
        assert_eq!(column("send 敲代码 x", 15), 12);
        assert_eq!(column("😀x", 4), 2);
    }

    #[test]
    fn column_counts_a_tab_as_one_cell() {
        assert_eq!(column("a\tb", 2), 2);
    }

    #[test]
    fn column_clamps_offsets_past_the_end_or_inside_a_character() {
        assert_eq!(column("abc", 99), 3);
        assert_eq!(column("敲x", 1), 0);
        assert_eq!(column("敲x", 2), 0);
        assert_eq!(column("", 5), 0);
    }

    #[test]
    fn caret_marks_a_span_in_the_middle_of_the_line() {
        assert_eq!(
            caret("listen 70000", span(7, 12), "  "),
            "  listen 70000\n         ^^^^^"
        );
        assert_eq!(caret("a bc d", span(2, 4), ""), "a bc d\n  ^^");
    }

    #[test]
    fn caret_at_end_of_line_puts_one_caret_past_the_last_char() {
        assert_eq!(
            caret("send \"abc", span(9, 9), ""),
            "send \"abc\n         ^"
        );
        assert_eq!(caret("send\n", span(4, 4), "> "), "> send\n>     ^");
    }

    #[test]
    fn caret_under_cjk_uses_two_cells_per_character() {
        assert_eq!(
            caret("send 敲代码 x", span(5, 14), ""),
            "send 敲代码 x\n     ^^^^^^"
        );
        assert_eq!(caret("敲 'x", span(4, 6), ""), "敲 'x\n   ^^");
    }

    #[test]
    fn caret_copies_tabs_so_carets_line_up() {
        assert_eq!(caret("a\tbc", span(2, 4), ""), "a\tbc\n \t^^");
    }

    #[test]
    fn caret_clamps_bad_spans_and_shows_at_least_one_caret() {
        assert_eq!(caret("abc", span(1, 1), ""), "abc\n ^");
        assert_eq!(caret("abc", span(2, 1), ""), "abc\n  ^");
        assert_eq!(caret("abc", span(10, 20), ""), "abc\n   ^");
        assert_eq!(caret("敲", span(1, 2), ""), "敲\n^^");
    }

    #[test]
    fn caret_works_with_tokenize_error_spans() {
        let line = "send \"ab\\qc\"";
        let e = lex_error(line);
        assert_eq!(caret(line, e.span, ""), "send \"ab\\qc\"\n        ^^");
    }

    // ----- property tests -----

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Bits of lines that are likely to hit edge cases of the lexer.
        const FRAGMENTS: &[&str] = &[
            "\"", "'", "\\", "\\x", "\\u{", "}", "{", "hex:", "#", " ", "\t", "\r", "\n", "a", "x",
            "u", "0", "4", "f", "z", "敲", "代码", "é", "😀", "\u{301}", "\\n", "\\\"", "\\'",
            "\\\\", "ff", "10FFFF", "D800",
        ];

        fn tricky_line() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                3 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
                1 => any::<char>().prop_map(String::from),
            ];
            prop::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
        }

        fn any_line() -> impl Strategy<Value = String> {
            prop_oneof![any::<String>(), tricky_line()]
        }

        /// A quoted string that should lex to exactly `bytes`, using all kinds of escapes.
        fn encode_quoted(bytes: &[u8], quote: char) -> String {
            let mut out = String::new();
            out.push(quote);
            for chunk in bytes.utf8_chunks() {
                for c in chunk.valid().chars() {
                    match c {
                        '"' | '\'' | '\\' => {
                            out.push('\\');
                            out.push(c);
                        }
                        '\n' => out.push_str("\\n"),
                        c if c.is_alphabetic() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                        c => out.push(c),
                    }
                }
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02X}"));
                }
            }
            out.push(quote);
            out
        }

        fn check_span(line: &str, span: Span) -> Result<(), TestCaseError> {
            let body_len = line.trim_end_matches(['\r', '\n']).len();
            prop_assert!(span.start <= span.end, "{span:?}");
            prop_assert!(span.end <= body_len, "{span:?} past {body_len}");
            prop_assert!(
                line.is_char_boundary(span.start) && line.is_char_boundary(span.end),
                "{span:?}"
            );
            Ok(())
        }

        proptest! {
            #[test]
            fn tokenize_never_panics_and_spans_are_sane(line in any_line()) {
                match tokenize(&line) {
                    Ok(tokens) => {
                        let mut previous_end = 0;
                        for (n, token) in tokens.iter().enumerate() {
                            check_span(&line, token.span)?;
                            prop_assert!(token.span.start < token.span.end, "empty token {token:?}");
                            if n > 0 {
                                prop_assert!(token.span.start > previous_end, "overlap at {token:?}");
                            }
                            previous_end = token.span.end;
                            if let TokenKind::Word(w) = &token.kind {
                                prop_assert_eq!(line.get(token.span.start..token.span.end), Some(w.as_str()));
                            }
                        }
                    }
                    Err(e) => {
                        check_span(&line, e.span)?;
                        prop_assert!(!e.message.is_empty());
                    }
                }
            }

            #[test]
            fn value_parsers_never_panic(s in any_line()) {
                let _ = duration(&s);
                let _ = size(&s);
                let _ = port(&s);
                let _ = host(&s);
                let _ = name(&s);
            }

            /// What fuzz/fuzz_targets/lexer.rs checks on millions of lines: a
            /// trailing newline changes nothing; only blanks lie between tokens
            /// and only blanks or a comment after them; each token's text lexes
            /// alone to the same token; the texts joined by one space, with or
            /// without a comment after them, lex to the same tokens.
            #[test]
            fn fuzz_lexer_tokens_relex_alone_and_joined(line in any_line()) {
                let body = line.trim_end_matches(['\r', '\n']);
                let got = tokenize(&line);
                prop_assert_eq!(&tokenize(&format!("{body}\n")), &got);
                prop_assert_eq!(&tokenize(&format!("{body}\r\n")), &got);
                let Ok(tokens) = got else { return Ok(()) };
                let mut previous_end = 0;
                for (n, token) in tokens.iter().enumerate() {
                    let text = &line[token.span.start..token.span.end];
                    let gap = &line[previous_end..token.span.start];
                    prop_assert!(gap.chars().all(is_blank), "gap {:?}", gap);
                    prop_assert!(n == 0 || !gap.is_empty(), "no blank before {:?}", token);
                    previous_end = token.span.end;
                    let alone = tokenize(&format!("{text} ")).map_err(|e| TestCaseError::fail(format!("{text:?}: {e:?}")))?;
                    prop_assert_eq!(alone.len(), 1);
                    prop_assert_eq!(&alone[0].kind, &token.kind);
                    prop_assert_eq!(alone[0].span, Span { start: 0, end: text.len() });
                }
                let tail = body[previous_end..].trim_start_matches(is_blank);
                prop_assert!(tail.is_empty() || tail.starts_with('#'), "tail {:?}", tail);
                let kinds: Vec<TokenKind> = tokens.iter().map(|t| t.kind.clone()).collect();
                let joined = tokens.iter().map(|t| &line[t.span.start..t.span.end]).collect::<Vec<_>>().join(" ") + " ";
                for again in [joined.clone(), format!("{joined}\t# x \"'")] {
                    let relexed: Vec<TokenKind> = tokenize(&again).map_err(|e| TestCaseError::fail(format!("{again:?}: {e:?}")))?
                        .into_iter().map(|t| t.kind).collect();
                    prop_assert_eq!(&relexed, &kinds);
                }
            }

            /// What fuzz/fuzz_targets/lexer.rs checks of the value parsers:
            /// what they accept, printed back, parses to the same value.
            #[test]
            fn fuzz_lexer_accepted_values_round_trip(s in prop_oneof![
                any_line(),
                "[0-9]{1,6}(\\.[0-9]{1,14})?(us|ms|s|m|h|k|K|KiB|M|g|B)?",
                "-?0*[0-9]{1,6}",
                "[0-9a-fA-F:.\\[\\]]{1,20}",
                "[A-Za-z0-9_.-]{1,40}",
            ]) {
                if let Ok(d) = duration(&s) {
                    prop_assert!(d <= Duration::from_secs(24 * 3600));
                }
                if let Ok(n) = size(&s) {
                    prop_assert_eq!(size(&n.to_string()), Ok(n));
                }
                if let Ok(p) = port(&s) {
                    prop_assert_eq!(port(&p.to_string()), Ok(p));
                    let digits = s.trim_start_matches('0');
                    prop_assert!(digits == p.to_string() || (p == 0 && digits.is_empty()));
                }
                match host(&s) {
                    Ok(Host::Ip(addr)) => {
                        prop_assert_eq!(host(&addr.to_string()), Ok(Host::Ip(addr)));
                    }
                    Ok(Host::Name(n)) => {
                        prop_assert_eq!(&n, &s);
                        prop_assert!(n.len() <= 253);
                    }
                    Err(e) => prop_assert!(!e.is_empty()),
                }
                if let Ok(n) = name(&s) {
                    prop_assert_eq!(n, s.as_str());
                    prop_assert!((1..=32).contains(&n.len()));
                }
            }

            #[test]
            fn caret_and_column_never_panic(line in any_line(), a in 0usize..200, b in 0usize..200, indent in "[ >]{0,3}") {
                let len = line.len();
                let span = Span { start: a.min(len), end: b.min(len) };
                let shown = caret(&line, span, &indent);
                prop_assert!(shown.contains('^'));
                prop_assert!(shown.starts_with(indent.as_str()));
                let _ = column(&line, a);
                let _ = caret(&line, Span { start: a, end: b }, "");
            }

            #[test]
            fn caret_of_any_error_span_has_carets(line in tricky_line()) {
                if let Err(e) = tokenize(&line) {
                    let shown = caret(&line, e.span, "");
                    prop_assert!(shown.ends_with('^'));
                }
            }

            #[test]
            fn quoted_strings_round_trip_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..40), single in any::<bool>()) {
                let encoded = encode_quoted(&bytes, if single { '\'' } else { '"' });
                let line = format!("send {encoded} # done");
                let tokens = tokenize(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e:?}")))?;
                prop_assert_eq!(tokens.len(), 2);
                prop_assert_eq!(&tokens[1].kind, &TokenKind::Quoted(bytes));
                prop_assert_eq!(tokens[1].span, Span { start: 5, end: 5 + encoded.len() });
            }

            #[test]
            fn quoted_strings_round_trip_any_text(text in any::<String>()) {
                let encoded = encode_quoted(text.as_bytes(), '"');
                prop_assert_eq!(tokenize(&encoded).map(|t| t.into_iter().map(|t| t.kind).collect::<Vec<_>>()),
                    Ok(vec![TokenKind::Quoted(text.into_bytes())]));
            }

            #[test]
            fn hex_literals_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..40), upper in any::<bool>()) {
                let digits: String = bytes.iter().map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") }).collect();
                let kinds: Vec<TokenKind> = tokenize(&format!("hex:{digits}")).map_err(|e| TestCaseError::fail(format!("{e:?}")))?
                    .into_iter().map(|t| t.kind).collect();
                prop_assert_eq!(kinds, vec![TokenKind::Hex(bytes)]);
            }

            #[test]
            fn words_separated_by_blanks_come_back(words in prop::collection::vec("[^ \t\r\n#\"']\\PC{0,8}", 0..6), sep in "[ \t]{1,3}") {
                let words: Vec<String> = words.into_iter().filter(|w| !w.contains([' ', '\t']) && !w.starts_with("hex:")).collect();
                let line = words.join(&sep);
                let got: Vec<String> = tokenize(&line).map_err(|e| TestCaseError::fail(format!("{line:?}: {e:?}")))?
                    .iter().filter_map(|t| t.word().map(str::to_string)).collect();
                prop_assert_eq!(got, words);
            }

            #[test]
            fn every_port_round_trips(p in any::<u16>()) {
                prop_assert_eq!(port(&p.to_string()), Ok(p));
            }

            #[test]
            fn ports_above_65535_are_out_of_range(p in 65536u64..) {
                prop_assert_eq!(port(&p.to_string()), Err(format!("port {p} is out of range (0-65535)")));
            }

            #[test]
            fn every_size_in_bytes_round_trips(n in any::<u64>()) {
                prop_assert_eq!(size(&n.to_string()), Ok(n));
                prop_assert_eq!(size(&format!("{}K", n >> 10)), Ok((n >> 10) << 10));
            }

            #[test]
            fn every_ip_address_round_trips(v4 in any::<[u8; 4]>(), v6 in any::<u128>()) {
                let v4 = Ipv4Addr::from(v4);
                prop_assert_eq!(host(&v4.to_string()), Ok(Host::Ip(IpAddr::V4(v4))));
                let v6 = Ipv6Addr::from(v6);
                prop_assert_eq!(host(&v6.to_string()), Ok(Host::Ip(IpAddr::V6(v6))));
                prop_assert_eq!(host(&format!("[{v6}]")), Ok(Host::Ip(IpAddr::V6(v6))));
            }

            #[test]
            fn millisecond_durations_round_trip(ms in 0u64..=86_400_000) {
                prop_assert_eq!(duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
            }

            #[test]
            fn valid_names_are_accepted(s in "[A-Za-z_][A-Za-z0-9_-]{0,31}") {
                prop_assert_eq!(name(&s), Ok(s.as_str()));
            }
        }
    }
}
