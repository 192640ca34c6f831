//! Guided lessons: the lessons of `docs/lessons/` built into the binary,
//! cut into steps (explanations, maybe a question, a command), and the
//! learner's progress, remembered per user in the state directory. The
//! walk itself (reading the terminal) is the REPL's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::lang::Lang;
use crate::lesson::{self, Line, Prediction};

/// One lesson file, as built in.
pub struct LessonFile {
    /// Its file name in `docs/lessons/`.
    pub file: &'static str,
    /// Its text.
    pub text: &'static str,
}

macro_rules! lesson {
    ($f:literal) => {
        LessonFile {
            file: $f,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lessons/", $f)),
        }
    };
}

/// Every lesson, in the order `lessons` lists them (a test checks this is
/// every file of `docs/lessons/`).
pub static LESSONS: &[LessonFile] = &[
    lesson!("01-three-elements.sock"),
    lesson!("02-ip.sock"),
    lesson!("02-broadcast-ping.sock"),
    lesson!("03-ports-protocols.sock"),
    lesson!("04-handshake.sock"),
    lesson!("04-handshake-lan.sock"),
    lesson!("05-socket.sock"),
    lesson!("06-tcp-steps.sock"),
    lesson!("07-greeting.sock"),
    lesson!("08-client.sock"),
    lesson!("09-reuse.sock"),
    lesson!("10-backlog.sock"),
    lesson!("10-many-clients.sock"),
    lesson!("10-classroom.sock"),
    lesson!("11-long-connection.sock"),
    lesson!("12-upload.sock"),
    lesson!("13-concurrency.sock"),
    lesson!("14-processes-threads.sock"),
    lesson!("15-spawn.sock"),
];

/// A lesson's first lines: `#en Lesson §S · 标题 · what it shows` and
/// `#zh 第S节 · 标题 · 它展示什么`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// The lecture's section (`7-8`).
    pub section: String,
    /// The lecture's own title.
    pub title: String,
    /// What it shows, in English.
    pub shows_en: String,
    /// What it shows, in Chinese.
    pub shows_zh: String,
}

impl LessonFile {
    /// Its name without the number and `.sock` (`greeting`).
    pub fn stem(&self) -> &str {
        let stem = self.file.strip_suffix(".sock").unwrap_or(self.file);
        stem.split_once('-').map_or(stem, |(_, s)| s)
    }

    /// Its header.
    pub fn header(&self) -> Header {
        let mut h = Header::default();
        for line in self.text.lines().take(4) {
            let Ok(Line::Note {
                lang: Some(l),
                text,
            }) = lesson::classify(line)
            else {
                continue;
            };
            let parts: Vec<&str> = text.split(" · ").collect();
            let [head, title, shows] = parts.as_slice() else {
                continue;
            };
            match l {
                Lang::En => {
                    h.section = head.trim_start_matches("Lesson §").to_string();
                    h.title = title.to_string();
                    h.shows_en = shows.to_string();
                }
                _ => h.shows_zh = shows.to_string(),
            }
        }
        h
    }

    /// Its steps.
    ///
    /// # Errors
    /// A malformed question, with its line number.
    pub fn steps(&self) -> Result<Vec<Step>, String> {
        steps(self.text)
    }
}

/// The lesson called `what`: its number in the list (from 1), or its name
/// with or without the number (`greeting`, `07-greeting`).
pub fn find(what: &str) -> Option<usize> {
    if let Ok(n) = what.parse::<usize>() {
        return (1..=LESSONS.len()).contains(&n).then(|| n - 1);
    }
    let what = what.strip_suffix(".sock").unwrap_or(what);
    LESSONS
        .iter()
        .position(|l| l.stem() == what || l.file.strip_suffix(".sock") == Some(what))
}

/// One step of a walk: what to read, maybe a question, then a command.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// The explanations before the command, each with its language.
    pub notes: Vec<(Option<Lang>, String)>,
    /// A question to answer before the command runs.
    pub predict: Option<Prediction>,
    /// The command put on the line (none for the closing words).
    pub command: Option<String>,
    /// Whether the lesson means the command to fail (its `!`).
    pub fails: bool,
}

impl Step {
    /// The explanations in `lang`, without their `#`.
    pub fn text(&self, lang: Lang) -> Vec<&str> {
        self.notes
            .iter()
            .filter(|(l, _)| lang.shows(*l))
            .map(|(_, t)| t.as_str())
            .collect()
    }
}

