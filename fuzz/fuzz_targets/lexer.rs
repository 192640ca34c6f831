#![no_main]
//! The shell's command lexer and value parsers (`shell/parse.rs`) on any
//! line. See fuzz/README.md; `shell/parse.rs`'s proptests check the same.

#[allow(dead_code)]
#[path = "../../shell/parse.rs"]
mod parse;

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use parse::{caret, column, duration, host, name, port, size, tokenize, Host, Span, TokenKind};

// Input: the line, as UTF-8 (other bytes are replaced, as a line read from a
// script would be refused before it got here).
fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    lexer(&line);
    values(&line);
    if let Ok(tokens) = tokenize(&line) {
        for word in tokens.iter().filter_map(|t| t.word()) {
            values(word);
        }
    }
});

/// A span is ordered, within the line (less its trailing CR/LF), on
/// character boundaries.
fn sane(line: &str, span: Span) {
    let body_len = line.trim_end_matches(['\r', '\n']).len();
    assert!(span.start <= span.end, "{span:?}");
    assert!(span.end <= body_len, "{span:?} past {body_len}");
    assert!(line.is_char_boundary(span.start) && line.is_char_boundary(span.end));
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn lexer(line: &str) {
    let body = line.trim_end_matches(['\r', '\n']);
    let got = tokenize(line);
    // A trailing newline changes nothing.
    assert_eq!(tokenize(&format!("{body}\n")), got);
    assert_eq!(tokenize(&format!("{body}\r\n")), got);
    match &got {
        Ok(tokens) => {
            let mut previous_end = 0;
            for (n, token) in tokens.iter().enumerate() {
                sane(line, token.span);
                let text = &line[token.span.start..token.span.end];
                assert!(!text.is_empty(), "empty token {token:?}");
                // Between tokens: blanks only, at least one.
                let gap = &line[previous_end..token.span.start];
                assert!(gap.chars().all(is_blank), "gap {gap:?}");
                assert!(n == 0 || !gap.is_empty(), "no blank before {token:?}");
                previous_end = token.span.end;
                match &token.kind {
                    TokenKind::Word(w) => {
                        assert_eq!(text, w);
                        assert!(!w.starts_with(['#', '"', '\'']) && !w.starts_with("hex:"));
                        assert!(!w.contains([' ', '\t']));
                    }
                    TokenKind::Quoted(_) => {
                        let quote = text.chars().next().unwrap();
                        assert!(quote == '"' || quote == '\'');
                        assert!(text.len() >= 2 && text.ends_with(quote), "{text:?}");
                    }
                    TokenKind::Hex(bytes) => {
                        assert!(text.starts_with("hex:"));
                        assert_eq!(text.len(), 4 + 2 * bytes.len());
                    }
                }
                // A token's text alone lexes to the same token (a blank after
                // it keeps a CR or LF at its end from being taken for the
                // line's end).
                let alone = tokenize(&format!("{text} ")).expect("a token's text lexes alone");
                assert_eq!(alone.len(), 1, "{text:?}");
                assert_eq!(alone[0].kind, token.kind);
                assert_eq!(
                    alone[0].span,
                    Span {
                        start: 0,
                        end: text.len()
                    }
                );
                assert!(!token.bytes().is_empty() || !matches!(token.kind, TokenKind::Word(_)));
            }
            // After the last token: blanks, then nothing or a comment.
            let tail = body[previous_end..].trim_start_matches(is_blank);
            assert!(tail.is_empty() || tail.starts_with('#'), "tail {tail:?}");
            // The tokens' texts, joined by one space, lex to the same tokens;
            // a comment after them changes nothing.
            let texts: Vec<&str> = tokens
                .iter()
                .map(|t| &line[t.span.start..t.span.end])
                .collect();
            let joined = texts.join(" ") + " ";
            let kinds = |r: Result<Vec<parse::Token>, parse::ParseError>| {
                r.map(|t| t.into_iter().map(|t| t.kind).collect::<Vec<_>>())
            };
            let want = kinds(got.clone());
            assert_eq!(kinds(tokenize(&joined)), want, "{joined:?}");
            assert_eq!(kinds(tokenize(&format!("{joined}\t# x \"'"))), want);
        }
        Err(e) => {
            sane(line, e.span);
            assert!(!e.message.is_empty());
            assert!(caret(line, e.span, "  ").ends_with('^'));
            let _ = column(line, e.span.start);
        }
    }
}

fn values(s: &str) {
    match duration(s) {
        Ok(d) => {
            assert!(d.as_secs() <= 24 * 3600 && (d.as_secs() < 24 * 3600 || d.subsec_nanos() == 0));
            assert!(s.starts_with(|c: char| c.is_ascii_digit()));
        }
        Err(e) => assert!(e.contains("duration"), "{e}"),
    }
    match size(s) {
        Ok(n) => assert_eq!(size(&n.to_string()), Ok(n)),
        Err(e) => assert!(e.contains("size"), "{e}"),
    }
    match port(s) {
        Ok(p) => {
            assert_eq!(port(&p.to_string()), Ok(p));
            let digits = s.trim_start_matches('0');
            assert!(
                digits == p.to_string() || (p == 0 && digits.is_empty()),
                "{s:?}"
            );
        }
        Err(e) => assert!(e.contains("port"), "{e}"),
    }
    match host(s) {
        Ok(Host::Ip(addr)) => {
            assert_eq!(host(&addr.to_string()), Ok(Host::Ip(addr)));
            if let IpAddr::V6(v6) = addr {
                assert_eq!(host(&format!("[{v6}]")), Ok(Host::Ip(addr)));
            }
        }
        Ok(Host::Name(n)) => {
            assert_eq!(n, s);
            assert!(!n.is_empty() && n.len() <= 253);
            assert!(n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
            assert!(!n.chars().all(|c| c.is_ascii_digit() || c == '.'));
        }
        Err(e) => assert!(!e.is_empty()),
    }
    match name(s) {
        Ok(n) => {
            assert_eq!(n, s);
            assert!((1..=32).contains(&n.len()));
            assert!(n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'));
            assert!(n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        }
        Err(e) => assert!(e.contains("not a valid name"), "{e}"),
    }
}
