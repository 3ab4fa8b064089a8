//! A stay in a stage and the evidence that belongs to it (DESIGN §11): every stage judged
//! on its own needs within one advance, and a rollback that holds.

use serde_json::Value;

use crate::support::{moves, write_workflow, Shepherd};

/// draft (checklist *Plan*) → review (approval by carol or dave) → express when ~tiny is
/// set, else rollout.
const SCHEMA_CHANGE: &str = r#"
name: schema-change
variables:
  table: {required: true}
tracking: {template: schema-change}
stages:
  - id: draft
    label: "sc::draft"
    gates: [{checklist: {section: Plan}}]
    next: review
  - id: review
    label: "sc::review"
    gates: [{approval: {label: dba-approved, by: [carol, dave]}}]
    next:
      - to: express
        when: [{label: tiny}]
      - to: rollout
  - id: rollout
    label: "sc::rollout"
    on_enter: [{create_issue: {template: sc-rollout}}]
    gates: [{checklist: {child: sc-rollout}}]
    next: express
  - id: express
    label: "sc::express"
    terminal: true
"#;

const TRACKING: &str = "---\ntitle: \"Schema change: {{table}}\"\n---\n## Plan\n- [ ] Write the migration\n- [ ] Estimate lock\n\n## Notes\n- [ ] Tell the team\n";
const ROLLOUT: &str =
    "---\ntitle: \"Roll out {{table}}\"\n---\n## Steps\n- [ ] Run it on staging\n";

/// A local tracker with the schema-change workflow beside it.
pub fn schema_change() -> Shepherd {
    let s = Shepherd::new();
    write_workflow(
        s.dir.path(),
        "schema-change",
        SCHEMA_CHANGE,
        &[("schema-change", TRACKING), ("sc-rollout", ROLLOUT)],
    );
    s.ok(&["clock", "set", "2026-01-01T00:00:00Z"]);
    s
}

/// Starts migration #1 (table `orders`) and ticks its *Plan*.
fn start_planned(s: &Shepherd) {
    s.ok(&["start", "schema-change", "--var", "table=orders"]);
    s.ok(&["tick", "1", "Write the migration"]);
    s.ok(&["tick", "1", "Estimate lock"]);
}

#[test]
fn an_approval_given_before_the_stage_carries_it_on_in_one_advance() {
    let s = schema_change();
    start_planned(&s);
    s.ok(&["label", "1", "--add", "dba-approved", "--actor", "dave"]);
    s.ok(&["label", "1", "--add", "tiny"]);
    let v = s.json(&["advance", "1"]);
    assert_eq!(moves(&v), ["draft>review", "review>express"], "{v}");
    assert_eq!(v["stage"], "express");
}

#[test]
fn an_approval_by_someone_else_stops_the_advance_in_review() {
    let s = schema_change();
    start_planned(&s);
    s.ok(&["label", "1", "--add", "dba-approved", "--actor", "mallory"]);
    let v = s.json(&["advance", "1"]);
    assert_eq!(moves(&v), ["draft>review"], "{v}");
    let detail = v["blocked_by"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("set by mallory, who may not approve"),
        "{detail}"
    );
}

#[test]
fn reconcile_carries_every_approved_draft_through_review_in_one_run() {
    let s = schema_change();
    for i in 0..5 {
        s.ok(&["start", "schema-change", "--var", &format!("table=t{i}")]);
        let n = (i + 1).to_string();
        s.ok(&["tick", &n, "Write the migration"]);
        s.ok(&["tick", &n, "Estimate lock"]);
        s.ok(&["label", &n, "--add", "dba-approved", "--actor", "carol"]);
    }
    let v = s.json(&["reconcile"]);
    for m in v["migrations"].as_array().unwrap() {
        assert_eq!(m["stage"], "rollout", "{m}");
    }
}

/// Opens a merge request on gitaly-proto for issue `n` at `now`; returns its number.
fn open_proto_mr(s: &Shepherd, n: &str, now: &str) -> u64 {
    let mr = s.json(&[
        "mr",
        "open",
        "--issue",
        n,
        "--project",
        "gitlab-org/gitaly-proto",
        "--now",
        now,
    ]);
    mr["number"].as_u64().unwrap()
}

