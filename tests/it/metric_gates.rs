//! Metric gates and metric exits end to end: the real binary on the local tracker asks a
//! real Prometheus (`prom::PromHarness`) scraping values the test sets. A gate that holds
//! for its window moves the migration and its evidence lands in the audit comment; one
//! that does not, or cannot tell (no data, Prometheus down), blocks and says why; a value
//! over the threshold rolls the migration back by itself.

use std::time::Duration;

use crate::prom::PromHarness;
use crate::support::{blocked, moves, run_of, write_workflow, Shepherd, GITALY_VARS};

const CANARY: &str = r#"name: canary
description: A canary checked by its error rate
variables:
  flag: {required: true}
tracking: {template: canary}
stages:
  - id: canary
    label: "canary::running"
    gates:
      - metric: {query: 'shepherd_test_error_rate{flag="{{flag}}"}', below: 0.5, for: 3s}
    next: done
    exits:
      - to: rolled-back
        when: [{metric: {query: 'shepherd_test_error_rate{flag="{{flag}}"}', above: 0.8}}]
  - id: done
    label: "canary::done"
    terminal: true
  - id: rolled-back
    label: "canary::rolled-back"
    terminal: true
    on_enter: [{close: true}]
"#;

const TEMPLATE: &str = "---\ntitle: \"Canary {{flag}}\"\n---\nWatching `{{flag}}`.\n";

/// A Prometheus, its URL, and a project with the canary workflow; none without Prometheus.
fn canary() -> Option<(PromHarness, String, Shepherd)> {
    let prom = PromHarness::start()?;
    let url = prom.url();
    let s = Shepherd::new();
    write_workflow(s.dir.path(), "canary", CANARY, &[("canary", TEMPLATE)]);
    Some((prom, url, s))
}

