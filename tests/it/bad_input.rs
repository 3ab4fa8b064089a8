//! Bad input: a clear error (what, where), exit code 1, and nothing written.

use shepherd::tracker::{NewIssue, Tracker};

use crate::support::{at, block_on, start_gitaly, Shepherd, GITALY_VARS};

pub(crate) const MINI_TEMPLATE: &str =
    "---\ntitle: \"Move {{table}}\"\nlabels: [db]\n---\n## Proposal\n- [ ] agreed\n";

pub(crate) const MINI: &str = "name: mini
variables:
  table: {required: true, pattern: \"^[a-z_]+$\"}
tracking: {template: mini}
stages:
  - id: proposal
    label: \"db::proposal\"
    gates:
      - checklist: {section: Proposal}
    next: done
  - id: done
    label: \"db::done\"
    terminal: true
";

pub(crate) fn project(workflow: &str) -> Shepherd {
    let s = Shepherd::new();
    crate::support::write_workflow(s.dir.path(), "mini", workflow, &[("mini", MINI_TEMPLATE)]);
    s
}

/// Validation: (what to change in MINI, messages with their `line:column`).
#[test]
fn validate_reports_every_problem_with_its_place() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "    next: done\n",
            "    next: [done\n",
            &["workflows/mini.yaml:11:7: illegal placement"],
        ),
        (
            "      - checklist: {section: Proposal}",
            "      - checklist: {section: Proposal}\n      - soon: 1h",
            &["mini.yaml:10:9: unknown gate `soon`"],
        ),
        (
            "    terminal: true",
            "    terminal: true\n    color: red",
            &["mini.yaml:14:5: unknown key `color` in a stage"],
        ),
        (
            "    next: done",
            "    next: finished",
            &["mini.yaml:10:11: stage `proposal` leads to `finished`, which is no stage"],
        ),
        (
            "    terminal: true\n",
            "    terminal: true\n  - id: orphan\n    label: orphan\n    terminal: true\n",
            &["mini.yaml:14:9: stage `orphan` is unreachable"],
        ),
        (
            "tracking: {template: mini}",
            "tracking: {template: maxi}",
            &["mini.yaml:4:22: the tracking template `maxi` does not exist"],
        ),
        (
            "  table: {required: true, pattern: \"^[a-z_]+$\"}\n",
            "  other: {}\n",
            &["template `mini` uses variable `table`, which the workflow does not declare"],
        ),
        (
            "pattern: \"^[a-z_]+$\"",
            "pattern: \"^[a-z_+$\"",
            &["mini.yaml:3:36: bad regex"],
        ),
        (
            "      - checklist: {section: Proposal}",
            "      - min_duration: 15s",
            &["mini.yaml:9:23: bad duration"],
        ),
    ];
    for (from, to, messages) in cases {
        assert!(MINI.contains(from), "{from}");
        let s = project(&MINI.replacen(from, to, 1));
        let out = s.run(&["validate"]);
        assert_eq!(out.status.code(), Some(1), "{to}");
        let err = crate::support::stderr(&out);
        for m in *messages {
            assert!(err.contains(m), "{to:?}: expected {m:?} in:\n{err}");
        }
    }
}

