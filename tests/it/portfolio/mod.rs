//! Many migrations as one plan (DESIGN §13): `after` gates, limited stages.

mod after;
mod line;
mod remote;
mod replicas;
mod slots;

use std::process::{Command, Stdio};

use shepherd::core::marker::IssueMarker;

use crate::api::Api;
use crate::gitlab_server::{GitLabServer, PROJECT};
use crate::support::Shepherd;

/// Seeds `count` flag migrations of flags `f0`, `f1`… on the server, labelled `labels`.
pub fn seed_flags(server: &GitLabServer, count: usize, labels: &[&str]) -> Vec<u64> {
    (0..count)
        .map(|i| {
            let marker = IssueMarker {
                workflow: Some("flag".into()),
                vars: [("flag".to_string(), format!("f{i}"))].into(),
                ..Default::default()
            };
            let body = format!("Roll out `f{i}`.\n\n{}", marker.render());
            server.seed_issue(&format!("Roll out f{i}"), &body, labels)
        })
        .collect()
}

/// A `reconcile` of the server's project in `s`'s directory (`more` arguments), acting
/// with `token` on the Store at `state`; its output piped.
pub fn reconcile(
    s: &Shepherd,
    server: &GitLabServer,
    token: &str,
    state: &str,
    more: &[&str],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shepherd"));
    cmd.current_dir(s.dir.path())
        .env_remove("SHEPHERD_TRACKER")
        .env("SHEPHERD_STATE", state)
        .env("SHEPHERD_RETRY_BASE_MS", "10")
        .env("GITLAB_TOKEN", token)
        .args([
            "--tracker",
            &format!("gitlab:{PROJECT}"),
            "--gitlab-url",
            &server.url,
            "reconcile",
            "--format",
            "json",
        ])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A flag rollout in miniature: `prep` (label `ready`, and the flag it depends on fully
/// rolled out) → `global` (label `released`) → `done`; `rollback` leaves for `rolled-back`.
/// `global` holds at most `limit` migrations when given.
pub fn flags(limit: Option<u32>) -> Shepherd {
    let s = Shepherd::new();
    let limit = limit
        .map(|l| format!("    limit: {l}\n"))
        .unwrap_or_default();
    let workflow = format!(
        "name: flag
description: A flag rolled out after the flag it depends on
variables:
  flag: {{required: true}}
  depends_on: {{default: \"\"}}
tracking:
  template: flag
stages:
  - id: prep
    label: \"flag::prep\"
    gates:
      - label: ready
      - after: {{workflow: flag, stage: global, where: {{flag: \"{{{{depends_on}}}}\"}}}}
    next: global
    exits: &back
      - to: rolled-back
        when: [{{label: rollback}}]
  - id: global
    label: \"flag::global\"
{limit}    gates:
      - label: released
    next: done
    exits: *back
  - id: done
    label: \"flag::done\"
    terminal: true
  - id: rolled-back
    label: \"flag::rolled-back\"
    terminal: true
"
    );
    let template = "---\ntitle: \"Roll out {{flag}}\"\n---\nRoll out `{{flag}}`.\n";
    crate::support::write_workflow(s.dir.path(), "flag", &workflow, &[("flag", template)]);
    std::fs::write(
        s.path("shepherd.toml"),
        "workflows = \"workflows\"\ntemplates = \"templates\"\n",
    )
    .unwrap();
    s
}

/// Starts a flag migration; its number.
pub fn start(s: &Shepherd, flag: &str, depends_on: Option<&str>) -> String {
    let mut args = vec!["start".to_string(), "flag".into(), "--var".into()];
    args.push(format!("flag={flag}"));
    if let Some(d) = depends_on {
        args.push("--var".into());
        args.push(format!("depends_on={d}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.json(&args)["ref"].as_u64().unwrap().to_string()
}

/// The migration's stage and its `after` gate's report (passed, detail).
pub fn after_gate(s: &Shepherd, n: &str) -> (String, bool, String) {
    let status = s.json(&["status", n]);
    let gate = status["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "after")
        .cloned()
        .unwrap_or_default();
    (
        status["stage"].as_str().unwrap_or_default().to_string(),
        gate["passed"].as_bool().unwrap_or(false),
        gate["detail"].as_str().unwrap_or_default().to_string(),
    )
}
