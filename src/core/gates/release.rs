//! `release: {project, count, pattern}`: releases of a project (default: the tracker's
//! own) published during this stay, tags matching `pattern`.

use std::collections::BTreeMap;

use regex::Regex;

use super::{outcome, unasked, Context, Gate, GateOutcome};
use crate::core::facts::Question;
use crate::core::workflow::schema::Text;
use crate::core::workflow::{TextSpec, Validator, Variable};
use crate::core::yaml::{Node, NodeKind};
use schemars::JsonSchema;

impl Validator<'_> {
    pub(super) fn release_gate(&mut self, value: &Node, variables: &[Variable]) -> Option<Gate> {
        let mut project = None;
        let mut count = 1;
        let mut pattern = None;
        if !matches!(value.kind, NodeKind::Null) {
            let fields = self.map(value, "`release`", &["project", "count", "pattern"])?;
            for (k, v) in fields {
                match k.as_str() {
                    Some("project") => project = self.project_spec(v, variables),
                    Some("count") => count = self.count(v).unwrap_or(1),
                    Some("pattern") => {
                        let text = self.string(v, "`pattern`")?;
                        match Regex::new(&text) {
                            Ok(_) => pattern = Some(text),
                            Err(e) => self.problem(
                                v.loc,
                                format!(
                                    "bad regex in `pattern`: {}",
                                    crate::core::workflow::one_line(&e.to_string())
                                ),
                            ),
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(Gate::Release {
            project,
            count,
            pattern,
        })
    }
}

pub(super) fn describe(
    project: Option<&TextSpec>,
    count: usize,
    pattern: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> String {
    let what = if count == 1 {
        "a release".to_string()
    } else {
        format!("{count} releases")
    };
    let of = match project {
        None => " of this project".to_string(),
        Some(p) => format!(" of {}", super::fields::project_name(p, vars)),
    };
    let tags = pattern
        .map(|p| format!(" (tags matching `{p}`)"))
        .unwrap_or_default();
    format!("{what}{of}{tags} published since entering this stage")
}

/// The project a `release` gate looks at (`None`: the tracker's own).
pub fn release_project(project: Option<&TextSpec>, cx: &Context) -> Result<Option<String>, String> {
    project.map(|p| p.resolve(cx.vars)).transpose()
}

/// The question the gate asks: the releases of its project.
pub(super) fn question(project: Option<&TextSpec>, cx: &Context) -> Option<Question> {
    release_project(project, cx)
        .ok()
        .map(|project| Question::Releases { project })
}

pub(super) fn evaluate(
    project: Option<&TextSpec>,
    count: usize,
    pattern: Option<&str>,
    cx: &Context,
) -> GateOutcome {
    let project = match release_project(project, cx) {
        Ok(p) => p,
        Err(e) => return outcome(false, e),
    };
    let of = project
        .as_deref()
        .map(|p| format!(" of {p}"))
        .unwrap_or_default();
    let list = match cx.snapshot.facts.releases.get(&project) {
        None => return unasked(&format!("releases{of}"), cx),
        Some(Err(e)) => return outcome(false, format!("releases{of}: {e}")),
        Some(Ok(list)) => list,
    };
    let re = match pattern.map(regex::Regex::new).transpose() {
        Ok(re) => re,
        Err(e) => return outcome(false, format!("bad `pattern`: {e}")),
    };
    let mut since: Vec<_> = list
        .iter()
        .filter(|r| r.released_at > cx.entered_at && r.released_at <= cx.now)
        .filter(|r| re.as_ref().is_none_or(|re| re.is_match(&r.tag)))
        .collect();
    since.sort_by_key(|r| r.released_at);
    let tags: Vec<&str> = since.iter().map(|r| r.tag.as_str()).collect();
    let shown = if tags.is_empty() {
        String::new()
    } else {
        format!(": {}", tags.join(", "))
    };
    // Without the label history the stage's start is not known yet: counted from an
    // earlier moment (an upper bound), and said so.
    let from = if cx.snapshot.history_unread {
        format!(
            "since {} at the earliest (when the stage began is read once the other gates hold)",
            cx.entered_at.format("%Y-%m-%d %H:%M UTC")
        )
    } else {
        format!("since {}", cx.entered_at.format("%Y-%m-%d %H:%M UTC"))
    };
    outcome(
        since.len() >= count,
        format!("{} of {count} releases{of} {from}{shown}", since.len()),
    )
}

/// The gate's shape in a workflow file, for `shepherd schema`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "Release")]
pub(crate) struct Raw {
    /// `group/project` (default: the tracker's own)
    #[serde(default)]
    project: Option<Text>,
    #[serde(default)]
    #[schemars(range(min = 1))]
    count: Option<u64>,
    /// A regular expression tag names must match
    #[serde(default)]
    pattern: Option<String>,
}
