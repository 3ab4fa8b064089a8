//! Gate evaluation. A gate that does not hold is data (`GateOutcome { passed: false, .. }`)
//! with a detail a person can act on, never an error.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::checklist;
use super::duration;
use super::gate_facts;
use super::snapshot::{Child, LabelEvent, Snapshot};
use super::workflow::{ChecklistGate, DurationSpec, Gate, Require};

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

pub fn evaluate(gate: &Gate, cx: &Context) -> GateOutcome {
    match gate {
        Gate::Checklist(c) => checklist_gate(c, cx),
        Gate::Label {
            name,
            child,
            present,
        } => label_gate(name, child.as_deref(), *present, cx),
        Gate::Closed { child } => match cx.snapshot.child(child) {
            Some(c) if !c.issue.open => outcome(true, format!("#{} is closed", c.issue.number)),
            Some(c) => outcome(false, format!("#{} is open", c.issue.number)),
            None => no_child(child),
        },
        Gate::Completed { child, stage } => match cx.snapshot.child(child) {
            Some(c) => completed(c, stage.as_deref()),
            None => no_child(child),
        },
        Gate::MinDuration(spec) => min_duration_gate(spec, cx),
        Gate::Approval { label, by, count } => approval_gate(label, by, *count, cx),
        Gate::MergeRequest {
            project,
            count,
            child,
        } => gate_facts::merge_request(project.as_ref(), *count, child.as_deref(), cx),
        Gate::Release {
            project,
            count,
            pattern,
        } => gate_facts::release(project.as_ref(), *count, pattern.as_deref(), cx),
        Gate::Metric(m) => gate_facts::metric(m, cx),
        Gate::Flag {
            name,
            environment,
            enabled,
            percentage,
        } => gate_facts::flag(name, environment.as_deref(), *enabled, *percentage, cx),
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

/// `label` / `no_label`: on the tracking issue, a label set before the last rollback does
/// not count for this stay.
fn label_gate(name: &str, child: Option<&str>, present: bool, cx: &Context) -> GateOutcome {
    let (labels, whose) = match child {
        None => (cx.labels.to_vec(), String::new()),
        Some(t) => match cx.snapshot.child(t) {
            Some(c) => (c.issue.labels.clone(), format!(" on #{}", c.issue.number)),
            None => return no_child(t),
        },
    };
    let is_set = labels.iter().any(|l| l == name);
    let state = if is_set { "is set" } else { "is not set" };
    if is_set && present && child.is_none() {
        if let Some(since) = set_before(name, cx) {
            return outcome(
                false,
                format!(
                    "~\"{name}\" was set before the rollback of {}: set it again to count",
                    since.format("%Y-%m-%d %H:%M UTC")
                ),
            );
        }
    }
    outcome(is_set == present, format!("~\"{name}\" {state}{whose}"))
}

/// `min_duration`: the time since the stay began; until the label history is read, it
/// holds provisionally (the history is read once the other gates hold).
fn min_duration_gate(spec: &DurationSpec, cx: &Context) -> GateOutcome {
    if cx.snapshot.history_unread {
        return outcome(
            true,
            "soak not checked yet: the label history is read once the other gates hold".into(),
        );
    }
    let need = match spec {
        DurationSpec::Fixed(d) => *d,
        DurationSpec::Variable { name: v, .. } => {
            match cx.vars.get(v).map(|t| duration::parse(t)) {
                Some(Ok(d)) => d,
                Some(Err(e)) => return outcome(false, format!("variable `{v}`: {e}")),
                None => {
                    return outcome(
                        false,
                        format!("variable `{v}` is not set on this migration"),
                    )
                }
            }
        }
    };
    let spent = cx.now - cx.entered_at;
    if spent >= need {
        let detail = format!(
            "soaked {} of {}",
            duration::human(spent),
            duration::human(need)
        );
        outcome(true, detail)
    } else {
        let left = duration::human(need - spent);
        outcome(
            false,
            format!("soak: {left} of {} left", duration::human(need)),
        )
    }
}

/// `approval`: the label was last added, during this stay, by enough of `by`; until the
/// label history is read, a label that is set holds provisionally.
fn approval_gate(label: &str, by: &[String], count: usize, cx: &Context) -> GateOutcome {
    let is_set = cx.labels.iter().any(|l| l == label);
    if cx.snapshot.history_unread && is_set {
        return outcome(
            true,
            format!("~\"{label}\" is set; who set it is checked once the other gates hold"),
        );
    }
    let since = cx.snapshot.evidence_since();
    let events = this_attempt(&cx.snapshot.label_events, since);
    let mut o = approval(label, by, count, cx.labels, events);
    if !o.passed && is_set {
        if let Some(since) = since.filter(|_| events.iter().all(|e| e.label != label)) {
            o.detail.push_str(&format!(
                "; it was set before the rollback of {}",
                since.format("%Y-%m-%d %H:%M UTC")
            ));
        }
    }
    o
}

/// Evaluates a gate and wraps it for reporting.
pub fn report(gate: &Gate, cx: &Context) -> GateReport {
    let GateOutcome { passed, detail } = evaluate(gate, cx);
    GateReport {
        gate: gate.kind().to_string(),
        description: gate.describe_with(cx.vars),
        passed,
        detail,
    }
}

fn checklist_gate(gate: &ChecklistGate, cx: &Context) -> GateOutcome {
    let (issue, whose) = match &gate.child {
        None => (&cx.snapshot.issue, String::new()),
        Some(t) => match cx.snapshot.child(t) {
            Some(c) => (&c.issue, format!("#{}: ", c.issue.number)),
            None => return no_child(t),
        },
    };
    let items = issue.checklists.items(&issue.body, gate.section.as_deref());
    let body = &*issue.body;
    let tally = checklist::tally(&items, gate.section.as_deref(), &gate.items);
    let section = gate
        .section
        .as_deref()
        .map(|s| format!(" in *{s}*"))
        .unwrap_or_default();
    if !tally.section_found
        && gate
            .section
            .as_ref()
            .is_some_and(|s| !checklist::has_section(body, s))
    {
        return outcome(
            false,
            format!(
                "{whose}no heading contains \"{}\"",
                gate.section.as_deref().unwrap_or_default()
            ),
        );
    }
    if tally.total == 0 {
        let matching = if gate.items.is_empty() {
            String::new()
        } else {
            let patterns: Vec<String> = gate.items.iter().map(|i| format!("\"{i}\"")).collect();
            format!(" matching {}", patterns.join(" or "))
        };
        let place = match &gate.section {
            Some(s) => format!("under '{s}'"),
            None => "in the body".to_string(),
        };
        return outcome(false, format!("{whose}no task items{matching} {place}"));
    }
    let passed = match gate.require {
        Require::All => tally.done == tally.total,
        Require::AtLeast(n) => tally.done >= n,
    };
    let need = match gate.require {
        Require::All => String::new(),
        Require::AtLeast(n) => format!(", {n} needed"),
    };
    outcome(
        passed,
        format!("{whose}{}/{} items{section}{need}", tally.done, tally.total),
    )
}

fn completed(child: &Child, stage: Option<&str>) -> GateOutcome {
    let n = child.issue.number;
    match (&child.stage, stage) {
        (None, _) => outcome(false, format!("#{n} has no stage of its workflow")),
        (Some(s), Some(want)) if s.id == want => outcome(true, format!("#{n} reached {want}")),
        (Some(s), Some(want)) if s.terminal => {
            outcome(false, format!("#{n} ended in {} instead of {want}", s.id))
        }
        (Some(s), None) if s.terminal => outcome(true, format!("#{n} completed ({})", s.id)),
        (Some(s), _) => outcome(false, format!("#{n} is in stage {}", s.id)),
    }
}

/// `label` must be on the issue, and among the adds since it was last removed, `count`
/// distinct people of `by` must have added it.
fn approval(
    label: &str,
    by: &[String],
    count: usize,
    labels: &[String],
    events: &[LabelEvent],
) -> GateOutcome {
    let who = by.join(", ");
    if !labels.iter().any(|l| l == label) {
        return outcome(false, format!("waits for approval by {who} (~\"{label}\")"));
    }
    let since_removal = events
        .iter()
        .rposition(|e| e.label == label && !e.added)
        .map(|i| &events[i + 1..])
        .unwrap_or(events);
    let adders: BTreeSet<&str> = since_removal
        .iter()
        .filter(|e| e.label == label && e.added)
        .map(|e| e.actor.as_str())
        .collect();
    let approvers: Vec<&str> = adders
        .iter()
        .copied()
        .filter(|a| by.iter().any(|b| b == a))
        .collect();
    if approvers.len() >= count {
        return outcome(true, format!("approved by {}", approvers.join(", ")));
    }
    let others: Vec<&str> = adders
        .iter()
        .copied()
        .filter(|a| !by.iter().any(|b| b == a))
        .collect();
    let mut detail = format!("waits for approval by {who} (~\"{label}\"");
    if !approvers.is_empty() {
        detail.push_str(&format!(
            ", {}/{count} so far: {}",
            approvers.len(),
            approvers.join(", ")
        ));
    }
    detail.push(')');
    if !others.is_empty() {
        detail.push_str(&format!(
            "; set by {}, who may not approve",
            others.join(", ")
        ));
    }
    outcome(false, detail)
}

/// The label events of the current attempt: those from `since` (the last rollback) on.
fn this_attempt(events: &[LabelEvent], since: Option<DateTime<Utc>>) -> &[LabelEvent] {
    match since {
        Some(since) => {
            let first = events.partition_point(|e| e.at < since);
            &events[first..]
        }
        None => events,
    }
}

/// When the migration was rolled back, if label `name` (on the tracking issue) was last
/// added before that: it is no evidence of the current attempt. Without the label
/// history the label is taken as set since (an upper bound, read before any move).
fn set_before(name: &str, cx: &Context) -> Option<DateTime<Utc>> {
    let since = cx.snapshot.evidence_since()?;
    if cx.snapshot.history_unread {
        return None;
    }
    let added_since = this_attempt(&cx.snapshot.label_events, Some(since))
        .iter()
        .any(|e| e.label == name && e.added);
    (!added_since).then_some(since)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snapshot::{ChildStage, IssueView};
    use chrono::{Duration, TimeZone};

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn issue(number: u64, body: &str, labels: &[&str], open: bool) -> IssueView {
        IssueView {
            number,
            title: String::new(),
            body: body.into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            open,
            created_at: t(0),
            url: String::new(),
            checklists: Default::default(),
        }
    }

    fn event(label: &str, added: bool, actor: &str, at: i64) -> LabelEvent {
        LabelEvent {
            label: label.into(),
            added,
            actor: actor.into(),
            at: t(at),
        }
    }

    fn snapshot(labels: &[&str], events: Vec<LabelEvent>) -> Snapshot {
        Snapshot {
            issue: issue(
                1,
                "## Proposal\n- [x] a\n- [~] b\n- [ ] c\n## Other\n- [ ] d\n## Plan\nTo do.\n",
                labels,
                true,
            ),
            vars: BTreeMap::from([
                ("wait".to_string(), "2h".to_string()),
                ("bad".to_string(), "soon".to_string()),
            ]),
            label_events: events,
            history_unread: false,
            facts: Default::default(),
            transitions: Vec::new(),
            children: vec![
                Child {
                    issue: issue(2, "- [x] old", &[], false),
                    template: "at".into(),
                    entry: Some(1),
                    stage: None,
                },
                Child {
                    issue: issue(5, "## S\n- [x] one\n- [ ] two\n## Empty\n", &["x"], true),
                    template: "at".into(),
                    entry: Some(4),
                    stage: Some(ChildStage {
                        id: "staging".into(),
                        terminal: false,
                    }),
                },
            ],
        }
    }

    fn gate(yaml: &str) -> Gate {
        let text = format!(
            "name: w\ntracking: {{template: t}}\nvariables: {{wait: {{}}, bad: {{}}}}\nstages:\n  - id: a\n    label: a\n    on_enter: [{{create_issue: {{template: at}}}}]\n    gates: [{yaml}]\n    terminal: true\n"
        );
        let mut known = crate::core::workflow::Known::default();
        known.templates.insert("t".into(), Default::default());
        known.templates.insert("at".into(), Default::default());
        let w = crate::core::workflow::load("w.yaml", &text, None, &known)
            .unwrap_or_else(|p| panic!("{yaml}: {p:?}"));
        w.stages[0].gates[0].clone()
    }

    #[test]
    #[allow(clippy::type_complexity)] // the test table's rows
    fn gates_table() {
        let approvals = vec![
            event("lgtm", true, "alice", 1),
            event("lgtm", false, "bob", 2),
            event("lgtm", true, "mallory", 3),
            event("lgtm", true, "bob", 4),
        ];
        // (gate, labels on the issue, label events, minutes in stage, passed, detail contains)
        let cases: Vec<(&str, &[&str], Vec<LabelEvent>, i64, bool, &str)> = vec![
            (
                "{checklist: {section: proposal}}",
                &[],
                vec![],
                0,
                false,
                "2/3 items in *proposal*",
            ),
            (
                "{checklist: {section: proposal, require: 2}}",
                &[],
                vec![],
                0,
                true,
                "2/3",
            ),
            (
                "{checklist: {section: proposal, items: [a, b]}}",
                &[],
                vec![],
                0,
                true,
                "2/2",
            ),
            (
                "{checklist: {section: Missing}}",
                &[],
                vec![],
                0,
                false,
                "no heading contains \"Missing\"",
            ),
            (
                "{checklist: {child: at, section: s}}",
                &[],
                vec![],
                0,
                false,
                "#5: 1/2 items",
            ),
            ("{checklist: {}}", &[], vec![], 0, false, "2/4 items"),
            (
                "{checklist: {section: proposal, items: [zzz]}}",
                &[],
                vec![],
                0,
                false,
                "no task items matching \"zzz\" under 'proposal'",
            ),
            (
                "{checklist: {section: Plan}}",
                &[],
                vec![],
                0,
                false,
                "no task items under 'Plan'",
            ),
            (
                "{checklist: {child: at, section: empty}}",
                &[],
                vec![],
                0,
                false,
                "#5: no task items under 'empty'",
            ),
            ("{label: ready}", &["ready"], vec![], 0, true, "is set"),
            ("{no_label: ready}", &["ready"], vec![], 0, false, "is set"),
            (
                "{label: {name: x, child: at}}",
                &[],
                vec![],
                0,
                true,
                "on #5",
            ),
            ("{closed: {child: at}}", &[], vec![], 0, false, "#5 is open"),
            (
                "{completed: {child: at}}",
                &[],
                vec![],
                0,
                false,
                "#5 is in stage staging",
            ),
            (
                "{min_duration: 2h}",
                &[],
                vec![],
                100,
                false,
                "soak: 20m of 2h left",
            ),
            (
                "{min_duration: \"{{wait}}\"}",
                &[],
                vec![],
                120,
                true,
                "soaked 2h of 2h",
            ),
            (
                "{min_duration: \"{{bad}}\"}",
                &[],
                vec![],
                120,
                false,
                "variable `bad`",
            ),
            (
                "{approval: {label: lgtm, by: [alice]}}",
                &["lgtm"],
                approvals.clone(),
                0,
                false,
                "set by bob, mallory, who may not approve",
            ),
            (
                "{approval: {label: lgtm, by: [bob]}}",
                &["lgtm"],
                approvals.clone(),
                0,
                true,
                "approved by bob",
            ),
            (
                "{approval: {label: lgtm, by: [bob]}}",
                &[],
                approvals.clone(),
                0,
                false,
                "waits for approval by bob",
            ),
            (
                "{approval: {label: lgtm, by: [alice, bob, mallory], count: 2}}",
                &["lgtm"],
                approvals,
                0,
                true,
                "bob, mallory",
            ),
            (
                "{any: [{label: a}, {label: b}]}",
                &["b"],
                vec![],
                0,
                true,
                "~\"b\" is set",
            ),
            (
                "{all: [{label: a}, {label: b}]}",
                &["b"],
                vec![],
                0,
                false,
                "~\"a\" is not set",
            ),
        ];
        for (yaml, labels, events, minutes, passed, detail) in cases {
            let g = gate(yaml);
            let snap = snapshot(labels, events);
            let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
            let cx = Context {
                snapshot: &snap,
                labels: &labels,
                entered_at: t(0),
                now: t(minutes),
                vars: &snap.vars,
                exit: false,
            };
            let out = evaluate(&g, &cx);
            assert_eq!(out.passed, passed, "{yaml}: {}", out.detail);
            assert!(
                out.detail.contains(detail),
                "{yaml}: {:?} lacks {detail:?}",
                out.detail
            );
        }
    }

    /// Without the label history, soaks and approvals hold (an upper bound, so a plan that
    /// moves nothing needs no history), but nothing the issue itself shows is assumed: an
    /// approval label that is not set, an unticked checklist.
    #[test]
    fn unread_history_is_an_upper_bound() {
        let cases: &[(&str, &[&str], bool, &str)] = &[
            ("{min_duration: 2h}", &[], true, "soak not checked yet"),
            (
                "{approval: {label: lgtm, by: [bob]}}",
                &["lgtm"],
                true,
                "who set it",
            ),
            (
                "{approval: {label: lgtm, by: [bob]}}",
                &[],
                false,
                "waits for approval",
            ),
            (
                "{all: [{min_duration: 2h}, {checklist: {section: proposal}}]}",
                &[],
                false,
                "2/3 items",
            ),
            (
                "{any: [{min_duration: 2h}, {label: never}]}",
                &[],
                true,
                "soak not checked",
            ),
        ];
        for (yaml, labels, passed, detail) in cases {
            let mut snap = snapshot(labels, Vec::new());
            snap.history_unread = true;
            let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
            let cx = Context {
                snapshot: &snap,
                labels: &labels,
                entered_at: t(0),
                now: t(1),
                vars: &snap.vars,
                exit: false,
            };
            let out = evaluate(&gate(yaml), &cx);
            assert_eq!(out.passed, *passed, "{yaml}: {}", out.detail);
            assert!(out.detail.contains(detail), "{yaml}: {:?}", out.detail);
        }
    }
}
