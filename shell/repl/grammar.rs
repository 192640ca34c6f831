//! The commands' grammar, read from the usage lines of the command table
//! (`shell/commands/mod.rs`): completion and hints follow it, so a
//! command's usage is the one place that says which word goes where.
//!
//! A usage line is words and `[…]` groups. An UPPERCASE word is a place
//! for a value (`NAME`, `HOST`, `FILE`…), a lowercase one is typed as it
//! is; `a|b` inside a word and ` | ` inside a group are alternatives; `…`
//! (or `...`) after a word repeats it; `[x]Y` inside a word makes `x`
//! optional. What a place holds follows from its word, the word before it
//! (`as NAME` is a new name) and, for sockets, the command ([`roles`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use socklab_net::{Role, SockOpt};

use crate::commands::{self, COMMANDS};
use crate::dispatch::Command;

/// How many match states a line may reach; past it the rest is dropped
/// (usage lines are short: a few dozen at most in practice).
const MAX_STATES: usize = 512;

/// What a place in a usage line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A socket of the lab (of the command's [`roles`]).
    Socket,
    /// A listener of the lab.
    Listener,
    /// A name given to something new (`as NAME`): nothing to offer.
    NewName,
    /// A host: an address, `localhost`, or a classroom host.
    Host,
    /// A classroom host (`on`, `link`, `host del`).
    ClassHost,
    /// A file or directory path.
    Path,
    /// A socket option name.
    Option,
    /// A socket option's value.
    Value,
    /// A command, followed by its own arguments (`on HOST COMMAND…`).
    Command,
    /// A command name alone (`help COMMAND`).
    CommandName,
    /// A workload of `spawn`.
    Workload,
    /// A job.
    Job,
    /// A number, duration or size.
    Number,
    /// Anything else (data, text, addresses…).
    Other,
}

/// One way a word may be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// Typed as it is (`as`, `timeout`, `raw`).
    Lit(String),
    /// A place for a value, maybe inside fixed text (`unix:PATH`,
    /// `SERVER.*`).
    Slot {
        /// Text before the place.
        prefix: String,
        /// What goes there.
        slot: Slot,
        /// Text after the place.
        suffix: String,
    },
}

/// One element of a usage line.
#[derive(Debug)]
pub enum Node {
    /// One word, in one of several ways.
    Word {
        /// The ways it may be written.
        terms: Vec<Term>,
        /// `…`: it may repeat.
        many: bool,
        /// Its text in the usage line.
        text: &'static str,
    },
    /// `[…]`: optional, one of several sequences.
    Group {
        /// The sequences.
        alts: Vec<Vec<Node>>,
    },
}

/// Where a match stands: what is left of the usage line, innermost
/// sequence last.
pub type Rest = Vec<&'static [Node]>;

/// What the lab holds, as completion and matching need it: a snapshot
/// taken once per key press.
#[derive(Debug, Default)]
pub struct Facts {
    /// Every socket's name and role, in creation order.
    pub sockets: Vec<(String, Role)>,
    /// Every job's name, in the order they were started.
    pub jobs: Vec<String>,
}

impl Facts {
    /// The role of socket `name`, if there is one.
    fn role(&self, name: &str) -> Option<Role> {
        self.sockets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| *r)
    }
}

/// The sockets a command's socket places accept (empty: any).
pub fn roles(command: &str) -> &'static [Role] {
    match command {
        "bind" | "connect" => &[Role::Fresh, Role::Datagram],
        "listen" => &[Role::Fresh],
        "accept" | "bench" => &[Role::Listener],
        "send" | "recv" => &[Role::Stream, Role::Program, Role::Datagram],
        "starttls" | "expect" | "frame" | "shutdown" | "upload" | "download" => {
            &[Role::Stream, Role::Program]
        }
        "sendto" | "recvfrom" | "join" | "leave" => &[Role::Datagram],
        _ => &[],
    }
}

/// The grammar of `c`: one sequence per usage line.
pub fn of(c: &'static Command) -> &'static [Vec<Node>] {
    static ALL: OnceLock<HashMap<&'static str, Vec<Vec<Node>>>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|c| (c.name, c.usage.lines().map(|u| parse(c.name, u)).collect()))
            .collect()
    });
    all.get(c.name).map_or(&[], Vec::as_slice)
}

