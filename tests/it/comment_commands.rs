//! Comment commands on the local tracker (DESIGN §12): `shepherd comment` writes as a
//! person; the next `advance` or `reconcile` acts on each command once and answers it with
//! one reply; `[people] operators` says who may change a migration; `/shepherd approve`
//! by an approver moves it.

use serde_json::Value;

use crate::support::Shepherd;

/// A schema change that waits for carol's or dave's approval, then a second stage.
const REVIEW: &str = "name: review
description: A schema change, approved by a DBA
tracking:
  template: review
stages:
  - id: review
    label: \"review::waiting\"
    gates:
      - approval: {label: dba-approved, by: [carol, dave]}
    next: rollout
  - id: rollout
    label: \"review::rollout\"
    gates:
      - label: shipped
    next: done
  - id: done
    label: \"review::done\"
    terminal: true
";

fn review(operators: Option<&str>) -> (Shepherd, String) {
    let s = Shepherd::new();
    crate::support::write_workflow(
        s.dir.path(),
        "review",
        REVIEW,
        &[(
            "review",
            "---\ntitle: \"A schema change\"\n---\nWaits for a DBA.\n",
        )],
    );
    let mut toml = "workflows = \"workflows\"\ntemplates = \"templates\"\n".to_string();
    if let Some(ops) = operators {
        toml.push_str(&format!("[people]\noperators = {ops}\n"));
    }
    std::fs::write(s.path("shepherd.toml"), toml).unwrap();
    let n = s.json(&["start", "review"])["ref"].as_u64().unwrap();
    (s, n.to_string())
}

/// The replies shepherd posted: (the command's id, its first line), oldest first.
fn replies(s: &Shepherd, n: &str) -> Vec<(u64, String)> {
    s.comments(n.parse().unwrap())
        .iter()
        .filter_map(|c| {
            let id = shepherd::core::command::answer_of(&c.body)?;
            Some((id, c.body.lines().next().unwrap_or_default().to_string()))
        })
        .collect()
}

fn comment(s: &Shepherd, n: &str, text: &str, actor: &str) -> u64 {
    s.json(&["comment", n, text, "--actor", actor])["id"]
        .as_u64()
        .unwrap()
}

fn answered(v: &Value) -> Vec<(String, String, bool)> {
    v["commands"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["verb"].as_str().unwrap().to_string(),
                        c["by"].as_str().unwrap().to_string(),
                        c["done"].as_bool().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_operator_pauses_and_resumes_from_a_comment_and_each_command_gets_one_reply() {
    let (s, n) = review(Some("[\"olga\"]"));
    let pause = comment(&s, &n, "/shepherd pause waiting for the DBA", "olga");
    let v = s.json(&["advance", &n]);
    assert_eq!(answered(&v), [("pause".into(), "olga".into(), true)], "{v}");
    let status = s.json(&["status", &n]);
    assert_eq!(status["paused"], true, "{status}");
    assert_eq!(status["paused_by"], "olga");
    assert_eq!(status["paused_reason"], "waiting for the DBA");
    // The pause's own comment is the reply.
    let r = replies(&s, &n);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, pause);
    assert!(r[0].1.contains("olga paused this migration"), "{r:?}");

    // Acted on once: another advance and a reconcile leave it answered.
    let v = s.json(&["advance", &n]);
    assert!(answered(&v).is_empty(), "{v}");
    let v = s.json(&["reconcile"]);
    assert!(v["migrations"][0].get("commands").is_none(), "{v}");
    assert_eq!(replies(&s, &n).len(), 1);

    // Someone who is no operator is refused, with a reply that says why.
    comment(&s, &n, "/shepherd resume", "mallory");
    let v = s.json(&["reconcile"]);
    assert_eq!(
        answered(&v["migrations"][0]),
        [("resume".into(), "mallory".into(), false)],
        "{v}"
    );
    let r = replies(&s, &n);
    assert_eq!(r.len(), 2);
    assert!(
        r[1].1.starts_with(
            "@mallory may not resume: only the operators named in shepherd.toml may (olga)"
        ),
        "{r:?}"
    );
    assert_eq!(s.json(&["status", &n])["paused"], true);

    // History lists the pause with who gave the command.
    let h = s.json(&["history", &n]);
    let kinds: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"pause"), "{h}");

    comment(&s, &n, "/shepherd resume", "olga");
    s.json(&["reconcile"]);
    assert_eq!(s.json(&["status", &n])["paused"], false);
    assert_eq!(replies(&s, &n).len(), 3);
}

