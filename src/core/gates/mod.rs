//! Gates, one module per kind: each reads its part of a workflow file (`Validator`), says
//! in a line what it asks (`describe`), asks the question a fact gate needs answered
//! (`question`), and evaluates (`evaluate`). This module holds the `Gate` enum and
//! dispatches; `any` and `all` combine the others. A gate that does not hold is data
//! (`GateOutcome { passed: false, .. }`) with a detail a person can act on, never an
//! error. A fact that was not asked for is taken as holding when the snapshot says its
//! facts are unread (the cheapest look: an upper bound), and as not holding otherwise.
//!
//! A new kind of gate: a variant here, a module with those four parts, a line in
//! `GATE_KINDS`, `describe_with`, `evaluate` and (for a fact) `question`, and its shape in
//! `workflow::schema`; a fact it needs is a `facts::Question` the trackers answer.

mod after;
mod approval;
mod checklist;
mod child;
mod fields;
mod flag;
mod label;
mod merge_request;
mod metric;
mod min_duration;
mod release;
pub mod who;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use super::facts::Question;
use super::snapshot::{LabelEvent, Snapshot};
use super::workflow::{TextSpec, Validator, Variable};
use super::yaml::{Node, NodeKind};

pub use after::{reach, AfterGate, AfterSite};
pub use checklist::{ChecklistGate, Require};
pub use fields::check_project;
pub use flag::flag_text;
pub use metric::{parse_threshold, MetricGate, Side, Threshold};
pub use min_duration::DurationSpec;

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
    /// Other migrations (of a workflow, matched by variables) reached a stage.
    After(AfterGate),
    Any(Vec<Gate>),
    All(Vec<Gate>),
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
            Gate::After(_) => "after",
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

    /// A one-line description with a migration's variable values filled in (a variable
    /// missing from `vars`, or not a duration, shows its default).
    pub fn describe_with(&self, vars: &BTreeMap<String, String>) -> String {
        match self {
            Gate::Checklist(c) => checklist::describe(c),
            Gate::Label {
                name,
                child,
                present,
            } => label::describe(name, child, *present),
            Gate::Closed { child } => child::describe_closed(child),
            Gate::Completed { child, stage } => child::describe_completed(child, stage.as_deref()),
            Gate::MinDuration(spec) => min_duration::describe(spec, vars),
            Gate::Approval { label, by, count } => approval::describe(label, by, *count),
            Gate::MergeRequest {
                project,
                count,
                child,
            } => merge_request::describe(project.as_ref(), *count, child.as_deref(), vars),
            Gate::Release {
                project,
                count,
                pattern,
            } => release::describe(project.as_ref(), *count, pattern.as_deref(), vars),
            Gate::Metric(m) => metric::describe(m, vars),
            Gate::Flag {
                name,
                environment,
                enabled,
                percentage,
            } => flag::describe(name, environment.as_deref(), *enabled, *percentage, vars),
            Gate::After(g) => after::describe(g, vars),
            Gate::Any(gates) => format!("any of: {}", each(gates, vars)),
            Gate::All(gates) => format!("all of: {}", each(gates, vars)),
        }
    }
}

/// Whether a gate holds, and why (not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateOutcome {
    pub passed: bool,
    pub detail: String,
}

/// A gate's outcome as the CLI reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GateReport {
    pub gate: String,
    pub description: String,
    pub passed: bool,
    pub detail: String,
    /// Who must act for it to hold, while it does not and a person can make it
    /// ("carol or dave to add ~\"dba-approved\""; `who::waits_for`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<String>,
}

/// The state a gate is evaluated against: the snapshot, possibly moved on by transitions
/// planned earlier in the same call.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub labels: &'a [String],
    pub entered_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub vars: &'a BTreeMap<String, String>,
    /// The gate is part of an exit's `when`: a gate that does not apply (a metric whose
    /// query is empty) does not hold there, where as a stage gate it does.
    pub exit: bool,
}

