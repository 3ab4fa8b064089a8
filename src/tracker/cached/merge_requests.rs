//! An issue's merge requests through the Store's cache. The list is kept per issue, valid
//! while the issue's `updated_at` is the one it was read at (a merge request that starts
//! referencing the issue touches it) and while none of its merge requests that could still
//! change (open or closed; merged is final) changed since it was read. What changed is
//! known per project from one list of the merge requests updated since a cursor (a
//! `Feed`, kept in the Store, read again at most every few seconds): so a poll where
//! nothing happened asks one list per project, not one per migration. Only trackers where
//! a new reference touches the issue (`Tracker::mentions_touch_issues`) are cached.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CachedTracker, FULL_EVERY, MARGIN};
use crate::core::facts::{MergeRequest, MrState};
use crate::fresh::Fresh;
use crate::tracker::TrackerError;

/// How long a project's feed read by this process stays good.
const FRESH: std::time::Duration = std::time::Duration::from_secs(15);

/// The merge requests of one project changed since `start`, as far as `cursor`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Feed {
    /// When this feed began: a list read more than `MARGIN` before cannot be checked
    /// against it.
    start: DateTime<Utc>,
    /// The newest `updated_at` seen: the next read asks from here (less `MARGIN`).
    cursor: DateTime<Utc>,
    /// Each merge request changed since `start`, with its newest `updated_at`.
    changed: BTreeMap<u64, DateTime<Utc>>,
}

/// An issue's merge requests and the moment (this machine's clock) they were read.
#[derive(Serialize, Deserialize)]
struct Known {
    read_at: DateTime<Utc>,
    list: Vec<MergeRequest>,
}

/// The feeds this process read, one per project, shared by the tasks that ask at once.
pub(super) struct Feeds(Fresh<String, Option<Arc<Feed>>>);

impl Default for Feeds {
    fn default() -> Feeds {
        Feeds(Fresh::new(FRESH))
    }
}

impl Feeds {
    pub(super) fn forget(&self) {
        self.0.forget(|_| true);
    }
}

impl CachedTracker<'_> {
    /// Issue `number`'s merge requests: the kept list while it is still so, else read.
    pub(super) async fn cached_merge_requests(
        &self,
        number: u64,
    ) -> Result<Vec<MergeRequest>, TrackerError> {
        let version = self.version(number);
        let (Some(version), true) = (version, self.inner.mentions_touch_issues()) else {
            return self.inner.merge_requests(number).await;
        };
        let key = self.key(&format!("mrs:{number}"));
        if let Some(known) = self.get::<Known>(&key, &version).await {
            if self.still_so(&known).await {
                return Ok(known.list);
            }
        }
        let read_at = Utc::now();
        let list = self.inner.merge_requests(number).await?;
        // Watch the projects of those that can still change, from now on.
        for project in open_projects(&list).into_keys() {
            self.feed(&project).await;
        }
        let known = Known { read_at, list };
        self.put(&key, &version, &known).await;
        Ok(known.list)
    }

    /// Whether no merge request of `known` that could change has changed since it was read.
    async fn still_so(&self, known: &Known) -> bool {
        for (project, mrs) in open_projects(&known.list) {
            let Some(feed) = self.feed(&project).await else {
                return false;
            };
            if known.read_at < feed.start - MARGIN {
                return false;
            }
            let changed = |mr: &&MergeRequest| {
                feed.changed
                    .get(&mr.number)
                    .is_some_and(|t| mr.updated_at.is_none_or(|u| *t > u))
            };
            if mrs.iter().any(changed) {
                return false;
            }
        }
        true
    }

    /// `project`'s feed, brought up to date once per `FRESH`; `None` when it cannot be read
    /// (the lists are then read again).
    async fn feed(&self, project: &str) -> Option<Arc<Feed>> {
        self.feeds
            .0
            .get(&project.to_string(), || async {
                self.refresh(project).await.map(Arc::new)
            })
            .await
    }

    async fn refresh(&self, project: &str) -> Option<Feed> {
        let key = self.key(&format!("mrfeed:{project}"));
        let now = Utc::now();
        let stored = self
            .get::<Feed>(&key, "1")
            .await
            .filter(|f| now - f.start < FULL_EVERY);
        let feed = match stored {
            Some(mut feed) => {
                let since = feed.cursor - MARGIN;
                match self.inner.merge_requests_changed(project, since).await {
                    Ok(list) => {
                        for (number, updated) in list {
                            feed.cursor = feed.cursor.max(updated);
                            let t = feed.changed.entry(number).or_insert(updated);
                            *t = (*t).max(updated);
                        }
                        feed
                    }
                    Err(e) => {
                        tracing::warn!("merge requests of {project}: {e}");
                        return None;
                    }
                }
            }
            // A new feed: its first read asks from `MARGIN` before it began (twice that,
            // with the margin every read takes), so a list read up to `MARGIN` before it
            // can be checked against it; one read earlier is read again.
            None => Feed {
                start: now,
                cursor: now - MARGIN,
                changed: BTreeMap::new(),
            },
        };
        self.put(&key, "1", &feed).await;
        Some(feed)
    }
}

/// The merge requests of `list` that can still change (open or closed), by project.
fn open_projects(list: &[MergeRequest]) -> BTreeMap<String, Vec<&MergeRequest>> {
    let mut by_project: BTreeMap<String, Vec<&MergeRequest>> = BTreeMap::new();
    for mr in list.iter().filter(|m| m.state != MrState::Merged) {
        by_project
            .entry(mr.project.to_lowercase())
            .or_default()
            .push(mr);
    }
    by_project
}
