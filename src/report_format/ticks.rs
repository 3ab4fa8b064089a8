//! Axis ticks: round counts for the funnels, and calendar ticks for the timeline — hours
//! for a span of hours, days or Mondays for weeks, months or years for longer spans — at
//! most as many as fit side by side, never the same label twice.

use chrono::{DateTime, Datelike, TimeZone, Utc};

/// A tick on the time axis: where it stands and what it says.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub at: DateTime<Utc>,
    pub label: String,
}

/// Never more ticks than this, however wide the axis: a reader wants landmarks, not a ruler.
const MOST: usize = 8;

#[derive(Clone, Copy)]
enum Step {
    Minutes(i64),
    Days(i64),
    /// Mondays, every `n`th week since the first Monday of 1970.
    Weeks(i64),
    Months(i64),
    Years(i64),
}

const STEPS: &[Step] = &[
    Step::Minutes(5),
    Step::Minutes(10),
    Step::Minutes(15),
    Step::Minutes(30),
    Step::Minutes(60),
    Step::Minutes(120),
    Step::Minutes(180),
    Step::Minutes(360),
    Step::Minutes(720),
    Step::Days(1),
    Step::Days(2),
    Step::Weeks(1),
    Step::Weeks(2),
    Step::Months(1),
    Step::Months(2),
    Step::Months(3),
    Step::Months(6),
    Step::Years(1),
    Step::Years(2),
    Step::Years(5),
    Step::Years(10),
    Step::Years(25),
    Step::Years(50),
    Step::Years(100),
    Step::Years(250),
    Step::Years(1000),
];

/// Ticks between `start` and `end` (both included) on an axis `width` units wide, where
/// a character of a label takes about 7 units: the finest calendar step whose labels fit.
pub fn time_ticks(start: DateTime<Utc>, end: DateTime<Utc>, width: f64) -> Vec<Tick> {
    let years_differ = start.year() != end.year();
    for step in STEPS {
        let format = match step {
            Step::Minutes(_) => "%b %-d %H:%M",
            Step::Days(_) | Step::Weeks(_) if years_differ => "%b %-d %Y",
            Step::Days(_) | Step::Weeks(_) => "%b %-d",
            Step::Months(_) => "%b %Y",
            Step::Years(_) => "%Y",
        };
        let sample = end.format(format).to_string().chars().count() as f64;
        let fit = ((width / (sample * 7.0 + 16.0)) as usize).clamp(2, MOST);
        let Some(times) = times(*step, start, end, fit) else {
            continue;
        };
        return times
            .into_iter()
            .map(|at| Tick {
                at,
                label: at.format(format).to_string(),
            })
            .collect();
    }
    Vec::new()
}

/// The times of `step` from `start` to `end`, or `None` when there are more than `most`.
fn times(
    step: Step,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    most: usize,
) -> Option<Vec<DateTime<Utc>>> {
    let mut out = Vec::new();
    let mut push = |t: DateTime<Utc>| {
        if t >= start && t <= end {
            out.push(t);
        }
        out.len() <= most
    };
    match step {
        Step::Minutes(n) => every_second(start, end, n * 60, 0, &mut push)?,
        Step::Days(n) => every_second(start, end, n * 86_400, 0, &mut push)?,
        // 1970-01-05, the first Monday of the epoch, is 4 days in.
        Step::Weeks(n) => every_second(start, end, n * 7 * 86_400, 4 * 86_400, &mut push)?,
        Step::Months(n) | Step::Years(n) => {
            let months = if matches!(step, Step::Years(_)) {
                n * 12
            } else {
                n
            };
            let first = i64::from(start.year()) * 12 + i64::from(start.month0());
            let mut m = first.div_euclid(months) * months;
            while let Some(t) = i32::try_from(m.div_euclid(12)).ok().and_then(|y| {
                Utc.with_ymd_and_hms(y, m.rem_euclid(12) as u32 + 1, 1, 0, 0, 0)
                    .single()
            }) {
                if t > end {
                    break;
                }
                if !push(t) {
                    return None;
                }
                m += months;
            }
        }
    }
    (out.len() <= most).then_some(out)
}

