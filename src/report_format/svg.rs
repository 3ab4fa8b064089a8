//! The page's inline SVG charts: a stage funnel per workflow and one timeline of every
//! migration (its stays as bars, named inside when they fit, today marked, paused and
//! failing rows marked in words and patterns), and the legend of the timeline's colours.
//!
//! Colours follow viridis, whose lightness rises steadily, so stage order survives a
//! grey-scale printer; words and patterns carry everything that matters on their own.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};

use super::html::{esc, href};
use super::ticks::{count_ticks, time_ticks};
use crate::core::report::{Report, Row};

/// Width of every chart's coordinate system; the page scales it to the screen.
const WIDTH: f64 = 1000.0;

/// A colour for stage `i` of `n`: viridis, lightness rising stage by stage.
pub fn colour(i: usize, n: usize) -> String {
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

/// Black or white, whichever reads on `fill`.
fn ink(fill: &str) -> &'static str {
    let v = u32::from_str_radix(fill.trim_start_matches('#'), 16).unwrap_or(0);
    let (r, g, b) = ((v >> 16) & 255, (v >> 8) & 255, v & 255);
    if 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64 > 140.0 {
        "#111"
    } else {
        "#fff"
    }
}

/// A horizontal bar per stage of one workflow: how many migrations stand there.
pub fn funnel(workflow: &str, counts: &[(&str, u64)]) -> String {
    let left = 200.0;
    let width = 700.0;
    let (bar_h, gap, top) = (12.0, 3.0, 6.0);
    let bottom = top + counts.len() as f64 * (bar_h + gap);
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let id = esc(&slug(workflow));
    let mut s = format!(
        "<figure class=\"chart scroll\"><figcaption>{w}</figcaption><svg class=\"funnel\" viewBox=\"0 0 {WIDTH} {:.0}\" role=\"img\" aria-labelledby=\"f-{id}\"><title id=\"f-{id}\">{w}: migrations per stage</title>\n",
        bottom + 40.0,
        w = esc(workflow)
    );
    for tick in count_ticks(max) {
        let x = left + width * tick as f64 / max as f64;
        let _ = writeln!(s, "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/><text class=\"count-tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{tick}</text>", bottom + 14.0);
    }
    for (i, (stage, n)) in counts.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let w = width * *n as f64 / max as f64;
        let empty = if *n == 0 { " empty" } else { "" };
        let _ = writeln!(
            s,
            "<text class=\"stage{empty}\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect class=\"bar funnel-bar\" x=\"{left}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{}\" stroke=\"#111\" stroke-width=\"0.5\"><title>{}: {n}</title></rect><text class=\"count{empty}\" x=\"{:.1}\" y=\"{:.1}\">{n}</text>",
            left - 8.0,
            y + 10.0,
            esc(stage),
            colour(i, counts.len()),
            esc(stage),
            left + w + 6.0,
            y + 10.0
        );
    }
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom:.1}\"/><line class=\"axis\" x1=\"{left}\" y1=\"{bottom:.1}\" x2=\"{}\" y2=\"{bottom:.1}\"/>\n<text class=\"axis-label\" x=\"{}\" y=\"{:.1}\" text-anchor=\"middle\">migrations (count)</text><text class=\"axis-label\" transform=\"translate(10,{:.1}) rotate(-90)\" text-anchor=\"middle\">stage</text>\n</svg></figure>\n",
        left + width,
        left + width / 2.0,
        bottom + 32.0,
        (top + bottom) / 2.0
    );
    s
}

/// The stages the timeline draws, per workflow in workflow order: what the legend names.
pub fn stages_shown(report: &Report) -> Vec<(String, Vec<(String, String)>)> {
    let mut shown: BTreeSet<(&str, &str)> = BTreeSet::new();
    for row in &report.migrations {
        for (entry, _) in stays(row, report.generated_at) {
            shown.insert((row.status.workflow.as_str(), entry));
        }
    }
    let mut out = Vec::new();
    for (workflow, counts) in &report.stages {
        let Some(counts) = counts.as_object() else {
            continue;
        };
        let n = counts.len();
        let stages: Vec<(String, String)> = counts
            .keys()
            .enumerate()
            .filter(|(_, s)| shown.contains(&(workflow.as_str(), s.as_str())))
            .map(|(i, s)| (s.clone(), colour(i, n)))
            .collect();
        if !stages.is_empty() {
            out.push((workflow.clone(), stages));
        }
    }
    out
}

