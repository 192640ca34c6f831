//! Session-level commands: `format`, `sleep`, `echo`, `quit`.

use crate::args::{duration_of, Args, CmdResult};
use crate::parse::{Token, TokenKind};
use crate::render::{self, Format};
use crate::session::Session;

/// `format [text|hex|auto]`
pub async fn format(s: &mut Session, mut a: Args) -> CmdResult {
    if a.len() > 0 {
        let (f, _) = a.choice("a format", &["auto", "text", "hex"])?;
        a.done()?;
        s.set_format(match f {
            "text" => Format::Text,
            "hex" => Format::Hex,
            _ => Format::Auto,
        });
    }
    s.say(format!("format: {}", s.format().name()));
    Ok(())
}

/// `sleep DUR`
pub async fn sleep(_s: &mut Session, mut a: Args) -> CmdResult {
    let t = a.token("a duration")?;
    a.done()?;
    tokio::time::sleep(duration_of(&t)?).await;
    Ok(())
}

/// `echo TEXT...`
pub async fn echo(s: &mut Session, mut a: Args) -> CmdResult {
    let words: Vec<String> = a.rest().iter().map(text_of).collect();
    s.say(words.join(" "));
    Ok(())
}

/// `quit`
pub async fn quit(s: &mut Session, a: Args) -> CmdResult {
    a.done()?;
    let n = s.end().await;
    s.quit = true;
    s.say(render::bye(n));
    Ok(())
}

/// Text of a token as the user wrote it (quoted strings decoded lossily).
fn text_of(t: &Token) -> String {
    match &t.kind {
        TokenKind::Word(w) => w.clone(),
        _ => String::from_utf8_lossy(&t.bytes()).into_owned(),
    }
}
