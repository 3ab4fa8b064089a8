//! One self-contained HTML page (no script, no font, no request of any kind) for laptops,
//! phones (wide parts scroll sideways) and grey-scale printers: the numbers that need
//! attention first, then each busy workflow's funnel (empty ones folded into one line), the
//! burn-down with the forecast ahead, the timeline with its legend, the table of migrations with what holds each up, and the lead
//! times of stages that have any.

use std::fmt::Write as _;

use chrono::Duration;

use super::svg::{funnel, legend, timeline};
use super::{folded, lead_times, span, workflows, Counts, Links};
use crate::core::duration::human;
use crate::core::report::{paused_note, Report, Row};

/// The page, names linked to their issues.
pub fn html(report: &Report) -> String {
    html_with(report, &Links::default())
}

/// The page, names linked as `links` says.
pub fn html_with(report: &Report, links: &Links) -> String {
    let mut out = String::new();
    let now = report.generated_at;
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Migration report — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header><h1>Migration report</h1>\n<p class=\"meta\">Generated {} · stale after {} in a stage</p></header>\n",
        now.format("%Y-%m-%d"),
        now.format("%Y-%m-%d %H:%M UTC"),
        human(Duration::seconds(report.stale_after_seconds))
    );
    out.push_str(&summary(report));
    out.push_str(&needs_a_person(report, links));
    let (busy, empty) = workflows(report);
    out.push_str("<h2>Stages</h2>\n");
    for (workflow, counts) in &busy {
        out.push_str(&funnel(workflow, counts));
    }
    if let Some(line) = folded(&empty) {
        let _ = writeln!(out, "<p class=\"folded\">{}</p>", esc(&line));
    }
    let chart = super::burndown::burndown(&report.burndown, now);
    if !chart.is_empty() {
        out.push_str("<h2>Burn-down</h2>\n");
        out.push_str(&chart);
    }
    if !report.migrations.is_empty() {
        out.push_str("<h2>Timeline</h2>\n");
        out.push_str(&legend(report));
        out.push_str("<div class=\"chart scroll\">");
        out.push_str(&timeline(report, links));
        out.push_str("</div>\n");
    }
    out.push_str(&migrations(report, links));
    out.push_str(&lead_table(report, &busy));
    out.push_str("</body>\n</html>\n");
    out
}

/// The counts a reader looks for first: open migrations (child issues apart), and of
/// those stale, paused and failing.
fn summary(report: &Report) -> String {
    let count = |f: &dyn Fn(&Row) -> bool| report.migrations.iter().filter(|r| f(r)).count();
    let open = count(&|r| r.status.state == "open" && r.status.parent.is_none());
    let children = count(&|r| r.status.state == "open" && r.status.parent.is_some());
    let items = [
        (open, "open", ""),
        (children, "child issues open", ""),
        (count(&|r| r.status.overdue), "overdue", " attention"),
        (count(&|r| r.stale), "stale", " attention"),
        (count(&|r| r.status.paused), "paused", " attention"),
        (
            count(&|r| r.status.failing.is_some()),
            "failing",
            " attention",
        ),
        (count(&|r| r.status.state == "completed"), "done", ""),
        (count(&|r| r.status.state == "closed"), "closed", ""),
    ];
    let mut s = String::from("<ul class=\"summary\">");
    for (i, (n, what, class)) in items.into_iter().enumerate() {
        if n > 0 || i == 0 {
            let class = if n > 0 { class } else { "" };
            let _ = write!(s, "<li class=\"{what}{class}\"><b>{n}</b> {what}</li>");
        }
    }
    s.push_str("</ul>\n");
    s
}

