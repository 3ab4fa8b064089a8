//! A migration's children on GitHub, found without listing the repository: its
//! sub-issues, or, on a GitHub Enterprise Server older than 3.18 (no sub-issues API: it
//! answers 404), records that `link` posts on the parent as marked comments
//! (`Opened #13 <!-- shepherd:child=13 -->`). The 404 is noticed once per run; from then on
//! only records are used.

use std::sync::atomic::{AtomicBool, Ordering};

use ::http::Method;
use futures::stream::{self, StreamExt, TryStreamExt};
use octocrab::models::issues::Issue as GhIssue;
use serde_json::json;

use super::GitHubTracker;
use crate::tracker::{Issue, Tracker, TrackerError};

const RECORD_PREFIX: &str = "<!-- shepherd:child=";

/// Whether the sub-issues API is missing, as this run found out.
#[derive(Default)]
pub struct SubIssues {
    missing: AtomicBool,
}

/// The comment that records `child` on its parent: a sentence for people, a marker for
/// shepherd.
pub fn child_record(child: u64) -> String {
    format!("Opened #{child} as a child of this issue.\n\n{RECORD_PREFIX}{child} -->")
}

/// The children recorded in a comment body, in order.
pub fn child_records(body: &str) -> Vec<u64> {
    body.match_indices(RECORD_PREFIX)
        .filter_map(|(at, _)| {
            let rest = &body[at + RECORD_PREFIX.len()..];
            let (number, tail) = rest.split_once(' ')?;
            tail.starts_with("-->").then(|| number.parse().ok())?
        })
        .collect()
}

impl GitHubTracker {
    fn sub_issues_missing(&self) -> bool {
        self.sub_issues.missing.load(Ordering::Relaxed)
    }

    /// Remembers, once per run, that the server has no sub-issues API.
    fn note_no_sub_issues(&self) {
        if !self.sub_issues.missing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "GitHub at {} has no sub-issues API (404; GitHub Enterprise Server before 3.18): \
                 children are recorded in comments on their parent",
                self.config.url
            );
        }
    }

    /// The children of `parent` whose marker names it: its sub-issues (one list), else
    /// the issues its records name (the parent's comments, then one `GET` each).
    pub(super) async fn find_children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        let needle = format!("\"parent\":{parent},");
        if !self.sub_issues_missing() {
            let path = self.repo_path(&format!("/issues/{parent}/sub_issues"));
            match self.http.all::<GhIssue>(&path).await {
                Ok(issues) => {
                    let mut out = self.keep_issues(issues);
                    out.retain(|i| i.body.contains(&needle));
                    return Ok(out);
                }
                Err(f) if f.status == Some(404) => self.note_no_sub_issues(),
                Err(f) => return Err(f.into()),
            }
        }
        let mut numbers: Vec<u64> = self
            .comments(parent)
            .await?
            .iter()
            .flat_map(|c| child_records(&c.body))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        let found: Vec<Option<Issue>> = stream::iter(numbers)
            .map(|n| async move {
                match self.issue(n).await {
                    Ok(issue) => Ok(Some(issue)),
                    // Deleted since: nothing to find.
                    Err(TrackerError::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(self.config.concurrency.max(1))
            .try_collect()
            .await?;
        Ok(found
            .into_iter()
            .flatten()
            .filter(|i| i.body.contains(&needle))
            .collect())
    }

    /// Makes `child` a sub-issue of `parent` (GitHub wants the child's id, which this run
    /// usually knows from creating it), else records it on the parent, once.
    pub(super) async fn link_child(&self, parent: u64, child: u64) -> Result<(), TrackerError> {
        if !self.sub_issues_missing() {
            let body = json!({ "sub_issue_id": self.id(child).await? });
            let path = self.repo_path(&format!("/issues/{parent}/sub_issues"));
            match self.http.send(Method::POST, &path, Some(&body), None).await {
                Ok(_) => return Ok(()),
                // Already a sub-issue: a rerun after a crash.
                Err(f) if f.status == Some(422) => return Ok(()),
                Err(f) if f.status == Some(404) => self.note_no_sub_issues(),
                Err(f) => return Err(f.into()),
            }
        }
        let recorded = self
            .comments(parent)
            .await?
            .iter()
            .any(|c| child_records(&c.body).contains(&child));
        if !recorded {
            self.add_comment(parent, &child_record(child)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back() {
        assert_eq!(child_records(&child_record(13)), [13]);
        assert!(child_record(13).starts_with("Opened #13 "));
        let two = format!("{}\n{}", child_record(4), child_record(21));
        assert_eq!(child_records(&two), [4, 21]);
        for other in [
            "<!-- shepherd:transition=1 {} -->",
            "<!-- shepherd:child=x -->",
            "<!-- shepherd:child=5",
            "Opened #5",
        ] {
            assert_eq!(child_records(other), Vec::<u64>::new(), "{other}");
        }
    }
}
