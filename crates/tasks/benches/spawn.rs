//! `cargo bench -p socklab-tasks`: what a worker costs to start, beside what
//! the machine's own mechanisms cost, then one worker vs two, four ways.
//!
//! This binary is its own process worker (it calls
//! `worker_main_if_requested` first, as the socklab binary does), so the
//! process figures include re-executing a binary of about this size.
//! `-- spawn` or `-- measure` runs only that part.

use std::time::Duration;

use socklab_tasks::{
    measure, spawn_costs, worker_main_if_requested, Compared, Launcher, MeasureConfig,
    SpawnCostConfig,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    worker_main_if_requested();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    let launcher = Launcher::current_exe()?;
    if wants("spawn") {
        let costs = spawn_costs(&SpawnCostConfig::new(launcher.clone()))?;
        println!("spawn and join ({} cores)", costs.cores);
        println!(
            "{:<16} {:>7} {:>10} {:>10}   {:<26} {:>10} {:>7}",
            "workers", "count", "each", "goal", "reference", "each", "ratio"
        );
        for c in [&costs.process, &costs.thread, &costs.task] {
            row(c);
        }
    }
    if wants("measure") {
        let m = measure(&MeasureConfig::new(launcher))?;
        println!("\none worker, then two ({} cores)", m.cores);
        println!(
            "{:<22} {:<30} {:>7} {:>9} {:>9} {:>8}",
            "workload", "way", "workers", "wall", "cpu", "speedup"
        );
        for r in &m.runs {
            println!(
                "{:<22} {:<30} {:>7} {:>9} {:>9} {:>7.2}x",
                r.workload.to_string(),
                r.way.label(),
                r.workers,
                ms(r.wall),
                ms(r.cpu),
                r.speedup
            );
        }
    }
    Ok(())
}

fn row(c: &Compared) {
    println!(
        "{:<16} {:>7} {:>10} {:>10}   {:<26} {:>10} {:>6.1}x  {}",
        c.worker.what,
        c.worker.count,
        us(c.worker.each),
        us(c.goal),
        c.reference.what,
        us(c.reference.each),
        c.ratio(),
        if c.meets_goal() {
            "goal met"
        } else {
            "GOAL MISSED"
        }
    );
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}
