//! The GitHub tracker: octocrab's client and models, with GitHub's conventions. There are
//! no scoped labels, so shepherd keeps stage labels exclusive itself and a stage move is one
//! `PATCH` that sets the new label set. Pull requests, which the issues API returns among
//! issues, are not migrations. Label history comes from the issue timeline, read item by
//! item so that an event type octocrab's `Event` does not know cannot break a page.
//! Requests go through octocrab's raw methods so that shepherd sees the headers: `Link`
//! for pages, `X-RateLimit-*` and `Retry-After` for rate limits (primary and secondary).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::Method;
use octocrab::models::issues::{Comment as GhComment, Issue as GhIssue};
use octocrab::models::{IssueState, Label as GhLabel};
use octocrab::service::middleware::retry::RetryConfig;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::retry::{self, redact, retry_wait, with_retries, Failure, Pace, Policy};
use super::{Comment, Issue, LabelCache, LabelSpec, NewIssue, StateFilter, Tracker, TrackerError};
use crate::core::snapshot::LabelEvent;

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `https://api.github.com`, or a GitHub Enterprise API (`http://` is allowed for tests).
    pub url: String,
    pub owner: String,
    pub repo: String,
    pub policy: Policy,
    /// Requests at once, for the pages of a list.
    pub concurrency: usize,
}

impl Config {
    pub fn new(url: &str, owner_repo: &str) -> Config {
        let (owner, repo) = owner_repo.split_once('/').unwrap_or((owner_repo, ""));
        Config {
            url: url.trim_end_matches('/').to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            policy: Policy::from_env(),
            concurrency: 8,
        }
    }
}

pub struct GitHubTracker {
    client: Octocrab,
    config: Config,
    pace: Pace,
    labels: LabelCache,
}