fn with(prom: &str, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = [
        "--workflows",
        "workflows",
        "--templates",
        "templates",
        "--prometheus-url",
        prom,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

fn json(s: &Shepherd, prom: &str, args: &[&str]) -> serde_json::Value {
    let all = with(prom, args);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    s.json(&refs)
}

fn start(s: &Shepherd, prom: &str, flag: &str) -> u64 {
    json(
        s,
        prom,
        &["start", "canary", "--var", &format!("flag={flag}")],
    )["ref"]
        .as_u64()
        .unwrap()
}

fn series(flag: &str) -> String {
    format!("shepherd_test_error_rate{{flag=\"{flag}\"}}")
}

#[test]
fn a_metric_gate_holds_for_its_window_blocks_when_over_and_rolls_back_above_its_exit() {
    let Some((prom, url, s)) = canary() else {
        return;
    };
    prom.set("shepherd_test_error_rate", &[("flag", "good")], 0.2);
    prom.set("shepherd_test_error_rate", &[("flag", "bad")], 0.6);
    prom.set("shepherd_test_error_rate", &[("flag", "worse")], 0.7);
    for flag in ["good", "bad", "worse"] {
        prom.wait_until(&series(flag), |samples| samples.len() == 1);
    }
    let good = start(&s, &url, "good");
    let bad = start(&s, &url, "bad");
    let worse = start(&s, &url, "worse");

    // Entered a moment ago: the window is not full yet (the wall clock is the tracker's).
    let v = json(&s, &url, &["advance", &good.to_string()]);
    assert_eq!(moves(&v), Vec::<String>::new());
    let why = &blocked(&v)[0];
    assert!(
        why.contains("`shepherd_test_error_rate{flag=\"good\"}` < 0.5 for "),
        "{why}"
    );
    assert!(why.contains(" of 3s: min 0.2, max 0.2, last 0.2"), "{why}");

    // It goes over the exit's threshold: the exit rolls it back by itself, and says why.
    prom.set("shepherd_test_error_rate", &[("flag", "worse")], 0.9);
    prom.wait_until(&series("worse"), |samples| {
        samples.iter().any(|x| x.value > 0.8)
    });
    let v = json(&s, &url, &["advance", &worse.to_string()]);
    assert_eq!(moves(&v), ["canary>rolled-back"], "{v}");
    assert!(!s.issue(worse).open, "rolled back and closed");
    let audit = s.comments(worse).last().unwrap().body.clone();
    assert!(
        audit.contains("`shepherd_test_error_rate{flag=\"worse\"}` = 0.9 > 0.8 now"),
        "{audit}"
    );
    assert!(
        audit.contains(&format!("[graph]({url}/graph?g0.expr=")),
        "{audit}"
    );

    std::thread::sleep(Duration::from_secs(4));
    let r = json(&s, &url, &["reconcile"]);
    let run = |n: u64| run_of(&r, n);
    assert_eq!(moves(run(good)), ["canary>done"], "{r}");
    let audit = s.comments(good).last().unwrap().body.clone();
    assert!(audit.contains("Gates that held"), "{audit}");
    assert!(
        audit.contains("`shepherd_test_error_rate{flag=\"good\"}` < 0.5 for 3s of 3s: min 0.2, max 0.2, last 0.2"),
        "{audit}"
    );
    // Between the two thresholds: neither moves on nor rolls back.
    assert_eq!(moves(run(bad)), Vec::<String>::new());
    let why = &blocked(run(bad))[0];
    assert!(why.contains("was 0.6 ≥ 0.5 in the last 3s"), "{why}");

    // It goes over: the next look rolls it back.
    prom.set("shepherd_test_error_rate", &[("flag", "bad")], 1.5);
    prom.wait_until(&series("bad"), |samples| {
        samples.iter().any(|x| x.value > 1.0)
    });
    let v = json(&s, &url, &["advance", &bad.to_string()]);
    assert_eq!(moves(&v), ["canary>rolled-back"]);
}

#[test]
fn no_data_and_a_prometheus_that_does_not_answer_are_inconclusive_not_errors() {
    let Some((_prom, url, s)) = canary() else {
        return;
    };
    let n = start(&s, &url, "nobody");
    std::thread::sleep(Duration::from_secs(4));
    let v = json(&s, &url, &["advance", &n.to_string()]);
    assert_eq!(moves(&v), Vec::<String>::new());
    assert!(
        blocked(&v)[0].contains("returned no data: inconclusive"),
        "{:?}",
        blocked(&v)
    );

    // Nothing listens there: the gate says so, the command still succeeds, nothing moves.
    let down = "http://127.0.0.1:9";
    let v = json(&s, down, &["advance", &n.to_string()]);
    assert_eq!(moves(&v), Vec::<String>::new());
    let why = &blocked(&v)[0];
    assert!(
        why.contains("Prometheus at http://127.0.0.1:9 does not answer"),
        "{why}"
    );
    assert!(why.ends_with(": inconclusive"), "{why}");
    let status = json(&s, down, &["status", &n.to_string()]);
    assert_eq!(status["stage"], "canary");
}

#[test]
fn the_shipped_acceptance_testing_rolls_back_by_itself_when_its_error_rate_goes_above() {
    let Some(prom) = PromHarness::start() else {
        return;
    };
    let url = prom.url();
    let s = Shepherd::new();
    prom.set(
        "shepherd_test_error_rate",
        &[("flag", "GITALY_FIND_COMMIT")],
        0.05,
    );
    prom.wait_until(&series("GITALY_FIND_COMMIT"), |samples| samples.len() == 1);
    let begin = |query: &str| {
        let query = format!("error_rate_query={query}");
        let mut args = vec![
            "--prometheus-url",
            &url,
            "start",
            "acceptance-testing",
            "--var",
            &query,
        ];
        // The feature flag, service and method, but not the versions.
        args.extend(&GITALY_VARS[..6]);
        s.json(&args)
    };
    // 5 % is above the default threshold of 1 %: it is rolled back as it starts.
    let watched = begin(&series("GITALY_FIND_COMMIT"));
    assert_eq!(watched["stage"], "rolled-back", "{watched}");
    let watched = watched["ref"].as_u64().unwrap();
    assert!(!s.issue(watched).open);
    let audit = s
        .comments(watched)
        .iter()
        .rev()
        .find(|c| c.body.contains("**shepherd** moved"))
        .unwrap()
        .body
        .clone();
    assert!(
        audit.contains("from ~\"acceptance::preparation\" to ~\"acceptance::rolled-back\""),
        "{audit}"
    );
    assert!(audit.contains("= 0.05 > 0.01 now"), "{audit}");
    let unwatched = begin("")["ref"].as_u64().unwrap();
    let r = s.json(&["--prometheus-url", &url, "reconcile"]);
    let run = |n: u64| run_of(&r, n);
    // Without a query the trial is as it was: its checklist blocks it.
    assert_eq!(moves(run(unwatched)), Vec::<String>::new());
    assert_eq!(
        blocked(run(unwatched)),
        ["checklist: 0/1 items in *1. Preparation*"]
    );
}
