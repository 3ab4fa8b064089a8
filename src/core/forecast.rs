//! The forecast and the burn-down (DESIGN §13): from the portfolio's past — every
//! migration's moves, open and closed — how long stays in each stage last, the path a
//! migration is likely to take from where it stands, when it is expected to be done (the
//! median and 90th percentile of each remaining stage's past stays; the stage's `target`
//! while it has fewer than 3; unknown otherwise), and how many migrations were open over
//! time, with the forecast ahead. Pure: the engine reads the histories.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::workflow::{Stage, Workflow};

/// Fewer past stays than this and a stage's `target` stands in for them.
pub const MIN_STAYS: usize = 3;

/// One migration's life as its history tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Life {
    pub workflow: String,
    pub number: u64,
    /// A child of another migration (not counted in the burn-down).
    pub child: bool,
    pub created: DateTime<Utc>,
    /// Its moves, oldest first: the stage entered and when.
    pub moves: Vec<(String, DateTime<Utc>)>,
    /// When its issue was closed, where it is (the tracker's last change stands in).
    pub closed: Option<DateTime<Utc>>,
}

impl Life {
    /// When it stopped being open: on entering a terminal stage, or when closed.
    fn ended(&self, workflow: Option<&Workflow>) -> Option<DateTime<Utc>> {
        let terminal = self.moves.last().filter(|(to, _)| {
            workflow
                .and_then(|w| w.stage(to))
                .is_some_and(|s| s.terminal)
        });
        match (terminal, self.closed) {
            (Some((_, at)), Some(closed)) => Some((*at).min(closed)),
            (Some((_, at)), None) => Some(*at),
            (None, closed) => closed,
        }
    }
}

/// The portfolio's past: every life read, and what the forecasts ask of it (each
/// workflow's stays per stage and moves taken), worked out once on first use: a report
/// asks it for every migration.
#[derive(Clone, Debug, Default)]
pub struct Past {
    lives: Vec<Life>,
    stats: OnceLock<HashMap<String, Stats>>,
}

/// One workflow's finished stays (seconds, sorted) per stage, and how often each move was
/// made.
#[derive(Clone, Debug, Default)]
struct Stats {
    stays: HashMap<String, Vec<i64>>,
    taken: HashMap<(String, String), usize>,
}

/// An open migration's expected completion: the median and 90th percentile of the
/// remaining stages' past stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Forecast {
    pub expected: DateTime<Utc>,
    pub p90: DateTime<Utc>,
}

impl Past {
    pub fn new(lives: Vec<Life>) -> Past {
        Past {
            lives,
            stats: OnceLock::new(),
        }
    }

    pub fn lives(&self) -> &[Life] {
        &self.lives
    }

    pub fn into_lives(self) -> Vec<Life> {
        self.lives
    }

    fn stats(&self, workflow: &str) -> Option<&Stats> {
        self.stats
            .get_or_init(|| {
                let mut all: HashMap<String, Stats> = HashMap::new();
                for life in &self.lives {
                    let stats = all.entry(life.workflow.clone()).or_default();
                    for pair in life.moves.windows(2) {
                        let seconds = (pair[1].1 - pair[0].1).num_seconds().max(0);
                        stats
                            .stays
                            .entry(pair[0].0.clone())
                            .or_default()
                            .push(seconds);
                        *stats
                            .taken
                            .entry((pair[0].0.clone(), pair[1].0.clone()))
                            .or_default() += 1;
                    }
                }
                for stats in all.values_mut() {
                    for samples in stats.stays.values_mut() {
                        samples.sort_unstable();
                    }
                }
                all
            })
            .get(workflow)
    }

    /// How long each finished stay in `stage` of `workflow` lasted (seconds, sorted): from
    /// a move into the stage to the next move.
    pub fn stays(&self, workflow: &str, stage: &str) -> &[i64] {
        self.stats(workflow)
            .and_then(|s| s.stays.get(stage))
            .map_or(&[], Vec::as_slice)
    }

    /// How often migrations of `workflow` moved from `from` to `to`.
    fn taken(&self, workflow: &str, from: &str, to: &str) -> usize {
        self.stats(workflow)
            .and_then(|s| s.taken.get(&(from.to_string(), to.to_string())))
            .copied()
            .unwrap_or(0)
    }
}

