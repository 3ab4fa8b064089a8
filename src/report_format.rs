//! The report in every format people use: plain text and Markdown (for terminals and the
//! summary issue), CSV (RFC 4180, for spreadsheets) and one self-contained HTML page with
//! inline SVG charts (a stage funnel per workflow, a timeline of every migration with
//! today marked) for laptops, phones and grey-scale printers. Pure functions of `Report`.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};

use crate::core::duration::human;
use crate::core::report::{Report, Row};

/// Plain text (`markdown: false`) or Markdown.
pub fn text(report: &Report, markdown: bool) -> String {
    let mut out = String::new();
    let now = report.generated_at;
    let stale_after = human(Duration::seconds(report.stale_after_seconds));
    if markdown {
        let _ = writeln!(out, "# Migration report\n\nGenerated {} for {} migration(s); stale after {stale_after} in a stage.\n", now.format("%Y-%m-%d %H:%M UTC"), report.migrations.len());
    } else {
        let _ = writeln!(
            out,
            "Migration report, {} ({} migrations; stale after {stale_after})\n",
            now.format("%Y-%m-%d %H:%M UTC"),
            report.migrations.len()
        );
    }
    for (workflow, counts) in &report.stages {
        let counts = counts.as_object().cloned().unwrap_or_default();
        let lead = report.lead_times.get(workflow).cloned().unwrap_or_default();
        let lead_of = |stage: &str| lead.iter().find(|l| l.stage == stage);
        let fmt = |s: Option<i64>| {
            s.map(|s| human(Duration::seconds(s)))
                .unwrap_or_else(|| "-".into())
        };
        if markdown {
            let _ = writeln!(out, "## {workflow}\n\n| stage | migrations | median time in stage | p90 | stays |\n|---|---:|---:|---:|---:|");
            for (stage, n) in &counts {
                let l = lead_of(stage);
                let _ = writeln!(
                    out,
                    "| {stage} | {n} | {} | {} | {} |",
                    fmt(l.and_then(|l| l.median_seconds)),
                    fmt(l.and_then(|l| l.p90_seconds)),
                    l.map(|l| l.samples).unwrap_or(0)
                );
            }
            out.push('\n');
        } else {
            let line: Vec<String> = counts.iter().map(|(s, n)| format!("{s}={n}")).collect();
            let _ = writeln!(out, "{workflow}: {}", line.join(" "));
            let leads: Vec<String> = lead
                .iter()
                .filter(|l| l.samples > 0)
                .map(|l| {
                    format!(
                        "{} {} (p90 {})",
                        l.stage,
                        fmt(l.median_seconds),
                        fmt(l.p90_seconds)
                    )
                })
                .collect();
            if !leads.is_empty() {
                let _ = writeln!(out, "  median time in stage: {}", leads.join(", "));
            }
        }
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
        let stale = if row.stale { " ⚠ stale" } else { "" };
        if markdown {
            let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
            let _ = writeln!(
                out,
                "| [#{} {}]({}) | {} | {stage} | {}{stale} | {time} | {} |",
                s.number,
                cell(&s.title),
                s.url,
                s.workflow,
                s.state,
                cell(&row.blocked_by)
            );
        } else {
            let _ = writeln!(
                out,
                "#{:<5} {:<22} {:<26} {:<10} {:>8}  {}{stale}",
                s.number, s.workflow, stage, s.state, time, row.blocked_by
            );
        }
    }
    out
}

