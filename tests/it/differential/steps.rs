//! The steps of a case and the seeded generator that draws them: people's actions on a
//! few migrations interleaved with shepherd runs, a run now and then killed with SIGKILL
//! (then, after at most a person's tick on a child, the same run again), and time passing
//! so soaks end. Steps name migrations by index and items by text, never by issue number,
//! so one list of steps means the same thing in both worlds and prints readably.

use std::fmt;

use super::rng::Rng;

/// The tracking issue's task items under Plan (the checklist gate) and Notes (no gate's).
pub const PLAN: [&str; 2] = ["Write it", "Review it"];
pub const NOTES: &str = "Tell the team";
/// The child's task items.
pub const CHILD: [&str; 2] = ["Run it on staging", "Run it on production"];

/// Who acts: `carol` may approve, `mallory` may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Person {
    Carol,
    Mallory,
}

impl Person {
    pub fn name(self) -> &'static str {
        match self {
            Person::Carol => "carol",
            Person::Mallory => "mallory",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Ticks (or, with `undo`, unticks) a box of migration `m`'s tracking issue.
    Tick {
        m: usize,
        item: &'static str,
        undo: bool,
    },
    /// A person does what migration `m`'s stage waits for (as both worlds, which agree,
    /// show it): ticks every Plan box, approves as `carol` (again, if the label was
    /// there), opens and merges a merge request, sets `go` (again), or ticks every box of
    /// the newest child.
    Progress {
        m: usize,
    },
    /// Ticks a box of the newest child of migration `m` (nothing when it has none).
    TickChild {
        m: usize,
        item: &'static str,
    },
    Label {
        m: usize,
        label: &'static str,
        add: bool,
        by: Person,
    },
    Close {
        m: usize,
    },
    Reopen {
        m: usize,
    },
    Pause {
        m: usize,
    },
    Resume {
        m: usize,
    },
    /// Rolls migration `m` back to a stage it has been in: the `back`-th of those before
    /// its current one, counting from the latest (modulo their number), as both worlds'
    /// histories (which agree) show them; nothing when there is none.
    Rollback {
        m: usize,
        back: usize,
        keep: bool,
    },
    /// Opens a merge request of `acme/app` that references migration `m`.
    MrOpen {
        m: usize,
    },
    /// Merges the newest open merge request of migration `m` (nothing when none).
    MrMerge {
        m: usize,
    },
    /// Two minutes pass (a soak is one): the local tracker's clock, the servers' records.
    Time,
    /// `advance`; with `kill`, the cached world's run is killed after that many ms.
    Advance {
        m: usize,
        kill: Option<u64>,
    },
    Reconcile {
        kill: Option<u64>,
    },
    /// `reconcile` and, `after` ms later, `advance` of migration `m` in the cached world,
    /// sharing its Store (the lease keeps them apart; the later one must see the earlier
    /// one's move); one after the other in the oracle world.
    Race {
        m: usize,
        after: u64,
    },
}

impl Step {
    /// A shepherd run (the moment both worlds must agree after).
    pub fn is_run(&self) -> bool {
        matches!(
            self,
            Step::Advance { .. } | Step::Reconcile { .. } | Step::Race { .. }
        )
    }

