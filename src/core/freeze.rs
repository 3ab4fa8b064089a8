//! Change freezes (DESIGN §13): a period is a start cron, an end cron (five fields, as GitLab
//! deploy freeze periods write them, `0 23 * * 5` / `0 7 * * 1`) and an IANA time zone. A
//! period is in effect at a moment when its latest start at or before that moment is later
//! than its latest end at or before it; it lasts until its next end. Where the file, table
//! or API a period came from is the caller's to say: errors here name the field.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// How many periods that take over from each other `frozen_until` follows: more is a
/// freeze that never ends, which the last end found stands for.
const MAX_CHAIN: usize = 64;

/// One freeze period, checked: both crons parse and the zone exists.
#[derive(Clone, Debug)]
pub struct Freeze {
    /// The start cron as written.
    pub start: String,
    /// The end cron as written.
    pub end: String,
    pub timezone: Tz,
    start_cron: Cron,
    end_cron: Cron,
}

/// Why a freeze period cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FreezeError {
    #[error("bad `{field}` cron `{text}`: {reason} (five fields: minute hour day-of-month month day-of-week, e.g. `0 23 * * 5`)")]
    Cron {
        field: &'static str,
        text: String,
        reason: String,
    },
    #[error("unknown time zone `{0}` (an IANA name such as UTC or Europe/Berlin)")]
    Zone(String),
}

impl Freeze {
    /// A period from its start and end crons and its time zone (`None`: UTC).
    pub fn new(start: &str, end: &str, timezone: Option<&str>) -> Result<Freeze, FreezeError> {
        let zone = timezone.map(str::trim).filter(|z| !z.is_empty());
        let timezone = match zone {
            None => Tz::UTC,
            Some(z) => z
                .parse::<Tz>()
                .map_err(|_| FreezeError::Zone(z.to_string()))?,
        };
        Ok(Freeze {
            start_cron: cron("start", start)?,
            end_cron: cron("end", end)?,
            start: start.trim().to_string(),
            end: end.trim().to_string(),
            timezone,
        })
    }

    /// The zone's IANA name.
    pub fn zone_name(&self) -> &'static str {
        self.timezone.name()
    }

    /// Until when this period, in effect at `now`, lasts; `None` when it is not in effect.
    pub fn until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let at = now.with_timezone(&self.timezone);
        let started = self.start_cron.find_previous_occurrence(&at, true).ok()?;
        let ended = self.end_cron.find_previous_occurrence(&at, true).ok();
        if ended.is_some_and(|e| e >= started) {
            return None;
        }
        let next_end = self.end_cron.find_next_occurrence(&at, false).ok()?;
        Some(next_end.with_timezone(&Utc))
    }
}

/// A five-field cron (no seconds, no year), or why `text` is none.
fn cron(field: &'static str, text: &str) -> Result<Cron, FreezeError> {
    let fail = |reason: String| FreezeError::Cron {
        field,
        text: text.to_string(),
        reason,
    };
    if text.split_whitespace().count() != 5 {
        return Err(fail(format!("{} fields", text.split_whitespace().count())));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| fail(e.to_string()))
}

/// Until when the freeze in effect at `now` lasts: the latest end of the periods in effect,
/// followed through periods in effect at that end; `None` when none is in effect.
pub fn frozen_until(freezes: &[Freeze], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut until = freezes.iter().filter_map(|f| f.until(now)).max()?;
    for _ in 0..MAX_CHAIN {
        match freezes.iter().filter_map(|f| f.until(until)).max() {
            Some(later) if later > until => until = later,
            _ => break,
        }
    }
    Some(until)
}

