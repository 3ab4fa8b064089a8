//! The status and report model: what the CLI prints for `status`, `history` and `report`,
//! built from snapshots alone.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

pub use super::forecast::{percentile, Burndown, Forecast, Past};
use super::gates::{self, GateReport};
use super::machine;
pub use super::portfolio::{WaitKind, Waiting};
use super::snapshot::Snapshot;
use super::workflow::Workflow;

/// One migration as `status REF --format json` prints it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    #[serde(rename = "ref")]
    pub number: u64,
    pub title: String,
    pub url: String,
    pub workflow: String,
    pub stage: Option<String>,
    pub label: Option<String>,
    /// Every label of the tracking issue (filters use them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    pub state: String,
    pub entered_at: DateTime<Utc>,
    pub gates: Vec<GateReport>,
    pub children: Vec<ChildStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
    /// Held: no forward move until it is resumed (exits still apply).
    pub paused: bool,
    /// Who paused it (the actor of `pause`, or who set the label in the tracker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<String>,
    /// Why, as given to `pause --reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// Since when, where the tracker says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<DateTime<Utc>>,
    /// The last error when the service or a reconcile failed on this migration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<String>,
    /// Feature flags whose real state differs from what the migration's stages set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flag_drift: Vec<super::drift::FlagDrift>,
    /// The stay in the stage is longer than the stage's `target`.
    pub overdue: bool,
    /// Why a migration whose gates hold does not move on yet: a slot, a dependency, a
    /// freeze.
    pub waiting: Vec<Waiting>,
    /// When the migration is expected to be done, where past stays (or targets) say.
    pub forecast: Option<Forecast>,
    /// Beside `history`: its pauses, resumes and comment commands, oldest first (where
    /// its comments were read with it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<super::events::Event>,
}

impl Status {
    /// Its life for the forecast: its moves from its history. `created` is when its issue
    /// was opened, `closed` when it was closed (if it is).
    pub fn life(
        &self,
        created: DateTime<Utc>,
        closed: Option<DateTime<Utc>>,
    ) -> super::forecast::Life {
        super::forecast::Life {
            workflow: self.workflow.clone(),
            number: self.number,
            child: self.parent.is_some(),
            created,
            moves: self
                .history
                .iter()
                .flatten()
                .map(|h| (h.to.clone(), h.at))
                .collect(),
            closed,
        }
    }
}

/// The past as statuses alone tell it, each opened at its first move (or its entry into
/// its stage): for callers with no issues at hand.
pub fn past_of(statuses: &[Status]) -> Past {
    Past::new(
        statuses
            .iter()
            .map(|s| {
                let created = s
                    .history
                    .as_ref()
                    .and_then(|h| h.first())
                    .map_or(s.entered_at, |h| h.at);
                s.life(created, None)
            })
            .collect(),
    )
}

/// Whether a stay in `stage` since `entered_at` is longer than its `target` at `now`.
pub fn overdue(
    stage: Option<&crate::core::workflow::Stage>,
    open: bool,
    entered_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    stage
        .filter(|s| open && !s.terminal)
        .and_then(|s| s.pacing.target)
        .is_some_and(|target| now.signed_duration_since(entered_at) > target)
}

#[derive(Clone, Debug, Serialize)]
pub struct ChildStatus {
    #[serde(rename = "ref")]
    pub number: u64,
    pub template: String,
    pub stage: Option<String>,
    pub state: String,
}

/// One transition as `history` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    pub from: Option<String>,
    pub to: String,
    pub at: DateTime<Utc>,
    pub by: String,
    pub reason: Option<String>,
}

/// The whole report: the facts every format shows.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub generated_at: DateTime<Utc>,
    /// Per workflow, per stage (in workflow order), how many migrations stand there.
    pub stages: serde_json::Map<String, serde_json::Value>,
    /// Per workflow, per stage: how long migrations stayed there, from history.
    pub lead_times: BTreeMap<String, Vec<LeadTime>>,
    /// A migration longer than this in its stage is stale (seconds).
    pub stale_after_seconds: i64,
    pub migrations: Vec<Row>,
    /// Open migrations over time, with the forecast ahead (not children).
    pub burndown: Burndown,
}

/// One migration in the report: its status (with history) and what the report adds.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub status: Status,
    pub time_in_stage_seconds: i64,
    /// What holds it up, in one line ("done" when complete).
    pub blocked_by: String,
    pub stale: bool,
    /// "9d in soak, target 2d" when the stay is overdue (the formats show it first).
    #[serde(skip)]
    pub overdue_note: Option<String>,
}

