//! The state machine: `plan(workflow, snapshot, now)` decides every move a migration can
//! make now, as data. It goes as far as the gates allow, resumes a transition that an
//! earlier run recorded but did not finish, and lists the steps the engine must apply, in
//! the order that keeps a crash harmless: audit comment first (the intent), then the
//! on_enter actions, then the stage label (the commit).

use chrono::{DateTime, Utc};

mod rollback;
mod sim;

pub use rollback::{rollback, RollbackTo};

use super::checklist::ItemRef;
use super::gates::{self, GateReport};
use super::snapshot::Snapshot;
use super::workflow::Workflow;
use sim::Sim;

/// Everything one `advance` of one migration will do.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The stage before the plan.
    pub from: Option<String>,
    /// The stage after the plan.
    pub stage: Option<String>,
    pub transitions: Vec<PlannedTransition>,
    /// The gates of the final stage, all of them.
    pub gates: Vec<GateReport>,
    /// Why the plan stops where it does (empty when terminal).
    pub blocked_by: Vec<GateReport>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedTransition {
    pub seq: u64,
    pub from: Option<String>,
    pub to: String,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
    pub rollback: bool,
    /// An earlier run recorded this transition; this plan finishes it.
    pub resumed: bool,
    /// The gates that held (empty for exits, resumptions and rollbacks).
    pub passed: Vec<GateReport>,
    /// A rollback's ticked task items of the tracking issue to untick (the audit comment
    /// lists them): the evidence of the stages it goes back over.
    pub untick: Vec<ItemRef>,
    pub steps: Vec<Step>,
    /// The comment command that asked for it (a rollback by `/shepherd rollback`): its
    /// audit comment names the commenter and is the command's reply.
    pub command: Option<Commanded>,
}

/// A comment command a transition answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Commanded {
    /// The command's comment id.
    pub id: u64,
    /// Its author.
    pub by: String,
}

/// One write the engine makes, each idempotent by its marker or by being a set operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Post the audit comment of the transition (unless one with its marker exists).
    Audit,
    /// Untick the transition's `untick` items of the tracking issue, in one edit of the
    /// body read right before writing: the boxes a rollback goes back over.
    Untick,
    CreateIssue {
        template: String,
        workflow: Option<String>,
    },
    /// Post an on_enter comment (a Handlebars text) with marker `action=<seq>.<index>`.
    Comment { index: usize, text: String },
    /// Set a feature flag where it differs, and say so in a comment with marker
    /// `action=<seq>.<index>` (so a rerun after a crash neither writes nor says it twice).
    FeatureFlag {
        index: usize,
        flag: super::workflow::FlagAction,
    },
    /// The commit: remove the other stage labels and add the new one, together with the
    /// labels the stage's `labels` actions change and the state its `close` sets (or a
    /// rollback's reopen), in one request.
    MoveStage {
        remove: Vec<String>,
        add: Vec<String>,
        /// `Some(false)` closes the issue, `Some(true)` reopens it.
        open: Option<bool>,
    },
}

/// The label that holds a migration where it is: no forward move while it is on the
/// tracking issue (exits still apply). `pause`, `rollback` and a person in the tracker's
/// own UI set it.
pub const PAUSED_LABEL: &str = "shepherd::paused";

/// The migration's state as the CLI reports it.
pub fn state(workflow: &Workflow, labels: &[String], open: bool) -> &'static str {
    let terminal = workflow.stages_labelled(labels).iter().any(|s| s.terminal);
    match (terminal, open) {
        (true, _) => "completed",
        (false, true) => "open",
        (false, false) => "closed",
    }
}

/// Plans every move the gates allow now.
pub fn plan(workflow: &Workflow, snapshot: &Snapshot, now: DateTime<Utc>) -> Plan {
    let mut sim = Sim::new(workflow, snapshot);
    let from = sim.stage.map(|s| s.id.clone());
    let mut warnings = sim.warnings.clone();
    let mut transitions: Vec<PlannedTransition> =
        first_move(workflow, snapshot, &mut sim, now, &mut warnings)
            .into_iter()
            .collect();
    let mut blocked_by = Vec::new();
    let mut gates = Vec::new();
    let limit = workflow.stages.len() + 1;
    loop {
        match next_move(
            workflow,
            snapshot,
            &mut sim,
            now,
            transitions.len() >= limit,
        ) {
            Next::Move(t, reports) => {
                if let Some(reports) = reports {
                    gates = reports;
                }
                transitions.push(t);
            }
            Next::Stop(reports, blocked) => {
                if let Some(reports) = reports {
                    gates = reports;
                }
                blocked_by = blocked;
                break;
            }
            Next::Loops => {
                warnings.push(format!("stopped after {limit} moves: the workflow loops"));
                break;
            }
        }
    }
    Plan {
        from,
        stage: sim.stage.map(|s| s.id.clone()),
        transitions,
        gates,
        blocked_by,
        warnings,
    }
}

