//! Checklist gates against the templates they read. A `checklist` gate looks at the
//! tracking issue (rendered from the workflow's tracking template) or, with `child: T`, at
//! the child made from template T. A `section` that no heading of that template contains,
//! or a `require: N` larger than the task items under it, is a gate that can never hold:
//! the migration would wait forever. Both are refused where the file writes them, as far
//! as the template can tell before it is rendered (`core::outline`: headings or items that
//! values or block helpers make are never held against the file).
//!
//! A workflow that runs as a child (`create_issue: {template: T, workflow: W}`) reads T,
//! which may not be W's own tracking template: `check_child_sections` holds W's gates
//! against T too, once the whole catalogue is loaded.

use std::collections::{BTreeMap, BTreeSet};

use super::load::Validator;
use super::{ChecklistSite, Known, Problem, Require, Workflow};
use crate::core::outline::{Count, Outline};
use crate::core::yaml::Loc;

/// The most headings a message lists.
const LISTED_HEADINGS: usize = 12;

impl Validator<'_> {
    /// Checks every checklist gate read so far; `tracking` is the workflow's tracking
    /// template, when it has one.
    pub(super) fn check_sections(&mut self, tracking: Option<&str>, known: &Known) {
        let mut seen = BTreeSet::new();
        let sites = std::mem::take(&mut self.checklists);
        for site in &sites {
            let Some(template) = site.gate.child.as_deref().or(tracking) else {
                continue;
            };
            // A gate a YAML alias repeats is reported once.
            let at = |l: Loc| (l.line, l.column);
            let key = (at(site.section_loc), site.require_loc.map(at), template);
            if !seen.insert(key) {
                continue;
            }
            let Some(outline) = known.outlines.get(template) else {
                continue;
            };
            for (loc, message) in site_problems(site, template, outline) {
                self.problem(loc, message);
            }
        }
        self.checklists = sites;
    }
}

/// The gates of each workflow that runs as a child, held against the template its parent
/// opens it with, where that is not its own tracking template (which `load` checked).
/// `files` maps each workflow to its file.
pub fn check_child_sections(
    workflows: &BTreeMap<String, Workflow>,
    files: &BTreeMap<String, String>,
    outlines: &BTreeMap<String, Outline>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for parent in workflows.values() {
        for site in &parent.create_sites {
            let Some(child) = site.workflow.as_deref().and_then(|c| workflows.get(c)) else {
                continue;
            };
            if child.tracking.template == site.template
                || !seen.insert((child.name.clone(), site.template.clone()))
            {
                continue;
            }
            let Some(outline) = outlines.get(&site.template) else {
                continue;
            };
            for gate in child
                .checklist_sites
                .iter()
                .filter(|g| g.gate.child.is_none())
            {
                for (loc, message) in site_problems(gate, &site.template, outline) {
                    out.push(Problem {
                        file: files.get(&child.name).cloned().unwrap_or_default(),
                        loc,
                        message: format!(
                            "{message} (workflow `{}` opens `{}` issues from template `{}`)",
                            parent.name, child.name, site.template
                        ),
                    });
                }
            }
        }
    }
    out
}

/// What is wrong with `site` against `outline`, the outline of `template`.
fn site_problems(site: &ChecklistSite, template: &str, outline: &Outline) -> Vec<(Loc, String)> {
    let gate = &site.gate;
    let section = gate.section.as_deref();
    match outline.count(section, &gate.items) {
        Count::Unknown => Vec::new(),
        Count::NoHeading(headings) => vec![(
            site.section_loc,
            format!(
                "section \"{}\" matches no heading of template `{template}` ({}): the \
                 checklist gate could never hold (a section matches the headings that contain \
                 it, in any case)",
                section.unwrap_or_default(),
                listed(&headings)
            ),
        )],
        Count::Items(count) => match (gate.require, site.require_loc) {
            (Require::AtLeast(n), Some(loc)) if n > count => {
                let matching = if gate.items.is_empty() {
                    String::new()
                } else {
                    let patterns: Vec<String> =
                        gate.items.iter().map(|p| format!("\"{p}\"")).collect();
                    format!(" matching {}", patterns.join(" or "))
                };
                let place = match section {
                    Some(s) => format!("under \"{s}\" in"),
                    None => "in".to_string(),
                };
                let items = if count == 1 { "item" } else { "items" };
                vec![(
                    loc,
                    format!(
                        "`require: {n}` is more than the {count} task {items}{matching} {place} \
                         template `{template}`: the checklist gate could never hold"
                    ),
                )]
            }
            _ => Vec::new(),
        },
    }
}

/// The headings of a template for a message: "headings: A, B, …" or "it has none".
fn listed(headings: &[String]) -> String {
    if headings.is_empty() {
        return "it has no headings".into();
    }
    let mut names: Vec<String> = headings
        .iter()
        .take(LISTED_HEADINGS)
        .map(|h| format!("\"{h}\""))
        .collect();
    if headings.len() > LISTED_HEADINGS {
        names.push(format!("and {} more", headings.len() - LISTED_HEADINGS));
    }
    format!("its headings: {}", names.join(", "))
}
