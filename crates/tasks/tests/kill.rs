//! Killing: no zombie, no orphan, nothing left running.

use std::io::BufRead;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use socklab_tasks::{Ending, JobState, Jobs, LineKind, Mode, WorkerState, Workload};

use crate::support::{assert_gone, collect, jobs, our_children, rt, until_steps, Test};

pub const TESTS: &[Test] = &[
    (
        "kill::process_job_leaves_no_zombie",
        process_job_leaves_no_zombie,
    ),
    (
        "kill::thread_job_stops_in_its_pause",
        thread_job_stops_in_its_pause,
    ),
    ("kill::task_job_is_aborted", task_job_is_aborted),
    ("kill::kill_all_stops_every_mode", kill_all_stops_every_mode),
    (
        "kill::kill_of_an_ended_job_changes_nothing",
        kill_of_an_ended_job_changes_nothing,
    ),
    (
        "kill::wait_times_out_and_the_job_goes_on",
        wait_times_out_and_the_job_goes_on,
    ),
    (
        "kill::dropping_jobs_kills_process_workers",
        dropping_jobs_kills_process_workers,
    ),
    (
        "kill::workers_die_with_the_shell",
        workers_die_with_the_shell,
    ),
];

/// Ten seconds of napping, 10 ms at a time.
fn long_nap() -> Workload {
    Workload::nap()
        .times(1000)
        .unwrap()
        .every(Duration::from_millis(10))
        .unwrap()
}

fn assert_killed(info: &socklab_tasks::JobInfo) {
    assert_eq!(info.state, JobState::Killed, "{info:?}");
    assert!(info.workers.iter().all(|w| w.state == WorkerState::Killed));
}

fn process_job_leaves_no_zombie() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let info = jobs
            .spawn(Mode::Process, &[long_nap(), long_nap()])
            .await
            .unwrap();
        // Both are really running: each has reported a step.
        let mut seen = [false; 2];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while seen != [true; 2] {
            let l = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap()
                .unwrap();
            seen[l.worker] = true;
        }
        let pids: Vec<u32> = info.workers.iter().map(|w| w.pid).collect();
        for &pid in &pids {
            let (state, ppid) = crate::support::proc_stat(pid).expect("worker alive");
            assert_ne!(state, 'Z');
            assert_eq!(ppid, std::process::id());
        }
        let t0 = Instant::now();
        let killed = jobs.kill(&info.name).await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_killed(&killed);
        for &pid in &pids {
            assert_gone(pid);
        }
        assert!(our_children().is_empty(), "{:?}", our_children());
        // The end lines were sent before kill returned.
        let mut ends = 0;
        while let Ok(l) = rx.try_recv() {
            if l.kind == LineKind::End(Ending::Killed) {
                ends += 1;
                assert_eq!(l.pid, pids[l.worker]);
            }
        }
        assert_eq!(ends, 2);
    });
}

fn thread_job_stops_in_its_pause() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let sleepy = Workload::nap()
            .times(100)
            .unwrap()
            .every(Duration::from_secs(30))
            .unwrap();
        let info = jobs.spawn(Mode::Thread, &[sleepy, sleepy]).await.unwrap();
        until_steps(&mut rx, &info.name, 2).await;
        let t0 = Instant::now();
        let killed = jobs.kill(&info.name).await.unwrap();
        // Out of a 30 s pause at once: the flag wakes the sleeper.
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_killed(&killed);
        assert!(killed.workers.iter().all(|w| w.lines == 1));
    });
}

fn task_job_is_aborted() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let info = jobs
            .spawn(Mode::Task, &[long_nap(), long_nap(), long_nap()])
            .await
            .unwrap();
        until_steps(&mut rx, &info.name, 3).await;
        let killed = jobs.kill(&info.name).await.unwrap();
        assert_killed(&killed);
        let mut ends = Vec::new();
        while let Ok(l) = rx.try_recv() {
            if let LineKind::End(e) = l.kind {
                ends.push(e);
            }
        }
        assert_eq!(ends, [Ending::Killed; 3]);
    });
}

fn kill_all_stops_every_mode() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let mut names = Vec::new();
        for mode in Mode::ALL {
            names.push(
                jobs.spawn(mode, &[long_nap(), long_nap()])
                    .await
                    .unwrap()
                    .name,
            );
        }
        for name in &names {
            until_steps(&mut rx, name, 1).await;
        }
        let process_pids: Vec<u32> = jobs
            .info(&names[0])
            .unwrap()
            .workers
            .iter()
            .map(|w| w.pid)
            .collect();
        let infos = jobs.kill_all().await.unwrap();
        assert_eq!(infos.len(), 3);
        for info in &infos {
            assert_killed(info);
        }
        assert!(jobs.list().iter().all(|j| j.state == JobState::Killed));
        for pid in process_pids {
            assert_gone(pid);
        }
        assert!(our_children().is_empty(), "{:?}", our_children());
        // Nothing running: a second kill_all has nothing to do.
        assert!(jobs.kill_all().await.unwrap().is_empty());
    });
}

