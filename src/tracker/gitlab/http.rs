//! GitLab's transport: a reqwest client of shepherd's own (so that it has a connect
//! timeout) sending the `gitlab` crate's endpoints with `PRIVATE-TOKEN`, each request
//! through the shared `Retrier` (timeout, retries, waits, pacing), and lists read 100 a
//! page, the pages after the first fetched side by side (`x-total-pages`, else
//! `x-next-page`).

use gitlab::api::endpoint_prelude::*;
use serde::de::DeserializeOwned;

use super::Config;
use crate::http::retry::{self, chain, Failed, Failure, Retrier};
use crate::tracker::TrackerError;

/// A response that came back 2xx.
pub struct Response {
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

pub struct Http {
    client: reqwest::Client,
    /// `{url}/api/v4/`.
    rest: url::Url,
    token: http::HeaderValue,
    pub retrier: Retrier,
    concurrency: usize,
    /// The instance's URL as messages show it (no user info).
    shown: String,
    /// Whether any request has been answered: a failure before is a failure to connect.
    answered: std::sync::atomic::AtomicBool,
}

impl Http {
    pub fn new(config: &Config, token: &str) -> Result<Http, TrackerError> {
        let bad = |why: String| {
            TrackerError::Other(format!("bad --gitlab-url `{}`: {why}", config.shown()))
        };
        let base = url::Url::parse(&config.url).map_err(|e| bad(e.to_string()))?;
        if base.host_str().is_none() || !matches!(base.scheme(), "http" | "https") {
            return Err(bad("write http(s)://HOST[:PORT][/PATH]".into()));
        }
        let rest = url::Url::parse(&format!("{}/api/v4/", config.url.trim_end_matches('/')))
            .map_err(|e| bad(e.to_string()))?;
        let mut token_header = http::HeaderValue::from_str(token).map_err(|_| {
            TrackerError::Other("the GitLab token contains characters a header cannot carry".into())
        })?;
        token_header.set_sensitive(true);
        let client = crate::http::service::builder(config.policy.connect_timeout)
            .build()
            .map_err(|e| TrackerError::Other(format!("cannot build an HTTP client: {e}")))?;
        Ok(Http {
            client,
            rest,
            token: token_header,
            retrier: Retrier::new(
                "GitLab",
                &config.url,
                retry::GITLAB,
                config.policy.clone(),
                token,
                config.concurrency,
            ),
            concurrency: config.concurrency.max(1),
            shown: config.shown(),
            answered: Default::default(),
        })
    }

    /// One request with retries and a timeout; errors name it by method and path.
    pub async fn send<E: Endpoint + Sync>(
        &self,
        endpoint: &E,
        page: Option<u64>,
    ) -> Result<Response, Failed> {
        let method = endpoint.method();
        let sent = self
            .retrier
            .run(method.as_str(), &endpoint.endpoint(), || {
                self.send_once(endpoint, page)
            })
            .await;
        self.connected(sent)
    }

    /// The token and the connection are checked by the run's first request, whichever it
    /// is (no request of its own): a 401 is a refused token, and a failure to reach GitLab
    /// before anything was answered is a failure to connect (a request that was never
    /// answered in time says so itself).
    fn connected(&self, sent: Result<Response, Failed>) -> Result<Response, Failed> {
        use std::sync::atomic::Ordering;
        let f = match sent {
            Ok(rsp) => {
                self.answered.store(true, Ordering::Relaxed);
                return Ok(rsp);
            }
            Err(f) => f,
        };
        let never = !self.answered.load(Ordering::Relaxed);
        let why = match f.status {
            Some(401) => "the token was refused (401 Unauthorized)".to_string(),
            _ if f.message.starts_with("GitLab at ") => return Err(f),
            None | Some(500..) if never => f.message.clone(),
            _ => return Err(f),
        };
        Err(Failed {
            status: f.status,
            message: format!("cannot connect to GitLab at {}: {why}", self.shown),
        })
    }