/// What needs a person, first: failing, paused and overdue migrations, those waiting on a person
/// (and on whom), and stale ones, each with its next step. Nothing when nothing does.
fn needs_a_person(report: &Report, links: &Links) -> String {
    let mut rows: Vec<(u8, &Row, String, String)> = Vec::new();
    for row in report
        .migrations
        .iter()
        .filter(|r| r.status.state == "open")
    {
        let s = &row.status;
        if let Some(error) = &s.failing {
            let step = "fix what the error says; shepherd tries again on its own".to_string();
            rows.push((0, row, format!("failing: {error}"), step));
        } else if let Some(note) = paused_note(s) {
            let step = format!(
                "resume it when ready: <code>shepherd resume {}</code>",
                s.number
            );
            rows.push((1, row, note, step));
        } else if let Some(note) = &row.overdue_note {
            let step = match s.gates.iter().find(|g| !g.passed && g.waits_for.is_some()) {
                Some(g) => format!(
                    "waits for {}",
                    emphasis(&esc(g.waits_for.as_deref().unwrap_or_default()))
                ),
                None => esc(&row.blocked_by),
            };
            rows.push((2, row, format!("overdue: {note}"), step));
        } else if let Some(g) = s.gates.iter().find(|g| !g.passed && g.waits_for.is_some()) {
            let who = g.waits_for.as_deref().unwrap_or_default();
            rows.push((
                3,
                row,
                g.detail.clone(),
                format!("waits for {}", emphasis(&esc(who))),
            ));
        } else if row.stale {
            let since = human(Duration::seconds(row.time_in_stage_seconds));
            rows.push((
                4,
                row,
                format!("{since} in this stage"),
                esc(&row.blocked_by),
            ));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    rows.sort_by_key(|(rank, row, ..)| (*rank, std::cmp::Reverse(row.time_in_stage_seconds)));
    let mut out = String::from("<h2>Needs a person</h2>\n<div class=\"scroll\"><table class=\"attention\">\n<thead><tr><th>Migration</th><th>Stage</th><th>Why</th><th>Next step</th></tr></thead>\n<tbody>\n");
    for (_, row, why, step) in rows {
        let s = &row.status;
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{step}</td></tr>",
            name_link(s, links),
            esc(s.stage.as_deref().unwrap_or("-")),
            emphasis(&esc(&why))
        );
    }
    out.push_str("</tbody>\n</table></div>\n");
    out
}

/// "#12 Title", linked to its page (with its issue beside) or to its issue.
fn name_link(s: &crate::core::report::Status, links: &Links) -> String {
    let name = esc(&format!("#{} {}", s.number, s.title));
    let issue = href(&s.url);
    match (links.page(s.number), issue) {
        (Some(page), issue) => {
            let beside = issue
                .map(|u| format!(" <a class=\"issue-link\" href=\"{u}\" title=\"the issue on the tracker\">issue</a>"))
                .unwrap_or_default();
            format!("<a href=\"{page}\">{name}</a>{beside}")
        }
        (None, Some(url)) => format!("<a href=\"{url}\">{name}</a>"),
        (None, None) => name,
    }
}

/// The table of migrations: each with its marks and what holds it up.
fn migrations(report: &Report, links: &Links) -> String {
    let mut out = String::from("<h2>Migrations</h2>\n<div class=\"scroll\"><table class=\"migrations\">\n<thead><tr><th>Migration</th><th>Workflow</th><th>Stage</th><th>State</th><th>In stage</th><th>Expected done</th><th>Blocked by</th><th>Children</th></tr></thead>\n<tbody>\n");
    for row in &report.migrations {
        let s = &row.status;
        let mut classes = Vec::new();
        let mut badges = String::new();
        for (on, name) in [
            (s.overdue, "overdue"),
            (row.stale, "stale"),
            (s.paused, "paused"),
            (s.failing.is_some(), "failing"),
            (!s.flag_drift.is_empty(), "drift"),
        ] {
            if on {
                classes.push(name);
                let _ = write!(badges, " <span class=\"badge {name}\">{name}</span>");
            }
        }
        let class = if classes.is_empty() {
            String::new()
        } else {
            format!(" class=\"{}\"", classes.join(" "))
        };
        let mut blockers: Vec<String> = Vec::new();
        if let Some(note) = paused_note(s) {
            blockers.push(format!(
                "<li class=\"paused-note\"><b>{}</b></li>",
                esc(&note)
            ));
        }
        if let Some(error) = &s.failing {
            blockers.push(format!(
                "<li class=\"failing-note\"><b>failing</b>: {}</li>",
                esc(error)
            ));
        }
        for d in &s.flag_drift {
            let place = d.place();
            blockers.push(format!(
                "<li class=\"drift-note\"><b>flag drift</b>: <code>{}</code>{} is {}, its stage set {}</li>",
                esc(&d.name),
                esc(&place),
                esc(&d.actual),
                esc(&d.expected)
            ));
        }
        blockers.extend(s.gates.iter().filter(|g| !g.passed).map(|g| {
            let who = g
                .waits_for
                .as_deref()
                .map(|w| {
                    format!(
                        " <span class=\"who\">— waits for {}</span>",
                        emphasis(&esc(w))
                    )
                })
                .unwrap_or_default();
            format!(
                "<li><b>{}</b>: {}{who}</li>",
                esc(&g.gate),
                emphasis(&esc(&g.detail))
            )
        }));
        if blockers.is_empty() {
            blockers.push(format!("<li>{}</li>", esc(&row.blocked_by)));
        }
        let children: Vec<String> = s
            .children
            .iter()
            .map(|c| format!("#{} {} ({})", c.number, esc(&c.template), esc(&c.state)))
            .collect();
        let name = name_link(s, links);
        let _ = writeln!(
            out,
            "<tr{class}><td>{name}</td><td>{}</td><td>{}</td><td>{}{badges}</td><td>{}</td><td>{}</td><td><ul>{}</ul></td><td>{}</td></tr>",
            esc(&s.workflow),
            esc(s.stage.as_deref().unwrap_or("-")),
            esc(&s.state),
            human(Duration::seconds(row.time_in_stage_seconds)),
            super::forecast_cell(s),
            blockers.join(""),
            children.join("<br>")
        );
    }
    out.push_str("</tbody>\n</table></div>\n");
    out
}

/// Lead times of the stages with at least one finished stay.
fn lead_table(report: &Report, busy: &[Counts]) -> String {
    let mut rows = String::new();
    for (workflow, _) in busy {
        for l in lead_times(report, workflow) {
            let _ = writeln!(
                rows,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(workflow),
                esc(&l.stage),
                span(l.median_seconds),
                span(l.p90_seconds),
                l.samples
            );
        }
    }
    let mut out = String::from("<h2>Stage lead times</h2>\n");
    if rows.is_empty() {
        out.push_str("<p class=\"meta\">No migration has left a stage yet.</p>\n");
    } else {
        out.push_str("<p class=\"meta\">Time spent in each stage, over the stays that ended; stages without one are left out.</p>\n<div class=\"scroll\"><table class=\"lead\">\n<thead><tr><th>Workflow</th><th>Stage</th><th>Median</th><th>90th percentile</th><th>Stays</th></tr></thead>\n<tbody>\n");
        out.push_str(&rows);
        out.push_str("</tbody>\n</table></div>\n");
    }
    out
}

const STYLE: &str = "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1rem auto;max-width:72rem;padding:0 1rem;color:#111;background:#fff;line-height:1.35}\
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.8rem 0 .6rem;border-bottom:1px solid #999;padding-bottom:.2rem}.meta{color:#444;margin:.2rem 0}\
.summary{display:flex;flex-wrap:wrap;gap:.6rem;list-style:none;padding:0;margin:1rem 0}\
.summary li{border:1px solid #999;border-radius:4px;padding:.4rem .8rem;min-width:5.5rem}.summary b{display:block;font-size:1.6rem}\
.summary li.attention{border:2px solid #111;font-weight:bold}\
figure{margin:.4rem 0 1rem}figcaption{font-weight:bold;font-size:.95rem}.folded{color:#444;font-style:italic}\
svg{width:100%;height:auto;display:block;margin:.3rem 0}svg text{font-size:12px;fill:#111}svg .axis{stroke:#111;stroke-width:1}\
svg .axis-label{font-size:11px;fill:#444}svg.funnel text{font-size:11px}svg .empty{fill:#777}svg .count-tick{font-size:10px;fill:#555}\
svg .today{stroke:#b00;stroke-width:2;stroke-dasharray:6 3}svg .today-label{fill:#b00;font-weight:bold}svg .grid{stroke:#ccc;stroke-width:1}\
svg .stripe{fill:#f4f4f4}svg .mark{font-size:11px;font-weight:bold}svg .in-bar{font-size:10px;pointer-events:none}\
svg a .row-label{fill:#0645ad;text-decoration:underline}\
.legend p{margin:.2rem 0;font-size:.85rem}.legend-workflow{font-weight:bold;margin-right:.3rem}\
.key{white-space:nowrap;margin-right:.6rem}.swatch{display:inline-block;width:.85rem;height:.85rem;margin:0 .25rem -.1rem 0}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #999;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#eee}td ul{margin:0;padding-left:1rem}tr.stale td{background:repeating-linear-gradient(45deg,#fff,#fff 6px,#f0f0f0 6px,#f0f0f0 12px)}\
tr.paused td:first-child,tr.failing td:first-child{border-left:5px solid #111}tr.failing td:first-child{border-left-style:double}\
.badge{border:1px solid #111;border-radius:3px;padding:0 .3rem;margin-left:.3rem;font-size:.75rem;font-weight:bold;white-space:nowrap;background:#fff}\
.badge.paused{border-width:2px}.badge.overdue{border:2px solid #a00;color:#a00}.badge.failing{border:2px dashed #b00;color:#b00}.failing-note{color:#900}.badge.drift{border:2px dotted #a60;color:#a60}.drift-note{color:#a60}\
a{color:#0645ad}@media print{a{color:#111}.scroll{overflow:visible}body{max-width:none}h2{break-after:avoid}tr,figure{break-inside:avoid}}\
@media (max-width:700px){body{padding:0 .5rem}.chart svg.timeline{min-width:900px}.chart svg.funnel{min-width:600px}}";

/// The URL as an attribute value when a browser can open it (http or https).
pub fn href(url: &str) -> Option<String> {
    (url.starts_with("http://") || url.starts_with("https://")).then(|| esc(url))
}

/// Gate details mark section names Markdown's way (`*Selection*`): show them as emphasis.
fn emphasis(escaped: &str) -> String {
    if !escaped.matches('*').count().is_multiple_of(2) {
        return escaped.to_string();
    }
    escaped
        .split('*')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<em>{part}</em>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// HTML escaping for text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_links_and_emphasis() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            href("https://x/1?a=1&b=2").unwrap(),
            "https://x/1?a=1&amp;b=2"
        );
        assert_eq!(href("javascript:alert(1)"), None);
        assert_eq!(href("local:/tmp/t.db#1"), None);
        assert_eq!(
            emphasis("0/3 items in *Migration Analysis*"),
            "0/3 items in <em>Migration Analysis</em>"
        );
        assert_eq!(emphasis("a * b"), "a * b");
    }
}
