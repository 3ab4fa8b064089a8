//! Feature flags on the local tracker (the `local` backend, flags in the tracker's file):
//! the shipped acceptance-testing rehearsed offline turns the flag up 1 → 5 → 50 → 100 %
//! as each production step is entered and off on rollback, saying so on the issue once;
//! `flag get/set/list` by hand; a `flag` gate; bad input.

use serde_json::Value;

use crate::support::{at, moves, Shepherd};

const FLAG: &str = "gitaly_find_commit";

fn start(s: &Shepherd) -> u64 {
    let v = s.json(&[
        "start",
        "acceptance-testing",
        "--var",
        &format!("feature_flag={FLAG}"),
        "--var",
        "grpc_service=CommitService",
        "--var",
        "grpc_method=FindCommit",
        "--now",
        &at("0m"),
    ]);
    v["ref"].as_u64().unwrap()
}

fn flag(s: &Shepherd, env: Option<&str>) -> Value {
    let mut args = vec!["flag", "get", FLAG];
    if let Some(e) = env {
        args.extend(["--environment", e]);
    }
    s.json(&args)
}

fn step(s: &Shepherd, n: u64, section: &str, now: &str) -> Vec<String> {
    s.tick_section(n, None, section, now);
    moves(&s.json(&["advance", &n.to_string(), "--now", now]))
}

#[test]
fn the_acceptance_testing_rehearsal_turns_the_flag_up_step_by_step_and_off_on_rollback() {
    let s = Shepherd::new();
    let n = start(&s);
    assert_eq!(flag(&s, Some("production"))["exists"], false);
    assert_eq!(
        step(&s, n, "1. Preparation", &at("1m")),
        ["preparation>development-trial"]
    );
    assert_eq!(
        step(&s, n, "2. Development Trial", &at("2m")),
        ["development-trial>staging-trial"]
    );
    assert_eq!(
        step(&s, n, "3. Staging Trial", &at("20m")),
        ["staging-trial>production-version-check"]
    );
    assert_eq!(
        step(&s, n, "4. Production Server Version Check", &at("21m")),
        ["production-version-check>initial-impact"]
    );
    let f = flag(&s, Some("production"));
    assert_eq!(
        (
            f["enabled"].clone(),
            f["percentage"].clone(),
            f["backend"].clone()
        ),
        (true.into(), 1.0.into(), "local".into()),
        "{f}"
    );
    assert_eq!(
        step(&s, n, "5. Initial Impact Check", &at("40m")),
        ["initial-impact>low-impact"]
    );
    assert_eq!(flag(&s, Some("production"))["percentage"], 5.0);
    assert_eq!(
        step(&s, n, "6. Low Impact Trial", &at("3h")),
        ["low-impact>mid-impact"]
    );
    assert_eq!(flag(&s, Some("production"))["percentage"], 50.0);
    assert_eq!(
        step(&s, n, "7. Mid Impact Trial", &at("1d4h")),
        ["mid-impact>full-impact"]
    );
    assert_eq!(flag(&s, Some("production"))["percentage"], 100.0);

    // Each change is said once on the issue, in the order made.
    let said: Vec<String> = s
        .comments(n)
        .iter()
        .filter(|c| c.body.contains("🚩"))
        .map(|c| c.body.lines().next().unwrap().to_string())
        .collect();
    assert_eq!(said.len(), 4, "{said:#?}");
    assert!(
        said[0].starts_with("🚩 `gitaly_find_commit`: missing → 1%, production"),
        "{said:#?}"
    );
    assert!(
        said[1].starts_with("🚩 `gitaly_find_commit`: 1% → 5%, production"),
        "{said:#?}"
    );
    assert!(
        said[3].starts_with("🚩 `gitaly_find_commit`: 50% → 100%, production"),
        "{said:#?}"
    );
    // Nothing more on a second look.
    s.json(&["reconcile", "--now", &at("1d5h")]);
    assert_eq!(
        s.comments(n)
            .iter()
            .filter(|c| c.body.contains("🚩"))
            .count(),
        4
    );

    // Someone turns it down by hand: status shows the drift, the report marks it.
    assert!(s
        .json(&["status", &n.to_string()])
        .get("flag_drift")
        .is_none());
    s.ok(&[
        "flag",
        "set",
        FLAG,
        "--percentage",
        "50",
        "--environment",
        "production",
    ]);
    let status = s.json(&["status", &n.to_string()]);
    assert_eq!(
        status["flag_drift"],
        serde_json::json!([{"name": FLAG, "environment": "production", "expected": "100%", "actual": "on at 50%"}])
    );
    let text = s.ok(&["status", &n.to_string()]);
    assert!(
        text.contains("⚠ `gitaly_find_commit` in production is on at 50%, but its stage set 100%"),
        "{text}"
    );
    let report = s.ok(&["report", "--now", &at("1d5h")]);
    assert!(report.contains("⚑ flag drift"), "{report}");
    let html = s.ok(&["report", "--format", "html", "--now", &at("1d5h")]);
    assert!(
        html.contains("<b>flag drift</b>: <code>gitaly_find_commit</code> in production is on at 50%, its stage set 100%"),
        "the HTML page (and the service's dashboard) shows it"
    );
    s.ok(&[
        "flag",
        "set",
        FLAG,
        "--percentage",
        "100",
        "--environment",
        "production",
    ]);
    assert!(s
        .json(&["status", &n.to_string()])
        .get("flag_drift")
        .is_none());

    // Trial disabled: rolled back, and the flag is off everywhere.
    s.ok(&[
        "label",
        &n.to_string(),
        "--add",
        "trial-disabled",
        "--now",
        &at("1d6h"),
    ]);
    let v = s.json(&["advance", &n.to_string(), "--now", &at("1d6h")]);
    assert_eq!(moves(&v), ["full-impact>rolled-back"]);
    assert_eq!(flag(&s, None)["enabled"], false);
    assert_eq!(flag(&s, Some("production"))["enabled"], false);
    let last = s
        .comments(n)
        .iter()
        .rev()
        .find(|c| c.body.contains("🚩"))
        .unwrap()
        .body
        .clone();
    assert!(
        last.starts_with("🚩 `gitaly_find_commit`: 100% → off"),
        "{last}"
    );
}

