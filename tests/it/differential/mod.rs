//! The differential test of DESIGN §11: seeded random histories of people's actions and
//! shepherd runs (some killed with SIGKILL mid-run), each run twice — with the Store's
//! caches and shortcuts, and with `SHEPHERD_CACHE=off`, the full, fresh read every
//! shortcut must agree with — on the local tracker and the GitLab and GitHub test
//! servers. After every step both worlds must show the same stage history, boxes, labels
//! and children; neither may show a duplicate or lose a person's tick. A cache that saves
//! a request only by changing a decision fails here, with the command that replays it.
//!
//! `SHEPHERD_DIFF_CASES` (default 120) cases, seeds from `SHEPHERD_DIFF_FIRST` (default
//! 1), the tracker of each by its seed unless `SHEPHERD_DIFF_TRACKER` (`local`, `gitlab`,
//! `github`) says; `SHEPHERD_DIFF_SEED` runs that one case; `SHEPHERD_DIFF_THREADS`
//! (default 2) cases at once. A failure is shrunk (steps dropped while it still fails)
//! unless `SHEPHERD_DIFF_SHRINK=0`.

mod case;
mod observe;
mod people;
mod rng;
mod steps;
mod world;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Local,
    GitLab,
    GitHub,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::GitLab => "gitlab",
            Kind::GitHub => "github",
        }
    }

    fn of_seed(seed: u64) -> Kind {
        [Kind::Local, Kind::GitLab, Kind::GitHub][(seed % 3) as usize]
    }

    fn parse(name: &str) -> Kind {
        match name {
            "local" => Kind::Local,
            "gitlab" => Kind::GitLab,
            "github" => Kind::GitHub,
            other => panic!("SHEPHERD_DIFF_TRACKER={other}: local, gitlab or github"),
        }
    }

    /// The case of `seed` on this tracker. The servers' time travel is bounded (see
    /// `steps::generate`); a killed run there is slower (latency), so kills spread wider.
    fn plan(self, seed: u64) -> steps::Plan {
        match self {
            Kind::Local => steps::generate(seed, 3, 60, 60),
            _ => steps::generate(seed, 2, 250, 250),
        }
    }
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: a whole number"))
    })
}

#[test]
fn differential() {
    let only = std::env::var("SHEPHERD_DIFF_TRACKER")
        .ok()
        .map(|t| Kind::parse(&t));
    let (first, cases) = match env("SHEPHERD_DIFF_SEED") {
        Some(seed) => (seed, 1),
        None => (
            env("SHEPHERD_DIFF_FIRST").unwrap_or(1),
            env("SHEPHERD_DIFF_CASES").unwrap_or(120),
        ),
    };
    let threads = env("SHEPHERD_DIFF_THREADS").unwrap_or(2).max(1);
    let next = AtomicU64::new(first);
    let stop = AtomicBool::new(false);
    let failures: Mutex<Vec<(u64, Kind, String)>> = Mutex::new(Vec::new());
    let began = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= first + cases || stop.load(Ordering::SeqCst) {
                    break;
                }
                let kind = only.unwrap_or_else(|| Kind::of_seed(seed));
                if let Err(e) = case::run(kind, &kind.plan(seed), cases == 1) {
                    stop.store(true, Ordering::SeqCst);
                    failures.lock().unwrap().push((seed, kind, e));
                }
            });
        }
    });
    let ran = next.load(Ordering::SeqCst).min(first + cases) - first;
    println!(
        "differential: {ran} case(s) in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let failures = failures.into_inner().unwrap();
    let Some((seed, kind, error)) = failures.into_iter().min_by_key(|f| f.0) else {
        return;
    };
    let plan = kind.plan(seed);
    let mut report = format!(
        "differential case failed, tracker {}, seed {seed}:\n{error}\n\nsteps ({} migrations):\n{}",
        kind.name(),
        plan.migrations,
        listing(&plan.steps)
    );
    if env("SHEPHERD_DIFF_SHRINK") != Some(0) {
        if let Some(smaller) = shrink(kind, &plan) {
            report.push_str(&format!(
                "\nstill failing with {} of its {} steps:\n{}",
                smaller.steps.len(),
                plan.steps.len(),
                listing(&smaller.steps)
            ));
        }
    }
    panic!(
        "{report}\nreplay: SHEPHERD_DIFF_SEED={seed} SHEPHERD_DIFF_TRACKER={} cargo test --test it differential -- --nocapture",
        kind.name()
    );
}

fn listing(steps: &[steps::Step]) -> String {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("  {i:>2}. {s}\n"))
        .collect()
}

/// Drops what it can while the case still fails: a whole kill window (the killed run,
/// what follows it, its rerun), else one step at a time. `None` if nothing could go.
fn shrink(kind: Kind, plan: &steps::Plan) -> Option<steps::Plan> {
    let mut best = plan.clone();
    let mut i = 0;
    while i < best.steps.len() {
        let end = match best.steps[i].kill() {
            Some(_) => (i + 1..best.steps.len())
                .find(|&j| best.steps[j].is_run())
                .unwrap_or(i),
            None => i,
        };
        let mut tried = best.clone();
        tried.steps.drain(i..=end);
        // A step inside a window is dropped only with it.
        let inside = (0..i).rev().find_map(|j| {
            let s = &best.steps[j];
            s.is_run().then_some(s.kill().is_some())
        });
        if inside != Some(true) && case::run(kind, &tried, false).is_err() {
            best = tried;
        } else {
            i = end + 1;
        }
    }
    (best.steps.len() < plan.steps.len()).then_some(best)
}
