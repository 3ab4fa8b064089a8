//! Stages with a `limit` on the local tracker: never more than `limit` migrations in the
//! stage, however many runs at once; the others wait in line, `shepherd::priority` first.

use super::{flags, start};
use crate::support::Shepherd;

/// The migrations standing in `stage`, by number.
fn in_stage(s: &Shepherd, stage: &str) -> Vec<u64> {
    s.issues()
        .iter()
        .filter(|i| i.labels.iter().any(|l| l == &format!("flag::{stage}")))
        .map(|i| i.number)
        .collect()
}

#[test]
fn a_limited_stage_takes_migrations_in_turn_priority_first() {
    let s = flags(Some(2));
    let ns: Vec<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|f| start(&s, f, None))
        .collect();
    for n in &ns {
        s.ok(&["label", n, "--add", "ready"]);
    }
    let out = s.json(&["reconcile"]);
    assert_eq!(in_stage(&s, "global").len(), 2, "{out:#}");
    let waiting: Vec<u64> = in_stage(&s, "prep");
    assert_eq!(waiting.len(), 3);
    // Each waiting one says why.
    let n = waiting[2].to_string();
    let advanced = s.json(&["advance", &n]);
    let text = advanced.to_string();
    assert!(
        text.contains("waits for a slot in global: 2 of 2 taken by"),
        "{advanced:#}"
    );
    let status = s.json(&["status", &n]);
    assert_eq!(status["waiting"][0]["kind"], "slot", "{status:#}");
    let detail = status["waiting"][0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("waits for a slot in global: 2 of 2 taken by #"),
        "{detail}"
    );
    let text = s.ok(&["status", &n]);
    assert!(text.contains("waits for a slot in global"), "{text}");
    // `plan` shows the stage full and who waits for it.
    let plan = s.json(&["plan"]);
    let stages = &plan["workflows"][0]["stages"];
    assert_eq!(plan["workflows"][0]["name"], "flag", "{plan:#}");
    assert_eq!(stages[0]["id"], "prep");
    assert_eq!(stages[0]["in"].as_array().unwrap().len(), 3);
    let waits = stages[0]["waiting"].as_array().unwrap();
    assert_eq!(waits.len(), 3, "{plan:#}");
    assert!(waits.iter().all(|w| w["kind"] == "slot"), "{plan:#}");
    assert_eq!(
        (stages[1]["id"].as_str(), stages[1]["limit"].as_u64()),
        (Some("global"), Some(2))
    );
    assert_eq!(stages[1]["in"].as_array().unwrap().len(), 2);
    let only = s.json(&["plan", "--workflow", "flag"]);
    assert_eq!(only["workflows"].as_array().unwrap().len(), 1);
    let err = s.fails(&["plan", "--workflow", "nope"]);
    assert!(err.contains("nope"), "{err}");
    let text = s.ok(&["plan"]);
    assert!(text.contains("(2 of 2 slots taken)"), "{text}");
    assert!(
        text.contains(&format!("#{n} waits (slot): waits for a slot in global")),
        "{text}"
    );
    // The last in line is put first; a slot frees; it gets it.
    s.ok(&["label", &n, "--add", "shepherd::priority"]);
    let first = in_stage(&s, "global")[0].to_string();
    s.ok(&["label", &first, "--add", "released"]);
    s.ok(&["reconcile"]);
    let global = in_stage(&s, "global");
    assert_eq!(global.len(), 2, "{global:?}");
    assert!(global.contains(&waiting[2]), "{global:?} should hold #{n}");
    // Then one of the others, in the run that frees the slot.
    let other = global
        .iter()
        .find(|g| **g != waiting[2])
        .unwrap()
        .to_string();
    s.ok(&["label", &other, "--add", "released"]);
    s.ok(&["reconcile"]);
    let global = in_stage(&s, "global");
    assert_eq!(global.len(), 2, "{global:?}");
    assert!(
        global.contains(&waiting[2])
            && (global.contains(&waiting[0]) || global.contains(&waiting[1]))
    );
    assert_eq!(in_stage(&s, "prep").len(), 1);
}

#[test]
fn four_reconciles_at_once_never_put_more_than_the_limit_into_a_stage() {
    four_at_once(None);
}

#[test]
fn four_reconciles_sharing_a_postgres_store_never_put_more_than_the_limit_into_a_stage() {
    // Prints why it was skipped when PostgreSQL cannot be reached (fails under CI).
    let Some(db) = crate::pg::TestDb::create() else {
        return;
    };
    four_at_once(Some(db.url()));
}

/// Eight migrations ready for a stage that takes two, four reconciles at once (on the
/// Store `state` names, else the default SQLite one beside the tracker).
fn four_at_once(state: Option<&str>) {
    let s = flags(Some(2));
    let ns: Vec<String> = (0..8).map(|i| start(&s, &format!("f{i}"), None)).collect();
    for n in &ns {
        s.ok(&["label", n, "--add", "ready"]);
    }
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = s.command(&["reconcile", "--concurrency", "4"]);
            if let Some(url) = state {
                cmd.env("SHEPHERD_STATE", url);
            }
            cmd.stdout(std::process::Stdio::piped());
            cmd.stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(in_stage(&s, "global").len(), 2);
    // Every entry into global is one audit comment: exactly two were made.
    let entries: usize = ns
        .iter()
        .map(|n| {
            s.comments(n.parse().unwrap())
                .iter()
                .filter(|c| c.body.contains("\"to\":\"global\""))
                .count()
        })
        .sum();
    assert_eq!(entries, 2);
}