fn kill_of_an_ended_job_changes_nothing() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let once = Workload::nap()
            .times(1)
            .unwrap()
            .every(Duration::ZERO)
            .unwrap();
        let info = jobs.spawn(Mode::Process, &[once]).await.unwrap();
        let (done, _) = collect(&jobs, &mut rx, &info.name, &mut Vec::new()).await;
        assert_eq!(done.state, JobState::Done);
        let after = jobs.kill(&info.name).await.unwrap();
        assert_eq!(after, done);
        assert_eq!(jobs.remove(&info.name).unwrap(), done);
        assert!(jobs.list().is_empty());
    });
}

fn wait_times_out_and_the_job_goes_on() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let info = jobs.spawn(Mode::Process, &[long_nap()]).await.unwrap();
        until_steps(&mut rx, &info.name, 1).await;
        let err = jobs
            .wait(&info.name, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("waiting for {}: timed out after 50ms", info.name)
        );
        assert_eq!(jobs.info(&info.name).unwrap().state, JobState::Running);
        let err = jobs.remove(&info.name).unwrap_err();
        assert_eq!(err.to_string(), format!("{} is still running", info.name));
        assert_killed(&jobs.kill(&info.name).await.unwrap());
        assert_gone(info.workers[0].pid);
    });
}

fn dropping_jobs_kills_process_workers() {
    let pid = rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let info = jobs.spawn(Mode::Process, &[long_nap()]).await.unwrap();
        until_steps(&mut rx, &info.name, 1).await;
        let pid = info.workers[0].pid;
        drop(jobs);
        // The supervisor sees the cancel, kills and reaps; its end line
        // then comes out of the channel, last.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await.unwrap() {
                Some(l) if l.kind == LineKind::End(Ending::Killed) => break,
                Some(_) => {}
                None => panic!("channel closed before the end line"),
            }
        }
        pid
    });
    assert_gone(pid);
}

/// The flag for this test binary's "middle" role: a stand-in shell that
/// starts a worker process, says its PID, and waits to be SIGKILLed.
pub const MIDDLE_FLAG: &str = "--test-middle-shell";

/// The middle role: a current-thread runtime on the main thread (so the
/// worker's parent thread is the main thread), one long process worker.
pub fn middle() -> ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (jobs, mut rx) = Jobs::new(16);
        let info = jobs.spawn(Mode::Process, &[long_nap()]).await.unwrap();
        // Its first line says it is past PR_SET_PDEATHSIG. (Killed sooner,
        // it would find its parent gone and exit by itself, status 69.)
        rx.recv().await.unwrap();
        println!("{}", info.workers[0].pid);
        let mut wait = std::pin::pin!(jobs.wait(&info.name, Duration::from_secs(30)));
        loop {
            tokio::select! {
                _ = &mut wait => break,
                Some(_) = rx.recv() => {}
            }
        }
    });
    ExitCode::SUCCESS
}

/// A worker never outlives its shell: SIGKILL the shell (no chance to clean
/// up), and the kernel kills the worker (PR_SET_PDEATHSIG). This process
/// makes itself a child subreaper so the orphaned worker is handed to it
/// and it can see how the worker died.
fn workers_die_with_the_shell() {
    if let Err(e) = prctl::set_child_subreaper(true) {
        panic!("PR_SET_CHILD_SUBREAPER: {e}");
    }
    let mut shell = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(MIDDLE_FLAG)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(shell.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let worker: i32 = first.trim().parse().unwrap();
    let t0 = Instant::now();
    shell.kill().unwrap();
    shell.wait().unwrap();
    // The worker (10 s of napping) is now our child: wait for it.
    let reaped = waitpid(Pid::from_raw(worker), None);
    let took = t0.elapsed();
    let _ = prctl::set_child_subreaper(false);
    match reaped {
        Ok(WaitStatus::Signaled(pid, signal, _)) => {
            assert_eq!(pid.as_raw(), worker);
            assert_eq!(signal, Signal::SIGKILL);
        }
        other => panic!("worker {worker}: {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_gone(worker as u32);
}
