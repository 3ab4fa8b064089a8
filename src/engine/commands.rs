//! Comment commands (DESIGN §12): `/shepherd pause …` on a migration's issue or one of its
//! children, acted on once and answered by one reply. The caller holds the migration's
//! lease; a run that shares no Store with another is kept from acting twice by the claim:
//! of two answers to one command, the first stays and the other run takes its own back.
//! A pause, resume or rollback a command makes is recorded by a comment that is also the
//! reply; `advance` is answered once the advance that follows has run.

use anyhow::Result;
use serde::Serialize;

use super::{Advanced, Engine};
use crate::core::command::{self, Command, ReplyMarker, Said, Verb};
use crate::core::gates::Gate;
use crate::core::machine::{self, Commanded, PAUSED_LABEL};
use crate::core::report::Status;
use crate::core::workflow::Workflow;
use crate::render::neutralize;
use crate::tracker::{Access, Comment, IssueEdit};

/// What one command came to.
#[derive(Clone, Debug, Serialize)]
pub struct Answered {
    /// The issue the command was given on (the migration's, or a child's).
    pub issue: u64,
    /// The command's comment id.
    pub command: u64,
    pub verb: String,
    pub by: String,
    /// False when it was refused or could not be done (the reply says why).
    pub done: bool,
    /// The reply's first line.
    pub reply: String,
}

/// The commands of one look: those answered, and the `advance`s to answer once the
/// advance has run.
#[derive(Default)]
pub(crate) struct Commands {
    pub answered: Vec<Answered>,
    pub advances: Vec<(u64, Command)>,
    /// Each issue looked at, with its count of comments where nothing was posted on it.
    pub looked: Vec<(u64, Option<u64>)>,
}

impl<'a> Engine<'a> {
    /// The Store's record that command `id` is answered: a process that shares the Store
    /// and read the comments before the answer was posted does not answer it again.
    fn answered_key(&self, id: u64) -> String {
        format!("{}|answered:{id}", self.tracker.describe())
    }

    /// Answers the commands pending on the issues `on` (the migration's own first, then
    /// children's), oldest first. The caller holds the migration's lease.
    pub(crate) async fn answer_commands(&self, number: u64, on: &[u64]) -> Result<Commands> {
        let mut out = Commands::default();
        for &issue in on {
            let comments = self.tracker.comments(issue).await?;
            let pending = command::pending(comments.iter().map(Said::from));
            out.looked
                .push((issue, pending.is_empty().then_some(comments.len() as u64)));
            for cmd in pending {
                if self
                    .store
                    .cache_get(&self.answered_key(cmd.id))
                    .await?
                    .is_some()
                {
                    continue;
                }
                if matches!(cmd.verb, Verb::Advance) {
                    match self.may_write(&cmd).await? {
                        Ok(()) => out.advances.push((issue, cmd)),
                        Err(why) => out
                            .answered
                            .extend(self.refuse(number, issue, &cmd, &why).await?),
                    }
                    continue;
                }
                if let Some(a) = self.answer_one(number, issue, &cmd).await? {
                    out.answered.push(a);
                }
            }
        }
        Ok(out)
    }

    /// Answers the `advance` commands once the advance ran: what it did, or what holds
    /// the migration.
    pub(crate) async fn answer_advances(
        &self,
        commands: &mut Commands,
        advanced: &Advanced,
    ) -> Result<()> {
        for (issue, cmd) in std::mem::take(&mut commands.advances) {
            let text = if advanced.transitions.is_empty() {
                let blocked: Vec<String> = advanced
                    .blocked_by
                    .iter()
                    .map(|g| format!("- {}: {}", g.description, g.detail))
                    .collect();
                match (&advanced.skipped, blocked.is_empty()) {
                    (Some(why), _) => format!("nothing moved: {why}"),
                    (None, true) => format!(
                        "nothing to move: #{} is in {}",
                        advanced.number,
                        advanced.stage.as_deref().unwrap_or("no stage")
                    ),
                    (None, false) => format!(
                        "nothing moved; {} waits for:\n\n{}",
                        advanced.stage.as_deref().unwrap_or("the migration"),
                        blocked.join("\n")
                    ),
                }
            } else {
                let moves: Vec<String> = advanced
                    .transitions
                    .iter()
                    .map(|t| format!("{} → {}", t.from.as_deref().unwrap_or("start"), t.to))
                    .collect();
                format!("advanced: {}", moves.join(", "))
            };
            if let Some(a) = self
                .reply(advanced.number, issue, &cmd, &text, true, None)
                .await?
            {
                commands.answered.push(a);
            }
        }
        Ok(())
    }

