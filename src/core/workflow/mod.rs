//! Workflow files: the validated model (`Workflow`, `Stage`, `Edge`, `Gate`, `Action`,
//! `Variable`) and its methods. The step from a file to the model lives in the submodules:
//! `load` walks the raw YAML tree, `gates` and `actions` read those parts of a stage,
//! `validate` checks the workflow as a whole (targets, reachability, ways out, duplicates,
//! templates, variables), and `sections` holds each checklist gate against the template it
//! reads. Loading never stops at the first problem: it returns every `Problem` with its
//! file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regex::Regex;

use super::yaml::Loc;

mod actions;
mod flag_action;
mod load;
mod pacing;
pub mod schema;
mod sections;
mod validate;

pub use crate::core::gates::{
    check_project, parse_threshold, ChecklistGate, DurationSpec, Gate, MetricGate, Require, Side,
    Threshold,
};
pub use load::load;
pub(crate) use load::{one_line, Validator};
pub use pacing::Pacing;
pub(crate) use pacing::PACING_KEYS;
pub use sections::check_child_sections;
pub use validate::{
    check_after, check_children, raw_use_message, raw_variable_uses, template_variables,
    MAX_CHILDREN,
};

/// A named state machine, valid by construction.
#[derive(Clone, Debug)]
pub struct Workflow {
    pub name: String,
    pub description: String,
    pub variables: Vec<Variable>,
    pub tracking: Tracking,
    pub stages: Vec<Stage>,
    /// Every `create_issue` of the file with its place, for the checks that look across
    /// workflows (`check_children`).
    pub create_sites: Vec<CreateSite>,
    /// Every `checklist` gate of the file with its places, for the check of a child
    /// workflow's gates against the template its parent opens it with
    /// (`check_child_sections`).
    pub checklist_sites: Vec<ChecklistSite>,
    /// Every `after` gate of the file with its place, for the check that its workflow,
    /// stage and variables exist (`check_after`).
    pub after_sites: Vec<crate::core::gates::AfterSite>,
}

/// A `checklist` gate and where the file writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChecklistSite {
    pub gate: ChecklistGate,
    /// The place of its `section`, or of the gate when it has none.
    pub section_loc: Loc,
    /// The place of its `require`, when that is a number.
    pub require_loc: Option<Loc>,
}

/// A `create_issue` action and where the file writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct CreateSite {
    /// The stage whose `on_enter` holds it.
    pub stage: String,
    pub template: String,
    pub workflow: Option<String>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub required: bool,
    pub default: Option<String>,
    pub pattern: Option<Regex>,
    pub description: String,
}

#[derive(Clone, Debug)]
pub struct Tracking {
    pub template: String,
    pub labels: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Stage {
    pub id: String,
    pub label: String,
    pub description: String,
    pub gates: Vec<Gate>,
    pub next: Vec<Edge>,
    pub exits: Vec<Edge>,
    pub terminal: bool,
    pub on_enter: Vec<Action>,
    /// `limit`, `target`, `owners`, `freeze` (DESIGN §13).
    pub pacing: Pacing,
}

/// A way out of a stage: taken when every `when` gate holds (no `when`: always).
#[derive(Clone, Debug)]
pub struct Edge {
    pub to: String,
    pub when: Vec<Gate>,
}

/// A value fixed in the file or taken whole from a migration variable (`"{{name}}"`), with
/// the variable's default when it has one.
#[derive(Clone, Debug, PartialEq)]
pub enum TextSpec {
    Fixed(String),
    Variable {
        name: String,
        default: Option<String>,
    },
}

impl TextSpec {
    /// The value for a migration with `vars`; `Err` names the variable that is missing.
    pub fn resolve(&self, vars: &BTreeMap<String, String>) -> Result<String, String> {
        match self {
            TextSpec::Fixed(s) => Ok(s.clone()),
            TextSpec::Variable { name, default } => vars
                .get(name)
                .filter(|v| !v.is_empty())
                .or(default.as_ref())
                .cloned()
                .ok_or_else(|| format!("variable `{name}` is not set on this migration")),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    CreateIssue {
        template: String,
        workflow: Option<String>,
    },
    Comment(String),
    Labels {
        add: Vec<String>,
        remove: Vec<String>,
    },
    Close,
    /// Sets a feature flag (read first, written only where it differs).
    FeatureFlag(FlagAction),
}

/// `feature_flag: {name, percentage | enabled | delete, environment}`.
#[derive(Clone, Debug, PartialEq)]
pub struct FlagAction {
    pub name: TextSpec,
    pub want: crate::core::facts::FlagWant,
    /// `None`: every environment.
    pub environment: Option<String>,
}

/// One thing wrong with a workflow or template file.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub file: String,
    pub loc: Loc,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.loc.line, self.loc.column, self.message
        )
    }
}

