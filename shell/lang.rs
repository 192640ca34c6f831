//! The learner's language: Chinese, English or both. One per process (a
//! process runs one session), set by `--lang`, `SOCKLAB_LANG` or `lang`;
//! read by the script runner (which comments of a lesson to echo), the
//! guided lessons and the message catalogue.

use std::sync::atomic::{AtomicU8, Ordering};

/// Which language the explanations are in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// 中文 only.
    Zh,
    /// English only.
    En,
    /// Both, English first then Chinese where a text has both (the
    /// default).
    Both,
}

impl Lang {
    /// The word `--lang` and `lang` take.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
            Lang::Both => "both",
        }
    }

    /// The language called `s` (`zh`, `en`, `both`; `cn` and `中文` for
    /// Chinese too).
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zh" | "cn" | "zh-cn" | "中文" => Some(Lang::Zh),
            "en" | "english" => Some(Lang::En),
            "both" | "all" => Some(Lang::Both),
            _ => None,
        }
    }

    /// Whether text in `other` (None: in every language) is shown.
    pub fn shows(self, other: Option<Lang>) -> bool {
        match (self, other) {
            (_, None) | (Lang::Both, _) => true,
            (me, Some(o)) => o == me || o == Lang::Both,
        }
    }

    /// `zh` or `en` as this language asks; `both` gives both, English
    /// first, the Chinese on a line of its own after `sep`.
    pub fn pick(self, zh: &str, en: &str, sep: &str) -> String {
        match self {
            Lang::Zh => zh.to_string(),
            Lang::En => en.to_string(),
            Lang::Both => format!("{en}\n{sep}{zh}"),
        }
    }

    fn index(self) -> u8 {
        match self {
            Lang::Zh => 0,
            Lang::En => 1,
            Lang::Both => 2,
        }
    }
}

/// The language of this process (`Both` until set).
static CURRENT: AtomicU8 = AtomicU8::new(2);

/// The language explanations are shown in.
pub fn current() -> Lang {
    match CURRENT.load(Ordering::Relaxed) {
        0 => Lang::Zh,
        1 => Lang::En,
        _ => Lang::Both,
    }
}

/// Changes the language explanations are shown in.
pub fn set(lang: Lang) {
    CURRENT.store(lang.index(), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_shows() {
        for l in [Lang::Zh, Lang::En, Lang::Both] {
            assert_eq!(Lang::parse(l.name()), Some(l));
        }
        assert_eq!(Lang::parse("中文"), Some(Lang::Zh));
        assert_eq!(Lang::parse("fr"), None);
        assert!(Lang::Zh.shows(None) && Lang::Zh.shows(Some(Lang::Zh)));
        assert!(!Lang::Zh.shows(Some(Lang::En)) && !Lang::En.shows(Some(Lang::Zh)));
        assert!(Lang::Both.shows(Some(Lang::En)) && Lang::Both.shows(Some(Lang::Zh)));
        assert_eq!(Lang::Both.pick("中", "en", "  "), "en\n  中");
    }
}
