//! [`Sequencer`]: the lines of workers that run together, in an order that
//! does not depend on scheduling.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::line::{Line, LineKind};

/// Puts the lines of one job's workers in transcript order: every worker's
/// step `i` before any worker's step `i + 1`, and within a step, workers in
/// spawn order. The workers still run concurrently; only the printing is
/// reordered. Step `i` is released as soon as every worker still running has
/// produced its step `i` (or ended), so lines are held back only as long as
/// the slowest worker takes to catch up.
///
/// An error line belongs with the step its worker was about to produce; an
/// end line comes after the worker's last step, in the round of the step it
/// would have produced next (so a worker that ends early, killed or failed,
/// stops holding the others back).
///
/// ```
/// # use socklab_tasks::{Line, LineKind, Sequencer};
/// # use std::time::Duration;
/// # let line = |worker: usize, step: u32| Line {
/// #     job: "job1".into(), worker, workload: "coding", step, kind: LineKind::Step,
/// #     text: format!("{worker}:{step}"), pid: 1, tid: 1, elapsed: Duration::ZERO,
/// # };
/// let mut seq = Sequencer::new("job1", 2);
/// assert!(seq.push(line(1, 0)).is_empty()); // music's step 0 waits for coding's
/// let out = seq.push(line(0, 0));
/// assert_eq!(out.iter().map(|l| &l.text[..]).collect::<Vec<_>>(), ["0:0", "1:0"]);
/// ```
#[derive(Debug, Clone)]
pub struct Sequencer {
    job: Arc<str>,
    /// Every round below this one has been released.
    round: u32,
    workers: Vec<Held>,
}

#[derive(Debug, Clone, Default)]
struct Held {
    /// Lines not released yet, with their round, in arrival order.
    lines: VecDeque<(u32, Line)>,
    /// The step this worker will produce next: its rounds below it are
    /// complete.
    next: u32,
    ended: bool,
}

impl Sequencer {
    /// A sequencer for the `workers` workers of the job named `job`.
    pub fn new(job: &str, workers: usize) -> Sequencer {
        Sequencer {
            job: job.into(),
            round: 0,
            workers: vec![Held::default(); workers],
        }
    }

    /// Takes one line as it came off the channel; returns the lines that are
    /// now due, in order (often none, sometimes many). A line of another job
    /// comes straight back, as does one that cannot be placed (a worker
    /// index out of range, a line after its worker's end, a step already
    /// released).
    pub fn push(&mut self, line: Line) -> Vec<Line> {
        if *line.job != *self.job {
            return vec![line];
        }
        let Some(held) = self.workers.get_mut(line.worker) else {
            return vec![line];
        };
        if held.ended {
            return vec![line];
        }
        let round = match line.kind {
            LineKind::Step => {
                let round = line.step;
                held.next = held.next.max(round.saturating_add(1));
                round
            }
            LineKind::Error => held.next,
            LineKind::End(_) => {
                held.ended = true;
                held.next
            }
        };
        if round < self.round {
            // Its round is out already (a worker process repeated a step):
            // holding it back would not put it in its place.
            let mut out = vec![line];
            out.extend(self.release(false));
            return out;
        }
        held.lines.push_back((round, line));
        self.release(false)
    }

    /// Marks `worker` as ended before this sequencer saw any of its lines
    /// (an earlier sequencer took its end line): it holds no round back,
    /// and a line of it that still comes is handed straight back. An index
    /// out of range is ignored.
    pub fn mark_ended(&mut self, worker: usize) {
        if let Some(held) = self.workers.get_mut(worker) {
            held.ended = true;
        }
    }

    /// Releases every line still held, round by round, whether or not the
    /// round is complete: for when waiting for the rest makes no sense any
    /// more (a timeout, the channel closed).
    pub fn flush(&mut self) -> Vec<Line> {
        self.release(true)
    }

    /// Whether every worker has ended and every line has been released.
    pub fn is_finished(&self) -> bool {
        self.workers.iter().all(|w| w.ended && w.lines.is_empty())
    }

    /// How many lines are held back.
    pub fn held(&self) -> usize {
        self.workers.iter().map(|w| w.lines.len()).sum()
    }

    /// The name of the job it orders.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The lowest round of a held line.
    fn first_held(&self) -> Option<u32> {
        self.workers
            .iter()
            .filter_map(|w| w.lines.front().map(|(r, _)| *r))
            .min()
    }

