//! When a migration is next worth advancing: a look without the lease (the cheap first
//! look of `reconcile`, no comments read) says whether it may move now, and, for a stage
//! with a soak (`min_duration`) gate, when that gate will hold. The service queues the
//! migration for that moment, so a 2h soak moves at 2h, not at the next resync. A stage
//! with a metric gate or exit is looked at again every minute (Prometheus's values change
//! without any webhook) and when its window can first be full.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::{Engine, Kin, Migration};
use crate::core::duration;
use crate::core::workflow::{DurationSpec, Gate, Stage};

/// What a look at one migration found.
#[derive(Clone, Debug, PartialEq)]
pub struct Look {
    pub number: u64,
    /// Something may move now: the plan has a transition, or a child waits for its first
    /// stage.
    pub may_move: bool,
    /// The earliest time after now (the tracker's clock) at which a soak gate of the
    /// migration's stage will hold, or the change freeze that holds it back ends.
    pub due: Option<DateTime<Utc>>,
}

impl Engine<'_> {
    /// Looks at the open migrations of `index` that run a workflow (all of them, or only
    /// those in `only`), children seen through the index, without leases or comments.
    pub async fn looks(&self, index: &[Migration], only: Option<&[u64]>) -> Result<Vec<Look>> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let kin = Kin::new(index);
        let kin = &kin;
        let wanted: Vec<&Migration> = index
            .iter()
            .filter(|m| m.issue.open && m.marker.workflow.is_some())
            .filter(|m| only.is_none_or(|o| o.contains(&m.issue.number)))
            .collect();
        stream::iter(wanted)
            .map(|m| async move { self.look(m, kin.children(m.issue.number)).await })
            .buffer_unordered(self.in_flight())
            .try_collect()
            .await
    }

    async fn look(&self, m: &Migration, kids: &[&Migration]) -> Result<Look> {
        let number = m.issue.number;
        let workflow = self.workflow_of(m)?;
        let (mut snapshot, _) = self.snapshot(m, workflow, kids, false, None).await?;
        let now = self.now();
        let plan = self.plan(workflow, &mut snapshot).await;
        let unstarted_child = kids.iter().any(|c| c.issue.open && self.unstarted(c));
        let stage = workflow.stages_labelled(&m.issue.labels).first().copied();
        let mut due = stage.and_then(|stage| {
            let entered = snapshot.entered_at(&stage.id, &stage.label);
            soak_due(stage, &m.marker.vars, entered, now)
        });
        // A freeze that holds it back ends at a known moment: it is looked at again then.
        let freeze = crate::core::portfolio::WaitKind::Freeze.gate();
        let thaw = snapshot
            .portfolio
            .frozen_until
            .filter(|_| plan.blocked_by.iter().any(|r| r.gate == freeze));
        due = due.into_iter().chain(thaw).min();
        // An overdue stay is nudged by an advance: queued once it may be overdue.
        let (overdue, overdue_due) = match stage {
            Some(stage) if !stage.terminal => self.may_be_overdue(m, stage).await?,
            _ => (false, None),
        };
        if let Some(at) = overdue_due.filter(|at| *at > now) {
            due = Some(due.map_or(at, |d| d.min(at)));
        }
        // The service looks at the flags such a migration set at every resync: someone
        // may have changed one behind its back (no webhook says so).
        let flags_to_check = self.note_drift && self.flags.is_some() && workflow.sets_flags();
        Ok(Look {
            number,
            may_move: !plan.transitions.is_empty() || unstarted_child || flags_to_check || overdue,
            due,
        })
    }
}