/// What the rest of the catalogue offers a workflow: templates (with the variables each
/// uses, and the outline of each, when known, for its checklist gates) and the names of
/// the other workflows.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub templates: BTreeMap<String, BTreeSet<String>>,
    pub outlines: BTreeMap<String, super::outline::Outline>,
    pub workflows: BTreeSet<String>,
}

impl Workflow {
    /// Whether a stage sets a feature flag as it is entered.
    pub fn sets_flags(&self) -> bool {
        self.stages.iter().any(|s| {
            s.on_enter
                .iter()
                .any(|a| matches!(a, Action::FeatureFlag(_)))
        })
    }

    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }

    pub fn first_stage(&self) -> &Stage {
        &self.stages[0]
    }

    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// The stages whose label is among `labels`, in workflow order.
    pub fn stages_labelled<'a>(&'a self, labels: &[String]) -> Vec<&'a Stage> {
        self.stages
            .iter()
            .filter(|s| labels.iter().any(|l| l == &s.label))
            .collect()
    }

    /// Every label the workflow uses: tracking labels, stage labels, labels named by gates
    /// and actions. Trackers create the missing ones.
    pub fn labels(&self) -> Vec<String> {
        let mut out: Vec<String> = self.tracking.labels.clone();
        for stage in &self.stages {
            out.push(stage.label.clone());
            let gates = stage
                .gates
                .iter()
                .chain(stage.next.iter().chain(&stage.exits).flat_map(|e| &e.when));
            for gate in gates {
                gate.visit(&mut |g| match g {
                    Gate::Label {
                        name, child: None, ..
                    }
                    | Gate::Approval { label: name, .. } => out.push(name.clone()),
                    _ => {}
                });
            }
            for action in &stage.on_enter {
                if let Action::Labels { add, .. } = action {
                    out.extend(add.iter().cloned());
                }
            }
        }
        let mut seen = BTreeSet::new();
        out.retain(|l| seen.insert(l.clone()));
        out
    }
}

impl Stage {
    /// Every gate of the stage: its own and those of its edges' `when`.
    pub fn all_gates(&self) -> impl Iterator<Item = &Gate> {
        self.gates
            .iter()
            .chain(self.next.iter().chain(&self.exits).flat_map(|e| &e.when))
    }

    /// Whether evaluating the stage needs the tracking issue's label history: soak times,
    /// approvals, and releases since the stage was entered do. Trackers that charge a
    /// request for it fetch it only then.
    pub fn needs_label_history(&self) -> bool {
        let mut needs = false;
        for gate in self.all_gates() {
            gate.visit(&mut |g| {
                needs |= matches!(
                    g,
                    Gate::MinDuration(_) | Gate::Approval { .. } | Gate::Release { .. }
                )
            });
        }
        needs
    }

    /// Whether the stage's gates look for a label set on the tracking issue: after a
    /// rollback only a label set since counts, and that takes the label history.
    pub fn checks_labels(&self) -> bool {
        let mut checks = false;
        for gate in self.all_gates() {
            gate.visit(&mut |g| {
                checks |= matches!(
                    g,
                    Gate::Label {
                        child: None,
                        present: true,
                        ..
                    }
                )
            });
        }
        checks
    }

    /// The child templates the stage's gates look at.
    pub fn child_templates(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for gate in self.all_gates() {
            gate.visit(&mut |g| match g {
                Gate::Checklist(ChecklistGate { child: Some(c), .. })
                | Gate::Label { child: Some(c), .. }
                | Gate::Closed { child: c }
                | Gate::MergeRequest { child: Some(c), .. }
                | Gate::Completed { child: c, .. } => {
                    out.insert(c.clone());
                }
                _ => {}
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;

/// Whether `name` can be a label on every tracker: not empty, and without a comma (trackers
/// read it as a separator), a line break or another control character.
pub fn check_label_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("a label name is empty".to_string());
    }
    if name.contains(',') {
        return Err(format!(
            "label `{name}` has a comma, which trackers read as a separator between labels"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(format!(
            "label {name:?} has a line break or control character ({})",
            c.escape_unicode()
        ));
    }
    Ok(())
}
