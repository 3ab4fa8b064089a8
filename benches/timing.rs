//! Timing shared by the benchmarks: medians of repeated runs.

use std::time::{Duration, Instant};

/// The median of 5 timed runs of `f`, after one warm-up run.
pub fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    runs.sort();
    runs[2]
}
