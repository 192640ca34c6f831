//! File names from a peer: is this safe as one path component?
//!
//! A receiver joins the name a peer sent to its own directory. The name must
//! therefore be exactly one plain component: not empty, not `.` or `..`, no
//! separator of any platform, no drive, no control characters. This module
//! looks at the string only; whether the directory holds a symbolic link of
//! that name is for the code that opens files to check.

/// The longest file name, in bytes of UTF-8, that the protocol carries and
/// [`check_name`] accepts (the common file-system limit).
pub const MAX_NAME: usize = 255;

/// Why a file name is refused. Each kind of refusal has its own variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("file name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME`] bytes.
    #[error("file name of {len} bytes exceeds the {MAX_NAME}-byte maximum")]
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// The name contains a NUL byte, which ends a name at the system call.
    #[error("file name contains NUL at byte {at}")]
    Nul {
        /// Where the NUL is, in bytes from the start.
        at: usize,
    },
    /// The name contains a control character (other than NUL), such as a
    /// newline or an escape that would rewrite the receiver's terminal.
    #[error("file name contains control character U+{:04X} at byte {at}", u32::from(*.ch))]
    Control {
        /// The character.
        ch: char,
        /// Where it is, in bytes from the start.
        at: usize,
    },
    /// The name is `.`, the receiving directory itself.
    #[error("file name '.' is the directory itself")]
    Dot,
    /// The name is `..`, the directory above the receiving one.
    #[error("file name '..' would leave the directory")]
    DotDot,
    /// The name starts with a separator: an absolute path (`/etc/passwd`,
    /// `\\server\share`).
    #[error("file name is an absolute path (starts with '{sep}')")]
    Absolute {
        /// The separator it starts with, `/` or `\`.
        sep: char,
    },
    /// The name starts with a drive (`C:`), which Windows resolves outside
    /// the receiving directory.
    #[error("file name starts with the drive '{letter}:'")]
    Drive {
        /// The drive letter, as written.
        letter: char,
    },
    /// The name contains `/`: a path, not a name.
    #[error("file name contains '/' at byte {at} (a path, not a name)")]
    Slash {
        /// Where the first `/` is, in bytes from the start.
        at: usize,
    },
    /// The name contains `\`, a separator on Windows.
    #[error("file name contains '\\' at byte {at} (a path separator on Windows)")]
    Backslash {
        /// Where the first `\` is, in bytes from the start.
        at: usize,
    },
}

/// Checks that `name` is safe to create in the receiving directory: one
/// plain path component of at most [`MAX_NAME`] bytes. Does not touch the
/// file system.
///
/// The checks run in the order of [`NameError`]'s variants; the first that
/// fails is reported.
///
/// # Errors
///
/// The [`NameError`] saying what is wrong with the name.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong { len: name.len() });
    }
    if let Some((at, ch)) = name.char_indices().find(|(_, ch)| ch.is_control()) {
        return Err(if ch == '\0' {
            NameError::Nul { at }
        } else {
            NameError::Control { ch, at }
        });
    }
    match name {
        "." => return Err(NameError::Dot),
        ".." => return Err(NameError::DotDot),
        _ => {}
    }
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(sep @ ('/' | '\\')), _) => return Err(NameError::Absolute { sep }),
        (Some(letter), Some(':')) if letter.is_ascii_alphabetic() => {
            return Err(NameError::Drive { letter })
        }
        _ => {}
    }
    if let Some(at) = name.find('/') {
        return Err(NameError::Slash { at });
    }
    if let Some(at) = name.find('\\') {
        return Err(NameError::Backslash { at });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of refusal, and names that must pass.
    #[test]
    fn check_name_table() {
        let long = "a".repeat(MAX_NAME + 1);
        let longest = "a".repeat(MAX_NAME);
        // 85 three-byte characters: 255 bytes, the most that fits.
        let wide = "绕".repeat(85);
        let too_wide = "绕".repeat(86);
        let table: &[(&str, Result<(), NameError>)] = &[
            ("hg.txt", Ok(())),
            ("绕口令.txt", Ok(())),
            ("a b.bin", Ok(())),
            (".hidden", Ok(())),
            ("...", Ok(())),
            ("a..b", Ok(())),
            ("ab:c", Ok(())),
            ("1:", Ok(())),
            (&longest, Ok(())),
            (&wide, Ok(())),
            ("", Err(NameError::Empty)),
            (&long, Err(NameError::TooLong { len: 256 })),
            (&too_wide, Err(NameError::TooLong { len: 258 })),
            ("a\0b", Err(NameError::Nul { at: 1 })),
            ("\0", Err(NameError::Nul { at: 0 })),
            ("a\nb", Err(NameError::Control { ch: '\n', at: 1 })),
            ("\x1b[2J", Err(NameError::Control { ch: '\x1b', at: 0 })),
            ("tab\t", Err(NameError::Control { ch: '\t', at: 3 })),
            ("del\x7f", Err(NameError::Control { ch: '\x7f', at: 3 })),
            (
                "c1\u{85}",
                Err(NameError::Control {
                    ch: '\u{85}',
                    at: 2,
                }),
            ),
            (".", Err(NameError::Dot)),
            ("..", Err(NameError::DotDot)),
            ("/etc/passwd", Err(NameError::Absolute { sep: '/' })),
            ("/", Err(NameError::Absolute { sep: '/' })),
            ("\\\\server\\share", Err(NameError::Absolute { sep: '\\' })),
            ("C:", Err(NameError::Drive { letter: 'C' })),
            ("c:evil.txt", Err(NameError::Drive { letter: 'c' })),
            ("C:\\Windows", Err(NameError::Drive { letter: 'C' })),
            ("x:y", Err(NameError::Drive { letter: 'x' })),
            ("a/b", Err(NameError::Slash { at: 1 })),
            ("../x", Err(NameError::Slash { at: 2 })),
            ("dir/", Err(NameError::Slash { at: 3 })),
            ("a\\b", Err(NameError::Backslash { at: 1 })),
            ("..\\x", Err(NameError::Backslash { at: 2 })),
        ];
        for (name, want) in table {
            assert_eq!(check_name(name), *want, "check_name({name:?})");
        }
    }

    #[test]
    fn reasons_say_what_is_wrong() {
        let table = [
            (NameError::Empty, "file name is empty"),
            (
                NameError::TooLong { len: 300 },
                "file name of 300 bytes exceeds the 255-byte maximum",
            ),
            (NameError::Nul { at: 4 }, "file name contains NUL at byte 4"),
            (
                NameError::Control { ch: '\x1b', at: 0 },
                "file name contains control character U+001B at byte 0",
            ),
            (NameError::Dot, "file name '.' is the directory itself"),
            (
                NameError::DotDot,
                "file name '..' would leave the directory",
            ),
            (
                NameError::Absolute { sep: '/' },
                "file name is an absolute path (starts with '/')",
            ),
            (
                NameError::Drive { letter: 'C' },
                "file name starts with the drive 'C:'",
            ),
            (
                NameError::Slash { at: 2 },
                "file name contains '/' at byte 2 (a path, not a name)",
            ),
            (
                NameError::Backslash { at: 1 },
                "file name contains '\\' at byte 1 (a path separator on Windows)",
            ),
        ];
        for (err, text) in table {
            assert_eq!(err.to_string(), text);
        }
    }
}
