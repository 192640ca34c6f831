//! The lines of a session file as a lesson reads them: commands, and
//! comments that carry a language or a question.
//!
//! - `# text`: a comment in every language (code, names, numbers);
//! - `#zh text`, `#en text`: a comment in one language;
//! - `#? zh QUESTION | en QUESTION | ANSWERS`: before the command that
//!   follows, guided mode asks the learner to predict; ANSWERS are the right
//!   guesses, separated by `/` (`33/33 bytes`, `no/n/否/不会`).
//!
//! The script runner echoes what the language asks for; guided mode
//! (`guide`) walks the same lines step by step.

use crate::lang::Lang;

/// A question the learner answers before a step runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prediction {
    /// The question in Chinese.
    pub zh: String,
    /// The question in English.
    pub en: String,
    /// The right guesses, lower case.
    pub answers: Vec<String>,
}

impl Prediction {
    /// Whether `guess` is one of the right answers: the whole guess or its
    /// first word, ignoring case, spaces and a trailing full stop.
    pub fn is_right(&self, guess: &str) -> bool {
        let norm = |s: &str| {
            s.trim()
                .trim_end_matches(['.', '。', '!', '！', '?', '？'])
                .to_lowercase()
        };
        let whole = norm(guess);
        let first = whole.split_whitespace().next().unwrap_or("").to_string();
        self.answers.iter().any(|a| *a == whole || *a == first)
    }

    /// The question in `lang` (both: English, then Chinese).
    pub fn question(&self, lang: Lang) -> Vec<&str> {
        match lang {
            Lang::Zh => vec![&self.zh],
            Lang::En => vec![&self.en],
            Lang::Both => vec![&self.en, &self.zh],
        }
    }
}

/// One line of a session file.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Nothing (or only spaces).
    Blank,
    /// A comment; `lang` None is for every language. `text` is what follows
    /// the marker (for a plain comment, the whole line).
    Note {
        /// Which language, if one.
        lang: Option<Lang>,
        /// The comment.
        text: &'a str,
    },
    /// A question to predict the next command's outcome.
    Predict(Prediction),
    /// A command (perhaps with the `!` of an expected failure).
    Command(&'a str),
}

/// What a line is. A `#?` line that is not `zh … | en … | answers` is an
/// error, said in words.
pub fn classify(line: &str) -> Result<Line<'_>, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(Line::Blank);
    }
    let Some(rest) = trimmed.strip_prefix('#') else {
        return Ok(Line::Command(line));
    };
    for (tag, lang) in [("zh", Lang::Zh), ("en", Lang::En)] {
        if let Some(text) = rest.strip_prefix(tag) {
            if text.is_empty() || text.starts_with(' ') {
                return Ok(Line::Note {
                    lang: Some(lang),
                    text: text.strip_prefix(' ').unwrap_or(text),
                });
            }
        }
    }
    if let Some(q) = rest.strip_prefix("? ") {
        return prediction(q).map(Line::Predict);
    }
    Ok(Line::Note {
        lang: None,
        text: line,
    })
}

/// `zh QUESTION | en QUESTION | ANSWERS`.
fn prediction(q: &str) -> Result<Prediction, String> {
    let bad = || "a question is `#? zh 问题 | en question | answer/other answer`".to_string();
    let fields: Vec<&str> = q.split(" | ").map(str::trim).collect();
    let [zh, en, answers] = fields.as_slice() else {
        return Err(bad());
    };
    let (Some(zh), Some(en)) = (zh.strip_prefix("zh "), en.strip_prefix("en ")) else {
        return Err(bad());
    };
    let answers: Vec<String> = answers
        .split('/')
        .map(|a| a.trim().to_lowercase())
        .filter(|a| !a.is_empty())
        .collect();
    if answers.is_empty() || zh.trim().is_empty() || en.trim().is_empty() {
        return Err(bad());
    }
    Ok(Prediction {
        zh: zh.trim().to_string(),
        en: en.trim().to_string(),
        answers,
    })
}

/// The lines a transcript shows for a comment or question in `lang`. A
/// plain comment is echoed as it is; a marked one as `# text` (so under
/// `both` a lesson reads as it always did), or not at all in the other
/// language; a question as `#? question`.
pub fn echo(line: &Line<'_>, lang: Lang) -> Vec<String> {
    match line {
        Line::Note { lang: None, text } => vec![text.to_string()],
        Line::Note {
            lang: Some(l),
            text,
        } if lang.shows(Some(*l)) => vec![if text.is_empty() {
            "#".to_string()
        } else {
            format!("# {text}")
        }],
        Line::Predict(p) => p
            .question(lang)
            .into_iter()
            .map(|q| format!("#? {q}"))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_carry_their_language() {
        assert_eq!(
            classify("#zh 短连接"),
            Ok(Line::Note {
                lang: Some(Lang::Zh),
                text: "短连接"
            })
        );
        assert_eq!(
            classify("#en A short connection"),
            Ok(Line::Note {
                lang: Some(Lang::En),
                text: "A short connection"
            })
        );
        assert_eq!(
            classify("# both"),
            Ok(Line::Note {
                lang: None,
                text: "# both"
            })
        );
        // Not a marker: `#zhong`, `#english`.
        assert!(matches!(
            classify("#zhong"),
            Ok(Line::Note { lang: None, .. })
        ));
        assert_eq!(
            classify("send a \"#zh\""),
            Ok(Line::Command("send a \"#zh\""))
        );
        assert_eq!(classify("   "), Ok(Line::Blank));
    }

    #[test]
    fn echo_follows_the_language() {
        let zh = classify("#zh 短连接").unwrap();
        let en = classify("#en short").unwrap();
        assert_eq!(echo(&zh, Lang::Zh), ["# 短连接"]);
        assert!(echo(&zh, Lang::En).is_empty());
        assert_eq!(echo(&en, Lang::Both), ["# short"]);
        assert_eq!(echo(&classify("#en").unwrap(), Lang::En), ["#"]);
        assert_eq!(echo(&classify("#  plain").unwrap(), Lang::Zh), ["#  plain"]);
    }

    #[test]
    fn predictions_parse_and_judge() {
        let Ok(Line::Predict(p)) =
            classify("#? zh 这次 recv 返回多少字节? | en How many bytes? | 48/48 bytes")
        else {
            panic!("a prediction");
        };
        assert_eq!(p.zh, "这次 recv 返回多少字节?");
        assert!(p.is_right("48") && p.is_right(" 48 bytes. ") && p.is_right("48 字节"));
        assert!(!p.is_right("24") && !p.is_right(""));
        assert_eq!(
            echo(&Line::Predict(p.clone()), Lang::Both),
            ["#? How many bytes?", "#? 这次 recv 返回多少字节?"]
        );
        for bad in [
            "#? only a question",
            "#? zh a | en b |",
            "#? en b | zh a | x",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
    }
}
