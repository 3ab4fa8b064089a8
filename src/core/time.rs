//! The times shepherd keeps. Every time it stores or prints is RFC 3339, whose years have
//! four digits: a time after 9999-12-31T23:59:59Z would be written (`+10000-…`) but could
//! never be read back, and one before year 0 likewise (`-0001-…`). `check` refuses both
//! before anything is written, so a rehearsal clock moved too far fails at once instead
//! of leaving a tracker file no command can read.

use chrono::{DateTime, Utc};

/// The latest time shepherd keeps, as people write it.
pub const LATEST: &str = "9999-12-31T23:59:59Z";

/// The earliest time shepherd keeps, as people write it.
pub const EARLIEST: &str = "0000-01-01T00:00:00Z";

/// 9999-12-31T23:59:59Z in seconds since the epoch.
const LATEST_SECONDS: i64 = 253_402_300_799;

/// 0000-01-01T00:00:00Z in seconds since the epoch.
const EARLIEST_SECONDS: i64 = -62_167_219_200;

/// `t`, when RFC 3339 can write it with a four-digit year; else why not, naming `t`.
pub fn check(t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    // A fraction of a second after the latest second is past it too.
    let after = t.timestamp() > LATEST_SECONDS
        || (t.timestamp() == LATEST_SECONDS && t.timestamp_subsec_nanos() > 0);
    if after {
        return Err(format!(
            "{} is past {LATEST}, the latest time shepherd can keep (RFC 3339 writes years with four digits)",
            shown(t)
        ));
    }
    if t.timestamp() < EARLIEST_SECONDS {
        return Err(format!(
            "{} is before {EARLIEST}, the earliest time shepherd can keep (RFC 3339 writes years with four digits)",
            shown(t)
        ));
    }
    Ok(t)
}

/// `t` in RFC 3339, as shepherd prints times (`+10000-…` for one out of range).
pub fn shown(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn four_digit_years_only() {
        assert_eq!(shown(time(LATEST)), LATEST);
        assert_eq!(shown(time(EARLIEST)), EARLIEST);
        for ok in [
            LATEST,
            EARLIEST,
            "2026-01-01T00:00:00Z",
            "9999-12-31T23:59:59+01:00",
        ] {
            assert!(check(time(ok)).is_ok(), "{ok}");
        }
        // An offset can carry a four-digit local time past the end in UTC.
        let err = check(time("9999-12-31T23:59:59-01:00")).unwrap_err();
        assert_eq!(
            err,
            "+10000-01-01T00:59:59Z is past 9999-12-31T23:59:59Z, the latest time shepherd can keep (RFC 3339 writes years with four digits)"
        );
        assert!(check(time("9999-12-31T23:59:59.5Z")).is_err());
        assert!(check(time("0000-01-01T00:00:00+00:01"))
            .unwrap_err()
            .contains("before 0000-01-01T00:00:00Z"));
        // Everything `check` lets through reads back.
        for ok in [LATEST, EARLIEST] {
            let t = check(time(ok)).unwrap();
            assert_eq!(time(&shown(t)), t);
        }
    }
}
