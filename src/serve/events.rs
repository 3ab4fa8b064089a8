//! What a webhook delivery is about, read from its JSON: the project it comes from and the
//! issues it names — the issue itself (with its body, whose shepherd marker says whether
//! it is a migration or a child of one), the issues a merge request or pull request
//! references, or every migration (a release, a feature flag). Pure: no IO, no clock.
//! Which of these are migrations is decided later, against the service's index.

use regex::Regex;
use serde_json::Value;

use crate::core::marker::IssueMarker;

/// What a delivery names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mentions {
    /// The project as the sender names it (`group/project`, `owner/repo`), if it does.
    pub project: Option<String>,
    /// Issues the event is about, with the marker of their body when the payload carries
    /// the body.
    pub issues: Vec<Mentioned>,
    /// Issue numbers referenced from a merge request or pull request (`#12`, `Closes #12`).
    pub references: Vec<u64>,
    /// The event may concern every migration (a release, a feature flag).
    pub all: bool,
}

/// One issue an event is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Mentioned {
    pub number: u64,
    /// The shepherd marker of the body in the payload (`None`: no body, or no marker).
    pub marker: Option<IssueMarker>,
}

/// Why a delivery could not be read: a 400 with this text.
#[derive(Debug, PartialEq)]
pub struct Malformed(pub String);

/// At most this many references are taken from one merge request description.
const MAX_REFERENCES: usize = 50;

/// Reads a GitLab delivery. `kind` is the `X-Gitlab-Event` header when given; the body's
/// `object_kind` decides otherwise. Kinds shepherd does not use name nothing.
pub fn gitlab(kind: Option<&str>, body: &[u8]) -> Result<Mentions, Malformed> {
    let v = parse(body)?;
    let object_kind = v.get("object_kind").and_then(Value::as_str);
    let kind = match (object_kind, kind) {
        (Some(k), _) => k.to_string(),
        (None, Some(header)) => header
            .trim_end_matches(" Hook")
            .trim_start_matches("Confidential ")
            .to_lowercase()
            .replace(' ', "_"),
        (None, None) => return Err(Malformed("no object_kind in the event".into())),
    };
    let mut out = Mentions {
        project: v
            .pointer("/project/path_with_namespace")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Default::default()
    };
    match kind.as_str() {
        "issue" | "work_item" => {
            let attrs = field(&v, "/object_attributes")?;
            out.issues.push(Mentioned {
                number: number(attrs, "/iid", "object_attributes.iid")?,
                marker: marker(attrs.get("description")),
            });
        }
        "note" => {
            let noteable = v
                .pointer("/object_attributes/noteable_type")
                .and_then(Value::as_str)
                .ok_or_else(|| Malformed("missing object_attributes.noteable_type".into()))?;
            match noteable {
                "Issue" => {
                    let issue = field(&v, "/issue")?;
                    out.issues.push(Mentioned {
                        number: number(issue, "/iid", "issue.iid")?,
                        marker: marker(issue.get("description")),
                    });
                }
                "MergeRequest" => {
                    let mr = field(&v, "/merge_request")?;
                    out.references = references(mr.get("description"));
                }
                _ => {}
            }
        }
        "merge_request" => {
            let attrs = field(&v, "/object_attributes")?;
            number(attrs, "/iid", "object_attributes.iid")?;
            out.references = references(attrs.get("description"));
        }
        "release" | "feature_flag" => out.all = true,
        _ => {}
    }
    Ok(out)
}

