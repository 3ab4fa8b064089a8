//! `[[notify]]` in `shepherd.toml`: the raw tables as the file has them (unknown keys,
//! event names and formats refused by serde with the file's line and column), then
//! resolved into `Sink`s — the URL read from the environment where it says `env:NAME`,
//! checked, and kept out of every message, log line and `Debug`.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::event::EventKind;

/// One `[[notify]]` table as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    /// A URL, or `env:NAME` to read it from the environment.
    pub url: String,
    pub format: Format,
    /// The events this sink gets (all when absent).
    #[serde(default)]
    pub events: Option<Vec<EventKind>>,
    /// Only migrations of these workflows (all when absent).
    #[serde(default)]
    pub workflows: Option<Vec<String>>,
}

/// How a sink wants its events.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A Slack (or Mattermost) incoming webhook: `text` and Block Kit `blocks`.
    Slack,
    /// A CloudEvents 1.0 event in structured mode (`application/cloudevents+json`).
    Cloudevents,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Slack => "slack",
            Format::Cloudevents => "cloudevents",
        }
    }
}

/// A sink ready to send to. Its URL is a secret: `Debug` and every message leave it out
/// and name the sink by its place (`notify #1`) and format instead.
#[derive(Clone)]
pub struct Sink {
    /// 1 for the first `[[notify]]` of the file.
    pub index: usize,
    pub format: Format,
    url: url::Url,
    /// The events it gets; `None`: all.
    pub events: Option<Vec<EventKind>>,
    /// The workflows it hears about; `None`: all.
    pub workflows: Option<Vec<String>>,
    /// A stable name for the Store's record of what it took: a digest of its format and
    /// URL (never the URL itself), so a sink that is moved or retyped counts as new.
    pub key: String,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.format.name())
    }
}

impl Sink {
    /// How messages name it: `notify #N`.
    pub fn name(&self) -> String {
        format!("notify #{}", self.index)
    }

    /// Where it is sent (only the sender reads it).
    pub(super) fn url(&self) -> &url::Url {
        &self.url
    }

    /// Whether this sink gets an event of `kind` about a migration of `workflow` (a test
    /// event goes everywhere; an event whose workflow is unknown passes no workflow filter).
    pub fn wants(&self, kind: EventKind, workflow: Option<&str>) -> bool {
        if kind == EventKind::Test {
            return true;
        }
        let kind_ok = self.events.as_ref().is_none_or(|e| e.contains(&kind));
        let workflow_ok = match (&self.workflows, workflow) {
            (None, _) => true,
            (Some(list), Some(w)) => list.iter().any(|x| x == w),
            (Some(_), None) => false,
        };
        kind_ok && workflow_ok
    }
}

/// Resolves the raw tables: `env` reads an environment variable (the CLI passes
/// `std::env::var`). A variable that is not set, or a URL that is not http(s), is an
/// error naming the sink and the variable, never the value.
pub fn resolve(raw: &[RawSink], env: impl Fn(&str) -> Option<String>) -> Result<Vec<Sink>, String> {
    let mut sinks = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let index = i + 1;
        let (text, from) = match r.url.strip_prefix("env:") {
            Some(name) => {
                let name = name.trim();
                if name.is_empty() {
                    return Err(format!(
                        "[[notify]] #{index} in shepherd.toml: `url = \"env:\"` names no variable"
                    ));
                }
                let value = env(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                    format!("[[notify]] #{index} in shepherd.toml reads its URL from {name}, which is not set")
                })?;
                (value, format!("the URL in {name}"))
            }
            None => (r.url.clone(), "its url".to_string()),
        };
        let url = url::Url::parse(text.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        let Some(url) = url else {
            return Err(format!(
                "[[notify]] #{index} in shepherd.toml: {from} is no http(s) URL (not shown: it is a secret)"
            ));
        };
        let mut digest = Sha256::new();
        digest.update(r.format.name().as_bytes());
        digest.update(b"\n");
        digest.update(url.as_str().as_bytes());
        let key: String = digest
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        sinks.push(Sink {
            index,
            format: r.format,
            url,
            events: r.events.clone(),
            workflows: r.workflows.clone(),
            key,
        });
    }
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<Vec<RawSink>, String> {
        #[derive(Deserialize)]
        struct File {
            notify: Vec<RawSink>,
        }
        toml::from_str::<File>(text)
            .map(|f| f.notify)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_keys_events_and_formats_are_refused_with_their_line() {
        let e = raw("[[notify]]\nurl = \"https://x\"\nformat = \"slack\"\nchannel = \"c\"\n")
            .unwrap_err();
        assert!(e.contains("line 4") && e.contains("channel"), "{e}");
        let e = raw("[[notify]]\nurl = \"https://x\"\nformat = \"teams\"\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("teams"), "{e}");
        let e = raw("[[notify]]\nurl = \"https://x\"\nformat = \"slack\"\nevents = [\"moved\"]\n")
            .unwrap_err();
        assert!(e.contains("line 4") && e.contains("moved"), "{e}");
        let e = raw("[[notify]]\nurl = \"https://x\"\nformat = \"slack\"\nevents = [\"test\"]\n")
            .unwrap_err();
        assert!(e.contains("test"), "{e}");
    }

    #[test]
    fn a_url_from_the_environment_is_never_in_an_error() {
        let r = raw("[[notify]]\nurl = \"env:HOOK\"\nformat = \"cloudevents\"\n").unwrap();
        let e = resolve(&r, |_| None).unwrap_err();
        assert!(e.contains("HOOK") && e.contains("not set"), "{e}");
        let e = resolve(&r, |_| Some("ftp://secret-token".into())).unwrap_err();
        assert!(!e.contains("secret-token"), "{e}");
        let sinks = resolve(&r, |_| Some("https://h/secret-token".into())).unwrap();
        assert_eq!(format!("{:?}", sinks[0]), "notify #1 (cloudevents)");
        assert!(!sinks[0].key.contains("secret"));
    }

    #[test]
    fn filters_pick_events_and_workflows() {
        let r = raw("[[notify]]\nurl = \"https://x\"\nformat = \"slack\"\nevents = [\"paused\"]\nworkflows = [\"w\"]\n").unwrap();
        let s = &resolve(&r, |_| None).unwrap()[0];
        assert!(s.wants(EventKind::Paused, Some("w")));
        assert!(!s.wants(EventKind::Paused, Some("v")));
        assert!(!s.wants(EventKind::Transition, Some("w")));
        assert!(!s.wants(EventKind::Paused, None));
        assert!(s.wants(EventKind::Test, None));
    }
}