/// The legend of the timeline: each workflow's stages that it draws, and the marks.
pub fn legend(report: &Report) -> String {
    let mut s = String::from("<div class=\"legend\">\n");
    for (workflow, stages) in stages_shown(report) {
        let _ = write!(
            s,
            "<p><span class=\"legend-workflow\">{}</span>",
            esc(&workflow)
        );
        for (stage, fill) in stages {
            let _ = write!(
                s,
                " <span class=\"key\" data-stage=\"{}:{}\"><svg class=\"swatch\" viewBox=\"0 0 14 14\"><rect width=\"14\" height=\"14\" fill=\"{fill}\" stroke=\"#111\" stroke-width=\"1\"/></svg>{}</span>",
                esc(&workflow),
                esc(&stage),
                esc(&stage)
            );
        }
        s.push_str("</p>\n");
    }
    s.push_str("<p class=\"marks\"><span class=\"key\"><svg class=\"swatch\" viewBox=\"0 0 14 14\"><rect width=\"14\" height=\"14\" fill=\"#ddd\" stroke=\"#111\"/><rect width=\"14\" height=\"14\" fill=\"url(#hatch)\"/></svg>paused</span> <span class=\"key\"><svg class=\"swatch\" viewBox=\"0 0 14 14\"><rect x=\"1\" y=\"1\" width=\"12\" height=\"12\" fill=\"#ddd\" stroke=\"#b00\" stroke-width=\"2\" stroke-dasharray=\"3 2\"/></svg>failing</span> <span class=\"key\"><svg class=\"swatch\" viewBox=\"0 0 14 14\"><line x1=\"7\" y1=\"0\" x2=\"7\" y2=\"14\" stroke=\"#b00\" stroke-width=\"2\" stroke-dasharray=\"4 2\"/></svg>today</span></p>\n</div>\n");
    s
}

/// When a stay began and ended.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// A migration's stays, oldest first: the stage and when each ended (`now` for the
/// current one; a completed migration's final stage is no stay).
fn stays(row: &Row, now: DateTime<Utc>) -> Vec<(&str, Span)> {
    let history = row.status.history.as_deref().unwrap_or(&[]);
    let terminal = row.status.state == "completed";
    history
        .iter()
        .enumerate()
        .filter_map(|(k, h)| {
            let end = match history.get(k + 1) {
                Some(next) => next.at,
                None if terminal => return None,
                None => now,
            };
            Some((h.to.as_str(), (h.at, end)))
        })
        .collect()
}

