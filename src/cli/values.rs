//! Parsers of flag values for clap (`value_parser = …`): issue and merge request
//! references, project paths, RFC 3339 times and durations. A value they reject is a
//! usage error: clap prints it with the usage and exits 2.
//!
//! Durations on the command line accept seconds as well as the units of workflow files
//! (`30s`, `1m30s`, `15m`, `2h`, `14d`, `2w`), and nothing over ten years
//! (`core::duration::parse_cli`).

use chrono::{DateTime, Duration, Utc};

/// `12` or `#12`: an issue number, 1 or more.
pub(super) fn parse_ref(text: &str) -> Result<u64, String> {
    text.trim_start_matches('#')
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is no issue reference: write a number such as 12 or #12"))
}

/// `3` or `!3`: a merge request's number in its project, 1 or more.
pub(super) fn parse_mr(text: &str) -> Result<u64, String> {
    text.trim_start_matches('!')
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!("`{text}` is no merge request number: write a number such as 3 or !3")
        })
}

/// `group/project` (subgroups allowed), or `local` (the local tracker's own project), as
/// `--project` takes it.
pub(super) fn parse_project(text: &str) -> Result<String, String> {
    if text == crate::tracker::local::OWN_PROJECT {
        return Ok(text.to_string());
    }
    crate::tracker::check_project(text)
        .map(|()| text.to_string())
        .map_err(|e| format!("{e}, or `local`"))
}

/// An RFC 3339 time such as `2026-01-01T12:00:00Z`, in UTC, no later than
/// 9999-12-31T23:59:59Z (`core::time::check`: a later one could be stored but not read
/// back).
pub(super) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let t = DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("`{text}` is not an RFC 3339 time such as 2026-01-01T12:00:00Z ({e})")
        })?;
    crate::core::time::check(t).map_err(|e| format!("`{text}`: {e}"))
}

/// `30s`, `15m`, `2h`, `1d`, `1w` and sums such as `1m30s` or `1d12h`
/// (`core::duration::parse_cli`), as a `chrono::Duration`.
pub(super) fn parse_cli_duration(text: &str) -> Result<Duration, String> {
    let d = crate::core::duration::parse_cli(text)?;
    Duration::from_std(d).map_err(|e| format!("`{text}`: {e}"))
}

/// A duration above zero, as `std::time::Duration` (timeouts, waits).
pub(super) fn parse_std_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = crate::core::duration::parse_cli(text)?;
    if d.is_zero() {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_seconds_and_sums() {
        assert_eq!(parse_cli_duration("30s"), Ok(Duration::seconds(30)));
        assert_eq!(parse_cli_duration("1m30s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_cli_duration("14d"), Ok(Duration::days(14)));
        assert_eq!(parse_cli_duration("1d12h"), Ok(Duration::hours(36)));
        assert_eq!(parse_cli_duration("2w"), Ok(Duration::weeks(2)));
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "1.5h",
            "-1h",
            "2147483647w",
            "99999999999999999999s",
        ] {
            assert!(parse_cli_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_std_duration("0s").is_err());
        assert_eq!(
            parse_std_duration("1m"),
            Ok(std::time::Duration::from_secs(60))
        );
    }

    #[test]
    fn references_and_times() {
        assert_eq!(parse_ref("#12"), Ok(12));
        assert!(parse_ref("0").is_err());
        assert!(parse_ref("x").is_err());
        assert!(parse_time("2026-01-01T12:00:00Z").is_ok());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("9999-12-31T23:59:59Z").is_ok());
        let err = parse_time("9999-12-31T23:59:59-00:01").unwrap_err();
        assert!(
            err.starts_with(
                "`9999-12-31T23:59:59-00:01`: +10000-01-01T00:00:59Z is past 9999-12-31T23:59:59Z"
            ),
            "{err}"
        );
        assert_eq!(parse_mr("!3"), Ok(3));
        assert!(parse_mr("#3").is_err() && parse_mr("0").is_err());
        assert_eq!(parse_project("a/b"), Ok("a/b".to_string()));
        assert_eq!(parse_project("local"), Ok("local".to_string()));
        assert!(parse_project("ab").unwrap_err().contains("`ab`"));
    }
}
