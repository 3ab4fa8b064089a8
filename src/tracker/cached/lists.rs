//! Incremental lists. The first list of a label set is read whole and kept with a cursor
//! (the newest `updated_at` seen); later ones ask only for issues updated since, less a
//! margin of minutes (GitLab `updated_after`, GitHub `since`), and merge them in, so a
//! write within the cursor's second is listed again.
//!
//! The index asks for every tracking-label set at once (`list_sets`): the kept lists are
//! then brought up to date by one list of every issue changed since the oldest cursor,
//! whatever its labels, instead of one per set. An idle poll costs one request however many
//! workflows there are, and an issue that lost a set's labels drops out of that set's list
//! at once (a list filtered by the labels does not show it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CachedTracker, FULL_EVERY, MARGIN};
use crate::tracker::{Issue, StateFilter, TrackerError};

#[derive(Serialize, Deserialize)]
struct CachedList {
    cursor: DateTime<Utc>,
    full_at: DateTime<Utc>,
    issues: Vec<Issue>,
}

impl CachedList {
    /// A list read whole at `now`.
    fn whole(issues: Vec<Issue>, now: DateTime<Utc>) -> CachedList {
        let cursor = issues
            .iter()
            .map(|i| i.updated_at)
            .max()
            .unwrap_or(now - FULL_EVERY);
        CachedList {
            cursor,
            full_at: now,
            issues,
        }
    }

    /// Merges in the issues changed since the cursor (less the margin): each takes the
    /// place of what was kept of it, if it still belongs in the list.
    fn merge(&mut self, changed: &[Issue], state: StateFilter, labels: &[String]) {
        for issue in changed {
            self.cursor = self.cursor.max(issue.updated_at);
            self.issues.retain(|i| i.number != issue.number);
            let open = state == StateFilter::All || issue.open;
            if open && labels.iter().all(|l| issue.labels.contains(l)) {
                self.issues.push(issue.clone());
            }
        }
        self.issues.sort_by_key(|i| std::cmp::Reverse(i.number));
    }
}

impl CachedTracker<'_> {
    fn list_key(&self, state: StateFilter, labels: &[String]) -> String {
        let mut sorted = labels.to_vec();
        sorted.sort();
        self.key(&format!("list:{state:?}:{}", sorted.join("\u{1f}")))
    }

    /// The kept list under `key`, unless it is due to be read whole.
    async fn kept_list(&self, key: &str, now: DateTime<Utc>) -> Option<CachedList> {
        let cached = match self.store.cache_get(key).await {
            Ok(Some(c)) => serde_json::from_str::<CachedList>(&c.value).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("cache: {e}");
                None
            }
        };
        cached.filter(|c| now - c.full_at < FULL_EVERY)
    }

    async fn keep_list(&self, key: &str, list: CachedList) -> Vec<Issue> {
        self.put(key, "1", &list).await;
        self.saw(&list.issues);
        list.issues
    }

    /// One label set's list: the kept one and what changed with its labels since, or the
    /// whole list.
    pub(super) async fn cached_list(
        &self,
        state: StateFilter,
        labels: &[String],
    ) -> Result<Vec<Issue>, TrackerError> {
        let key = self.list_key(state, labels);
        let now = Utc::now();
        let list = match self.kept_list(&key, now).await {
            Some(mut list) => {
                let since = list.cursor - MARGIN;
                let changed = self
                    .inner
                    .list_issues_since(StateFilter::All, labels, since)
                    .await?;
                list.merge(&changed, state, labels);
                list
            }
            None => CachedList::whole(self.inner.list_issues(state, labels).await?, now),
        };
        Ok(self.keep_list(&key, list).await)
    }

    /// Several label sets' lists, in order: the kept ones merged with one list of every
    /// issue changed since the oldest of their cursors, the others read whole.
    pub(super) async fn cached_lists(
        &self,
        state: StateFilter,
        sets: &[Vec<String>],
    ) -> Result<Vec<Vec<Issue>>, TrackerError> {
        let now = Utc::now();
        let mut kept = Vec::with_capacity(sets.len());
        for labels in sets {
            let key = self.list_key(state, labels);
            let list = self.kept_list(&key, now).await;
            kept.push((key, list));
        }
        let oldest = kept
            .iter()
            .filter_map(|(_, l)| l.as_ref())
            .map(|l| l.cursor)
            .min();
        let changed = match oldest {
            Some(cursor) => {
                let since = cursor - MARGIN;
                self.inner
                    .list_issues_since(StateFilter::All, &[], since)
                    .await?
            }
            None => Vec::new(),
        };
        let wholes = futures::future::try_join_all(sets.iter().zip(&kept).map(
            |(labels, (_, list))| async move {
                match list {
                    Some(_) => Ok(None),
                    None => self.inner.list_issues(state, labels).await.map(Some),
                }
            },
        ))
        .await?;
        let mut out = Vec::with_capacity(sets.len());
        for ((labels, (key, list)), whole) in sets.iter().zip(kept).zip(wholes) {
            let list = match (list, whole) {
                (Some(mut list), _) => {
                    list.merge(&changed, state, labels);
                    list
                }
                (None, whole) => CachedList::whole(whole.unwrap_or_default(), now),
            };
            out.push(self.keep_list(&key, list).await);
        }
        Ok(out)
    }
}