/// The move a plan starts with, if any: finishing the transition an earlier run started
/// (its marker is there, its label move is not), or entering the first stage.
fn first_move<'w>(
    workflow: &'w Workflow,
    snapshot: &Snapshot,
    sim: &mut Sim<'w>,
    now: DateTime<Utc>,
    warnings: &mut Vec<String>,
) -> Option<PlannedTransition> {
    if let Some(last) = snapshot.transitions.last() {
        let current = sim.stage.map(|s| s.id.as_str());
        if current != last.from.as_deref() || current == Some(last.to.as_str()) {
            return None;
        }
        let Some(target) = workflow.stage(&last.to) else {
            warnings.push(format!(
                "transition {} leads to `{}`, which is no longer a stage",
                last.seq, last.to
            ));
            return None;
        };
        let steps = sim.enter(target, last.seq, last.rollback, !last.untick.is_empty());
        sim.entered_at = now;
        return Some(PlannedTransition {
            seq: last.seq,
            from: last.from.clone(),
            to: last.to.clone(),
            at: now,
            reason: last.reason.clone(),
            rollback: last.rollback,
            resumed: true,
            passed: Vec::new(),
            untick: last.untick.clone(),
            steps,
            command: None,
        });
    }
    if sim.stage.is_some() {
        return None;
    }
    let first = workflow.first_stage();
    let mut steps = vec![Step::Audit];
    steps.extend(sim.enter(first, 1, false, false));
    sim.entered_at = now;
    Some(PlannedTransition {
        seq: 1,
        from: None,
        to: first.id.clone(),
        at: now,
        reason: None,
        rollback: false,
        resumed: false,
        passed: Vec::new(),
        untick: Vec::new(),
        steps,
        command: None,
    })
}

/// What one round of `plan` decides; `Some` reports are the stage's gates as shown.
enum Next {
    Move(PlannedTransition, Option<Vec<GateReport>>),
    Stop(Option<Vec<GateReport>>, Vec<GateReport>),
    /// More moves than the workflow has stages: it loops.
    Loops,
}

/// The next move from where `sim` stands, or why there is none: no stage label, a
/// terminal stage, a closed issue, an exit whose `when` holds, a pause, gates that do not
/// hold, no `next` edge that applies.
fn next_move<'w>(
    workflow: &'w Workflow,
    snapshot: &Snapshot,
    sim: &mut Sim<'w>,
    now: DateTime<Utc>,
    too_many: bool,
) -> Next {
    let blocked = |gate: &str, description: &str, detail: String| GateReport {
        gate: gate.into(),
        description: description.into(),
        passed: false,
        detail,
        waits_for: None,
    };
    let number = snapshot.issue.number;
    let Some(stage) = sim.stage else {
        let detail = format!("#{number} has no stage label of {}", workflow.name);
        let why = "the tracking issue carries one stage label";
        return Next::Stop(None, vec![blocked("stage", why, detail)]);
    };
    if stage.terminal {
        return Next::Stop(Some(Vec::new()), Vec::new());
    }
    if !sim.open {
        let why = "the tracking issue is open";
        return Next::Stop(
            None,
            vec![blocked("open", why, format!("#{number} is closed"))],
        );
    }
    if too_many {
        return Next::Loops;
    }
    let cx = sim.context(snapshot, now);
    let exit_cx = gates::Context { exit: true, ..cx };
    if let Some((edge, reports)) = stage.exits.iter().find_map(|e| {
        let reports: Vec<GateReport> = e.when.iter().map(|g| gates::report(g, &exit_cx)).collect();
        reports.iter().all(|r| r.passed).then_some((e, reports))
    }) {
        let details: Vec<&str> = reports.iter().map(|r| r.detail.as_str()).collect();
        let reason = format!("exit: {}", details.join("; "));
        let target = workflow.stage(&edge.to).expect("validated edge");
        return Next::Move(
            sim.transition(stage, target, now, Some(reason), reports),
            None,
        );
    }
    let gates: Vec<GateReport> = stage.gates.iter().map(|g| gates::report(g, &cx)).collect();
    if sim.labels.iter().any(|l| l == PAUSED_LABEL) {
        let detail =
            format!("paused (label {PAUSED_LABEL}): `shepherd resume {number}` lets it move on");
        let why = "the migration is not paused";
        return Next::Stop(Some(gates), vec![blocked("paused", why, detail)]);
    }
    let failing: Vec<GateReport> = gates.iter().filter(|r| !r.passed).cloned().collect();
    if !failing.is_empty() {
        return Next::Stop(Some(gates), failing);
    }
    let chosen = stage
        .next
        .iter()
        .find(|e| e.when.iter().all(|g| gates::evaluate(g, &cx).passed));
    let Some(edge) = chosen else {
        let detail = "the gates hold, but no `next` edge's `when` holds".into();
        let why = "one `next` edge applies";
        return Next::Stop(Some(gates), vec![blocked("next", why, detail)]);
    };
    let mut passed = gates.clone();
    passed.extend(edge.when.iter().map(|g| gates::report(g, &cx)));
    let target = workflow.stage(&edge.to).expect("validated edge");
    if let Some(wait) = snapshot.portfolio.holds_back(target) {
        return Next::Stop(Some(gates), vec![wait]);
    }
    Next::Move(
        sim.transition(stage, target, now, None, passed),
        Some(gates),
    )
}

/// Whether `plan`, made without the label history (`Snapshot::history_unread`), moved
/// the migration out of a stage whose gates need that history (a soak, an approval, a
/// release since the stage began; a label set since the last rollback). Such a plan may
/// go too far: it must be made again with the history, so that every stage is judged on
/// what its own gates need.
pub fn leans_on_history(workflow: &Workflow, snapshot: &Snapshot, plan: &Plan) -> bool {
    let rolled_back = snapshot.evidence_since().is_some();
    snapshot.history_unread
        && plan
            .transitions
            .iter()
            .filter(|t| !t.resumed && !t.rollback)
            .filter_map(|t| workflow.stage(t.from.as_deref()?))
            .any(|s| s.needs_label_history() || (rolled_back && s.checks_labels()))
}

#[cfg(test)]
mod tests;