/// Calls `push` with every multiple of `step` seconds (shifted by `offset`) in the span;
/// `None` as soon as `push` says there are too many.
fn every_second(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: i64,
    offset: i64,
    push: &mut impl FnMut(DateTime<Utc>) -> bool,
) -> Option<()> {
    let from = start.timestamp() - offset;
    let mut t = from.div_euclid(step) * step + offset;
    if t < start.timestamp() {
        t += step;
    }
    while t <= end.timestamp() {
        let at = Utc.timestamp_opt(t, 0).single()?;
        if !push(at) {
            return None;
        }
        t += step;
    }
    Some(())
}

/// Round tick values from 0 to `max` for a count axis: at most seven.
pub fn count_ticks(max: u64) -> Vec<u64> {
    let step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
        .into_iter()
        .find(|s| max / s <= 6)
        .unwrap_or(max.div_ceil(6).max(1));
    (0..=max).step_by(step as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn labels(start: &str, span: Duration) -> Vec<String> {
        let start = t(start);
        time_ticks(start, start + span, 660.0)
            .into_iter()
            .map(|t| t.label)
            .collect()
    }

    #[test]
    fn the_step_follows_the_span() {
        let cases: &[(&str, Duration, &[&str])] = &[
            (
                "2026-03-03T09:10:00Z",
                Duration::hours(3),
                &[
                    "Mar 3 09:30",
                    "Mar 3 10:00",
                    "Mar 3 10:30",
                    "Mar 3 11:00",
                    "Mar 3 11:30",
                    "Mar 3 12:00",
                ],
            ),
            (
                "2026-03-01T10:00:00Z",
                Duration::days(5),
                &["Mar 2", "Mar 3", "Mar 4", "Mar 5", "Mar 6"],
            ),
            (
                "2026-02-25T00:00:00Z",
                Duration::days(20),
                &["Mar 2", "Mar 9", "Mar 16"],
            ),
            (
                "2026-01-10T00:00:00Z",
                Duration::days(300),
                &["Mar 2026", "May 2026", "Jul 2026", "Sep 2026", "Nov 2026"],
            ),
            (
                "2025-12-20T00:00:00Z",
                Duration::days(20),
                &["Dec 22 2025", "Dec 29 2025", "Jan 5 2026"],
            ),
            (
                "2001-06-01T00:00:00Z",
                Duration::days(365 * 30),
                &["2005", "2010", "2015", "2020", "2025", "2030"],
            ),
        ];
        for (start, span, want) in cases {
            assert_eq!(labels(start, *span), *want, "{start} + {span}");
        }
    }

    #[test]
    fn labels_are_distinct_and_few_for_any_span() {
        let start = t("2026-01-01T00:00:00Z");
        let mut span = Duration::minutes(61);
        while span < Duration::days(365 * 400) {
            for width in [300.0, 660.0, 2000.0] {
                let ticks = time_ticks(start, start + span, width);
                let mut seen: Vec<&str> = ticks.iter().map(|t| t.label.as_str()).collect();
                assert!(
                    !ticks.is_empty() && ticks.len() <= MOST,
                    "{span} {width}: {seen:?}"
                );
                assert!(ticks.windows(2).all(|w| w[0].at < w[1].at));
                assert!(ticks.iter().all(|k| k.at >= start && k.at <= start + span));
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(seen.len(), ticks.len(), "{span} {width}");
            }
            span = span * 3 / 2;
        }
    }

    #[test]
    fn count_ticks_are_round() {
        assert_eq!(count_ticks(0), [0]);
        assert_eq!(count_ticks(3), [0, 1, 2, 3]);
        assert_eq!(count_ticks(40), [0, 10, 20, 30, 40]);
        assert!(count_ticks(1_000_000).len() <= 7);
    }
}
