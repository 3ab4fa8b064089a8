//! The GitLab tracker: the `gitlab` crate's async client and endpoints, with what the crate
//! leaves to its users: pages of 100 read from `x-next-page`, retries of 429 and 5xx with
//! exponential backoff and jitter (honouring `Retry-After` and `RateLimit-Reset`), and a
//! slower pace when `RateLimit-Remaining` runs low. GitLab's JSON stays in this module.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use gitlab::api::endpoint_prelude::*;
use gitlab::api::projects::issues::{self as gl_issues, IssueState, IssueStateEvent};
use gitlab::api::{AsyncClient, RestClient};
use gitlab::{AsyncGitlab, GitlabBuilder};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{Comment, Issue, LabelSpec, NewIssue, StateFilter, Tracker, TrackerError};
use crate::core::snapshot::LabelEvent;

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `https://gitlab.com`, or a self-managed instance (`http://` is allowed for tests).
    pub url: String,
    /// `GROUP/PROJECT`.
    pub project: String,
    /// Attempts per request before giving up (the first try included).
    pub attempts: usize,
    /// The first retry's delay; it doubles from there, with jitter.
    pub min_delay: Duration,
    /// Requests at once, for the pages of a list.
    pub concurrency: usize,
}

impl Config {
    /// Defaults: 6 attempts from 500 ms; `SHEPHERD_RETRIES` and `SHEPHERD_RETRY_BASE_MS`
    /// change them (tests use short delays).
    pub fn new(url: &str, project: &str) -> Config {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Config {
            url: url.trim_end_matches('/').to_string(),
            project: project.to_string(),
            attempts: env("SHEPHERD_RETRIES").unwrap_or(6).clamp(1, 20) as usize,
            min_delay: Duration::from_millis(env("SHEPHERD_RETRY_BASE_MS").unwrap_or(500)),
            concurrency: 8,
        }
    }
}

pub struct GitLabTracker {
    client: AsyncGitlab,
    config: Config,
    pace: Mutex<Pace>,
    labels: tokio::sync::Mutex<Option<Vec<String>>>,
}

/// What the last response said of the rate limit.
#[derive(Default)]
struct Pace {
    remaining: Option<u64>,
    reset: Option<DateTime<Utc>>,
}

/// A failed attempt: retryable (429, 5xx, transport) or not.
#[derive(Debug)]
struct Failure {
    status: Option<u16>,
    idempotent: bool,
    wait: Option<Duration>,
    message: String,
}

impl Failure {
    /// 429 means the request was not processed: always try again. A 5xx or a broken
    /// connection may come after the server did the work, so only requests that are safe
    /// to repeat are retried then; a POST fails, and the next run finds what it made by
    /// its marker.
    fn retryable(&self) -> bool {
        match self.status {
            Some(429) => true,
            Some(s) if s < 500 => false,
            _ => self.idempotent,
        }
    }
}

struct Response {
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl GitLabTracker {
    /// Connects (the client checks the token with `GET /api/v4/user`).
    pub async fn connect(config: Config, token: &str) -> Result<GitLabTracker, TrackerError> {
        let url = url::Url::parse(&config.url)
            .map_err(|e| TrackerError::Other(format!("bad --gitlab-url `{}`: {e}", config.url)))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => {
                return Err(TrackerError::Other(format!(
                    "bad --gitlab-url `{}`: it names no host",
                    config.url
                )))
            }
        };
        let host = format!("{host}{}", url.path().trim_end_matches('/'));
        let mut builder = GitlabBuilder::new(host, token);
        if url.scheme() == "http" {
            builder.insecure();
        }
        let client = builder.build_async().await.map_err(|e| {
            TrackerError::Other(format!(
                "cannot connect to GitLab at {}: {}",
                config.url,
                redact(&e.to_string(), token)
            ))
        })?;
        Ok(GitLabTracker {
            client,
            config,
            pace: Mutex::new(Pace::default()),
            labels: tokio::sync::Mutex::new(None),
        })
    }

    fn project(&self) -> &str {
        &self.config.project
    }