/// Parses one usage line of command `command` (its first word, the name,
/// is left out). Never fails: stray brackets are read as text.
pub fn parse(command: &str, usage: &'static str) -> Vec<Node> {
    let rest = usage.trim_start();
    let after_name = rest.find(char::is_whitespace).map_or("", |i| &rest[i..]);
    let mut p = Parser {
        s: after_name,
        i: 0,
        command,
        prev: None,
    };
    p.seq(false)
}

/// A usage line being read.
struct Parser<'c> {
    /// The text.
    s: &'static str,
    /// Where reading is.
    i: usize,
    /// The command's name.
    command: &'c str,
    /// The last literal word read.
    prev: Option<&'static str>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.i += c.len_utf8();
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Words and groups, up to the end (or, in a group, its `]` or ` | `).
    fn seq(&mut self, in_group: bool) -> Vec<Node> {
        let mut out = Vec::new();
        loop {
            self.skip_spaces();
            match self.peek() {
                None => break,
                Some(']' | '|') if in_group => break,
                Some(']' | '|') => self.bump(),
                Some('[') if self.group_stands_alone() => out.push(self.group()),
                Some(_) => {
                    if let Some(w) = self.word() {
                        out.push(w);
                    }
                }
            }
        }
        out
    }

    /// Whether the `[` here closes before a space (a group), not inside
    /// a word (`[unix:]PATH`).
    fn group_stands_alone(&self) -> bool {
        let mut depth = 0usize;
        for (j, c) in self.s[self.i..].char_indices() {
            match c {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        let next = self.s[self.i + j + 1..].chars().next();
                        return next.is_none_or(|n| n.is_whitespace() || n == ']' || n == '|');
                    }
                }
                _ => {}
            }
        }
        false
    }

    fn group(&mut self) -> Node {
        self.bump(); // [
        let mut alts = Vec::new();
        loop {
            alts.push(self.seq(true));
            self.skip_spaces();
            match self.peek() {
                Some('|') => self.bump(),
                Some(']') => {
                    self.bump();
                    break;
                }
                _ => break,
            }
        }
        Node::Group { alts }
    }

    fn word(&mut self) -> Option<Node> {
        let start = self.i;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                c if c.is_whitespace() && depth == 0 => break,
                '[' => depth += 1,
                ']' if depth == 0 => break,
                ']' => depth -= 1,
                _ => {}
            }
            self.bump();
        }
        let text = &self.s[start..self.i];
        if text.is_empty() {
            self.bump();
            return None;
        }
        let (base, many) = match text.strip_suffix('…').or_else(|| text.strip_suffix("...")) {
            Some(b) => (b, true),
            None => (text, false),
        };
        let mut terms = Vec::new();
        for alt in split_top(base, '|') {
            for variant in unbracket(alt) {
                terms.push(self.term(&variant, many));
            }
        }
        // `as NAME`: a place is read with the fixed word just before it.
        self.prev = match terms.as_slice() {
            [Term::Lit(_)] => Some(text),
            _ if terms.iter().all(|t| matches!(t, Term::Lit(_))) => self.prev,
            _ => None,
        };
        Some(Node::Word { terms, many, text })
    }

    /// One way of writing a word: fixed text, or a place for a value.
    fn term(&self, text: &str, many: bool) -> Term {
        let Some(at) = text.find(|c: char| c.is_ascii_uppercase()) else {
            if text.is_empty() {
                // A lone `…`: more of whatever came before.
                return Term::Slot {
                    prefix: String::new(),
                    slot: Slot::Other,
                    suffix: String::new(),
                };
            }
            return Term::Lit(text.to_string());
        };
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .map_or(text.len(), |j| at + j);
        let (prefix, place, suffix) = (&text[..at], &text[at..end], &text[end..]);
        let mut slot = slot(self.command, self.prev, place, many);
        if !prefix.is_empty() && slot == Slot::Socket {
            slot = Slot::Other; // `unix:@NAME`: an abstract address
        }
        Term::Slot {
            prefix: prefix.to_string(),
            slot,
            suffix: suffix.to_string(),
        }
    }
}

