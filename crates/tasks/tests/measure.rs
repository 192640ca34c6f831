//! Measurements, small: the shape of the results, and what cannot depend on
//! the machine.

use std::time::Duration;

use socklab_tasks::{
    measure, spawn_costs, Launcher, MeasureConfig, SpawnCostConfig, Way, Workload,
};

use crate::support::{our_children, Test};

pub const TESTS: &[Test] = &[
    (
        "measure::one_worker_then_two_four_ways",
        one_worker_then_two_four_ways,
    ),
    ("measure::spawn_costs_small", spawn_costs_small),
];

fn one_worker_then_two_four_ways() {
    let config = MeasureConfig {
        cpu_bound: Workload::primes(20_000).unwrap().times(4).unwrap(),
        waiting: Workload::nap()
            .times(5)
            .unwrap()
            .every(Duration::from_millis(40))
            .unwrap(),
        launcher: Launcher::current_exe().unwrap(),
    };
    let m = measure(&config).unwrap();
    assert!(m.cores >= 1);
    assert_eq!(m.runs.len(), 16);
    for (i, run) in m.runs.iter().enumerate() {
        assert_eq!(run.workers, 1 + i % 2);
        assert_eq!(run.way, Way::ALL[(i / 2) % 4]);
        assert_eq!(
            run.workload,
            if i < 8 {
                config.cpu_bound
            } else {
                config.waiting
            }
        );
        assert!(run.wall > Duration::ZERO);
        assert!(run.speedup.is_finite() && run.speedup > 0.0);
        if run.workers == 1 {
            assert_eq!(run.speedup, 1.0);
        }
    }
    // Waiting overlaps whatever runs it, even one thread of tasks: two
    // workers nap in about the time of one.
    for run in m.runs[8..].iter().filter(|r| r.workers == 2) {
        assert!(run.speedup > 1.3, "{run:?}");
        // Napping costs little CPU.
        assert!(run.cpu < run.wall * 2, "{run:?}");
    }
    assert!(our_children().is_empty());
}

fn spawn_costs_small() {
    let config = SpawnCostConfig {
        processes: 5,
        threads: 20,
        tasks: 1000,
        launcher: Launcher::current_exe().unwrap(),
    };
    let c = spawn_costs(&config).unwrap();
    for (compared, n) in [(&c.process, 5), (&c.thread, 20), (&c.task, 1000)] {
        assert_eq!(compared.worker.count, n);
        assert_eq!(compared.reference.count, n);
        assert!(compared.worker.each > Duration::ZERO);
        assert!(compared.ratio().is_finite());
    }
    assert_eq!(c.process.goal, Duration::from_millis(2));
    assert!(our_children().is_empty());
}
