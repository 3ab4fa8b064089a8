//! What the HTTP clients of the services beside the tracker share (Prometheus for metric
//! gates, Unleash for flags): the address checked and shown without user info, the token
//! as a sensitive header, a client with shepherd's timeouts, and a short retry schedule
//! (backon, with jitter). The trackers have their own, `tracker::retry`, built for rate
//! limits and long announced waits, which these services do not have.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::tracker::retry::chain;

/// How often and how soon a failed request is tried again.
#[derive(Clone, Copy, Debug)]
pub struct Retries {
    /// Attempts per question, the first included.
    pub attempts: usize,
    /// The first retry's delay; it doubles from there, with jitter.
    pub min_delay: Duration,
}

impl Default for Retries {
    /// 3 attempts, from 200 ms: a question costs at most about a second more than its
    /// requests.
    fn default() -> Retries {
        Retries {
            attempts: 3,
            min_delay: Duration::from_millis(200),
        }
    }
}

impl Retries {
    /// At least one attempt.
    pub fn at_least_once(self) -> Retries {
        Retries {
            attempts: self.attempts.max(1),
            ..self
        }
    }

    /// The delays before each retry, at most 5 s each.
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.attempts.saturating_sub(1))
            .build()
    }
}

/// A service's address as configured (`http(s)://HOST[:PORT][/PATH]`, the address of its
/// web UI) and as people may see it.
pub struct Address {
    /// As configured (it may hold user info, which reqwest sends as basic authentication).
    pub url: url::Url,
    /// Without user info or a trailing `/`.
    pub shown: String,
}

/// Checks `url`, the address of `service`'s web UI; an error names it without a password.
pub fn address(url: &str, service: &str) -> Result<Address, String> {
    let written = crate::redact::url(url);
    let bad = |why: &str| format!("bad {service} URL `{written}`: {why}");
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.host_str().is_none() || !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("write http(s)://HOST[:PORT][/PATH]"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad(&format!(
            "no `?` or `#` part: write the address of {service}'s web UI"
        )));
    }
    let shown = written.trim_end_matches('/').to_string();
    Ok(Address { url: parsed, shown })
}

/// The `Authorization` header for `secret` (`Bearer …` or the token alone, as `value`
/// makes it), marked sensitive; `None` for no token. `var` names where it came from.
pub fn authorization(
    secret: &str,
    value: impl FnOnce(&str) -> String,
    var: &str,
) -> Result<Option<http::HeaderValue>, String> {
    if secret.is_empty() {
        return Ok(None);
    }
    let mut header = http::HeaderValue::from_str(&value(secret))
        .map_err(|_| format!("{var} holds characters a header cannot carry"))?;
    header.set_sensitive(true);
    Ok(Some(header))
}

/// A client with shepherd's user agent, `connect_timeout` to set up a connection and
/// `timeout` for each whole request.
pub fn client(connect_timeout: Duration, timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("shepherd/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", chain(&e)))
}