/// `flag set` of `my_flag` at 25 % in staging.
const SET_MY_FLAG: [&str; 7] = [
    "flag",
    "set",
    "my_flag",
    "--percentage",
    "25",
    "--environment",
    "staging",
];

#[test]
fn flag_commands_read_and_set_the_local_backend_and_refuse_bad_input() {
    let s = Shepherd::new();
    s.ok(&["clock", "set", &at("0m")]);
    let v = s.json(&SET_MY_FLAG);
    assert_eq!(
        (v["changed"].clone(), v["percentage"].clone()),
        (true.into(), 25.0.into())
    );
    let v = s.json(&SET_MY_FLAG);
    assert_eq!(v["changed"], false, "the same again writes nothing");
    assert!(s
        .ok(&["flag", "get", "my_flag", "--environment", "staging"])
        .contains("on at 25% in staging"));
    s.ok(&["flag", "set", "other", "--on"]);
    let list = s.json(&["flag", "list"]);
    let names: Vec<&str> = list["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["my_flag", "other"]);

    // Bad input: exit 2 for flags clap checks, 1 for the backend's refusals.
    for (args, code, error) in [
        (
            &["flag", "set", "my_flag", "--percentage", "150"][..],
            2,
            "`150` is no percentage",
        ),
        (&["flag", "set", "bad name", "--on"], 1, "is no flag name"),
        (&["flag", "set", "my_flag"], 1, ""),
        (
            &["--flags", "jira", "flag", "list"],
            1,
            "unknown flags backend `jira`",
        ),
    ] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(crate::support::stderr(&out).contains(error), "{args:?}");
    }
}

