//! The dashboard's other views, from the last refresh (no tracker request): the report
//! filtered by `?workflow=&stage=&label=&state=`, and one migration's own page at
//! `/m/{tracker}/{ref}` — its gates and who must act, pause, failure, history, children,
//! links to its issue. Read-only: people act with comment commands on the tracker, which
//! knows who they are.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::core::report::{Report, Row};
use crate::render::urlencode;
use crate::report_format::{esc, html_with, Links};

/// The filters the dashboard takes, as the query gave them.
pub struct Filters<'q> {
    workflow: Option<&'q str>,
    stage: Option<&'q str>,
    label: Option<&'q str>,
    state: Option<&'q str>,
}

/// The states `?state=` picks.
pub const STATES: [&str; 4] = ["paused", "failing", "overdue", "stale"];

impl<'q> Filters<'q> {
    /// The filters of `query`, or `None` when it has none; `Err` names a state not known.
    pub fn of(query: &'q HashMap<String, String>) -> Result<Option<Filters<'q>>, String> {
        let get = |k: &str| query.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let f = Filters {
            workflow: get("workflow"),
            stage: get("stage"),
            label: get("label"),
            state: get("state"),
        };
        if let Some(state) = f.state {
            if !STATES.contains(&state) {
                return Err(format!("state `{state}` is none of {}", STATES.join(", ")));
            }
        }
        let any =
            f.workflow.is_some() || f.stage.is_some() || f.label.is_some() || f.state.is_some();
        Ok(any.then_some(f))
    }

    fn keeps(&self, row: &Row) -> bool {
        let s = &row.status;
        self.workflow.is_none_or(|w| s.workflow == w)
            && self.stage.is_none_or(|st| s.stage.as_deref() == Some(st))
            && self.label.is_none_or(|l| s.labels.iter().any(|x| x == l))
            && self.state.is_none_or(|state| match state {
                "paused" => s.paused,
                "failing" => s.failing.is_some(),
                "stale" => row.stale,
                "overdue" => s.overdue,
                _ => false,
            })
    }

    /// What the filters keep, in words, for the page's heading.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("workflow", self.workflow),
            ("stage", self.stage),
            ("label", self.label),
            ("state", self.state),
        ] {
            if let Some(v) = value {
                parts.push(format!("{name} {v}"));
            }
        }
        parts.join(", ")
    }
}

/// The report's page of `tracker` with only the migrations `filters` keep.
pub fn filtered(report: &Report, filters: &Filters, tracker: &str) -> String {
    let pages = pages_of(tracker);
    let mut report = report.clone();
    report.migrations.retain(|r| filters.keeps(r));
    let html = html_with(
        &report,
        &Links {
            pages: Some(&pages),
        },
    );
    let note = format!(
        "<p class=\"meta\">Showing {} migration(s) with {} · <a href=\"/?tracker={}\">show all</a></p>\n",
        report.migrations.len(),
        esc(&filters.describe()),
        esc(&urlencode(tracker))
    );
    html.replacen("</header>\n", &format!("</header>\n{note}"), 1)
}

/// One migration's page from its status JSON (as `/api/migrations/{tracker}/{ref}` gives
/// it); `pages` is the address of the tracker's migration pages before a number.
pub fn migration(status: &Value, tracker: &str, pages: &str) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let number = status["ref"].as_u64().unwrap_or_default();
    let title = format!("#{number} {}", text(&status["title"]));
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{t}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;line-height:1.4}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.3rem .5rem;text-align:left;vertical-align:top}}.no{{color:#b00}}</style>\n</head>\n<body>\n<p><a href=\"/?tracker={tr}\">← every migration</a></p>\n<h1>{t}</h1>\n",
        t = esc(&title),
        tr = esc(&urlencode(tracker)),
    );
    let url = text(&status["url"]);
    if let Some(link) = crate::report_format::href(&url) {
        let _ = writeln!(
            out,
            "<p><a class=\"issue-link\" href=\"{link}\">the issue on the tracker</a></p>"
        );
    }
    let _ = writeln!(
        out,
        "<table class=\"facts\"><tr><th>Workflow</th><td>{}</td></tr><tr><th>Stage</th><td>{}</td></tr><tr><th>State</th><td>{}</td></tr><tr><th>In stage since</th><td>{}</td></tr><tr><th>Tracker</th><td>{}</td></tr></table>",
        esc(&text(&status["workflow"])),
        esc(status["stage"].as_str().unwrap_or("-")),
        esc(&text(&status["state"])),
        esc(&text(&status["entered_at"])),
        esc(tracker)
    );
    if status["paused"].as_bool() == Some(true) {
        let by = status["paused_by"]
            .as_str()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default();
        let why = status["paused_reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let _ = writeln!(out, "<p class=\"paused\"><b>Paused{}</b>{} — it moves on after <code>/shepherd resume</code> or <code>shepherd resume {number}</code>.</p>", esc(&by), esc(&why));
    }
    if let Some(error) = status["failing"].as_str() {
        let _ = writeln!(
            out,
            "<p class=\"failing no\"><b>Failing</b>: {}</p>",
            esc(error)
        );
    }
    out.push_str(&gates(status));
    out.push_str(&history(status));
    out.push_str(&children(status, pages));
    out.push_str("</body>\n</html>\n");
    out
}

