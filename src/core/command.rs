//! Comment commands (DESIGN §12): a comment whose first line is `/shepherd COMMAND …`,
//! and the markers of shepherd's one reply to each. Pure: which comments are commands,
//! which of them are answered, and what an approval by command counts as.
//!
//! - reply: `<!-- shepherd:reply {"command":42,…} -->`; a pause, resume or rollback made by
//!   a command carries the command's id in its own marker instead, and is the reply.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::marker::{safe_json, PauseMarker, TransitionMarker};
use super::snapshot::LabelEvent;

const PREFIX: &str = "/shepherd";
const REPLY_PREFIX: &str = "<!-- shepherd:reply ";
const SUFFIX: &str = " -->";

/// A comment as commands read it (the tracker's `Comment`, borrowed).
#[derive(Clone, Copy, Debug)]
pub struct Said<'c> {
    pub id: u64,
    pub body: &'c str,
    pub author: &'c str,
    pub author_id: Option<u64>,
    pub at: DateTime<Utc>,
    /// Edited after it was made.
    pub edited: bool,
}

/// What a command asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    Status,
    Advance,
    Pause {
        reason: String,
    },
    Resume {
        reason: Option<String>,
    },
    Rollback {
        stage: String,
        reason: String,
    },
    Approve,
    Help,
    /// A command shepherd does not know, or one without what it needs: answered with help.
    Unknown {
        said: String,
        why: String,
    },
}

impl Verb {
    /// Its name, as typed after `/shepherd`.
    pub fn name(&self) -> &'static str {
        match self {
            Verb::Status => "status",
            Verb::Advance => "advance",
            Verb::Pause { .. } => "pause",
            Verb::Resume { .. } => "resume",
            Verb::Rollback { .. } => "rollback",
            Verb::Approve => "approve",
            Verb::Help => "help",
            Verb::Unknown { .. } => "unknown",
        }
    }

    /// Whether only a person with write access (Developer on GitLab) may give it; an
    /// approval is for the gate's approvers, status and help for anyone.
    pub fn needs_write(&self) -> bool {
        matches!(
            self,
            Verb::Advance | Verb::Pause { .. } | Verb::Resume { .. } | Verb::Rollback { .. }
        )
    }
}

/// A command as a comment gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// The comment's id: the command's id in the marker of its reply.
    pub id: u64,
    /// The comment's author, as the tracker says (never a name in the text).
    pub author: String,
    pub author_id: Option<u64>,
    pub at: DateTime<Utc>,
    pub verb: Verb,
}

/// The command a comment body gives, if its first line is one. A first line indented (a
/// code block), quoted or fenced is no command; nor is `/shepherdx`.
pub fn parse(body: &str) -> Option<Verb> {
    let first = body.lines().next()?.trim_end();
    let rest = first.strip_prefix(PREFIX)?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let mut words = rest.split_whitespace();
    let Some(name) = words.next() else {
        return Some(Verb::Help);
    };
    let tail: Vec<&str> = words.collect();
    let text = |from: usize| -> Option<String> {
        let t = tail.get(from..).unwrap_or_default().join(" ");
        (!t.trim().is_empty()).then_some(t)
    };
    let unknown = |why: &str| Verb::Unknown {
        said: first.to_string(),
        why: why.to_string(),
    };
    Some(match name.to_ascii_lowercase().as_str() {
        "status" => Verb::Status,
        "advance" => Verb::Advance,
        "pause" => match text(0) {
            Some(reason) => Verb::Pause { reason },
            None => unknown("`pause` needs a reason: `/shepherd pause waiting for the DBA`"),
        },
        "resume" => Verb::Resume { reason: text(0) },
        "rollback" => match (tail.first(), text(1)) {
            (Some(stage), Some(reason)) => Verb::Rollback {
                stage: stage.to_string(),
                reason,
            },
            _ => unknown("`rollback` needs a stage and a reason: `/shepherd rollback rpc-design proto needs rework`"),
        },
        "approve" => Verb::Approve,
        "help" => Verb::Help,
        other => unknown(&format!("`{other}` is no shepherd command")),
    })
}

/// The commands among `comments`, oldest first, that no comment answers yet. A comment
/// edited after it was made is no command.
pub fn pending<'c>(comments: impl IntoIterator<Item = Said<'c>>) -> Vec<Command> {
    let comments: Vec<Said> = comments.into_iter().collect();
    let answered: BTreeSet<u64> = comments.iter().filter_map(|c| answer_of(c.body)).collect();
    let mut out: Vec<Command> = comments
        .iter()
        .filter(|c| !c.edited && !answered.contains(&c.id))
        .filter_map(|c| {
            Some(Command {
                id: c.id,
                author: c.author.to_string(),
                author_id: c.author_id,
                at: c.at,
                verb: parse(c.body)?,
            })
        })
        .collect();
    out.sort_by_key(|c| (c.at, c.id));
    out
}

/// The command a comment answers, if it is an answer.
pub fn answer_of(body: &str) -> Option<u64> {
    ReplyMarker::find(body)
        .map(|r| r.command)
        .or_else(|| PauseMarker::find(body).and_then(|p| p.command))
        .or_else(|| TransitionMarker::find(body).and_then(|t| t.command))
}

