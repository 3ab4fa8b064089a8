//! The GitHub tracker: octocrab's client and models, with GitHub's conventions. There are
//! no scoped labels, so shepherd keeps stage labels exclusive itself, and a stage move (with
//! a close, if any) is one `PATCH` that sets the new label set and state and returns the
//! issue. Pull requests, which the issues API returns among issues, are not migrations.
//! Children are sub-issues, or, on a GitHub Enterprise Server without that API, records on
//! the parent (`children`). Pull requests that reference an issue and releases, which
//! gates read, are `facts`; the timeline is read once for both its readers (`timeline`).
//! The transport is `http`; GitHub's JSON is `json`.

mod children;
mod http;
mod json;
mod pull_requests;
mod timeline;

use std::collections::HashMap;
use std::sync::Mutex;

use ::http::Method;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use octocrab::models::issues::{Comment as GhComment, Issue as GhIssue};
use octocrab::models::Label as GhLabel;
use serde_json::{json, Value};

pub use self::children::{child_record, child_records};
use self::json::{comment, label_query, since_query};
pub use self::json::{convert, convert_any, link_page, GhLabelName, GhLogin, GhTimelineItem};
use super::{
    Access, Comment, Dated, Issue, IssueEdit, IssueQuery, LabelCache, LabelSpec, LabelWrites,
    NewIssue, ReadBack, StateFilter, Tracker, TrackerError, Versions,
};
use crate::core::facts::{MergeRequest, Release};
use crate::core::snapshot::LabelEvent;
use crate::http::retry::{Failed, Policy};

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `https://api.github.com`, or a GitHub Enterprise API (`http://` is allowed for tests).
    pub url: String,
    pub owner: String,
    pub repo: String,
    /// Timeouts, retries and waits.
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
            policy: Policy::default(),
            concurrency: 8,
        }
    }
}

pub struct GitHubTracker {
    http: http::Http,
    config: Config,
    labels: LabelCache,
    /// The id (not the number) of each issue this run has seen: adding a sub-issue needs it.
    ids: Mutex<HashMap<u64, u64>>,
    /// Whether the server has the sub-issues API; a 404 says it has not, once per run.
    sub_issues: children::SubIssues,
    /// Timelines read this run: one read serves the label history and the pull requests.
    timelines: timeline::Timelines,
}

impl GitHubTracker {
    /// Builds the client (inside a Tokio runtime); sends no request.
    pub fn connect(config: Config, token: &str) -> Result<GitHubTracker, TrackerError> {
        Ok(GitHubTracker {
            http: http::Http::new(&config, token)?,
            config,
            labels: LabelCache::default(),
            ids: Mutex::new(HashMap::new()),
            sub_issues: children::SubIssues::default(),
            timelines: timeline::Timelines::default(),
        })
    }

    /// Issue `number`'s timeline for `reader`, every page.
    async fn timeline(
        &self,
        number: u64,
        reader: timeline::Reader,
    ) -> Result<std::sync::Arc<timeline::Timeline>, TrackerError> {
        self.timelines
            .read(number, reader, self.read_timeline(number))
            .await
    }

    /// Issue `number`'s timeline, every page, read now.
    async fn read_timeline(&self, number: u64) -> Result<timeline::Timeline, TrackerError> {
        let path = self.repo_path(&format!("/issues/{number}/timeline"));
        match self.http.all_dated::<Value>(&path).await {
            Ok(items) => Ok(items),
            Err(f) if f.status == Some(404) => Err(TrackerError::NotFound(number)),
            Err(f) => Err(f.into()),
        }
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.config.owner, self.config.repo)
    }

    /// Converts an issue, remembering its id.
    fn keep(&self, issue: GhIssue) -> Issue {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(issue.number, issue.id.into_inner());
        convert_any(issue)
    }

    /// Converts a list, leaving out pull requests.
    fn keep_issues(&self, issues: Vec<GhIssue>) -> Vec<Issue> {
        issues
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .map(|i| self.keep(i))
            .collect()
    }

    async fn list(&self, query: IssueQuery<'_>) -> Result<Vec<Issue>, TrackerError> {
        let state = if query.state == StateFilter::Open {
            "open"
        } else {
            "all"
        };
        let mut path = self.repo_path(&format!("/issues?state={state}"));
        if !query.labels.is_empty() {
            path.push_str(&format!("&labels={}", label_query(query.labels)));
        }
        if let Some(since) = query.since {
            path.push_str(&format!("&since={}", since_query(since)));
        }
        let issues: Vec<GhIssue> = self.http.all(&path).await?;
        Ok(self.keep_issues(issues))
    }

    async fn patch_issue(&self, number: u64, body: Value) -> Result<Issue, TrackerError> {
        let path = self.repo_path(&format!("/issues/{number}"));
        match self.http.write::<GhIssue>(Method::PATCH, &path, body).await {
            Ok(issue) => Ok(self.keep(issue)),
            Err(f) if f.status == Some(404) => Err(TrackerError::NotFound(number)),
            Err(f) => Err(f.into()),
        }
    }

    /// The issue's id, from this run's memory or else one `GET`.
    async fn id(&self, number: u64) -> Result<u64, TrackerError> {
        let known = self
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&number)
            .copied();
        match known {
            Some(id) => Ok(id),
            None => {
                self.issue(number).await?;
                self.ids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&number)
                    .copied()
                    .ok_or(TrackerError::NotFound(number))
            }
        }
    }
}

