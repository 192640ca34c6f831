//! Workloads: what a worker does, step by step, whatever runs it.

use std::fmt;
use std::time::Duration;

use crate::error::{Result, TaskError};

/// The known workloads: name and one line of help, in the order help shows
/// them. `main` is not one: the shell prints the lecture's `main##i` itself.
pub const WORKLOADS: &[(&str, &str)] = &[
    (
        "coding",
        "prints 敲代码...i, 0.1 s apart (the lecture's coding())",
    ),
    (
        "music",
        "prints 听音乐--------i, 0.1 s apart (the lecture's music())",
    ),
    (
        "primes",
        "primes N: counts the primes below N by trial division, flat out (CPU-bound)",
    ),
    (
        "nap",
        "prints nap...i and sleeps, step after step (waiting-bound)",
    ),
];

/// Steps a workload may have: `times` is `1..=MAX_TIMES`.
pub const MAX_TIMES: u64 = 100_000;
/// Steps when `times` is not given (the lecture's `range(10)`).
pub const DEFAULT_TIMES: u32 = 10;
/// The pause between steps when `every` is not given (the lecture's
/// `time.sleep(0.1)`).
pub const DEFAULT_EVERY: Duration = Duration::from_millis(100);
/// The longest pause between steps.
pub const MAX_EVERY: Duration = Duration::from_secs(60);
/// The largest `N` of `primes N` (about a second of trial division).
pub const MAX_PRIMES_BELOW: u64 = 10_000_000;

/// Which workload, with its own argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `敲代码...{i}`, paced.
    Coding,
    /// `听音乐--------{i}`, paced.
    Music,
    /// Counts primes below `below`, one step per slice of the range, never
    /// pausing.
    Primes {
        /// Count the primes below this number.
        below: u64,
    },
    /// `nap...{i}`, paced: the worker spends its life waiting.
    Nap,
}

/// A workload with its parameters, checked: whatever runs it (a process, a
/// thread or a task) produces the same lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    kind: Kind,
    times: u32,
    every: Duration,
}

impl Workload {
    /// The workload called `name`, with default parameters. `primes` needs
    /// its `N`: use [`Workload::with_arg`] or [`Workload::primes`].
    ///
    /// # Errors
    ///
    /// [`TaskError::UnknownWorkload`] (listing the known names) or, for
    /// `primes`, [`TaskError::BadParameter`].
    pub fn new(name: &str) -> Result<Self> {
        Self::with_arg(name, None)
    }

