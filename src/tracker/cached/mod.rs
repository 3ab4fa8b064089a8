//! A remote tracker seen through the Store's cache, so that a poll costs requests only for
//! what changed. Lists are incremental (`lists.rs`). Comments and
//! label history are kept per issue, valid while the issue's `updated_at` is the one they
//! were read at (a comment or a label change moves it); merge requests too, checked
//! against what changed in their projects (`merge_requests.rs`). Writes go straight through and
//! forget what they change. The cache is only ever a copy: deleting the Store costs one
//! cold poll, nothing else.
//!
//! A kept read must be proven current, never assumed (DESIGN §11). Where `updated_at`
//! changes with every write (GitLab's milliseconds) an equal one is the proof. GitHub's has
//! whole seconds: a write in the same second as the last leaves it as it was, so a read is
//! kept only once it is final — answered (by GitHub's own clock, the response's `Date`)
//! at least two seconds into the second of the `updated_at` it was read at (`is_final`).
//! A service reads within milliseconds of a change, so its first read of a changed issue
//! is usually not final: it is read again at the next look, and kept from then on.

mod lists;
mod merge_requests;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    Comment, Dated, Issue, IssueEdit, IssueQuery, LabelSpec, NewIssue, StateFilter, Tracker,
    TrackerError, Versions,
};
use crate::core::snapshot::LabelEvent;
use crate::store::Store;

/// How far back an incremental list looks before its cursor: clocks and replication lag.
const MARGIN: Duration = Duration::minutes(5);
/// A cached list older than this is read whole again (issues that lost a label or were
/// deleted drop out of it then).
const FULL_EVERY: Duration = Duration::hours(6);

pub struct CachedTracker<'a> {
    inner: &'a dyn Tracker,
    store: &'a dyn Store,
    /// Each issue's `updated_at` as this run last saw it.
    seen: Mutex<HashMap<u64, DateTime<Utc>>>,
    /// What changed in each project's merge requests (`merge_requests.rs`).
    feeds: merge_requests::Feeds,
}

/// Labels known to exist since `at` (`ensure_labels`).
#[derive(Serialize, Deserialize)]
struct KeptLabels {
    at: DateTime<Utc>,
    names: Vec<String>,
}

impl<'a> CachedTracker<'a> {
    pub fn new(inner: &'a dyn Tracker, store: &'a dyn Store) -> CachedTracker<'a> {
        CachedTracker {
            inner,
            store,
            seen: Mutex::new(HashMap::new()),
            feeds: merge_requests::Feeds::default(),
        }
    }

    fn key(&self, what: &str) -> String {
        format!("{}|{what}", self.inner.describe())
    }

    fn saw(&self, issues: &[Issue]) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for i in issues {
            seen.insert(i.number, i.updated_at);
        }
    }

    fn forget(&self, number: u64) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&number);
    }

    /// Issue `number`'s `updated_at` as this run last saw it: the version of what is kept.
    fn version(&self, number: u64) -> Option<DateTime<Utc>> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&number)
            .copied()
    }

    /// Whether a read of an issue whose `updated_at` was `version`, answered at `answered`
    /// (the tracker's clock), shows every write that leaves `updated_at` as it was — so that
    /// an unchanged `updated_at` later proves it still current.
    ///
    /// With whole seconds, the writes that leave `updated_at` as it was are those within
    /// its second, before `version + 1 s` (truncated). The read came before `answered`, and
    /// the header is truncated to the second too; a read less than a second before the
    /// answer (the time to answer, and the two clocks of the tracker) came after
    /// `answered - 1 s`. So `answered >= version + 2 s` puts the read after every such
    /// write: "read within the second of its `updated_at`, or the second after, is not
    /// final". The tracker's clock, not this machine's: ours may be seconds off GitHub's,
    /// and the `Date` of each answer (a 304's too) is GitHub's own. A read with no `Date`
    /// is never final.
    fn is_final(&self, version: DateTime<Utc>, answered: Option<DateTime<Utc>>) -> bool {
        match self.inner.versions() {
            Versions::EveryWrite => true,
            Versions::WholeSeconds => {
                let second = version.trunc_subsecs(0);
                answered.is_some_and(|at| at >= second + Duration::seconds(2))
            }
        }
    }

    async fn get<T: DeserializeOwned>(&self, key: &str, version: &str) -> Option<T> {
        match self.store.cache_get(key).await {
            Ok(Some(c)) if c.version == version => serde_json::from_str(&c.value).ok(),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("cache: {e}");
                None
            }
        }
    }

    async fn put<T: Serialize>(&self, key: &str, version: &str, value: &T) {
        let Ok(text) = serde_json::to_string(value) else {
            return;
        };
        if let Err(e) = self.store.cache_put(key, &text, version).await {
            tracing::warn!("cache: {e}");
        }
    }

    /// Comments or label history of `number`, from the cache while the issue is unchanged;
    /// a read is kept only once it is final (`is_final`).
    async fn per_issue<T, F>(&self, what: &str, number: u64, fetch: F) -> Result<T, TrackerError>
    where
        T: Serialize + DeserializeOwned,
        F: std::future::Future<Output = Result<Dated<T>, TrackerError>>,
    {
        let key = self.key(&format!("{what}:{number}"));
        // The version is taken before the read: a write meanwhile makes it older than the
        // read, which only costs a read later.
        let version = self.version(number);
        if let Some(v) = version {
            if let Some(hit) = self.get::<T>(&key, &v.to_rfc3339()).await {
                return Ok(hit);
            }
        }
        let read = fetch.await?;
        if let Some(v) = version.filter(|v| self.is_final(*v, read.answered)) {
            self.put(&key, &v.to_rfc3339(), &read.value).await;
        }
        Ok(read.value)
    }
}