/// The stages a migration in `stage` is likely to stand in before it is done: that
/// stage, then at each step the `next` most often taken before (the first declared on a
/// tie), up to a terminal stage (not included).
pub fn likely_path<'w>(workflow: &'w Workflow, stage: &str, past: &Past) -> Vec<&'w Stage> {
    let mut path = Vec::new();
    let mut seen = BTreeSet::new();
    let mut at = workflow.stage(stage);
    while let Some(s) = at {
        if s.terminal || !seen.insert(s.id.as_str()) {
            break;
        }
        path.push(s);
        // The first declared wins a tie: `max_by_key` keeps the last of equals.
        at = s
            .next
            .iter()
            .rev()
            .max_by_key(|e| past.taken(&workflow.name, &s.id, &e.to))
            .and_then(|e| workflow.stage(&e.to));
    }
    path
}

/// When a migration that entered `stage` at `entered_at` is expected to be done, seen at
/// `now`; `None` when a remaining stage has neither 3 past stays nor a `target`, or the
/// migration is done.
pub fn forecast(
    workflow: &Workflow,
    stage: &str,
    entered_at: DateTime<Utc>,
    now: DateTime<Utc>,
    past: &Past,
) -> Option<Forecast> {
    let path = likely_path(workflow, stage, past);
    if path.is_empty() {
        return None;
    }
    let (mut expected, mut p90) = (Duration::zero(), Duration::zero());
    for (i, s) in path.iter().enumerate() {
        let (mut median, mut high) = expect(s, past.stays(&workflow.name, &s.id))?;
        if i == 0 {
            // What the stay so far has already used up.
            let spent = now.signed_duration_since(entered_at).max(Duration::zero());
            median = (median - spent).max(Duration::zero());
            high = (high - spent).max(Duration::zero());
        }
        expected += median;
        p90 += high;
    }
    Some(Forecast {
        expected: now + expected,
        p90: now + p90,
    })
}

/// A stay in `stage`: the median and 90th percentile of its past stays, or its target.
fn expect(stage: &Stage, samples: &[i64]) -> Option<(Duration, Duration)> {
    match samples {
        s if s.len() >= MIN_STAYS => Some((
            Duration::seconds(percentile(s, 50)?),
            Duration::seconds(percentile(s, 90)?),
        )),
        _ => stage.pacing.target.map(|t| (t, t)),
    }
}

/// The nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// How many migrations were open, and will be: a step at each change.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Burndown {
    /// Open migrations over time, up to now.
    pub open: Vec<Point>,
    /// From now on, as each open migration is expected to be done.
    pub expected: Vec<Point>,
    /// From now on, at each one's 90th percentile.
    pub p90: Vec<Point>,
    /// Open migrations with no forecast: they stay in both lines.
    pub unknown: u64,
}

/// How many were open from `at` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub open: u64,
}

/// The burn-down of the migrations (not children) of `workflows` in `past` at `now`.
pub fn burndown(workflows: &[&Workflow], past: &Past, now: DateTime<Utc>) -> Burndown {
    let workflow = |name: &str| workflows.iter().copied().find(|w| w.name == name);
    let lives: Vec<&Life> = past
        .lives()
        .iter()
        .filter(|l| !l.child && workflow(&l.workflow).is_some())
        .collect();
    let mut changes: Vec<(DateTime<Utc>, i64)> = Vec::new();
    let mut expected = Vec::new();
    let mut p90 = Vec::new();
    let mut unknown = 0;
    for life in &lives {
        let w = workflow(&life.workflow);
        changes.push((life.created.min(now), 1));
        match life.ended(w).filter(|at| *at <= now) {
            Some(at) => changes.push((at.max(life.created), -1)),
            None => {
                let ahead = w
                    .zip(life.moves.last())
                    .and_then(|(w, (stage, at))| forecast(w, stage, *at, now, past));
                match ahead {
                    Some(f) => {
                        expected.push(f.expected);
                        p90.push(f.p90);
                    }
                    None => unknown += 1,
                }
            }
        }
    }
    let open = steps(&mut changes, 0);
    let now_open = open.last().map(|p| p.open).unwrap_or(0);
    let ahead = |mut ends: Vec<DateTime<Utc>>| {
        let mut changes: Vec<(DateTime<Utc>, i64)> = ends.drain(..).map(|at| (at, -1)).collect();
        let mut out = vec![Point {
            at: now,
            open: now_open,
        }];
        let mut rest = steps(&mut changes, now_open as i64);
        // A forecast due now is a step at now: the line starts where it lands.
        if rest.first().is_some_and(|p| p.at == now) {
            out.clear();
        }
        out.append(&mut rest);
        out
    };
    Burndown {
        open,
        expected: ahead(expected),
        p90: ahead(p90),
        unknown,
    }
}

