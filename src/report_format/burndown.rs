//! The portfolio's burn-down as inline SVG: how many migrations were open over time (a
//! solid step line up to today), then as each open one is expected to be done (dashed:
//! the median; dotted: the 90th percentile). Words under the chart say what the lines do,
//! so a grey-scale printer loses nothing.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};

use super::html::esc;
use super::ticks::{count_ticks, time_ticks};
use crate::core::forecast::{Burndown, Point};

const WIDTH: f64 = 1000.0;

/// The chart with its caption, or nothing when no migration was ever open.
pub fn burndown(b: &Burndown, now: DateTime<Utc>) -> String {
    let Some(first) = b.open.first() else {
        return String::new();
    };
    let start = first.at.min(now - Duration::days(1));
    let last = |points: &[Point]| points.last().map(|p| p.at);
    let end = [last(&b.expected), last(&b.p90)]
        .into_iter()
        .flatten()
        .fold(now + Duration::days(1), DateTime::max);
    // A week's margin after the last date, so that the last step shows.
    let end = end + (end - start) / 20;
    let max = b.open.iter().map(|p| p.open).max().unwrap_or(0).max(1);
    let (left, width, top, height) = (50.0, 920.0, 10.0, 220.0);
    let bottom = top + height;
    let span = (end - start).num_seconds().max(1) as f64;
    let x = |t: DateTime<Utc>| left + width * ((t - start).num_seconds() as f64 / span);
    let y = |n: u64| bottom - height * n as f64 / max as f64;
    let mut s = format!(
        "<figure class=\"chart scroll\"><figcaption>{}</figcaption><svg class=\"burndown\" viewBox=\"0 0 {WIDTH} {:.0}\" role=\"img\" aria-labelledby=\"burndown-title\"><title id=\"burndown-title\">Open migrations over time, and the forecast ahead</title>\n",
        esc(&caption(b)),
        bottom + 30.0
    );
    for tick in count_ticks(max) {
        let ty = y(tick);
        let _ = writeln!(s, "<line class=\"grid\" x1=\"{left}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\"/><text class=\"count-tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>", left + width, left - 6.0, ty + 4.0);
    }
    for tick in time_ticks(start, end, width) {
        let tx = x(tick.at);
        let _ = writeln!(
            s,
            "<text class=\"bd-tick\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 18.0,
            tick.label
        );
    }
    let _ = writeln!(
        s,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\"/>",
        left + width
    );
    let past = steps(&b.open, Some(0), now, &x, &y);
    let _ = writeln!(s, "<path class=\"open-line\" d=\"{past}\" fill=\"none\" stroke=\"#111\" stroke-width=\"2.5\"><title>open migrations</title></path>");
    let ahead = [
        (
            &b.expected,
            "expected",
            "8 4",
            "when each is expected to be done (median)",
        ),
        (&b.p90, "p90", "2 3", "90th percentile"),
    ];
    for (points, class, dashes, what) in ahead {
        if points.is_empty() {
            continue;
        }
        let d = steps(points, None, end, &x, &y);
        let _ = writeln!(s, "<path class=\"{class}-line\" d=\"{d}\" fill=\"none\" stroke=\"#333\" stroke-width=\"2\" stroke-dasharray=\"{dashes}\"><title>{what}</title></path>");
    }
    let tx = x(now);
    let _ = writeln!(s, "<line class=\"today\" x1=\"{tx:.1}\" y1=\"{top}\" x2=\"{tx:.1}\" y2=\"{bottom:.1}\"/><text class=\"today-label\" x=\"{:.1}\" y=\"{:.1}\">today</text>", tx + 4.0, top + 12.0);
    s.push_str("</svg>\n<p class=\"meta\">Solid: migrations open (not done, not closed). Dashed: still open as each is expected to be done (the median of past stays in the stages ahead); dotted: at the 90th percentile.");
    if b.unknown > 0 {
        let _ = write!(
            s,
            " {} without a forecast stay open in both.",
            plural(b.unknown, "migration")
        );
    }
    s.push_str("</p></figure>\n");
    s
}

/// "Expected done by 2027-01-04 (90%: 2027-02-01)", or what is known.
fn caption(b: &Burndown) -> String {
    let day = |p: Option<&Point>| p.map(|p| p.at.format("%Y-%m-%d").to_string());
    let now_open = b.open.last().map(|p| p.open).unwrap_or(0);
    match (day(b.expected.last()), day(b.p90.last())) {
        _ if now_open == 0 => "Burn-down: nothing open".to_string(),
        (Some(e), Some(p)) if b.unknown == 0 => {
            format!("Burn-down: all {now_open} open expected done by {e} (90%: {p})")
        }
        (Some(e), Some(p)) => format!(
            "Burn-down: {} with a forecast, expected done by {e} (90%: {p})",
            plural(now_open - b.unknown.min(now_open), "migration")
        ),
        _ => "Burn-down: no forecast yet".to_string(),
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A step line through `points` (from `from` before the first, when given), held level to
/// `until`.
fn steps(
    points: &[Point],
    from: Option<u64>,
    until: DateTime<Utc>,
    x: &dyn Fn(DateTime<Utc>) -> f64,
    y: &dyn Fn(u64) -> f64,
) -> String {
    let mut d = String::new();
    for (i, p) in points.iter().enumerate() {
        match (i, from) {
            (0, Some(n)) => {
                let _ = write!(d, "M{:.1},{:.1}V{:.1}", x(p.at), y(n), y(p.open));
            }
            (0, None) => {
                let _ = write!(d, "M{:.1},{:.1}", x(p.at), y(p.open));
            }
            _ => {
                let _ = write!(d, "H{:.1}V{:.1}", x(p.at), y(p.open));
            }
        }
    }
    let _ = write!(d, "H{:.1}", x(until));
    d
}
