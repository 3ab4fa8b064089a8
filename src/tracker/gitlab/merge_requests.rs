//! What gates read beyond issues, from GitLab: the merge requests that reference an issue
//! (`related_merge_requests`, which holds those that close it too: one request) and a
//! project's releases (`GET /projects/:id/releases`, upcoming ones left out). Both go
//! through `http` like every other request: 100 a page, timeouts, retries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use gitlab::api::projects::issues::RelatedMergeRequests;
use gitlab::api::projects::merge_requests::{MergeRequestOrderBy, MergeRequests};
use gitlab::api::projects::releases::ProjectReleases;

use super::json::{GlMergeRequest, GlRelease};
use super::{build_err, GitLabTracker};
use crate::core::facts::{MergeRequest, Release};
use crate::tracker::TrackerError;

impl GitLabTracker {
    /// One request whatever the answers: the merge requests that mention issue `number`
    /// (and those that close it), each listed once, by project and number.
    pub(super) async fn issue_merge_requests(
        &self,
        number: u64,
    ) -> Result<Vec<MergeRequest>, TrackerError> {
        // GitLab's related list holds the merge requests that close the issue too
        // (`ReferencedMergeRequestsService`): `closed_by` would only repeat them, at a
        // request per issue.
        let related = RelatedMergeRequests::builder()
            .project(self.project())
            .issue(number)
            .build()
            .map_err(build_err)?;
        let not_found = |f: crate::http::retry::Failed| match f.status {
            Some(404) => TrackerError::NotFound(number),
            _ => f.into(),
        };
        let related = self
            .http
            .all::<GlMergeRequest, _>(&related)
            .await
            .map_err(not_found)?;
        let mut unique: BTreeMap<(String, u64), MergeRequest> = BTreeMap::new();
        for mr in related {
            let mr = mr.into_fact(self.project());
            unique
                .entry((mr.project.to_lowercase(), mr.number))
                .or_insert(mr);
        }
        Ok(unique.into_values().collect())
    }

    /// The merge requests of `project` updated since `since`: one request a page (100), the
    /// most recently updated first. A project GitLab does not know is an error naming it.
    pub(super) async fn project_merge_requests_changed(
        &self,
        project: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(u64, DateTime<Utc>)>, TrackerError> {
        let endpoint = MergeRequests::builder()
            .project(project)
            .updated_after(since)
            .order_by(MergeRequestOrderBy::UpdatedAt)
            .build()
            .map_err(build_err)?;
        let list: Vec<GlMergeRequest> = match self.http.all(&endpoint).await {
            Ok(list) => list,
            Err(f) if f.status == Some(404) => return Err(self.unknown_project(project)),
            Err(f) => return Err(f.into()),
        };
        Ok(list
            .into_iter()
            .filter_map(|mr| Some((mr.iid, mr.updated_at?)))
            .collect())
    }

    pub(super) fn unknown_project(&self, project: &str) -> TrackerError {
        TrackerError::Other(format!(
            "project `{project}` not found on {} (or this token cannot see it)",
            self.config.shown()
        ))
    }

    /// One request a page (100 releases) for `project` (`None`: the tracker's own), newest
    /// first. A project GitLab does not know (or hides from this token) is an error that
    /// names it.
    pub(super) async fn project_releases(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<Release>, TrackerError> {
        let project = project.unwrap_or(self.project());
        let endpoint = ProjectReleases::builder()
            .project(project)
            .build()
            .map_err(build_err)?;
        let releases: Vec<GlRelease> = match self.http.all(&endpoint).await {
            Ok(releases) => releases,
            Err(f) if f.status == Some(404) => return Err(self.unknown_project(project)),
            Err(f) => return Err(f.into()),
        };
        // A link people follow, in gate details and audit comments.
        let web = format!("{}/{project}", self.config.shown());
        let mut out: Vec<Release> = releases
            .into_iter()
            .filter_map(|r| r.into_fact(&web))
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.released_at));
        Ok(out)
    }
}