/// What shepherd's reply to a command records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyMarker {
    /// The id of the command's comment.
    pub command: u64,
    /// What the command was (`pause`, `approve`, …).
    pub verb: String,
    /// The commenter.
    pub by: String,
    /// Whether it was done (false: refused, or answered with help).
    pub done: bool,
    /// An approval given by `/shepherd approve`: the approval gate's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approves: Option<String>,
    /// The run that posted it: of two replies to one command, the first one stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl ReplyMarker {
    pub fn render(&self) -> String {
        format!("{REPLY_PREFIX}{}{SUFFIX}", safe_json(self))
    }

    pub fn find(body: &str) -> Option<ReplyMarker> {
        let start = body.rfind(REPLY_PREFIX)?;
        let rest = &body[start + REPLY_PREFIX.len()..];
        let end = rest.find(SUFFIX)?;
        serde_json::from_str(&rest[..end]).ok()
    }
}

/// The approvals given by command, as the label events they count as: the approver
/// added the label when shepherd's reply was posted.
pub fn approvals<'c>(comments: impl IntoIterator<Item = Said<'c>>) -> Vec<LabelEvent> {
    comments
        .into_iter()
        .filter_map(|c| {
            let r = ReplyMarker::find(c.body)?;
            Some(LabelEvent {
                label: r.approves.filter(|_| r.done)?,
                added: true,
                actor: r.by,
                at: c.at,
            })
        })
        .collect()
}

/// Adds the approvals given by command to a label history, in time order.
pub fn merge_approvals<'c>(
    events: &mut Vec<LabelEvent>,
    comments: impl IntoIterator<Item = Said<'c>>,
) {
    let given = approvals(comments);
    if given.is_empty() {
        return;
    }
    for e in given {
        if !events.contains(&e) {
            events.push(e);
        }
    }
    events.sort_by_key(|e| e.at);
}

/// The reply to `/shepherd help` (and to an unknown command).
pub fn help() -> String {
    [
        "Commands (the first line of a comment on the migration's issue or one of its children):",
        "",
        "| command | does |",
        "|---|---|",
        "| `/shepherd status` | replies with the stage, its gates and who must act |",
        "| `/shepherd advance` | moves the migration as far as its gates allow, now |",
        "| `/shepherd pause REASON…` | holds it where it is |",
        "| `/shepherd resume` | lets it move on again |",
        "| `/shepherd rollback STAGE REASON…` | moves it back to STAGE and pauses it there |",
        "| `/shepherd approve` | your approval, where an approval gate names you |",
        "| `/shepherd help` | this list |",
        "",
        "`advance`, `pause`, `resume` and `rollback` need write access to the project (Developer on GitLab).",
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn comment(id: u64, body: &str) -> Said<'_> {
        Said {
            id,
            body,
            author: "carol",
            author_id: Some(7),
            at: Utc.with_ymd_and_hms(2026, 12, 7, 9, id as u32, 0).unwrap(),
            edited: false,
        }
    }

    #[test]
    fn first_line_commands() {
        assert_eq!(parse("/shepherd status"), Some(Verb::Status));
        assert_eq!(parse("/shepherd  ADVANCE  \nthanks"), Some(Verb::Advance));
        assert_eq!(
            parse("/shepherd pause waiting for  the DBA"),
            Some(Verb::Pause {
                reason: "waiting for the DBA".into()
            })
        );
        assert_eq!(
            parse("/shepherd resume"),
            Some(Verb::Resume { reason: None })
        );
        assert_eq!(
            parse("/shepherd rollback rpc-design proto needs rework"),
            Some(Verb::Rollback {
                stage: "rpc-design".into(),
                reason: "proto needs rework".into()
            })
        );
        assert_eq!(parse("/shepherd"), Some(Verb::Help));
        assert!(matches!(
            parse("/shepherd pause"),
            Some(Verb::Unknown { .. })
        ));
        assert!(matches!(
            parse("/shepherd rollback x"),
            Some(Verb::Unknown { .. })
        ));
        assert!(matches!(
            parse("/shepherd deploy"),
            Some(Verb::Unknown { .. })
        ));
    }

    #[test]
    fn quoted_indented_fenced_or_later_lines_are_no_commands() {
        for body in [
            "> /shepherd pause x",
            "    /shepherd pause x",
            "```\n/shepherd pause x\n```",
            "please\n/shepherd pause x",
            "/shepherdess pause",
            " /shepherd status",
            "",
        ] {
            assert_eq!(parse(body), None, "{body:?}");
        }
    }

    #[test]
    fn a_command_is_pending_until_answered_and_edited_ones_never_are() {
        let mut edited = comment(3, "/shepherd advance");
        edited.edited = true;
        let mut comments = vec![
            comment(2, "/shepherd pause lunch"),
            comment(1, "/shepherd status"),
            edited,
        ];
        let ids: Vec<u64> = pending(comments.clone()).iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 2]);
        let reply = ReplyMarker {
            command: 1,
            verb: "status".into(),
            by: "carol".into(),
            done: true,
            approves: None,
            run: None,
        };
        let reply = format!("stage x\n\n{}", reply.render());
        comments.push(comment(4, &reply));
        let pause = PauseMarker {
            by: "carol".into(),
            reason: "lunch".into(),
            paused: true,
            command: Some(2),
        };
        let pause = pause.render();
        comments.push(comment(5, &pause));
        assert!(pending(comments.clone()).is_empty());
    }

    #[test]
    fn approvals_by_command_count_as_label_events() {
        let reply = ReplyMarker {
            command: 1,
            verb: "approve".into(),
            by: "dave".into(),
            done: true,
            approves: Some("dba-approved".into()),
            run: None,
        };
        let refused = ReplyMarker {
            by: "mallory".into(),
            done: false,
            ..reply.clone()
        };
        let (reply, refused) = (reply.render(), refused.render());
        let comments = [comment(2, &reply), comment(3, &refused)];
        let mut events = Vec::new();
        merge_approvals(&mut events, comments);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].actor, "dave");
        assert_eq!(events[0].label, "dba-approved");
        assert!(events[0].added);
    }
}