    fn release(&mut self, all: bool) -> Vec<Line> {
        let mut out = Vec::new();
        // Bounded: every turn releases at least one held line or stops.
        while let Some(first) = self.first_held() {
            let round = first.max(self.round);
            let complete = self.workers.iter().all(|w| w.ended || w.next > round);
            if !complete && !all {
                break;
            }
            for w in &mut self.workers {
                while w.lines.front().is_some_and(|(r, _)| *r <= round) {
                    if let Some((_, line)) = w.lines.pop_front() {
                        out.push(line);
                    }
                }
            }
            self.round = round.saturating_add(1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::line::Ending;

    fn line(worker: usize, kind: LineKind, step: u32) -> Line {
        let text = match kind {
            LineKind::Step => format!("w{worker}s{step}"),
            LineKind::Error => format!("w{worker}err"),
            LineKind::End(_) => format!("w{worker}end"),
        };
        Line {
            job: "j".into(),
            worker,
            workload: "nap",
            step,
            kind,
            text,
            pid: 1,
            tid: 1,
            elapsed: Duration::ZERO,
        }
    }

    fn step(worker: usize, step: u32) -> Line {
        line(worker, LineKind::Step, step)
    }

    fn end(worker: usize, after: u32) -> Line {
        line(worker, LineKind::End(Ending::Done), after)
    }

    /// What each worker produces, in its own order.
    fn script(steps: &[u32]) -> Vec<Vec<Line>> {
        steps
            .iter()
            .enumerate()
            .map(|(w, &n)| {
                let mut lines: Vec<Line> = (0..n).map(|s| step(w, s)).collect();
                lines.push(end(w, n));
                lines
            })
            .collect()
    }

    /// Interleaves the workers' lines at random (keeping each worker's own
    /// order, as the channel does), with a small deterministic generator.
    fn shuffle(mut per_worker: Vec<Vec<Line>>, seed: u64) -> Vec<Line> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut out = Vec::new();
        for lines in &mut per_worker {
            lines.reverse();
        }
        while per_worker.iter().any(|l| !l.is_empty()) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let live: Vec<usize> = (0..per_worker.len())
                .filter(|&w| !per_worker[w].is_empty())
                .collect();
            let w = live[(state % live.len() as u64) as usize];
            out.extend(per_worker[w].pop());
        }
        out
    }

    fn run(seq: &mut Sequencer, arrivals: Vec<Line>) -> Vec<String> {
        let mut out = Vec::new();
        for l in arrivals {
            out.extend(seq.push(l).into_iter().map(|l| l.text));
        }
        out
    }

    fn texts(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lecture_order_whatever_the_arrival_order() {
        let mut expected = Vec::new();
        for s in 0..10 {
            expected.push(format!("w0s{s}"));
            expected.push(format!("w1s{s}"));
        }
        expected.extend(texts(&["w0end", "w1end"]));
        for seed in 0..200 {
            let mut seq = Sequencer::new("j", 2);
            let out = run(&mut seq, shuffle(script(&[10, 10]), seed));
            assert_eq!(out, expected, "seed {seed}");
            assert!(seq.is_finished());
            assert_eq!(seq.held(), 0);
        }
    }

    #[test]
    fn workers_that_end_early_stop_holding_others_back() {
        // Worker 0 runs 4 steps, worker 1 ends after 2, worker 2 after none.
        let expected = texts(&[
            "w0s0", "w1s0", "w2end", "w0s1", "w1s1", "w0s2", "w1end", "w0s3", "w0end",
        ]);
        for seed in 0..200 {
            let mut seq = Sequencer::new("j", 3);
            let out = run(&mut seq, shuffle(script(&[4, 2, 0]), seed));
            assert_eq!(out, expected, "seed {seed}");
            assert!(seq.is_finished());
        }
    }

    #[test]
    fn a_step_is_released_as_soon_as_it_is_complete() {
        let mut seq = Sequencer::new("j", 2);
        assert!(seq.push(step(0, 0)).is_empty());
        assert!(seq.push(step(0, 1)).is_empty());
        assert_eq!(run(&mut seq, vec![step(1, 0)]), texts(&["w0s0", "w1s0"]));
        assert_eq!(seq.held(), 1);
        assert_eq!(run(&mut seq, vec![step(1, 1)]), texts(&["w0s1", "w1s1"]));
        // A kill: worker 0's end releases worker 1's step 2 at once.
        assert!(seq.push(step(1, 2)).is_empty());
        assert_eq!(
            run(&mut seq, vec![line(0, LineKind::End(Ending::Killed), 2)]),
            texts(&["w0end", "w1s2"])
        );
        assert_eq!(run(&mut seq, vec![step(1, 3)]), texts(&["w1s3"]));
        assert!(!seq.is_finished());
    }

    #[test]
    fn errors_go_with_the_step_their_worker_was_about_to_produce() {
        let mut seq = Sequencer::new("j", 2);
        let out = run(
            &mut seq,
            vec![
                step(1, 0),
                line(1, LineKind::Error, 1),
                step(1, 1),
                step(0, 0),
                step(0, 1),
            ],
        );
        assert_eq!(out, texts(&["w0s0", "w1s0", "w0s1", "w1err", "w1s1"]));
    }

    #[test]
    fn other_jobs_and_strays_pass_straight_through() {
        let mut seq = Sequencer::new("j", 1);
        let mut other = step(0, 5);
        other.job = "k".into();
        assert_eq!(run(&mut seq, vec![other]), texts(&["w0s5"]));
        assert_eq!(run(&mut seq, vec![step(3, 0)]), texts(&["w3s0"]));
        assert_eq!(
            run(&mut seq, vec![step(0, 0), step(0, 0)]),
            texts(&["w0s0", "w0s0"])
        );
        assert_eq!(
            run(&mut seq, vec![end(0, 1), step(0, 1)]),
            texts(&["w0end", "w0s1"])
        );
    }

    #[test]
    fn huge_step_numbers_do_not_loop() {
        let mut seq = Sequencer::new("j", 2);
        assert!(seq.push(step(0, u32::MAX - 1)).is_empty());
        // Worker 0 jumped past step 0: step 0 is complete without it.
        assert_eq!(run(&mut seq, vec![step(1, 0)]), texts(&["w1s0"]));
        assert_eq!(
            run(&mut seq, vec![end(1, 1)]),
            texts(&["w1end", "w0s4294967294"])
        );
    }

    #[test]
    fn flush_releases_everything_in_round_order() {
        let mut seq = Sequencer::new("j", 2);
        assert!(seq.push(step(0, 0)).is_empty());
        assert!(seq.push(step(0, 1)).is_empty());
        assert_eq!(
            seq.flush().into_iter().map(|l| l.text).collect::<Vec<_>>(),
            texts(&["w0s0", "w0s1"])
        );
        assert_eq!(seq.held(), 0);
    }
}