fn gates(status: &Value) -> String {
    let Some(gates) = status["gates"].as_array().filter(|g| !g.is_empty()) else {
        return String::new();
    };
    let mut out = String::from("<h2>Gates</h2>\n<table class=\"gates\"><tr><th></th><th>Gate</th><th>Detail</th><th>Who must act</th></tr>\n");
    for g in gates {
        let passed = g["passed"].as_bool() == Some(true);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if passed {
                "✔"
            } else {
                "<span class=\"no\">✘</span>"
            },
            esc(g["description"].as_str().unwrap_or_default()),
            esc(g["detail"].as_str().unwrap_or_default()),
            esc(g["waits_for"].as_str().unwrap_or(if passed {
                ""
            } else {
                "no one: shepherd waits"
            }))
        );
    }
    out.push_str("</table>\n");
    out
}

/// Its transitions and rollbacks (`history`) with its pauses, resumes and comment
/// commands (`events`), oldest first.
fn history(status: &Value) -> String {
    let list = |key: &str| status[key].as_array().cloned().unwrap_or_default();
    let mut rows: Vec<(String, String, String, String)> = list("history")
        .iter()
        .map(|h| {
            let from = h["from"].as_str().unwrap_or("(start)");
            let to = h["to"].as_str().unwrap_or_default();
            (
                text(&h["at"]),
                format!("{from} → {to}"),
                text(&h["by"]),
                text(&h["reason"]),
            )
        })
        .collect();
    rows.extend(list("events").iter().map(|e| {
        let what = match e["kind"].as_str().unwrap_or_default() {
            "pause" => "paused".to_string(),
            "resume" => "resumed".to_string(),
            kind => kind.to_string(),
        };
        (text(&e["at"]), what, text(&e["by"]), text(&e["reason"]))
    }));
    if rows.is_empty() {
        return String::new();
    }
    // RFC 3339 times in UTC sort as text; a transition comes before what happened in its
    // instant.
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("<h2>History</h2>\n<table class=\"history\"><tr><th>When</th><th>What</th><th>By</th><th>Why</th></tr>\n");
    for (at, what, by, why) in rows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&at),
            esc(&what),
            esc(&by),
            esc(&why)
        );
    }
    out.push_str("</table>\n");
    out
}

/// A JSON string's text, or nothing.
fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn children(status: &Value, pages: &str) -> String {
    let Some(children) = status["children"].as_array().filter(|c| !c.is_empty()) else {
        return String::new();
    };
    let mut out = String::from("<h2>Children</h2>\n<ul class=\"children\">\n");
    for c in children {
        let n = c["ref"].as_u64().unwrap_or_default();
        let _ = writeln!(
            out,
            "<li><a href=\"{}{n}\">#{n} {}</a> — {} ({})</li>",
            esc(pages),
            esc(c["template"].as_str().unwrap_or_default()),
            esc(c["stage"].as_str().unwrap_or("-")),
            esc(c["state"].as_str().unwrap_or_default())
        );
    }
    out.push_str("</ul>\n");
    out
}

/// The address of `tracker`'s migration pages, before a number.
pub fn pages_of(tracker: &str) -> String {
    format!("/m/{}/", urlencode(tracker))
}