/// Whether the gate holds in `cx`, and why (not).
pub fn evaluate(gate: &Gate, cx: &Context) -> GateOutcome {
    match gate {
        Gate::Checklist(c) => checklist::evaluate(c, cx),
        Gate::Label {
            name,
            child,
            present,
        } => label::evaluate(name, child.as_deref(), *present, cx),
        Gate::Closed { child } => child::closed(child, cx),
        Gate::Completed { child, stage } => child::completed(child, stage.as_deref(), cx),
        Gate::MinDuration(spec) => min_duration::evaluate(spec, cx),
        Gate::Approval { label, by, count } => approval::evaluate(label, by, *count, cx),
        Gate::MergeRequest {
            project,
            count,
            child,
        } => merge_request::evaluate(project.as_ref(), *count, child.as_deref(), cx),
        Gate::Release {
            project,
            count,
            pattern,
        } => release::evaluate(project.as_ref(), *count, pattern.as_deref(), cx),
        Gate::Metric(m) => metric::evaluate(m, cx),
        Gate::Flag {
            name,
            environment,
            enabled,
            percentage,
        } => flag::evaluate(name, environment.as_deref(), *enabled, *percentage, cx),
        Gate::After(g) => after::evaluate(g, cx),
        Gate::Any(gates) => {
            let outcomes: Vec<GateOutcome> = gates.iter().map(|g| evaluate(g, cx)).collect();
            let passed = outcomes.iter().any(|o| o.passed);
            // Passed: the ones that hold; not: all of them.
            let shown: fn(&GateOutcome) -> bool = if passed { |o| o.passed } else { |_| true };
            outcome(passed, join(&outcomes, shown))
        }
        Gate::All(gates) => {
            let outcomes: Vec<GateOutcome> = gates.iter().map(|g| evaluate(g, cx)).collect();
            let passed = outcomes.iter().all(|o| o.passed);
            // Passed: all of them; not: the ones that do not hold.
            let shown: fn(&GateOutcome) -> bool = if passed { |_| true } else { |o| !o.passed };
            outcome(passed, join(&outcomes, shown))
        }
    }
}

/// Evaluates a gate and wraps it for reporting.
pub fn report(gate: &Gate, cx: &Context) -> GateReport {
    let GateOutcome { passed, detail } = evaluate(gate, cx);
    GateReport {
        gate: gate.kind().to_string(),
        description: gate.describe_with(cx.vars),
        waits_for: (!passed).then(|| who::waits_for(gate, cx.vars)).flatten(),
        passed,
        detail,
    }
}

/// The question of a fact gate, when it can be asked.
pub fn question(gate: &Gate, cx: &Context) -> Option<Question> {
    match gate {
        Gate::MergeRequest { child, project, .. } => {
            merge_request::question(project.as_ref(), child.as_deref(), cx)
        }
        Gate::Release { project, .. } => release::question(project.as_ref(), cx),
        Gate::Flag {
            name, environment, ..
        } => flag::question(name, environment.as_deref(), cx),
        Gate::Metric(m) => metric::question(m, cx),
        Gate::After(g) => after::question(g),
        _ => None,
    }
}

