//! What the HTTP clients of the services beside the tracker share (Prometheus for metric
//! gates, Unleash for flags): the address checked and shown without user info, the token
//! as a sensitive header, and a client with shepherd's user agent and timeouts. Their
//! retries are `retry::Policy::for_services`: a short schedule, no rate limits.

use std::time::Duration;

use super::retry::chain;

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
    let written = crate::http::redact::url(url);
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
    builder(connect_timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", chain(&e)))
}

/// A client builder with shepherd's user agent and `connect_timeout`: every reqwest client
/// of shepherd's starts here (a tracker times each request itself, through its `Retrier`).
pub fn builder(connect_timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("shepherd/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
}
