//! The state machine: `plan(workflow, snapshot, now)` decides every move a migration can
//! make now, as data. It goes as far as the gates allow, resumes a transition that an
//! earlier run recorded but did not finish, and lists the steps the engine must apply, in
//! the order that keeps a crash harmless: audit comment first (the intent), then the
//! on_enter actions, then the stage label (the commit).

use chrono::{DateTime, Utc};

use super::checklist::{self, ItemRef};
use super::gates::{self, GateReport};
use super::snapshot::Snapshot;
use super::workflow::{Action, ChecklistGate, Gate, Stage, Workflow};

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

/// The migration as the plan moves it along.
struct Sim<'w> {
    workflow: &'w Workflow,
    stage: Option<&'w Stage>,
    labels: Vec<String>,
    open: bool,
    entered_at: DateTime<Utc>,
    next_seq: u64,
    warnings: Vec<String>,
}

impl<'w> Sim<'w> {
    fn new(workflow: &'w Workflow, snapshot: &Snapshot) -> Sim<'w> {
        let labels = snapshot.issue.labels.clone();
        let labelled = workflow.stages_labelled(&labels);
        let mut warnings = Vec::new();
        let stage = match labelled.as_slice() {
            [] => None,
            [one] => Some(*one),
            several => {
                let last_to = snapshot.transitions.last().map(|t| t.to.as_str());
                let chosen = several
                    .iter()
                    .find(|s| Some(s.id.as_str()) == last_to)
                    .unwrap_or(&several[0]);
                warnings.push(format!(
                    "#{} carries several stage labels ({}); taking `{}`",
                    snapshot.issue.number,
                    several
                        .iter()
                        .map(|s| s.label.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    chosen.label
                ));
                Some(*chosen)
            }
        };
        let entered_at = stage
            .map(|s| snapshot.entered_at(&s.id, &s.label))
            .unwrap_or(snapshot.issue.created_at);
        let next_seq = snapshot.transitions.last().map(|t| t.seq + 1).unwrap_or(1);
        Sim {
            workflow,
            stage,
            labels,
            open: snapshot.issue.open,
            entered_at,
            next_seq,
            warnings,
        }
    }

    fn context<'a>(&'a self, snapshot: &'a Snapshot, now: DateTime<Utc>) -> gates::Context<'a> {
        gates::Context {
            snapshot,
            labels: &self.labels,
            entered_at: self.entered_at,
            now,
            vars: &snapshot.vars,
            exit: false,
        }
    }

    fn transition(
        &mut self,
        from: &'w Stage,
        to: &'w Stage,
        now: DateTime<Utc>,
        reason: Option<String>,
        passed: Vec<GateReport>,
    ) -> PlannedTransition {
        let seq = self.next_seq;
        let mut steps = vec![Step::Audit];
        steps.extend(self.enter(to, seq, false, false));
        self.entered_at = now;
        PlannedTransition {
            seq,
            from: Some(from.id.clone()),
            to: to.id.clone(),
            at: now,
            reason,
            rollback: false,
            resumed: false,
            passed,
            untick: Vec::new(),
            steps,
        }
    }

    /// The steps of entering `target` (after the audit comment), applied to the simulation.
    /// Label actions and `close` ride on the final stage move, so the commit is one write.
    /// A rollback (which may `untick` first) starts a new stay too: the on_enter actions
    /// run again, and the migration is paused there.
    fn enter(&mut self, target: &'w Stage, seq: u64, rollback: bool, untick: bool) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut add: Vec<String> = Vec::new();
        let mut remove: Vec<String> = Vec::new();
        let mut open = None;
        if untick {
            steps.push(Step::Untick);
        }
        {
            for (index, action) in target.on_enter.iter().enumerate() {
                match action {
                    Action::CreateIssue { template, workflow } => steps.push(Step::CreateIssue {
                        template: template.clone(),
                        workflow: workflow.clone(),
                    }),
                    Action::Comment(text) => steps.push(Step::Comment {
                        index,
                        text: text.clone(),
                    }),
                    Action::Labels {
                        add: more,
                        remove: fewer,
                    } => {
                        for l in fewer {
                            add.retain(|a| a != l);
                            if !remove.contains(l) {
                                remove.push(l.clone());
                            }
                        }
                        for l in more {
                            remove.retain(|r| r != l);
                            if !add.contains(l) {
                                add.push(l.clone());
                            }
                        }
                    }
                    Action::Close => open = Some(false),
                    Action::FeatureFlag(flag) => steps.push(Step::FeatureFlag {
                        index,
                        flag: flag.clone(),
                    }),
                }
            }
        }
        if rollback {
            if !self.open && !target.terminal && open.is_none() {
                open = Some(true);
            }
            // A rollback holds the migration where it was put.
            remove.retain(|l| l != PAUSED_LABEL);
            if !add.iter().any(|l| l == PAUSED_LABEL) {
                add.push(PAUSED_LABEL.to_string());
            }
        }
        for stage in self.workflow.stages_labelled(&self.labels) {
            if stage.id != target.id && !remove.contains(&stage.label) {
                remove.push(stage.label.clone());
            }
        }
        add.retain(|l| !remove.contains(l) || l == &target.label);
        remove.retain(|l| l != &target.label);
        if !add.contains(&target.label) {
            add.insert(0, target.label.clone());
        }
        self.labels.retain(|l| !remove.contains(l));
        for l in &add {
            if !self.labels.contains(l) {
                self.labels.push(l.clone());
            }
        }
        if let Some(o) = open {
            self.open = o;
        }
        steps.push(Step::MoveStage { remove, add, open });
        self.stage = Some(target);
        self.next_seq = self.next_seq.max(seq + 1);
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::plan as plan_fn;
    use super::*;
    use crate::core::snapshot::{IssueView, LabelEvent, TransitionRecord};
    use crate::core::workflow::{load, Known};
    use chrono::{Duration, TimeZone};
    use std::collections::BTreeMap;

    const FLOW: &str = r#"
name: db
tracking: {template: t}
stages:
  - id: proposal
    label: "db::proposal"
    gates: [{checklist: {section: Proposal}}]
    next:
      - to: done
        when: [{label: small}]
      - to: rollout
    exits:
      - to: rejected
        when: [{label: rejected}]
  - id: rollout
    label: "db::rollout"
    on_enter: [{create_issue: {template: c}}, {comment: "started"}, {labels: {add: [rolling]}}]
    gates: [{min_duration: 2h}]
    next: done
  - id: done
    label: "db::done"
    terminal: true
    on_enter: [{close: true}]
  - id: rejected
    label: "db::rejected"
    terminal: true
"#;

    fn workflow() -> Workflow {
        let mut known = Known::default();
        known.templates.insert("t".into(), Default::default());
        known.templates.insert("c".into(), Default::default());
        load("db.yaml", FLOW, None, &known).unwrap()
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn snapshot(body: &str, labels: &[&str], transitions: &[(Option<&str>, &str)]) -> Snapshot {
        Snapshot {
            issue: IssueView {
                number: 7,
                title: "x".into(),
                body: body.into(),
                labels: labels.iter().map(|s| s.to_string()).collect(),
                open: true,
                created_at: t(0),
                url: String::new(),
                checklists: Default::default(),
            },
            vars: BTreeMap::new(),
            label_events: labels
                .iter()
                .map(|l| LabelEvent {
                    label: l.to_string(),
                    added: true,
                    actor: "a".into(),
                    at: t(0),
                })
                .collect(),
            history_unread: false,
            facts: Default::default(),
            transitions: transitions
                .iter()
                .enumerate()
                .map(|(i, (from, to))| TransitionRecord {
                    seq: i as u64 + 1,
                    from: from.map(String::from),
                    to: to.to_string(),
                    at: t(0),
                    by: "a".into(),
                    reason: None,
                    rollback: false,
                    untick: Vec::new(),
                })
                .collect(),
            children: Vec::new(),
        }
    }

    fn moves(plan: &Plan) -> Vec<(Option<&str>, &str, bool)> {
        plan.transitions
            .iter()
            .map(|t| (t.from.as_deref(), t.to.as_str(), t.resumed))
            .collect()
    }

    #[test]
    #[allow(clippy::type_complexity)] // the test table's rows
    fn plans_table() {
        let done = "## Proposal\n- [x] a\n";
        let open = "## Proposal\n- [ ] a\n";
        let started = &[(None, "proposal")][..];
        // (body, labels, recorded transitions, minutes, expected moves, expected stage)
        let cases: Vec<(
            &str,
            Vec<&str>,
            &[(Option<&str>, &str)],
            i64,
            Vec<(Option<&str>, &str, bool)>,
            &str,
        )> = vec![
            (
                open,
                vec![],
                &[],
                0,
                vec![(None, "proposal", false)],
                "proposal",
            ),
            (
                done,
                vec![],
                &[],
                0,
                vec![
                    (None, "proposal", false),
                    (Some("proposal"), "rollout", false),
                ],
                "rollout",
            ),
            (open, vec!["db::proposal"], started, 0, vec![], "proposal"),
            (
                done,
                vec!["db::proposal"],
                started,
                0,
                vec![(Some("proposal"), "rollout", false)],
                "rollout",
            ),
            (
                done,
                vec!["db::proposal", "small"],
                started,
                0,
                vec![(Some("proposal"), "done", false)],
                "done",
            ),
            (
                open,
                vec!["db::proposal", "rejected"],
                started,
                0,
                vec![(Some("proposal"), "rejected", false)],
                "rejected",
            ),
            (
                done,
                vec!["db::rollout"],
                &[(None, "proposal"), (Some("proposal"), "rollout")],
                60,
                vec![],
                "rollout",
            ),
            (
                done,
                vec!["db::rollout"],
                &[(None, "proposal"), (Some("proposal"), "rollout")],
                120,
                vec![(Some("rollout"), "done", false)],
                "done",
            ),
            // A crash after the audit comment: the transition is finished, not planned again.
            (
                open,
                vec!["db::proposal"],
                &[(None, "proposal"), (Some("proposal"), "rollout")],
                0,
                vec![(Some("proposal"), "rollout", true)],
                "rollout",
            ),
            (
                open,
                vec![],
                &[(None, "proposal")],
                0,
                vec![(None, "proposal", true)],
                "proposal",
            ),
            (
                done,
                vec!["db::done"],
                &[(None, "proposal"), (Some("proposal"), "done")],
                0,
                vec![],
                "done",
            ),
        ];
        let w = workflow();
        for (i, (body, labels, transitions, minutes, expected, stage)) in
            cases.into_iter().enumerate()
        {
            let plan = plan(&w, &snapshot(body, &labels, transitions), t(minutes));
            assert_eq!(moves(&plan), expected, "case {i}");
            assert_eq!(plan.stage.as_deref(), Some(stage), "case {i}");
        }
    }

    #[test]
    fn blocked_plans_say_by_what() {
        let w = workflow();
        let plan = plan(
            &w,
            &snapshot(
                "## Proposal\n- [ ] a\n- [x] b\n",
                &["db::proposal"],
                &[(None, "proposal")],
            ),
            t(0),
        );
        assert!(plan.transitions.is_empty());
        assert_eq!(plan.blocked_by.len(), 1);
        assert_eq!(plan.blocked_by[0].detail, "1/2 items in *Proposal*");
    }

    #[test]
    fn steps_keep_the_crash_safe_order() {
        let w = workflow();
        let plan = plan(
            &w,
            &snapshot(
                "## Proposal\n- [x] a\n",
                &["db::proposal"],
                &[(None, "proposal")],
            ),
            t(0),
        );
        let steps = &plan.transitions[0].steps;
        assert_eq!(plan.transitions[0].seq, 2);
        assert_eq!(steps.first(), Some(&Step::Audit));
        assert!(matches!(steps[1], Step::CreateIssue { .. }));
        assert!(matches!(steps[2], Step::Comment { index: 1, .. }));
        assert_eq!(
            steps.last(),
            Some(&Step::MoveStage {
                remove: vec!["db::proposal".into()],
                add: vec!["db::rollout".into(), "rolling".into()],
                open: None,
            })
        );
    }

    fn back<'r>(to: &'r str, force: bool) -> RollbackTo<'r> {
        RollbackTo {
            to,
            reason: "broke prod",
            force,
            keep_checklists: false,
        }
    }

    #[test]
    fn a_rollback_unticks_what_it_goes_back_over_and_pauses() {
        let w = workflow();
        let mut snap = snapshot(
            "## Proposal\n- [x] a\n- [ ] b\n- [~] c\n## Notes\n- [x] d\n",
            &["db::done"],
            &[(None, "proposal"), (Some("proposal"), "done")],
        );
        snap.issue.open = false;
        let plan = rollback(&w, &snap, &back("proposal", false), t(5)).unwrap();
        let tr = &plan.transitions[0];
        assert_eq!(
            (tr.seq, tr.rollback, tr.reason.as_deref()),
            (3, true, Some("broke prod"))
        );
        // Only the ticked boxes its gates count: not the one not applicable, nor Notes.
        assert_eq!(tr.untick, vec![ItemRef("Proposal".into(), "a".into())]);
        assert_eq!(
            tr.steps,
            vec![
                Step::Audit,
                Step::Untick,
                Step::MoveStage {
                    remove: vec!["db::done".into()],
                    add: vec!["db::proposal".into(), PAUSED_LABEL.into()],
                    open: Some(true),
                }
            ]
        );
        let kept = RollbackTo {
            keep_checklists: true,
            ..back("proposal", false)
        };
        let plan = rollback(&w, &snap, &kept, t(5)).unwrap();
        assert!(plan.transitions[0].untick.is_empty());
        assert!(!plan.transitions[0].steps.contains(&Step::Untick));
        assert!(rollback(&w, &snap, &back("nowhere", false), t(5))
            .unwrap_err()
            .contains("stages: proposal, rollout, done, rejected"));
        // Never been in `rollout`: only with --force.
        let err = rollback(&w, &snap, &back("rollout", false), t(5)).unwrap_err();
        assert!(err.contains("never been in stage `rollout`"), "{err}");
        assert!(rollback(&w, &snap, &back("rollout", true), t(5)).is_ok());
    }

    #[test]
    fn a_rollback_enters_its_stage_anew() {
        let w = workflow();
        let snap = snapshot(
            "## Proposal\n- [x] a\n",
            &["db::rollout"],
            &[(None, "proposal"), (Some("proposal"), "rollout")],
        );
        // Into a stage with on_enter actions: they run again (a new child, the comment).
        let mut done = snap.clone();
        done.issue.labels = vec!["db::done".into()];
        done.transitions.push(TransitionRecord {
            seq: 3,
            from: Some("rollout".into()),
            to: "done".into(),
            at: t(0),
            by: "a".into(),
            reason: None,
            rollback: false,
            untick: Vec::new(),
        });
        let plan = rollback(&w, &done, &back("rollout", false), t(5)).unwrap();
        let steps = &plan.transitions[0].steps;
        assert!(matches!(steps[1], Step::CreateIssue { .. }), "{steps:?}");
        assert!(matches!(steps[2], Step::Comment { index: 1, .. }));
        // After a crash between the audit comment and the move, the rerun finishes the
        // rollback and unticks what the audit comment recorded.
        let mut crashed = snap.clone();
        crashed.transitions.push(TransitionRecord {
            seq: 3,
            from: Some("rollout".into()),
            to: "proposal".into(),
            at: t(1),
            by: "a".into(),
            reason: Some("x".into()),
            rollback: true,
            untick: vec![ItemRef("Proposal".into(), "a".into())],
        });
        let p = plan_fn(&w, &crashed, t(2));
        assert_eq!(moves(&p), vec![(Some("rollout"), "proposal", true)]);
        assert_eq!(p.transitions[0].steps[0], Step::Untick);
        assert_eq!(p.transitions[0].untick.len(), 1);
        // Paused there, it waits.
        assert_eq!(p.blocked_by[0].gate, "paused");
    }

    #[test]
    fn a_paused_migration_waits_but_its_exits_apply() {
        let w = workflow();
        let snap = snapshot(
            "## Proposal\n- [x] a\n",
            &["db::proposal", PAUSED_LABEL],
            &[(None, "proposal")],
        );
        let p = plan(&w, &snap, t(0));
        assert!(p.transitions.is_empty());
        assert_eq!(p.blocked_by[0].gate, "paused");
        let snap = snapshot(
            "## Proposal\n- [x] a\n",
            &["db::proposal", PAUSED_LABEL, "rejected"],
            &[(None, "proposal")],
        );
        let p = plan(&w, &snap, t(0));
        assert_eq!(moves(&p), vec![(Some("proposal"), "rejected", false)]);
    }
}