struct Response {
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// One item of an issue timeline, as much as shepherd reads. Every event type parses.
#[derive(Debug, Deserialize)]
pub struct GhTimelineItem {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub actor: Option<GhLogin>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub label: Option<GhLabelName>,
}

#[derive(Debug, Deserialize)]
pub struct GhLogin {
    pub login: String,
}

#[derive(Debug, Deserialize)]
pub struct GhLabelName {
    pub name: String,
}

impl GhTimelineItem {
    /// A label event as core sees it; other events give `None`.
    pub fn into_event(self) -> Option<LabelEvent> {
        let added = match self.event.as_deref()? {
            "labeled" => true,
            "unlabeled" => false,
            _ => return None,
        };
        Some(LabelEvent {
            label: self.label?.name,
            added,
            actor: self.actor.map(|a| a.login).unwrap_or_default(),
            at: self.created_at?,
        })
    }
}

/// An issue as shepherd sees it; `None` for a pull request, which GitHub's issue lists
/// return among issues and which is never a migration.
pub fn convert(issue: GhIssue) -> Option<Issue> {
    if issue.pull_request.is_some() {
        return None;
    }
    Some(convert_any(issue))
}

/// An issue or pull request as shepherd sees it.
fn convert_any(issue: GhIssue) -> Issue {
    Issue {
        number: issue.number,
        title: issue.title,
        body: issue.body.unwrap_or_default(),
        labels: issue.labels.into_iter().map(|l| l.name).collect(),
        open: issue.state != IssueState::Closed,
        created_at: issue.created_at,
        updated_at: issue.updated_at,
        url: issue.html_url.to_string(),
        author: issue.user.login,
    }
}

fn comment(c: GhComment) -> Comment {
    Comment {
        id: c.id.into_inner(),
        body: c.body.unwrap_or_default(),
        author: c.user.login,
        created_at: c.created_at,
    }
}

impl GitHubTracker {
    pub fn connect(config: Config, token: &str) -> Result<GitHubTracker, TrackerError> {
        let client = Octocrab::builder()
            .base_uri(config.url.as_str())
            .map_err(|e| TrackerError::Other(format!("bad --github-url `{}`: {e}", config.url)))?
            .personal_token(token.to_string())
            // shepherd retries itself, reading GitHub's rate-limit headers.
            .add_retry_config(RetryConfig::None)
            .build()
            .map_err(|e| {
                TrackerError::Other(format!(
                    "cannot build a GitHub client: {}",
                    redact(&e.to_string(), token)
                ))
            })?;
        Ok(GitHubTracker {
            client,
            config,
            pace: Pace::default(),
            labels: LabelCache::default(),
        })
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.config.owner, self.config.repo)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, TrackerError> {
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        with_retries(&self.config.policy, "GitHub", &what, || {
            self.send_once(method.clone(), path, body)
        })
        .await
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, Failure> {
        self.pace.wait("GitHub").await;
        let idempotent = method != Method::POST;
        let transport = |e: octocrab::Error| Failure {
            status: None,
            idempotent,
            wait: None,
            message: e.to_string(),
        };
        let rsp = match method {
            Method::GET => self.client._get(path).await,
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
        .map_err(transport)?;
        let status = rsp.status().as_u16();
        let headers = rsp.headers().clone();
        self.pace.note(&headers, retry::GITHUB);
        let text = self.client.body_to_string(rsp).await.map_err(transport)?;
        if (200..300).contains(&status) {
            return Ok(Response {
                headers,
                body: text.into_bytes(),
            });
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(200).collect());
        let wait = retry_wait(&headers, retry::GITHUB);
        Err(Failure {
            status: Some(status),
            idempotent,
            wait,
            message: format!("{status} {message}"),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, TrackerError> {
        let rsp = self.send(Method::GET, path, None).await?;
        decode(path, &rsp.body)
    }

    async fn write<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Value,
    ) -> Result<T, TrackerError> {
        let rsp = self.send(method, path, Some(&body)).await?;
        decode(path, &rsp.body)
    }

    /// Every page of a list, 100 at a time: the `Link` header's `last` says how many, and
    /// the pages after the first are fetched side by side.
    async fn all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, TrackerError> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let sep = if path.contains('?') { '&' } else { '?' };
        let page_path = |page: u64| format!("{path}{sep}per_page=100&page={page}");
        let first = self.send(Method::GET, &page_path(1), None).await?;
        let mut out: Vec<T> = decode(path, &first.body)?;
        let link = first
            .headers
            .get(http::header::LINK)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(last) = link_page(link, "last").filter(|l| *l > 1) {
            let mut pages: Vec<(u64, Vec<T>)> = stream::iter(2..=last)
                .map(|page| {
                    let p = page_path(page);
                    async move {
                        let rsp = self.send(Method::GET, &p, None).await?;
                        Ok::<_, TrackerError>((page, decode::<Vec<T>>(path, &rsp.body)?))
                    }
                })
                .buffer_unordered(self.config.concurrency.max(1))
                .try_collect()
                .await?;
            pages.sort_by_key(|(p, _)| *p);
            out.extend(pages.into_iter().flat_map(|(_, items)| items));
        } else {
            let mut next = link_page(link, "next");
            while let Some(page) = next {
                let rsp = self.send(Method::GET, &page_path(page), None).await?;
                out.extend(decode::<Vec<T>>(path, &rsp.body)?);
                let link = rsp
                    .headers
                    .get(http::header::LINK)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                next = link_page(link, "next").filter(|n| *n > page);
            }
        }
        Ok(out)
    }

    async fn patch_issue(&self, number: u64, body: Value) -> Result<(), TrackerError> {
        let _: GhIssue = self
            .write(
                Method::PATCH,
                &self.repo_path(&format!("/issues/{number}")),
                body,
            )
            .await?;
        Ok(())
    }
}

/// The `page` of the link with relation `rel` in a `Link` header.
pub fn link_page(link: &str, rel: &str) -> Option<u64> {
    link.split(',')
        .find(|part| part.contains(&format!("rel=\"{rel}\"")))
        .and_then(|part| {
            let url = part
                .split(';')
                .next()?
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            let query = url.split_once('?')?.1;
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("page="))
                .and_then(|p| p.parse().ok())
        })
}

fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, TrackerError> {
    serde_json::from_slice(body).map_err(|e| {
        TrackerError::Other(format!(
            "GitHub answered {} with unexpected JSON: {e}",
            what.split('?').next().unwrap_or(what)
        ))
    })
}

/// The label list GitHub filters by: comma-separated, each name percent-encoded.
fn label_query(labels: &[String]) -> String {
    labels
        .iter()
        .map(|l| crate::render::urlencode(l))
        .collect::<Vec<_>>()
        .join(",")
}

#[async_trait]
impl Tracker for GitHubTracker {
    fn describe(&self) -> String {
        format!("github:{}/{}", self.config.owner, self.config.repo)
    }

    async fn create_issue(&self, new: &NewIssue) -> Result<Issue, TrackerError> {
        let issue: GhIssue = self
            .write(
                Method::POST,
                &self.repo_path("/issues"),
                json!({"title": new.title, "body": new.body, "labels": new.labels}),
            )
            .await?;
        Ok(convert_any(issue))
    }

    async fn issue(&self, number: u64) -> Result<Issue, TrackerError> {
        match self
            .get::<GhIssue>(&self.repo_path(&format!("/issues/{number}")))
            .await
        {
            // A pull request asked for by number comes back as it is: it has no marker,
            // so it is no migration.
            Ok(issue) => Ok(convert_any(issue)),
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
        let state = if state == StateFilter::Open {
            "open"
        } else {
            "all"
        };
        let mut path = self.repo_path(&format!("/issues?state={state}"));
        if !labels.is_empty() {
            path.push_str(&format!("&labels={}", label_query(labels)));
        }
        let issues: Vec<GhIssue> = self.all(&path).await?;
        Ok(issues.into_iter().filter_map(convert).collect())
    }

    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError> {
        self.patch_issue(number, json!({"body": body})).await
    }

    async fn edit_labels(
        &self,
        number: u64,
        current: &[String],
        add: &[String],
        remove: &[String],
    ) -> Result<(), TrackerError> {
        let mut labels: Vec<String> = current
            .iter()
            .filter(|l| !remove.contains(l))
            .cloned()
            .collect();
        for l in add {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
        self.patch_issue(number, json!({"labels": labels})).await
    }

    async fn set_open(&self, number: u64, open: bool) -> Result<(), TrackerError> {
        self.patch_issue(
            number,
            json!({"state": if open { "open" } else { "closed" }}),
        )
        .await
    }

    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError> {
        let comments: Vec<GhComment> = self
            .all(&self.repo_path(&format!("/issues/{number}/comments")))
            .await?;
        let mut out: Vec<Comment> = comments.into_iter().map(comment).collect();
        out.sort_by_key(|c| (c.created_at, c.id));
        Ok(out)
    }

    async fn add_comment(&self, number: u64, body: &str) -> Result<Comment, TrackerError> {
        let c: GhComment = self
            .write(
                Method::POST,
                &self.repo_path(&format!("/issues/{number}/comments")),
                json!({"body": body}),
            )
            .await?;
        Ok(comment(c))
    }

    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
        let items: Vec<Value> = self
            .all(&self.repo_path(&format!("/issues/{number}/timeline")))
            .await?;
        let mut out: Vec<LabelEvent> = items
            .into_iter()
            .filter_map(|v| serde_json::from_value::<GhTimelineItem>(v).ok())
            .filter_map(GhTimelineItem::into_event)
            .collect();
        out.sort_by_key(|e| e.at);
        Ok(out)
    }

    async fn ensure_labels(&self, labels: &[LabelSpec]) -> Result<(), TrackerError> {
        let list = async {
            let existing: Vec<GhLabel> = self.all(&self.repo_path("/labels")).await?;
            Ok(existing.into_iter().map(|l| l.name).collect())
        };
        let create = |spec: LabelSpec| async move {
            let body = json!({"name": spec.name, "color": spec.color.trim_start_matches('#'), "description": spec.description});
            match self
                .write::<GhLabel>(Method::POST, &self.repo_path("/labels"), body)
                .await
            {
                // 422 "already_exists": created meanwhile by someone else, which is what we wanted.
                Ok(_) => Ok(()),
                Err(TrackerError::Other(m)) if m.contains(": 422 ") => Ok(()),
                Err(e) => Err(e),
            }
        };
        self.labels.ensure(labels, list, create).await
    }

    async fn children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        let issues: Vec<GhIssue> = self
            .all(&self.repo_path(&format!("/issues/{parent}/sub_issues")))
            .await?;
        let needle = format!("\"parent\":{parent},");
        Ok(issues
            .into_iter()
            .filter_map(convert)
            .filter(|i| i.body.contains(&needle))
            .collect())
    }

    /// Makes the child a sub-issue of its tracking issue (GitHub wants the child's id).
    async fn link(&self, parent: u64, child: u64) -> Result<(), TrackerError> {
        let issue: GhIssue = self
            .get(&self.repo_path(&format!("/issues/{child}")))
            .await?;
        let body = json!({"sub_issue_id": issue.id.into_inner()});
        match self
            .send(
                Method::POST,
                &self.repo_path(&format!("/issues/{parent}/sub_issues")),
                Some(&body),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already a sub-issue: a rerun after a crash.
            Err(TrackerError::Other(m)) if m.contains(": 422 ") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        let link = "<https://api.github.com/repositories/1/issues?per_page=3&page=2>; rel=\"next\", <https://api.github.com/repositories/1/issues?per_page=3&page=5>; rel=\"last\"";
        assert_eq!(link_page(link, "next"), Some(2));
        assert_eq!(link_page(link, "last"), Some(5));
        assert_eq!(link_page(link, "prev"), None);
        assert_eq!(link_page("", "next"), None);
    }

    #[test]
    fn label_filters_are_encoded() {
        assert_eq!(
            label_query(&["feature flag".into(), "a,b".into()]),
            "feature%20flag,a%2Cb"
        );
    }
}