    pub fn kill(&self) -> Option<u64> {
        match self {
            Step::Advance { kill, .. } | Step::Reconcile { kill } => *kill,
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let killed = |kill: &Option<u64>| match kill {
            Some(ms) => format!(" (killed after {ms} ms)"),
            None => String::new(),
        };
        match self {
            Step::Tick { m, item, undo } => {
                let undo = if *undo { " --undo" } else { "" };
                write!(f, "tick m{m} {item:?}{undo}")
            }
            Step::TickChild { m, item } => write!(f, "tick m{m} {item:?} --child diff-rollout"),
            Step::Progress { m } => write!(f, "m{m}: a person does what its stage waits for"),
            Step::Label { m, label, add, by } => {
                let op = if *add { "--add" } else { "--remove" };
                write!(f, "label m{m} {op} {label} (as {})", by.name())
            }
            Step::Close { m } => write!(f, "close m{m}"),
            Step::Reopen { m } => write!(f, "reopen m{m}"),
            Step::Pause { m } => write!(f, "pause m{m}"),
            Step::Resume { m } => write!(f, "resume m{m}"),
            Step::Rollback { m, back, keep } => {
                let keep = if *keep { " --keep-checklists" } else { "" };
                write!(f, "rollback m{m} --to (stage {back} back){keep}")
            }
            Step::MrOpen { m } => write!(f, "mr open --issue m{m} --project acme/app"),
            Step::MrMerge { m } => write!(f, "mr merge (newest open of m{m})"),
            Step::Time => write!(f, "time passes: 2m"),
            Step::Advance { m, kill } => write!(f, "advance m{m}{}", killed(kill)),
            Step::Reconcile { kill } => write!(f, "reconcile{}", killed(kill)),
            Step::Race { m, after } => {
                write!(f, "reconcile and, {after} ms later, advance m{m}")
            }
        }
    }
}

/// What a case is: how many migrations, and its steps.
#[derive(Clone, Debug)]
pub struct Plan {
    pub migrations: usize,
    pub steps: Vec<Step>,
}

/// Draws a case from `seed`. `max_time` bounds the `Time` steps (on the test servers the
/// Store's incremental lists look back five minutes, and the servers' `travel` moves
/// every record back: more than that in one case would hide edits from a list, which no
/// real tracker does); `kill_ms` is how long a run typically takes, `race_ms` how long
/// one takes to list the migrations.
pub fn generate(seed: u64, max_time: usize, kill_ms: u64, race_ms: u64) -> Plan {
    let mut rng = Rng::new(seed);
    let migrations = if rng.chance(60) { 1 } else { 2 };
    let len = 10 + rng.below(7) as usize;
    let mut steps = Vec::new();
    let mut times = 0;
    while steps.len() < len {
        let m = rng.below(migrations as u64) as usize;
        let by = if rng.chance(70) {
            Person::Carol
        } else {
            Person::Mallory
        };
        // Weighted towards moving on: ticks on Plan, approvals by carol, `go`, merges
        // and runs come often; closing, pausing and rolling back now and then.
        let step = match rng.below(100) {
            0..=15 => Step::Progress { m },
            16..=19 => Step::Tick {
                m,
                item: rng.pick(&PLAN),
                undo: false,
            },
            20..=22 => Step::Tick {
                m,
                item: if rng.chance(50) {
                    NOTES
                } else {
                    rng.pick(&PLAN)
                },
                undo: rng.chance(70),
            },
            23..=29 => Step::TickChild {
                m,
                item: rng.pick(&CHILD),
            },
            30..=45 => {
                let label = match rng.below(10) {
                    0..=3 => "approved",
                    4..=6 => "go",
                    7 => "broken",
                    _ => "needs-build",
                };
                let add = match label {
                    "broken" => rng.chance(40),
                    _ => rng.chance(80),
                };
                Step::Label { m, label, add, by }
            }
            46 => Step::Close { m },
            47 => Step::Reopen { m },
            48 => Step::Pause { m },
            49..=50 => Step::Resume { m },
            51..=55 => Step::Rollback {
                m,
                back: rng.below(3) as usize,
                keep: rng.chance(40),
            },
            56 => Step::MrOpen { m },
            57..=58 => Step::MrMerge { m },
            59..=63 if times < max_time => {
                times += 1;
                Step::Time
            }
            59..=63 => continue,
            64..=83 => Step::Advance { m, kill: None },
            84..=89 => Step::Race {
                m,
                after: rng.below(race_ms + 1),
            },
            _ => Step::Reconcile { kill: None },
        };
        // A run is killed one time in five; then at most a tick on a child (a person
        // acting between the crash and the rerun), then the same run again.
        if step.is_run() && !matches!(step, Step::Race { .. }) && rng.chance(20) {
            let ms = rng.below(kill_ms + 1);
            let (killed, again) = match step {
                Step::Advance { m, .. } => (
                    Step::Advance { m, kill: Some(ms) },
                    Step::Advance { m, kill: None },
                ),
                _ => (
                    Step::Reconcile { kill: Some(ms) },
                    Step::Reconcile { kill: None },
                ),
            };
            steps.push(killed);
            if rng.chance(50) {
                steps.push(Step::TickChild {
                    m: rng.below(migrations as u64) as usize,
                    item: rng.pick(&CHILD),
                });
            }
            steps.push(again);
        } else if let Step::Rollback { m, .. } = step {
            // Mostly resumed at once, so that what the stay is left on shows.
            steps.push(step);
            if rng.chance(70) {
                steps.push(Step::Resume { m });
            }
        } else {
            steps.push(step);
        }
    }
    // End on a run, so the last people's actions are judged too.
    if !steps.last().is_some_and(Step::is_run) {
        steps.push(Step::Reconcile { kill: None });
    }
    Plan { migrations, steps }
}
