//! Who must act for a gate to hold, where a person must (`GateReport::waits_for`): the
//! approvers of an approval, someone to tick a checklist, set or remove a label, close a
//! child or merge a merge request. Gates that wait on time, releases, metrics, flags or a
//! child's own stages need no one: `None`.

use std::collections::BTreeMap;

use super::Gate;

/// "carol or dave to add ~\"dba-approved\"", or `None` when no person can make `gate`
/// hold.
pub fn waits_for(gate: &Gate, vars: &BTreeMap<String, String>) -> Option<String> {
    let on = |child: &Option<String>| {
        child
            .as_deref()
            .map(|c| format!(" on the {c} issue"))
            .unwrap_or_default()
    };
    match gate {
        Gate::Checklist(c) => {
            let what = match &c.section {
                Some(section) => format!("the items under *{section}*"),
                None => "the checklist".to_string(),
            };
            Some(format!(
                "whoever works on the migration to tick {what}{}",
                on(&c.child)
            ))
        }
        Gate::Label {
            name,
            child,
            present,
        } => {
            let verb = if *present { "add" } else { "remove" };
            Some(format!("someone to {verb} ~\"{name}\"{}", on(child)))
        }
        Gate::Approval { label, by, count } => {
            let who = match by.as_slice() {
                [] => "an approver".to_string(),
                [one] => one.clone(),
                [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
            };
            let how_many = if *count > 1 {
                format!("{count} of ")
            } else {
                String::new()
            };
            Some(format!(
                "{how_many}{who} to add ~\"{label}\", or to comment /shepherd approve"
            ))
        }
        Gate::MergeRequest { project, child, .. } => {
            let place = project
                .as_ref()
                .and_then(|p| p.resolve(vars).ok())
                .map(|p| format!(" in {p}"))
                .unwrap_or_default();
            Some(format!(
                "a developer to merge a merge request{place} that references the issue{}",
                on(child)
            ))
        }
        Gate::Closed { child } => Some(format!("someone to close the {child} issue")),
        Gate::Any(gates) => join(gates, vars, " or "),
        Gate::All(gates) => join(gates, vars, "; and "),
        Gate::Completed { .. }
        | Gate::MinDuration(_)
        | Gate::Release { .. }
        | Gate::Metric(_)
        | Gate::Flag { .. }
        | Gate::After(_) => None,
    }
}

fn join(gates: &[Gate], vars: &BTreeMap<String, String>, with: &str) -> Option<String> {
    let parts: Vec<String> = gates.iter().filter_map(|g| waits_for(g, vars)).collect();
    (!parts.is_empty()).then(|| parts.join(with))
}