/// What the place `place` holds, after the literal `prev`, in `command`.
fn slot(command: &str, prev: Option<&str>, place: &str, many: bool) -> Slot {
    match (place, prev) {
        ("LOCAL_FILE", _) => Slot::Path,
        (_, Some("as" | "sni")) => Slot::NewName,
        ("NAME", Some("add")) if command == "host" => Slot::NewName,
        ("NAME", Some("del")) if command == "host" => Slot::ClassHost,
        ("HOST", _) if matches!(command, "on" | "link") => Slot::ClassHost,
        ("NAME" | "CONN" | "TARGET", _) => Slot::Socket,
        ("LISTENER" | "SERVER", _) => Slot::Listener,
        ("HOST", _) => Slot::Host,
        ("FILE" | "DIR" | "PATH" | "PROGRAM" | "ARGS", _) => Slot::Path,
        ("OPTION", _) => Slot::Option,
        ("VALUE", _) => Slot::Value,
        ("COMMAND", _) if many => Slot::Command,
        ("COMMAND", _) => Slot::CommandName,
        ("WORKLOAD", _) => Slot::Workload,
        ("JOB", _) => Slot::Job,
        (
            "PORT" | "N" | "MAX" | "BACKLOG" | "COUNT" | "BYTES" | "PCT" | "SIZE" | "DUR" | "RATE",
            _,
        ) => Slot::Number,
        _ => Slot::Other,
    }
}

/// `s` cut at each `sep` outside brackets.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                out.push(&s[from..i]);
                from = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[from..]);
    out
}

/// The ways of writing `s` with its first `[x]` left out or kept
/// (`[unix:]PATH` is `PATH` or `unix:PATH`); `s` itself when it has none.
fn unbracket(s: &str) -> Vec<String> {
    let Some(open) = s.find('[') else {
        return vec![s.to_string()];
    };
    let Some(len) = s[open..].find(']') else {
        return vec![s.replace(['[', ']'], "")];
    };
    let close = open + len;
    let (before, inner, after) = (&s[..open], &s[open + 1..close], &s[close + 1..]);
    let mut out = Vec::new();
    for rest in unbracket(after) {
        out.push(format!("{before}{rest}"));
        out.push(format!("{before}{inner}{rest}"));
    }
    out
}

/// One typed word, as matching sees it: `None` for quoted or hex data.
pub type Tok<'a> = Option<&'a str>;

/// How strictly places match typed words.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strictness {
    /// A place takes only a word of its kind (a socket name where a
    /// socket goes, a number where a number goes).
    Strict,
    /// A place takes any word; only fixed words must be exact.
    Loose,
}

/// Where the typed words leave a line: the command whose grammar applies
/// (after `on HOST`, the command given there) and the match states, with
/// the usage line each comes from. A state is taken just after the last
/// word (optional groups after it not yet skipped), so that it shows all
/// that may still come.
pub struct Analysis {
    /// The command.
    pub command: &'static Command,
    /// Match states, each with the index of its usage line.
    pub states: Vec<(usize, Rest)>,
}

/// Follows the typed words `toks` (the command name first) through the
/// grammar. `None` when the name is no command or nothing matches.
pub fn analyse(toks: &[Tok<'_>], facts: &Facts) -> Option<Analysis> {
    let command = commands::find((*toks.first()?)?)?;
    let args = &toks[1..];
    let lines = of(command);
    for strictness in [Strictness::Strict, Strictness::Loose] {
        let mut all = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            match follow(line, args, command.name, facts, strictness) {
                Followed::States(states) => all.extend(states.into_iter().map(|s| (n, s))),
                Followed::Command(at) => return analyse(&args[at..], facts),
            }
        }
        if !all.is_empty() {
            return Some(Analysis {
                command,
                states: all,
            });
        }
    }
    None
}

/// What following one usage line gave.
enum Followed {
    /// The states reached after every word.
    States(Vec<Rest>),
    /// Word `at` starts a command of its own (`on HOST COMMAND…`).
    Command(usize),
}