#[test]
fn a_flag_gate_waits_for_the_flags_real_state() {
    let s = Shepherd::new();
    crate::support::write_workflow(
        s.dir.path(),
        "wait-flag",
        "name: wait-flag\nvariables: {flag: {required: true}}\ntracking: {template: wait-flag}\nstages:\n  - id: waiting\n    label: w::waiting\n    gates: [{flag: {name: \"{{flag}}\", percentage: 50, environment: production}}]\n    next: done\n  - id: done\n    label: w::done\n    terminal: true\n",
        &[("wait-flag", "---\ntitle: \"Wait for {{flag}}\"\n---\nWaiting.\n")],
    );
    let dirs = ["--workflows", "workflows", "--templates", "templates"];
    let run = |args: &[&str]| {
        let mut all = dirs.to_vec();
        all.extend(args);
        s.json(&all)
    };
    let n = run(&["start", "wait-flag", "--var", "flag=ff"])["ref"]
        .as_u64()
        .unwrap();
    let v = run(&["advance", &n.to_string()]);
    assert_eq!(
        v["blocked_by"][0]["detail"],
        "`ff` is missing in production"
    );
    s.ok(&[
        "flag",
        "set",
        "ff",
        "--percentage",
        "5",
        "--environment",
        "production",
    ]);
    let v = run(&["advance", &n.to_string()]);
    assert_eq!(
        v["blocked_by"][0]["detail"],
        "`ff` is on at 5% in production"
    );
    s.ok(&[
        "flag",
        "set",
        "ff",
        "--percentage",
        "50",
        "--environment",
        "production",
    ]);
    assert_eq!(moves(&run(&["advance", &n.to_string()])), ["waiting>done"]);
}