#[async_trait]
impl Tracker for CachedTracker<'_> {
    async fn merge_requests(
        &self,
        number: u64,
    ) -> Result<Vec<crate::core::facts::MergeRequest>, TrackerError> {
        self.cached_merge_requests(number, &[]).await
    }

    async fn merge_requests_in(
        &self,
        number: u64,
        projects: &[String],
    ) -> Result<Vec<crate::core::facts::MergeRequest>, TrackerError> {
        self.cached_merge_requests(number, projects).await
    }

    async fn merge_requests_changed(
        &self,
        project: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(u64, DateTime<Utc>)>, TrackerError> {
        self.inner.merge_requests_changed(project, since).await
    }

    fn lists_merge_request_changes(&self) -> bool {
        self.inner.lists_merge_request_changes()
    }

    fn mentions_touch_issues(&self) -> bool {
        self.inner.mentions_touch_issues()
    }

    fn forget_merge_requests(&self) {
        self.feeds.forget();
    }
    async fn releases(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<crate::core::facts::Release>, TrackerError> {
        self.inner.releases(project).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    fn label_writes(&self) -> super::LabelWrites {
        self.inner.label_writes()
    }

    fn versions(&self) -> Versions {
        self.inner.versions()
    }

    fn request_stats(&self) -> Option<crate::http::retry::RequestStats> {
        self.inner.request_stats()
    }

    async fn create_issue(&self, issue: &NewIssue) -> Result<Issue, TrackerError> {
        let created = self.inner.create_issue(issue).await?;
        self.saw(std::slice::from_ref(&created));
        Ok(created)
    }

    async fn issue(&self, number: u64) -> Result<Issue, TrackerError> {
        let issue = self.inner.issue(number).await?;
        self.saw(std::slice::from_ref(&issue));
        Ok(issue)
    }

    async fn find_issues(&self, query: IssueQuery<'_>) -> Result<Vec<Issue>, TrackerError> {
        if query.since.is_some() {
            let issues = self.inner.find_issues(query).await?;
            self.saw(&issues);
            return Ok(issues);
        }
        self.cached_list(query.state, query.labels).await
    }

    async fn list_sets(
        &self,
        state: StateFilter,
        sets: &[Vec<String>],
    ) -> Result<Vec<Vec<Issue>>, TrackerError> {
        self.cached_lists(state, sets).await
    }

    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError> {
        self.forget(number);
        self.inner.update_body(number, body).await
    }

    async fn edit_issue(&self, number: u64, edit: &IssueEdit) -> Result<Issue, TrackerError> {
        self.forget(number);
        self.inner.edit_issue(number, edit).await
    }

    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError> {
        self.per_issue("comments", number, self.inner.comments_dated(number))
            .await
    }

    async fn read_back(&self, number: u64) -> Result<super::ReadBack, TrackerError> {
        self.inner.read_back(number).await
    }

    async fn add_comment(&self, number: u64, body: &str) -> Result<Comment, TrackerError> {
        self.forget(number);
        self.inner.add_comment(number, body).await
    }

    async fn delete_comment(&self, number: u64, comment: u64) -> Result<(), TrackerError> {
        self.forget(number);
        self.inner.delete_comment(number, comment).await
    }

    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
        self.per_issue("events", number, self.inner.label_events_dated(number))
            .await
    }

    /// The labels made sure of within `FULL_EVERY` are kept in the Store: a run whose
    /// labels all exist asks for none. A label a person deleted meanwhile is made again by
    /// the move that sets it (both trackers create a label set on an issue), only without
    /// its colour until the kept list is read anew: no decision depends on it.
    async fn ensure_labels(&self, labels: &[LabelSpec]) -> Result<(), TrackerError> {
        let key = self.key("labels");
        let now = Utc::now();
        let kept = self
            .get::<KeptLabels>(&key, "1")
            .await
            .filter(|k| now - k.at < FULL_EVERY);
        if let Some(k) = &kept {
            if labels.iter().all(|l| k.names.contains(&l.name)) {
                return Ok(());
            }
        }
        self.inner.ensure_labels(labels).await?;
        let mut kept = kept.unwrap_or(KeptLabels {
            at: now,
            names: Vec::new(),
        });
        for l in labels {
            if !kept.names.contains(&l.name) {
                kept.names.push(l.name.clone());
            }
        }
        self.put(&key, "1", &kept).await;
        Ok(())
    }

    async fn children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        let children = self.inner.children(parent).await?;
        self.saw(&children);
        Ok(children)
    }

    async fn access(
        &self,
        user: &str,
        id: Option<u64>,
    ) -> Result<Option<super::Access>, TrackerError> {
        // Never kept: access can be taken away at any moment.
        self.inner.access(user, id).await
    }

    fn write_access(&self) -> &'static str {
        self.inner.write_access()
    }

    async fn link(&self, parent: u64, child: u64) -> Result<(), TrackerError> {
        self.inner.link(parent, child).await
    }

    async fn freeze_periods(&self) -> Result<Vec<super::FreezePeriod>, TrackerError> {
        // Never kept here: the engine reads them once per run.
        self.inner.freeze_periods().await
    }
}