    /// Acts on one command other than `advance` and answers it; `None` when another run
    /// answered it first.
    async fn answer_one(&self, number: u64, issue: u64, cmd: &Command) -> Result<Option<Answered>> {
        match &cmd.verb {
            Verb::Help => {
                self.reply(number, issue, cmd, &command::help(), true, None)
                    .await
            }
            Verb::Unknown { why, .. } => {
                let text = format!("{why}.\n\n{}", command::help());
                self.reply(number, issue, cmd, &text, false, None).await
            }
            Verb::Status => {
                let text = status_reply(&self.status(number).await?);
                self.reply(number, issue, cmd, &text, true, None).await
            }
            Verb::Approve => self.approve(number, issue, cmd).await,
            verb => match self.may_write(cmd).await? {
                Err(why) => self.refuse(number, issue, cmd, &why).await,
                Ok(()) => match verb {
                    Verb::Pause { reason } => {
                        self.pause_command(number, issue, cmd, Some(reason)).await
                    }
                    Verb::Resume { reason } => {
                        self.pause_command(number, issue, cmd, reason.as_deref())
                            .await
                    }
                    Verb::Rollback { stage, reason } => {
                        self.rollback_command(number, issue, cmd, stage, reason)
                            .await
                    }
                    _ => Ok(None),
                },
            },
        }
    }

    /// Whether the commenter may change the migration: write access on the tracker, or on
    /// the local tracker one of `[people] operators` (anyone when unset). `Err` says why not.
    async fn may_write(&self, cmd: &Command) -> Result<Result<(), String>> {
        Ok(
            match self.tracker.access(&cmd.author, cmd.author_id).await? {
                Some(Access::Write) => Ok(()),
                Some(Access::Less(has)) => {
                    Err(format!("needs {} (has {has})", self.tracker.write_access()))
                }
                None => match &self.operators {
                    Some(ops) if !ops.iter().any(|o| o == &cmd.author) => Err(format!(
                        "only the operators named in shepherd.toml may ({})",
                        ops.join(", ")
                    )),
                    _ => Ok(()),
                },
            },
        )
    }

    async fn refuse(
        &self,
        number: u64,
        issue: u64,
        cmd: &Command,
        why: &str,
    ) -> Result<Option<Answered>> {
        let what = match cmd.verb {
            Verb::Rollback { .. } => "roll back",
            ref v => v.name(),
        };
        let text = format!("may not {what}: {why}");
        self.reply(number, issue, cmd, &text, false, None).await
    }

    /// `/shepherd pause REASON` and `/shepherd resume`: the pause's own comment is the
    /// reply; a migration already as asked gets a reply that says so.
    async fn pause_command(
        &self,
        number: u64,
        issue: u64,
        cmd: &Command,
        reason: Option<&str>,
    ) -> Result<Option<Answered>> {
        let paused = matches!(cmd.verb, Verb::Pause { .. });
        let (m, workflow) = self.migration(number).await?;
        let is_paused = m.issue.labels.iter().any(|l| l == PAUSED_LABEL);
        if is_paused == paused || issue != number {
            // A command on a child, or nothing to change: a reply of its own. The pause
            // itself is recorded on the tracking issue.
            if is_paused == paused {
                let text = format!(
                    "#{number} is {} already",
                    if paused { "paused" } else { "not paused" }
                );
                return self.reply(number, issue, cmd, &text, true, None).await;
            }
            let Some(a) = self
                .reply(
                    number,
                    issue,
                    cmd,
                    &format!("{}ing #{number}", cmd.verb.name()),
                    true,
                    None,
                )
                .await?
            else {
                return Ok(None);
            };
            self.pause_by(&m, workflow, paused, reason, &cmd.author, None)
                .await?;
            return Ok(Some(a));
        }
        let (done, posted) = self
            .pause_by(&m, workflow, paused, reason, &cmd.author, Some(cmd.id))
            .await?;
        Ok(posted.map(|c| self.answered(issue, cmd, done.changed, &c)))
    }

