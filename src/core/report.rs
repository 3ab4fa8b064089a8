//! The status and report model: what the CLI prints for `status`, `history` and `report`,
//! built from snapshots alone.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::duration;
use super::gate::{self, GateReport};
use super::machine;
use super::snapshot::Snapshot;
use super::workflow::Workflow;

/// One migration as `status REF --format json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    #[serde(rename = "ref")]
    pub number: u64,
    pub title: String,
    pub url: String,
    pub workflow: String,
    pub stage: Option<String>,
    pub label: Option<String>,
    pub state: String,
    pub entered_at: DateTime<Utc>,
    pub gates: Vec<GateReport>,
    pub children: Vec<ChildStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChildStatus {
    #[serde(rename = "ref")]
    pub number: u64,
    pub template: String,
    pub stage: Option<String>,
    pub state: String,
}

/// One transition as `history` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    pub from: Option<String>,
    pub to: String,
    pub at: DateTime<Utc>,
    pub by: String,
    pub reason: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub generated_at: DateTime<Utc>,
    /// Per workflow, per stage (in workflow order), how many migrations stand there.
    pub stages: serde_json::Map<String, serde_json::Value>,
    pub migrations: Vec<Status>,
}

/// The status of one migration at `now`: its stage, the gates of that stage, its children.
pub fn status(
    workflow: &Workflow,
    snapshot: &Snapshot,
    parent: Option<u64>,
    now: DateTime<Utc>,
) -> Status {
    let labels = &snapshot.issue.labels;
    let stage = workflow.stages_labelled(labels).into_iter().next();
    let entered_at = stage
        .map(|s| snapshot.entered_at(&s.id, &s.label))
        .unwrap_or(snapshot.issue.created_at);
    let gates = match stage {
        Some(s) if !s.terminal => {
            let cx = gate::Context {
                snapshot,
                labels,
                entered_at,
                now,
                vars: &snapshot.vars,
            };
            s.gates.iter().map(|g| gate::report(g, &cx)).collect()
        }
        _ => Vec::new(),
    };
    let children = snapshot
        .children
        .iter()
        .map(|c| ChildStatus {
            number: c.issue.number,
            template: c.template.clone(),
            stage: c.stage.as_ref().map(|s| s.id.clone()),
            state: match (&c.stage, c.issue.open) {
                (Some(s), _) if s.terminal => "completed",
                (_, true) => "open",
                (_, false) => "closed",
            }
            .to_string(),
        })
        .collect();
    Status {
        number: snapshot.issue.number,
        title: snapshot.issue.title.clone(),
        url: snapshot.issue.url.clone(),
        workflow: workflow.name.clone(),
        stage: stage.map(|s| s.id.clone()),
        label: stage.map(|s| s.label.clone()),
        state: machine::state(workflow, labels, snapshot.issue.open).to_string(),
        entered_at,
        gates,
        children,
        parent,
        history: None,
    }
}

/// The transitions of a migration, oldest first.
pub fn history(snapshot: &Snapshot) -> Vec<HistoryEntry> {
    snapshot
        .transitions
        .iter()
        .map(|t| HistoryEntry {
            from: t.from.clone(),
            to: t.to.clone(),
            at: t.at,
            by: t.by.clone(),
            reason: t.reason.clone(),
        })
        .collect()
}

/// Builds the report from statuses (each with its history).
pub fn build(
    generated_at: DateTime<Utc>,
    workflows: &[&Workflow],
    migrations: Vec<Status>,
) -> Report {
    let mut stages = serde_json::Map::new();
    for w in workflows {
        let mut counts = serde_json::Map::new();
        for s in &w.stages {
            let n = migrations
                .iter()
                .filter(|m| m.workflow == w.name && m.stage.as_deref() == Some(s.id.as_str()))
                .count();
            counts.insert(s.id.clone(), n.into());
        }
        stages.insert(w.name.clone(), counts.into());
    }
    Report {
        generated_at,
        stages,
        migrations,
    }
}

/// What holds a migration up, in one line.
pub fn blockers(status: &Status) -> String {
    let failing: Vec<String> = status
        .gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| format!("{}: {}", g.gate, g.detail))
        .collect();
    if failing.is_empty() {
        match status.state.as_str() {
            "completed" => "done".to_string(),
            "closed" => "closed".to_string(),
            _ => "ready to advance".to_string(),
        }
    } else {
        failing.join("; ")
    }
}

/// The report as plain text or Markdown.
pub fn render_text(report: &Report, markdown: bool) -> String {
    let mut out = String::new();
    let now = report.generated_at;
    if markdown {
        out.push_str(&format!(
            "# Migration report\n\nGenerated {}.\n\n",
            now.format("%Y-%m-%d %H:%M UTC")
        ));
    } else {
        out.push_str(&format!(
            "Migration report, {}\n\n",
            now.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    for (workflow, counts) in &report.stages {
        let counts = counts.as_object().cloned().unwrap_or_default();
        if markdown {
            out.push_str(&format!(
                "## {workflow}\n\n| stage | migrations |\n|---|---:|\n"
            ));
            for (stage, n) in &counts {
                out.push_str(&format!("| {stage} | {n} |\n"));
            }
            out.push('\n');
        } else {
            let line: Vec<String> = counts.iter().map(|(s, n)| format!("{s}={n}")).collect();
            out.push_str(&format!("{workflow}: {}\n", line.join(" ")));
        }
    }
    let by_workflow: BTreeMap<&str, Vec<&Status>> =
        report.migrations.iter().fold(BTreeMap::new(), |mut m, s| {
            m.entry(s.workflow.as_str()).or_default().push(s);
            m
        });
    if markdown {
        out.push_str("## Migrations\n\n| migration | workflow | stage | state | in stage | blocked by |\n|---|---|---|---|---|---|\n");
    } else {
        out.push('\n');
    }
    for statuses in by_workflow.values() {
        for s in statuses {
            let stage = s.stage.as_deref().unwrap_or("-");
            let time = duration::human(now - s.entered_at);
            let blockers = blockers(s);
            if markdown {
                out.push_str(&format!(
                    "| [#{} {}]({}) | {} | {stage} | {} | {time} | {} |\n",
                    s.number,
                    s.title.replace('|', "\\|"),
                    s.url,
                    s.workflow,
                    s.state,
                    blockers.replace('|', "\\|")
                ));
            } else {
                out.push_str(&format!(
                    "#{:<5} {:<22} {:<26} {:<10} {:>8}  {}\n",
                    s.number, s.workflow, stage, s.state, time, blockers
                ));
            }
        }
    }
    out
}