/// Reads a GitHub delivery of event `kind` (`X-GitHub-Event`).
pub fn github(kind: &str, body: &[u8]) -> Result<Mentions, Malformed> {
    let v = parse(body)?;
    let mut out = Mentions {
        project: v
            .pointer("/repository/full_name")
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Default::default()
    };
    match kind {
        "issues" | "issue_comment" => {
            let issue = field(&v, "/issue")?;
            // A comment on a pull request arrives as an `issue_comment` on an issue with a
            // `pull_request` field: no migration is a pull request.
            if issue.get("pull_request").is_some() {
                out.references = references(issue.get("body"));
            } else {
                out.issues.push(Mentioned {
                    number: number(issue, "/number", "issue.number")?,
                    marker: marker(issue.get("body")),
                });
            }
        }
        "sub_issues" => {
            let parent = field(&v, "/parent_issue")?;
            out.issues.push(Mentioned {
                number: number(parent, "/number", "parent_issue.number")?,
                marker: marker(parent.get("body")),
            });
            if let Some(sub) = v.get("sub_issue") {
                out.issues.push(Mentioned {
                    number: number(sub, "/number", "sub_issue.number")?,
                    marker: marker(sub.get("body")),
                });
            }
        }
        "pull_request" => {
            let pr = field(&v, "/pull_request")?;
            number(pr, "/number", "pull_request.number")?;
            out.references = references(pr.get("body"));
        }
        "release" => out.all = true,
        _ => {}
    }
    Ok(out)
}

fn parse(body: &[u8]) -> Result<Value, Malformed> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Malformed(format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(Malformed("the body is not a JSON object".into()));
    }
    Ok(v)
}

fn field<'v>(v: &'v Value, pointer: &str) -> Result<&'v Value, Malformed> {
    v.pointer(pointer)
        .filter(|f| f.is_object())
        .ok_or_else(|| Malformed(format!("missing {}", pointer[1..].replace('/', "."))))
}

fn number(v: &Value, pointer: &str, name: &str) -> Result<u64, Malformed> {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .ok_or_else(|| Malformed(format!("missing {name}")))
}

fn marker(body: Option<&Value>) -> Option<IssueMarker> {
    IssueMarker::find(body?.as_str()?)
}

/// `#12`, `Closes #12`, and issue URLs (`…/issues/12`) in a description, in order, once.
fn references(body: Option<&Value>) -> Vec<u64> {
    let Some(text) = body.and_then(Value::as_str) else {
        return Vec::new();
    };
    let Ok(pattern) = Regex::new(r"(?:^|[^\w&/])#(\d{1,12})\b|/issues/(\d{1,12})\b") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for caps in pattern.captures_iter(text) {
        let n = caps
            .get(1)
            .or_else(|| caps.get(2))
            .and_then(|m| m.as_str().parse::<u64>().ok())
            .filter(|n| *n > 0);
        if let Some(n) = n {
            if !out.contains(&n) {
                out.push(n);
            }
        }
        if out.len() >= MAX_REFERENCES {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_in_descriptions() {
        let v = json!("Closes #12, see #3 and https://gitlab.example/g/p/-/issues/7; not a#5 or &#6 or #12 again");
        assert_eq!(references(Some(&v)), [12, 3, 7]);
        assert!(references(None).is_empty());
    }

    #[test]
    fn gitlab_kinds_and_missing_fields() {
        let issue =
            json!({"object_kind": "issue", "object_attributes": {"iid": 4, "description": "x"}});
        let m = gitlab(None, issue.to_string().as_bytes()).unwrap();
        assert_eq!(
            m.issues,
            [Mentioned {
                number: 4,
                marker: None
            }]
        );
        let broken = json!({"object_kind": "issue", "object_attributes": {}});
        assert_eq!(
            gitlab(None, broken.to_string().as_bytes()),
            Err(Malformed("missing object_attributes.iid".into()))
        );
        let release = json!({"object_kind": "release"});
        assert!(gitlab(None, release.to_string().as_bytes()).unwrap().all);
        let push = json!({"object_kind": "push"});
        assert_eq!(
            gitlab(Some("Push Hook"), push.to_string().as_bytes()).unwrap(),
            Mentions::default()
        );
        assert!(gitlab(None, b"[1]").is_err());
        assert!(gitlab(None, b"{").is_err());
    }
}