/// `Ok(true)` for success, `Ok(false)` for the given status, else the error.
fn unless<T>(result: Result<T, Failed>, status: u16) -> Result<bool, TrackerError> {
    match result {
        Ok(_) => Ok(true),
        Err(f) if f.status == Some(status) => Ok(false),
        Err(f) => Err(f.into()),
    }
}

#[async_trait]
impl Tracker for GitHubTracker {
    fn describe(&self) -> String {
        format!("github:{}/{}", self.config.owner, self.config.repo)
    }

    fn request_stats(&self) -> Option<crate::http::retry::RequestStats> {
        Some(self.http.retrier.stats())
    }

    async fn create_issue(&self, new: &NewIssue) -> Result<Issue, TrackerError> {
        let issue: GhIssue = self
            .http
            .write(
                Method::POST,
                &self.repo_path("/issues"),
                json!({"title": new.title, "body": new.body, "labels": new.labels}),
            )
            .await?;
        Ok(self.keep(issue))
    }

    async fn issue(&self, number: u64) -> Result<Issue, TrackerError> {
        match self
            .http
            .get::<GhIssue>(&self.repo_path(&format!("/issues/{number}")))
            .await
        {
            // A pull request asked for by number comes back as it is: it has no marker,
            // so it is no migration.
            Ok(issue) => Ok(self.keep(issue)),
            Err(f) if f.status == Some(404) => Err(TrackerError::NotFound(number)),
            Err(f) => Err(f.into()),
        }
    }

    /// `since`, which GitHub applies to `updated_at` as "at or after" (to the second): the
    /// issues changed exactly at `since` are dropped here, as the trait promises.
    async fn find_issues(&self, query: IssueQuery<'_>) -> Result<Vec<Issue>, TrackerError> {
        let mut issues = self.list(query).await?;
        if let Some(since) = query.since {
            issues.retain(|i| i.updated_at > since);
        }
        Ok(issues)
    }

    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError> {
        self.patch_issue(number, json!({ "body": body }))
            .await
            .map(drop)
    }

    /// One `PATCH` with the whole new label set (`current - remove + add`) and the state;
    /// the issue comes from its response.
    async fn edit_issue(&self, number: u64, edit: &IssueEdit) -> Result<Issue, TrackerError> {
        let mut body = serde_json::Map::new();
        if !edit.add.is_empty() || !edit.remove.is_empty() {
            let mut labels: Vec<&String> = edit
                .current
                .iter()
                .filter(|l| !edit.remove.contains(l))
                .collect();
            for l in &edit.add {
                if !labels.contains(&l) {
                    labels.push(l);
                }
            }
            body.insert("labels".into(), json!(labels));
        }
        if let Some(open) = edit.open {
            body.insert("state".into(), json!(if open { "open" } else { "closed" }));
        }
        if body.is_empty() {
            return self.issue(number).await;
        }
        self.patch_issue(number, Value::Object(body)).await
    }

    async fn delete_comment(&self, _number: u64, comment: u64) -> Result<(), TrackerError> {
        let path = self.repo_path(&format!("/issues/comments/{comment}"));
        // 404: deleted already (a retry whose first answer was lost, or someone else).
        let sent = self.http.send(Method::DELETE, &path, None, None).await;
        unless(sent, 404).map(drop)
    }

    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError> {
        Ok(self.comments_dated(number).await?.value)
    }

    async fn comments_dated(&self, number: u64) -> Result<Dated<Vec<Comment>>, TrackerError> {
        let read: Dated<Vec<GhComment>> = self
            .http
            .all_dated(&self.repo_path(&format!("/issues/{number}/comments")))
            .await?;
        let mut out: Vec<Comment> = read.value.into_iter().map(comment).collect();
        out.sort_by_key(|c| (c.created_at, c.id));
        Ok(Dated {
            value: out,
            answered: read.answered,
        })
    }

