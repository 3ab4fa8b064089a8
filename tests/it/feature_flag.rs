//! The feature-flag rollout workflow: a flag that must follow another flag, the global
//! rollout, release, cleanup, and a rollback from any step.

use crate::support::{at, moves, Shepherd};

#[test]
fn a_flag_waits_for_the_flag_it_depends_on() {
    let s = Shepherd::new();
    let started = s.json(&[
        "start",
        "feature-flag-rollout",
        "--var",
        "feature_flag=update_all_mirrors_job_tracker",
        "--var",
        "depends_on=project_import_schedule_worker_job_tracker",
        "--now",
        &at("0m"),
    ]);
    assert_eq!(started["stage"], "non-production");
    let n = started["ref"].as_u64().unwrap();
    let issue = s.issue(n);
    assert_eq!(
        issue.title,
        "[Feature flag] Rollout of `update_all_mirrors_job_tracker`"
    );
    s.tick_section(n, None, "Rollout on non-production", &at("1h"));
    // Preparation: every item but the dependency.
    for text in [
        "change management issue",
        "available for at least 2 hours",
        "documentation has been updated",
        "estimated time",
        "Notify",
    ] {
        s.ok(&["tick", &n.to_string(), text, "--now", &at("1h")]);
    }
    let v = s.json(&["advance", &n.to_string(), "--now", &at("1h")]);
    assert_eq!(moves(&v), ["non-production>preparation"]);
    assert_eq!(
        v["blocked_by"][0]["detail"],
        "5/6 items in *Preparation before global rollout*"
    );
    s.ok(&[
        "tick",
        &n.to_string(),
        "project_import_schedule_worker_job_tracker",
        "--section",
        "Preparation",
        "--now",
        &at("2h"),
    ]);
    s.tick_section(n, None, "Global rollout on production", &at("2h"));
    s.tick_section(n, None, "Release the feature", &at("2h"));
    let v = s.json(&["advance", &n.to_string(), "--now", &at("2h")]);
    assert_eq!(
        moves(&v),
        [
            "preparation>global-rollout",
            "global-rollout>release",
            "release>cleanup"
        ]
    );
    s.ok(&[
        "tick",
        &n.to_string(),
        "Clean up the feature flag",
        "--now",
        &at("3h"),
    ]);
    let v = s.json(&["advance", &n.to_string(), "--now", &at("3h")]);
    assert_eq!(moves(&v), ["cleanup>done"]);
    assert!(!s.issue(n).open, "done closes the rollout issue");
}

#[test]
fn a_rollback_label_ends_the_rollout_at_any_step() {
    let s = Shepherd::new();
    let started = s.json(&[
        "start",
        "feature-flag-rollout",
        "--var",
        "feature_flag=gitaly_backup",
        "--now",
        &at("0m"),
    ]);
    let n = started["ref"].as_u64().unwrap();
    let body = s.issue(n).body;
    assert!(
        !body.contains("rolled out and runs stable"),
        "no dependency, no dependency item"
    );
    s.ok(&[
        "label",
        &n.to_string(),
        "--add",
        "rollback",
        "--now",
        &at("1h"),
    ]);
    let v = s.json(&["advance", &n.to_string(), "--now", &at("1h")]);
    assert_eq!(moves(&v), ["non-production>rolled-back"]);
    let issue = s.issue(n);
    assert!(!issue.labels.contains(&"rollback".to_string()));
    let comments = s.comments(n);
    assert!(comments.iter().any(|c| c
        .body
        .contains("/chatops run feature set gitaly_backup false")));
}