#[test]
fn approve_by_an_approver_moves_the_migration_and_by_anyone_else_is_refused() {
    let (s, n) = review(None);
    comment(&s, &n, "/shepherd approve", "mallory");
    comment(&s, &n, "/shepherd approve", "dave");
    let v = s.json(&["advance", &n]);
    assert_eq!(
        answered(&v),
        [
            ("approve".into(), "mallory".into(), false),
            ("approve".into(), "dave".into(), true),
        ],
        "{v}"
    );
    // dave's approval counts, as if he had added the label: the migration moved on.
    assert_eq!(v["stage"], "rollout", "{v}");
    let r = replies(&s, &n);
    assert!(
        r[0].1.starts_with(
            "@mallory may not approve: not an approver of stage review (approvers: carol, dave)"
        ),
        "{r:?}"
    );
    let issue = s.issue(n.parse().unwrap());
    assert!(
        issue.labels.iter().any(|l| l == "dba-approved"),
        "{issue:?}"
    );

    // The gate still reads it so later (the status of a finished stay is history).
    let h = s.json(&["history", &n]);
    assert_eq!(h["transitions"].as_array().unwrap().len(), 2, "{h}");
}

#[test]
fn status_help_unknown_and_rollback_commands_answer_in_the_issue() {
    let (s, n) = review(None);
    comment(&s, &n, "/shepherd status", "erin");
    comment(&s, &n, "/shepherd frobnicate", "erin");
    comment(&s, &n, "> /shepherd pause quoted", "erin");
    let v = s.json(&["reconcile"]);
    assert_eq!(
        answered(&v["migrations"][0]),
        [
            ("status".into(), "erin".into(), true),
            ("unknown".into(), "erin".into(), false),
        ],
        "{v}"
    );
    let bodies: Vec<String> = s
        .comments(n.parse().unwrap())
        .into_iter()
        .map(|c| c.body)
        .collect();
    let status = bodies
        .iter()
        .find(|b| b.contains("is in **review**"))
        .unwrap();
    assert!(
        status.contains(
            "waits for carol or dave to add ~\"dba-approved\", or to comment /shepherd approve"
        ),
        "{status}"
    );
    let help = bodies.iter().find(|b| b.contains("`frobnicate`")).unwrap();
    assert!(help.contains("/shepherd rollback STAGE REASON"), "{help}");
    assert_eq!(
        s.json(&["status", &n])["paused"],
        false,
        "a quote is no command"
    );

    // Into rollout, then a rollback by comment: its audit comment is the reply.
    comment(&s, &n, "/shepherd approve", "carol");
    s.json(&["reconcile"]);
    let rb = comment(
        &s,
        &n,
        "/shepherd rollback review schema needs rework",
        "erin",
    );
    let v = s.json(&["reconcile"]);
    assert_eq!(
        answered(&v["migrations"][0]),
        [("rollback".into(), "erin".into(), true)],
        "{v}"
    );
    let status = s.json(&["status", &n]);
    assert_eq!(status["stage"], "review", "{status}");
    assert_eq!(status["paused"], true, "a rollback pauses");
    let h = s.json(&["history", &n]);
    let last = h["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "rollback", "{h}");
    assert_eq!(last["by"], "erin");
    assert_eq!(last["reason"], "schema needs rework");
    assert!(replies(&s, &n).iter().any(|(id, _)| *id == rb));
    // carol's approval came before the rollback: it no longer counts.
    s.json(&["resume", &n]);
    let v = s.json(&["advance", &n]);
    assert_eq!(v["stage"], "review", "{v}");
}
