//! Which issues may hold a comment command not looked at yet: the count of comments each
//! had at the last look, kept in the Store, against the count the tracker lists.

use serde::Serialize;

use super::{Engine, Migration};
use crate::core::command::{self, Said};

/// The number of comments each issue had when its commands were last looked for, kept in
/// the Store: an issue the tracker lists with another count (GitLab `user_notes_count`,
/// GitHub `comments`) has new comments, so an idle poll reads none.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub(crate) struct Scans(std::collections::BTreeMap<u64, u64>);

impl Scans {
    /// Whether `issue`'s comments may hold a command not looked at yet.
    pub(crate) fn needs(&self, issue: &crate::tracker::Issue) -> bool {
        match issue.comment_count {
            Some(0) => false,
            Some(n) => self.0.get(&issue.number) != Some(&n),
            None => true,
        }
    }

    /// For each migration of `wave` whose issue or children need a look, those issues.
    pub(crate) fn of_wave(
        &self,
        wave: &[u64],
        by_number: &std::collections::HashMap<u64, &Migration>,
        kin: &super::Kin,
    ) -> std::collections::HashMap<u64, Vec<u64>> {
        wave.iter()
            .filter_map(|n| {
                let mut family = vec![*by_number.get(n)?];
                family.extend(kin.children(*n));
                let on = self.among(&family);
                (!on.is_empty()).then_some((*n, on))
            })
            .collect()
    }

    /// The issues among `migrations` that need a look.
    pub(crate) fn among(&self, migrations: &[&Migration]) -> Vec<u64> {
        migrations
            .iter()
            .filter(|m| self.needs(&m.issue))
            .map(|m| m.issue.number)
            .collect()
    }
}

impl Engine<'_> {
    /// After an apply: where the comments it read back and posted are all its issue had at
    /// its last write (the write's count says so) and none is a command waiting, the count,
    /// so the next poll need not read them again (`take_looked`).
    pub(crate) fn note_looked(&self, applied: &super::apply::Applied) {
        let Some(issue) = &applied.issue else {
            return;
        };
        let seen = applied.comments.iter().map(Said::from);
        if issue.comment_count == Some(applied.comments.len() as u64)
            && command::pending(seen).is_empty()
        {
            self.looked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((issue.number, issue.comment_count));
        }
    }

    /// What this run's applies saw (`note_looked`), taken.
    pub(crate) fn take_looked(&self) -> Vec<(u64, Option<u64>)> {
        std::mem::take(&mut *self.looked.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn scans_key(&self) -> String {
        format!("{}|commands", self.tracker.describe())
    }

    /// What the Store keeps of earlier looks for commands (none with `fresh_reads`).
    pub(crate) async fn scans(&self) -> Scans {
        if self.fresh_reads {
            return Scans::default();
        }
        match self.store.cache_get(&self.scans_key()).await {
            Ok(Some(c)) => serde_json::from_str(&c.value).unwrap_or_default(),
            Ok(None) => Scans::default(),
            Err(e) => {
                tracing::warn!("reading which comments were looked at for commands: {e}");
                Scans::default()
            }
        }
    }

    /// Keeps what these looks saw: each issue's count of comments, or none where a reply
    /// was posted (the next look reads them once more). A hint: one lost costs a read.
    pub(crate) async fn keep_scans(&self, looked: &[(u64, Option<u64>)]) {
        if looked.is_empty() || self.fresh_reads {
            return;
        }
        let mut scans = self.scans().await;
        for (issue, count) in looked {
            match count {
                Some(n) => scans.0.insert(*issue, *n),
                None => scans.0.remove(issue),
            };
        }
        let Ok(text) = serde_json::to_string(&scans) else {
            return;
        };
        if let Err(e) = self.store.cache_put(&self.scans_key(), &text, "1").await {
            tracing::warn!("keeping which comments were looked at for commands: {e}");
        }
    }
}
