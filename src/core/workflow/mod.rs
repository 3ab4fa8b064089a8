//! Workflow files: the validated model (`Workflow`, `Stage`, `Edge`, `Gate`, `Action`,
//! `Variable`) and its methods. The step from a file to the model lives in the submodules:
//! `load` walks the raw YAML tree, `gates` and `actions` read those parts of a stage,
//! `validate` checks the workflow as a whole (targets, reachability, ways out, duplicates,
//! templates, variables), and `sections` holds each checklist gate against the template it
//! reads. Loading never stops at the first problem: it returns every `Problem` with its
//! file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::Duration;
use regex::Regex;

use super::yaml::Loc;

mod actions;
mod describe;
mod fact_gates;
mod gates;
mod load;
pub mod schema;
mod sections;
mod validate;

pub use fact_gates::check_project;
pub use load::load;
pub use sections::check_child_sections;
pub use validate::{
    check_children, raw_use_message, raw_variable_uses, template_variables, MAX_CHILDREN,
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
}

/// A way out of a stage: taken when every `when` gate holds (no `when`: always).
#[derive(Clone, Debug)]
pub struct Edge {
    pub to: String,
    pub when: Vec<Gate>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    Checklist(ChecklistGate),
    Label {
        name: String,
        child: Option<String>,
        present: bool,
    },
    Closed {
        child: String,
    },
    Completed {
        child: String,
        stage: Option<String>,
    },
    MinDuration(DurationSpec),
    Approval {
        label: String,
        by: Vec<String>,
        count: usize,
    },
    /// At least `count` merge requests that reference the tracking issue (or child
    /// `child`) are merged — in `project` when given.
    MergeRequest {
        project: Option<TextSpec>,
        count: usize,
        child: Option<String>,
    },
    /// At least `count` releases of `project` (default: the tracker's own) published since
    /// the migration entered the stage, tags matching `pattern`.
    Release {
        project: Option<TextSpec>,
        count: usize,
        pattern: Option<String>,
    },
    Metric(MetricGate),
    /// The feature flag's real state is as given.
    Flag {
        name: TextSpec,
        environment: Option<String>,
        enabled: Option<bool>,
        percentage: Option<f64>,
    },
    Any(Vec<Gate>),
    All(Vec<Gate>),
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

/// `metric: {query, below | above, for}`: the query (with `{{variable}}`s, each escaped for
/// use inside PromQL quotes) returns one series, and it stayed on the `side` of the
/// threshold during the whole window (`None`: at this instant). A query that comes out
/// empty (its variable left empty) is not applicable: the gate holds, and an exit whose
/// `when` has it is not taken.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricGate {
    pub query: String,
    pub side: Side,
    pub threshold: Threshold,
    pub window: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Side {
    Below,
    Above,
}

impl Side {
    pub fn holds(&self, value: f64, threshold: f64) -> bool {
        match self {
            Side::Below => value < threshold,
            Side::Above => value > threshold,
        }
    }

    /// `<` or `>`, as details write it.
    pub fn sign(&self) -> &'static str {
        match self {
            Side::Below => "<",
            Side::Above => ">",
        }
    }

    pub fn word(&self) -> &'static str {
        match self {
            Side::Below => "below",
            Side::Above => "above",
        }
    }
}

/// A metric threshold, fixed in the file or taken from a migration variable.
#[derive(Clone, Debug, PartialEq)]
pub enum Threshold {
    Fixed(f64),
    Variable { name: String, default: Option<f64> },
}

impl Threshold {
    /// The value for a migration with `vars`; `Err` says what is wrong with the variable.
    pub fn resolve(&self, vars: &BTreeMap<String, String>) -> Result<f64, String> {
        match self {
            Threshold::Fixed(x) => Ok(*x),
            Threshold::Variable { name, default } => match vars.get(name) {
                Some(text) if !text.trim().is_empty() => {
                    parse_threshold(text).map_err(|e| format!("variable `{name}`: {e}"))
                }
                _ => {
                    default.ok_or_else(|| format!("variable `{name}` is not set on this migration"))
                }
            },
        }
    }
}

/// A threshold as a variable writes it: a finite number.
pub fn parse_threshold(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("`{text}` is not a number")),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChecklistGate {
    pub section: Option<String>,
    pub child: Option<String>,
    pub items: Vec<String>,
    pub require: Require,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Require {
    All,
    AtLeast(usize),
}

/// A soak time, fixed in the file or taken from a migration variable (`"{{release_interval}}"`),
/// with the variable's default when it has one (for descriptions without a migration).
#[derive(Clone, Debug, PartialEq)]
pub enum DurationSpec {
    Fixed(Duration),
    Variable {
        name: String,
        default: Option<Duration>,
    },
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

impl Gate {
    /// The gate's name as the JSON output spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Gate::Checklist(_) => "checklist",
            Gate::Label { present: true, .. } => "label",
            Gate::Label { present: false, .. } => "no_label",
            Gate::Closed { .. } => "closed",
            Gate::Completed { .. } => "completed",
            Gate::MinDuration(_) => "min_duration",
            Gate::Approval { .. } => "approval",
            Gate::MergeRequest { .. } => "merge_request",
            Gate::Release { .. } => "release",
            Gate::Metric(_) => "metric",
            Gate::Flag { .. } => "flag",
            Gate::Any(_) => "any",
            Gate::All(_) => "all",
        }
    }

    /// Calls `f` on this gate and every gate nested in it.
    pub fn visit(&self, f: &mut dyn FnMut(&Gate)) {
        f(self);
        if let Gate::Any(gates) | Gate::All(gates) = self {
            for g in gates {
                g.visit(f);
            }
        }
    }

    /// A one-line description a person can read, with variables at their defaults.
    pub fn describe(&self) -> String {
        self.describe_with(&BTreeMap::new())
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
