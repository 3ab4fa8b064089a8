//! What the remote trackers share about requests: a timeout on each one, which failures to
//! retry, how long the server asks us to wait, exponential backoff with jitter (backon's
//! `ExponentialBuilder`), pacing when the rate limit runs low, long waits announced on
//! stderr and waits beyond `max_wait` refused. GitLab and GitHub differ only in header
//! names. Nothing here ever prints a token: every message passes through `redact`.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Local, Utc};

/// How requests are timed out and retried.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Attempts per request before giving up (the first try included).
    pub attempts: usize,
    /// The first retry's delay; it doubles from there, with jitter.
    pub min_delay: Duration,
    /// How long to wait for a connection to be set up.
    pub connect_timeout: Duration,
    /// How long one whole request may take, from sending it to its body's last byte. A
    /// request that times out is not retried: the run fails, naming the request.
    pub timeout: Duration,
    /// The longest wait shepherd accepts (a rate limit, `Retry-After`): a longer one fails
    /// at once instead of waiting.
    pub max_wait: Duration,
    /// Where a long wait is announced to the person running shepherd (the CLI prints it on
    /// stderr); `None`: only logged.
    pub announce: Option<fn(&str)>,
}

/// Waits longer than this are announced.
pub const ANNOUNCE_AFTER: Duration = Duration::from_secs(10);

impl Policy {
    /// The retries of a service beside the tracker (Prometheus, Unleash): 3 attempts from
    /// 200 ms, so that a question costs at most about a second more than its requests.
    pub fn for_services() -> Policy {
        Policy {
            attempts: 3,
            min_delay: Duration::from_millis(200),
            ..Policy::default()
        }
    }

    /// At least one attempt.
    pub fn at_least_once(self) -> Policy {
        Policy {
            attempts: self.attempts.max(1),
            ..self
        }
    }

    /// The delays before each retry, doubling from `min_delay` with jitter, at most 5 s
    /// each (for services without rate limits; trackers use `Retrier::run`).
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        use backon::{BackoffBuilder, ExponentialBuilder};
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.attempts.saturating_sub(1))
            .build()
    }
}

