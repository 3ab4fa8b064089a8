//! What a person does through shepherd: `tick` checks exactly one task item, re-reading the
//! body right before writing it; `label`, `close` and `reopen` change an issue; `pause`,
//! `resume` and `rollback` hold a migration or move it back. Each takes the migration's
//! lease, so a person's write and a reconcile never overwrite each other.

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use super::apply::LeftAlone;
use super::{report_plan, Advanced, Engine, Ticked};
use crate::core::checklist;
use crate::core::machine::{self, PAUSED_LABEL};
use crate::core::marker::PauseMarker;
use crate::tracker::{label_spec, Issue, IssueEdit};

/// What `pause` or `resume` did.
#[derive(Clone, Debug, Serialize)]
pub struct Paused {
    #[serde(rename = "ref")]
    pub number: u64,
    pub paused: bool,
    /// False when the migration already was as asked.
    pub changed: bool,
    pub reason: Option<String>,
}

impl<'a> Engine<'a> {
    /// Checks (or with `undo` unchecks) the one task item whose text contains `text`.
    pub async fn tick(
        &self,
        number: u64,
        text: &str,
        section: Option<&str>,
        child: Option<&str>,
        undo: bool,
    ) -> Result<Ticked> {
        self.with_lease(
            number,
            self.tick_unleased(number, text, section, child, undo),
        )
        .await
    }

    /// Ticks, then reads the body back: a person's editor (or a shepherd that shares no
    /// Store with this one) may have written a stale copy over it in between; then tick
    /// again.
    async fn tick_unleased(
        &self,
        number: u64,
        text: &str,
        section: Option<&str>,
        child: Option<&str>,
        undo: bool,
    ) -> Result<Ticked> {
        let target = self.tick_target(number, child).await?;
        let mut ticked = self.tick_once(target, text, section, undo).await?;
        for _ in 0..3 {
            if !ticked.changed {
                return Ok(ticked);
            }
            let body = self.tracker.issue(ticked.number).await?.body;
            let held = checklist::parse(&body)
                .iter()
                .filter(|i| section.is_none_or(|s| i.in_section(s)))
                .any(|i| i.text == ticked.item && i.done() != undo);
            if held {
                return Ok(ticked);
            }
            let again = self.tick_once(target, text, section, undo).await?;
            ticked.changed = again.changed;
        }
        bail!(
            "#{}: the tick of \"{}\" was overwritten three times by someone editing the issue at the same moment; try again",
            ticked.number,
            ticked.item
        )
    }

    /// The comments of migration `number`, or of its newest child made from `child`,
    /// oldest first, shepherd's own included (`log REF`): the issue's number and them.
    pub async fn log(
        &self,
        number: u64,
        child: Option<&str>,
    ) -> Result<(u64, Vec<crate::tracker::Comment>)> {
        let target = self.tick_target(number, child).await?;
        let mut comments = self.tracker.comments(target).await?;
        comments.sort_by_key(|c| (c.created_at, c.id));
        Ok((target, comments))
    }

    /// A comment as a person writes it, on migration `number` or its newest child made from
    /// `child`: the issue's number and the comment.
    pub async fn person_comment(
        &self,
        number: u64,
        text: &str,
        child: Option<&str>,
    ) -> Result<(u64, crate::tracker::Comment)> {
        let target = self.tick_target(number, child).await?;
        Ok((target, self.tracker.add_comment(target, text).await?))
    }

    /// The issue a tick writes: the migration, or its newest child made from `child`.
    async fn tick_target(&self, number: u64, child: Option<&str>) -> Result<u64> {
        let Some(template) = child else {
            return Ok(number);
        };
        self.children(number)
            .await?
            .iter()
            .filter(|c| c.marker.template.as_deref() == Some(template))
            .map(|c| c.issue.number)
            .max()
            .with_context(|| format!("#{number} has no {template} child issue"))
    }

