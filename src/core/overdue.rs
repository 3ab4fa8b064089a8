//! Overdue stays (DESIGN §13, a stage's `target`): which stay a migration is in (the
//! transition that began it), how long past its target it is, the nudge that says so on
//! the tracking issue, and the nudge's marker, `<!-- shepherd:overdue=SEQ {…} -->`, which
//! names the stay so that no run nudges it twice. Pure: the engine decides when to look.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::duration::human;
use super::marker::safe_json;
use super::snapshot::TransitionRecord;
use super::workflow::Stage;

const PREFIX: &str = "<!-- shepherd:overdue=";
const SUFFIX: &str = " -->";

/// One stay in a stage: the transition that began it (its sequence number, 0 where no
/// audit comment records the entry) and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stay {
    pub stage: String,
    pub seq: u64,
    pub at: DateTime<Utc>,
}

impl Stay {
    /// The stay in `stage` that the audit comments record: the newest transition, when it
    /// went into `stage`; `None` when they record no entry into the stage the migration
    /// stands in.
    pub fn of(stage: &str, transitions: &[TransitionRecord]) -> Option<Stay> {
        let last = transitions.iter().max_by_key(|t| t.seq)?;
        (last.to == stage).then(|| Stay {
            stage: stage.to_string(),
            seq: last.seq,
            at: last.at,
        })
    }

    /// How long the stay has lasted at `now`, and whether that is past `stage`'s target.
    pub fn overdue(&self, stage: &Stage, now: DateTime<Utc>) -> bool {
        stage
            .pacing
            .target
            .is_some_and(|target| now.signed_duration_since(self.at) > target)
    }
}

/// "5d in soak, target 2d" (a week and more: "1w 2d").
pub fn note(stage: &str, stay: Duration, target: Duration) -> String {
    format!("{} in {stage}, target {}", human(stay), human(target))
}

/// Who a nudge mentions: the stage's `owners`, else the assignees (as `@name`).
pub fn mentions(stage: &Stage, assignees: &[String]) -> Vec<String> {
    let owners = stage.pacing.mentions();
    if !owners.is_empty() {
        return owners;
    }
    assignees
        .iter()
        .map(|a| format!("@{}", a.trim_start_matches('@')))
        .collect()
}

/// The nudge's text, its marker last.
pub fn nudge(
    stay: &Stay,
    stage: &Stage,
    now: DateTime<Utc>,
    who: &[String],
    marker: &NudgeMarker,
) -> String {
    let target = stage.pacing.target.unwrap_or_else(Duration::zero);
    let lasted = now.signed_duration_since(stay.at);
    let whom = if who.is_empty() {
        "No owner or assignee to mention: set `owners` on the stage or assign the issue."
            .to_string()
    } else {
        format!("{}: please take a look.", who.join(" "))
    };
    format!(
        "⏰ **Overdue**: {} ({} past it). {whom} `shepherd status` says what holds it up.\n\n{}",
        note(&stage.id, lasted, target),
        human(lasted - target),
        marker.render()
    )
}

/// What a nudge records: the stay it is about (its transition's sequence number and
/// stage), and the run and Store that posted it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NudgeMarker {
    #[serde(skip)]
    pub seq: u64,
    pub stage: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

impl NudgeMarker {
    pub fn render(&self) -> String {
        format!("{PREFIX}{} {}{SUFFIX}", self.seq, safe_json(self))
    }

    /// The nudge marker of a comment, if it has one.
    pub fn find(comment: &str) -> Option<NudgeMarker> {
        let start = comment.rfind(PREFIX)?;
        let rest = &comment[start + PREFIX.len()..];
        let (seq, rest) = rest.split_once(' ')?;
        let end = rest.find(SUFFIX)?;
        let mut marker: NudgeMarker = serde_json::from_str(&rest[..end]).ok()?;
        marker.seq = seq.parse().ok()?;
        Some(marker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(days)
    }

    fn record(seq: u64, to: &str, at: i64) -> TransitionRecord {
        TransitionRecord {
            seq,
            from: None,
            to: to.into(),
            at: t(at),
            by: "shepherd".into(),
            reason: None,
            rollback: false,
            untick: Vec::new(),
        }
    }

    #[test]
    fn the_stay_is_the_newest_entry_into_the_stage() {
        let ts = [
            record(1, "a", 0),
            record(2, "soak", 1),
            record(3, "a", 2),
            record(4, "soak", 3),
        ];
        assert_eq!(
            Stay::of("soak", &ts),
            Some(Stay {
                stage: "soak".into(),
                seq: 4,
                at: t(3)
            })
        );
        assert_eq!(
            Stay::of("a", &ts),
            None,
            "the record's last move went elsewhere"
        );
        assert_eq!(Stay::of("a", &[]), None);
    }

    #[test]
    fn markers_round_trip_and_notes_read_well() {
        let m = NudgeMarker {
            seq: 7,
            stage: "soak <x>".into(),
            run: Some("r1".into()),
            store: None,
        };
        let text = format!("hello\n\n{}", m.render());
        assert!(!text.contains("<x>"));
        assert_eq!(NudgeMarker::find(&text), Some(m));
        assert_eq!(NudgeMarker::find("<!-- shepherd:overdue=x {} -->"), None);
        assert_eq!(
            note("soak", Duration::days(9), Duration::days(2)),
            "1w 2d in soak, target 2d"
        );
    }
}
