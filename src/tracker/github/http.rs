//! GitHub's transport: octocrab's raw methods (so that shepherd sees the headers: `Link`
//! for pages, `X-RateLimit-*` and `Retry-After` for rate limits, `ETag`), each request
//! through the shared `Retrier` (timeout, retries, waits, pacing), with octocrab's connect
//! and read timeouts set and its own retries off. Lists are read 100 a page, the pages
//! after the first side by side, and every page is a conditional request: the `ETag` and
//! the page read before are kept for the run, `If-None-Match` is sent, and a 304 (which
//! costs no rate limit) reuses the page.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, Method};
use octocrab::service::middleware::retry::RetryConfig;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::json::link_page;
use super::Config;
use crate::http::retry::{self, chain, Failed, Failure, Retrier};
use crate::tracker::{Dated, TrackerError};

/// How many list pages (with their `ETag`) a tracker remembers.
const MAX_REMEMBERED_PAGES: usize = 4096;

/// A response that came back 2xx, or 304 to a conditional request.
#[derive(Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub struct Http {
    client: Octocrab,
    pub retrier: Retrier,
    concurrency: usize,
    /// Per list page's path: its `ETag` and the response that carried it.
    etags: Mutex<HashMap<String, (HeaderValue, Response)>>,
}

impl Http {
    /// Builds the client (octocrab wants a Tokio runtime for this); sends nothing.
    pub fn new(config: &Config, token: &str) -> Result<Http, TrackerError> {
        let policy = &config.policy;
        let client = Octocrab::builder()
            .base_uri(config.url.as_str())
            .map_err(|e| TrackerError::Other(format!("bad --github-url `{}`: {e}", config.url)))?
            .personal_token(token.to_string())
            // shepherd retries itself, reading GitHub's rate-limit headers.
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(policy.connect_timeout))
            .set_read_timeout(Some(policy.timeout))
            .build()
            .map_err(|e| {
                TrackerError::Other(format!(
                    "cannot build a GitHub client: {}",
                    retry::redact(&e.to_string(), token)
                ))
            })?;
        Ok(Http {
            client,
            retrier: Retrier::new(
                "GitHub",
                &config.url,
                retry::GITHUB,
                policy.clone(),
                token,
                config.concurrency,
            ),
            concurrency: config.concurrency.max(1),
            etags: Mutex::new(HashMap::new()),
        })
    }

    /// One request with retries and a timeout; errors name it by method and path.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_none_match: Option<&HeaderValue>,
    ) -> Result<Response, Failed> {
        let shown = path.split('?').next().unwrap_or(path);
        self.retrier
            .run(method.as_str(), shown, || {
                self.send_once(method.clone(), path, body, if_none_match)
            })
            .await
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_none_match: Option<&HeaderValue>,
    ) -> Result<Response, Failure> {
        let idempotent = method != Method::POST;
        let rsp = match method {
            Method::GET => {
                let headers = if_none_match.map(|etag| {
                    let mut h = HeaderMap::new();
                    h.insert(http::header::IF_NONE_MATCH, etag.clone());
                    h
                });
                self.client._get_with_headers(path, headers).await
            }
            Method::POST => self.client._post(path, body).await,
            Method::PATCH => self.client._patch(path, body).await,
            Method::PUT => self.client._put(path, body).await,
            Method::DELETE => self.client._delete(path, body).await,
            other => {
                return Err(Failure {
                    status: Some(405),
                    idempotent,
                    wait: None,
                    message: format!("unsupported method {other}"),
                })
            }
        }
        .map_err(|e| transport(&e, idempotent, false))?;
        let status = rsp.status().as_u16();
        let headers = rsp.headers().clone();
        let wait = self.retrier.observe(&headers);
        let text = self
            .client
            .body_to_string(rsp)
            .await
            .map_err(|e| transport(&e, idempotent, true))?;
        if (200..300).contains(&status) || (status == 304 && if_none_match.is_some()) {
            return Ok(Response {
                status,
                headers,
                body: text.into_bytes(),
            });
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(Failure {
            status: Some(status),
            idempotent,
            wait,
            message: format!("{status} {message}"),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failed> {
        let rsp = self.send(Method::GET, path, None, None).await?;
        decode(path, &rsp.body)
    }

    pub async fn write<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Value,
    ) -> Result<T, Failed> {
        let rsp = self.send(method, path, Some(&body), None).await?;
        decode(path, &rsp.body)
    }

    /// One page of a list, as a conditional request when this run has read it before.
    async fn page(&self, path: &str) -> Result<Response, Failed> {
        let cached = self
            .etags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned();
        let rsp = self
            .send(
                Method::GET,
                path,
                None,
                cached.as_ref().map(|(etag, _)| etag),
            )
            .await?;
        if rsp.status == 304 {
            if let Some((_, mut page)) = cached {
                // The page as it was, and as of now: the 304's `Date` says when it was so.
                if let Some(date) = rsp.headers.get(http::header::DATE) {
                    page.headers.insert(http::header::DATE, date.clone());
                }
                return Ok(page);
            }
        }
        if let Some(etag) = rsp.headers.get(http::header::ETAG) {
            let mut etags = self.etags.lock().unwrap_or_else(|e| e.into_inner());
            // A long-running service asks with a new `since` every time: keep the memory
            // bounded by forgetting everything now and then (the next look is unconditional).
            if etags.len() >= MAX_REMEMBERED_PAGES {
                etags.clear();
            }
            etags.insert(path.to_string(), (etag.clone(), rsp.clone()));
        }
        Ok(rsp)
    }

    /// The pages of a list, 100 at a time and one after the other, for as long as the last
    /// item of each satisfies `more` (a list sorted newest first, read back to a moment).
    pub async fn pages_while<T: DeserializeOwned>(
        &self,
        path: &str,
        more: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, Failed> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out: Vec<T> = Vec::new();
        let mut next = Some(1);
        while let Some(page) = next {
            let rsp = self
                .page(&format!("{path}{sep}per_page=100&page={page}"))
                .await?;
            let items: Vec<T> = decode(path, &rsp.body)?;
            next = link_page(link(&rsp), "next")
                .filter(|n| *n > page)
                .filter(|_| items.last().is_some_and(&more));
            out.extend(items);
        }
        Ok(out)
    }

    /// Every page of a list, 100 at a time: the `Link` header's `last` says how many, and
    /// the pages after the first are fetched side by side.
    pub async fn all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, Failed> {
        Ok(self.all_dated(path).await?.value)
    }

    /// `all`, with the earliest `Date` its pages were answered at (`None` when one had
    /// none): what a cache needs to know that the list shows every write made before.
    pub async fn all_dated<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Dated<Vec<T>>, Failed> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let sep = if path.contains('?') { '&' } else { '?' };
        let page_path = |page: u64| format!("{path}{sep}per_page=100&page={page}");
        let first = self.page(&page_path(1)).await?;
        let mut answered = date(&first);
        let mut out: Vec<T> = decode(path, &first.body)?;
        if let Some(last) = link_page(link(&first), "last").filter(|l| *l > 1) {
            let mut pages: Vec<(u64, Option<DateTime<Utc>>, Vec<T>)> = stream::iter(2..=last)
                .map(|page| {
                    let p = page_path(page);
                    async move {
                        let rsp = self.page(&p).await?;
                        Ok::<_, Failed>((page, date(&rsp), decode::<Vec<T>>(path, &rsp.body)?))
                    }
                })
                .buffer_unordered(self.concurrency)
                .try_collect()
                .await?;
            pages.sort_by_key(|(p, _, _)| *p);
            for (_, at, items) in pages {
                answered = earliest(answered, at);
                out.extend(items);
            }
        } else {
            let mut next = link_page(link(&first), "next");
            while let Some(page) = next {
                let rsp = self.page(&page_path(page)).await?;
                answered = earliest(answered, date(&rsp));
                out.extend(decode::<Vec<T>>(path, &rsp.body)?);
                next = link_page(link(&rsp), "next").filter(|n| *n > page);
            }
        }
        Ok(Dated {
            value: out,
            answered,
        })
    }
}

/// When GitHub answered: the response's `Date` (RFC 7231's IMF-fixdate, whole seconds).
fn date(rsp: &Response) -> Option<DateTime<Utc>> {
    let text = rsp.headers.get(http::header::DATE)?.to_str().ok()?;
    DateTime::parse_from_rfc2822(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The earlier of two answers' moments; unknown when either is.
fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    Some(a?.min(b?))
}

/// A response's `Link` header (empty without one).
fn link(rsp: &Response) -> &str {
    rsp.headers
        .get(http::header::LINK)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A request that got no (whole) response. One whose connection was never made sent
/// nothing and may always be tried again; after that, only requests safe to repeat.
fn transport(e: &octocrab::Error, idempotent: bool, reading: bool) -> Failure {
    let text = chain(e);
    let connect = !reading
        && [
            "tcp connect",
            "Connection refused",
            "(Connect)",
            "dns error",
        ]
        .iter()
        .any(|s| text.contains(s));
    let what = if connect {
        "cannot connect"
    } else if reading || text.contains("connection closed before message") {
        "the connection broke before the whole response came"
    } else {
        "the request failed"
    };
    Failure {
        status: None,
        idempotent: idempotent || connect,
        wait: None,
        message: format!("{what}: {text}"),
    }
}

pub fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, Failed> {
    serde_json::from_slice(body).map_err(|e| Failed {
        status: None,
        message: format!(
            "GitHub answered {} with unexpected JSON: {e}",
            what.split('?').next().unwrap_or(what)
        ),
    })
}
