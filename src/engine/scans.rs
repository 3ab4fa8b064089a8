//! Which issues may hold a comment command not looked at yet: the count of comments each
//! had at the last look, kept in the Store, against the count the tracker lists.

use serde::Serialize;

use super::{Advanced, Engine, Migration};
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

    /// The issues among `migrations` that need a look.
    pub(crate) fn among(&self, migrations: &[&Migration]) -> Vec<u64> {
        migrations
            .iter()
            .filter(|m| self.needs(&m.issue))
            .map(|m| m.issue.number)
            .collect()
    }
}

/// What a move's last look shows of its issue's commands: where the comments it read back
/// and posted are all the issue had at its last write (the write's count says so) and none
/// is a command waiting, the count, so the next poll need not read them again.
pub(crate) fn looked_by_move(advanced: &Advanced) -> Option<(u64, Option<u64>)> {
    let seen = advanced.seen.as_ref()?;
    let count = seen.issue.comment_count?;
    (count == seen.comments.len() as u64
        && command::pending(seen.comments.iter().map(Said::from)).is_empty())
    .then_some((seen.issue.number, Some(count)))
}

impl Engine<'_> {
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
