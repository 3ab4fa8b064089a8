//! `Sim`: the migration as a plan moves it along — its stage, labels, open state, when the
//! stay began — and the steps of entering a stage.

use chrono::{DateTime, Utc};

use super::{PlannedTransition, Step, PAUSED_LABEL};
use crate::core::gates::{self, GateReport};
use crate::core::snapshot::Snapshot;
use crate::core::workflow::{Action, Stage, Workflow};

/// The migration as the plan moves it along.
pub(super) struct Sim<'w> {
    pub(super) workflow: &'w Workflow,
    pub(super) stage: Option<&'w Stage>,
    pub(super) labels: Vec<String>,
    pub(super) open: bool,
    pub(super) entered_at: DateTime<Utc>,
    pub(super) next_seq: u64,
    pub(super) warnings: Vec<String>,
}

impl<'w> Sim<'w> {
    pub(super) fn new(workflow: &'w Workflow, snapshot: &Snapshot) -> Sim<'w> {
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

    pub(super) fn context<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        now: DateTime<Utc>,
    ) -> gates::Context<'a> {
        gates::Context {
            snapshot,
            labels: &self.labels,
            entered_at: self.entered_at,
            now,
            vars: &snapshot.vars,
            exit: false,
        }
    }

    pub(super) fn transition(
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
            command: None,
        }
    }

    /// The steps of entering `target` (after the audit comment), applied to the simulation.
    /// Label actions and `close` ride on the final stage move, so the commit is one write.
    /// A rollback (which may `untick` first) starts a new stay too: the on_enter actions
    /// run again, and the migration is paused there.
    pub(super) fn enter(
        &mut self,
        target: &'w Stage,
        seq: u64,
        rollback: bool,
        untick: bool,
    ) -> Vec<Step> {
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