    /// `/shepherd rollback STAGE REASON`: the rollback's audit comment names the commenter
    /// and the command, and is the reply; one that cannot be made gets a reply saying why.
    async fn rollback_command(
        &self,
        number: u64,
        issue: u64,
        cmd: &Command,
        stage: &str,
        reason: &str,
    ) -> Result<Option<Answered>> {
        let (m, workflow) = self.migration(number).await?;
        let (snapshot, comments) = self.snapshot(&m, workflow, &[], true, None).await?;
        let back = machine::RollbackTo {
            to: stage,
            reason,
            force: false,
            keep_checklists: false,
        };
        let mut plan = match machine::rollback(workflow, &snapshot, &back, self.now()) {
            Ok(plan) => plan,
            Err(why) => {
                return self
                    .reply(
                        number,
                        issue,
                        cmd,
                        &format!("cannot roll back: {why}"),
                        false,
                        None,
                    )
                    .await
            }
        };
        if issue != number {
            // On a child: the reply there first, then the rollback on the tracking issue.
            let Some(a) = self
                .reply(
                    number,
                    issue,
                    cmd,
                    &format!("rolling #{number} back to {stage}: {reason}"),
                    true,
                    None,
                )
                .await?
            else {
                return Ok(None);
            };
            self.rollback_plan(&m, workflow, plan, &comments).await?;
            return Ok(Some(a));
        }
        for t in &mut plan.transitions {
            t.command = Some(Commanded {
                id: cmd.id,
                by: cmd.author.clone(),
            });
        }
        let advanced = self.rollback_plan(&m, workflow, plan, &comments).await?;
        self.store
            .cache_put(&self.answered_key(cmd.id), "1", "1")
            .await?;
        Ok(advanced.skipped.is_none().then(|| Answered {
            issue,
            command: cmd.id,
            verb: cmd.verb.name().into(),
            by: cmd.author.clone(),
            done: true,
            reply: format!("rolled back to {stage}: {reason}"),
        }))
    }

    /// `/shepherd approve`: an approval by the commenter where an approval gate of the
    /// stage names them. The reply records it (the gate counts it as the approver adding
    /// the label); the label is added too.
    async fn approve(&self, number: u64, issue: u64, cmd: &Command) -> Result<Option<Answered>> {
        let (m, workflow) = self.migration(number).await?;
        let stage = workflow.stages_labelled(&m.issue.labels).first().copied();
        let gates = stage.map(approval_gates).unwrap_or_default();
        let Some((label, _)) = gates.iter().find(|(_, by)| by.contains(&cmd.author)) else {
            let why = match (stage, gates.is_empty()) {
                (None, _) => format!("#{number} is in no stage"),
                (Some(s), true) => format!("stage {} waits for no approval", s.id),
                (Some(s), false) => {
                    let names: Vec<&str> = gates
                        .iter()
                        .flat_map(|(_, by)| by.iter().map(String::as_str))
                        .collect();
                    format!(
                        "not an approver of stage {} (approvers: {})",
                        s.id,
                        names.join(", ")
                    )
                }
            };
            return self.refuse(number, issue, cmd, &why).await;
        };
        let text = format!("approved ~\"{label}\" for #{number}");
        let Some(a) = self
            .reply(number, issue, cmd, &text, true, Some(label.clone()))
            .await?
        else {
            return Ok(None);
        };
        if !m.issue.labels.contains(label) {
            let edit = IssueEdit {
                current: m.issue.labels.clone(),
                add: vec![label.clone()],
                ..Default::default()
            };
            self.tracker.edit_issue(number, &edit).await?;
        }
        Ok(Some(a))
    }

    /// Posts the reply to `cmd` on `issue`, then keeps it only if it is the first answer
    /// (`first_answer`); `None` when another run's answer came first.
    async fn reply(
        &self,
        number: u64,
        issue: u64,
        cmd: &Command,
        text: &str,
        done: bool,
        approves: Option<String>,
    ) -> Result<Option<Answered>> {
        let marker = ReplyMarker {
            command: cmd.id,
            verb: cmd.verb.name().into(),
            by: cmd.author.clone(),
            done,
            approves,
            run: Some(self.run_id.clone()),
        };
        let body = format!("@{} {text}\n\n{}", neutralize(&cmd.author), marker.render());
        let posted = self.tracker.add_comment(issue, &body).await?;
        if !self.first_answer(issue, cmd.id, &posted).await? {
            return Ok(None);
        }
        let answered = self.answered(issue, cmd, done, &posted);
        self.notify_command(number, cmd, &answered).await?;
        Ok(Some(answered))
    }

