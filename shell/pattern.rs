//! Matching lines in a recorded transcript (`FILE.out`), as cram has them:
//! what a machine decides beyond what `--stable` names (its interfaces,
//! services, kernel's numbers) is written once, by hand, as a pattern.
//!
//! - a line ending in ` (re)` is a regular expression for the whole line
//!   (the `regex` crate's syntax, anchored at both ends);
//! - a line ending in ` (glob)` is a glob for the whole line: `*` any run
//!   of characters, `?` one character, `\*`, `\?`, `\\` themselves;
//! - a line that is exactly `...` stands for 0 to [`MAX_SKIPPED`] lines of
//!   anything;
//! - every other line is itself, byte for byte.
//!
//! [`compare`] aligns a transcript with such a file (the fewest lines that
//! differ) and returns what `socklab record` writes: the recorded file's
//! own lines wherever they still match (so a hand-written pattern survives
//! a new recording), this run's lines elsewhere. The two are identical
//! exactly when the run matches.

use regex::Regex;

/// The most lines one `...` stands for (a bound, so a `...` cannot hide a
/// transcript that went on and on).
pub const MAX_SKIPPED: usize = 100;

/// The line that stands for up to [`MAX_SKIPPED`] lines.
const SKIP: &str = "...";
/// The end of a regular expression line.
const RE: &str = " (re)";
/// The end of a glob line.
const GLOB: &str = " (glob)";

/// One line of a recorded transcript.
enum Expected<'a> {
    /// The line itself.
    Literal(&'a str),
    /// A ` (re)` or ` (glob)` line, compiled.
    Pattern(Regex),
    /// `...`.
    Skip,
}

impl Expected<'_> {
    fn matches(&self, line: &str) -> bool {
        match self {
            Expected::Literal(l) => *l == line,
            Expected::Pattern(re) => re.is_match(line),
            Expected::Skip => false,
        }
    }
}

/// A recorded transcript read as patterns.
pub struct Recorded<'a> {
    /// Its lines, as written (what `record` keeps).
    lines: Vec<&'a str>,
    /// Each line read.
    expected: Vec<Expected<'a>>,
    /// Whether the text ends with a newline.
    newline: bool,
}

/// The outcome of [`compare`].
pub struct Comparison {
    /// Whether the run matches the recorded transcript.
    pub matches: bool,
    /// The recorded file with this run's lines where it no longer matches:
    /// what `record` writes, and what a diff shows against the file.
    pub merged: String,
    /// How many of the recorded file's pattern lines are kept in `merged`.
    pub kept: usize,
}

/// Splits `text` into lines without their newlines (a last line without
/// one counts), and says whether it ends with one.
fn lines(text: &str) -> (Vec<&str>, bool) {
    match text.strip_suffix('\n') {
        Some("") => (vec![""], true),
        Some(body) => (body.split('\n').collect(), true),
        None if text.is_empty() => (Vec::new(), true),
        None => (text.split('\n').collect(), false),
    }
}

impl<'a> Recorded<'a> {
    /// Reads a recorded transcript.
    ///
    /// # Errors
    /// A ` (re)` line whose expression does not compile, with its line
    /// number (from 1).
    pub fn parse(text: &'a str) -> Result<Recorded<'a>, String> {
        let (lines, newline) = lines(text);
        let mut expected = Vec::with_capacity(lines.len());
        for (n, line) in lines.iter().enumerate() {
            let e = if *line == SKIP {
                Expected::Skip
            } else if let Some(re) = line.strip_suffix(RE) {
                let bad = |e: regex::Error| format!("line {}: a bad (re) pattern: {e}", n + 1);
                // Compiled alone first: an unbalanced `a)|(b` would
                // otherwise close the anchoring group and match any line
                // that starts with `a`.
                Regex::new(re).map_err(bad)?;
                Expected::Pattern(Regex::new(&format!("^(?:{re})$")).map_err(bad)?)
            } else if let Some(glob) = line.strip_suffix(GLOB) {
                Expected::Pattern(
                    glob_regex(glob)
                        .map_err(|e| format!("line {}: a (glob) pattern too large: {e}", n + 1))?,
                )
            } else {
                Expected::Literal(line)
            };
            expected.push(e);
        }
        Ok(Recorded {
            lines,
            expected,
            newline,
        })
    }
}

/// A glob as an anchored regular expression.
fn glob_regex(glob: &str) -> Result<Regex, regex::Error> {
    let mut re = String::from("^");
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '\\' => match chars.next() {
                Some(e @ ('*' | '?' | '\\')) => re.push_str(&regex::escape(&e.to_string())),
                Some(other) => {
                    re.push_str(&regex::escape("\\"));
                    re.push_str(&regex::escape(&other.to_string()));
                }
                None => re.push_str(&regex::escape("\\")),
            },
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re)
}