/// Reads one kind of gate: the kind's name, its value, the workflow's variables.
type ReadGate = fn(&mut Validator<'_>, &str, &Node, &[Variable]) -> Option<Gate>;

/// Every gate kind, by its key in a workflow file, and how it is read.
const GATE_KINDS: &[(&str, ReadGate)] = &[
    ("checklist", |v, k, n, vars| v.checklist_gate(k, n, vars)),
    ("label", |v, k, n, vars| v.label_gate(k, n, vars)),
    ("no_label", |v, k, n, vars| v.label_gate(k, n, vars)),
    ("closed", |v, k, n, vars| v.child_gate(k, n, vars)),
    ("completed", |v, k, n, vars| v.child_gate(k, n, vars)),
    ("min_duration", |v, k, n, vars| {
        v.min_duration_gate(k, n, vars)
    }),
    ("approval", |v, k, n, vars| v.approval_gate(k, n, vars)),
    ("merge_request", |v, _, n, vars| {
        v.merge_request_gate(n, vars)
    }),
    ("release", |v, _, n, vars| v.release_gate(n, vars)),
    ("metric", |v, _, n, vars| v.metric_gate(n, vars)),
    ("flag", |v, _, n, vars| v.flag_gate(n, vars)),
    ("after", |v, _, n, vars| v.after_gate(n, vars)),
    ("any", |v, k, n, vars| v.combinator(k, n, vars)),
    ("all", |v, k, n, vars| v.combinator(k, n, vars)),
];

impl Validator<'_> {
    pub(crate) fn gates(&mut self, node: &Node, variables: &[Variable]) -> Vec<Gate> {
        let NodeKind::Seq(items) = &node.kind else {
            self.problem(
                node.loc,
                format!("gates must be a list, found {}", node.kind_name()),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|g| self.gate(g, variables))
            .collect()
    }

    fn gate(&mut self, node: &Node, variables: &[Variable]) -> Option<Gate> {
        let NodeKind::Map(entries) = &node.kind else {
            self.problem(
                node.loc,
                format!(
                    "a gate must be a one-key mapping such as `- label: ready`, found {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        if entries.len() != 1 {
            self.problem(
                node.loc,
                format!("a gate must have exactly one key, found {}", entries.len()),
            );
            return None;
        }
        let (key, value) = &entries[0];
        let Some(kind) = key.as_str() else {
            self.problem(key.loc, "a gate's key must be a string");
            return None;
        };
        let Some((_, read)) = GATE_KINDS.iter().find(|(name, _)| *name == kind) else {
            let kinds: Vec<&str> = GATE_KINDS.iter().map(|(name, _)| *name).collect();
            self.problem(
                key.loc,
                format!("unknown gate `{kind}` (gates: {})", kinds.join(", ")),
            );
            return None;
        };
        read(self, kind, value, variables)
    }

    /// `any: [gates…]` / `all: [gates…]`.
    fn combinator(&mut self, kind: &str, value: &Node, variables: &[Variable]) -> Option<Gate> {
        let gates = self.gates(value, variables);
        if gates.is_empty() && matches!(&value.kind, NodeKind::Seq(s) if s.is_empty()) {
            self.problem(value.loc, format!("`{kind}` needs at least one gate"));
        }
        Some(if kind == "any" {
            Gate::Any(gates)
        } else {
            Gate::All(gates)
        })
    }
}

/// The label events of the current attempt: those after `since` (the last rollback). An
/// event at the very moment of the rollback (a frozen rehearsal clock; GitHub's whole
/// seconds) cannot be told to have come after it, so it does not count: evidence from
/// before a rollback must never carry the migration on.
fn this_attempt(events: &[LabelEvent], since: Option<DateTime<Utc>>) -> &[LabelEvent] {
    match since {
        Some(since) => {
            let first = events.partition_point(|e| e.at <= since);
            &events[first..]
        }
        None => events,
    }
}

fn unasked(what: &str, cx: &Context) -> GateOutcome {
    if cx.snapshot.facts.unread {
        outcome(
            true,
            format!("{what} not checked yet: asked once the other gates hold"),
        )
    } else {
        outcome(false, format!("{what} not checked yet"))
    }
}

fn no_child(template: &str) -> GateOutcome {
    outcome(false, format!("no {template} issue yet"))
}

fn outcome(passed: bool, detail: String) -> GateOutcome {
    GateOutcome { passed, detail }
}

fn join(outcomes: &[GateOutcome], keep: fn(&GateOutcome) -> bool) -> String {
    outcomes
        .iter()
        .filter(|o| keep(o))
        .map(|o| o.detail.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn of_child(child: &Option<String>) -> String {
    match child {
        Some(c) => format!(" of the {c} issue"),
        None => String::new(),
    }
}

fn each(gates: &[Gate], vars: &BTreeMap<String, String>) -> String {
    gates
        .iter()
        .map(|g| g.describe_with(vars))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A gate in a workflow file, as `shepherd schema` describes it: one key naming its kind,
/// each kind's shape from its module.
/// A gate: one key naming its kind.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "Gate")]
pub(crate) enum RawGate {
    /// The task items under a heading (or the whole body) are done
    Checklist(Option<checklist::Raw>),
    /// The label is on the tracking issue (or a child)
    Label(label::Raw),
    /// The label is not on the tracking issue (or a child)
    NoLabel(label::Raw),
    /// A child issue is closed
    Closed(child::RawClosed),
    /// A child's own workflow reached a terminal stage (or `stage`)
    Completed(child::RawCompleted),
    /// At least this long in the stage (15m, 2h, 1d, 1w, or `"{{variable}}"`)
    MinDuration(String),
    /// The label was last added by one of `by`
    Approval(approval::Raw),
    /// Merge requests (pull requests) that reference the issue are merged
    MergeRequest(Option<merge_request::Raw>),
    /// Releases were published during the stay
    Release(Option<release::Raw>),
    /// A PromQL query stayed below or above a bound
    Metric(metric::Raw),
    /// A feature flag is in the given state
    Flag(flag::Raw),
    /// Other migrations reached a stage first
    After(after::Raw),
    /// One of these gates holds
    Any(Vec<RawGate>),
    /// All of these gates hold
    All(Vec<RawGate>),
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod facts_tests;