    /// The `command` event of an answered command (where sinks are configured).
    async fn notify_command(&self, number: u64, cmd: &Command, answered: &Answered) -> Result<()> {
        if self.notify.is_none() {
            return Ok(());
        }
        let (m, workflow) = self.migration(number).await?;
        let mut event = self.event(
            crate::notify::EventKind::Command,
            &m,
            workflow,
            &cmd.id.to_string(),
            cmd.at,
        );
        event.by = cmd.author.clone();
        event.reason = Some(format!("/shepherd {}: {}", cmd.verb.name(), answered.reply));
        self.notify(&event).await.map(drop)
    }

    /// After posting `mine` as the answer to command `id`, reads the comments back: the
    /// first answer stays; a later one is taken back. Records the answer in the Store.
    pub(crate) async fn first_answer(&self, issue: u64, id: u64, mine: &Comment) -> Result<bool> {
        let back = self.tracker.read_back(issue).await?;
        let first = back
            .comments
            .iter()
            .filter(|c| command::answer_of(&c.body) == Some(id))
            .map(|c| c.id)
            .min();
        self.store
            .cache_put(&self.answered_key(id), "1", "1")
            .await?;
        if first.is_some_and(|f| f != mine.id) {
            tracing::info!(
                "#{issue}: another shepherd answered command {id} first; taking this answer back"
            );
            self.tracker.delete_comment(issue, mine.id).await?;
            return Ok(false);
        }
        Ok(true)
    }

    fn answered(&self, issue: u64, cmd: &Command, done: bool, posted: &Comment) -> Answered {
        let first = posted
            .body
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("**shepherd**: ")
            .to_string();
        Answered {
            issue,
            command: cmd.id,
            verb: cmd.verb.name().into(),
            by: cmd.author.clone(),
            done,
            reply: first,
        }
    }
}

/// The approval gates of `stage` (inside `any`/`all` too): each label and its approvers.
pub(crate) fn approval_gates(stage: &crate::core::workflow::Stage) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for gate in stage.all_gates() {
        gate.visit(&mut |g| {
            if let Gate::Approval { label, by, .. } = g {
                out.push((label.clone(), by.clone()));
            }
        });
    }
    out
}

/// Whether a label history may lack approvals given by command: an approval label of
/// `workflow` added by someone its gate does not name (as shepherd does for
/// `/shepherd approve`). Only then are the comments read for them.
pub(crate) fn may_lack_approvals(
    workflow: &Workflow,
    events: &[crate::core::snapshot::LabelEvent],
) -> bool {
    let gates: Vec<(String, Vec<String>)> =
        workflow.stages.iter().flat_map(approval_gates).collect();
    events.iter().any(|e| {
        e.added
            && gates
                .iter()
                .any(|(label, by)| label == &e.label && !by.contains(&e.actor))
    })
}

/// The reply to `/shepherd status`: the stage, a pause, and each gate with who must act.
fn status_reply(s: &Status) -> String {
    let mut out = format!(
        "#{} {} is in **{}** since {}",
        s.number,
        s.workflow,
        s.stage.as_deref().unwrap_or("no stage"),
        s.entered_at.format("%Y-%m-%d %H:%M UTC")
    );
    if s.paused {
        out.push_str(&format!(
            "; paused by {}{}",
            s.paused_by.as_deref().unwrap_or("someone"),
            s.paused_reason
                .as_deref()
                .map(|r| format!(": {}", neutralize(r)))
                .unwrap_or_default()
        ));
    }
    if let Some(f) = &s.failing {
        out.push_str(&format!("; failing: {}", neutralize(f)));
    }
    out.push('\n');
    if !s.gates.is_empty() {
        out.push('\n');
    }
    for g in &s.gates {
        out.push_str(&format!(
            "- {} {}: {}",
            if g.passed { "✔" } else { "✘" },
            g.description,
            g.detail
        ));
        if let Some(who) = g.waits_for.as_ref().filter(|_| !g.passed) {
            out.push_str(&format!(" — waits for {who}"));
        }
        out.push('\n');
    }
    out
}
