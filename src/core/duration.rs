//! Durations as workflow files write them (`15m`, `2h`, `1d`, `1w`, `1h30m`) and as people
//! read them in gate details (`1h 40m`).

use chrono::Duration;

/// Parses `15m`, `2h`, `1d`, `1w` and sums such as `1h30m`. Units: m, h, d, w.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration is empty (write e.g. 15m, 2h, 1d, 1w)".to_string());
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'm' => Duration::minutes(1),
            'h' => Duration::hours(1),
            'd' => Duration::days(1),
            'w' => Duration::weeks(1),
            _ => {
                return Err(format!(
                    "`{text}` is not a duration (units m, h, d, w; e.g. 15m, 2h)"
                ))
            }
        };
        let n: i32 = digits
            .parse()
            .map_err(|_| format!("`{text}` is not a duration (a number must come before `{c}`)"))?;
        total += unit * n;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "`{text}` is not a duration (the number {digits} has no unit m, h, d or w)"
        ));
    }
    Ok(total)
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
            ("", None),
            ("15", None),
            ("15s", None),
            ("h", None),
        ];
        for (text, minutes) in cases {
            assert_eq!(parse(text).ok().map(|d| d.num_minutes()), minutes, "{text}");
        }
        assert_eq!(human(Duration::minutes(100)), "1h 40m");
        assert_eq!(human(Duration::days(8)), "1w 1d");
        assert_eq!(human(Duration::seconds(20)), "1m");
        assert_eq!(human(Duration::zero()), "0m");
    }
}
