//! `merge_request: {project, count, child}`: merge requests (GitHub: pull requests) that
//! reference the tracking issue (or a child) are merged — during this stay.

use std::collections::BTreeMap;

use super::{outcome, unasked, Context, Gate, GateOutcome};
use crate::core::facts::{MergeRequest, MrState, Question};
use crate::core::workflow::schema::Text;
use crate::core::workflow::{TextSpec, Validator, Variable};
use crate::core::yaml::{Node, NodeKind};
use schemars::JsonSchema;

impl Validator<'_> {
    pub(super) fn merge_request_gate(
        &mut self,
        value: &Node,
        variables: &[Variable],
    ) -> Option<Gate> {
        let mut project = None;
        let mut count = 1;
        let mut child = None;
        if !matches!(value.kind, NodeKind::Null) {
            let fields = self.map(value, "`merge_request`", &["project", "count", "child"])?;
            for (k, v) in fields {
                match k.as_str() {
                    Some("project") => project = self.project_spec(v, variables),
                    Some("count") => count = self.count(v).unwrap_or(1),
                    Some("child") => child = self.string(v, "`child`"),
                    _ => {}
                }
            }
        }
        Some(Gate::MergeRequest {
            project,
            count,
            child,
        })
    }
}

pub(super) fn describe(
    project: Option<&TextSpec>,
    count: usize,
    child: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> String {
    let what = if count == 1 {
        "a merge request".to_string()
    } else {
        format!("{count} merge requests")
    };
    let whose = match child {
        Some(c) => format!("the {c} issue"),
        None => "the tracking issue".to_string(),
    };
    let place = project
        .map(|p| format!(" in {}", super::fields::project_name(p, vars)))
        .unwrap_or_default();
    format!("{what}{place} that references {whose} is merged")
}

/// The issue a `merge_request` gate looks at: the tracking issue, or child `child`'s.
pub fn mr_issue(child: Option<&str>, cx: &Context) -> Result<u64, String> {
    match child {
        None => Ok(cx.snapshot.issue.number),
        Some(t) => cx
            .snapshot
            .child(t)
            .map(|c| c.issue.number)
            .ok_or_else(|| format!("no {t} issue yet")),
    }
}

/// The question the gate asks: the merge requests of its issue (in its project).
pub(super) fn question(
    project: Option<&TextSpec>,
    child: Option<&str>,
    cx: &Context,
) -> Option<Question> {
    let issue = mr_issue(child, cx).ok()?;
    // A project that cannot be resolved fails the gate anyway: look anywhere.
    let projects = match project.map(|p| p.resolve(cx.vars)) {
        Some(Ok(p)) => vec![p.to_lowercase()],
        _ => Vec::new(),
    };
    Some(Question::MergeRequests { issue, projects })
}

pub(super) fn evaluate(
    project: Option<&TextSpec>,
    count: usize,
    child: Option<&str>,
    cx: &Context,
) -> GateOutcome {
    let issue = match mr_issue(child, cx) {
        Ok(n) => n,
        Err(e) => return outcome(false, e),
    };
    let project = match project.map(|p| p.resolve(cx.vars)).transpose() {
        Ok(p) => p,
        Err(e) => return outcome(false, e),
    };
    let project = project.as_deref();
    let list = match cx.snapshot.facts.merge_requests.get(&issue) {
        None => return unasked("merge requests", cx),
        Some(Err(e)) => return outcome(false, format!("merge requests of #{issue}: {e}")),
        Some(Ok(list)) => list,
    };
    let mut relevant: Vec<_> = list
        .iter()
        .filter(|mr| project.is_none_or(|p| mr.project.eq_ignore_ascii_case(p)))
        .collect();
    relevant.sort_by_key(|mr| (mr.project.clone(), mr.number));
    // A merge before the last rollback is no evidence of the current attempt.
    let since = cx.snapshot.evidence_since();
    let counts = |mr: &&&MergeRequest| {
        mr.state == MrState::Merged
            && since.is_none_or(|since| mr.merged_at.is_some_and(|at| at > since))
    };
    let merged = relevant.iter().filter(counts).count();
    let place = project.map(|p| format!(" in {p}")).unwrap_or_default();
    if relevant.is_empty() {
        return outcome(
            false,
            format!("no merge request{place} references #{issue}"),
        );
    }
    let each: Vec<String> = relevant
        .iter()
        .map(|mr| match (mr.state, mr.merged_at) {
            (MrState::Merged, _) if !counts(&mr) => {
                format!("{} merged before the rollback", mr.reference)
            }
            (MrState::Merged, Some(at)) => {
                format!("{} merged {}", mr.reference, at.format("%Y-%m-%d"))
            }
            (MrState::Merged, None) => format!("{} merged", mr.reference),
            (MrState::Open, _) => format!("{} open", mr.reference),
            (MrState::Closed, _) => format!("{} closed", mr.reference),
        })
        .collect();
    let need = if count > 1 {
        format!(" ({merged} of {count} merged)")
    } else {
        String::new()
    };
    outcome(merged >= count, format!("{}{need}", each.join(", ")))
}

/// The gate's shape in a workflow file, for `shepherd schema`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "MergeRequest")]
pub(crate) struct Raw {
    /// `group/project` (default: any)
    #[serde(default)]
    project: Option<Text>,
    #[serde(default)]
    #[schemars(range(min = 1))]
    count: Option<u64>,
    /// The child issue's template whose merge requests count
    #[serde(default)]
    child: Option<Text>,
}