/// Time spent in one stage, over the stays that ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeadTime {
    pub stage: String,
    pub samples: usize,
    pub median_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
}

/// Which migrations a report shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub workflows: Vec<String>,
    pub stages: Vec<String>,
    pub labels: Vec<String>,
}

impl Filter {
    /// Whether a status passes; `labels` are the tracking issue's labels.
    pub fn keeps(&self, status: &Status, labels: &[String]) -> bool {
        (self.workflows.is_empty() || self.workflows.contains(&status.workflow))
            && (self.stages.is_empty()
                || status
                    .stage
                    .as_ref()
                    .is_some_and(|s| self.stages.contains(s)))
            && self.labels.iter().all(|l| labels.contains(l))
    }
}

/// The status of one migration at `now`: its stage, the gates of that stage, its children.
pub fn status(
    workflow: &Workflow,
    snapshot: &Snapshot,
    parent: Option<u64>,
    now: DateTime<Utc>,
) -> Status {
    let labels = &snapshot.issue.labels;
    let stage = workflow.stages_labelled(labels).into_iter().next();
    let entered_at = stage
        .map(|s| snapshot.entered_at(&s.id, &s.label))
        .unwrap_or(snapshot.issue.created_at);
    let gates = match stage {
        Some(s) if !s.terminal => {
            let cx = gates::Context {
                snapshot,
                labels,
                entered_at,
                now,
                vars: &snapshot.vars,
                exit: false,
            };
            s.gates.iter().map(|g| gates::report(g, &cx)).collect()
        }
        _ => Vec::new(),
    };
    let children = snapshot
        .children
        .iter()
        .map(|c| ChildStatus {
            number: c.issue.number,
            template: c.template.clone(),
            stage: c.stage.as_ref().map(|s| s.id.clone()),
            state: match (&c.stage, c.issue.open) {
                (Some(s), _) if s.terminal => "completed",
                (_, true) => "open",
                (_, false) => "closed",
            }
            .to_string(),
        })
        .collect();
    Status {
        number: snapshot.issue.number,
        title: snapshot.issue.title.clone(),
        url: snapshot.issue.url.clone(),
        workflow: workflow.name.clone(),
        stage: stage.map(|s| s.id.clone()),
        label: stage.map(|s| s.label.clone()),
        labels: labels.to_vec(),
        state: machine::state(workflow, labels, snapshot.issue.open).to_string(),
        entered_at,
        gates,
        children,
        parent,
        history: None,
        paused: false,
        paused_by: None,
        paused_reason: None,
        paused_at: None,
        failing: None,
        flag_drift: super::drift::drift(workflow, snapshot),
        overdue: overdue(stage, snapshot.issue.open, entered_at, now),
        waiting: Vec::new(),
        forecast: None,
        events: Vec::new(),
    }
}

/// The transitions of a migration, oldest first.
pub fn history(snapshot: &Snapshot) -> Vec<HistoryEntry> {
    snapshot
        .transitions
        .iter()
        .map(|t| HistoryEntry {
            from: t.from.clone(),
            to: t.to.clone(),
            at: t.at,
            by: t.by.clone(),
            reason: t.reason.clone(),
        })
        .collect()
}

/// Builds the report from statuses (each with its history) and the portfolio's `past`
/// (every migration's moves, open and closed, for lead times, forecasts and the
/// burn-down).
pub fn build(
    generated_at: DateTime<Utc>,
    workflows: &[&Workflow],
    statuses: Vec<Status>,
    stale_after: Duration,
    past: &Past,
) -> Report {
    let mut stages = serde_json::Map::new();
    let mut lead_times = BTreeMap::new();
    for w in workflows {
        let mut counts = serde_json::Map::new();
        for s in &w.stages {
            let n = statuses
                .iter()
                .filter(|m| m.workflow == w.name && m.stage.as_deref() == Some(s.id.as_str()))
                .count();
            counts.insert(s.id.clone(), n.into());
        }
        stages.insert(w.name.clone(), counts.into());
        lead_times.insert(w.name.clone(), stage_lead_times(w, past));
    }
    let migrations = statuses
        .into_iter()
        .map(|mut status| {
            let workflow = workflows.iter().find(|w| w.name == status.workflow);
            status.forecast = workflow.and_then(|w| forecast_of(w, &status, generated_at, past));
            let time_in_stage = generated_at - status.entered_at;
            let stale = status.state == "open" && time_in_stage > stale_after;
            let overdue_note = overdue_note(workflows, &status, time_in_stage);
            Row {
                overdue_note,
                time_in_stage_seconds: time_in_stage.num_seconds().max(0),
                blocked_by: blockers(&status),
                stale,
                status,
            }
        })
        .collect();
    Report {
        generated_at,
        stages,
        lead_times,
        stale_after_seconds: stale_after.num_seconds(),
        migrations,
        burndown: super::forecast::burndown(workflows, past, generated_at),
    }
}