/// `line` as a recorded transcript keeps it: itself, unless it would be
/// read as a pattern; then a ` (re)` that matches only it.
pub fn escape(line: &str) -> String {
    if line == SKIP || line.ends_with(RE) || line.ends_with(GLOB) {
        format!("{}{RE}", regex::escape(line))
    } else {
        line.to_string()
    }
}

/// The most cells of the table of costs [`compare`] fills (4 bytes each:
/// 32 MiB); past it, after the lines that match at both ends are set
/// aside, the rest counts as all different.
pub const MAX_CELLS: usize = 8 << 20;

/// Aligns the run's transcript `actual` with `recorded`: the fewest
/// recorded lines dropped plus run lines added.
pub fn compare(recorded: &Recorded<'_>, actual: &str) -> Comparison {
    let (run, newline) = lines(actual);
    let exp = &recorded.expected;
    // Lines that match at the start and at the end are matched as they
    // stand (no cheaper alignment leaves them out); `...` is never set
    // aside, as it may stand for more.
    let plain = |i: usize, j: usize| !matches!(exp[i], Expected::Skip) && exp[i].matches(run[j]);
    let mut head = 0;
    while head < exp.len() && head < run.len() && plain(head, head) {
        head += 1;
    }
    let mut tail = 0;
    while tail < exp.len() - head
        && tail < run.len() - head
        && plain(exp.len() - 1 - tail, run.len() - 1 - tail)
    {
        tail += 1;
    }
    let mut merged: Vec<String> = recorded.lines[..head]
        .iter()
        .map(|l| (*l).to_string())
        .collect();
    let mut kept = exp[..head]
        .iter()
        .filter(|e| !matches!(e, Expected::Literal(_)))
        .count();
    let (m, differences) = middle(
        &recorded.lines[head..recorded.lines.len() - tail],
        &exp[head..exp.len() - tail],
        &run[head..run.len() - tail],
    );
    kept += m.iter().filter(|(_, pattern)| *pattern).count();
    merged.extend(m.into_iter().map(|(l, _)| l));
    merged.extend(
        recorded.lines[recorded.lines.len() - tail..]
            .iter()
            .map(|l| (*l).to_string()),
    );
    kept += exp[exp.len() - tail..]
        .iter()
        .filter(|e| !matches!(e, Expected::Literal(_)))
        .count();
    let mut text = merged.join("\n");
    if newline && !merged.is_empty() {
        text.push('\n');
    }
    Comparison {
        matches: differences == 0 && newline == recorded.newline,
        merged: text,
        kept,
    }
}

