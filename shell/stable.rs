//! Stable transcripts (`--stable`, `record`, `check`): what the machine
//! decides is *named*, not numbered, so a session gives the same transcript
//! byte for byte on every run and on every machine with the same programs.
//!
//! - an ephemeral port is named after the lab socket that owns it
//!   (`{srv.port}`; a port only an outside peer owns is named after the lab
//!   socket connected to it, `{srv.1.peer.port}`; one nobody in the lab
//!   knows is `{port1}`, `{port2}`, … in order of first appearance);
//! - process and thread ids are `{pid1}`, `{pid2}`, … in order of first
//!   appearance (one numbering: a process's main thread has its pid), and
//!   also inside a lab host's namespace name (`sl{pid1}-teacher`); a
//!   thread of the shell's runtime that happened to run a task is
//!   `{runtime}` (which of them runs it is the scheduler's choice);
//! - the number of cores (`measure`'s "this machine has {cores} cores");
//! - durations, rates and ratios are `{time}`, `{rate}`, `{ratio}` (a
//!   `bench` figure also `{size}`, `{count}`, by its unit); a TLS
//!   certificate made for the session shows `{sha256}` and `valid {dates}`;
//! - paths under the session's temporary directory are `{tmp}/…` already.
//!
//! Who owns a port is asked of the lab when the port is first printed (the
//! lab knows every socket's addresses); everything else is recognised by
//! the way socklab prints it. One session runs per process, so the names
//! are the process's: [`enable`] once, then [`apply`] wherever text leaves
//! (standard output, a table's cells before they are aligned, a script's
//! error lines).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex, OnceLock};

use regex::{Captures, Regex};

/// Says which lab socket owns a port, at an address when the text gives
/// one (lab hosts in different namespaces may be given the same ephemeral
/// port): `Some("srv.port")`, `Some("srv.1.peer.port")`, or `None`.
pub type Owner = Box<dyn Fn(Option<IpAddr>, u16) -> Option<String> + Send + Sync>;

/// The names given so far, and who to ask about a port.
struct Stable {
    /// Who owns a port (the lab).
    owner: Owner,
    /// The machine's ephemeral port range: only these ports are named.
    ephemeral: (u16, u16),
    /// The shell's own process id (its runtime's threads are `{runtime}`).
    shell_pid: u32,
    /// What has been named so far.
    names: Mutex<Names>,
}

/// Names given, in order of first appearance.
#[derive(Default)]
struct Names {
    /// Port number, at an address where the text gave one → `srv.port`,
    /// `port1`, ….
    ports: HashMap<(Option<IpAddr>, u16), String>,
    /// How many ports got a number of their own.
    unowned: usize,
    /// Process or thread id → `pid1`, ….
    ids: HashMap<u32, String>,
}

static STABLE: OnceLock<Stable> = OnceLock::new();

/// How a script echoes a command (`driver::PROMPT`; `stable` imports
/// nothing of the shell).
const ECHO: &str = "socklab> ";

/// Turns stable transcripts on for this process; `owner` says which lab
/// socket owns a port. A second call changes nothing.
pub fn enable(owner: Owner) {
    let _ = STABLE.set(Stable {
        owner,
        ephemeral: ephemeral_range(),
        shell_pid: std::process::id(),
        names: Mutex::new(Names::default()),
    });
}

/// Whether stable transcripts are on.
pub fn on() -> bool {
    STABLE.get().is_some()
}

/// `text` with what the machine decided named (unchanged when stable
/// transcripts are off). Applying it twice changes nothing more.
pub fn apply(text: &str) -> Cow<'_, str> {
    match STABLE.get() {
        Some(s) => Cow::Owned(s.apply(text)),
        None => Cow::Borrowed(text),
    }
}

/// The machine's ephemeral port range (what the OS picks for port 0 and
/// for clients).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Compiles one of the fixed patterns below.
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("a fixed pattern is valid: {e}"))
}