    /// Checks (or unchecks) the one matching item of issue `target`.
    async fn tick_once(
        &self,
        target: u64,
        text: &str,
        section: Option<&str>,
        undo: bool,
    ) -> Result<Ticked> {
        // Re-read right before writing: a person may have edited the body a moment ago.
        let issue = self.tracker.issue(target).await?;
        let items = checklist::parse(&issue.body);
        let needle = text.to_lowercase();
        let items: Vec<checklist::Item> = match section {
            Some(sect) => items.into_iter().filter(|i| i.in_section(sect)).collect(),
            None => items,
        };
        let place = section
            .map(|s| format!(" under \"{s}\""))
            .unwrap_or_default();
        let matches: Vec<&checklist::Item> = items
            .iter()
            .filter(|i| i.text.to_lowercase().contains(&needle))
            .collect();
        let item = match matches.as_slice() {
            [one] => *one,
            [] => {
                let list: Vec<String> = items
                    .iter()
                    .filter(|i| i.done() == undo)
                    .map(|i| format!("  - {}", i.text))
                    .collect();
                let state = if undo { "checked" } else { "open" };
                bail!(
                    "no task item of #{target}{place} contains \"{text}\"{}",
                    if list.is_empty() {
                        String::new()
                    } else {
                        format!("; its {state} items:\n{}", list.join("\n"))
                    }
                );
            }
            several => {
                let list: Vec<String> = several.iter().map(|i| format!("  - {}", i.text)).collect();
                bail!(
                    "{} task items of #{target}{place} contain \"{text}\"; say which (or narrow with --section):\n{}",
                    several.len(),
                    list.join("\n")
                );
            }
        };
        let changed = item.done() == undo;
        if changed {
            self.tracker
                .update_body(target, &checklist::set(&issue.body, item, !undo))
                .await?;
        }
        Ok(Ticked {
            number: target,
            item: item.text.clone(),
            checked: !undo,
            changed,
        })
    }

    /// Adds and removes labels as a person would, under the migration's lease.
    pub async fn person_labels(
        &self,
        number: u64,
        add: &[String],
        remove: &[String],
    ) -> Result<Issue> {
        self.with_lease(number, async {
            let issue = self.tracker.issue(number).await?;
            let edit = IssueEdit {
                current: issue.labels.clone(),
                add: add
                    .iter()
                    .filter(|l| !issue.labels.contains(l))
                    .cloned()
                    .collect(),
                remove: remove
                    .iter()
                    .filter(|l| issue.labels.contains(l))
                    .cloned()
                    .collect(),
                open: None,
            };
            if edit.add.is_empty() && edit.remove.is_empty() {
                return Ok(issue);
            }
            Ok(self.tracker.edit_issue(number, &edit).await?)
        })
        .await
    }

    /// Closes or reopens an issue as a person would, under its lease.
    pub async fn person_set_open(&self, number: u64, open: bool) -> Result<Issue> {
        self.with_lease(number, async {
            let issue = self.tracker.issue(number).await?;
            if issue.open == open {
                return Ok(issue);
            }
            let edit = IssueEdit {
                current: issue.labels.clone(),
                open: Some(open),
                ..Default::default()
            };
            Ok(self.tracker.edit_issue(number, &edit).await?)
        })
        .await
    }

    /// Holds a migration where it is (`paused`) or lets it move on again, recording who
    /// and why in a comment on the tracking issue.
    pub async fn pause(&self, number: u64, paused: bool, reason: Option<&str>) -> Result<Paused> {
        if paused && reason.is_none_or(|r| r.trim().is_empty()) {
            bail!("--reason must say why #{number} is paused");
        }
        self.with_lease(number, async {
            let (m, workflow) = self.migration(number).await?;
            let by = self.actor.clone();
            Ok(self
                .pause_by(&m, workflow, paused, reason, &by, None)
                .await?
                .0)
        })
        .await
    }