/// The forecast of an open migration with a stage, at `now`.
pub fn forecast_of(
    workflow: &Workflow,
    status: &Status,
    now: DateTime<Utc>,
    past: &Past,
) -> Option<Forecast> {
    let stage = status.stage.as_deref().filter(|_| status.state == "open")?;
    super::forecast::forecast(workflow, stage, status.entered_at, now, past)
}

/// "9d in soak, target 2d" for an overdue status, from its stage's target.
fn overdue_note(workflows: &[&Workflow], status: &Status, stay: Duration) -> Option<String> {
    let stage = status.stage.as_deref().filter(|_| status.overdue)?;
    let workflow = workflows.iter().find(|w| w.name == status.workflow)?;
    let target = workflow.stage(stage)?.pacing.target?;
    Some(super::overdue::note(stage, stay, target))
}

/// How long each stay in each stage lasted, over the stays in `past` that ended: from
/// the transition into the stage to the next transition out of it.
pub fn stage_lead_times(workflow: &Workflow, past: &Past) -> Vec<LeadTime> {
    workflow
        .stages
        .iter()
        .filter(|s| !s.terminal)
        .map(|s| {
            let samples = past.stays(&workflow.name, &s.id);
            LeadTime {
                stage: s.id.clone(),
                samples: samples.len(),
                median_seconds: percentile(samples, 50),
                p90_seconds: percentile(samples, 90),
            }
        })
        .collect()
}

/// What holds a migration up, in one line: a pause and an error first, then the gates
/// that do not pass.
pub fn blockers(status: &Status) -> String {
    match status.state.as_str() {
        "completed" => return "done".to_string(),
        "closed" => return "closed".to_string(),
        _ => {}
    }
    let mut reasons: Vec<String> = Vec::new();
    if let Some(note) = paused_note(status) {
        reasons.push(note);
    }
    if let Some(error) = &status.failing {
        reasons.push(format!("failing: {error}"));
    }
    reasons.extend(
        status
            .gates
            .iter()
            .filter(|g| !g.passed)
            .map(|g| format!("{}: {}", g.gate, g.detail)),
    );
    // Its gates hold, yet it waits: a freeze, a slot, a dependency.
    reasons.extend(status.waiting.iter().map(|w| w.detail.clone()));
    if reasons.is_empty() {
        "ready to advance".to_string()
    } else {
        reasons.join("; ")
    }
}

