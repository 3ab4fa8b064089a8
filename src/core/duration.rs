//! Durations as workflow files write them (`15m`, `2h`, `1d`, `1w`, `1h30m`), as command-line
//! flags write them (the same, plus seconds: `30s`, `1m30s`), and as people read them in gate
//! details (`1h 40m`). Parsing uses checked arithmetic throughout and refuses anything over
//! ten years, so no text, however long its numbers, can overflow a duration or a date later.

use chrono::Duration;

/// The longest duration accepted: ten years (3,653 days).
pub const MAX_DAYS: i64 = 3653;

const MAX_SECONDS: u64 = MAX_DAYS as u64 * 86_400;

/// Workflow units: minutes to weeks, in seconds.
const WORKFLOW_UNITS: &[(char, u64)] = &[('m', 60), ('h', 3_600), ('d', 86_400), ('w', 604_800)];

/// Command-line units: seconds to weeks, in seconds.
const CLI_UNITS: &[(char, u64)] = &[
    ('s', 1),
    ('m', 60),
    ('h', 3_600),
    ('d', 86_400),
    ('w', 604_800),
];

/// Parses `15m`, `2h`, `1d`, `1w` and sums such as `1h30m`. Units: m, h, d, w; at most ten
/// years.
pub fn parse(text: &str) -> Result<Duration, String> {
    let seconds = parse_units(text, WORKFLOW_UNITS, "m, h, d, w; e.g. 15m, 2h")?;
    // At most MAX_SECONDS, far inside both i64 and chrono's range.
    Ok(Duration::seconds(seconds as i64))
}

/// Parses a command-line duration (`--timeout`, `--resync`, `clock advance`,
/// `--stale-after`): `30s`, `15m`, `2h`, `1d`, `1w` and sums such as `1m30s`. At most ten
/// years.
pub fn parse_cli(text: &str) -> Result<std::time::Duration, String> {
    let seconds = parse_units(text, CLI_UNITS, "s, m, h, d, w; e.g. 30s, 1m30s, 2h")?;
    Ok(std::time::Duration::from_secs(seconds))
}

fn parse_units(text: &str, units: &[(char, u64)], help: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("a duration is empty (units {help})"));
    }
    let too_long = || format!("`{text}` is too long: a duration is at most 10 years ({MAX_DAYS}d)");
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if c.is_ascii_digit() {
            let digit = u64::from(c as u8 - b'0');
            let n = number
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(digit))
                .ok_or_else(too_long)?;
            number = Some(n);
            continue;
        }
        let Some(&(_, size)) = units.iter().find(|(u, _)| *u == c) else {
            return Err(format!("`{text}` is not a duration (units {help})"));
        };
        let Some(n) = number.take() else {
            return Err(format!(
                "`{text}` is not a duration (a number must come before `{c}`)"
            ));
        };
        total = n
            .checked_mul(size)
            .and_then(|s| total.checked_add(s))
            .filter(|t| *t <= MAX_SECONDS)
            .ok_or_else(too_long)?;
    }
    if let Some(n) = number {
        let names: Vec<String> = units.iter().map(|(u, _)| u.to_string()).collect();
        return Err(format!(
            "`{text}` is not a duration (the number {n} has no unit {})",
            names.join(", ")
        ));
    }
    Ok(total)
}

/// Like `human`, with seconds below a minute (`30s`): Prometheus windows may be that short.
pub fn human_short(d: Duration) -> String {
    if d < Duration::minutes(1) {
        format!("{}s", d.num_seconds().max(0))
    } else {
        human(d)
    }
}

/// Formats a duration for people: `1w 2d`, `1h 40m`, `5m`, `0m`.
pub fn human(d: Duration) -> String {
    let mut minutes = d.num_minutes().max(0);
    if minutes == 0 && d > Duration::zero() {
        minutes = 1;
    }
    let parts = [(7 * 24 * 60, "w"), (24 * 60, "d"), (60, "h"), (1, "m")];
    let mut out = Vec::new();
    for (size, unit) in parts {
        if minutes >= size {
            out.push(format!("{}{unit}", minutes / size));
            minutes %= size;
        }
    }
    if out.is_empty() {
        return "0m".to_string();
    }
    out.truncate(2);
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let cases = [
            ("15m", Some(15)),
            ("2h", Some(120)),
            ("1d", Some(1440)),
            ("1w", Some(10080)),
            ("1h30m", Some(90)),
            ("3653d", Some(3653 * 1440)),
            ("", None),
            ("15", None),
            ("15s", None),
            ("h", None),
            ("3654d", None),
            ("522w", None),
        ];
        for (text, minutes) in cases {
            assert_eq!(parse(text).ok().map(|d| d.num_minutes()), minutes, "{text}");
        }
        assert_eq!(human(Duration::minutes(100)), "1h 40m");
        assert_eq!(human(Duration::days(8)), "1w 1d");
        assert_eq!(human(Duration::seconds(20)), "1m");
        assert_eq!(human(Duration::zero()), "0m");
    }

    #[test]
    fn command_line_durations_take_seconds() {
        let cases = [
            ("30s", Some(30)),
            ("1m30s", Some(90)),
            ("2h", Some(7200)),
            ("1w1s", Some(604_801)),
            ("0s", Some(0)),
            ("90", None),
            ("1y", None),
            ("s", None),
            ("1.5h", None),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse_cli(text).ok().map(|d| d.as_secs()), seconds, "{text}");
        }
    }

    #[test]
    fn huge_numbers_are_a_clear_error() {
        for text in [
            "2147483647w",
            "9223372036854775807m",
            "99999999999999999999999999999999h",
            "3653d1m",
            "521w999999999999d",
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains("at most 10 years"), "{text}: {err}");
            let err = parse_cli(text).unwrap_err();
            assert!(err.contains("at most 10 years"), "{text}: {err}");
        }
    }

    /// Many generated strings, from an alphabet of digits, units and noise: parsing never
    /// panics, and whatever it accepts is at most ten years.
    #[test]
    fn fuzzed_texts_never_panic() {
        const ALPHABET: &[&str] = &[
            "0",
            "1",
            "2",
            "7",
            "9",
            "99999999",
            "2147483647",
            "s",
            "m",
            "h",
            "d",
            "w",
            "y",
            " ",
            "-",
            "+",
            ".",
            "{{",
            "}}",
            "\u{2028}",
            "٣",
            "é",
            "\n",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let max = Duration::days(MAX_DAYS);
        for _ in 0..20_000 {
            let len = next() % 12;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            if let Ok(d) = parse(&text) {
                assert!(d <= max && d >= Duration::zero(), "{text:?}");
                human(d);
            }
            if let Ok(d) = parse_cli(&text) {
                assert!(d.as_secs() <= MAX_SECONDS, "{text:?}");
            }
        }
    }
}
