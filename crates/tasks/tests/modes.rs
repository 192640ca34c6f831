//! The three modes: who runs the lines, and the lecture's demo.

use std::collections::HashSet;
use std::time::Duration;

use socklab_tasks::{Ending, JobState, LineKind, Mode, Sequencer, WorkerState, Workload};

use crate::support::{collect, collect_all, gettid, jobs, rt, steps, Test};

pub const TESTS: &[Test] = &[
    (
        "modes::process_workers_are_other_processes",
        process_workers_are_other_processes,
    ),
    (
        "modes::thread_workers_share_the_pid_not_the_tid",
        thread_workers_share_the_pid_not_the_tid,
    ),
    (
        "modes::task_workers_share_the_pid",
        task_workers_share_the_pid,
    ),
    (
        "modes::lecture_coding_music_in_every_mode",
        lecture_coding_music_in_every_mode,
    ),
    ("modes::primes_in_every_mode", primes_in_every_mode),
];

fn quick(w: Workload) -> Workload {
    w.times(3).unwrap().every(Duration::from_millis(1)).unwrap()
}

fn process_workers_are_other_processes() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let info = jobs
            .spawn(
                Mode::Process,
                &[quick(Workload::coding()), quick(Workload::music())],
            )
            .await
            .unwrap();
        let me = std::process::id();
        let pids: Vec<u32> = info.workers.iter().map(|w| w.pid).collect();
        assert!(pids.iter().all(|&p| p != me && p != 0), "{pids:?}");
        assert_ne!(pids[0], pids[1]);
        let (info, lines) = collect(&jobs, &mut rx, &info.name, &mut Vec::new()).await;
        assert_eq!(info.state, JobState::Done);
        assert_eq!(steps(&lines).len(), 6);
        for l in steps(&lines) {
            // The child wrote its own PID and TID: a fresh process's only
            // thread has the PID as its id.
            assert_eq!(l.pid, pids[l.worker], "{l:?}");
            assert_eq!(l.tid, l.pid);
            assert!(l.elapsed < Duration::from_secs(30));
        }
        for w in &info.workers {
            assert_eq!(w.state, WorkerState::Done);
            assert_eq!(w.lines, 3);
            crate::support::assert_gone(w.pid);
        }
        // Each worker's lines arrive in its own step order.
        for worker in 0..2 {
            let order: Vec<u32> = steps(&lines)
                .iter()
                .filter(|l| l.worker == worker)
                .map(|l| l.step)
                .collect();
            assert_eq!(order, [0, 1, 2]);
        }
    });
}

fn thread_workers_share_the_pid_not_the_tid() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let info = jobs
            .spawn(
                Mode::Thread,
                &[quick(Workload::coding()), quick(Workload::music())],
            )
            .await
            .unwrap();
        // Thread ids are known once spawn returns.
        let tids: Vec<u32> = info.workers.iter().map(|w| w.tid.unwrap()).collect();
        assert_ne!(tids[0], tids[1]);
        let (info, lines) = collect(&jobs, &mut rx, &info.name, &mut Vec::new()).await;
        assert_eq!(info.state, JobState::Done);
        let me = std::process::id();
        let here = gettid();
        for l in steps(&lines) {
            assert_eq!(l.pid, me);
            assert_eq!(l.tid, tids[l.worker]);
            assert_ne!(l.tid, here);
            assert_ne!(l.tid, me, "not the main thread");
        }
    });
}

fn task_workers_share_the_pid() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let info = jobs
            .spawn(
                Mode::Task,
                &[quick(Workload::coding()), quick(Workload::music())],
            )
            .await
            .unwrap();
        let (info, lines) = collect(&jobs, &mut rx, &info.name, &mut Vec::new()).await;
        assert_eq!(info.state, JobState::Done);
        let me = std::process::id();
        assert!(steps(&lines).iter().all(|l| l.pid == me));
        // The tasks ran on this runtime's two worker threads (whichever).
        let tids: HashSet<u32> = steps(&lines).iter().map(|l| l.tid).collect();
        assert!(!tids.is_empty() && tids.len() <= 2, "{tids:?}");
        assert!(info
            .workers
            .iter()
            .all(|w| w.tid.is_some_and(|t| tids.contains(&t))));
    });
}

/// The lecture's §15 demo, in all three modes at once (three jobs, one
/// channel): each job prints exactly the lecture's 20 lines, 0.1 s apart,
/// and the sequencer interleaves them coding0, music0, coding1, ….
fn lecture_coding_music_in_every_mode() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let pair = [
            Workload::new("coding").unwrap(),
            Workload::new("music").unwrap(),
        ];
        let mut names = Vec::new();
        for mode in Mode::ALL {
            names.push(jobs.spawn(mode, &pair).await.unwrap().name);
        }
        let names_: Vec<&str> = names.iter().map(String::as_str).collect();
        let all = collect_all(&jobs, &mut rx, &names_).await;
        let mut expected = Vec::new();
        for i in 0..10 {
            expected.push(format!("敲代码...{i}"));
            expected.push(format!("听音乐--------{i}"));
        }
        for (name, mode) in names.iter().zip(Mode::ALL) {
            let lines: Vec<_> = all.iter().filter(|l| &*l.job == name).cloned().collect();
            let mut texts: Vec<String> = steps(&lines).iter().map(|l| l.text.clone()).collect();
            texts.sort();
            let mut want = expected.clone();
            want.sort();
            assert_eq!(texts, want, "{mode}: the lecture's 20 lines");
            // Paced 0.1 s apart: the last step comes about 0.9 s in.
            let last = steps(&lines).iter().map(|l| l.elapsed).max().unwrap();
            assert!(last >= Duration::from_millis(850), "{mode}: {last:?}");

            let mut seq = Sequencer::new(name, 2);
            let mut out = Vec::new();
            for l in lines {
                out.extend(seq.push(l));
            }
            assert!(seq.is_finished(), "{mode}");
            let ordered: Vec<&str> = out
                .iter()
                .filter(|l| l.kind == LineKind::Step)
                .map(|l| l.text.as_str())
                .collect();
            assert_eq!(ordered, expected, "{mode}: interleaved");
            let ends: Vec<_> = out.iter().filter(|l| l.kind != LineKind::Step).collect();
            assert_eq!(ends.len(), 2);
            assert!(ends.iter().all(|l| l.kind == LineKind::End(Ending::Done)));
            assert_eq!(out.last().unwrap().worker, 1);
        }
    });
}

fn primes_in_every_mode() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let w = Workload::with_arg("primes", Some(1000))
            .unwrap()
            .times(4)
            .unwrap();
        for mode in Mode::ALL {
            let info = jobs.spawn(mode, &[w]).await.unwrap();
            let (info, lines) = collect(&jobs, &mut rx, &info.name, &mut Vec::new()).await;
            assert_eq!(info.state, JobState::Done, "{mode}");
            let texts: Vec<&str> = steps(&lines).iter().map(|l| l.text.as_str()).collect();
            assert_eq!(
                texts,
                [
                    "primes below 250: 53",
                    "primes below 500: 95",
                    "primes below 750: 132",
                    "primes below 1000: 168"
                ],
                "{mode}"
            );
        }
    });
}