/// The running count after each change, `start` before the first; changes at one
/// instant make one point.
fn steps(changes: &mut [(DateTime<Utc>, i64)], start: i64) -> Vec<Point> {
    changes.sort();
    let mut out: Vec<Point> = Vec::new();
    let mut n = start;
    for (at, d) in changes.iter() {
        n += d;
        let open = n.max(0) as u64;
        match out.last_mut() {
            Some(last) if last.at == *at => last.open = open,
            _ => out.push(Point { at: *at, open }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(days)
    }

    /// a → b → done, or a → fast → done; b has a target of 4 days.
    fn workflow() -> Workflow {
        let mut known = crate::core::workflow::Known::default();
        known.templates.insert("t".into(), Default::default());
        let text = "name: db\ntracking: {template: t}\nstages:\n  - {id: a, label: a, next: [{to: b}, {to: fast}]}\n  - {id: fast, label: fast, next: done}\n  - {id: b, label: b, next: done, target: 4d}\n  - {id: done, label: done, terminal: true}\n";
        crate::core::workflow::load("db.yaml", text, None, &known).unwrap()
    }

    fn life(number: u64, moves: &[(&str, i64)]) -> Life {
        Life {
            workflow: "db".into(),
            number,
            child: false,
            created: t(moves[0].1),
            moves: moves.iter().map(|(s, d)| (s.to_string(), t(*d))).collect(),
            closed: None,
        }
    }

    #[test]
    fn the_likely_path_follows_the_way_most_taken() {
        let w = workflow();
        let ids = |past: &Past| -> Vec<String> {
            likely_path(&w, "a", past)
                .iter()
                .map(|s| s.id.clone())
                .collect()
        };
        assert_eq!(ids(&Past::default()), ["a", "b"], "first declared on a tie");
        let past = Past::new(vec![
            life(1, &[("a", 0), ("fast", 1), ("done", 2)]),
            life(2, &[("a", 0), ("fast", 1)]),
            life(3, &[("a", 0), ("b", 1)]),
        ]);
        assert_eq!(ids(&past), ["a", "fast"]);
        assert!(likely_path(&w, "done", &past).is_empty());
    }

    #[test]
    fn the_forecast_adds_medians_and_p90s_of_remaining_stays_or_targets() {
        let w = workflow();
        // Stays in a: 1, 2, 3, 10 days (median 2, p90 10); b has 1 stay: its target 4d.
        let past = Past::new(vec![
            life(1, &[("a", 0), ("b", 1), ("done", 3)]),
            life(2, &[("a", 0), ("b", 2)]),
            life(3, &[("a", 0), ("b", 3)]),
            life(4, &[("a", 0), ("b", 10)]),
        ]);
        let now = t(20);
        let f = forecast(&w, "a", now, now, &past).unwrap();
        assert_eq!(f.expected, now + Duration::days(2 + 4));
        assert_eq!(f.p90, now + Duration::days(10 + 4));
        // Three days into the stay in a: what is left of it.
        let f = forecast(&w, "a", now - Duration::days(3), now, &past).unwrap();
        assert_eq!(f.expected, now + Duration::days(4));
        assert_eq!(f.p90, now + Duration::days(7 + 4));
        // In b: its target, less the stay so far.
        let f = forecast(&w, "b", now - Duration::days(1), now, &past).unwrap();
        assert_eq!(
            (f.expected, f.p90),
            (now + Duration::days(3), now + Duration::days(3))
        );
        // `fast` has no stays and no target: unknown once the path goes there.
        let fast = Past::new(vec![life(5, &[("a", 0), ("fast", 1)])]);
        assert_eq!(forecast(&w, "a", now, now, &fast), None);
        assert_eq!(forecast(&w, "done", now, now, &past), None);
    }

    #[test]
    fn the_burndown_counts_open_migrations_then_the_forecast_ahead() {
        let w = workflow();
        let mut closed = life(9, &[("a", 1)]);
        closed.closed = Some(t(5));
        let mut child = life(10, &[("a", 0)]);
        child.child = true;
        let past = Past::new(vec![
            life(1, &[("a", 0), ("b", 1), ("done", 3)]),
            life(2, &[("a", 0), ("b", 2)]),
            life(3, &[("a", 2)]),
            closed,
            child,
        ]);
        let now = t(6);
        let b = burndown(&[&w], &past, now);
        let counts: Vec<(i64, u64)> = b
            .open
            .iter()
            .map(|p| ((p.at - t(0)).num_days(), p.open))
            .collect();
        assert_eq!(counts, [(0, 2), (1, 3), (2, 4), (3, 3), (5, 2)]);
        // #2 in b since day 2: target 4d, due now; #3 in a (one stay of 1 day: too few, no
        // target): unknown.
        assert_eq!(b.unknown, 1);
        assert_eq!(b.expected, [Point { at: now, open: 1 }]);
        assert_eq!(b.p90, b.expected);
    }
}