    /// The workload called `name` with its argument (`primes N`; the others
    /// take none).
    ///
    /// # Errors
    ///
    /// [`TaskError::UnknownWorkload`], or [`TaskError::BadParameter`] when
    /// the argument is missing, out of range, or given to a workload that
    /// takes none.
    pub fn with_arg(name: &str, arg: Option<u64>) -> Result<Self> {
        let paced = |kind| Workload {
            kind,
            times: DEFAULT_TIMES,
            every: DEFAULT_EVERY,
        };
        let workload = match name {
            "coding" => paced(Kind::Coding),
            "music" => paced(Kind::Music),
            "nap" => paced(Kind::Nap),
            "primes" => {
                return match arg {
                    Some(below) => Self::primes(below),
                    None => Err(TaskError::BadParameter {
                        workload: "primes",
                        param: "N",
                        problem: "is required (primes N counts the primes below N)".into(),
                    }),
                }
            }
            _ => {
                return Err(TaskError::UnknownWorkload {
                    name: name.to_string(),
                    known: WORKLOADS
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        };
        match arg {
            None => Ok(workload),
            Some(value) => Err(TaskError::BadParameter {
                workload: workload.name(),
                param: "argument",
                problem: format!("{value} given, but {} takes none", workload.name()),
            }),
        }
    }

    /// `coding`, with default parameters.
    pub fn coding() -> Self {
        Workload {
            kind: Kind::Coding,
            times: DEFAULT_TIMES,
            every: DEFAULT_EVERY,
        }
    }

    /// `music`, with default parameters.
    pub fn music() -> Self {
        Workload {
            kind: Kind::Music,
            ..Self::coding()
        }
    }

    /// `nap`, with default parameters.
    pub fn nap() -> Self {
        Workload {
            kind: Kind::Nap,
            ..Self::coding()
        }
    }

    /// `primes N`: count the primes below `below` in `times` steps.
    ///
    /// # Errors
    ///
    /// [`TaskError::BadParameter`] unless `below` is `1..=MAX_PRIMES_BELOW`.
    pub fn primes(below: u64) -> Result<Self> {
        if !(1..=MAX_PRIMES_BELOW).contains(&below) {
            return Err(TaskError::BadParameter {
                workload: "primes",
                param: "N",
                problem: format!("must be 1..={MAX_PRIMES_BELOW}, got {below}"),
            });
        }
        Ok(Workload {
            kind: Kind::Primes { below },
            times: DEFAULT_TIMES,
            every: Duration::ZERO,
        })
    }

    /// The same workload with `times` steps.
    ///
    /// # Errors
    ///
    /// [`TaskError::BadParameter`] unless `times` is `1..=MAX_TIMES`.
    pub fn times(self, times: u64) -> Result<Self> {
        match u32::try_from(times) {
            Ok(t) if (1..=MAX_TIMES).contains(&times) => Ok(Workload { times: t, ..self }),
            _ => Err(TaskError::BadParameter {
                workload: self.name(),
                param: "times",
                problem: format!("must be 1..={MAX_TIMES}, got {times}"),
            }),
        }
    }

    /// The same workload pausing `every` after each step (zero: no pause).
    ///
    /// # Errors
    ///
    /// [`TaskError::BadParameter`] if `every` is over [`MAX_EVERY`], or for
    /// `primes`, which never pauses.
    pub fn every(self, every: Duration) -> Result<Self> {
        if matches!(self.kind, Kind::Primes { .. }) && !every.is_zero() {
            return Err(TaskError::BadParameter {
                workload: self.name(),
                param: "every",
                problem: "does not apply: primes runs flat out (it is the CPU-bound workload)"
                    .into(),
            });
        }
        if every > MAX_EVERY {
            return Err(TaskError::BadParameter {
                workload: self.name(),
                param: "every",
                problem: format!("must be at most {MAX_EVERY:?}, got {every:?}"),
            });
        }
        Ok(Workload { every, ..self })
    }

    /// The workload's name (`coding`, `music`, `primes`, `nap`).
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Coding => "coding",
            Kind::Music => "music",
            Kind::Primes { .. } => "primes",
            Kind::Nap => "nap",
        }
    }

    /// Which workload, with its argument.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// How many steps (lines) it produces.
    pub fn steps(&self) -> u32 {
        self.times
    }

    /// The pause after each step.
    pub fn pause(&self) -> Duration {
        self.every
    }

    /// The arguments that carry this workload to a worker process (after the
    /// hidden flag and the parent's PID): name, times, every in
    /// microseconds, argument.
    pub(crate) fn to_args(self) -> [String; 4] {
        let arg = match self.kind {
            Kind::Primes { below } => below,
            _ => 0,
        };
        [
            self.name().to_string(),
            self.times.to_string(),
            self.every.as_micros().to_string(),
            arg.to_string(),
        ]
    }

    /// The inverse of [`Workload::to_args`], checking everything again.
    pub(crate) fn from_args(args: &[String]) -> Result<Self> {
        let [name, times, every, arg] = args else {
            return Err(TaskError::BadParameter {
                workload: "worker",
                param: "arguments",
                problem: format!("must be NAME TIMES EVERY_US ARG, got {} words", args.len()),
            });
        };
        let number = |param: &'static str, text: &str| {
            text.parse::<u64>().map_err(|_| TaskError::BadParameter {
                workload: "worker",
                param,
                problem: format!("is not a number: '{text}'"),
            })
        };
        let arg = number("argument", arg)?;
        let workload = if name == "primes" {
            Self::primes(arg)?
        } else {
            Self::new(name)?
        };
        workload
            .times(number("times", times)?)?
            .every(Duration::from_micros(number("every", every)?))
    }

