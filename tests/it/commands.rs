//! The commands around the main job: init, workflows, show, issue, report, and the JSON
//! shapes of DESIGN.md §6.

use crate::support::{at, start_gitaly, Shepherd, STATUS_KEYS};

fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn init_writes_editable_defaults_and_never_overwrites() {
    let s = Shepherd::new();
    let out = s.json(&["init", "project"]);
    assert_eq!(out["written"].as_array().unwrap().len(), 7);
    let workflow = s.path("project/workflows/gitaly-migration.yaml");
    let edited = std::fs::read_to_string(&workflow)
        .unwrap()
        .replace("default: gitlab-org/gitlab\n", "default: acme/gitlab\n");
    std::fs::write(&workflow, &edited).unwrap();
    let err = s.fails(&["init", "project"]);
    assert!(err.contains("project/shepherd.toml"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&workflow).unwrap(),
        edited,
        "nothing overwritten"
    );
    // The edited copy overrides the built-in workflow.
    let shown = s.json(&[
        "show",
        "gitaly-migration",
        "--workflows",
        "project/workflows",
    ]);
    let release = shown["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "release_project")
        .unwrap()
        .clone();
    assert_eq!(release["default"], "acme/gitlab");
    assert!(s
        .ok(&["validate", "project/workflows", "project/templates"])
        .starts_with("ok:"));
}

#[test]
fn workflows_and_show() {
    let s = Shepherd::new();
    let list = s.json(&["workflows"]);
    let names: Vec<&str> = list["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "acceptance-testing",
            "feature-flag-rollout",
            "gitaly-migration"
        ]
    );
    let mermaid = s.ok(&["show", "gitaly-migration", "--format", "mermaid"]);
    assert!(mermaid.starts_with("stateDiagram-v2\n"));
    assert!(mermaid.contains("    [*] --> selection\n"));
    assert!(
        mermaid.contains(
            "    migration_analysis --> client_implementation : when label ~existing-rpc is set\n"
        ),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("    migration_analysis --> shelved : exit when label ~shelve is set\n"),
        "{mermaid}"
    );
    // The gates are drawn in their stage, facts too.
    assert!(
        mermaid.contains("    rpc_design : any of all items under RPC Design are done, a merge request in gitlab-org/gitaly-proto that references the tracking issue is merged\n"),
        "{mermaid}"
    );
    assert!(mermaid.contains("    opt_in : a release of gitlab-org/gitlab (tags matching `^v\\d+\\.\\d+\\.0(-ee)?$`) published since entering this stage\n"), "{mermaid}");
    assert!(
        mermaid.contains("    mandatory --> done\n") && mermaid.contains("    done --> [*]\n"),
        "{mermaid}"
    );
    let text = s.ok(&["show", "acceptance-testing"]);
    assert!(text.contains("staging-trial ~\"acceptance::staging\"\n  gate: all items under \"3. Staging Trial\" are done\n  gate: at least 15m in this stage"), "{text}");
    let out = s.run(&["show", "gitaly-migration", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn json_shapes_follow_the_design() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, &at("0m"));
    let issue = s.json(&["issue", &n.to_string()]);
    assert_eq!(
        keys(&issue),
        ["ref", "title", "body", "labels", "state", "url"]
    );
    assert_eq!(issue["state"], "open");
    let status = s.json(&["status", &n.to_string(), "--now", &at("1h")]);
    for key in STATUS_KEYS {
        assert!(status.get(key).is_some(), "status lacks {key}: {status}");
    }
    assert_eq!(status["entered_at"], "2026-01-01T00:00:00Z");
    // A blocking checklist says who must act.
    assert_eq!(
        keys(&status["gates"][0]),
        ["gate", "description", "passed", "detail", "waits_for"]
    );
    assert_eq!(
        status["gates"][0]["waits_for"],
        "whoever works on the migration to tick the items under *Selection*"
    );
    let advance = s.json(&["advance", &n.to_string(), "--now", &at("1h")]);
    for key in ["ref", "stage", "transitions", "blocked_by"] {
        assert!(advance.get(key).is_some(), "advance lacks {key}");
    }
    let history = s.json(&["history", &n.to_string()]);
    assert_eq!(
        keys(&history["transitions"][0]),
        ["from", "to", "at", "by", "reason"]
    );
    assert_eq!(history["transitions"][0]["from"], serde_json::Value::Null);
}

#[test]
fn reports_in_text_markdown_and_json() {
    let s = Shepherd::new();
    let a = start_gitaly(&s, &at("0m"));
    start_gitaly(&s, &at("0m"));
    s.tick_section(a, None, "Selection", &at("1h"));
    s.ok(&["advance", &a.to_string(), "--now", &at("1h")]);
    let report = s.json(&["report", "--now", &at("3h")]);
    assert_eq!(report["generated_at"], "2026-01-01T03:00:00Z");
    assert_eq!(report["stages"]["gitaly-migration"]["selection"], 1);
    assert_eq!(
        report["stages"]["gitaly-migration"]["migration-analysis"],
        1
    );
    assert_eq!(report["stages"]["acceptance-testing"]["preparation"], 0);
    let first_stages: Vec<&String> = report["stages"]["gitaly-migration"]
        .as_object()
        .unwrap()
        .keys()
        .take(2)
        .collect();
    assert_eq!(
        first_stages,
        ["selection", "migration-analysis"],
        "stages in workflow order"
    );
    assert_eq!(
        report["migrations"][0]["history"].as_array().unwrap().len(),
        2
    );
    let md = s.ok(&["report", "--format", "md", "--now", &at("3h")]);
    assert!(md.contains("| selection | 1 |"), "{md}");
    assert!(
        md.contains(
            "| migration-analysis | open | 2h | checklist: 0/3 items in *Migration Analysis* |"
        ),
        "{md}"
    );
    let text = s.ok(&["report", "--now", &at("3h")]);
    assert!(
        text.contains("gitaly-migration: selection=1 migration-analysis=1"),
        "{text}"
    );
    s.ok(&[
        "report",
        "--format",
        "md",
        "--output",
        "report.md",
        "--now",
        &at("3h"),
    ]);
    assert_eq!(std::fs::read_to_string(s.path("report.md")).unwrap(), md);
}
