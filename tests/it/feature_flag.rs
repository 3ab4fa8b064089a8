//! The feature-flag rollout workflow: a flag that must follow another flag, the global
//! rollout on production step by step (10 %, 50 %, fully on, each with its checklist and
//! soak), release, cleanup, and a rollback from any step.

use serde_json::Value;

use crate::support::{at, moves, Shepherd};

/// Starts a feature-flag-rollout of `flag` at `now`, with `vars` more.
fn start(s: &Shepherd, flag: &str, vars: &[&str], now: &str) -> Value {
    let flag = format!("feature_flag={flag}");
    let mut args = vec![
        "start",
        "feature-flag-rollout",
        "--var",
        &flag,
        "--now",
        now,
    ];
    for var in vars {
        args.extend(["--var", var]);
    }
    s.json(&args)
}

/// `advance` of #n at `now`.
fn advance(s: &Shepherd, n: u64, now: &str) -> Value {
    s.json(&["advance", &n.to_string(), "--now", now])
}

#[test]
fn a_flag_waits_for_the_flag_it_depends_on() {
    let s = Shepherd::new();
    let started = start(
        &s,
        "update_all_mirrors_job_tracker",
        &["depends_on=project_import_schedule_worker_job_tracker"],
        &at("0m"),
    );
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
    let v = advance(&s, n, &at("1h"));
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
    // The box is ticked, but the flag it depends on is no migration yet: the `after`
    // gate holds the rollout until that flag is fully on in production.
    let v = advance(&s, n, &at("2h"));
    assert_eq!(moves(&v), Vec::<String>::new());
    assert_eq!(
        v["blocked_by"][0]["detail"],
        "no open or completed feature-flag-rollout migration with feature_flag = project_import_schedule_worker_job_tracker yet"
    );
    let dependency = start(
        &s,
        "project_import_schedule_worker_job_tracker",
        &[],
        &at("2h"),
    )["ref"]
        .as_u64()
        .unwrap()
        .to_string();
    let v = advance(&s, n, &at("2h"));
    assert_eq!(
        v["blocked_by"][0]["detail"],
        format!("feature-flag-rollout #{dependency} is in non-production")
    );
    // Someone moves the dependency's rollout on by hand: fully on in production.
    s.ok(&[
        "label",
        &dependency,
        "--add",
        "featureflag::global-rollout",
        "--remove",
        "featureflag::non-production",
        "--now",
        &at("2h"),
    ]);
    // Production is rolled out step by step, each with its soak: 10 %, 50 %, then on.
    s.tick_section(n, None, "Global rollout on production", &at("2h"));
    s.tick_section(n, None, "Release the feature", &at("2h"));
    let production = |when: &str| {
        s.json(&[
            "flag",
            "get",
            "update_all_mirrors_job_tracker",
            "--environment",
            "production",
            "--now",
            when,
        ])
    };
    assert_eq!(
        production(&at("1h"))["exists"],
        false,
        "not yet in production"
    );
    for (when, expected, percentage) in [
        ("2h", "preparation>production-10", Some(10.0)),
        ("2h14m", "", Some(10.0)),
        ("2h15m", "production-10>production-50", Some(50.0)),
        ("2h30m", "production-50>global-rollout", None),
        ("1d2h29m", "", None),
    ] {
        let v = advance(&s, n, &at(when));
        let want: Vec<&str> = [expected].into_iter().filter(|m| !m.is_empty()).collect();
        assert_eq!(moves(&v), want, "at {when}");
        let flag = production(&at(when));
        assert_eq!(flag["enabled"], true, "at {when}: {flag}");
        match percentage {
            Some(p) => assert_eq!(flag["percentage"], p, "at {when}: {flag}"),
            None => assert!(flag["percentage"].is_null(), "fully on at {when}: {flag}"),
        }
    }
    // Fully on for a day, then released.
    let v = advance(&s, n, &at("1d2h30m"));
    assert_eq!(moves(&v), ["global-rollout>release", "release>cleanup"]);
    s.ok(&[
        "tick",
        &n.to_string(),
        "Clean up the feature flag",
        "--now",
        &at("1d3h"),
    ]);
    let v = advance(&s, n, &at("1d3h"));
    assert_eq!(moves(&v), ["cleanup>done"]);
    assert!(!s.issue(n).open, "done closes the rollout issue");
}

#[test]
fn each_production_step_waits_for_its_own_checklist() {
    let s = Shepherd::new();
    let started = start(&s, "gitaly_backup", &[], &at("0m"));
    let n = started["ref"].as_u64().unwrap();
    s.tick_section(n, None, "Rollout on non-production", &at("0m"));
    s.tick_section(n, None, "Preparation before global rollout", &at("0m"));
    s.tick_section(n, None, "Roll out to 10%", &at("0m"));
    let v = advance(&s, n, &at("1h"));
    assert_eq!(
        moves(&v),
        ["non-production>preparation", "preparation>production-10"]
    );
    let v = advance(&s, n, &at("2h"));
    assert_eq!(moves(&v), ["production-10>production-50"]);
    // 50 % is not left before its own items are ticked, however long it runs.
    let v = advance(&s, n, &at("1w"));
    assert_eq!(moves(&v), Vec::<String>::new());
    assert_eq!(
        v["blocked_by"][0]["detail"],
        "0/2 items in *Roll out to 50%*"
    );
}

#[test]
fn a_rollback_label_ends_the_rollout_at_any_step() {
    let s = Shepherd::new();
    let started = start(&s, "gitaly_backup", &[], &at("0m"));
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
    let v = advance(&s, n, &at("1h"));
    assert_eq!(moves(&v), ["non-production>rolled-back"]);
    let issue = s.issue(n);
    assert!(!issue.labels.contains(&"rollback".to_string()));
    let comments = s.comments(n);
    assert!(comments.iter().any(|c| c
        .body
        .contains("/chatops run feature set gitaly_backup false")));
}
