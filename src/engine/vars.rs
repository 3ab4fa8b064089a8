//! Variables and renders: the values a workflow gets, and every text of a stage rendered
//! before anything is written, so that a bad one fails with nothing half-written.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};

use super::PENDING_REF;
use crate::catalog::Catalog;
use crate::core::workflow::Workflow;
use crate::render::{Context, IssueRef};

/// Renders every text that `actions` need, so that a bad one fails before anything is
/// written.
pub fn check_renders(
    catalog: &Catalog,
    now: DateTime<Utc>,
    workflow: &Workflow,
    actions: &[crate::core::workflow::Action],
    vars: &BTreeMap<String, String>,
) -> Result<()> {
    use crate::core::workflow::Action;
    let pending = IssueRef {
        number: PENDING_REF.into(),
        ..Default::default()
    };
    for action in actions {
        let cx = Context {
            vars,
            migration: Some(pending.clone()),
            parent: Some(pending.clone()),
            issue: Some(pending.clone()),
            now,
        };
        match action {
            Action::Comment(text) => {
                catalog.renderer.render_text(
                    &format!("a comment of {}", workflow.name),
                    text,
                    &cx.to_value(),
                )?;
            }
            Action::CreateIssue {
                template,
                workflow: child,
            } => {
                let child_vars = match child.as_deref().map(|w| catalog.workflow(w)).transpose()? {
                    Some(w) => child_vars(w, vars),
                    None => vars.clone(),
                };
                let cx = Context {
                    vars: &child_vars,
                    ..cx
                };
                catalog.renderer.render(template, &cx.to_value())?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Everything `start` checks before it writes: variables, the tracking template, the first
/// stage's texts. Returns the variables with defaults filled in.
pub fn preflight(
    catalog: &Catalog,
    workflow: &Workflow,
    given: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>> {
    let vars = resolve_vars(workflow, given)?;
    let pending = IssueRef {
        number: PENDING_REF.into(),
        ..Default::default()
    };
    let cx = Context {
        vars: &vars,
        migration: Some(pending.clone()),
        parent: None,
        issue: Some(pending),
        now,
    };
    catalog
        .renderer
        .render(&workflow.tracking.template, &cx.to_value())?;
    check_renders(
        catalog,
        now,
        workflow,
        &workflow.first_stage().on_enter,
        &vars,
    )?;
    Ok(vars)
}

/// Checks the given variables against the workflow: unknown, missing, pattern-violating.
pub fn resolve_vars(
    workflow: &Workflow,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut problems = Vec::new();
    for name in given.keys() {
        if workflow.variable(name).is_none() {
            let names: Vec<&str> = workflow.variables.iter().map(|v| v.name.as_str()).collect();
            problems.push(format!(
                "unknown variable `{name}` (variables of {}: {})",
                workflow.name,
                names.join(", ")
            ));
        }
    }
    let mut vars = BTreeMap::new();
    for v in &workflow.variables {
        let value = match (given.get(&v.name), &v.default) {
            (Some(value), _) => value.clone(),
            (None, Some(default)) => default.clone(),
            (None, None) if v.required => {
                let hint = if v.description.is_empty() {
                    String::new()
                } else {
                    format!(": {}", v.description)
                };
                problems.push(format!(
                    "variable `{}` is required (--var {}=…){hint}",
                    v.name, v.name
                ));
                continue;
            }
            (None, None) => String::new(),
        };
        if let Some(re) = &v.pattern {
            if !re.is_match(&value) {
                problems.push(format!(
                    "variable `{}` = {:?} does not match its pattern `{}`",
                    v.name, value, re
                ));
                continue;
            }
        }
        vars.insert(v.name.clone(), value);
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(vars)
}

/// The variables a child workflow gets: the parent's, with the child's defaults filled in.
pub(crate) fn child_vars(
    workflow: &Workflow,
    parent: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut vars = parent.clone();
    for v in &workflow.variables {
        if !vars.contains_key(&v.name) {
            vars.insert(v.name.clone(), v.default.clone().unwrap_or_default());
        }
    }
    vars
}
