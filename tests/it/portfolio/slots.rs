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
    // Each waiting one says why; a dry run says what a run would do: nothing enters.
    let n = waiting[2].to_string();
    let dry = s.json(&["advance", &n, "--dry-run"]);
    assert!(
        dry["transitions"].as_array().unwrap().is_empty()
            && dry
                .to_string()
                .contains("waits for a slot in global: 2 of 2 taken by"),
        "{dry:#}"
    );
    let dry = s.json(&["reconcile", "--dry-run"]);
    let would: usize = dry["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["transitions"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(would, 0, "{dry:#}");
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

/// A run that dies between its claim on a limited stage (the audit comment into it) and
/// its slot check leaves the claim behind. The run that finishes the move checks the
/// slot first: the migration waits while the stage is full, keeping its claim, and enters
/// once a slot is free — never more than `limit` in the stage.
#[test]
fn a_claim_left_by_a_dead_run_enters_a_full_stage_only_once_a_slot_is_free() {
    use shepherd::core::marker::TransitionMarker;
    let s = flags(Some(1));
    s.ok(&["clock", "set", crate::support::T0]);
    let a = start(&s, "a", None);
    let b = start(&s, "b", None);
    s.ok(&["label", &a, "--add", "ready"]);
    s.ok(&["reconcile"]);
    let (an, bn): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    assert_eq!(in_stage(&s, "global"), [an]);

    // b's claim, as a run that died right after posting it leaves it (another Store, an
    // hour ago: no lease or grace period holds it back).
    let seq = s
        .comments(bn)
        .iter()
        .filter_map(|c| TransitionMarker::find(&c.body))
        .map(|t| t.seq)
        .max()
        .unwrap_or(0)
        + 1;
    let claim = TransitionMarker {
        seq,
        from: Some("prep".into()),
        to: "global".into(),
        by: "shepherd".into(),
        reason: None,
        rollback: false,
        run: Some("dead-run".into()),
        store: Some("another-store".into()),
        untick: Vec::new(),
        command: None,
    };
    let body = format!("Moved to global.\n\n{}", claim.render());
    s.ok(&["comment", &b, &body]);
    s.ok(&["label", &b, "--add", "ready"]);
    s.ok(&["clock", "advance", "1h"]);
    let out = s.json(&["reconcile"]);
    assert_eq!(in_stage(&s, "global"), [an], "{out:#}");
    let skipped = out["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ref"] == bn)
        .and_then(|m| m["skipped"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        skipped.contains("global (1) were taken meanwhile by #1"),
        "{out:#}"
    );

    // a moves on: the slot is b's, through the claim it already has.
    s.ok(&["label", &a, "--add", "released"]);
    s.ok(&["reconcile"]);
    s.ok(&["reconcile"]);
    assert_eq!(in_stage(&s, "global"), [bn]);
    let entries = s
        .comments(bn)
        .iter()
        .filter(|c| c.body.contains("\"to\":\"global\""))
        .count();
    assert_eq!(entries, 1, "the dead run's claim, finished");
}
