//! Plain text for terminals and Markdown for the summary issue: per busy workflow, its
//! stages with migrations or finished stays; then one line (or table row) per migration,
//! with what holds it up.

use std::fmt::Write as _;

use chrono::Duration;

use super::{folded, lead_times, span, workflows};
use crate::core::duration::human;
use crate::core::report::{Report, Row};

/// Plain text (`markdown: false`) or Markdown.
pub fn text(report: &Report, markdown: bool) -> String {
    let mut out = String::new();
    let now = report.generated_at.format("%Y-%m-%d %H:%M UTC");
    let stale_after = human(Duration::seconds(report.stale_after_seconds));
    let count = report.migrations.len();
    if markdown {
        let _ = writeln!(out, "# Migration report\n\nGenerated {now} for {count} migration(s); stale after {stale_after} in a stage.\n");
    } else {
        let _ = writeln!(
            out,
            "Migration report, {now} ({count} migrations; stale after {stale_after})\n"
        );
    }
    out.push_str(&overdue(report, markdown));
    out.push_str(&forecast(report, markdown));
    let (busy, empty) = workflows(report);
    for (workflow, counts) in &busy {
        let lead = lead_times(report, workflow);
        let lead_of = |stage: &str| lead.iter().find(|l| l.stage == stage);
        if markdown {
            let _ = writeln!(out, "## {workflow}\n\n| stage | migrations | median time in stage | p90 | stays |\n|---|---:|---:|---:|---:|");
            for (stage, n) in counts {
                let l = lead_of(stage);
                if *n == 0 && l.is_none() {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "| {stage} | {n} | {} | {} | {} |",
                    span(l.and_then(|l| l.median_seconds)),
                    span(l.and_then(|l| l.p90_seconds)),
                    l.map(|l| l.samples).unwrap_or(0)
                );
            }
            out.push('\n');
        } else {
            let line: Vec<String> = counts
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| format!("{s}={n}"))
                .collect();
            let _ = writeln!(out, "{workflow}: {}", line.join(" "));
            let leads: Vec<String> = lead
                .iter()
                .map(|l| {
                    format!(
                        "{} {} (p90 {})",
                        l.stage,
                        span(l.median_seconds),
                        span(l.p90_seconds)
                    )
                })
                .collect();
            if !leads.is_empty() {
                let _ = writeln!(out, "  median time in stage: {}", leads.join(", "));
            }
        }
    }
    if let Some(line) = folded(&empty) {
        let _ = writeln!(out, "{line}{}", if markdown { "\n" } else { "" });
    }
    if markdown {
        out.push_str("## Migrations\n\n| migration | workflow | stage | state | in stage | blocked by |\n|---|---|---|---|---|---|\n");
    } else {
        out.push('\n');
    }
    for row in &report.migrations {
        let s = &row.status;
        let stage = s.stage.as_deref().unwrap_or("-");
        let time = human(Duration::seconds(row.time_in_stage_seconds));
        let state = state(row);
        if markdown {
            let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
            let _ = writeln!(
                out,
                "| [#{} {}]({}) | {} | {stage} | {state} | {time} | {} |",
                s.number,
                cell(&s.title),
                s.url,
                s.workflow,
                cell(&row.blocked_by)
            );
        } else {
            let _ = writeln!(
                out,
                "#{:<5} {:<22} {:<26} {:<10} {:>8}  {}{}",
                s.number,
                s.workflow,
                stage,
                s.state,
                time,
                row.blocked_by.replace('\n', " "),
                marks(row)
            );
        }
    }
    out
}

/// The state with its marks, for a table cell: "open ⚠ stale ⏸ paused".
fn state(row: &Row) -> String {
    format!("{}{}", row.status.state, marks(row))
}

/// " ⚠ stale", " ⏸ paused", " ✖ failing", each when it applies.
fn marks(row: &Row) -> String {
    let mut out = String::new();
    if row.status.overdue {
        out.push_str(" ⏰ overdue");
    }
    if row.stale {
        out.push_str(" ⚠ stale");
    }
    if row.status.paused {
        out.push_str(" ⏸ paused");
    }
    if row.status.failing.is_some() {
        out.push_str(" ✖ failing");
    }
    if !row.status.flag_drift.is_empty() {
        out.push_str(" ⚑ flag drift");
    }
    out
}

/// The overdue migrations, longest stay first, before anything else: what needs a person.
fn overdue(report: &Report, markdown: bool) -> String {
    let mut rows: Vec<(&Row, &str)> = report
        .migrations
        .iter()
        .filter_map(|r| Some((r, r.overdue_note.as_deref()?)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    rows.sort_by_key(|(r, _)| std::cmp::Reverse(r.time_in_stage_seconds));
    let mut out = String::from(if markdown {
        "## Overdue\n\n"
    } else {
        "Overdue:\n"
    });
    for (row, note) in rows {
        let s = &row.status;
        let title = s.title.replace(['\n', '\r'], " ");
        if markdown {
            let title = title.replace('[', "\\[").replace(']', "\\]");
            let _ = writeln!(out, "- [#{} {title}]({}): overdue, {note}", s.number, s.url);
        } else {
            let _ = writeln!(out, "  #{} {title}: overdue, {note}", s.number);
        }
    }
    out.push('\n');
    out
}

/// One line on the burn-down: when the open migrations are expected to be done.
fn forecast(report: &Report, markdown: bool) -> String {
    let b = &report.burndown;
    let open = b.open.last().map(|p| p.open).unwrap_or(0);
    let (Some(e), Some(p)) = (b.expected.last(), b.p90.last()) else {
        return String::new();
    };
    if open == 0 {
        return String::new();
    }
    let day = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d").to_string();
    let unknown = if b.unknown > 0 {
        format!("; {} without a forecast", b.unknown)
    } else {
        String::new()
    };
    let line = format!(
        "Forecast: {} of {open} open expected done by {} (90%: {}){unknown}",
        open - b.unknown.min(open),
        day(e.at),
        day(p.at)
    );
    if markdown {
        format!("{line}.\n\n")
    } else {
        format!("{line}\n\n")
    }
}