#[test]
fn a_rollback_holds_against_the_merge_request_that_ended_the_stage() {
    use crate::support::{at, start_gitaly};
    let s = Shepherd::new();
    let n = start_gitaly(&s, crate::support::T0);
    let n_s = n.to_string();
    s.tick_section(n, None, "Selection", &at("1h"));
    s.tick_section(n, None, "Migration Analysis", &at("1h"));
    s.json(&["advance", &n_s, "--now", &at("1h")]);
    let mr = open_proto_mr(&s, &n_s, &at("2h"));
    s.ok(&["mr", "merge", &mr.to_string(), "--now", &at("3h")]);
    let v = s.json(&["advance", &n_s, "--now", &at("3h")]);
    assert_eq!(moves(&v), ["rpc-design>server-implementation"]);
    s.ok(&[
        "rollback",
        &n_s,
        "--to",
        "rpc-design",
        "--reason",
        "proto needs rework",
        "--now",
        &at("4h"),
    ]);
    s.ok(&["resume", &n_s, "--now", &at("4h")]);
    let v = s.json(&["advance", &n_s, "--now", &at("5h")]);
    assert_eq!(moves(&v), Vec::<String>::new(), "{v}");
    assert_eq!(v["stage"], "rpc-design");
    let detail = v["blocked_by"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("gitlab-org/gitaly-proto!1 merged before the rollback"),
        "{detail}"
    );
    // A merge after the rollback carries it on.
    let again = open_proto_mr(&s, &n_s, &at("6h"));
    s.ok(&["mr", "merge", &again.to_string(), "--now", &at("7h")]);
    let v = s.json(&["advance", &n_s, "--now", &at("7h")]);
    assert_eq!(moves(&v), ["rpc-design>server-implementation"], "{v}");
}

#[test]
fn a_rollback_unticks_the_boxes_and_voids_the_approval_it_goes_back_over() {
    let s = schema_change();
    start_planned(&s);
    s.ok(&["tick", "1", "Tell the team"]);
    s.ok(&["label", "1", "--add", "dba-approved", "--actor", "dave"]);
    let v = s.json(&["advance", "1"]);
    assert_eq!(moves(&v), ["draft>review", "review>rollout"], "{v}");
    s.ok(&["clock", "advance", "1h"]);
    let v = s.json(&[
        "rollback",
        "1",
        "--to",
        "draft",
        "--reason",
        "lock too long",
    ]);
    assert_eq!(moves(&v), ["rollout>draft"]);
    // The Plan boxes are unticked (and listed in the audit comment); Notes are no gate's.
    let body = s.issue(1).body;
    assert!(body.contains("- [ ] Write the migration"), "{body}");
    assert!(body.contains("- [ ] Estimate lock"), "{body}");
    assert!(body.contains("- [x] Tell the team"), "{body}");
    let audit = s.comments(1).last().unwrap().body.clone();
    assert!(
        audit.contains("- [ ] Write the migration (Plan)"),
        "{audit}"
    );
    s.ok(&["resume", "1"]);
    s.ok(&["tick", "1", "Write the migration"]);
    s.ok(&["tick", "1", "Estimate lock"]);
    // The approval given before the rollback does not count for this attempt.
    let v = s.json(&["advance", "1"]);
    assert_eq!(moves(&v), ["draft>review"], "{v}");
    let detail = v["blocked_by"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("before the rollback"), "{detail}");
    // An approval given at the very moment of the rollback (the rehearsal clock has not
    // moved) cannot be told to come after it: it does not count either.
    s.ok(&["label", "1", "--remove", "dba-approved"]);
    s.ok(&["label", "1", "--add", "dba-approved", "--actor", "carol"]);
    let v = s.json(&["advance", "1"]);
    assert!(moves(&v).is_empty(), "{v}");
    let detail = v["blocked_by"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("set it again"), "{detail}");
    s.ok(&["clock", "advance", "1m"]);
    s.ok(&["label", "1", "--remove", "dba-approved"]);
    s.ok(&["label", "1", "--add", "dba-approved", "--actor", "carol"]);
    let v = s.json(&["advance", "1"]);
    assert_eq!(moves(&v), ["review>rollout"], "{v}");
    // Rollout opened the next attempt of its child; the first is closed, pointing to it.
    let children: Vec<Value> = s.json(&["status", "1"])["children"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(children.len(), 2, "{children:?}");
    let mut refs: Vec<u64> = children
        .iter()
        .map(|c| c["ref"].as_u64().unwrap())
        .collect();
    refs.sort();
    let (old, new) = (refs[0], refs[1]);
    assert_eq!(s.issue(new).title, "Roll out orders (attempt 2)");
    assert!(!s.issue(old).open);
    assert!(s
        .comments(old)
        .iter()
        .any(|c| c.body.contains(&format!("superseded by #{new}"))));
}

#[test]
fn keep_checklists_leaves_the_boxes_ticked() {
    let s = schema_change();
    start_planned(&s);
    s.json(&["advance", "1"]);
    s.ok(&[
        "rollback",
        "1",
        "--to",
        "draft",
        "--reason",
        "x",
        "--keep-checklists",
    ]);
    assert!(s.issue(1).body.contains("- [x] Write the migration"));
    s.ok(&["resume", "1"]);
    assert_eq!(moves(&s.json(&["advance", "1"])), ["draft>review"]);
}