/// The cheapest alignment of recorded `lines` (read as `exp`) with `run`:
/// the merged lines (each with whether it is a kept pattern) and the
/// number of differences.
fn middle(lines: &[&str], exp: &[Expected<'_>], run: &[&str]) -> (Vec<(String, bool)>, usize) {
    let (e, a) = (exp.len(), run.len());
    let width = a + 1;
    if (e + 1).saturating_mul(width) > MAX_CELLS {
        let merged = run.iter().map(|l| (escape(l), false)).collect();
        return (merged, e + a);
    }
    // cost[i][j]: the fewest differences between exp[i..] and run[j..].
    let mut cost = vec![0u32; (e + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for j in (0..a).rev() {
        cost[at(e, j)] = cost[at(e, j + 1)] + 1;
    }
    for i in (0..e).rev() {
        for j in (0..=a).rev() {
            let mut best = cost[at(i + 1, j)] + 1;
            if j < a {
                best = best.min(cost[at(i, j + 1)] + 1);
                if exp[i].matches(run[j]) {
                    best = best.min(cost[at(i + 1, j + 1)]);
                }
            }
            if matches!(exp[i], Expected::Skip) {
                for k in 0..=MAX_SKIPPED.min(a - j) {
                    best = best.min(cost[at(i + 1, j + k)]);
                }
            }
            cost[at(i, j)] = best;
        }
    }
    // Walk the cheapest alignment from the start.
    let (mut i, mut j) = (0, 0);
    let mut merged = Vec::with_capacity(a.max(e));
    while i < e || j < a {
        let here = cost[at(i, j)];
        if i < e && j < a && exp[i].matches(run[j]) && cost[at(i + 1, j + 1)] == here {
            merged.push((
                lines[i].to_string(),
                !matches!(exp[i], Expected::Literal(_)),
            ));
            (i, j) = (i + 1, j + 1);
        } else if let Some(k) = (i < e && matches!(exp[i], Expected::Skip))
            .then(|| (0..=MAX_SKIPPED.min(a - j)).find(|&k| cost[at(i + 1, j + k)] == here))
            .flatten()
        {
            merged.push((lines[i].to_string(), true));
            (i, j) = (i + 1, j + k);
        } else if i < e && cost[at(i + 1, j)] + 1 == here {
            i += 1;
        } else {
            merged.push((escape(run[j]), false));
            j += 1;
        }
    }
    (merged, cost[at(0, 0)] as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(recorded: &str, run: &str) -> Comparison {
        compare(&Recorded::parse(recorded).expect("valid patterns"), run)
    }

    #[test]
    fn literal_lines_match_themselves_only() {
        assert!(check("a\nb\n", "a\nb\n").matches);
        let c = check("a\nb\n", "a\nc\n");
        assert!(!c.matches);
        assert_eq!(c.merged, "a\nc\n");
        assert!(!check("a\nb\n", "a\nb").matches);
    }

    #[test]
    fn regex_and_glob_lines_match_the_whole_line() {
        let rec = "port 5555 (re)\ncores: \\d+ (re)\nlo: <*> ether ?? (glob)\n";
        assert!(check(rec, "port 5555\ncores: 16\nlo: <up> ether 00\n").matches);
        // Anchored: a match inside the line is not enough.
        assert!(!check(rec, "port 55555\ncores: 16\nlo: <up> ether 00\n").matches);
        assert!(!check(rec, "port 5555\ncores: 16x\nlo: <up> ether 00\n").matches);
        assert!(!check(rec, "port 5555\ncores: 16\nlo: <up> ether 000\n").matches);
        // Escapes in a glob; `.` and `(` are themselves.
        assert!(check("a\\*b (x) \\? (glob)\n", "a*b (x) ?\n").matches);
        assert!(!check("a\\*b (x) \\? (glob)\n", "a*b (x) !\n").matches);
        assert!(!check("a.b (glob)\n", "axb\n").matches);
    }

    #[test]
    fn a_skip_line_stands_for_a_bounded_run_of_lines() {
        let rec = "start\n...\nend\n";
        assert!(check(rec, "start\nend\n").matches);
        assert!(check(rec, "start\n1\n2\n3\nend\n").matches);
        let many: String = (0..MAX_SKIPPED).map(|n| format!("{n}\n")).collect();
        assert!(check(rec, &format!("start\n{many}end\n")).matches);
        let c = check(rec, &format!("start\n{many}one more\nend\n"));
        assert!(!c.matches);
        assert!(!check(rec, "start\n1\n").matches);
    }

    #[test]
    fn merging_keeps_the_patterns_that_still_match() {
        let rec = "head\nrtt \\d+ (re)\n...\nsame\nold\n";
        let c = check(rec, "head\nrtt 12\nx\ny\nsame\nnew\n");
        assert!(!c.matches);
        assert_eq!(c.merged, "head\nrtt \\d+ (re)\n...\nsame\nnew\n");
        assert_eq!(c.kept, 2);
        // A pattern that no longer matches gives way to the run's line.
        let c = check("head\nrtt \\d+ (re)\nsame\n", "head\nrtt slow\nsame\n");
        assert_eq!(c.merged, "head\nrtt slow\nsame\n");
        assert_eq!(c.kept, 0);
    }

    #[test]
    fn run_lines_that_read_as_patterns_are_kept_escaped() {
        for line in ["...", "x (re)", "a.b* (glob)"] {
            let c = check("", &format!("{line}\n"));
            assert!(check(&c.merged, &format!("{line}\n")).matches, "{line}");
            assert!(!check(&c.merged, "other\n").matches, "{line}");
        }
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn long_transcripts_stay_within_the_bound() {
        // Equal ends are set aside: a long transcript with one change.
        let long: String = (0..5000).map(|n| format!("line {n}\n")).collect();
        let changed = long.replace("line 2500\n", "line two thousand five hundred\n");
        let c = check(&format!("{long}...\n"), &changed);
        assert!(!c.matches);
        assert_eq!(c.merged, format!("{changed}...\n"));
        // Past the bound, the middle counts as different, and is the run's.
        let other: String = (0..5000).map(|n| format!("other {n}\n")).collect();
        let c = check(&long, &other);
        assert!(!c.matches);
        assert_eq!(c.merged, other);
    }

    #[test]
    fn a_bad_regex_is_reported_with_its_line() {
        let e = Recorded::parse("ok\n(unclosed (re)\n")
            .err()
            .expect("an error");
        assert!(e.starts_with("line 2: a bad (re) pattern"), "{e}");
        // Regression: an unbalanced expression escaped the anchoring group
        // (`^(?:a)|(b)$` matched any line starting with `a`).
        let e = Recorded::parse("a)|(b (re)\n").err().unwrap_or_default();
        assert!(e.starts_with("line 1: a bad (re) pattern"), "{e}");
    }
}
