//! Errors: clear messages, and nothing left running.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use socklab_tasks::{
    measure, Ending, JobState, Launcher, LineKind, MeasureConfig, Mode, TaskError, WorkerState,
    Workload,
};

use crate::support::{collect, jobs, our_children, rt, steps, Test};

pub const TESTS: &[Test] = &[
    ("errors::bad_workloads", bad_workloads),
    ("errors::unknown_jobs", unknown_jobs),
    ("errors::bad_jobs", bad_jobs),
    ("errors::missing_executable", missing_executable),
    (
        "errors::a_program_that_is_not_a_worker",
        a_program_that_is_not_a_worker,
    ),
    ("errors::a_failing_program", a_failing_program),
    (
        "errors::outside_and_inside_a_runtime",
        outside_and_inside_a_runtime,
    ),
];

fn bad_workloads() {
    let e = |r: Result<Workload, TaskError>| r.unwrap_err().to_string();
    assert_eq!(
        e(Workload::new("main")),
        "no workload named 'main' (known: coding, music, primes, nap)"
    );
    assert_eq!(
        e(Workload::coding().times(0)),
        "coding: times must be 1..=100000, got 0"
    );
    assert_eq!(
        e(Workload::music().times(1_000_000_000)),
        "music: times must be 1..=100000, got 1000000000"
    );
    assert_eq!(
        e(Workload::nap().every(Duration::from_secs(3600))),
        "nap: every must be at most 60s, got 3600s"
    );
    assert_eq!(
        e(Workload::with_arg("primes", None)),
        "primes: N is required (primes N counts the primes below N)"
    );
    assert_eq!(
        "fibers".parse::<Mode>().unwrap_err().to_string(),
        "no mode named 'fibers' (known: process, thread, task)"
    );
    assert_eq!("threads".parse::<Mode>().unwrap(), Mode::Thread);
}

fn unknown_jobs() {
    rt().block_on(async {
        let (jobs, _rx) = jobs();
        let e = jobs.kill("job9").await.unwrap_err();
        assert!(matches!(e, TaskError::NoSuchJob(_)));
        assert_eq!(e.to_string(), "no job named 'job9'");
        let e = jobs.wait("job9", Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(e.to_string(), "no job named 'job9'");
        assert!(jobs.info("job9").is_err());
        assert!(jobs.remove("job9").is_err());
    });
}

fn bad_jobs() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        let e = |r: Result<socklab_tasks::JobInfo, TaskError>| r.unwrap_err().to_string();
        assert_eq!(
            e(jobs.spawn(Mode::Task, &[]).await),
            "a job needs at least one workload"
        );
        assert_eq!(
            e(jobs
                .spawn(Mode::Process, &vec![Workload::nap(); 1000])
                .await),
            "1000 process workers in one job is too many (at most 256)"
        );
        assert!(e(jobs
            .spawn_as("no spaces", Mode::Task, &[Workload::nap()])
            .await)
        .contains("not a usable job name"));
        let once = Workload::nap().times(1).unwrap();
        let info = jobs.spawn_as("w", Mode::Task, &[once]).await.unwrap();
        assert_eq!(info.name, "w");
        assert_eq!(
            e(jobs.spawn_as("w", Mode::Task, &[once]).await),
            "a job named 'w' exists already"
        );
        collect(&jobs, &mut rx, "w", &mut Vec::new()).await;
        // Made-up names skip taken ones.
        jobs.spawn_as("job1", Mode::Task, &[once]).await.unwrap();
        assert_eq!(jobs.spawn(Mode::Task, &[once]).await.unwrap().name, "job2");
        assert_eq!(jobs.list().len(), 3);
    });
}

fn missing_executable() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        jobs.set_launcher(Launcher::new("/nonexistent/socklab"));
        let err = jobs
            .spawn(Mode::Process, &[Workload::coding(), Workload::music()])
            .await
            .unwrap_err();
        assert!(matches!(err, TaskError::SpawnProcess { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "job1: cannot start worker process /nonexistent/socklab: No such file or directory"
            ),
            "{text}"
        );
        assert!(jobs.list().is_empty());
        assert!(
            rx.try_recv().is_err(),
            "no line of a job that did not start"
        );
        assert!(our_children().is_empty(), "{:?}", our_children());
        // The name was not kept.
        jobs.set_launcher(Launcher::current_exe().unwrap());
        let once = Workload::nap().times(1).unwrap();
        assert_eq!(
            jobs.spawn(Mode::Process, &[once]).await.unwrap().name,
            "job2"
        );
    });
}

/// A program that ignores the hidden flag and prints something else: the
/// lines it prints are error lines, and nothing panics.
fn a_program_that_is_not_a_worker() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        jobs.set_launcher(Launcher::new("/bin/echo"));
        let info = jobs
            .spawn(Mode::Process, &[Workload::coding()])
            .await
            .unwrap();
        let (info, lines) = collect(&jobs, &mut rx, &info.name, &mut Vec::new()).await;
        assert!(steps(&lines).is_empty());
        let errors: Vec<&str> = lines
            .iter()
            .filter(|l| l.kind == LineKind::Error)
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(errors.len(), 1, "{lines:?}");
        assert!(
            errors[0].starts_with("unreadable line from worker (bad step): \"--socklab-worker "),
            "{}",
            errors[0]
        );
        // echo exited 0: the worker "ran", with nothing to show.
        assert_eq!(info.state, JobState::Done);
        assert_eq!(lines.last().unwrap().kind, LineKind::End(Ending::Done));
    });
}

fn a_failing_program() {
    rt().block_on(async {
        let (jobs, mut rx) = jobs();
        jobs.set_launcher(Launcher::new("/bin/false"));
        let info = jobs
            .spawn(Mode::Process, &[Workload::coding()])
            .await
            .unwrap();
        let (info, lines) = collect(&jobs, &mut rx, &info.name, &mut Vec::new()).await;
        assert_eq!(info.state, JobState::Failed);
        assert_eq!(
            info.workers[0].state,
            WorkerState::Failed("exit status 1".into())
        );
        let end = lines.last().unwrap();
        assert_eq!(end.kind, LineKind::End(Ending::Failed));
        assert_eq!(end.text, "failed: exit status 1");
        crate::support::assert_gone(info.workers[0].pid);
    });
}

fn outside_and_inside_a_runtime() {
    // spawn outside a runtime: an error, not a panic.
    let (jobs, _rx) = jobs();
    let naps = [Workload::nap()];
    let mut fut = pin!(jobs.spawn(Mode::Task, &naps));
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Err(TaskError::NoRuntime(_))) => {}
        other => panic!("{other:?}"),
    }
    // measure on a runtime thread: an error, not a panic.
    rt().block_on(async {
        let config = MeasureConfig::new(Launcher::current_exe().unwrap());
        let err = measure(&config).unwrap_err();
        assert_eq!(
            err.to_string(),
            "measure blocks; call it outside the async runtime (e.g. in spawn_blocking)"
        );
    });
}
