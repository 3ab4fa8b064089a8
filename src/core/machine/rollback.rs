//! `rollback --to STAGE`: a move back that starts a new stay, unticks the boxes the stages
//! gone back over count (unless `--keep-checklists`), and pauses the migration there.

use chrono::{DateTime, Utc};

use super::sim::Sim;
use super::{Plan, PlannedTransition, Step};
use crate::core::checklist::{self, ItemRef};
use crate::core::snapshot::Snapshot;
use crate::core::workflow::{ChecklistGate, Gate, Stage, Workflow};

/// How a rollback goes back: `rollback --to STAGE --reason TEXT [--force]
/// [--keep-checklists]`.
#[derive(Clone, Debug, Default)]
pub struct RollbackTo<'r> {
    pub to: &'r str,
    pub reason: &'r str,
    /// To a stage the migration has never been in.
    pub force: bool,
    /// Leave the tracking issue's task items ticked.
    pub keep_checklists: bool,
}

/// Plans a move back to a stage, recording why, and pauses the migration there (so the
/// next `advance` does not move straight on again). It starts a new stay: the target's
/// on_enter actions run again (a `create_issue` opens the next attempt), and unless
/// `keep_checklists` the ticked task items of the tracking issue that the target's gates
/// and those of the stages it goes back over count are unticked (the audit comment lists
/// them), so the migration leaves the stage again only on evidence given after the
/// rollback. The target must be a stage the migration has been in before, unless `force`.
pub fn rollback(
    workflow: &Workflow,
    snapshot: &Snapshot,
    back: &RollbackTo,
    now: DateTime<Utc>,
) -> Result<Plan, String> {
    let RollbackTo {
        to, reason, force, ..
    } = *back;
    let Some(target) = workflow.stage(to) else {
        let ids: Vec<&str> = workflow.stages.iter().map(|s| s.id.as_str()).collect();
        return Err(format!(
            "`{to}` is no stage of {} (stages: {})",
            workflow.name,
            ids.join(", ")
        ));
    };
    let mut sim = Sim::new(workflow, snapshot);
    let from = sim.stage.map(|s| s.id.clone());
    if from.as_deref() == Some(to) {
        return Err(format!(
            "#{} is already in stage `{to}`",
            snapshot.issue.number
        ));
    }
    let visited = snapshot.transitions.iter().any(|t| t.to == to);
    if !visited && !force {
        let mut been: Vec<&str> = snapshot
            .transitions
            .iter()
            .map(|t| t.to.as_str())
            .filter(|s| Some(*s) != from.as_deref())
            .collect();
        been.dedup();
        return Err(format!(
            "#{} has never been in stage `{to}`, so it cannot be rolled back there{} (--force moves it anyway)",
            snapshot.issue.number,
            if been.is_empty() {
                String::new()
            } else {
                format!("; stages it has been in: {}", been.join(", "))
            }
        ));
    }
    let seq = sim.next_seq;
    let untick = if back.keep_checklists {
        Vec::new()
    } else {
        gone_back_over(workflow, snapshot, sim.stage, target)
    };
    let mut steps = vec![Step::Audit];
    steps.extend(sim.enter(target, seq, true, !untick.is_empty()));
    let transition = PlannedTransition {
        seq,
        from: from.clone(),
        to: to.to_string(),
        at: now,
        reason: Some(reason.to_string()),
        rollback: true,
        resumed: false,
        passed: Vec::new(),
        untick,
        steps,
        command: None,
    };
    Ok(Plan {
        from,
        stage: Some(to.to_string()),
        transitions: vec![transition],
        gates: Vec::new(),
        blocked_by: Vec::new(),
        warnings: sim.warnings,
    })
}

/// The ticked task items of the tracking issue that a rollback from `from` to `to` takes
/// back: those counted by the checklist gates (on the tracking issue, not a child) of `to`,
/// of the stages entered since the migration last entered `to`, and of `from`.
fn gone_back_over(
    workflow: &Workflow,
    snapshot: &Snapshot,
    from: Option<&Stage>,
    to: &Stage,
) -> Vec<ItemRef> {
    let mut stages: Vec<&str> = vec![to.id.as_str()];
    if let Some(last) = snapshot.transitions.iter().rposition(|t| t.to == to.id) {
        stages.extend(
            snapshot.transitions[last + 1..]
                .iter()
                .map(|t| t.to.as_str()),
        );
    }
    stages.extend(from.map(|s| s.id.as_str()));
    let issue = &snapshot.issue;
    let mut out: Vec<ItemRef> = Vec::new();
    for stage in stages.iter().filter_map(|id| workflow.stage(id)) {
        for gate in stage.all_gates() {
            gate.visit(&mut |g| {
                if let Gate::Checklist(ChecklistGate {
                    child: None,
                    section,
                    items: patterns,
                    ..
                }) = g
                {
                    let items = issue.checklists.items(&issue.body, section.as_deref());
                    for item in checklist::counted(&items, section.as_deref(), patterns) {
                        let r = item.reference();
                        if item.check == checklist::Check::Done && !out.contains(&r) {
                            out.push(r);
                        }
                    }
                }
            });
        }
    }
    out
}
