//! `shepherd mr` and `shepherd release`: merge requests and releases on the local tracker,
//! opened, merged, closed and published as a person would on GitLab, so that a rehearsal's
//! `merge_request` and `release` gates have something to read. On a remote tracker people
//! do this in GitLab or GitHub itself: these commands refuse, and write nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::args::{MrAction, ReleaseAction};
use super::config::Session;
use super::output::{print, Format};
use crate::core::facts::MrState;
use crate::tracker::local::{LocalTracker, MergeRequestRecord};
use crate::tracker::TrackerSpec;

/// `shepherd mr open | merge | close`.
pub(super) fn mr(session: &Session, action: MrAction) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let path = local_only(session, "mr", "open, merge and close merge requests")?;
    // No file, no issues: `open` names the missing issue, and no file is created.
    let tracker = LocalTracker::open(&path, false, session.now, &session.actor)?;
    let (number, project, merge) = match action {
        MrAction::Open {
            issues,
            project,
            title,
        } => {
            if title
                .as_deref()
                .is_some_and(|t| t.trim().is_empty() || t.contains(['\n', '\r']))
            {
                bail!("--title must be one line of text");
            }
            let record =
                tracker.open_merge_request(project.as_deref(), title.as_deref(), &issues)?;
            let number = record.merge_request.number;
            return print(format, &shown(&record), || number.to_string());
        }
        MrAction::Merge { number, project } => (number, project, true),
        MrAction::Close { number, project } => (number, project, false),
    };
    let change = if merge {
        tracker.merge_merge_request(project.as_deref(), number)?
    } else {
        tracker.close_merge_request(project.as_deref(), number)?
    };
    let mut value = shown(&change.record);
    value["changed"] = json!(change.changed);
    let mr = &change.record.merge_request;
    let state = state_name(mr.state);
    print(format, &value, || {
        if change.changed {
            format!("{} {state}", mr.reference)
        } else {
            format!("{} is {state} already: nothing changed", mr.reference)
        }
    })
}

/// `shepherd release publish`.
pub(super) fn release(session: &Session, action: ReleaseAction) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let path = local_only(session, "release", "publish releases")?;
    let ReleaseAction::Publish { tag, project } = action;
    // A rehearsal may publish before it starts anything: `publish_release` makes the file
    // if need be, once the tag is known to be good.
    let tracker = LocalTracker::open(&path, false, session.now, &session.actor)?;
    let (project, release) = tracker.publish_release(project.as_deref(), &tag)?;
    let at = release
        .released_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    print(
        format,
        &json!({"project": project, "tag": release.tag, "released_at": at, "url": release.url}),
        || format!("{project} released {} at {at}", release.tag),
    )
}

/// The local tracker's file, or why `command` does not act on this tracker.
fn local_only(session: &Session, command: &str, what: &str) -> Result<PathBuf> {
    match session.spec()? {
        TrackerSpec::Local(path) => Ok(path),
        remote => {
            let place = if matches!(remote, TrackerSpec::GitLab(_)) {
                "GitLab"
            } else {
                "GitHub"
            };
            bail!(
                "`shepherd {command}` acts as a person on the local tracker only (a rehearsal); \
                 on {remote}, {what} in {place} itself"
            )
        }
    }
}

/// The JSON of a merge request: `{"number", "project", "reference", "state", "issues"}`
/// (and its title and address).
fn shown(record: &MergeRequestRecord) -> Value {
    let mr = &record.merge_request;
    json!({
        "number": mr.number,
        "project": mr.project,
        "reference": mr.reference,
        "state": state_name(mr.state),
        "issues": record.issues,
        "title": mr.title,
        "url": mr.url,
    })
}

fn state_name(state: MrState) -> &'static str {
    match state {
        MrState::Open => "open",
        MrState::Merged => "merged",
        MrState::Closed => "closed",
    }
}