impl Default for Policy {
    /// 6 attempts from 500 ms; connect 10 s, whole request 60 s; waits up to 15 min.
    fn default() -> Policy {
        Policy {
            attempts: 6,
            min_delay: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_wait: Duration::from_secs(15 * 60),
            announce: None,
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

/// A request that failed for good: the error to show, and the HTTP status if one came, so
/// that callers can tell "not found" (or "already there") from a real failure.
#[derive(Debug)]
pub struct Failed {
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A duration as people read it in messages: `200 ms`, `45 s`, `15 min`, `1 h 5 min`.
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{} ms", d.as_millis());
    }
    let s = d.as_secs() + u64::from(d.subsec_nanos() >= 500_000_000);
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", (s + 30) / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// What one remote tracker's requests share: its name and address for messages, the retry
/// policy, the slots for requests in flight, the rate limit as the last response told it,
/// and the waits already announced (concurrent requests that all meet one rate limit
/// announce it once).
pub struct Retrier {
    policy: Policy,
    tracker: &'static str,
    url: String,
    names: Headers,
    secret: String,
    pace: Pace,
    /// One permit per request in flight (`--concurrency`): an attempt holds one while it
    /// is sent and answered, not while it waits to be retried.
    slots: tokio::sync::Semaphore,
    announced: Mutex<Option<DateTime<Utc>>>,
    /// Attempts by outcome (`ok`, an HTTP status, `no answer`, `timeout`).
    outcomes: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// What a tracker's requests have come to so far: attempts by outcome, and the rate limit
/// left as the last response told it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestStats {
    pub by_outcome: std::collections::BTreeMap<String, u64>,
    pub rate_limit_remaining: Option<u64>,
}

impl Retrier {
    /// `secret` is the token: removed from every message, in case a library echoes it.
    /// `url` is shown without its user info. At most `in_flight` requests are sent at once.
    pub fn new(
        tracker: &'static str,
        url: &str,
        names: Headers,
        policy: Policy,
        secret: &str,
        in_flight: usize,
    ) -> Retrier {
        Retrier {
            policy,
            tracker,
            url: crate::http::redact::url(url),
            names,
            secret: secret.to_string(),
            pace: Pace::default(),
            slots: tokio::sync::Semaphore::new(in_flight.max(1)),
            announced: Mutex::new(None),
            outcomes: Mutex::new(Default::default()),
        }
    }

    /// The attempts so far by outcome, and the rate limit left.
    pub fn stats(&self) -> RequestStats {
        RequestStats {
            by_outcome: self
                .outcomes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            rate_limit_remaining: self.pace.state.lock().unwrap_or_else(|e| e.into_inner()).0,
        }
    }

    fn count(&self, outcome: &str) {
        *self
            .outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The text with the token taken out.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secret)
    }

    /// Reads a response's rate-limit headers: remembered for pacing, and the wait the
    /// server asks for, if it asks for one.
    pub fn observe(&self, headers: &http::HeaderMap) -> Option<Duration> {
        self.pace.note(headers, self.names);
        retry_wait(headers, self.names)
    }

    /// Runs `attempt` until it succeeds, fails for good, or runs out of attempts; each
    /// attempt has `policy.timeout` to finish. `method` and `path` name the request in
    /// messages (never a token).
    pub async fn run<T, F, Fut>(
        &self,
        method: &str,
        path: &str,
        mut attempt: F,
    ) -> Result<T, Failed>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let what = format!("{method} {path}");
        let mut delays = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.policy.min_delay)
            .with_max_delay(Duration::from_secs(60))
            .with_max_times(self.policy.attempts.saturating_sub(1))
            .build();
        let mut tries = 0;
        loop {
            if let Some(d) = self.pace.delay(Utc::now()) {
                // Pacing is a courtesy: it never waits longer than a wait allowed.
                let d = d.min(self.policy.max_wait);
                tracing::info!("{} rate limit nearly reached; waiting {d:?}", self.tracker);
                self.announce(d, &format!("{} rate limit nearly reached", self.tracker));
                tokio::time::sleep(d).await;
            }
            tries += 1;
            // The semaphore is never closed; were it, the attempt would go without a slot.
            let slot = self.slots.acquire().await.ok();
            let answer = tokio::time::timeout(self.policy.timeout, attempt()).await;
            drop(slot);
            let failure = match answer {
                Ok(Ok(value)) => {
                    self.count("ok");
                    return Ok(value);
                }
                Ok(Err(failure)) => {
                    self.count(&failure.status.map_or("no answer".into(), |s| s.to_string()));
                    failure
                }
                Err(_) => {
                    self.count("timeout");
                    return Err(Failed {
                        status: None,
                        message: format!(
                            "{} at {} did not answer {what} within {}",
                            self.tracker,
                            self.url,
                            seconds(self.policy.timeout)
                        ),
                    });
                }
            };
            let next = if failure.retryable() {
                delays.next()
            } else {
                None
            };
            let Some(backoff) = next else {
                let after = if failure.retryable() {
                    format!(" after {tries} tries")
                } else {
                    String::new()
                };
                return Err(Failed {
                    status: failure.status,
                    message: self.redact(&format!(
                        "{} request {what} failed{after}: {}",
                        self.tracker, failure.message
                    )),
                });
            };
            let delay = failure.wait.map_or(backoff, |w| w.max(backoff));
            let why = match (failure.status, failure.wait) {
                (Some(429 | 403), _) | (_, Some(_)) => format!("{} rate limit", self.tracker),
                _ => format!("{} answered {what} with {}", self.tracker, failure.message),
            };
            if delay > self.policy.max_wait {
                return Err(Failed {
                    status: failure.status,
                    message: self.redact(&format!(
                        "{why}: {} asks to wait {} before {what} is sent again, longer than the \
                         longest wait allowed ({}, --max-wait): {}",
                        self.tracker,
                        seconds(delay),
                        seconds(self.policy.max_wait),
                        failure.message
                    )),
                });
            }
            tracing::warn!(
                "{}",
                self.redact(&format!(
                    "{what}: {}; retrying in {delay:?}",
                    failure.message
                ))
            );
            self.announce(delay, &why);
            tokio::time::sleep(delay).await;
        }
    }

    /// Tells the person running shepherd, once, that the run waits more than
    /// `ANNOUNCE_AFTER`, and until when (local time of day).
    fn announce(&self, wait: Duration, why: &str) {
        if wait <= ANNOUNCE_AFTER {
            return;
        }
        let Some(until) = chrono::Duration::from_std(wait)
            .ok()
            .and_then(|w| Utc::now().checked_add_signed(w))
        else {
            return;
        };
        {
            let mut last = self.announced.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| until <= t + chrono::Duration::seconds(2)) {
                return;
            }
            *last = Some(until);
        }
        let line = self.redact(&format!(
            "{why}: waiting {}, until {} local time",
            seconds(wait),
            until.with_timezone(&Local).format("%H:%M:%S")
        ));
        match self.policy.announce {
            Some(announce) => announce(&line),
            None => tracing::warn!("{line}"),
        }
    }
}

