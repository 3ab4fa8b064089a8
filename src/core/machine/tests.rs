//! Plans of the state machine, and rollbacks.

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
        portfolio: Default::default(),
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
    for (i, (body, labels, transitions, minutes, expected, stage)) in cases.into_iter().enumerate()
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