/// The earliest moment after `now` at which one of `stage`'s soak gates (its own gates,
/// and those on its edges and exits) holds, for a stage entered at `entered_at`. `None`
/// when no soak is still running. A soak whose variable is unset or unreadable has no due
/// time (the gate reports why).
pub fn soak_due(
    stage: &Stage,
    vars: &BTreeMap<String, String>,
    entered_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut earliest: Option<DateTime<Utc>> = None;
    for gate in stage.all_gates() {
        gate.visit(&mut |g| {
            let Gate::MinDuration(spec) = g else {
                return;
            };
            let need = match spec {
                DurationSpec::Fixed(d) => Some(*d),
                DurationSpec::Variable { name, .. } => {
                    vars.get(name).and_then(|t| duration::parse(t).ok())
                }
            };
            let Some(at) = need.and_then(|d| entered_at.checked_add_signed(d)) else {
                return;
            };
            if at > now && earliest.is_none_or(|e| at < e) {
                earliest = Some(at);
            }
        });
    }
    let mut metric = |at: DateTime<Utc>| {
        if at > now && earliest.is_none_or(|e| at < e) {
            earliest = Some(at);
        }
    };
    for gate in stage.all_gates() {
        gate.visit(&mut |g| {
            let Gate::Metric(m) = g else {
                return;
            };
            let applies =
                crate::core::promql::render(&m.query, vars).is_ok_and(|q| !q.trim().is_empty());
            if !applies {
                return;
            }
            metric(now + METRIC_RECHECK);
            if let Some(at) = m.window.and_then(|w| entered_at.checked_add_signed(w)) {
                metric(at);
            }
        });
    }
    earliest
}

/// How often a stage with a metric gate or exit is looked at again.
pub const METRIC_RECHECK: chrono::Duration = chrono::Duration::minutes(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::workflow::Edge;

    fn stage(gates: Vec<Gate>, edge: Vec<Gate>) -> Stage {
        Stage {
            id: "soak".into(),
            label: "soak".into(),
            description: String::new(),
            gates,
            next: vec![Edge {
                to: "done".into(),
                when: edge,
            }],
            exits: Vec::new(),
            terminal: false,
            on_enter: Vec::new(),
            pacing: Default::default(),
        }
    }

    #[test]
    fn the_earliest_running_soak_is_due() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let h = chrono::Duration::hours;
        let vars: BTreeMap<String, String> = [("wait".to_string(), "3h".to_string())].into();
        let s = stage(
            vec![Gate::MinDuration(DurationSpec::Fixed(h(2)))],
            vec![Gate::Any(vec![Gate::MinDuration(DurationSpec::Variable {
                name: "wait".into(),
                default: None,
            })])],
        );
        assert_eq!(soak_due(&s, &vars, t0, t0 + h(1)), Some(t0 + h(2)));
        assert_eq!(soak_due(&s, &vars, t0, t0 + h(2)), Some(t0 + h(3)));
        assert_eq!(soak_due(&s, &vars, t0, t0 + h(3)), None);
        assert_eq!(soak_due(&s, &BTreeMap::new(), t0, t0 + h(2)), None);
        assert_eq!(soak_due(&stage(vec![], vec![]), &vars, t0, t0), None);
    }

    #[test]
    fn a_stage_with_a_metric_is_looked_at_every_minute_and_when_its_window_fills() {
        use crate::core::workflow::{MetricGate, Side, Threshold};
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let s = chrono::Duration::seconds;
        let metric = |query: &str, window: Option<i64>| {
            Gate::Metric(MetricGate {
                query: query.into(),
                side: Side::Below,
                threshold: Threshold::Fixed(1.0),
                window: window.map(s),
            })
        };
        let vars: BTreeMap<String, String> = [("q".to_string(), String::new())].into();
        let gated = stage(vec![metric("up", Some(30))], vec![]);
        assert_eq!(soak_due(&gated, &vars, t0, t0 + s(10)), Some(t0 + s(30)));
        assert_eq!(soak_due(&gated, &vars, t0, t0 + s(40)), Some(t0 + s(100)));
        // A query left empty is no metric: nothing to look at again.
        let empty = stage(vec![metric("{{q}}", None)], vec![]);
        assert_eq!(soak_due(&empty, &vars, t0, t0), None);
    }
}
