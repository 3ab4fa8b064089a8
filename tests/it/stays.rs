//! A stay in a stage and the evidence that belongs to it (DESIGN §11): every stage judged
//! on its own needs within one advance, and a rollback that holds.

use serde_json::Value;

use crate::support::Shepherd;

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
    std::fs::create_dir_all(s.path("workflows")).unwrap();
    std::fs::create_dir_all(s.path("templates")).unwrap();
    std::fs::write(s.path("workflows/schema-change.yaml"), SCHEMA_CHANGE).unwrap();
    std::fs::write(s.path("templates/schema-change.md.hbs"), TRACKING).unwrap();
    std::fs::write(s.path("templates/sc-rollout.md.hbs"), ROLLOUT).unwrap();
    s.ok(&["clock", "set", "2026-01-01T00:00:00Z"]);
    s
}

fn moves(v: &Value) -> Vec<String> {
    v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}>{}",
                t["from"].as_str().unwrap_or("-"),
                t["to"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn an_approval_given_before_the_stage_carries_it_on_in_one_advance() {
    let s = schema_change();
    s.ok(&["start", "schema-change", "--var", "table=orders"]);
    s.ok(&["tick", "1", "Write the migration"]);
    s.ok(&["tick", "1", "Estimate lock"]);
    s.ok(&["label", "1", "--add", "dba-approved", "--actor", "dave"]);
    s.ok(&["label", "1", "--add", "tiny"]);
    let v = s.json(&["advance", "1"]);
    assert_eq!(moves(&v), ["draft>review", "review>express"], "{v}");
    assert_eq!(v["stage"], "express");
}

#[test]
fn an_approval_by_someone_else_stops_the_advance_in_review() {
    let s = schema_change();
    s.ok(&["start", "schema-change", "--var", "table=orders"]);
    s.ok(&["tick", "1", "Write the migration"]);
    s.ok(&["tick", "1", "Estimate lock"]);
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
