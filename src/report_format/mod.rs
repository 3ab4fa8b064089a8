//! The report in every format people use: plain text and Markdown (for terminals and the
//! summary issue), CSV (RFC 4180, for spreadsheets) and one self-contained HTML page with
//! inline SVG charts for laptops, phones and grey-scale printers. Pure functions of
//! `Report`; each format lives in its own module, the charts in `svg`, the time axis in
//! `ticks`.
//!
//! Every format says the same things the same way: workflows with no migration are folded
//! into one line, lead times are shown only for stages with finished stays, and a paused
//! or failing migration is marked ("paused by X: reason", "failing: error").

mod burndown;
mod csv;
mod html;
mod plan;
mod svg;
mod text;
mod ticks;

pub use self::csv::csv;
pub use self::html::{esc, href, html, html_with};
pub use self::plan::plan_text;
pub(crate) use self::svg::truncate;
pub use self::text::text;

use chrono::Duration;

use crate::core::duration::human;
use crate::core::report::{LeadTime, Report, Status};

/// Where the names of migrations link in the HTML page.
#[derive(Clone, Copy, Debug, Default)]
pub struct Links<'a> {
    /// The address of a page per migration, before its number (`/m/gitlab/`, escaped by
    /// the caller as a URL path): names link there, with a link to the issue beside. Without
    /// it names link to their issue, where it has a web address.
    pub pages: Option<&'a str>,
}

impl Links<'_> {
    /// The page of migration `number`, when there are pages.
    fn page(&self, number: u64) -> Option<String> {
        self.pages.map(|p| format!("{}{number}", html::esc(p)))
    }
}

/// A workflow's name and how many migrations stand in each of its stages, in order.
type Counts<'a> = (&'a str, Vec<(&'a str, u64)>);

/// Workflows with at least one migration in the report, with their stage counts in
/// workflow order; and the names of those with none.
fn workflows(report: &Report) -> (Vec<Counts<'_>>, Vec<&str>) {
    let mut busy = Vec::new();
    let mut empty = Vec::new();
    for (workflow, counts) in &report.stages {
        let counts: Vec<(&str, u64)> = counts
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let has_migrations = counts.iter().any(|(_, n)| *n > 0)
            || report
                .migrations
                .iter()
                .any(|m| m.status.workflow == *workflow);
        if has_migrations {
            busy.push((workflow.as_str(), counts));
        } else {
            empty.push(workflow.as_str());
        }
    }
    // The biggest first: a child workflow or a small one does not push the main one down.
    let open = |workflow: &str| {
        report
            .migrations
            .iter()
            .filter(|m| m.status.workflow == workflow && m.status.state == "open")
            .count()
    };
    busy.sort_by_key(|(workflow, _)| std::cmp::Reverse(open(workflow)));
    (busy, empty)
}

/// The lead times of a workflow's stages that have at least one finished stay.
fn lead_times<'a>(report: &'a Report, workflow: &str) -> Vec<&'a LeadTime> {
    report
        .lead_times
        .get(workflow)
        .map(|l| l.iter().filter(|l| l.samples > 0).collect())
        .unwrap_or_default()
}

/// A duration in seconds the way people say it ("2w 5d"), or a dash when unknown.
fn span(seconds: Option<i64>) -> String {
    seconds
        .map(|s| human(Duration::seconds(s)))
        .unwrap_or_else(|| "–".into())
}

/// The one line for workflows with no migrations, or `None` when every workflow has some.
fn folded(empty: &[&str]) -> Option<String> {
    (!empty.is_empty()).then(|| format!("No migrations yet: {}", empty.join(", ")))
}

/// An open migration's forecast in words: "2026-12-20 (90%: 2027-01-03)"; "unknown" when
/// it has none; a dash when it is done or closed.
fn forecast_cell(status: &Status) -> String {
    if status.state != "open" || status.stage.is_none() {
        return "–".into();
    }
    match &status.forecast {
        Some(f) => format!(
            "{} (90%: {})",
            f.expected.format("%Y-%m-%d"),
            f.p90.format("%Y-%m-%d")
        ),
        None => "unknown".into(),
    }
}
