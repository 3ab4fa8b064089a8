//! The GitLab tracker: the `gitlab` crate's endpoints (paths, parameters, bodies) sent by
//! `http`, which adds what shepherd needs around them: timeouts, retries, waits, pacing and
//! pages. Each trait call is the fewest requests GitLab allows: a stage move and a close
//! are one `PUT` whose response is the issue; children come from issue links; the
//! incremental poll is `updated_after`. Merge requests and releases, which gates read, are
//! `facts`. GitLab's JSON stays in `json`.

mod freezes;
pub(crate) mod http;
mod json;
mod merge_requests;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gitlab::api::projects::issues::{self as gl_issues, IssueState, IssueStateEvent};

pub use self::freezes::GlFreezePeriod;
pub use self::json::{
    GlIssue, GlLabel, GlLabelEvent, GlLabelRef, GlMergeRequest, GlNote, GlRelease, GlUser,
};
use super::{
    Access, Comment, Issue, IssueEdit, IssueQuery, LabelCache, LabelSpec, NewIssue, StateFilter,
    Tracker, TrackerError,
};
use crate::core::facts::{MergeRequest, Release};
use crate::core::snapshot::LabelEvent;
use crate::http::retry::{Failed, Policy};

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `https://gitlab.com`, or a self-managed instance (`http://` is allowed for tests).
    pub url: String,
    /// `GROUP/PROJECT`.
    pub project: String,
    /// Timeouts, retries and waits.
    pub policy: Policy,
    /// Requests at once, for the pages of a list.
    pub concurrency: usize,
    /// `[tracker] freezes = "gitlab"`: the project's deploy freeze periods are change
    /// freezes (`Tracker::freeze_periods`).
    pub freeze_periods: bool,
}

impl Config {
    pub fn new(url: &str, project: &str) -> Config {
        Config {
            url: url.trim_end_matches('/').to_string(),
            project: project.to_string(),
            policy: Policy::default(),
            concurrency: 8,
            freeze_periods: false,
        }
    }

    /// The URL as messages and links show it: without user info (which reqwest sends as
    /// basic authentication, for a GitLab behind a proxy that asks for it).
    pub fn shown(&self) -> String {
        crate::http::redact::url(&self.url)
    }
}

pub struct GitLabTracker {
    http: http::Http,
    config: Config,
    labels: LabelCache,
}

impl GitLabTracker {
    /// Connects: no request of its own. The token and the address are checked by the
    /// run's first request, whichever it is, timed out and retried like any other (a 429,
    /// a 5xx, a refused connection); a 401 says the token was refused (`http::connected`).
    pub async fn connect(config: Config, token: &str) -> Result<GitLabTracker, TrackerError> {
        let http = http::Http::new(&config, token)?;
        Ok(GitLabTracker {
            http,
            config,
            labels: LabelCache::default(),
        })
    }

    fn project(&self) -> &str {
        &self.config.project
    }

    async fn list(&self, query: IssueQuery<'_>) -> Result<Vec<Issue>, TrackerError> {
        let mut builder = gl_issues::Issues::builder();
        builder.project(self.project());
        if query.state == StateFilter::Open {
            builder.state(IssueState::Opened);
        }
        if !query.labels.is_empty() {
            builder.labels(query.labels.iter().map(String::as_str));
        }
        if let Some(since) = query.since {
            builder.updated_after(since);
        }
        let endpoint = builder.build().map_err(build_err)?;
        let issues: Vec<GlIssue> = self.http.all(&endpoint).await?;
        Ok(issues.into_iter().map(Issue::from).collect())
    }
}

fn build_err(e: impl std::fmt::Display) -> TrackerError {
    TrackerError::Other(format!("cannot build a GitLab request: {e}"))
}

/// `Ok(true)` for success, `Ok(false)` for the given status, else the error.
fn unless(result: Result<(), Failed>, status: u16) -> Result<bool, TrackerError> {
    match result {
        Ok(()) => Ok(true),
        Err(f) if f.status == Some(status) => Ok(false),
        Err(f) => Err(f.into()),
    }
}