/// A port as socklab prints one: after an address (`127.0.0.1:41234`,
/// `[::1]:41234`, `127.0.0.1 41234` as typed), in a Python address tuple
/// (`('127.0.0.1', 41234)`), and after "port ".
static PORT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?P<pre>\d+\.\d+\.\d+\.\d+[: ]|\]:|::1 |', |free port |port )(?P<port>\d{1,5})\b")
});
/// A process or thread id, in the order they appear: `pid 1234`,
/// `tid 1234`, a list `(pid 1234, 1235)`, and the shell's pid in a lab
/// host's network namespace (`sl1234-teacher`).
static ID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\bsl(?P<ns>\d+)-|\b(?P<what>pid|tid) (?P<id>\d+)\b(?P<more>(?:, \d+)+\))?")
});
/// Durations: TCP_INFO and ping (`24 µs`, `0.118 ms`), transfers
/// (`0.467 s`), `measure` (`2.747s`).
static TIME: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b\d+ µs\b|\b\d+\.\d{3} ms\b|\b\d+\.\d{3} s\b|\b\d+\.\d{3}s\b"));
/// Rates: transfers (`3.50 MiB/s`), TCP_INFO (`1724631578 bytes/s`).
static RATE: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d+\.\d{2} MiB/s|\b\d+ bytes/s\b"));
/// `measure`'s speedups (`1.67x`).
static RATIO: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d+\.\d{2}x\b"));
/// A `bench` figure line (`bench rtt: p50 12.3 us`): its number, named by
/// its unit. Counts the command fixed (`held 100 conns`, `count 1000
/// trips`) stay.
static BENCH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?m)^(?P<pre>bench \w+: \S+ )(?P<n>[0-9.]+) (?P<unit>us|s|B|KiB|MiB|GiB|fds|\S+/s|KiB/conn)$",
    )
});
/// The number of cores, as `measure` says it.
static CORES: LazyLock<Regex> = LazyLock::new(|| re(r"\bthis machine has \d+ cores?\b"));
/// A SHA-256 fingerprint as `AB:CD:…` (32 bytes).
static FINGERPRINT: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:[0-9A-F]{2}:){31}[0-9A-F]{2}\b"));
/// A session certificate's validity.
static VALIDITY: LazyLock<Regex> =
    LazyLock::new(|| re(r"valid \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}"));

impl Stable {
    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `text` named, but for the commands a script echoes (`socklab> …`):
    /// they are the person's own words, kept as typed.
    fn apply(&self, text: &str) -> String {
        if !text.contains(ECHO) {
            return self.name(text);
        }
        text.split_inclusive('\n')
            .map(|l| {
                if l.starts_with(ECHO) {
                    l.to_string()
                } else {
                    self.name(l)
                }
            })
            .collect()
    }

    fn name(&self, text: &str) -> String {
        let text = PORT.replace_all(text, |c: &Captures<'_>| match c["port"].parse::<u16>() {
            Ok(port) if (self.ephemeral.0..=self.ephemeral.1).contains(&port) => {
                let pre = &c["pre"];
                let addr = pre.trim_end_matches([':', ' ']).parse::<IpAddr>().ok();
                format!("{pre}{{{}}}", self.port_name(addr, port))
            }
            _ => c[0].to_string(),
        });
        let text = ID.replace_all(&text, |c: &Captures<'_>| {
            if let Some(ns) = c.name("ns") {
                return format!("sl{{{}}}-", self.id_name(ns.as_str(), false));
            }
            let tid = &c["what"] == "tid";
            let mut out = format!("{} {{{}}}", &c["what"], self.id_name(&c["id"], tid));
            if let Some(more) = c.name("more") {
                for id in more.as_str().trim_end_matches(')').split(", ").skip(1) {
                    out.push_str(&format!(", {{{}}}", self.id_name(id, false)));
                }
                out.push(')');
            }
            out
        });
        let text = BENCH.replace_all(&text, |c: &Captures<'_>| {
            let name = match &c["unit"] {
                "us" | "s" => "time",
                "fds" => "count",
                u if u.ends_with("/s") => "rate",
                _ => "size",
            };
            format!("{}{{{name}}} {}", &c["pre"], &c["unit"])
        });
        let text = CORES.replace_all(&text, "this machine has {cores} cores");
        let text = FINGERPRINT.replace_all(&text, "{sha256}");
        let text = VALIDITY.replace_all(&text, "valid {dates}");
        let text = TIME.replace_all(&text, "{time}");
        let text = RATE.replace_all(&text, "{rate}");
        RATIO.replace_all(&text, "{ratio}").into_owned()
    }

    /// The name of an ephemeral port (at `addr` where the text gives it):
    /// the first time, asked of the lab. A port no lab socket holds at
    /// that address is named as the port alone.
    fn port_name(&self, addr: Option<IpAddr>, port: u16) -> String {
        let key = (addr, port);
        if let Some(n) = self.names().ports.get(&key) {
            return n.clone();
        }
        // Asked without holding the names: the lab takes locks of its own.
        let owner = (self.owner)(addr, port);
        if owner.is_none() && addr.is_some() {
            let name = self.port_name(None, port);
            self.names().ports.insert(key, name.clone());
            return name;
        }
        let mut names = self.names();
        if let Some(n) = names.ports.get(&key) {
            return n.clone();
        }
        let name = owner.unwrap_or_else(|| {
            names.unowned += 1;
            format!("port{}", names.unowned)
        });
        names.ports.insert(key, name.clone());
        name
    }

    /// The name of a process or thread id, given at its first appearance.
    /// A thread of the shell's runtime (which of them runs a task is the
    /// scheduler's choice) is `runtime`.
    fn id_name(&self, id: &str, tid: bool) -> String {
        let Ok(n) = id.parse::<u32>() else {
            return id.to_string();
        };
        if tid && n != self.shell_pid && runtime_thread(n) {
            return "runtime".to_string();
        }
        let mut names = self.names();
        let next = names.ids.len() + 1;
        names
            .ids
            .entry(n)
            .or_insert_with(|| format!("pid{next}"))
            .clone()
    }
}

