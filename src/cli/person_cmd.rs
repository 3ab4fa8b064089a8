//! What a person does to an issue through shepherd: `tick` (a checklist box, on the
//! tracking issue or a child), `close` and `reopen`. `label` has its own module.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::output::{print, Format};
use crate::engine::Engine;

/// Which checklist item `tick` means: its text, under which heading, on which child.
pub(super) struct Item<'a> {
    pub(super) text: &'a str,
    pub(super) section: Option<&'a str>,
    pub(super) child: Option<&'a str>,
}

/// `tick REF TEXT` (or `--undo`): ticks one box as a person would.
pub(super) async fn tick(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
    at: &Item<'_>,
    undo: bool,
) -> Result<ExitCode> {
    let ticked = engine
        .tick(reference, at.text, at.section, at.child, undo)
        .await?;
    print(format, &ticked, || {
        let mark = if ticked.checked { "[x]" } else { "[ ]" };
        let note = if ticked.changed { "" } else { " (already so)" };
        format!("#{}: {mark} {}{note}", ticked.number, ticked.item)
    })
}

/// `comment REF TEXT`: a comment as a person writes it, on the tracking issue or a child.
pub(super) async fn comment(
    engine: &Engine<'_>,
    spec: &crate::tracker::TrackerSpec,
    format: Format,
    reference: u64,
    text: &str,
    child: Option<&str>,
) -> Result<ExitCode> {
    if !spec.is_local() {
        anyhow::bail!(
            "`comment` writes as --actor on the local tracker only; on {spec}, comment on the issue itself"
        );
    }
    if text.trim().is_empty() {
        anyhow::bail!("the comment is empty: say something");
    }
    let (number, c) = engine.person_comment(reference, text, child).await?;
    let value = json!({"ref": number, "id": c.id, "author": c.author, "at": c.created_at});
    print(format, &value, || {
        let next = if crate::core::command::parse(text).is_some() {
            format!("; the next `shepherd advance {reference}` or `reconcile` answers the command")
        } else {
            String::new()
        };
        format!("#{number}: comment {} by {}{next}", c.id, c.author)
    })
}

/// `close REF` / `reopen REF`.
pub(super) async fn set_open(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
    open: bool,
) -> Result<ExitCode> {
    engine.person_set_open(reference, open).await?;
    let state = if open { "open" } else { "closed" };
    print(format, &json!({"ref": reference, "state": state}), || {
        format!("#{reference} is {state}")
    })
}
