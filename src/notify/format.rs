//! Events as each kind of sink wants them: a Slack (and Mattermost) incoming-webhook
//! message — `text`, the fallback that notifications show, and Block Kit `blocks`, a
//! `section` and a last `context` block, both ending with the event id — and a
//! CloudEvents 1.0 event in structured mode. Pure functions of the event.

use serde_json::{json, Value};

use super::config::Format;
use super::event::{Event, EventKind};

/// Slack's limit for a section's text.
const SECTION_MAX: usize = 3000;

/// The `Content-Type` and body of `event` for a sink of `format`.
pub fn payload(format: Format, event: &Event) -> (&'static str, Vec<u8>) {
    let value = match format {
        Format::Slack => slack(event),
        Format::Cloudevents => cloudevent(event),
    };
    let content_type = match format {
        Format::Slack => "application/json",
        Format::Cloudevents => "application/cloudevents+json",
    };
    (content_type, value.to_string().into_bytes())
}

/// A Slack incoming-webhook message (Mattermost takes the same).
pub fn slack(event: &Event) -> Value {
    let summary = mrkdwn_escape(&event.summary());
    let link = match (
        event.status.get("url").and_then(Value::as_str),
        event.status.get("title").and_then(Value::as_str),
    ) {
        (Some(url), Some(title)) if !url.is_empty() => {
            format!("\n<{}|{}>", mrkdwn_escape(url), mrkdwn_escape(title))
        }
        _ => String::new(),
    };
    let id = mrkdwn_escape(&event.id);
    let section: String = format!("*shepherd*: {summary}{link}")
        .chars()
        .take(SECTION_MAX)
        .collect();
    json!({
        "text": format!("shepherd: {summary} — {id}"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("{} · event {id}", mrkdwn_escape(&event.tracker))}
            ]}
        ]
    })
}

/// A CloudEvents 1.0 event, structured mode.
pub fn cloudevent(event: &Event) -> Value {
    let transition = matches!(event.kind, EventKind::Transition | EventKind::Rollback).then(|| {
        json!({
            "from": event.from,
            "to": event.to,
            "at": event.at,
            "by": event.by,
            "reason": event.reason,
            "rollback": event.kind == EventKind::Rollback,
        })
    });
    json!({
        "specversion": "1.0",
        "id": event.id,
        "source": event.tracker,
        "type": format!("dev.shepherd.migration.{}.v1", event.kind.name()),
        "subject": event.number.to_string(),
        "time": event.at,
        "datacontenttype": "application/json",
        "data": {
            "status": event.status,
            "transition": transition,
            "by": event.by,
            "reason": event.reason,
        }
    })
}

/// Text for Slack's mrkdwn: `&`, `<` and `>` escaped, as Slack asks.
fn mrkdwn_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> Event {
        Event {
            id: "local:t/3/transition/2".into(),
            kind: EventKind::Transition,
            tracker: "local:t".into(),
            number: 3,
            workflow: Some("w".into()),
            from: Some("a".into()),
            to: Some("b".into()),
            by: "<alice>".into(),
            reason: None,
            at: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            status: json!({"ref": 3, "title": "T", "url": "https://x/3"}),
        }
    }

    #[test]
    fn slack_ends_text_and_context_with_the_id() {
        let v = slack(&event());
        let text = v["text"].as_str().unwrap();
        assert!(text.ends_with("local:t/3/transition/2"), "{text}");
        assert!(text.contains("&lt;alice&gt;"), "{text}");
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "section");
        let last = &blocks[blocks.len() - 1];
        assert_eq!(last["type"], "context");
        assert!(last["elements"][0]["text"]
            .as_str()
            .unwrap()
            .ends_with("local:t/3/transition/2"));
    }

    #[test]
    fn cloudevents_carry_type_source_subject() {
        let v = cloudevent(&event());
        assert_eq!(v["type"], "dev.shepherd.migration.transition.v1");
        assert_eq!(v["subject"], "3");
        assert_eq!(v["data"]["transition"]["to"], "b");
    }
}