#[test]
fn several_problems_come_in_one_run_as_json_too() {
    let broken = MINI
        .replace("next: done", "next: finished")
        .replace("{section: Proposal}", "{section: Proposal, every: true}");
    let s = project(&broken);
    let out = s.run(&["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let problems = v["problems"].as_array().unwrap();
    assert!(problems.len() >= 3, "{v}");
    assert!(problems
        .iter()
        .all(|p| p["line"].as_u64().unwrap() > 0 && p["column"].as_u64().unwrap() > 0));
    // Any command that needs the workflows refuses to run, and writes nothing.
    let err = s.fails(&["start", "mini", "--var", "table=users"]);
    assert!(err.contains("mini.yaml:10:11"), "{err}");
    assert!(!s.db().exists());
}

#[test]
fn variables_are_checked_before_anything_is_written() {
    let s = project(MINI);
    let err = s.fails(&["start", "mini"]);
    assert!(err.contains("variable `table` is required"), "{err}");
    let err = s.fails(&["start", "mini", "--var", "table=Users; DROP"]);
    assert!(
        err.contains("variable `table` = \"Users; DROP\" does not match its pattern `^[a-z_]+$`"),
        "{err}"
    );
    let err = s.fails(&["start", "mini", "--var", "table=users", "--var", "tabel=x"]);
    assert!(err.contains("unknown variable `tabel`"), "{err}");
    assert!(!s.db().exists(), "nothing written");
    let err = s.fails(&["start", "nope"]);
    assert!(err.contains("unknown workflow `nope`"), "{err}");
    let out = s.run(&["start", "mini", "--var", "table=users", "--now", &at("0m")]);
    assert!(out.status.success());
}

#[test]
fn unknown_templates_and_refs() {
    let s = Shepherd::new();
    let err = s.fails(&["render", "nope"]);
    assert!(
        err.contains("unknown template `nope`") && err.contains("acceptance-testing"),
        "{err}"
    );
    let n = start_gitaly(&s, &at("0m"));
    let err = s.fails(&["status", "99"]);
    assert!(err.contains("#99 does not exist"), "{err}");
    let plain = block_on(s.tracker().create_issue(&NewIssue {
        title: "plain".into(),
        body: "no marker".into(),
        labels: vec![],
    }))
    .unwrap();
    let err = s.fails(&["advance", &plain.number.to_string()]);
    assert!(
        err.contains(&format!("#{} is no migration", plain.number)),
        "{err}"
    );
    let out = s.run(&["advance", "twelve"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed REF is a usage error"
    );
    assert!(s.ok(&["status", &format!("#{n}")]).contains("selection"));
}

#[test]
fn tick_must_match_exactly_one_item() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m")).to_string();
    let err = s.fails(&["tick", &n, "no such item"]);
    assert!(
        err.contains("no task item of #1 contains \"no such item\"") && err.contains("Unit tests"),
        "{err}"
    );
    let err = s.fails(&["tick", &n, "tests"]);
    assert!(
        err.contains("2 task items of #1 contain \"tests\"")
            && err.contains("  - Unit tests")
            && err.contains("  - Integration tests"),
        "{err}"
    );
    let body = s.issue(1).body;
    assert!(!body.contains("[x]"), "nothing ticked");
    let ticked = s.json(&["tick", &n, "unit tests"]);
    assert_eq!(
        (ticked["changed"].as_bool(), ticked["item"].as_str()),
        (Some(true), Some("Unit tests"))
    );
    let again = s.json(&["tick", &n, "unit tests"]);
    assert_eq!(again["changed"], false);
    let undone = s.json(&["tick", &n, "unit tests", "--undo"]);
    assert_eq!(undone["checked"], false);
    assert_eq!(s.issue(1).body, body, "undo restores the body exactly");
}

#[test]
fn rollback_to_an_unknown_stage() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m")).to_string();
    let before = s.comments(1).len();
    let err = s.fails(&["rollback", &n, "--to", "staging", "--reason", "x"]);
    assert!(
        err.contains(
            "`staging` is no stage of gitaly-migration (stages: selection, migration-analysis"
        ),
        "{err}"
    );
    assert_eq!(s.comments(1).len(), before);
}

#[test]
fn now_is_for_the_local_tracker_only() {
    let s = Shepherd::new();
    for tracker in ["gitlab:group/project", "github:owner/repo"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_shepherd"))
            .current_dir(s.dir.path())
            .args([
                "--tracker",
                tracker,
                "--now",
                "2026-01-01T00:00:00Z",
                "status",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = crate::support::stderr(&out);
        assert!(
            err.contains("--now sets the local tracker's clock and cannot be used with"),
            "{err}"
        );
    }
    // A bad flag value is a usage error (exit 2).
    let out = s.run(&["status", "--now", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::support::stderr(&out);
    assert!(err.contains("`yesterday` is not an RFC 3339 time"), "{err}");
}

#[test]
fn a_file_that_is_no_shepherd_tracker() {
    let s = Shepherd::new();
    std::fs::write(
        s.db(),
        "just some text, not a database at all, long enough to look like a header......",
    )
    .unwrap();
    let err = s.fails(&["status"]);
    assert!(err.contains("is not a shepherd tracker database"), "{err}");

    let other = Shepherd::new();
    let conn = rusqlite::Connection::open(other.db()).unwrap();
    conn.execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('hello');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(other.db()).unwrap();
    let mut args = vec!["start", "gitaly-migration"];
    args.extend(GITALY_VARS);
    let err = other.fails(&args);
    assert!(
        err.contains("is not a shepherd tracker database") && err.contains("shepherd_meta"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(other.db()).unwrap(),
        before,
        "nothing written"
    );
}

#[test]
fn a_corrupt_tracker() {
    let s = Shepherd::new();
    start_gitaly(&s, &at("0m"));
    let mut bytes = std::fs::read(s.db()).unwrap();
    assert!(bytes.len() > 8192);
    let page = 4096;
    for b in &mut bytes[page..page + 2048] {
        *b = 0xA5;
    }
    std::fs::write(s.db(), &bytes).unwrap();
    let err = s.fails(&["status"]);
    assert!(
        err.contains("is corrupt") || err.contains("malformed"),
        "{err}"
    );
    assert_eq!(std::fs::read(s.db()).unwrap(), bytes, "nothing written");
}

/// A project with `mini` changed by `(from, to)` pairs in the workflow and the template.
pub(crate) fn project_with(workflow: &[(&str, &str)], template: &[(&str, &str)]) -> Shepherd {
    let mut w = MINI.to_string();
    for (from, to) in workflow {
        assert!(w.contains(from), "{from}");
        w = w.replacen(from, to, 1);
    }
    let s = project(&w);
    let mut t = MINI_TEMPLATE.to_string();
    for (from, to) in template {
        assert!(t.contains(from), "{from}");
        t = t.replacen(from, to, 1);
    }
    std::fs::write(s.path("templates/mini.md.hbs"), t).unwrap();
    s
}

/// Each case: `validate` fails naming the place, and `start` fails the same way without
/// writing anything.
pub(crate) fn refused(s: &Shepherd, expected: &str) {
    let err = s.fails(&["validate"]);
    assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    let err = s.fails(&["start", "mini", "--var", "table=users"]);
    assert!(
        err.contains(expected),
        "start: expected {expected:?} in:\n{err}"
    );
    assert!(!s.db().exists(), "nothing written");
}

#[test]
fn workflows_that_start_each_other_are_refused() {
    let s = project_with(
        &[(
            "    label: \"db::proposal\"\n",
            "    label: \"db::proposal\"\n    on_enter: [{create_issue: {template: mini, workflow: mini}}]\n",
        )],
        &[],
    );
    refused(
        &s,
        "workflows/mini.yaml:8:42: workflows start each other in a cycle: mini → mini",
    );

    // Two built-in workflows made to start each other by overriding one of them.
    let s = Shepherd::new();
    std::fs::create_dir_all(s.path("workflows")).unwrap();
    let acceptance = include_str!("../../workflows/acceptance-testing.yaml").replacen(
        "    label: \"acceptance::preparation\"\n",
        "    label: \"acceptance::preparation\"\n    on_enter: [{create_issue: {template: gitaly-migration, workflow: gitaly-migration}}]\n",
        1,
    );
    std::fs::write(s.path("workflows/acceptance-testing.yaml"), &acceptance).unwrap();
    let line = acceptance
        .lines()
        .position(|l| l.contains("create_issue: {template: gitaly-migration"))
        .unwrap()
        + 1;
    let err = s.fails(&["validate"]);
    assert!(
        err.contains(&format!("workflows/acceptance-testing.yaml:{line}:42: workflows start each other in a cycle: acceptance-testing → gitaly-migration → acceptance-testing")),
        "{err}"
    );
    let mut args = vec!["start", "gitaly-migration"];
    args.extend(GITALY_VARS);
    let err = s.fails(&args);
    assert!(err.contains("in a cycle"), "{err}");
    assert!(!s.db().exists(), "nothing written");
}

#[test]
fn a_transition_opens_at_most_twenty_issues() {
    let many = format!(
        "    label: \"db::proposal\"\n    on_enter:\n{}",
        "      - create_issue: {template: mini}\n".repeat(21)
    );
    let s = project_with(&[("    label: \"db::proposal\"\n", &many)], &[]);
    refused(
        &s,
        "workflows/mini.yaml:9:34: entering stage `proposal` opens 21 issues",
    );
}

#[test]
fn durations_over_ten_years_are_refused() {
    for duration in ["2147483647w", "99999999999999999999999999m", "3654d"] {
        let s = project_with(
            &[(
                "      - checklist: {section: Proposal}",
                &format!("      - min_duration: {duration}"),
            )],
            &[],
        );
        refused(
            &s,
            &format!("workflows/mini.yaml:9:23: bad duration: `{duration}` is too long: a duration is at most 10 years"),
        );
    }
    // A variable's default is a duration too.
    let s = project_with(
        &[
            (
                "variables:\n",
                "variables:\n  soak: {default: 2147483647w}\n",
            ),
            (
                "      - checklist: {section: Proposal}",
                "      - min_duration: \"{{soak}}\"",
            ),
        ],
        &[],
    );
    refused(
        &s,
        "workflows/mini.yaml:10:23: bad duration in the default of `soak`: `2147483647w` is too long",
    );
}

#[test]
fn label_names_with_commas_or_line_breaks_are_refused() {
    // (changes to the workflow, changes to the template, the problem)
    type Changes<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Changes, Changes, &str)] = &[
        (
            &[("label: \"db::proposal\"", "label: \"db::proposal,x\"")],
            &[],
            "workflows/mini.yaml:7:12: label `db::proposal,x` has a comma",
        ),
        (
            &[(
                "tracking: {template: mini}",
                "tracking: {template: mini, labels: [\"a\\u2028b\"]}",
            )],
            &[],
            "workflows/mini.yaml:4:37: label \"a\\u{2028}b\" has a line break or control character",
        ),
        (
            &[(
                "      - checklist: {section: Proposal}",
                "      - label: \"\"",
            )],
            &[],
            "workflows/mini.yaml:9:16: `label` must not be empty",
        ),
        (
            &[],
            &[("labels: [db]", "labels: [db, \"x,y\"]")],
            "templates/mini.md.hbs:3:14: label `x,y` has a comma",
        ),
    ];
    for (workflow, template, expected) in cases {
        let s = project_with(workflow, template);
        refused(&s, expected);
    }
}

#[test]
fn templates_that_print_a_variable_raw_are_refused() {
    for raw in ["{{{table}}}", "{{& table}}"] {
        let s = project_with(&[], &[("- [ ] agreed\n", &format!("- [ ] agreed {raw}\n"))]);
        refused(&s, "templates/mini.md.hbs:6:14: `table` is printed raw");
    }
    // shepherd's own values may be printed raw.
    let s = project_with(
        &[],
        &[("- [ ] agreed\n", "- [ ] agreed {{{migration.url}}}\n")],
    );
    s.ok(&["validate"]);
}

#[test]
fn a_checklist_gate_without_items_does_not_hold() {
    let s = project_with(
        &[("{section: Proposal}", "{section: Plan}")],
        &[("- [ ] agreed\n", "- [ ] agreed\n## Plan\nTo be written.\n")],
    );
    s.ok(&["start", "mini", "--var", "table=users", "--now", &at("0m")]);
    s.ok(&["advance", "1", "--now", &at("1m")]);
    let status = s.ok(&["status", "1", "--now", &at("2m")]);
    assert!(status.contains("no task items under 'Plan'"), "{status}");
    assert!(
        s.issue(1).labels.contains(&"db::proposal".to_string()),
        "did not move"
    );
}

#[test]
fn a_value_with_any_line_break_cannot_start_a_quick_action() {
    let s = project(MINI);
    for br in ["\u{2028}", "\u{2029}", "\u{85}", "\u{0B}", "\u{0C}"] {
        let value = format!("users{br}/close{br}--> x");
        let out = s.json(&["render", "mini", "--var", &format!("table={value}")]);
        for text in [&out["title"], &out["body"]] {
            let text = text.as_str().unwrap();
            for line in text.split([
                '\r', '\n', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}',
            ]) {
                assert!(!line.trim_start().starts_with('/'), "{br:?}: {line:?}");
            }
            assert!(!text.contains("-->"), "{text:?}");
        }
    }
}