/// The time a freeze lasts until, as status says it: `2026-12-28 00:00 UTC`.
pub fn shown(until: DateTime<Utc>) -> String {
    until.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a test time")
            .with_timezone(&Utc)
    }

    fn freeze(start: &str, end: &str, zone: Option<&str>) -> Freeze {
        Freeze::new(start, end, zone).expect("a good period")
    }

    /// Each case: the periods, the moment, the answer.
    fn check(freezes: &[Freeze], cases: &[(&str, Option<&str>)]) {
        for (now, want) in cases {
            assert_eq!(
                frozen_until(freezes, at(now)),
                want.map(at),
                "frozen_until at {now}"
            );
        }
    }

    #[test]
    fn friday_night_to_monday_morning() {
        // 2026-12-04 is a Friday.
        let weekend = [freeze("0 23 * * 5", "0 7 * * 1", None)];
        check(
            &weekend,
            &[
                ("2026-12-04T22:59:59Z", None),
                ("2026-12-04T23:00:00Z", Some("2026-12-07T07:00:00Z")),
                // Crons fire on whole minutes: every moment of a minute has one answer
                // (the engine works it out once a minute).
                ("2026-12-04T23:00:30Z", Some("2026-12-07T07:00:00Z")),
                ("2026-12-07T07:00:30Z", None),
                ("2026-12-05T12:00:00Z", Some("2026-12-07T07:00:00Z")),
                ("2026-12-07T06:59:59Z", Some("2026-12-07T07:00:00Z")),
                ("2026-12-07T07:00:00Z", None),
                ("2026-12-09T12:00:00Z", None),
            ],
        );
    }

    #[test]
    fn a_zone_with_daylight_saving_time() {
        // Berlin goes from CET (+1) to CEST (+2) on 2026-03-29: the freeze that starts on
        // Friday 22:00 CET ends on Monday 06:00 CEST, 04:00 UTC; the week before, 05:00 UTC.
        let weekend = [freeze("0 22 * * 5", "0 6 * * 1", Some("Europe/Berlin"))];
        check(
            &weekend,
            &[
                ("2026-03-20T20:59:00Z", None),
                ("2026-03-20T21:00:00Z", Some("2026-03-23T05:00:00Z")),
                ("2026-03-28T12:00:00Z", Some("2026-03-30T04:00:00Z")),
                ("2026-03-30T04:00:00Z", None),
                // Autumn: CEST until 2026-10-25, so Friday 22:00 is 20:00 UTC.
                ("2026-10-23T20:30:00Z", Some("2026-10-26T05:00:00Z")),
            ],
        );
    }

    #[test]
    fn a_year_end_freeze() {
        let year_end = [freeze("0 0 20 12 *", "0 0 3 1 *", None)];
        check(
            &year_end,
            &[
                ("2026-12-19T23:59:00Z", None),
                ("2026-12-20T00:00:00Z", Some("2027-01-03T00:00:00Z")),
                ("2026-12-28T00:00:00Z", Some("2027-01-03T00:00:00Z")),
                ("2027-01-02T23:59:59Z", Some("2027-01-03T00:00:00Z")),
                ("2027-01-03T00:00:00Z", None),
                ("2027-06-01T00:00:00Z", None),
            ],
        );
        let new_york = [freeze("0 0 20 12 *", "0 0 3 1 *", Some("America/New_York"))];
        check(
            &new_york,
            &[
                ("2026-12-20T04:59:00Z", None),
                ("2026-12-28T00:00:00Z", Some("2027-01-03T05:00:00Z")),
            ],
        );
    }

    #[test]
    fn the_latest_end_and_chains_of_periods() {
        let periods = [
            freeze("0 23 * * 5", "0 7 * * 1", None),
            // Overlaps the weekend's end: Monday 06:00 to 12:00.
            freeze("0 6 * * 1", "0 12 * * 1", None),
            // In effect with the weekend, ending earlier.
            freeze("0 0 * * 6", "0 0 * * 0", None),
        ];
        check(
            &periods,
            &[
                ("2026-12-05T12:00:00Z", Some("2026-12-07T12:00:00Z")),
                ("2026-12-07T06:30:00Z", Some("2026-12-07T12:00:00Z")),
                ("2026-12-07T12:00:00Z", None),
            ],
        );
        check(&[], &[("2026-12-05T12:00:00Z", None)]);
    }

    #[test]
    fn bad_crons_and_zones_are_named() {
        let bad = |start: &str, end: &str, zone: Option<&str>| {
            Freeze::new(start, end, zone)
                .expect_err("a bad period")
                .to_string()
        };
        let e = bad("0 23 * * 5 *", "0 7 * * 1", None);
        assert!(
            e.starts_with("bad `start` cron `0 23 * * 5 *`: 6 fields"),
            "{e}"
        );
        let e = bad("0 23 * * 5", "61 7 * * 1", None);
        assert!(e.starts_with("bad `end` cron `61 7 * * 1`"), "{e}");
        let e = bad("0 23 * * 5", "0 7 * * 1", Some("Mars/Olympus"));
        assert!(e.starts_with("unknown time zone `Mars/Olympus`"), "{e}");
        assert_eq!(
            freeze("0 23 * * 5", "0 7 * * 1", Some("Europe/Berlin")).zone_name(),
            "Europe/Berlin"
        );
    }
}