/// An error and its causes, without repeats: what a transport error says in full.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
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
/// left, until the rate limit resets. Not capped: `Policy::max_wait` decides whether the
/// wait is accepted.
pub fn retry_wait(headers: &http::HeaderMap, names: Headers) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(secs) = get("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    let remaining = get(names.remaining).and_then(|v| v.parse::<i64>().ok());
    if remaining.is_some_and(|r| r > 0) {
        return None;
    }
    let reset = get(names.reset)
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|t| DateTime::from_timestamp(t, 0))?;
    (reset - Utc::now()).to_std().ok()
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
            *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (Some(r.max(0) as u64), reset);
        }
    }

    /// How long to wait before the next request, near the limit.
    pub fn delay(&self, now: DateTime<Utc>) -> Option<Duration> {
        let (remaining, reset) = *self.state.lock().unwrap_or_else(|e| e.into_inner());
        pace_delay(remaining, reset, now)
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
        h.insert("retry-after", "3600".parse().unwrap());
        assert_eq!(
            retry_wait(&h, GITLAB),
            Some(Duration::from_secs(3600)),
            "not capped: max_wait decides"
        );
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

    #[test]
    fn durations_read_well() {
        for (secs, text) in [
            (1, "1 s"),
            (60, "60 s"),
            (119, "119 s"),
            (900, "15 min"),
            (3900, "65 min"),
            (7260, "2 h 1 min"),
        ] {
            assert_eq!(seconds(Duration::from_secs(secs)), text);
        }
        assert_eq!(seconds(Duration::from_millis(250)), "250 ms");
    }

    fn retrier(policy: Policy) -> Retrier {
        Retrier::new(
            "GitLab",
            "http://127.0.0.1:9",
            GITLAB,
            policy,
            "glpat-secret",
            4,
        )
    }

    fn rate_limited(wait: u64) -> Failure {
        Failure {
            status: Some(429),
            idempotent: true,
            wait: Some(Duration::from_secs(wait)),
            message: "429 glpat-secret is over its limit".into(),
        }
    }

    #[tokio::test]
    async fn a_wait_beyond_max_wait_fails_at_once() {
        let r = retrier(Policy {
            max_wait: Duration::from_secs(30),
            ..Policy::default()
        });
        let started = std::time::Instant::now();
        let mut calls = 0;
        let err = r
            .run("GET", "/user", || {
                calls += 1;
                async { Err::<(), _>(rate_limited(3600)) }
            })
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(calls, 1);
        assert_eq!(err.status, Some(429));
        assert!(
            err.message.starts_with("GitLab rate limit: GitLab asks to wait 60 min before GET /user is sent again, longer than the longest wait allowed (30 s, --max-wait)"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("glpat-secret"), "{}", err.message);
    }

    #[tokio::test]
    async fn a_request_that_never_ends_times_out_naming_the_tracker() {
        let r = retrier(Policy {
            timeout: Duration::from_millis(200),
            ..Policy::default()
        });
        let started = std::time::Instant::now();
        let err = r
            .run("GET", "/projects/x/issues", || {
                std::future::pending::<Result<(), Failure>>()
            })
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            err.message,
            "GitLab at http://127.0.0.1:9 did not answer GET /projects/x/issues within 200 ms"
        );
    }

    #[tokio::test]
    async fn retries_honour_the_wait_and_then_give_up_clearly() {
        let r = retrier(Policy {
            attempts: 3,
            min_delay: Duration::from_millis(1),
            ..Policy::default()
        });
        let started = std::time::Instant::now();
        let mut calls = 0;
        let err = r
            .run("GET", "/user", || {
                calls += 1;
                async { Err::<(), _>(rate_limited(1)) }
            })
            .await
            .unwrap_err();
        assert_eq!(calls, 3);
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "Retry-After: 1 honoured twice"
        );
        assert_eq!(
            err.message,
            "GitLab request GET /user failed after 3 tries: 429 [token] is over its limit"
        );
    }
}