/// One row per migration, its stays in each stage as bars over time, today marked.
pub fn timeline(report: &Report, links: &super::Links) -> String {
    let now = report.generated_at;
    let rows = &report.migrations;
    let start = rows
        .iter()
        .map(|r| {
            let first = r.status.history.as_ref().and_then(|h| h.first());
            first.map(|h| h.at).unwrap_or(r.status.entered_at)
        })
        .min()
        .unwrap_or(now - Duration::days(7))
        .min(now - Duration::hours(1));
    let span = (now - start).num_seconds().max(1) as f64;
    // The marks column, then the row labels, then the chart.
    let (left, width) = (360.0, 610.0);
    let (row_h, top) = (22.0, 22.0);
    let bottom = top + rows.len().max(1) as f64 * row_h;
    let x_of =
        |t: DateTime<Utc>| left + width * ((t - start).num_seconds() as f64 / span).clamp(0.0, 1.0);
    let mut s = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {:.0}\" role=\"img\" aria-label=\"Timeline of every migration's stages\">\n<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#fff\" fill-opacity=\"0.35\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#111\" stroke-width=\"2.5\"/></pattern></defs>\n",
        bottom + 50.0
    );
    for tick in time_ticks(start, now, width) {
        let x = x_of(tick.at);
        let _ = writeln!(s, "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", bottom + 16.0, tick.label);
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let status = &row.status;
        if i % 2 == 1 {
            let _ = writeln!(
                s,
                "<rect class=\"stripe\" x=\"0\" y=\"{y:.1}\" width=\"{WIDTH}\" height=\"{row_h}\"/>"
            );
        }
        let words = marks(row);
        if !words.is_empty() {
            let _ = writeln!(
                s,
                "<text class=\"mark\" x=\"0\" y=\"{:.1}\">{}</text>",
                y + 15.0,
                words.join(" ")
            );
        }
        let label = truncate(&format!("#{} {}", status.number, status.title), 37);
        let text = format!(
            "<text class=\"row-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>#{} {}</title>{}</text>",
            left - 8.0,
            y + 15.0,
            status.number,
            esc(&status.title),
            esc(&label)
        );
        match links.page(status.number).or_else(|| href(&status.url)) {
            Some(url) => {
                let _ = writeln!(s, "<a class=\"row-link\" href=\"{url}\">{text}</a>");
            }
            None => {
                let _ = writeln!(s, "{text}");
            }
        }
        let n = stage_count(report, &status.workflow);
        let stays = stays(row, now);
        let last = stays.len().saturating_sub(1);
        for (k, (stage, (from, end))) in stays.into_iter().enumerate() {
            let (x1, x2) = (x_of(from), x_of(end));
            let w = (x2 - x1).max(1.5);
            let fill = colour(stage_index(report, &status.workflow, stage), n);
            let current = k == last && end == now;
            let failing = current && status.failing.is_some();
            let outline = if failing {
                "stroke=\"#b00\" stroke-width=\"2\" stroke-dasharray=\"4 2\""
            } else {
                "stroke=\"#111\" stroke-width=\"0.4\""
            };
            let _ = writeln!(
                s,
                "<rect class=\"bar timeline-bar\" data-stage=\"{}:{}\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{fill}\" {outline}><title>#{} {}: {} → {}</title></rect>",
                esc(&status.workflow),
                esc(stage),
                y + 3.0,
                row_h - 6.0,
                status.number,
                esc(stage),
                from.format("%Y-%m-%d %H:%M"),
                if end == now { "now".to_string() } else { end.format("%Y-%m-%d %H:%M").to_string() }
            );
            if current && status.paused {
                let _ = writeln!(s, "<rect class=\"paused-hatch\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"url(#hatch)\"/>", y + 3.0, row_h - 6.0);
            }
            if w >= stage.chars().count() as f64 * 6.2 + 10.0 && !(current && status.paused) {
                let _ = writeln!(
                    s,
                    "<text class=\"in-bar\" x=\"{:.1}\" y=\"{:.1}\" style=\"fill:{}\">{}</text>",
                    x1 + 4.0,
                    y + 14.5,
                    ink(&fill),
                    esc(stage)
                );
            }
        }
    }
    let today = x_of(now);
    let _ = write!(
        s,
        "<line class=\"today\" x1=\"{today:.1}\" y1=\"{:.1}\" x2=\"{today:.1}\" y2=\"{bottom:.1}\"/><text class=\"today-label\" x=\"{today:.1}\" y=\"{:.1}\" text-anchor=\"end\">today</text>\n<line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom:.1}\"/><line class=\"axis\" x1=\"{left}\" y1=\"{bottom:.1}\" x2=\"{}\" y2=\"{bottom:.1}\"/>\n<text class=\"axis-label\" x=\"{}\" y=\"{:.1}\" text-anchor=\"middle\">time (UTC)</text><text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">migration</text><text class=\"axis-label\" x=\"0\" y=\"{:.1}\">marks</text>\n</svg>\n",
        top - 6.0,
        top - 8.0,
        left + width,
        left + width / 2.0,
        bottom + 40.0,
        left - 8.0,
        top - 8.0,
        top - 8.0,
    );
    s
}

/// The words a row's marks column shows: "failing", "paused", "stale", "done" (words, not
/// symbols: system fonts lack some, and a printer keeps words).
fn marks(row: &Row) -> Vec<&'static str> {
    let mut out = Vec::new();
    if row.status.failing.is_some() {
        out.push("failing");
    }
    if row.status.paused {
        out.push("paused");
    }
    if row.stale && out.is_empty() {
        out.push("stale");
    }
    if row.status.state == "completed" {
        out.push("done");
    }
    out
}

/// `text` cut to `most` characters, an ellipsis marking the cut.
pub(crate) fn truncate(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        return text.to_string();
    }
    let cut: String = text.chars().take(most - 1).collect();
    format!("{}…", cut.trim_end())
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

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
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
        assert_eq!(ink(&colour(0, 11)), "#fff");
        assert_eq!(ink(&colour(10, 11)), "#111");
    }

    #[test]
    fn long_titles_are_cut_with_an_ellipsis() {
        assert_eq!(truncate("#1 short", 40), "#1 short");
        assert_eq!(truncate("#1 abcdef ghij", 10), "#1 abcdef…");
        assert_eq!(truncate("#1 ünïcödé", 6).chars().count(), 6);
    }
}