/// "paused by X: reason" (each part when known), or `None` when it is not paused.
pub fn paused_note(status: &Status) -> Option<String> {
    if !status.paused {
        return None;
    }
    let mut note = "paused".to_string();
    if let Some(by) = &status.paused_by {
        note.push_str(&format!(" by {by}"));
    }
    if let Some(reason) = &status.paused_reason {
        note.push_str(&format!(": {reason}"));
    }
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::hours(hours)
    }

    fn status(
        number: u64,
        stage: &str,
        state: &str,
        entered: i64,
        moves: &[(&str, i64)],
    ) -> Status {
        let history = moves
            .iter()
            .enumerate()
            .map(|(i, (to, at))| HistoryEntry {
                from: (i > 0).then(|| moves[i - 1].0.to_string()),
                to: to.to_string(),
                at: t(*at),
                by: "x".into(),
                reason: None,
            })
            .collect();
        Status {
            number,
            title: format!("m{number}"),
            url: String::new(),
            workflow: "db".into(),
            stage: Some(stage.into()),
            label: Some(stage.into()),
            labels: Vec::new(),
            state: state.into(),
            entered_at: t(entered),
            gates: vec![GateReport {
                gate: "checklist".into(),
                description: String::new(),
                passed: false,
                detail: "1/2 items".into(),
                waits_for: None,
            }],
            history: Some(history),
            ..Status::default()
        }
    }

    fn workflow() -> Workflow {
        let mut known = crate::core::workflow::Known::default();
        known.templates.insert("t".into(), Default::default());
        let text = "name: db\ntracking: {template: t}\nstages:\n  - {id: a, label: a, next: b}\n  - {id: b, label: b, next: c}\n  - {id: c, label: c, terminal: true}\n";
        crate::core::workflow::load("db.yaml", text, None, &known).unwrap()
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let cases: &[(&[i64], usize, Option<i64>)] = &[
            (&[], 50, None),
            (&[5], 90, Some(5)),
            (&[1, 2, 3, 4], 50, Some(2)),
            (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, Some(9)),
            (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90, Some(10)),
        ];
        for (samples, p, want) in cases {
            assert_eq!(percentile(samples, *p), *want, "{samples:?} p{p}");
        }
    }

    #[test]
    fn lead_times_staleness_and_blockers() {
        let w = workflow();
        let statuses = vec![
            status(1, "c", "completed", 5, &[("a", 0), ("b", 2), ("c", 5)]),
            status(2, "b", "open", 4, &[("a", 0), ("b", 4)]),
            status(3, "a", "open", 0, &[("a", 0)]),
            status(4, "b", "open", 500, &[("a", 480), ("b", 500)]),
        ];
        let past = Past::new(statuses.iter().map(|s| s.life(t(0), None)).collect());
        let report = build(t(510), &[&w], statuses, Duration::days(14), &past);
        let a = &report.lead_times["db"][0];
        assert_eq!(
            (a.stage.as_str(), a.samples, a.median_seconds, a.p90_seconds),
            ("a", 3, Some(4 * 3600), Some(20 * 3600))
        );
        let b = &report.lead_times["db"][1];
        assert_eq!(
            (b.samples, b.median_seconds),
            (1, Some(3 * 3600)),
            "only stays that ended count"
        );
        assert_eq!(
            report.lead_times["db"].len(),
            2,
            "terminal stages have no lead time"
        );
        assert_eq!(report.stages["db"]["b"], 2);
        let stale: Vec<u64> = report
            .migrations
            .iter()
            .filter(|r| r.stale)
            .map(|r| r.status.number)
            .collect();
        assert_eq!(stale, [2, 3], "open and more than 14 days in the stage");
        assert_eq!(report.migrations[0].blocked_by, "done");
        assert_eq!(report.migrations[1].blocked_by, "checklist: 1/2 items");
        assert_eq!(report.migrations[3].time_in_stage_seconds, 10 * 3600);
    }

    #[test]
    fn a_pause_and_an_error_come_first_in_what_blocks() {
        let mut s = status(1, "b", "open", 0, &[]);
        s.paused = true;
        assert_eq!(blockers(&s), "paused; checklist: 1/2 items");
        s.paused_by = Some("alice".into());
        s.paused_reason = Some("error rate up".into());
        s.failing = Some("GitLab answered 500".into());
        assert_eq!(
            blockers(&s),
            "paused by alice: error rate up; failing: GitLab answered 500; checklist: 1/2 items"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["paused"], true);
        assert_eq!(json["paused_by"], "alice");
        assert_eq!(json["paused_reason"], "error rate up");
        assert_eq!(json["failing"], "GitLab answered 500");
        let plain = serde_json::to_value(status(2, "b", "open", 0, &[])).unwrap();
        assert_eq!(plain["paused"], false, "always present");
        for key in ["paused_by", "paused_reason", "failing"] {
            assert!(plain.get(key).is_none(), "{key} skipped when unknown");
        }
    }

    #[test]
    fn filters() {
        let s = status(1, "b", "open", 0, &[]);
        let labels = vec!["team-a".to_string()];
        let f = |w: &[&str], st: &[&str], l: &[&str]| Filter {
            workflows: w.iter().map(|x| x.to_string()).collect(),
            stages: st.iter().map(|x| x.to_string()).collect(),
            labels: l.iter().map(|x| x.to_string()).collect(),
        };
        assert!(f(&[], &[], &[]).keeps(&s, &labels));
        assert!(f(&["db"], &["b"], &["team-a"]).keeps(&s, &labels));
        assert!(!f(&["other"], &[], &[]).keeps(&s, &labels));
        assert!(!f(&[], &["a"], &[]).keeps(&s, &labels));
        assert!(!f(&[], &[], &["team-b"]).keeps(&s, &labels));
    }
}
