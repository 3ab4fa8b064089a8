//! What the remote trackers share about failing requests: which failures to retry, how
//! long the server asks us to wait, exponential backoff with jitter (backon), and pacing
//! when the rate limit runs low. GitLab and GitHub differ only in header names.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};

use super::TrackerError;

/// How many attempts, from which first delay.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Attempts per request before giving up (the first try included).
    pub attempts: usize,
    /// The first retry's delay; it doubles from there, with jitter.
    pub min_delay: Duration,
}

impl Policy {
    /// Defaults: 6 attempts from 500 ms; `SHEPHERD_RETRIES` and `SHEPHERD_RETRY_BASE_MS`
    /// change them (tests use short delays).
    pub fn from_env() -> Policy {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Policy {
            attempts: env("SHEPHERD_RETRIES").unwrap_or(6).clamp(1, 20) as usize,
            min_delay: Duration::from_millis(env("SHEPHERD_RETRY_BASE_MS").unwrap_or(500)),
        }
    }
}

/// A failed attempt.
#[derive(Debug)]
pub struct Failure {
    /// The HTTP status; `None` when no response came (a broken connection).
    pub status: Option<u16>,
    /// Whether the request is safe to send twice (everything but POST).
    pub idempotent: bool,
    /// How long the server asked us to wait, if it did.
    pub wait: Option<Duration>,
    pub message: String,
}

impl Failure {
    /// 429, and a 403 that comes with a wait (GitHub's rate limits), mean the request was
    /// not processed: always try again. A 5xx or a broken connection may come after the
    /// server did the work, so only requests that are safe to repeat are retried then; a
    /// POST fails, and the next run finds what it made by its marker.
    pub fn retryable(&self) -> bool {
        match self.status {
            Some(429) => true,
            Some(403) => self.wait.is_some(),
            Some(s) if s < 500 => false,
            _ => self.idempotent,
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or runs out of attempts; `what`
/// names the request in the error (method and path, never a token).
pub async fn with_retries<T, F, Fut>(
    policy: &Policy,
    tracker: &str,
    what: &str,
    attempt: F,
) -> Result<T, TrackerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let backoff = ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(policy.min_delay)
        .with_max_delay(Duration::from_secs(60))
        .with_max_times(policy.attempts.saturating_sub(1));
    attempt
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|f: &Failure| f.retryable())
        .adjust(|failure, delay| match (failure.wait, delay) {
            (Some(wait), Some(d)) => Some(wait.max(d)),
            (_, d) => d,
        })
        .notify(|failure, delay| {
            tracing::warn!("{what}: {}; retrying in {delay:?}", failure.message)
        })
        .await
        .map_err(|f| {
            let tries = if f.retryable() {
                format!(" after {} tries", policy.attempts)
            } else {
                String::new()
            };
            TrackerError::Other(format!(
                "{tracker} request {what} failed{tries}: {}",
                f.message
            ))
        })
}

/// The names of a tracker's rate-limit headers.
#[derive(Clone, Copy, Debug)]
pub struct Headers {
    pub remaining: &'static str,
    pub reset: &'static str,
}

pub const GITLAB: Headers = Headers {
    remaining: "ratelimit-remaining",
    reset: "ratelimit-reset",
};
pub const GITHUB: Headers = Headers {
    remaining: "x-ratelimit-remaining",
    reset: "x-ratelimit-reset",
};

/// How long the server asks us to wait: `Retry-After` (seconds), else, when no request is
/// left, until the rate limit resets.
pub fn retry_wait(headers: &http::HeaderMap, names: Headers) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(secs) = get("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs.min(300)));
    }
    let remaining = get(names.remaining).and_then(|v| v.parse::<i64>().ok());
    if remaining.is_some_and(|r| r > 0) {
        return None;
    }
    let reset = get(names.reset)
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|t| DateTime::from_timestamp(t, 0))?;
    (reset - Utc::now())
        .to_std()
        .ok()
        .map(|d| d.min(Duration::from_secs(300)))
}

/// What the last response said of the rate limit, shared by concurrent requests.
#[derive(Default)]
pub struct Pace {
    state: Mutex<(Option<u64>, Option<DateTime<Utc>>)>,
}

impl Pace {
    pub fn note(&self, headers: &http::HeaderMap, names: Headers) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        if let Some(r) = number(names.remaining) {
            let reset = number(names.reset).and_then(|t| DateTime::from_timestamp(t, 0));
            *self.state.lock().expect("pace") = (Some(r.max(0) as u64), reset);
        }
    }

    /// Near the limit, spread the requests left over the time left instead of hitting it.
    pub async fn wait(&self, tracker: &str) {
        let (remaining, reset) = *self.state.lock().expect("pace");
        if let Some(d) = pace_delay(remaining, reset, Utc::now()) {
            tracing::info!("{tracker} rate limit nearly reached; waiting {d:?}");
            tokio::time::sleep(d).await;
        }
    }
}

/// Below 20 requests left, the time until the limit resets is shared out among them, so
/// the run slows down instead of running into 429s.
pub fn pace_delay(
    remaining: Option<u64>,
    reset: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let (remaining, reset) = (remaining?, reset?);
    if remaining >= 20 {
        return None;
    }
    let left = (reset - now).to_std().ok()?.min(Duration::from_secs(60));
    Some(left / (remaining as u32 + 1)).filter(|d| !d.is_zero())
}

/// Removes a token from a text that a library may have put it in.
pub fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "[token]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_slows_down_near_the_limit() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let reset = Some(now + chrono::Duration::seconds(30));
        let cases = [
            (None, reset, None),
            (Some(500), reset, None),
            (Some(20), reset, None),
            (Some(19), reset, Some(1500)),
            (Some(0), reset, Some(30_000)),
            (Some(0), Some(now - chrono::Duration::seconds(1)), None),
            (
                Some(0),
                Some(now + chrono::Duration::seconds(600)),
                Some(60_000),
            ),
        ];
        for (remaining, reset, millis) in cases {
            assert_eq!(
                pace_delay(remaining, reset, now).map(|d| d.as_millis() as u64),
                millis,
                "{remaining:?}"
            );
        }
    }

    #[test]
    fn retry_waits_come_from_the_headers() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_wait(&h, GITHUB), None);
        h.insert(
            "x-ratelimit-reset",
            (Utc::now().timestamp() + 30).to_string().parse().unwrap(),
        );
        h.insert("x-ratelimit-remaining", "4".parse().unwrap());
        assert_eq!(retry_wait(&h, GITHUB), None, "requests are left: no wait");
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        assert!(retry_wait(&h, GITHUB).is_some_and(|d| d.as_secs() >= 28 && d.as_secs() <= 30));
        assert_eq!(retry_wait(&h, GITLAB), None, "GitLab's names differ");
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_wait(&h, GITLAB), Some(Duration::from_secs(7)));
    }

    #[test]
    fn only_safe_requests_are_retried_after_a_server_error() {
        let f = |status, idempotent, wait: Option<u64>| Failure {
            status,
            idempotent,
            wait: wait.map(Duration::from_secs),
            message: String::new(),
        };
        assert!(f(Some(429), false, None).retryable());
        assert!(
            f(Some(403), false, Some(60)).retryable(),
            "a secondary rate limit"
        );
        assert!(!f(Some(403), true, None).retryable(), "a permission error");
        assert!(f(Some(503), true, None).retryable());
        assert!(!f(Some(503), false, None).retryable());
        assert!(f(None, true, None).retryable());
        assert!(!f(Some(404), true, None).retryable());
    }
}
