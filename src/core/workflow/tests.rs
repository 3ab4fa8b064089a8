//! Loading and validating workflow files: every problem with its place.

use std::collections::{BTreeMap, BTreeSet};

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
        Gate::MinDuration(DurationSpec::Variable {
            name: "wait".into(),
            default: Some(chrono::Duration::hours(2))
        })
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
            "label: \"db::c\"",
            "label: \"db::c,d\"",
            &[(28, "has a comma")],
        ),
        (
            "labels: [db]",
            "labels: [db, \"\"]",
            &[(6, "must not be empty")],
        ),
        (
            "[{label: small}]",
            "[{label: \"small\\nbig\"}]",
            &[(14, "line break or control character")],
        ),
        (
            "{label: ok}",
            "{no_label: \"o\\u2028k\"}",
            &[(25, "line break")],
        ),
        (
            "label: lgtm, by",
            "label: \"lgtm\\tnow\", by",
            &[(25, "control character")],
        ),
        (
            "{close: true}",
            "{close: true}, {labels: {add: [done, \"a,b\"]}}",
            &[(30, "has a comma")],
        ),
        (
            "{comment: \"go {{table}}\"}",
            "{comment: \"go {{{table}}}\"}",
            &[(21, "`table` is printed raw")],
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

#[test]
fn descriptions_fill_in_variables() {
    let w = load("db.yaml", GOOD, Some("db"), &known()).unwrap();
    let soak = &w.stages[1].gates[1];
    assert_eq!(soak.describe(), "at least 2h in this stage");
    let vars = BTreeMap::from([("wait".to_string(), "3d".to_string())]);
    assert_eq!(soak.describe_with(&vars), "at least 3d in this stage");
    let text = GOOD.replace("wait: {default: 2h}", "wait: {}");
    let w = load("db.yaml", &text, Some("db"), &known()).unwrap();
    assert_eq!(
        w.stages[1].gates[1].describe(),
        "at least the migration's `wait` in this stage"
    );
}

#[test]
fn label_names() {
    for good in ["db", "team::db", "Opt-In Approved", "ä ✓"] {
        assert_eq!(check_label_name(good), Ok(()), "{good:?}");
    }
    for bad in [
        "",
        "  ",
        "a,b",
        "a\nb",
        "a\rb",
        "a\u{2028}b",
        "a\u{85}b",
        "a\u{7}b",
        "a\tb",
    ] {
        assert!(check_label_name(bad).is_err(), "{bad:?}");
    }
}

/// Workflows for `check_children`: name, then (stage, `create_issue`s as (template,
/// workflow)) for a one-stage workflow.
type Spec<'a> = (&'a str, &'a [(&'a str, Option<&'a str>)]);

fn catalogue(specs: &[Spec]) -> BTreeMap<String, Workflow> {
    let mut known = known();
    for (name, _) in specs {
        known.workflows.insert(name.to_string());
    }
    let mut out = BTreeMap::new();
    for (name, creates) in specs {
        let actions: Vec<String> = creates
            .iter()
            .map(|(t, w)| match w {
                Some(w) => format!("      - create_issue: {{template: {t}, workflow: {w}}}\n"),
                None => format!("      - create_issue: {{template: {t}}}\n"),
            })
            .collect();
        let text = format!(
            "name: {name}\ntracking: {{template: child}}\nstages:\n  - id: a\n    label: a\n    terminal: true\n    on_enter:\n{}",
            actions.concat()
        );
        let w = load(&format!("{name}.yaml"), &text, Some(name), &known)
            .unwrap_or_else(|p| panic!("{p:?}"));
        out.insert(name.to_string(), w);
    }
    out
}

fn files(workflows: &BTreeMap<String, Workflow>) -> BTreeMap<String, String> {
    workflows
        .keys()
        .map(|n| (n.clone(), format!("{n}.yaml")))
        .collect()
}

#[test]
fn workflows_that_start_each_other_are_refused() {
    let self_starting = catalogue(&[("loop", &[("child", Some("loop"))])]);
    let problems = check_children(&self_starting, &files(&self_starting));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].to_string(),
        "loop.yaml:8:34: workflows start each other in a cycle: loop → loop (a `create_issue` with a `workflow` starts that workflow on a new issue)"
    );

    let pair = catalogue(&[
        ("gitaly-migration", &[("child", Some("acceptance-testing"))]),
        (
            "acceptance-testing",
            &[("child", None), ("child", Some("gitaly-migration"))],
        ),
        ("other", &[("child", Some("acceptance-testing"))]),
    ]);
    let problems = check_children(&pair, &files(&pair));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .message
            .contains("acceptance-testing → gitaly-migration → acceptance-testing"),
        "{problems:?}"
    );
    assert_eq!(problems[0].file, "acceptance-testing.yaml");
    assert_eq!(problems[0].loc.line, 9);

    let tree = catalogue(&[
        ("a", &[("child", Some("b")), ("child", Some("b"))]),
        ("b", &[("child", None)]),
    ]);
    assert_eq!(check_children(&tree, &files(&tree)), vec![]);
}

#[test]
fn a_transition_opens_at_most_twenty_issues() {
    let twenty = [("child", None); MAX_CHILDREN];
    let ok = catalogue(&[("w", &twenty)]);
    assert_eq!(check_children(&ok, &files(&ok)), vec![]);

    let many = [("child", None); MAX_CHILDREN + 1];
    let bad = catalogue(&[("w", &many)]);
    let problems = check_children(&bad, &files(&bad));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .to_string()
            .starts_with("w.yaml:8:34: entering stage `a` opens 21 issues"),
        "{problems:?}"
    );

    // Five children whose workflow opens four each: 25 issues in one transition.
    let nested = catalogue(&[
        ("parent", &[("child", Some("kid")); 5]),
        ("kid", &[("child", None); 4]),
    ]);
    let problems = check_children(&nested, &files(&nested));
    assert!(
        problems.len() == 1 && problems[0].message.contains("opens 25 issues"),
        "{problems:?}"
    );
}
