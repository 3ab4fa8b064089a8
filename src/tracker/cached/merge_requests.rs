//! An issue's merge requests through the Store's cache. The list is kept per issue, valid
//! while the issue's `updated_at` is the one it was read at and while none of its merge
//! requests that could still change (open or closed; merged is final) changed since it was
//! read. A new reference must show too: on GitLab it touches the issue
//! (`Tracker::mentions_touch_issues`); on GitHub it does not, so there the list stays valid
//! only while no merge request it does not know changed in the projects the gates look in
//! (a gate that looks in any project is not cached there). What changed is known per
//! project from one list of the merge requests updated since a cursor (a `Feed`, kept in
//! the Store, read again at most every few seconds): so a poll where nothing happened asks
//! one list per project, not one per migration.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CachedTracker, FULL_EVERY, MARGIN};
use crate::core::facts::{MergeRequest, MrState};
use crate::fresh::Fresh;
use crate::tracker::{TrackerError, Versions};

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

impl Feed {
    fn merge(&mut self, list: Vec<(u64, DateTime<Utc>)>) {
        for (number, updated) in list {
            self.cursor = self.cursor.max(updated);
            let t = self.changed.entry(number).or_insert(updated);
            *t = (*t).max(updated);
        }
    }
}

/// The changes `feed` holds within `MARGIN` of `at`.
fn recent(feed: &Feed, at: DateTime<Utc>) -> BTreeMap<u64, DateTime<Utc>> {
    feed.changed
        .iter()
        .filter(|(_, t)| **t >= at - MARGIN)
        .map(|(n, t)| (*n, *t))
        .collect()
}

/// An issue's merge requests and the moment (this machine's clock) they were read.
#[derive(Serialize, Deserialize)]
struct Known {
    read_at: DateTime<Utc>,
    list: Vec<MergeRequest>,
    /// By project asked about: the changes within `MARGIN` of the read that its feed held
    /// before the read (so the list shows them).
    #[serde(default)]
    seen: BTreeMap<String, BTreeMap<u64, DateTime<Utc>>>,
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
    /// `projects` are those the asking gates look in (empty: any).
    pub(super) async fn cached_merge_requests(
        &self,
        number: u64,
        projects: &[String],
    ) -> Result<Vec<MergeRequest>, TrackerError> {
        // A new reference's touch proves nothing where a touch within the second of the
        // last write leaves `updated_at` as it was: there the projects are watched.
        let touch =
            self.inner.mentions_touch_issues() && self.inner.versions() == Versions::EveryWrite;
        // Where a new reference can come from must be known: the issue's `updated_at`
        // tells, or the projects the gates look in are watched for it.
        let cacheable = self.inner.lists_merge_request_changes() && (touch || !projects.is_empty());
        let (Some(version), true) = (self.version(number), cacheable) else {
            return self.inner.merge_requests(number).await;
        };
        let version = version.to_rfc3339();
        let key = self.key(&format!("mrs:{number}"));
        if let Some(known) = self.get::<Known>(&key, &version).await {
            if self.still_so(&known, projects, touch).await {
                return Ok(known.list);
            }
        }
        // What the asked projects' feeds already hold was before the read: the list shows
        // it. Kept, so that only what comes after counts as a change.
        let read_at = Utc::now();
        let mut seen = BTreeMap::new();
        if !touch {
            for project in projects.iter().map(|p| p.to_lowercase()) {
                if let Some(feed) = self.feed(&project).await {
                    seen.insert(project, recent(&feed, read_at));
                }
            }
        }
        let list = self.inner.merge_requests(number).await?;
        // Watch those projects from now on.
        for project in watched(&list, projects, touch) {
            self.feed(&project).await;
        }
        let known = Known {
            read_at,
            list,
            seen,
        };
        self.put(&key, &version, &known).await;
        Ok(known.list)
    }

    /// Whether nothing that could change `known` has changed since it was read: none of its
    /// merge requests that can still change, and (unless a new reference touches the issue)
    /// no merge request of `projects` it does not know.
    async fn still_so(&self, known: &Known, projects: &[String], touch: bool) -> bool {
        for project in watched(&known.list, projects, touch) {
            let Some(feed) = self.feed(&project).await else {
                return false;
            };
            if known.read_at < feed.start - MARGIN {
                return false;
            }
            // A change within `MARGIN` of the read may or may not be in the list (clocks
            // differ), unless the feed held it before the read.
            let seen = known.seen.get(&project);
            let held = |number: &u64, t: &DateTime<Utc>| {
                seen.is_some_and(|s| s.get(number).is_some_and(|s| s >= t))
            };
            let after_read =
                |number: &u64, t: &DateTime<Utc>| *t >= known.read_at - MARGIN && !held(number, t);
            let stale = |(number, t): (&u64, &DateTime<Utc>)| {
                let mine = known
                    .list
                    .iter()
                    .find(|mr| mr.number == *number && mr.project.eq_ignore_ascii_case(&project));
                match mine {
                    Some(mr) if mr.state == MrState::Merged => false,
                    Some(mr) => mr.updated_at.map_or(after_read(number, t), |u| *t > u),
                    None => !touch && after_read(number, t),
                }
            };
            if feed.changed.iter().any(stale) {
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
        // Read from `MARGIN` before the cursor. A new feed begins there too, with what
        // changed in the last `MARGIN`, so that a list read now can tell those changes from
        // later ones; one read earlier than `MARGIN` before it is read again.
        let mut feed = stored.unwrap_or_else(|| Feed {
            start: now,
            cursor: now,
            changed: BTreeMap::new(),
        });
        match self
            .inner
            .merge_requests_changed(project, feed.cursor - MARGIN)
            .await
        {
            Ok(list) => feed.merge(list),
            Err(e) => {
                tracing::warn!("merge requests of {project}: {e}");
                return None;
            }
        }
        self.put(&key, "1", &feed).await;
        Some(feed)
    }
}

/// The projects (lowercase) to watch for `list`: those of its merge requests that can still
/// change (open or closed; merged is final), and, where a new reference does not touch the
/// issue, the projects the gates look in.
fn watched(list: &[MergeRequest], projects: &[String], touch: bool) -> BTreeSet<String> {
    let open = list
        .iter()
        .filter(|m| m.state != MrState::Merged)
        .map(|m| m.project.to_lowercase());
    let asked = projects.iter().filter(|_| !touch).map(|p| p.to_lowercase());
    open.chain(asked).collect()
}