    /// One request with retries; `what` names it in errors (method and path, no token).
    async fn send<E: Endpoint + Sync>(
        &self,
        endpoint: &E,
        page: Option<u64>,
    ) -> Result<Response, TrackerError> {
        let what = format!("{} {}", endpoint.method(), endpoint.endpoint());
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.config.min_delay)
            .with_max_delay(Duration::from_secs(60))
            .with_max_times(self.config.attempts.saturating_sub(1));
        let attempt = || async { self.send_once(endpoint, page).await };
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
                    format!(" after {} tries", self.config.attempts)
                } else {
                    String::new()
                };
                TrackerError::Other(format!(
                    "GitLab request {what} failed{tries}: {}",
                    f.message
                ))
            })
    }

    async fn send_once<E: Endpoint + Sync>(
        &self,
        endpoint: &E,
        page: Option<u64>,
    ) -> Result<Response, Failure> {
        self.wait_for_pace().await;
        let idempotent = endpoint.method() != Method::POST;
        let mut url = self
            .client
            .rest_endpoint(&endpoint.endpoint())
            .map_err(|e| Failure {
                idempotent,
                status: Some(400),
                wait: None,
                message: e.to_string(),
            })?;
        endpoint.parameters().add_to_url(&mut url);
        if let Some(page) = page {
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("per_page", "100");
        }
        let mut request = http::Request::builder()
            .method(endpoint.method())
            .uri(url.as_str());
        let body = match endpoint.body() {
            Ok(Some((mime, data))) => {
                request = request.header(http::header::CONTENT_TYPE, mime);
                data
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                return Err(Failure {
                    idempotent,
                    status: Some(400),
                    wait: None,
                    message: e.to_string(),
                })
            }
        };
        let rsp = self
            .client
            .rest_async(request, body)
            .await
            .map_err(|e| Failure {
                idempotent,
                status: None,
                wait: None,
                message: e.to_string(),
            })?;
        let status = rsp.status().as_u16();
        let headers = rsp.headers().clone();
        self.note_pace(&headers);
        if (200..300).contains(&status) {
            return Ok(Response {
                headers,
                body: rsp.body().to_vec(),
            });
        }
        let text = String::from_utf8_lossy(rsp.body());
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("error"))
                    .map(|m| m.to_string())
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        Err(Failure {
            idempotent,
            status: Some(status),
            wait: retry_wait(&headers),
            message: format!("{status} {message}"),
        })
    }

    fn note_pace(&self, headers: &http::HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let mut pace = self.pace.lock().expect("pace");
        if let Some(r) = number("ratelimit-remaining") {
            pace.remaining = Some(r.max(0) as u64);
            pace.reset = number("ratelimit-reset").and_then(|t| DateTime::from_timestamp(t, 0));
        }
    }

    /// Near the limit, spread the requests left over the time left instead of hitting it.
    async fn wait_for_pace(&self) {
        let delay = {
            let pace = self.pace.lock().expect("pace");
            pace_delay(pace.remaining, pace.reset, Utc::now())
        };
        if let Some(d) = delay {
            tracing::info!("GitLab rate limit nearly reached; waiting {d:?}");
            tokio::time::sleep(d).await;
        }
    }

    async fn get<T: DeserializeOwned, E: Endpoint + Sync>(
        &self,
        endpoint: &E,
    ) -> Result<T, TrackerError> {
        let rsp = self.send(endpoint, None).await?;
        decode(&endpoint.endpoint(), &rsp.body)
    }

    /// Every page of a list, 100 at a time.
    async fn all<T: DeserializeOwned, E: Endpoint + Sync>(
        &self,
        endpoint: &E,
    ) -> Result<Vec<T>, TrackerError> {
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
                    Ok::<_, TrackerError>((
                        page,
                        decode::<Vec<T>>(&endpoint.endpoint(), &rsp.body)?,
                    ))
                })
                .buffer_unordered(self.config.concurrency.max(1))
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

    async fn put(&self, endpoint: gl_issues::EditIssue<'_>) -> Result<(), TrackerError> {
        let _: GlIssue = self.get(&endpoint).await?;
        Ok(())
    }
}

/// Below 20 requests left, the time until the limit resets is shared out among them, so
/// the run slows down instead of running into 429s.
fn pace_delay(
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

fn build_err(e: impl std::fmt::Display) -> TrackerError {
    TrackerError::Other(format!("cannot build a GitLab request: {e}"))
}

fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, TrackerError> {
    serde_json::from_slice(body).map_err(|e| {
        TrackerError::Other(format!("GitLab answered {what} with unexpected JSON: {e}"))
    })
}

/// How long the server asks us to wait: `Retry-After` (seconds), else `RateLimit-Reset`.
fn retry_wait(headers: &http::HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(secs) = get("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs.min(300)));
    }
    let reset = get("ratelimit-reset")
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|t| DateTime::from_timestamp(t, 0))?;
    (reset - Utc::now())
        .to_std()
        .ok()
        .map(|d| d.min(Duration::from_secs(300)))
}

fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "[token]")
    }
}

/// GitLab's issue JSON, as much as shepherd reads.
#[derive(Debug, Deserialize)]
pub struct GlIssue {
    pub iid: u64,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub web_url: String,
    pub author: GlUser,
}

#[derive(Debug, Deserialize)]
pub struct GlUser {
    pub username: String,
}

#[derive(Debug, Deserialize)]
pub struct GlNote {
    pub id: u64,
    pub body: String,
    pub author: GlUser,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub system: bool,
}

#[derive(Debug, Deserialize)]
pub struct GlLabelEvent {
    pub user: Option<GlUser>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    pub label: Option<GlLabelRef>,
    pub action: String,
}

#[derive(Debug, Deserialize)]
pub struct GlLabelRef {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct GlLabel {
    pub name: String,
}

impl From<GlIssue> for Issue {
    fn from(i: GlIssue) -> Issue {
        Issue {
            number: i.iid,
            title: i.title,
            body: i.description.unwrap_or_default(),
            labels: i.labels,
            open: i.state != "closed",
            created_at: i.created_at,
            url: i.web_url,
            author: i.author.username,
        }
    }
}

impl GlLabelEvent {
    /// A label event as core sees it; events of deleted labels, or without a time, are
    /// dropped.
    pub fn into_event(self) -> Option<LabelEvent> {
        Some(LabelEvent {
            label: self.label?.name,
            added: self.action == "add",
            actor: self.user.map(|u| u.username).unwrap_or_default(),
            at: self.created_at?,
        })
    }
}

#[async_trait]
impl Tracker for GitLabTracker {
    fn describe(&self) -> String {
        format!("gitlab:{}", self.config.project)
    }

    async fn create_issue(&self, new: &NewIssue) -> Result<Issue, TrackerError> {
        let endpoint = gl_issues::CreateIssue::builder()
            .project(self.project())
            .title(new.title.as_str())
            .description(new.body.as_str())
            .labels(new.labels.iter().map(String::as_str))
            .build()
            .map_err(build_err)?;
        let issue: GlIssue = self.get(&endpoint).await?;
        Ok(issue.into())
    }

    async fn issue(&self, number: u64) -> Result<Issue, TrackerError> {
        let endpoint = gl_issues::Issue::builder()
            .project(self.project())
            .issue(number)
            .build()
            .map_err(build_err)?;
        match self.get::<GlIssue, _>(&endpoint).await {
            Ok(i) => Ok(i.into()),
            Err(TrackerError::Other(m)) if m.contains(": 404 ") => {
                Err(TrackerError::NotFound(number))
            }
            Err(e) => Err(e),
        }
    }

    async fn list_issues(
        &self,
        state: StateFilter,
        labels: &[String],
    ) -> Result<Vec<Issue>, TrackerError> {
        let mut builder = gl_issues::Issues::builder();
        builder.project(self.project());
        if state == StateFilter::Open {
            builder.state(IssueState::Opened);
        }
        if !labels.is_empty() {
            builder.labels(labels.iter().map(String::as_str));
        }
        let endpoint = builder.build().map_err(build_err)?;
        let issues: Vec<GlIssue> = self.all(&endpoint).await?;
        Ok(issues.into_iter().map(Issue::from).collect())
    }

    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError> {
        let endpoint = gl_issues::EditIssue::builder()
            .project(self.project())
            .issue(number)
            .description(body)
            .build()
            .map_err(build_err)?;
        self.put(endpoint).await
    }

    async fn edit_labels(
        &self,
        number: u64,
        add: &[String],
        remove: &[String],
    ) -> Result<(), TrackerError> {
        let mut builder = gl_issues::EditIssue::builder();
        builder.project(self.project()).issue(number);
        for l in add {
            builder.add_label(l.as_str());
        }
        for l in remove {
            builder.remove_label(l.as_str());
        }
        self.put(builder.build().map_err(build_err)?).await
    }

