//! What the integration tests and the benchmarks seed, made with the library: the stages
//! that gitaly migrations are spread over, checklists ticked, statuses built by hand for a
//! report that needs no tracker. The benchmarks include this file by its path.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use shepherd::core::checklist;
use shepherd::core::report::{HistoryEntry, Status};
use shepherd::core::workflow::{Gate, Stage, Workflow};

/// The stages of the shipped gitaly-migration that seeded migrations are spread over, one
/// in 8 each.
pub const SPREAD: [&str; 8] = [
    "selection",
    "migration-analysis",
    "rpc-design",
    "server-implementation",
    "client-implementation",
    "ready-for-testing",
    "opt-in",
    "opt-out",
];

/// The `--var`s of a gitaly migration as the tests and benchmarks start it.
pub const GITALY_VARS: &[&str] = &[
    "--var",
    "feature_flag=GITALY_FIND_COMMIT",
    "--var",
    "grpc_service=CommitService",
    "--var",
    "grpc_method=FindCommit",
    "--var",
    "gitaly_version=v1.2.3",
    "--var",
    "gitlab_version=v11.4",
];

/// `body` with every item under `section` ticked.
pub fn ticked(body: &str, section: &str) -> String {
    let mut out = body.to_string();
    for item in checklist::parse(body)
        .iter()
        .filter(|i| i.in_section(section) && !i.done())
    {
        out = checklist::set(&out, item, true);
    }
    out
}

/// The section of a stage's own checklist gate (on its own or in an `any`).
pub fn section(stage: &Stage) -> Option<&str> {
    stage.gates.iter().find_map(section_of)
}

/// The first own checklist section in `gate`, borrowed from it.
fn section_of(gate: &Gate) -> Option<&str> {
    match gate {
        Gate::Checklist(c) if c.child.is_none() => c.section.as_deref(),
        Gate::Any(gates) | Gate::All(gates) => gates.iter().find_map(section_of),
        _ => None,
    }
}

/// The history of a migration that entered the first `depth` stages of `w` in turn, the
/// k-th at `at(k)`, each moved by shepherd.
pub fn walked(
    w: &Workflow,
    depth: usize,
    at: impl Fn(usize) -> DateTime<Utc>,
) -> Vec<HistoryEntry> {
    (0..depth)
        .map(|k| HistoryEntry {
            from: (k > 0).then(|| w.stages[k - 1].id.clone()),
            to: w.stages[k].id.clone(),
            at: at(k),
            by: "shepherd".into(),
            reason: None,
        })
        .collect()
}

/// Migration #number of `w`, in the stage its `history` ends in since then (`completed`
/// if that stage is terminal, else `open`), with no gates, children, parent, pause,
/// failure or wait.
pub fn status(
    w: &Workflow,
    number: u64,
    title: String,
    url: String,
    history: Vec<HistoryEntry>,
) -> Status {
    let last = history.last().expect("a history");
    let stage = w
        .stages
        .iter()
        .find(|s| s.id == last.to)
        .expect("the history ends in a stage of the workflow");
    Status {
        number,
        title,
        url,
        workflow: w.name.clone(),
        stage: Some(stage.id.clone()),
        label: Some(stage.label.clone()),
        state: if stage.terminal { "completed" } else { "open" }.into(),
        entered_at: last.at,
        history: Some(history),
        ..Status::default()
    }
}