    /// Pauses or resumes the migration of `issue` for `by` (the caller holds its lease):
    /// the comment that records it, then the label. Made by a comment command (its id),
    /// the comment is the command's reply; of two runs that record one command, the first
    /// comment stays and the other run takes its own back and writes nothing more. Also
    /// returns the comment posted, if any.
    pub(crate) async fn pause_by(
        &self,
        m: &super::Migration,
        workflow: &crate::core::workflow::Workflow,
        paused: bool,
        reason: Option<&str>,
        by: &str,
        command: Option<u64>,
    ) -> Result<(Paused, Option<crate::tracker::Comment>)> {
        let issue = &m.issue;
        let number = issue.number;
        let is_paused = issue.labels.iter().any(|l| l == PAUSED_LABEL);
        let mut done = Paused {
            number,
            paused,
            changed: false,
            reason: reason.map(str::to_string),
        };
        if is_paused == paused {
            return Ok((done, None));
        }
        let mark = PauseMarker {
            by: by.to_string(),
            reason: reason.unwrap_or_default().to_string(),
            paused,
            command,
        };
        let who = crate::render::neutralize(by);
        let text = match (paused, reason) {
            (true, Some(r)) => format!(
                "**shepherd**: {who} paused this migration: {}",
                crate::render::neutralize(r)
            ),
            _ => format!(
                "**shepherd**: {who} resumed this migration{}",
                reason
                    .map(|r| format!(": {}", crate::render::neutralize(r)))
                    .unwrap_or_default()
            ),
        };
        let posted = self
            .tracker
            .add_comment(number, &format!("{text}\n\n{}", mark.render()))
            .await?;
        if let Some(id) = command {
            if !self.first_answer(number, id, &posted).await? {
                return Ok((done, None));
            }
        }
        self.notify_pause(m, workflow, paused, reason, by, &posted)
            .await?;
        if paused {
            self.ensure_paused_label().await?;
        }
        let edit = IssueEdit {
            current: issue.labels.clone(),
            add: if paused {
                vec![PAUSED_LABEL.to_string()]
            } else {
                Vec::new()
            },
            remove: if paused {
                Vec::new()
            } else {
                vec![PAUSED_LABEL.to_string()]
            },
            open: None,
        };
        self.tracker.edit_issue(number, &edit).await?;
        done.changed = true;
        Ok((done, Some(posted)))
    }

    /// Moves a migration back to a stage it has been in (any stage with `force`),
    /// recording why, and pauses it there: a new stay (`machine::rollback`).
    pub async fn rollback(&self, number: u64, back: &machine::RollbackTo<'_>) -> Result<Advanced> {
        if back.reason.trim().is_empty() {
            bail!("--reason must say why #{number} is rolled back");
        }
        self.with_lease(number, async {
            let (m, workflow) = self.migration(number).await?;
            let (snapshot, comments) = self.snapshot(&m, workflow, &[], true, None).await?;
            let plan = machine::rollback(workflow, &snapshot, back, self.now())
                .map_err(anyhow::Error::msg)?;
            self.rollback_plan(&m, workflow, plan, &comments).await
        })
        .await
    }

    /// Applies a rollback's plan (the caller holds the lease).
    pub(crate) async fn rollback_plan(
        &self,
        m: &super::Migration,
        workflow: &crate::core::workflow::Workflow,
        plan: machine::Plan,
        comments: &[crate::tracker::Comment],
    ) -> Result<Advanced> {
        let number = m.issue.number;
        self.ensure_paused_label().await?;
        let applied = self.apply(m, workflow, &plan, comments).await?;
        if applied.left.is_none() {
            // A child the stage made that runs its own workflow enters its first stage.
            self.start_made(&applied.created).await?;
        }
        let mut report = report_plan(number, workflow, plan, Vec::new());
        if let Some(left) = applied.left {
            report.transitions.clear();
            report.skipped = Some(match left {
                LeftAlone::LostTo(winner) => {
                    format!("another shepherd ({winner}) moved #{number} first")
                }
                left => left.why(number),
            });
        }
        Ok(report)
    }

    pub(crate) async fn ensure_paused_label(&self) -> Result<()> {
        let spec = label_spec(
            PAUSED_LABEL,
            "shepherd: no forward move while this label is on",
        );
        Ok(self.tracker.ensure_labels(&[spec]).await?)
    }
}