    async fn set_open(&self, number: u64, open: bool) -> Result<(), TrackerError> {
        let event = if open {
            IssueStateEvent::Reopen
        } else {
            IssueStateEvent::Close
        };
        let endpoint = gl_issues::EditIssue::builder()
            .project(self.project())
            .issue(number)
            .state_event(event)
            .build()
            .map_err(build_err)?;
        self.put(endpoint).await
    }

    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError> {
        let endpoint = gl_issues::notes::IssueNotes::builder()
            .project(self.project())
            .issue(number)
            .build()
            .map_err(build_err)?;
        let notes: Vec<GlNote> = self.all(&endpoint).await?;
        let mut out: Vec<Comment> = notes
            .into_iter()
            .filter(|n| !n.system)
            .map(|n| Comment {
                id: n.id,
                body: n.body,
                author: n.author.username,
                created_at: n.created_at,
            })
            .collect();
        out.sort_by_key(|c| (c.created_at, c.id));
        Ok(out)
    }

    async fn add_comment(&self, number: u64, body: &str) -> Result<Comment, TrackerError> {
        let endpoint = gl_issues::notes::CreateIssueNote::builder()
            .project(self.project())
            .issue(number)
            .body(body)
            .build()
            .map_err(build_err)?;
        let n: GlNote = self.get(&endpoint).await?;
        Ok(Comment {
            id: n.id,
            body: n.body,
            author: n.author.username,
            created_at: n.created_at,
        })
    }

    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
        let endpoint = gl_issues::IssueResourceLabelEvents::builder()
            .project(self.project())
            .issue(number)
            .build()
            .map_err(build_err)?;
        let events: Vec<GlLabelEvent> = self.all(&endpoint).await?;
        let mut out: Vec<LabelEvent> = events
            .into_iter()
            .filter_map(GlLabelEvent::into_event)
            .collect();
        out.sort_by_key(|e| e.at);
        Ok(out)
    }

    async fn ensure_labels(&self, labels: &[LabelSpec]) -> Result<(), TrackerError> {
        let mut known = self.labels.lock().await;
        if known.is_none() {
            let endpoint = gitlab::api::projects::labels::Labels::builder()
                .project(self.project())
                .build()
                .map_err(build_err)?;
            let existing: Vec<GlLabel> = self.all(&endpoint).await?;
            *known = Some(existing.into_iter().map(|l| l.name).collect());
        }
        let known = known.as_mut().expect("loaded");
        for spec in labels {
            if known.iter().any(|k| k == &spec.name) {
                continue;
            }
            let endpoint = gitlab::api::projects::labels::CreateLabel::builder()
                .project(self.project())
                .name(spec.name.as_str())
                .color(spec.color.as_str())
                .description(spec.description.as_str())
                .build()
                .map_err(build_err)?;
            match self.get::<GlLabel, _>(&endpoint).await {
                Ok(_) => {}
                // Created meanwhile by someone else: that is what we wanted.
                Err(TrackerError::Other(m)) if m.contains(": 409 ") => {}
                Err(e) => return Err(e),
            }
            known.push(spec.name.clone());
        }
        Ok(())
    }

    async fn children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        let endpoint = gl_issues::links::IssueLinks::builder()
            .project(self.project())
            .issue(parent)
            .build()
            .map_err(build_err)?;
        let linked: Vec<GlIssue> = self.get(&endpoint).await?;
        let needle = format!("\"parent\":{parent},");
        Ok(linked
            .into_iter()
            .map(Issue::from)
            .filter(|i| i.body.contains(&needle))
            .collect())
    }

    async fn link(&self, parent: u64, child: u64) -> Result<(), TrackerError> {
        let endpoint = gl_issues::links::CreateIssueLink::builder()
            .project(self.project())
            .issue(parent)
            .target_project(self.project())
            .target_issue(child)
            .build()
            .map_err(build_err)?;
        match self.send(&endpoint, None).await {
            Ok(_) => Ok(()),
            // GitLab answers 409 when the link exists: a rerun after a crash.
            Err(TrackerError::Other(m)) if m.contains(": 409 ") => Ok(()),
            Err(e) => Err(e),
        }
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
        assert_eq!(retry_wait(&h), None);
        h.insert(
            "ratelimit-reset",
            (Utc::now().timestamp() + 30).to_string().parse().unwrap(),
        );
        assert!(retry_wait(&h).is_some_and(|d| d.as_secs() >= 28 && d.as_secs() <= 30));
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_wait(&h), Some(Duration::from_secs(7)));
    }

    #[test]
    fn only_safe_requests_are_retried_after_a_server_error() {
        let f = |status, idempotent| Failure {
            status,
            idempotent,
            wait: None,
            message: String::new(),
        };
        assert!(f(Some(429), false).retryable());
        assert!(f(Some(503), true).retryable());
        assert!(!f(Some(503), false).retryable());
        assert!(f(None, true).retryable());
        assert!(!f(Some(404), true).retryable());
    }
}
