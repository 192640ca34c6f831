//! The lessons and their language: `lang`, `lessons`, `lesson`.

use crate::args::{Args, CmdError, CmdResult, Exit};
use crate::guide::{self, Progress, LESSONS};
use crate::lang::{self, Lang};
use crate::render;
use crate::session::Session;

/// `lang [zh|en|both]`
pub async fn lang(s: &mut Session, mut a: Args) -> CmdResult {
    if a.len() > 0 {
        let (word, span) = a.word("a language")?;
        a.done()?;
        let l = Lang::parse(&word).ok_or_else(|| {
            CmdError::at(span, format!("'{word}' is not a language: zh, en or both"))
        })?;
        lang::set(l);
    }
    let l = lang::current();
    s.say(format!(
        "lang: {} ({})",
        l.name(),
        l.pick("中文", "English", "").replace('\n', " + ")
    ));
    Ok(())
}

/// `lessons`
pub async fn lessons(s: &mut Session, a: Args) -> CmdResult {
    a.done()?;
    let progress = Progress::load();
    let l = lang::current();
    let mut header = vec!["#", "§", "LESSON", "TITLE"];
    match l {
        Lang::Zh => header.push("内容"),
        Lang::En => header.push("SHOWS"),
        Lang::Both => header.extend(["SHOWS", "内容"]),
    }
    header.insert(4, "PROGRESS");
    let rows: Vec<Vec<String>> = LESSONS
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let h = f.header();
            let mut row = vec![
                (i + 1).to_string(),
                h.section,
                f.stem().to_string(),
                h.title,
                progress.shown(f.file),
            ];
            if l != Lang::Zh {
                row.push(h.shows_en);
            }
            if l != Lang::En {
                row.push(h.shows_zh);
            }
            row
        })
        .collect();
    s.say(render::table(&header, &rows).trim_end());
    s.say(l.pick(
        "`lesson N` 一步一步带你走完第 N 课 (在终端上); `socklab docs/lessons/FILE` 一次跑完",
        "`lesson N` walks you through lesson N step by step (on a terminal); `socklab docs/lessons/FILE` runs it whole",
        "",
    ));
    Ok(())
}

/// `lesson N|NAME`: on a terminal, the REPL walks it once this command
/// returns.
pub async fn lesson(s: &mut Session, mut a: Args) -> CmdResult {
    let (word, span) = a.word("a lesson's number or name (`lessons` lists them)")?;
    a.done()?;
    let Some(n) = guide::find(&word) else {
        return Err(CmdError::at(
            span,
            format!(
                "no lesson '{word}': `lessons` lists them (1 to {})",
                LESSONS.len()
            ),
        ));
    };
    if !s.interactive {
        return Err(CmdError::new(
            Exit::Usage,
            format!(
                "a guided lesson needs a terminal; to run it whole: socklab docs/lessons/{}",
                LESSONS[n].file
            ),
        ));
    }
    s.lesson = Some(n);
    Ok(())
}