#[async_trait]
impl Tracker for GitLabTracker {
    fn describe(&self) -> String {
        format!("gitlab:{}", self.config.project)
    }

    fn request_stats(&self) -> Option<crate::http::retry::RequestStats> {
        Some(self.http.retrier.stats())
    }

    fn label_writes(&self) -> crate::tracker::LabelWrites {
        crate::tracker::LabelWrites::Relative
    }

    async fn create_issue(&self, new: &NewIssue) -> Result<Issue, TrackerError> {
        let endpoint = gl_issues::CreateIssue::builder()
            .project(self.project())
            .title(new.title.as_str())
            .description(new.body.as_str())
            .labels(new.labels.iter().map(String::as_str))
            .build()
            .map_err(build_err)?;
        let issue: GlIssue = self.http.get(&endpoint).await?;
        Ok(issue.into())
    }

    async fn issue(&self, number: u64) -> Result<Issue, TrackerError> {
        let endpoint = gl_issues::Issue::builder()
            .project(self.project())
            .issue(number)
            .build()
            .map_err(build_err)?;
        match self.http.get::<GlIssue, _>(&endpoint).await {
            Ok(i) => Ok(i.into()),
            Err(f) if f.status == Some(404) => Err(TrackerError::NotFound(number)),
            Err(f) => Err(f.into()),
        }
    }

    /// `updated_after`, which GitLab applies as "on or after" (to the second): the issues
    /// changed exactly at `since` are dropped here, as the trait promises.
    async fn find_issues(&self, query: IssueQuery<'_>) -> Result<Vec<Issue>, TrackerError> {
        let mut issues = self.list(query).await?;
        if let Some(since) = query.since {
            issues.retain(|i| i.updated_at > since);
        }
        Ok(issues)
    }

    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError> {
        let endpoint = gl_issues::EditIssue::builder()
            .project(self.project())
            .issue(number)
            .description(body)
            .build()
            .map_err(build_err)?;
        let _: GlIssue = self.http.get(&endpoint).await?;
        Ok(())
    }

    /// One `PUT` with `add_labels`, `remove_labels` and `state_event` together; the issue
    /// comes from its response.
    async fn edit_issue(&self, number: u64, edit: &IssueEdit) -> Result<Issue, TrackerError> {
        if edit.add.is_empty() && edit.remove.is_empty() && edit.open.is_none() {
            return self.issue(number).await;
        }
        let mut builder = gl_issues::EditIssue::builder();
        builder.project(self.project()).issue(number);
        for l in &edit.add {
            builder.add_label(l.as_str());
        }
        for l in &edit.remove {
            builder.remove_label(l.as_str());
        }
        match edit.open {
            Some(true) => {
                builder.state_event(IssueStateEvent::Reopen);
            }
            Some(false) => {
                builder.state_event(IssueStateEvent::Close);
            }
            None => {}
        }
        let endpoint = builder.build().map_err(build_err)?;
        match self.http.get::<GlIssue, _>(&endpoint).await {
            Ok(issue) => Ok(issue.into()),
            Err(f) if f.status == Some(404) => Err(TrackerError::NotFound(number)),
            Err(f) => Err(f.into()),
        }
    }