    async fn add_comment(&self, number: u64, body: &str) -> Result<Comment, TrackerError> {
        let c: GhComment = self
            .http
            .write(
                Method::POST,
                &self.repo_path(&format!("/issues/{number}/comments")),
                json!({ "body": body }),
            )
            .await?;
        Ok(comment(c))
    }

    /// The moves write the whole label set; the timeline the claim reads back shows the
    /// label events since the list was read.
    fn label_writes(&self) -> LabelWrites {
        LabelWrites::ReadBack
    }

    /// One timeline read, afresh: its `commented` items are the comments (with the same
    /// ids), its `labeled` and `unlabeled` ones the label history.
    async fn read_back(&self, number: u64) -> Result<ReadBack, TrackerError> {
        let items = self.read_timeline(number).await?;
        let (comments, label_events) = json::comments_and_events(&items.value);
        Ok(ReadBack {
            comments,
            label_events,
        })
    }

    /// The timeline's `labeled` and `unlabeled` events (a timeline read moments ago for the
    /// pull requests serves).
    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
        Ok(self.label_events_dated(number).await?.value)
    }

    async fn label_events_dated(
        &self,
        number: u64,
    ) -> Result<Dated<Vec<LabelEvent>>, TrackerError> {
        let items = self.timeline(number, timeline::Reader::Labels).await?;
        Ok(Dated {
            value: json::comments_and_events(&items.value).1,
            answered: items.answered,
        })
    }

    /// `updated_at` has whole seconds.
    fn versions(&self) -> Versions {
        Versions::WholeSeconds
    }

    async fn ensure_labels(&self, labels: &[LabelSpec]) -> Result<(), TrackerError> {
        let list = async {
            let existing: Vec<GhLabel> = self.http.all(&self.repo_path("/labels")).await?;
            Ok(existing.into_iter().map(|l| l.name).collect())
        };
        let create = |spec: LabelSpec| async move {
            let body = json!({"name": spec.name, "color": spec.color.trim_start_matches('#'), "description": spec.description});
            // 422 "already_exists": created meanwhile by someone else, which is what we wanted.
            let sent = self
                .http
                .write::<GhLabel>(Method::POST, &self.repo_path("/labels"), body)
                .await;
            unless(sent, 422).map(drop)
        };
        self.labels.ensure(labels, list, create).await
    }

    async fn children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        self.find_children(parent).await
    }

    /// The timeline's cross-references from pull requests (a timeline read moments ago for
    /// the label history serves): one request when the timeline says which are merged.
    async fn merge_requests(&self, number: u64) -> Result<Vec<MergeRequest>, TrackerError> {
        self.issue_pull_requests(number).await
    }

    /// `GET /repos/{o}/{r}/pulls?sort=updated`, back to `since`. A pull request that starts
    /// referencing an issue adds a `cross-referenced` event to its timeline but does not
    /// move its `updated_at`, so new references are watched for in the projects the gates
    /// look in.
    async fn merge_requests_changed(
        &self,
        project: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(u64, DateTime<Utc>)>, TrackerError> {
        self.pull_requests_changed(project, since).await
    }

    fn lists_merge_request_changes(&self) -> bool {
        true
    }

    /// `GET /repos/{o}/{r}/releases`, 100 a page.
    async fn releases(&self, project: Option<&str>) -> Result<Vec<Release>, TrackerError> {
        self.repository_releases(project).await
    }

    /// `GET /repos/:owner/:repo/collaborators/:user/permission`: admin, maintain or write
    /// may write; 404 (no such user) is no permission.
    async fn access(&self, user: &str, _id: Option<u64>) -> Result<Option<Access>, TrackerError> {
        let login_ok = !user.is_empty()
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '[' | ']'));
        if !login_ok {
            return Ok(Some(Access::Less("no permission".into())));
        }
        #[derive(serde::Deserialize)]
        struct Permission {
            permission: String,
            #[serde(default)]
            role_name: Option<String>,
        }
        let path = self.repo_path(&format!("/collaborators/{user}/permission"));
        let p = match self.http.get::<Permission>(&path).await {
            Ok(p) => p,
            Err(crate::http::retry::Failed {
                status: Some(404), ..
            }) => {
                return Ok(Some(Access::Less("no permission".into())));
            }
            Err(f) => return Err(f.into()),
        };
        let role = p.role_name.unwrap_or_else(|| p.permission.clone());
        Ok(Some(match p.permission.as_str() {
            "admin" | "maintain" | "write" => Access::Write,
            _ => Access::Less(format!("{role} permission")),
        }))
    }

    fn write_access(&self) -> &'static str {
        "write permission"
    }

    async fn link(&self, parent: u64, child: u64) -> Result<(), TrackerError> {
        self.link_child(parent, child).await
    }
}
