//! The shipped acceptance-testing template against seed 001: the rendered issue is the
//! seed with values in place of its placeholders, character for character.

use crate::support::{fixture, Shepherd};

const VALUES: &[(&str, &str, &str)] = &[
    // (placeholder in seed 001, variable, value)
    ("GITALY_FEATURE_NAME", "feature_flag", "gitaly_find_commit"),
    ("GRPC_SERVICE_NAME", "grpc_service", "CommitService"),
    ("GRPC_METHOD_NAME", "grpc_method", "FindCommit"),
    ("vX.X.X", "gitaly_version", "v1.2.3"),
    ("vX.X", "gitlab_version", "v11.4"),
    ("CONVERSATION_NUMBER", "migration.ref", "12"),
    ("ACCEPTANCE_TEST_ISSUE_NUMBER", "issue.ref", "13"),
];

fn render(s: &Shepherd, values: &[(&str, &str, &str)]) -> String {
    let pairs: Vec<String> = values.iter().map(|(_, k, v)| format!("{k}={v}")).collect();
    let mut args = vec!["render", "acceptance-testing"];
    for p in &pairs {
        args.extend(["--var", p.as_str()]);
    }
    s.ok(&args)
}

#[test]
fn acceptance_testing_is_seed_001_with_values() {
    let seed =
        std::fs::read_to_string(fixture("seeds/001_f67e02b59c2b9ddc.txt")).expect("seed 001");
    let mut expected = seed.clone();
    for (placeholder, _, value) in VALUES {
        expected = expected.replace(placeholder, value);
    }
    let s = Shepherd::new();
    let out = render(&s, VALUES);
    let (title, body) = out.split_once("\n\n").expect("# title, blank line, body");
    assert_eq!(
        title,
        "# Acceptance Testing: gitaly_find_commit (CommitService::FindCommit)"
    );
    assert_eq!(body.trim_end(), expected.trim_end());

    // What a reviewer checks: 8 sections, 44 items, every link, no placeholder left.
    let sections = body
        .lines()
        .filter(|l| l.starts_with("## ") && l[3..].starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(sections, 8);
    assert_eq!(shepherd::core::checklist::parse(body).len(), 44);
    let links = |text: &str| text.matches("](http").count() + text.matches("https://").count();
    assert_eq!(links(body), links(&seed));
    for (placeholder, _, _) in VALUES {
        assert!(
            !body.contains(placeholder),
            "{placeholder} left in the output"
        );
    }
    assert!(
        body.ends_with("/label ~\"Acceptance Testing\"\n"),
        "the template's own quick action stays"
    );
}

#[test]
fn values_in_urls_are_encoded_and_values_cannot_add_quick_actions() {
    let s = Shepherd::new();
    let values = [
        ("", "feature_flag", "x\n/close"),
        ("", "grpc_service", "Commit Service"),
        ("", "grpc_method", "Find&Commit"),
        ("", "gitaly_version", "v1"),
        ("", "gitlab_version", "v2"),
        ("", "migration.ref", "12"),
        ("", "issue.ref", "13"),
    ];
    let out = render(&s, &values);
    assert!(
        out.contains("%2Fgitaly.Commit%20Service%2FFind%26Commit)"),
        "URL parts are percent-encoded"
    );
    // The value's line break became a space before it reached the template.
    assert!(out.contains("Testing%20of%20Gitaly%20Feature%20x%20%2Fclose&"));
    let quick: Vec<&str> = out.lines().filter(|l| l.starts_with('/')).collect();
    assert_eq!(
        quick,
        ["/label ~\"Acceptance Testing\""],
        "only the template's own quick action"
    );
}

#[test]
fn render_names_a_missing_variable() {
    let s = Shepherd::new();
    let err = s.fails(&["render", "acceptance-testing", "--var", "feature_flag=x"]);
    assert!(err.contains("needs variable `"), "{err}");
    assert!(err.contains("line "), "{err}");
}

#[test]
fn every_shipped_template_renders_with_its_workflow_defaults() {
    let s = Shepherd::new();
    let out = s.ok(&[
        "render",
        "feature-flag-rollout",
        "--var",
        "feature_flag=update_all_mirrors_job_tracker",
        "--var",
        "feature_description=x",
        "--var",
        "team=Scalability",
        "--var",
        "slack_channel=#g_scalability",
        "--var",
        "owner=qmnguyen0711",
        "--var",
        "pm=mjwood",
        "--var",
        "depends_on=project_import_schedule_worker_job_tracker",
    ]);
    for heading in [
        "## Summary",
        "## Owners",
        "## Expectations",
        "### Rollout on non-production environments",
        "### Preparation before global rollout",
        "### Global rollout on production",
        "## Release the feature",
        "## Cleanup",
        "## Rollback Steps",
    ] {
        assert!(out.contains(heading), "{heading} missing");
    }
    assert!(out.contains("This flag should be rollout after the `project_import_schedule_worker_job_tracker` flag is rolled out and runs stable."));
    assert!(out.contains("/chatops run feature set update_all_mirrors_job_tracker false"));
    assert!(
        out.contains("- Best individual to reach out to: @qmnguyen0711\n"),
        "the template's own mention stays"
    );
}

#[test]
fn render_applies_the_defaults_of_the_workflow_that_uses_the_template() {
    let s = Shepherd::new();
    let out = s.run(&["render", "feature-flag-rollout", "--var", "feature_flag=x"]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let text = crate::support::stdout(&out);
    assert!(
        text.contains("#g_TEAM_NAME"),
        "the default slack channel:\n{text}"
    );
    assert!(crate::support::stderr(&out).is_empty(), "no warning");

    // A variable the workflow declares but the template does not print is no mistake; an
    // unknown one is.
    let mut args = vec![
        "render",
        "gitaly-migration",
        "--var",
        "release_project=acme/gitlab",
    ];
    args.extend([
        "--var",
        "feature_flag=f",
        "--var",
        "grpc_service=S",
        "--var",
        "grpc_method=M",
    ]);
    args.extend(["--var", "colour=red"]);
    let out = s.run(&args);
    assert!(out.status.success());
    let err = crate::support::stderr(&out);
    assert!(!err.contains("release_project"), "{err}");
    assert!(err.contains("does not use variable `colour`"), "{err}");
}

#[test]
fn show_fills_in_variables() {
    let s = Shepherd::new();
    let out = s.ok(&["show", "gitaly-migration"]);
    // release_project's default, gitlab-org/gitlab.
    assert!(
        out.contains("gate: a release of gitlab-org/gitlab (tags matching"),
        "{out}"
    );
    assert!(!out.contains("{{"), "{out}");
}
