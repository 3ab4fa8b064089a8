//! Markers: the trailing HTML comments by which shepherd recognises its own issues and
//! comments, so that every action can look before it writes.
//!
//! - tracking or child issue: `<!-- shepherd:{"workflow":…,"vars":{…}} -->`
//! - audit comment: `<!-- shepherd:transition=3 {"from":…,"to":…,"by":…} -->`
//! - on_enter comment: `<!-- shepherd:action=3.1 -->`
//! - pause or resume comment: `<!-- shepherd:pause {"by":…,"reason":…,"paused":true} -->`

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const ISSUE_PREFIX: &str = "<!-- shepherd:{";
const TRANSITION_PREFIX: &str = "<!-- shepherd:transition=";
const ACTION_PREFIX: &str = "<!-- shepherd:action=";
const PAUSE_PREFIX: &str = "<!-- shepherd:pause ";
const SUFFIX: &str = " -->";

/// The marker of a shepherd issue: a tracking issue has a workflow and no parent; a child
/// has a parent and a template, and a workflow when it runs its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IssueMarker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The transition of the parent whose entry created this child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// What an audit comment records of its transition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionMarker {
    #[serde(skip)]
    pub seq: u64,
    pub from: Option<String>,
    pub to: String,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// The run that posted it: of two runs that record the same transition, the one whose
    /// comment came first wins the claim, and the other deletes its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The Store that run used: a run that shares it holds no lease now, so a transition it
    /// left unfinished can be finished at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// A rollback's task items of the tracking issue to untick (its audit comment lists
    /// them): a run that finishes it after a crash unticks these and no others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untick: Vec<super::checklist::ItemRef>,
    /// The comment command (its comment's id) that made this transition: the record is
    /// the command's reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<u64>,
}

/// What a pause comment records: who paused the migration and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PauseMarker {
    pub by: String,
    pub reason: String,
    /// False for the comment of a `resume`.
    pub paused: bool,
    /// The comment command (its comment's id) that made it: the record is its reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<u64>,
}

impl PauseMarker {
    pub fn render(&self) -> String {
        format!("{PAUSE_PREFIX}{}{SUFFIX}", safe_json(self))
    }

    /// The pause marker of a comment, if it has one.
    pub fn find(comment: &str) -> Option<PauseMarker> {
        let start = comment.rfind(PAUSE_PREFIX)?;
        let rest = &comment[start + PAUSE_PREFIX.len()..];
        let end = rest.find(SUFFIX)?;
        serde_json::from_str(&rest[..end]).ok()
    }
}

impl IssueMarker {
    pub fn render(&self) -> String {
        format!("<!-- shepherd:{} -->", safe_json(self))
    }

    /// The marker at the end of an issue body, if any. Its variables come back without
    /// control characters (`value::clean`), whoever wrote them there.
    pub fn find(body: &str) -> Option<IssueMarker> {
        let start = body.rfind(ISSUE_PREFIX)?;
        let json = &body[start + ISSUE_PREFIX.len() - 1..];
        let end = json.find(SUFFIX)?;
        let mut marker: IssueMarker = serde_json::from_str(&json[..end]).ok()?;
        for value in marker.vars.values_mut() {
            if let std::borrow::Cow::Owned(clean) = super::value::clean(value) {
                *value = clean;
            }
        }
        Some(marker)
    }

    /// A body with the marker appended on its own line.
    pub fn append_to(&self, body: &str) -> String {
        format!("{}\n\n{}\n", body.trim_end(), self.render())
    }
}

impl TransitionMarker {
    pub fn render(&self) -> String {
        format!(
            "{TRANSITION_PREFIX}{} {}{SUFFIX}",
            self.seq,
            safe_json(self)
        )
    }

    /// The transition marker of a comment, if it has one.
    pub fn find(comment: &str) -> Option<TransitionMarker> {
        let start = comment.rfind(TRANSITION_PREFIX)?;
        let rest = &comment[start + TRANSITION_PREFIX.len()..];
        let (seq, rest) = rest.split_once(' ')?;
        let end = rest.find(SUFFIX)?;
        let mut marker: TransitionMarker = serde_json::from_str(&rest[..end]).ok()?;
        marker.seq = seq.parse().ok()?;
        Some(marker)
    }
}

/// The marker of the `index`th on_enter comment of transition `seq`.
pub fn action_marker(seq: u64, index: usize) -> String {
    format!("{ACTION_PREFIX}{seq}.{index}{SUFFIX}")
}

/// Whether a comment carries the given action marker.
pub fn has_action_marker(comment: &str, marker: &str) -> bool {
    comment.contains(marker)
}

/// JSON that cannot end the HTML comment around it: `<` and `>` are escaped. So are the
/// characters serde_json leaves raw that a tracker may take for a line break (after which
/// GitLab starts a quick action) or a terminal for a command: DEL, the C1 controls (NEL
/// among them), U+2028 and U+2029.
pub(crate) fn safe_json<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).expect("markers serialise");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' | '>' | '\u{7F}'..='\u{9F}' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_markers_round_trip() {
        let marker = IssueMarker {
            workflow: Some("gitaly-migration".into()),
            vars: BTreeMap::from([("x".to_string(), "a --> b <!-- c".to_string())]),
            ..Default::default()
        };
        let body = marker.append_to("Hello\n");
        assert!(!body.contains("a -->"));
        assert_eq!(IssueMarker::find(&body), Some(marker));
        assert_eq!(IssueMarker::find("no marker"), None);
    }

    #[test]
    fn markers_keep_unicode_line_breaks_escaped() {
        let marker = IssueMarker {
            workflow: Some("w".into()),
            vars: BTreeMap::from([(
                "x".to_string(),
                "a\u{2028}/close\u{2029}/label ~x\u{85}/unassign".to_string(),
            )]),
            ..Default::default()
        };
        let text = marker.render();
        for c in ['\u{2028}', '\u{2029}', '\u{85}', '\n'] {
            assert!(!text.contains(c), "{text:?}");
        }
        // Read back, the variables are text without line breaks or control characters.
        let found = IssueMarker::find(&marker.append_to("body")).unwrap();
        assert_eq!(found.vars["x"], "a /close /label ~x /unassign");
    }

    #[test]
    fn markers_carry_no_control_character() {
        let value: String = (0u32..=0x9F)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control())
            .collect();
        let marker = IssueMarker {
            workflow: Some("w".into()),
            vars: BTreeMap::from([("x".to_string(), format!("{value}/close"))]),
            ..Default::default()
        };
        let text = marker.render();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        let found = IssueMarker::find(&marker.append_to("body")).unwrap();
        assert_eq!(found.vars["x"], "\t     /close");
    }

    #[test]
    fn transition_markers_round_trip() {
        let marker = TransitionMarker {
            seq: 12,
            from: None,
            to: "selection".into(),
            by: "alice".into(),
            reason: Some("bad -->".into()),
            rollback: true,
            run: Some("r1".into()),
            store: None,
            untick: vec![crate::core::checklist::ItemRef(
                "Plan".into(),
                "a --> b".into(),
            )],
            command: Some(41),
        };
        let comment = format!("Moved.\n\n{}", marker.render());
        assert_eq!(TransitionMarker::find(&comment), Some(marker));
        assert!(has_action_marker(
            &format!("x {}", action_marker(3, 1)),
            &action_marker(3, 1)
        ));
        assert!(!has_action_marker(
            &action_marker(3, 10),
            &action_marker(3, 1)
        ));
    }
}