    async fn send_once<E: Endpoint + Sync>(
        &self,
        endpoint: &E,
        page: Option<u64>,
    ) -> Result<Response, Failure> {
        let idempotent = endpoint.method() != Method::POST;
        let refuse = |message: String| Failure {
            status: Some(400),
            idempotent,
            wait: None,
            message,
        };
        let mut url = self
            .rest
            .join(&endpoint.endpoint())
            .map_err(|e| refuse(e.to_string()))?;
        endpoint.parameters().add_to_url(&mut url);
        if let Some(page) = page {
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", "100");
        }
        let mut request = self
            .client
            .request(endpoint.method(), url)
            .header("private-token", self.token.clone());
        match endpoint.body() {
            Ok(Some((mime, data))) => {
                request = request.header(http::header::CONTENT_TYPE, mime).body(data);
            }
            Ok(None) => {}
            Err(e) => return Err(refuse(e.to_string())),
        }
        let rsp = request
            .send()
            .await
            .map_err(|e| transport(&e, idempotent))?;
        let status = rsp.status().as_u16();
        let headers = rsp.headers().clone();
        let wait = self.retrier.observe(&headers);
        let body = rsp.bytes().await.map_err(|e| transport(&e, idempotent))?;
        if (200..300).contains(&status) {
            return Ok(Response {
                headers,
                body: body.to_vec(),
            });
        }
        let text = String::from_utf8_lossy(&body);
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message").or_else(|| v.get("error")).map(message))
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(Failure {
            status: Some(status),
            idempotent,
            wait,
            message: format!("{status} {message}"),
        })
    }

    pub async fn get<T: DeserializeOwned, E: Endpoint + Sync>(
        &self,
        endpoint: &E,
    ) -> Result<T, Failed> {
        let rsp = self.send(endpoint, None).await?;
        decode(&endpoint.endpoint(), &rsp.body)
    }

    /// Every page of a list, 100 at a time.
    pub async fn all<T: DeserializeOwned, E: Endpoint + Sync>(
        &self,
        endpoint: &E,
    ) -> Result<Vec<T>, Failed> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let header = |rsp: &Response, name: &str| {
            rsp.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let first = self.send(endpoint, Some(1)).await?;
        let mut out: Vec<T> = decode(&endpoint.endpoint(), &first.body)?;
        // With the page count known, the other pages are fetched side by side.
        if let Some(total) = header(&first, "x-total-pages").filter(|t| *t > 1) {
            let mut pages: Vec<(u64, Vec<T>)> = stream::iter(2..=total)
                .map(|page| async move {
                    let rsp = self.send(endpoint, Some(page)).await?;
                    Ok::<_, Failed>((page, decode::<Vec<T>>(&endpoint.endpoint(), &rsp.body)?))
                })
                .buffer_unordered(self.concurrency)
                .try_collect()
                .await?;
            pages.sort_by_key(|(page, _)| *page);
            out.extend(pages.into_iter().flat_map(|(_, items)| items));
            return Ok(out);
        }
        // GitLab leaves out the totals for very long lists: follow x-next-page.
        let mut next = header(&first, "x-next-page");
        while let Some(page) = next {
            let rsp = self.send(endpoint, Some(page)).await?;
            let items: Vec<T> = decode(&endpoint.endpoint(), &rsp.body)?;
            out.extend(items);
            next = header(&rsp, "x-next-page").filter(|n| *n > page);
        }
        Ok(out)
    }
}

/// GitLab's `message` as a sentence: a string as it is, a list of validation messages
/// (`["Name can contain only …"]`) joined, an object of them by field (`{"name": ["…"]}`)
/// with each field named.
fn message(m: &serde_json::Value) -> String {
    use serde_json::Value;
    match m {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(message).collect::<Vec<_>>().join("; "),
        Value::Object(fields) => fields
            .iter()
            .map(|(field, v)| format!("{field} {}", message(v)))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// A request that got no (whole) response. A connection that was never made sent
/// nothing, so any request may be tried again; one that broke afterwards may have been
/// served, so only requests safe to repeat are.
fn transport(e: &reqwest::Error, idempotent: bool) -> Failure {
    let text = chain(e);
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() || text.contains("connection closed before message") {
        "the connection broke before the whole response came"
    } else {
        "the request failed"
    };
    Failure {
        status: None,
        idempotent: idempotent || e.is_connect(),
        wait: None,
        message: format!("{what}: {text}"),
    }
}

fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, Failed> {
    serde_json::from_slice(body).map_err(|e| Failed {
        status: None,
        message: format!("GitLab answered {what} with unexpected JSON: {e}"),
    })
}
