//! What gates read beyond issues, from GitHub: the pull requests that reference an issue
//! (the timeline's `cross-referenced` events whose source is a pull request; merged or not
//! from that event when it says, else from the pull request itself) and a repository's
//! releases (drafts and pre-releases left out). Lists are conditional requests, 100 a page.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use serde::Deserialize as _;

use super::json::{pull_request, GhCrossReference, GhPull, GhRelease};
use super::timeline::Reader;
use super::GitHubTracker;
use crate::core::facts::{MergeRequest, Release};
use crate::http::retry::Failed;
use crate::tracker::TrackerError;

impl GitHubTracker {
    /// One timeline request (shared with the label history of the same advance), and one
    /// more per pull request only where the timeline does not say whether it was merged.
    pub(super) async fn issue_pull_requests(
        &self,
        number: u64,
    ) -> Result<Vec<MergeRequest>, TrackerError> {
        let items = self.timeline(number, Reader::PullRequests).await?;
        let own = self.own();
        let mut unique: BTreeMap<(String, u64), MergeRequest> = BTreeMap::new();
        for item in items.value.iter() {
            let Ok(event) = GhCrossReference::deserialize(item) else {
                continue;
            };
            if event.event != "cross-referenced" {
                continue;
            }
            let Some(issue) = event.source.and_then(|s| s.issue) else {
                continue;
            };
            let Some(pull) = &issue.pull_request else {
                continue;
            };
            let Some(project) = issue.project() else {
                continue;
            };
            let key = (project.to_lowercase(), issue.number);
            if unique.contains_key(&key) {
                continue;
            }
            let mr = match pull.merged_at {
                Some(merged_at) => MergeRequest {
                    updated_at: issue.updated_at,
                    ..pull_request(
                        &own,
                        project,
                        issue.number,
                        issue.title,
                        issue.state == "open",
                        merged_at,
                        pull.html_url.clone().unwrap_or(issue.html_url),
                    )
                },
                None => self.pull_request(&project, issue.number).await?,
            };
            unique.insert(key, mr);
        }
        Ok(unique.into_values().collect())
    }

    /// Pull request `number` of `project` (`owner/repo`): one `GET`.
    pub async fn pull_request(
        &self,
        project: &str,
        number: u64,
    ) -> Result<MergeRequest, TrackerError> {
        let path = format!("/repos/{}/pulls/{number}", repository(project)?);
        match self.http.get::<GhPull>(&path).await {
            Ok(p) => Ok(MergeRequest {
                updated_at: p.updated_at,
                ..pull_request(
                    &self.own(),
                    project.to_string(),
                    p.number,
                    p.title,
                    p.state == "open",
                    p.merged_at,
                    p.html_url,
                )
            }),
            Err(f) if f.status == Some(404) => Err(TrackerError::Other(format!(
                "pull request {project}#{number} not found on {} (or this token cannot see it)",
                self.config.url
            ))),
            Err(f) => Err(f.into()),
        }
    }

    /// The pull requests of `project` (`owner/repo`) updated since `since`: the list sorted
    /// by `updated_at`, newest first, read page by page (100) back to `since`.
    pub(super) async fn pull_requests_changed(
        &self,
        project: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(u64, DateTime<Utc>)>, TrackerError> {
        let path = format!(
            "/repos/{}/pulls?state=all&sort=updated&direction=desc",
            repository(project)?
        );
        let recent = |p: &GhPull| p.updated_at.is_some_and(|t| t >= since);
        match self.http.pages_while(&path, recent).await {
            Ok(list) => Ok(list
                .into_iter()
                .filter_map(|p| Some((p.number, p.updated_at.filter(|t| *t >= since)?)))
                .collect()),
            Err(Failed {
                status: Some(404), ..
            }) => Err(self.unknown_project(project)),
            Err(f) => Err(f.into()),
        }
    }

    /// The releases of `project` (`None`: this repository), 100 a page, newest first.
    pub(super) async fn repository_releases(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<Release>, TrackerError> {
        let own = self.own();
        let project = project.unwrap_or(&own);
        let path = format!("/repos/{}/releases", repository(project)?);
        let releases: Vec<GhRelease> = match self.http.all(&path).await {
            Ok(r) => r,
            Err(Failed {
                status: Some(404), ..
            }) => return Err(self.unknown_project(project)),
            Err(f) => return Err(f.into()),
        };
        let mut out: Vec<Release> = releases
            .into_iter()
            .filter_map(GhRelease::into_fact)
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.released_at));
        Ok(out)
    }

    fn unknown_project(&self, project: &str) -> TrackerError {
        TrackerError::Other(format!(
            "project `{project}` not found on {} (or this token cannot see it)",
            self.config.url
        ))
    }

    /// `owner/repo` of this tracker.
    fn own(&self) -> String {
        format!("{}/{}", self.config.owner, self.config.repo)
    }
}

/// `project` when it is `owner/repo` (letters, digits, `-`, `_`, `.`), else an error that
/// names it: nothing else goes into a request path.
fn repository(project: &str) -> Result<&str, TrackerError> {
    let good = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match project.split_once('/') {
        Some((owner, repo)) if good(owner) && good(repo) => Ok(project),
        _ => Err(TrackerError::Other(format!(
            "`{project}` is no GitHub repository: write OWNER/REPO"
        ))),
    }
}