    async fn delete_comment(&self, number: u64, comment: u64) -> Result<(), TrackerError> {
        let endpoint = gl_issues::notes::DeleteIssueNote::builder()
            .project(self.project())
            .issue(number)
            .note(comment)
            .build()
            .map_err(build_err)?;
        // 404: deleted already (a retry whose first answer was lost, or someone else).
        let sent = self.http.send(&endpoint, None).await.map(drop);
        unless(sent, 404).map(drop)
    }

    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError> {
        let endpoint = gl_issues::notes::IssueNotes::builder()
            .project(self.project())
            .issue(number)
            .build()
            .map_err(build_err)?;
        let notes: Vec<GlNote> = self.http.all(&endpoint).await?;
        let mut out: Vec<Comment> = notes
            .into_iter()
            .filter(|n| !n.system)
            .map(Comment::from)
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
        let note: GlNote = self.http.get(&endpoint).await?;
        Ok(note.into())
    }

    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
        let endpoint = gl_issues::IssueResourceLabelEvents::builder()
            .project(self.project())
            .issue(number)
            .build()
            .map_err(build_err)?;
        let events: Vec<GlLabelEvent> = self.http.all(&endpoint).await?;
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
            let existing: Vec<GlLabel> = self.http.all(&endpoint).await?;
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
            // 409: created meanwhile by someone else, which is what we wanted.
            let sent = self.http.get::<GlLabel, _>(&endpoint).await.map(drop);
            unless(sent, 409).map(drop)
        };
        self.labels.ensure(labels, list, create).await
    }

    /// The issues linked to `parent` whose marker names it: one request, whatever the
    /// project's size.
    async fn children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        let endpoint = gl_issues::links::IssueLinks::builder()
            .project(self.project())
            .issue(parent)
            .build()
            .map_err(build_err)?;
        let linked: Vec<GlIssue> = self.http.get(&endpoint).await?;
        let needle = format!("\"parent\":{parent},");
        Ok(linked
            .into_iter()
            .map(Issue::from)
            .filter(|i| i.body.contains(&needle))
            .collect())
    }

    /// `related_merge_requests` (which holds the closing ones too): one request.
    async fn merge_requests(&self, number: u64) -> Result<Vec<MergeRequest>, TrackerError> {
        self.issue_merge_requests(number).await
    }

    /// `GET /projects/:id/merge_requests?updated_after=…`, 100 a page. A merge request that
    /// starts mentioning an issue adds a system note to it, which touches its `updated_at`.
    async fn merge_requests_changed(
        &self,
        project: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(u64, DateTime<Utc>)>, TrackerError> {
        self.project_merge_requests_changed(project, since).await
    }

    fn lists_merge_request_changes(&self) -> bool {
        true
    }

    fn mentions_touch_issues(&self) -> bool {
        true
    }

    /// `GET /projects/:id/releases`, 100 a page.
    async fn releases(&self, project: Option<&str>) -> Result<Vec<Release>, TrackerError> {
        self.project_releases(project).await
    }

    /// `GET /projects/:id/members/all/:user_id`: a member (inherited ones too) with
    /// Developer access (30) or more may write; 404 is no member at all.
    async fn access(&self, user: &str, id: Option<u64>) -> Result<Option<Access>, TrackerError> {
        let Some(id) = id else {
            return Err(TrackerError::Other(format!(
                "GitLab gave no user id for {user}: cannot look up their access"
            )));
        };
        let endpoint = gitlab::api::projects::members::AllProjectMember::builder()
            .project(self.project())
            .user(id)
            .build()
            .map_err(build_err)?;
        #[derive(serde::Deserialize)]
        struct Member {
            access_level: u64,
        }
        let level = match self.http.get::<Member, _>(&endpoint).await {
            Ok(m) => m.access_level,
            Err(f) if f.status == Some(404) => 0,
            Err(f) => return Err(f.into()),
        };
        Ok(Some(if level >= 30 {
            Access::Write
        } else {
            Access::Less(
                match level {
                    0 => "no membership",
                    5 => "Minimal access",
                    10 => "Guest access",
                    15 => "Planner access",
                    _ => "Reporter access",
                }
                .to_string(),
            )
        }))
    }

    fn write_access(&self) -> &'static str {
        "Developer access"
    }

    async fn link(&self, parent: u64, child: u64) -> Result<(), TrackerError> {
        let endpoint = gl_issues::links::CreateIssueLink::builder()
            .project(self.project())
            .issue(parent)
            .target_project(self.project())
            .target_issue(child)
            .build()
            .map_err(build_err)?;
        // GitLab answers 409 when the link exists: a rerun after a crash.
        let sent = self.http.send(&endpoint, None).await.map(drop);
        unless(sent, 409).map(drop)
    }
    /// `GET /projects/:id/freeze_periods`, where `freezes = "gitlab"`.
    async fn freeze_periods(&self) -> Result<Vec<super::FreezePeriod>, TrackerError> {
        self.deploy_freezes().await
    }
}