    /// The step-by-step run of this workload: produces each step's text,
    /// doing the step's work. Pacing is the runner's business.
    pub(crate) fn run(self) -> Steps {
        Steps {
            workload: self,
            next: 0,
            count: 0,
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if let Kind::Primes { below } = self.kind {
            write!(f, " {below}")?;
        }
        write!(f, " times={}", self.times)?;
        if !matches!(self.kind, Kind::Primes { .. }) {
            let every = self.every;
            if every.subsec_nanos() % 1_000_000 == 0 {
                write!(f, " every={}ms", every.as_millis())?;
            } else {
                write!(f, " every={}us", every.as_micros())?;
            }
        }
        Ok(())
    }
}

/// A workload being run: each call to [`Steps::next_text`] does one step's
/// work and returns its line.
#[derive(Debug)]
pub(crate) struct Steps {
    workload: Workload,
    next: u32,
    count: u64,
}

impl Steps {
    /// The next step's index and text, or `None` after the last step.
    pub(crate) fn next_text(&mut self) -> Option<(u32, String)> {
        let i = self.next;
        if i >= self.workload.times {
            return None;
        }
        self.next += 1;
        let text = match self.workload.kind {
            Kind::Coding => format!("敲代码...{i}"),
            Kind::Music => format!("听音乐--------{i}"),
            Kind::Nap => format!("nap...{i}"),
            Kind::Primes { below } => {
                let times = u64::from(self.workload.times);
                let lo = below * u64::from(i) / times;
                let hi = below * (u64::from(i) + 1) / times;
                self.count += (lo..hi).filter(|&n| is_prime(n)).count() as u64;
                format!("primes below {hi}: {}", self.count)
            }
        };
        Some((i, text))
    }
}

/// Trial division, on purpose: the point is to keep a core busy.
fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n % 2 == 0 {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(w: Workload) -> Vec<String> {
        let mut run = w.run();
        std::iter::from_fn(|| run.next_text().map(|(_, t)| t)).collect()
    }

    #[test]
    fn lecture_lines() {
        let coding = texts(Workload::coding());
        assert_eq!(coding.len(), 10);
        assert_eq!(coding[0], "敲代码...0");
        assert_eq!(coding[9], "敲代码...9");
        let music = texts(Workload::music());
        assert_eq!(music[3], "听音乐--------3");
        assert_eq!(Workload::coding().pause(), Duration::from_millis(100));
    }

    #[test]
    fn primes_counts() {
        let lines = texts(Workload::primes(100).unwrap().times(4).unwrap());
        assert_eq!(
            lines,
            [
                "primes below 25: 9",
                "primes below 50: 15",
                "primes below 75: 21",
                "primes below 100: 25"
            ]
        );
        assert_eq!(
            (0..30).filter(|&n| is_prime(n)).collect::<Vec<_>>(),
            [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
        );
        // More steps than numbers: empty slices, still one line per step.
        assert_eq!(
            texts(Workload::primes(3).unwrap().times(5).unwrap()).len(),
            5
        );
    }

    #[test]
    fn unknown_workload_lists_known_ones() {
        let err = Workload::new("main").unwrap_err().to_string();
        assert_eq!(
            err,
            "no workload named 'main' (known: coding, music, primes, nap)"
        );
    }

    #[test]
    fn parameter_bounds() {
        let e = |r: Result<Workload>| r.unwrap_err().to_string();
        assert_eq!(
            e(Workload::coding().times(0)),
            "coding: times must be 1..=100000, got 0"
        );
        assert_eq!(
            e(Workload::coding().times(1_000_000_000)),
            "coding: times must be 1..=100000, got 1000000000"
        );
        assert!(Workload::coding().times(100_000).is_ok());
        assert!(e(Workload::nap().every(Duration::from_secs(61))).contains("at most 60s"));
        assert!(Workload::nap().every(Duration::ZERO).is_ok());
        assert!(e(Workload::primes(10)
            .unwrap()
            .every(Duration::from_millis(1)))
        .contains("flat out"));
        assert!(e(Workload::new("primes")).contains("required"));
        assert!(e(Workload::primes(0)).contains("1..=10000000"));
        assert!(e(Workload::primes(MAX_PRIMES_BELOW + 1)).contains("got 10000001"));
        assert!(e(Workload::with_arg("coding", Some(3))).contains("takes none"));
    }

    #[test]
    fn args_round_trip() {
        for w in [
            Workload::coding(),
            Workload::music().times(3).unwrap(),
            Workload::nap().every(Duration::from_micros(1500)).unwrap(),
            Workload::primes(1000).unwrap().times(7).unwrap(),
        ] {
            assert_eq!(Workload::from_args(&w.to_args()).unwrap(), w);
        }
        let bad = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            Workload::from_args(&args).unwrap_err().to_string()
        };
        assert!(bad(&["coding"]).contains("got 1 words"));
        assert!(bad(&["coding", "x", "0", "0"]).contains("not a number"));
        assert!(bad(&["coding", "0", "0", "0"]).contains("times must be"));
        assert!(bad(&["rm", "1", "0", "0"]).contains("no workload"));
    }

    #[test]
    fn display() {
        assert_eq!(
            Workload::coding().to_string(),
            "coding times=10 every=100ms"
        );
        assert_eq!(
            Workload::primes(500).unwrap().to_string(),
            "primes 500 times=10"
        );
        assert_eq!(
            Workload::nap()
                .every(Duration::from_micros(250))
                .unwrap()
                .to_string(),
            "nap times=10 every=250us"
        );
    }
}
