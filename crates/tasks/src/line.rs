//! What workers report: [`Line`], and the wire format a worker process
//! writes them in.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// One thing a worker reported. Every worker of every job reports on one
/// channel, in the order each worker produced its lines (lines of different
/// workers interleave as they happen; a [`crate::Sequencer`] puts them in
/// transcript order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The job's name (`job1`, …).
    pub job: Arc<str>,
    /// The worker's index in its job, in spawn order (`spawn coding music`:
    /// coding is 0, music is 1).
    pub worker: usize,
    /// The worker's workload (`coding`, …).
    pub workload: &'static str,
    /// For [`LineKind::Step`], the step's index (the `i` of `敲代码...{i}`);
    /// for the other kinds, how many steps the worker had reported before
    /// this line.
    pub step: u32,
    /// What kind of line this is.
    pub kind: LineKind,
    /// The step's output, or what went wrong, or how the worker ended
    /// (`done`, `killed`, `exit status 2`).
    pub text: String,
    /// The process the line comes from: a worker process's own PID; this
    /// process's PID for threads and tasks.
    pub pid: u32,
    /// The kernel thread the line comes from (`gettid`): a worker process's
    /// main thread, a thread worker's thread, or whichever runtime thread was
    /// running a task at that step (it can change from step to step).
    pub tid: u32,
    /// Time from the job's start to the moment the worker produced the line.
    pub elapsed: Duration,
}

/// What a [`Line`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// One step of the workload: `text` is its output.
    Step,
    /// Something went wrong with this worker (a line from a worker process
    /// that could not be read, something on its stderr): `text` says what.
    /// The worker may go on.
    Error,
    /// The worker ended; it reports nothing more.
    End(Ending),
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It ran all its steps.
    Done,
    /// It was killed (`kill`, `kill_all`).
    Killed,
    /// It stopped by itself before its end, or could not be run.
    Failed,
}

/// A line as a worker process writes it to its stdout:
/// `STEP \t PID \t TID \t MONO_NS \t TEXT \n`, where `MONO_NS` is
/// `CLOCK_MONOTONIC` in nanoseconds (the parent subtracts the job's start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireLine {
    pub(crate) step: u32,
    pub(crate) pid: u32,
    pub(crate) tid: u32,
    pub(crate) mono: Duration,
    pub(crate) text: String,
}

/// The longest line the parent reads from a worker process; longer ones
/// are reported as errors.
pub(crate) const MAX_WIRE_LINE: usize = 4096;

impl WireLine {
    /// The line, newline included. Newlines in `text` become spaces.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 48);
        let _ = write!(
            out,
            "{}\t{}\t{}\t{}\t",
            self.step,
            self.pid,
            self.tid,
            self.mono.as_nanos()
        );
        out.extend(self.text.chars().map(|c| match c {
            '\n' | '\r' => ' ',
            c => c,
        }));
        out.push('\n');
        out
    }

    /// Reads one line (without its newline). The error says what is wrong,
    /// quoting the start of the line.
    pub(crate) fn decode(raw: &[u8]) -> Result<WireLine, String> {
        let fail = |why: &str| format!("unreadable line from worker ({why}): {}", excerpt(raw));
        let text = std::str::from_utf8(raw).map_err(|_| fail("not UTF-8"))?;
        let mut fields = text.splitn(5, '\t');
        let mut number = |name: &str| -> Result<u64, String> {
            fields
                .next()
                .ok_or_else(|| fail(&format!("no {name}")))?
                .parse::<u64>()
                .map_err(|_| fail(&format!("bad {name}")))
        };
        let step = number("step")?;
        let pid = number("pid")?;
        let tid = number("tid")?;
        let mono = number("time")?;
        let text = fields.next().ok_or_else(|| fail("no text"))?;
        let small = |n: u64, name: &str| u32::try_from(n).map_err(|_| fail(&format!("bad {name}")));
        Ok(WireLine {
            step: small(step, "step")?,
            pid: small(pid, "pid")?,
            tid: small(tid, "tid")?,
            mono: Duration::from_nanos(mono),
            text: text.to_string(),
        })
    }
}

/// The start of a raw line, printable.
pub(crate) fn excerpt(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(60)];
    let mut out: String = String::from_utf8_lossy(cut).escape_debug().collect();
    if raw.len() > cut.len() {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let line = WireLine {
            step: 3,
            pid: 4242,
            tid: 4243,
            mono: Duration::from_nanos(123_456_789_012),
            text: "敲代码...3\twith a tab".into(),
        };
        let wire = line.encode();
        assert_eq!(
            wire,
            "3\t4242\t4243\t123456789012\t敲代码...3\twith a tab\n"
        );
        assert_eq!(WireLine::decode(wire.trim_end().as_bytes()), Ok(line));
    }

    #[test]
    fn newlines_in_text_cannot_split_a_line() {
        let line = WireLine {
            step: 0,
            pid: 1,
            tid: 1,
            mono: Duration::ZERO,
            text: "a\nb".into(),
        };
        assert_eq!(line.encode(), "0\t1\t1\t0\ta b\n");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for (raw, why) in [
            (&b""[..], "bad step"),
            (b"hello", "bad step"),
            (b"1\t2", "no tid"),
            (b"1\t2\t3\t4", "no text"),
            (b"1\t-2\t3\t4\tx", "bad pid"),
            (b"99999999999\t2\t3\t4\tx", "bad step"),
            (b"1\t2\t3\t4\t\xff", "not UTF-8"),
        ] {
            let err = WireLine::decode(raw).unwrap_err();
            assert!(err.contains(why), "{raw:?}: {err}");
        }
        let long = vec![b'x'; 100];
        assert!(WireLine::decode(&long).unwrap_err().ends_with("…\""));
    }
}