/// Whether thread `tid` of this process is one of the tokio runtime's
/// worker threads (by their default name: `tokio-rt-worker` since tokio
/// 1.44, `tokio-runtime-worker` cut to 15 bytes by the kernel before).
fn runtime_thread(tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .is_ok_and(|c| c.starts_with("tokio-rt-worker") || c.starts_with("tokio-runtime-w"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stable() -> Stable {
        Stable {
            owner: Box::new(|a, p| match (a, p) {
                (_, 40000) => Some("srv.port".to_string()),
                (_, 40001) => Some("cli.port".to_string()),
                (Some(a), 40002) if a.to_string() == "192.168.24.2" => Some("st2.port".into()),
                (Some(a), 40002) if a.to_string() == "192.168.24.3" => Some("st3.port".into()),
                _ => None,
            }),
            ephemeral: (32768, 60999),
            shell_pid: 1,
            names: Mutex::new(Names::default()),
        }
    }

    #[test]
    fn ports_are_named_after_their_sockets_or_numbered() {
        let s = stable();
        assert_eq!(
            s.apply("cli: connected to 127.0.0.1:40000 from 127.0.0.1:40001; 127.0.0.1:5555"),
            "cli: connected to 127.0.0.1:{srv.port} from 127.0.0.1:{cli.port}; 127.0.0.1:5555"
        );
        assert_eq!(
            s.apply("('127.0.0.1', 50000) [::1]:50001 port 50000 free port 40000"),
            "('127.0.0.1', {port1}) [::1]:{port2} port {port1} free port {srv.port}"
        );
    }

    /// Regression: two students in different lab hosts were given the same
    /// ephemeral port, and both were named after the first (`{st18.port}`
    /// where st13's was meant), so the classroom lesson's check failed.
    #[test]
    fn one_port_number_at_two_addresses_gets_two_names() {
        let s = stable();
        assert_eq!(
            s.apply("st2 from 192.168.24.2:40002, st3 from 192.168.24.3:40002; 127.0.0.1:40002"),
            "st2 from 192.168.24.2:{st2.port}, st3 from 192.168.24.3:{st3.port}; 127.0.0.1:{port1}"
        );
    }

    #[test]
    fn ids_are_numbered_in_order_of_first_appearance() {
        let s = stable();
        assert_eq!(
            s.apply("job1: workers a, b as processes (pid 900, 901)\n[a pid 900 (x) tid 900] netns sl1-x sl1-y"),
            "job1: workers a, b as processes (pid {pid1}, {pid2})\n[a pid {pid1} (x) tid {pid1}] netns sl{pid3}-x sl{pid3}-y"
        );
    }

    #[test]
    fn times_rates_and_fingerprints_are_named() {
        let s = stable();
        let fp = vec!["AB"; 32].join(":");
        assert_eq!(
            s.apply(&format!(
                "58 bytes in 0.467 s, 0.02 MiB/s; rtt 24 µs; time=0.089 ms; 2.747s 1.67x; {fp}; valid 2026-11-30 to 2026-12-30; timeout 200ms; this machine has 16 cores"
            )),
            "58 bytes in {time}, {rate}; rtt {time}; time={time}; {time} {ratio}; {sha256}; valid {dates}; timeout 200ms; this machine has {cores} cores"
        );
    }

    #[test]
    fn bench_figures_are_named_by_their_unit() {
        let s = stable();
        assert_eq!(
            s.apply("bench stream: throughput 1932.4 MiB/s\nbench stream: bytes 9.43 GiB\nbench stream: time 5.00 s\nbench rtt: count 1000 trips\nbench rtt: p99.9 20.1 us\nbench connect: rate 12345 conn/s\nbench hold: held 100 conns\nbench hold: rss 3.1 KiB/conn\nbench hold: nofile 20000 fds\n"),
            "bench stream: throughput {rate} MiB/s\nbench stream: bytes {size} GiB\nbench stream: time {time} s\nbench rtt: count 1000 trips\nbench rtt: p99.9 {time} us\nbench connect: rate {rate} conn/s\nbench hold: held 100 conns\nbench hold: rss {size} KiB/conn\nbench hold: nofile {count} fds\n"
        );
    }

    #[test]
    fn echoed_commands_are_kept_as_typed() {
        let s = stable();
        assert_eq!(
            s.apply("socklab> send cli \"port 40000\"\ncli -> port 40000\n"),
            "socklab> send cli \"port 40000\"\ncli -> port {srv.port}\n"
        );
    }

    #[test]
    fn applying_twice_changes_nothing_more() {
        let s = stable();
        let once = s.apply("127.0.0.1:40000 pid 77 (pid 77, 78) 0.5 s");
        assert_eq!(s.apply(&once), once);
    }
}
