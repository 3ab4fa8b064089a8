//! Tests of the gates on the issues: checklists, labels, children, soaks, approvals.

use super::*;
use crate::core::snapshot::{Child, ChildStage, IssueView};
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
        portfolio: Default::default(),
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
