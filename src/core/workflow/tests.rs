//! Loading and validating workflow files: every problem with its place.

use std::collections::BTreeSet;

use super::*;

fn known() -> Known {
    let mut k = Known::default();
    k.templates
        .insert("t".into(), BTreeSet::from(["table".to_string()]));
    k.templates.insert("child".into(), BTreeSet::new());
    k
}

const GOOD: &str = r#"
name: db
variables:
  table: {required: true, pattern: "^[a-z_]+$"}
  wait: {default: 2h}
tracking: {template: t, labels: [db]}
stages:
  - id: a
    label: "db::a"
    gates:
      - checklist: {section: Proposal, require: 2}
    next:
      - to: c
        when: [{label: small}]
      - to: b
    exits:
      - to: x
        when: [{label: rejected}]
  - id: b
    label: "db::b"
    on_enter: [{create_issue: {template: child}}, {comment: "go {{table}}"}]
    gates:
      - checklist: {child: child}
      - min_duration: "{{wait}}"
      - any: [{label: ok}, {approval: {label: lgtm, by: [alice, bob], count: 2}}]
    next: c
  - id: c
    label: "db::c"
    terminal: true
    on_enter: [{close: true}]
  - id: x
    label: "db::x"
    terminal: true
"#;

#[test]
fn a_good_workflow_loads() {
    let w = load("db.yaml", GOOD, Some("db"), &known()).unwrap();
    assert_eq!(w.stages.len(), 4);
    assert_eq!(w.stages[0].next[0].to, "c");
    assert_eq!(
        w.stages[1].gates[1],
        Gate::MinDuration(DurationSpec::Variable("wait".into()))
    );
    assert!(w.labels().contains(&"lgtm".to_string()));
}

/// Each case: a change to GOOD, and the messages (with line) that validation must give.
#[test]
#[allow(clippy::type_complexity)] // the test table's rows
fn every_problem_is_reported_with_its_place() {
    let cases: &[(&str, &str, &[(u32, &str)])] = &[
        (
            "next: c\n  - id: c",
            "next: nowhere\n  - id: c",
            &[(26, "`nowhere`, which is no stage")],
        ),
        (
            "min_duration: \"{{wait}}\"",
            "min_duration: 2x",
            &[(24, "bad duration")],
        ),
        (
            "pattern: \"^[a-z_]+$\"",
            "pattern: \"^[a-z_+$\"",
            &[(4, "bad regex")],
        ),
        (
            "- checklist: {section: Proposal, require: 2}",
            "- checklist: {section: Proposal, reqire: 2}",
            &[(11, "unknown key `reqire`")],
        ),
        (
            "- any: [",
            "- sometimes: [",
            &[(25, "unknown gate `sometimes`")],
        ),
        (
            "label: \"db::b\"",
            "label: \"db::a\"",
            &[(20, "duplicate stage label")],
        ),
        (
            "    exits:\n      - to: x\n        when: [{label: rejected}]\n",
            "",
            &[(28, "`x` is unreachable")],
        ),
        (
            "{create_issue: {template: child}}",
            "{create_issue: {template: nope}}",
            &[
                (21, "`nope` does not exist"),
                (19, "no stage creates a `child`"),
            ],
        ),
        (
            "table: {required: true, pattern: \"^[a-z_]+$\"}\n",
            "",
            &[(5, "template `t` uses variable `table`")],
        ),
        (
            "    terminal: true\n    on_enter: [{close: true}]",
            "    on_enter: [{close: true}]",
            &[(27, "no way out")],
        ),
    ];
    for (from, to, expected) in cases {
        assert!(GOOD.contains(from), "case text not found: {from}");
        let text = GOOD.replacen(from, to, 1);
        let problems = load("db.yaml", &text, Some("db"), &known()).expect_err(to);
        for (line, message) in *expected {
            assert!(
                problems
                    .iter()
                    .any(|p| p.loc.line == *line && p.message.contains(message)),
                "expected line {line}: {message}\ngot: {problems:#?}"
            );
        }
    }
}

#[test]
fn several_problems_come_at_once() {
    let text = GOOD
        .replace("next: c\n  - id: c", "next: nowhere\n  - id: c")
        .replace("min_duration: \"{{wait}}\"", "min_duration: 5y");
    let problems = load("db.yaml", &text, None, &known()).unwrap_err();
    assert!(problems.len() >= 2, "{problems:#?}");
    assert!(problems[0].to_string().starts_with("db.yaml:"));
}

#[test]
fn template_variables_skip_helpers_and_context() {
    let vars = template_variables("{{feature_flag}} {{urlencode grpc_method}} {{migration.ref}} {{#if depends_on}}x{{/if}} {{{raw}}} {{upper (lower name)}}");
    assert_eq!(
        vars,
        BTreeSet::from(
            ["depends_on", "feature_flag", "grpc_method", "name", "raw"].map(String::from)
        )
    );
}