/// CSV, RFC 4180: a header of stable column names, one row per migration.
pub fn csv(report: &Report) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record([
        "ref",
        "title",
        "url",
        "workflow",
        "stage",
        "label",
        "state",
        "entered_at",
        "time_in_stage_hours",
        "stale",
        "blocked_by",
        "children",
        "transitions",
    ])?;
    for row in &report.migrations {
        let s = &row.status;
        let children: Vec<String> = s
            .children
            .iter()
            .map(|c| format!("#{} {} {}", c.number, c.template, c.state))
            .collect();
        w.write_record([
            s.number.to_string(),
            s.title.clone(),
            s.url.clone(),
            s.workflow.clone(),
            s.stage.clone().unwrap_or_default(),
            s.label.clone().unwrap_or_default(),
            s.state.clone(),
            s.entered_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            format!("{:.2}", row.time_in_stage_seconds as f64 / 3600.0),
            row.stale.to_string(),
            row.blocked_by.clone(),
            children.join("; "),
            s.history.as_ref().map(|h| h.len()).unwrap_or(0).to_string(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 strings"))
}

/// One self-contained HTML page: no script, no font, no request of any kind.
pub fn html(report: &Report) -> String {
    let mut out = String::new();
    let now = report.generated_at;
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Migration report — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>Migration report</h1>\n<p class=\"meta\">Generated {} · {} migration(s) · stale after {} in a stage</p>\n",
        now.format("%Y-%m-%d"),
        now.format("%Y-%m-%d %H:%M UTC"),
        report.migrations.len(),
        human(Duration::seconds(report.stale_after_seconds))
    );
    out.push_str("<h2>Stages</h2>\n");
    for (workflow, counts) in &report.stages {
        let counts: Vec<(String, u64)> = counts
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&funnel(workflow, &counts));
    }
    out.push_str("<h2>Timeline</h2>\n<div class=\"chart scroll\">");
    out.push_str(&timeline(report));
    out.push_str("</div>\n");
    out.push_str("<h2>Migrations</h2>\n<div class=\"scroll\"><table class=\"migrations\">\n<thead><tr><th>Migration</th><th>Workflow</th><th>Stage</th><th>State</th><th>In stage</th><th>Blocked by</th><th>Children</th></tr></thead>\n<tbody>\n");
    for row in &report.migrations {
        let s = &row.status;
        let class = if row.stale { " class=\"stale\"" } else { "" };
        let badge = if row.stale {
            " <span class=\"badge\">stale</span>"
        } else {
            ""
        };
        let blockers: Vec<String> = if s.gates.iter().any(|g| !g.passed) {
            s.gates
                .iter()
                .filter(|g| !g.passed)
                .map(|g| {
                    format!(
                        "<li><b>{}</b>: {}</li>",
                        esc(&g.gate),
                        emphasis(&esc(&g.detail))
                    )
                })
                .collect()
        } else {
            vec![format!("<li>{}</li>", esc(&row.blocked_by))]
        };
        let children: Vec<String> = s
            .children
            .iter()
            .map(|c| format!("#{} {} ({})", c.number, esc(&c.template), esc(&c.state)))
            .collect();
        let _ = writeln!(
            out,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}{badge}</td><td>{}</td><td><ul>{}</ul></td><td>{}</td></tr>",
            link(&s.url, &format!("#{} {}", s.number, s.title)),
            esc(&s.workflow),
            esc(s.stage.as_deref().unwrap_or("-")),
            esc(&s.state),
            human(Duration::seconds(row.time_in_stage_seconds)),
            blockers.join(""),
            children.join("<br>")
        );
    }
    out.push_str("</tbody>\n</table></div>\n<h2>Stage lead times</h2>\n<p class=\"meta\">Time spent in each stage, over the stays that ended.</p>\n<div class=\"scroll\"><table class=\"lead\">\n<thead><tr><th>Workflow</th><th>Stage</th><th>Median</th><th>90th percentile</th><th>Stays</th></tr></thead>\n<tbody>\n");
    for (workflow, leads) in &report.lead_times {
        for l in leads {
            let fmt = |s: Option<i64>| {
                s.map(|s| human(Duration::seconds(s)))
                    .unwrap_or_else(|| "–".into())
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(workflow),
                esc(&l.stage),
                fmt(l.median_seconds),
                fmt(l.p90_seconds),
                l.samples
            );
        }
    }
    out.push_str("</tbody>\n</table></div>\n</body>\n</html>\n");
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1rem auto;max-width:72rem;padding:0 1rem;color:#111;background:#fff}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #999}.meta{color:#444}\
svg{width:100%;height:auto;display:block;margin:.5rem 0}svg text{font-size:12px;fill:#111}svg .axis{stroke:#111;stroke-width:1}\
svg .today{stroke:#b00;stroke-width:2;stroke-dasharray:6 3}svg .grid{stroke:#ccc;stroke-width:1}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #999;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#eee}td ul{margin:0;padding-left:1rem}tr.stale td{background:repeating-linear-gradient(45deg,#fff,#fff 6px,#eee 6px,#eee 12px)}\
.badge{border:1px solid #111;border-radius:3px;padding:0 .3rem;margin-left:.3rem;font-size:.75rem;font-weight:bold}\
a{color:#0645ad}@media print{a{color:#111}.scroll{overflow:visible}}\
@media (max-width:700px){body{padding:0 .5rem}.chart svg{min-width:640px}}";

/// A colour for stage `i` of `n`: viridis, whose lightness rises steadily, so that
/// neighbouring stages stay apart in grey scale too.
fn colour(i: usize, n: usize) -> String {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if n <= 1 {
        0.0
    } else {
        i as f64 / (n - 1) as f64
    } * (STOPS.len() - 1) as f64;
    let k = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - k as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// A horizontal bar per stage: how many migrations stand there.
fn funnel(workflow: &str, counts: &[(String, u64)]) -> String {
    let left = 190.0;
    let width = 760.0;
    let bar_h = 22.0;
    let top = 30.0;
    let height = top + counts.len() as f64 * (bar_h + 6.0) + 46.0;
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let mut s = format!(
        "<figure class=\"chart scroll\"><svg class=\"funnel\" viewBox=\"0 0 {} {height}\" role=\"img\" aria-labelledby=\"f-{id}\"><title id=\"f-{id}\">{w}: migrations per stage</title>\n<text x=\"0\" y=\"16\" font-weight=\"bold\">{w}</text>\n",
        left + width + 40.0,
        id = esc(&slug(workflow)),
        w = esc(workflow)
    );
    let bottom = top + counts.len() as f64 * (bar_h + 6.0);
    for tick in ticks(max) {
        let x = left + width * tick as f64 / max as f64;
        let _ = writeln!(s, "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick}</text>", bottom + 16.0);
    }
    for (i, (stage, n)) in counts.iter().enumerate() {
        let y = top + i as f64 * (bar_h + 6.0);
        let w = width * *n as f64 / max as f64;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect class=\"bar funnel-bar\" x=\"{left}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{}\" stroke=\"#111\" stroke-width=\"0.5\"><title>{}: {n}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{n}</text>",
            left - 8.0,
            y + 15.0,
            esc(stage),
            colour(i, counts.len()),
            esc(stage),
            left + w + 6.0,
            y + 15.0
        );
    }
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\"/><line class=\"axis\" x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\"/>\n<text x=\"{}\" y=\"{:.1}\" text-anchor=\"middle\">migrations (count)</text><text transform=\"translate(12,{:.1}) rotate(-90)\" text-anchor=\"middle\">stage</text>\n</svg></figure>\n",
        left + width,
        left + width / 2.0,
        bottom + 36.0,
        (top + bottom) / 2.0
    );
    s
}

/// One row per migration, its stays in each stage as bars over time, today marked.
fn timeline(report: &Report) -> String {
    let now = report.generated_at;
    let rows: Vec<&Row> = report.migrations.iter().collect();
    let start = rows
        .iter()
        .filter_map(|r| {
            r.status
                .history
                .as_ref()
                .and_then(|h| h.first())
                .map(|h| h.at)
                .or(Some(r.status.entered_at))
        })
        .min()
        .unwrap_or(now - Duration::days(7))
        .min(now - Duration::hours(1));
    let span = (now - start).num_seconds().max(1) as f64;
    let left = 90.0;
    let width = 820.0;
    let row_h = 18.0;
    let top = 20.0;
    let bottom = top + rows.len().max(1) as f64 * row_h;
    let x_of =
        |t: DateTime<Utc>| left + width * ((t - start).num_seconds() as f64 / span).clamp(0.0, 1.0);
    let mut s = format!("<svg class=\"timeline\" viewBox=\"0 0 {} {:.0}\" role=\"img\" aria-label=\"Timeline of every migration's stages\">\n", left + width + 60.0, bottom + 60.0);
    for i in 0..=4 {
        let t = start + Duration::seconds((span * i as f64 / 4.0) as i64);
        let x = x_of(t);
        let _ = writeln!(s, "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", bottom + 16.0, t.format("%Y-%m-%d"));
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let status = &row.status;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">#{}</text>",
            left - 6.0,
            y + 13.0,
            status.number
        );
        let history = status.history.as_deref().unwrap_or(&[]);
        let terminal = status.state == "completed";
        for (k, h) in history.iter().enumerate() {
            let end = match history.get(k + 1) {
                Some(next) => next.at,
                None if terminal => continue,
                None => now,
            };
            let (x1, x2) = (x_of(h.at), x_of(end));
            let _ = writeln!(
                s,
                "<rect class=\"bar timeline-bar\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"#111\" stroke-width=\"0.4\"><title>#{} {}: {} → {}</title></rect>",
                y + 2.0,
                (x2 - x1).max(1.5),
                row_h - 4.0,
                colour(stage_index(report, &status.workflow, &h.to), stage_count(report, &status.workflow)),
                status.number,
                esc(&h.to),
                h.at.format("%Y-%m-%d %H:%M"),
                if end == now { "now".to_string() } else { end.format("%Y-%m-%d %H:%M").to_string() }
            );
        }
    }
    let today = x_of(now);
    let _ = write!(
        s,
        "<line class=\"today\" x1=\"{today:.1}\" y1=\"{:.1}\" x2=\"{today:.1}\" y2=\"{bottom}\"/><text x=\"{today:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#b00\">today</text>\n<line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\"/><line class=\"axis\" x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\"/>\n<text x=\"{}\" y=\"{:.1}\" text-anchor=\"middle\">time (UTC)</text><text transform=\"translate(12,{:.1}) rotate(-90)\" text-anchor=\"middle\">migration</text>\n</svg>\n",
        top - 8.0,
        top - 10.0,
        left + width,
        left + width / 2.0,
        bottom + 40.0,
        (top + bottom) / 2.0
    );
    s
}

fn stage_index(report: &Report, workflow: &str, stage: &str) -> usize {
    report
        .stages
        .get(workflow)
        .and_then(|m| m.as_object())
        .and_then(|m| m.keys().position(|k| k == stage))
        .unwrap_or(0)
}

fn stage_count(report: &Report, workflow: &str) -> usize {
    report
        .stages
        .get(workflow)
        .and_then(|m| m.as_object())
        .map(|m| m.len())
        .unwrap_or(1)
}

fn ticks(max: u64) -> Vec<u64> {
    let step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
        .into_iter()
        .find(|s| max / s <= 6)
        .unwrap_or(10_000);
    (0..=max).step_by(step as usize).collect()
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn link(url: &str, text: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        format!("<a href=\"{}\">{}</a>", esc(url), esc(text))
    } else {
        esc(text)
    }
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
    fn colours_get_lighter_stage_by_stage() {
        let luminance = |hex: &str| {
            let v = u32::from_str_radix(&hex[1..], 16).unwrap();
            let (r, g, b) = ((v >> 16) & 255, (v >> 8) & 255, v & 255);
            0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64
        };
        let greys: Vec<f64> = (0..11).map(|i| luminance(&colour(i, 11))).collect();
        assert!(greys.windows(2).all(|w| w[1] > w[0] + 5.0), "{greys:?}");
    }

    #[test]
    fn escaping_and_ticks() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(ticks(3), [0, 1, 2, 3]);
        assert_eq!(ticks(40), [0, 10, 20, 30, 40]);
        assert_eq!(
            emphasis("0/3 items in *Migration Analysis*"),
            "0/3 items in <em>Migration Analysis</em>"
        );
        assert_eq!(emphasis("a * b"), "a * b");
    }
}
