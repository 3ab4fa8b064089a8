//! What a gate asks for, in one line a person reads (`status`, `show`, the audit comment),
//! with a migration's variable values filled in: one function per kind of gate.

use std::collections::BTreeMap;

use super::{ChecklistGate, DurationSpec, Gate, MetricGate, Require, TextSpec, Threshold};
use crate::core::duration;

type Vars = BTreeMap<String, String>;

impl Gate {
    /// A one-line description with a migration's variable values filled in (a variable
    /// missing from `vars`, or not a duration, shows its default).
    pub fn describe_with(&self, vars: &Vars) -> String {
        match self {
            Gate::Checklist(c) => checklist(c),
            Gate::Label {
                name,
                child,
                present,
            } => {
                let is = if *present { "is" } else { "is not" };
                format!("label ~\"{name}\" {is} set{}", of_child(child))
            }
            Gate::Closed { child } => format!("the {child} issue is closed"),
            Gate::Completed { child, stage: None } => {
                format!("the {child} issue's workflow is complete")
            }
            Gate::Completed {
                child,
                stage: Some(s),
            } => format!("the {child} issue's workflow reached {s}"),
            Gate::MinDuration(spec) => min_duration(spec, vars),
            Gate::Approval { label, by, count } => {
                let who = by.join(", ");
                if *count > 1 {
                    format!("{count} of {who} approve with ~\"{label}\"")
                } else {
                    format!("~\"{label}\" set by one of {who}")
                }
            }
            Gate::MergeRequest {
                project,
                count,
                child,
            } => merge_request(project.as_ref(), *count, child.as_deref(), vars),
            Gate::Release {
                project,
                count,
                pattern,
            } => release(project.as_ref(), *count, pattern.as_deref(), vars),
            Gate::Metric(m) => metric(m, vars),
            Gate::Flag {
                name,
                environment,
                enabled,
                percentage,
            } => flag(name, environment.as_deref(), *enabled, *percentage, vars),
            Gate::Any(gates) => format!("any of: {}", each(gates, vars)),
            Gate::All(gates) => format!("all of: {}", each(gates, vars)),
        }
    }
}

fn of_child(child: &Option<String>) -> String {
    match child {
        Some(c) => format!(" of the {c} issue"),
        None => String::new(),
    }
}

fn each(gates: &[Gate], vars: &Vars) -> String {
    gates
        .iter()
        .map(|g| g.describe_with(vars))
        .collect::<Vec<_>>()
        .join("; ")
}

fn checklist(c: &ChecklistGate) -> String {
    let which = match c.require {
        Require::All => "all".to_string(),
        Require::AtLeast(n) => format!("at least {n}"),
    };
    let filter = if c.items.is_empty() {
        String::new()
    } else {
        let items: Vec<String> = c.items.iter().map(|i| format!("\"{i}\"")).collect();
        format!(" matching {}", items.join(" or "))
    };
    match &c.section {
        Some(s) => format!(
            "{which} items{filter} under \"{s}\"{} are done",
            of_child(&c.child)
        ),
        None => format!("{which} items{filter}{} are done", of_child(&c.child)),
    }
}

fn min_duration(spec: &DurationSpec, vars: &Vars) -> String {
    match spec {
        DurationSpec::Fixed(d) => format!("at least {} in this stage", duration::human(*d)),
        DurationSpec::Variable { name, default } => {
            let value = vars.get(name).and_then(|v| duration::parse(v).ok());
            match value.or(*default) {
                Some(d) => format!("at least {} in this stage", duration::human(d)),
                None => format!("at least the migration's `{name}` in this stage"),
            }
        }
    }
}

/// A project named in the file or by a variable: its value, else which variable.
fn project_name(spec: &TextSpec, vars: &Vars) -> String {
    match spec {
        TextSpec::Fixed(p) => p.clone(),
        TextSpec::Variable { name, .. } => spec
            .resolve(vars)
            .unwrap_or_else(|_| format!("the migration's `{name}`")),
    }
}

fn merge_request(
    project: Option<&TextSpec>,
    count: usize,
    child: Option<&str>,
    vars: &Vars,
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
        .map(|p| format!(" in {}", project_name(p, vars)))
        .unwrap_or_default();
    format!("{what}{place} that references {whose} is merged")
}

fn release(project: Option<&TextSpec>, count: usize, pattern: Option<&str>, vars: &Vars) -> String {
    let what = if count == 1 {
        "a release".to_string()
    } else {
        format!("{count} releases")
    };
    let of = match project {
        None => " of this project".to_string(),
        Some(p) => format!(" of {}", project_name(p, vars)),
    };
    let tags = pattern
        .map(|p| format!(" (tags matching `{p}`)"))
        .unwrap_or_default();
    format!("{what}{of}{tags} published since entering this stage")
}

fn metric(m: &MetricGate, vars: &Vars) -> String {
    let query = crate::core::promql::render(&m.query, vars).unwrap_or(m.query.clone());
    let threshold = match (&m.threshold, m.threshold.resolve(vars)) {
        (_, Ok(x)) => x.to_string(),
        (Threshold::Variable { name, .. }, Err(_)) => format!("the migration's `{name}`"),
        (Threshold::Fixed(x), Err(_)) => x.to_string(),
    };
    let window = match m.window {
        Some(d) => format!(" for {}", duration::human_short(d)),
        None => String::new(),
    };
    let side = m.side.word();
    if query.trim().is_empty() {
        return "no metric (its query is empty)".to_string();
    }
    match query
        .trim()
        .strip_prefix("{{")
        .and_then(|q| q.strip_suffix("}}"))
    {
        // Not known without a migration: the variable may be left empty.
        Some(name) => format!(
            "the migration's `{}` query, when set, {side} {threshold}{window}",
            name.trim()
        ),
        None => format!("`{query}` {side} {threshold}{window}"),
    }
}

fn flag(
    name: &TextSpec,
    environment: Option<&str>,
    enabled: Option<bool>,
    percentage: Option<f64>,
    vars: &Vars,
) -> String {
    let name = match name.resolve(vars) {
        Ok(n) => format!("`{n}`"),
        Err(_) => match name {
            TextSpec::Variable { name, .. } => format!("the migration's `{name}`"),
            TextSpec::Fixed(n) => format!("`{n}`"),
        },
    };
    let mut want = Vec::new();
    if let Some(on) = enabled {
        want.push(if on { "on" } else { "off" }.to_string());
    }
    if let Some(p) = percentage {
        want.push(format!("at {p}%"));
    }
    let env = environment.map(|e| format!(" in {e}")).unwrap_or_default();
    format!("feature flag {name} is {}{env}", want.join(" and "))
}
