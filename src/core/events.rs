//! What happened to a migration, in time order: its transitions, rollbacks, pauses and
//! resumes, as the markers of its comments record them (`history REF`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::command::ReplyMarker;
use super::marker::{PauseMarker, TransitionMarker};

/// One thing that happened to a migration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// `transition`, `rollback`, `pause`, `resume` or `command` (a comment command's
    /// reply: `reason` is the command, and whether it was done).
    pub kind: &'static str,
    pub at: DateTime<Utc>,
    pub by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// The events that `comments` (`(created_at, body)`, in any order) record, oldest first.
/// A transition recorded twice (two runs raced; the loser's comment is about to go) counts
/// once, at its first record.
pub fn events<'c>(comments: impl IntoIterator<Item = (DateTime<Utc>, &'c str)>) -> Vec<Event> {
    let mut comments: Vec<(DateTime<Utc>, &str)> = comments.into_iter().collect();
    comments.sort_by_key(|(at, _)| *at);
    let mut seqs = BTreeSet::new();
    let mut out = Vec::new();
    for (at, body) in comments {
        if let Some(t) = TransitionMarker::find(body) {
            if !seqs.insert(t.seq) {
                continue;
            }
            out.push(Event {
                kind: if t.rollback { "rollback" } else { "transition" },
                at,
                by: t.by,
                reason: t.reason,
                from: t.from,
                to: Some(t.to),
            });
        } else if let Some(r) = ReplyMarker::find(body) {
            out.push(Event {
                kind: "command",
                at,
                by: r.by,
                reason: Some(format!(
                    "/shepherd {}{}",
                    r.verb,
                    if r.done { "" } else { " (not done)" }
                )),
                from: None,
                to: None,
            });
        } else if let Some(p) = PauseMarker::find(body) {
            out.push(Event {
                kind: if p.paused { "pause" } else { "resume" },
                at,
                by: p.by,
                reason: Some(p.reason).filter(|r| !r.is_empty()),
                from: None,
                to: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 9, minute, 0).unwrap()
    }

    fn moved(seq: u64, from: Option<&str>, to: &str, rollback: bool) -> String {
        let m = TransitionMarker {
            seq,
            from: from.map(str::to_string),
            to: to.into(),
            by: "carol".into(),
            reason: rollback.then(|| "proto needs rework".to_string()),
            rollback,
            run: None,
            store: None,
            untick: Vec::new(),
            command: None,
        };
        format!("moved\n\n{}", m.render())
    }

    fn paused(paused: bool) -> String {
        let p = PauseMarker {
            by: "dave".into(),
            reason: if paused {
                "waiting for the DBA".into()
            } else {
                String::new()
            },
            paused,
            command: None,
        };
        format!("paused\n\n{}", p.render())
    }

    #[test]
    fn every_kind_in_time_order_and_a_raced_transition_once() {
        let a = moved(1, None, "draft", false);
        let b = moved(2, Some("draft"), "review", false);
        let b_again = moved(2, Some("draft"), "review", false);
        let p = paused(true);
        let r = paused(false);
        let back = moved(3, Some("review"), "draft", true);
        let comments = vec![
            (at(5), back.as_str()),
            (at(1), a.as_str()),
            (at(2), b.as_str()),
            (at(2), b_again.as_str()),
            (at(3), p.as_str()),
            (at(4), r.as_str()),
            (at(4), "a person's comment"),
        ];
        let kinds: Vec<(&str, Option<String>)> = events(comments)
            .into_iter()
            .map(|e| (e.kind, e.to.or(e.reason)))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("transition", Some("draft".into())),
                ("transition", Some("review".into())),
                ("pause", Some("waiting for the DBA".into())),
                ("resume", None),
                ("rollback", Some("draft".into())),
            ]
        );
    }
}