#[test]
fn validate_warns_about_a_flag_turned_up_more_than_tenfold_at_once() {
    let s = Shepherd::new();
    // The shipped workflows go 1 → 5 → 50 → 100: no warning.
    let out = s.run(&["validate"]);
    assert!(out.status.success());
    assert!(
        !crate::support::stderr(&out).contains("warning"),
        "{}",
        crate::support::stderr(&out)
    );
    std::fs::create_dir_all(s.path("workflows")).unwrap();
    let jumpy = include_str!("../../workflows/acceptance-testing.yaml").replace(
        "percentage: 5, environment: production",
        "percentage: 50, environment: production",
    );
    std::fs::write(s.path("workflows/acceptance-testing.yaml"), jumpy).unwrap();
    let out = s.run(&["validate"]);
    assert!(out.status.success(), "a warning, not a failure");
    let err = crate::support::stderr(&out);
    assert!(
        err.contains("warning: workflow `acceptance-testing`, stage `low-impact`: `feature_flag` turns `{{feature_flag}}` from 1% to 50% in one step (more than 10×)"),
        "{err}"
    );
    let v = s.json(&["validate"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1);
}

/// Someone turns the flag down behind shepherd's back while the service runs (serving
/// another tracker too): it says so on the tracking issue once, not once per resync, and
/// `/metrics` counts the drift.
#[test]
fn the_service_says_once_when_a_flag_drifts_from_its_stage() {
    use crate::serve::service::Service;
    let s = Shepherd::new();
    let n = start(&s);
    for (section, now) in [
        ("1. Preparation", "1m"),
        ("2. Development Trial", "2m"),
        ("3. Staging Trial", "20m"),
        ("4. Production Server Version Check", "21m"),
    ] {
        step(&s, n, section, &at(now));
    }
    assert_eq!(flag(&s, Some("production"))["percentage"], 1.0);
    let db = format!("local:{}", s.db().display());
    // Served beside another tracker: each has its own flags (its own file).
    let other = Shepherd::new();
    start(&other);
    let other_db = format!("local:{}", other.db().display());
    let mut service = Service::start_args(
        s.dir.path(),
        &["--tracker", &db, "--tracker", &other_db],
        &["--resync", "1s", "--insecure-no-webhook-secret"],
        &[],
    );
    s.ok(&[
        "flag",
        "set",
        FLAG,
        "--percentage",
        "7",
        "--environment",
        "production",
    ]);
    let drift_notes = || {
        s.comments(n)
            .iter()
            .filter(|c| c.body.starts_with("⚑ Feature flag `gitaly_find_commit` in production is **on at 7%**, but this migration's stage set it to **1%**"))
            .count()
    };
    service.wait_for("the drift note", || drift_notes() == 1);
    service.wait_for("the drift in /metrics", || {
        service
            .get("/metrics")
            .1
            .contains("shepherd_flag_drift_migrations{tracker=")
    });
    // Several more resyncs: still one note.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(drift_notes(), 1);
    assert_eq!(service.terminate(), Some(0));
}

/// The same rehearsal with the flag on a real Unleash (`[flags] backend = "unleash"`): the
/// production step sets its strategy's rollout, `flag get` reads it back, and a wrong
/// token is an error that names the server, never the token.
#[test]
fn a_rehearsal_turns_a_real_unleash_flag_up() {
    let Some(unleash) = crate::unleash::UnleashHarness::shared() else {
        return;
    };
    let s = Shepherd::new();
    std::fs::write(
        s.path("shepherd.toml"),
        format!(
            "[flags]\nbackend = \"unleash\"\nurl = \"{}\"\nproject = \"default\"\nenvironment = \"production\"\n",
            unleash.url()
        ),
    )
    .unwrap();
    let shepherd = |token: &str, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_shepherd"))
            .current_dir(s.dir.path())
            .env_remove("SHEPHERD_TRACKER")
            .env_remove("SHEPHERD_FLAGS")
            .env("USER", "tester")
            .env("UNLEASH_TOKEN", token)
            .arg("--tracker")
            .arg(format!("local:{}", s.db().display()))
            .args(args)
            .output()
            .unwrap()
    };
    let json = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let out = shepherd(unleash.token(), &all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            crate::support::stderr(&out)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let name = "shepherd_e2e_rehearsal";
    let n = json(&[
        "start",
        "acceptance-testing",
        "--var",
        &format!("feature_flag={name}"),
        "--var",
        "grpc_service=S",
        "--var",
        "grpc_method=M",
        "--now",
        &at("0m"),
    ])["ref"]
        .as_u64()
        .unwrap();
    for (section, now) in [
        ("1. Preparation", "1m"),
        ("2. Development Trial", "2m"),
        ("3. Staging Trial", "20m"),
        ("4. Production Server Version Check", "21m"),
    ] {
        s.tick_section(n, None, section, &at(now));
        json(&["advance", &n.to_string(), "--now", &at(now)]);
    }
    let f = json(&["flag", "get", name]);
    assert_eq!(
        (
            f["backend"].clone(),
            f["enabled"].clone(),
            f["percentage"].clone()
        ),
        ("unleash".into(), true.into(), 1.0.into()),
        "{f}"
    );
    let rollout: Vec<String> = unleash
        .strategies(name, "production")
        .iter()
        .map(|st| {
            st["parameters"]["rollout"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(rollout, ["1"]);
    let said = s.comments(n).iter().any(|c| {
        c.body
            .starts_with(&format!("🚩 `{name}`: missing → 1%, production"))
    });
    assert!(
        said,
        "{:?}",
        s.comments(n)
            .iter()
            .map(|c| c.body.clone())
            .collect::<Vec<_>>()
    );

    let out = shepherd("*:*.not-the-token-123", &["flag", "get", name]);
    assert_eq!(out.status.code(), Some(1));
    let err = crate::support::stderr(&out);
    assert!(
        err.contains(&format!("unleash at {}", unleash.url())),
        "{err}"
    );
    assert!(
        err.contains("check UNLEASH_TOKEN") && !err.contains("not-the-token-123"),
        "{err}"
    );
}
