//! The GitLab tracker: the `gitlab` crate's async client and endpoints, with what the crate
//! leaves to its users: pages of 100 read from `x-next-page`, retries of 429 and 5xx with
//! exponential backoff and jitter (honouring `Retry-After` and `RateLimit-Reset`), and a
//! slower pace when `RateLimit-Remaining` runs low. GitLab's JSON stays in this module.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gitlab::api::endpoint_prelude::*;
use gitlab::api::projects::issues::{self as gl_issues, IssueState, IssueStateEvent};
use gitlab::api::{AsyncClient, RestClient};
use gitlab::{AsyncGitlab, GitlabBuilder};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::retry::{self, redact, retry_wait, with_retries, Failure, Pace, Policy};
use super::{Comment, Issue, LabelCache, LabelSpec, NewIssue, StateFilter, Tracker, TrackerError};
use crate::core::snapshot::LabelEvent;

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `https://gitlab.com`, or a self-managed instance (`http://` is allowed for tests).
    pub url: String,
    /// `GROUP/PROJECT`.
    pub project: String,
    /// Retries of failed requests.
    pub policy: Policy,
    /// Requests at once, for the pages of a list.
    pub concurrency: usize,
}

impl Config {
    pub fn new(url: &str, project: &str) -> Config {
        Config {
            url: url.trim_end_matches('/').to_string(),
            project: project.to_string(),
            policy: Policy::from_env(),
            concurrency: 8,
        }
    }
}

pub struct GitLabTracker {
    client: AsyncGitlab,
    config: Config,
    pace: Pace,
    labels: LabelCache,
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
            pace: Pace::default(),
            labels: LabelCache::default(),
        })
    }

    fn project(&self) -> &str {
        &self.config.project
    }

    /// One request with retries; errors name it by method and path, never the token.
    async fn send<E: Endpoint + Sync>(
        &self,
        endpoint: &E,
        page: Option<u64>,
    ) -> Result<Response, TrackerError> {
        let what = format!("{} {}", endpoint.method(), endpoint.endpoint());
        with_retries(&self.config.policy, "GitLab", &what, || {
            self.send_once(endpoint, page)
        })
        .await
    }

    async fn send_once<E: Endpoint + Sync>(
        &self,
        endpoint: &E,
        page: Option<u64>,
    ) -> Result<Response, Failure> {
        self.pace.wait("GitLab").await;
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
        self.pace.note(&headers, retry::GITLAB);
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
            wait: retry_wait(&headers, retry::GITLAB),
            message: format!("{status} {message}"),
        })
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

fn build_err(e: impl std::fmt::Display) -> TrackerError {
    TrackerError::Other(format!("cannot build a GitLab request: {e}"))
}

fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, TrackerError> {
    serde_json::from_slice(body).map_err(|e| {
        TrackerError::Other(format!("GitLab answered {what} with unexpected JSON: {e}"))
    })
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
    pub updated_at: DateTime<Utc>,
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
            updated_at: i.updated_at,
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
        _current: &[String],
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
        let list = async {
            let endpoint = gitlab::api::projects::labels::Labels::builder()
                .project(self.project())
                .build()
                .map_err(build_err)?;
            let existing: Vec<GlLabel> = self.all(&endpoint).await?;
            Ok(existing.into_iter().map(|l| l.name).collect())
        };
        let create = |spec: LabelSpec| async move {
            let endpoint = gitlab::api::projects::labels::CreateLabel::builder()
                .project(self.project())
                .name(spec.name.as_str())
                .color(spec.color.as_str())
                .description(spec.description.as_str())
                .build()
                .map_err(build_err)?;
            match self.get::<GlLabel, _>(&endpoint).await {
                // 409: created meanwhile by someone else, which is what we wanted.
                Ok(_) => Ok(()),
                Err(TrackerError::Other(m)) if m.contains(": 409 ") => Ok(()),
                Err(e) => Err(e),
            }
        };
        self.labels.ensure(labels, list, create).await
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