fn follow(
    line: &'static [Node],
    toks: &[Tok<'_>],
    command: &str,
    facts: &Facts,
    strictness: Strictness,
) -> Followed {
    let mut states = vec![vec![line]];
    for (at, tok) in toks.iter().enumerate() {
        let mut next = Vec::new();
        for state in closed(&states) {
            let Some((Node::Word { terms, many, .. }, after)) = front(&state) else {
                continue;
            };
            if terms.iter().any(|t| {
                matches!(
                    t,
                    Term::Slot {
                        slot: Slot::Command,
                        ..
                    }
                )
            }) && tok.is_some_and(|w| commands::find(w).is_some())
            {
                return Followed::Command(at);
            }
            if terms
                .iter()
                .any(|t| fits(t, *tok, command, facts, strictness))
                && next.len() < MAX_STATES
            {
                if *many {
                    next.push(state.clone());
                }
                next.push(after);
            }
        }
        states = next;
    }
    Followed::States(states)
}

/// The states `states` may be in without reading a word.
fn closed(states: &[Rest]) -> Vec<Rest> {
    let mut out = Vec::new();
    for s in states {
        close(s.clone(), &mut out);
    }
    out
}

/// The node at the front of `state` and the state after it.
fn front(state: &Rest) -> Option<(&'static Node, Rest)> {
    let seq = *state.last()?;
    let (node, tail) = seq.split_first()?;
    let mut after = state.clone();
    after.pop();
    after.push(tail);
    Some((node, after))
}

/// Adds to `out` the states `rest` may be in without reading a word:
/// each with a word at its front, or finished (empty).
fn close(mut rest: Rest, out: &mut Vec<Rest>) {
    if out.len() > MAX_STATES {
        return;
    }
    while rest.last().is_some_and(|s| s.is_empty()) {
        rest.pop();
    }
    match front(&rest) {
        None => out.push(rest),
        Some((Node::Word { .. }, _)) => out.push(rest),
        Some((Node::Group { alts }, after)) => {
            for alt in alts {
                let mut inner = after.clone();
                inner.push(alt);
                close(inner, out);
            }
            close(after, out);
        }
    }
}

/// Whether typed word `tok` can be written as `term`.
fn fits(term: &Term, tok: Tok<'_>, command: &str, facts: &Facts, s: Strictness) -> bool {
    let Some(word) = tok else {
        return matches!(
            term,
            Term::Slot {
                slot: Slot::Other | Slot::Path | Slot::Value,
                ..
            }
        );
    };
    match term {
        Term::Lit(l) => l == word,
        Term::Slot {
            prefix,
            slot,
            suffix,
        } => {
            let Some(inner) = word.strip_prefix(prefix.as_str()) else {
                return false;
            };
            if s == Strictness::Loose || matches!(slot, Slot::Path) {
                return true;
            }
            let inner = inner.strip_suffix(suffix.as_str()).unwrap_or(inner);
            match slot {
                Slot::Socket => facts.role(inner).is_some_and(|r| {
                    let want = roles(command);
                    want.is_empty() || want.contains(&r)
                }),
                Slot::Listener => facts.role(inner) == Some(Role::Listener),
                Slot::Host => facts.role(inner).is_none(),
                Slot::Number => inner.starts_with(|c: char| c.is_ascii_digit() || c == '{'),
                Slot::Option => SockOpt::ALL.iter().any(|o| o.name() == inner),
                Slot::Command | Slot::CommandName => commands::find(inner).is_some(),
                Slot::Workload => socklab_tasks::WORKLOADS.iter().any(|(n, _)| *n == inner),
                Slot::Job => facts.jobs.iter().any(|j| j == inner),
                Slot::NewName | Slot::ClassHost | Slot::Path | Slot::Value | Slot::Other => true,
            }
        }
    }
}

/// The terms that may be typed next, in usage order, without repeats.
pub fn next_terms(a: &Analysis) -> Vec<&'static Term> {
    let mut out: Vec<&'static Term> = Vec::new();
    let states: Vec<Rest> = a.states.iter().map(|(_, s)| s.clone()).collect();
    for state in closed(&states) {
        if let Some((Node::Word { terms, .. }, _)) = front(&state) {
            for t in terms {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
    }
    out
}

/// The rest of the usage after the typed words, for a hint: from the
/// first usage line that matches, the shortest rest. `None` when the line
/// is complete.
pub fn rest_of_usage(a: &Analysis) -> Option<String> {
    let first = a.states.first()?.0;
    a.states
        .iter()
        .filter(|(n, _)| *n == first)
        .map(|(_, s)| render(s))
        .min_by_key(String::len)
        .filter(|r| !r.is_empty())
}

/// The text of what is left in `state`.
fn render(state: &Rest) -> String {
    let mut words = Vec::new();
    for seq in state.iter().rev() {
        for node in *seq {
            words.push(text(node));
        }
    }
    words.join(" ")
}

/// A node written back as usage text.
fn text(node: &Node) -> String {
    match node {
        Node::Word { text, .. } => (*text).to_string(),
        Node::Group { alts } => {
            let alts: Vec<String> = alts
                .iter()
                .map(|a| a.iter().map(text).collect::<Vec<_>>().join(" "))
                .collect();
            format!("[{}]", alts.join(" | "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every usage line of the table reads back to itself: the parser saw
    /// each word and group where the line has it.
    #[test]
    fn every_usage_line_reads_back_to_itself() {
        for c in COMMANDS {
            for (n, u) in c.usage.lines().enumerate() {
                let line = &of(c)[n];
                let want = u.split_once(' ').map_or("", |(_, rest)| rest);
                assert_eq!(render(&vec![line.as_slice()]), want, "{}", c.name);
            }
        }
    }

    fn terms(usage: &'static str) -> Vec<Term> {
        parse("x", usage)
            .into_iter()
            .flat_map(|n| match n {
                Node::Word { terms, .. } => terms,
                Node::Group { .. } => Vec::new(),
            })
            .collect()
    }

    fn slot(prefix: &str, slot: Slot, suffix: &str) -> Term {
        Term::Slot {
            prefix: prefix.into(),
            slot,
            suffix: suffix.into(),
        }
    }

    #[test]
    fn a_word_is_fixed_text_or_a_place_with_text_around_it() {
        assert_eq!(
            terms("x raw|line|len"),
            ["raw", "line", "len"].map(|l| Term::Lit(l.into()))
        );
        assert_eq!(
            terms("x [unix:]PATH"),
            [slot("", Slot::Path, ""), slot("unix:", Slot::Path, "")]
        );
        assert_eq!(
            terms("x unix:PATH|unix:@NAME"),
            [
                slot("unix:", Slot::Path, ""),
                slot("unix:@", Slot::Other, "")
            ]
        );
        assert_eq!(terms("x SERVER.*"), [slot("", Slot::Listener, ".*")]);
        assert_eq!(terms("x COMMAND…"), [slot("", Slot::Command, "")]);
        assert_eq!(terms("x COMMAND"), [slot("", Slot::CommandName, "")]);
        assert_eq!(
            terms("x ADDR[/PREFIX]"),
            [slot("", Slot::Other, ""), slot("", Slot::Other, "/PREFIX")]
        );
    }

    #[test]
    fn a_place_reads_the_fixed_word_before_it() {
        let groups = parse("x", "x NAME [as NAME] [sni NAME] [timeout DUR]");
        let slots: Vec<Slot> = groups
            .iter()
            .flat_map(|n| match n {
                Node::Word { terms, .. } => terms.clone(),
                Node::Group { alts } => alts
                    .iter()
                    .flatten()
                    .flat_map(|n| match n {
                        Node::Word { terms, .. } => terms.clone(),
                        Node::Group { .. } => Vec::new(),
                    })
                    .collect(),
            })
            .filter_map(|t| match t {
                Term::Slot { slot, .. } => Some(slot),
                Term::Lit(_) => None,
            })
            .collect();
        assert_eq!(
            slots,
            [Slot::Socket, Slot::NewName, Slot::NewName, Slot::Number]
        );
    }

    #[test]
    fn broken_usage_text_is_read_without_panicking() {
        for u in [
            "x [", "x ]", "x [a | ", "x a]b[", "x | |", "x […]", "x ……", "x [[A]]B", "x",
        ] {
            let line: &'static [Node] = parse("x", u).leak();
            let _ = render(&vec![line]);
        }
    }
}