/// `text` cut into steps: each command with the comments and question
/// before it; comments after the last command are a last step of their own.
fn steps(text: &str) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    let mut cur = Step::default();
    for (i, line) in text.lines().enumerate() {
        if i == 0 && line.starts_with("#!") {
            continue;
        }
        match lesson::classify(line).map_err(|e| format!("line {}: {e}", i + 1))? {
            Line::Blank => {}
            Line::Note { lang, text } => {
                let text = if lang.is_none() {
                    text.trim_start_matches('#')
                        .strip_prefix(' ')
                        .unwrap_or(text.trim_start_matches('#'))
                } else {
                    text
                };
                cur.notes.push((lang, text.to_string()));
            }
            Line::Predict(p) => cur.predict = Some(p),
            Line::Command(c) => {
                let c = c.trim();
                cur.fails = c.starts_with(crate::driver::EXPECT_FAIL);
                let c = c.strip_prefix(crate::driver::EXPECT_FAIL).unwrap_or(c);
                cur.command = Some(c.trim().to_string());
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.notes.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// How far the learner got in each lesson, kept in
/// `$XDG_STATE_HOME/socklab/lessons` (`~/.local/state/socklab/lessons`):
/// one line per lesson, `FILE STEPS-DONE STEPS`.
#[derive(Debug, Default)]
pub struct Progress {
    /// Where it is kept (none when there is no state directory).
    path: Option<PathBuf>,
    /// Lesson file → (steps done, steps).
    done: BTreeMap<String, (usize, usize)>,
}

impl Progress {
    /// The progress kept for this user (empty when there is none yet, or
    /// the file cannot be read).
    pub fn load() -> Progress {
        let path = dirs::state_dir().map(|d| d.join("socklab").join("lessons"));
        let mut done = BTreeMap::new();
        if let Some(text) = path.as_ref().and_then(|p| read_small(p)) {
            for line in text.lines() {
                let mut w = line.split_whitespace();
                if let (Some(f), Some(Ok(d)), Some(Ok(n))) = (
                    w.next(),
                    w.next().map(str::parse::<usize>),
                    w.next().map(str::parse::<usize>),
                ) {
                    done.insert(f.to_string(), (d.min(n), n));
                }
            }
        }
        Progress { path, done }
    }

    /// Records that `file` is done up to `step` of `steps` (never less than
    /// before) and writes it down.
    ///
    /// # Errors
    /// When the state directory cannot be written.
    pub fn record(&mut self, file: &str, step: usize, steps: usize) -> std::io::Result<()> {
        let e = self.done.entry(file.to_string()).or_insert((0, steps));
        *e = (e.0.max(step).min(steps), steps);
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text: String = self
            .done
            .iter()
            .map(|(f, (d, n))| format!("{f} {d} {n}\n"))
            .collect();
        std::fs::write(path, text)
    }

    /// How far `file` got: (steps done, steps).
    pub fn of(&self, file: &str) -> Option<(usize, usize)> {
        self.done.get(file).copied()
    }

    /// `done`, `3/12` or `-`.
    pub fn shown(&self, file: &str) -> String {
        match self.of(file) {
            Some((d, n)) if d >= n => "done".to_string(),
            Some((d, n)) => format!("{d}/{n}"),
            None => "-".to_string(),
        }
    }
}

/// A progress file's text, if it is a small regular file.
fn read_small(path: &std::path::Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 64 * 1024 {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lesson_file_is_built_in_and_reads_in_steps() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lessons");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".sock"))
            .collect();
        files.sort();
        let mut built: Vec<String> = LESSONS.iter().map(|l| l.file.to_string()).collect();
        built.sort();
        assert_eq!(built, files);
        for l in LESSONS {
            let h = l.header();
            assert!(
                !h.section.is_empty() && !h.title.is_empty(),
                "{}: {h:?}",
                l.file
            );
            assert!(
                !h.shows_en.is_empty() && !h.shows_zh.is_empty(),
                "{}: {h:?}",
                l.file
            );
            let steps = l.steps().unwrap_or_else(|e| panic!("{}: {e}", l.file));
            assert!(steps.iter().any(|s| s.command.is_some()), "{}", l.file);
        }
    }

    #[test]
    fn steps_gather_notes_questions_and_commands() {
        let s = steps(
            "#!/usr/bin/env socklab\n# both\n#zh 中文\n#en english\n#? zh 问 | en ask | 1\n! listen 0\n\n#en bye\n",
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].text(Lang::Zh), ["both", "中文"]);
        assert_eq!(s[0].text(Lang::En), ["both", "english"]);
        assert_eq!(s[0].command.as_deref(), Some("listen 0"));
        assert!(s[0].predict.is_some());
        assert_eq!(
            (s[1].command.as_deref(), s[1].text(Lang::Zh).len()),
            (None, 0)
        );
        assert_eq!(find("greeting"), find("07-greeting"));
        assert_eq!(find("1"), Some(0));
        assert_eq!(find("0"), None);
    }
}
