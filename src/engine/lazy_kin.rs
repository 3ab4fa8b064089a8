//! Children read only when they can matter: the advance of one migration (a command, a
//! webhook) starts from its tracking issue alone, and reads its children (one request:
//! GitLab issue links, GitHub sub-issues) only where a full read could decide otherwise —
//! the stage it is in looks at a child, the plan enters a stage that does, or a child may
//! exist at all: shepherd makes a child only on entering a stage with a `create_issue`
//! action, after posting that transition's audit comment, so an issue with no comment, or
//! whose audit comments record no entry into such a stage, has no child of shepherd's
//! (none to start after a crash, none a gate could see).

use super::{Engine, Migration};
use crate::core::machine::Plan;
use crate::core::marker::TransitionMarker;
use crate::core::workflow::{Action, Workflow};
use crate::tracker::Comment;

impl Engine<'_> {
    /// Migration `number` for an advance: the tracking issue, and its children unless
    /// they can wait (`children_can_wait`). The flag says whether they were read.
    pub(super) async fn family(&self, number: u64) -> anyhow::Result<(Vec<Migration>, bool)> {
        let (m, _) = self.migration(number).await?;
        if self.children_can_wait(&m) {
            return Ok((vec![m], false));
        }
        let mut out = vec![m];
        out.extend(self.children(number).await?);
        Ok((out, true))
    }

    /// Whether an advance of `m` may begin without reading its children: the stage it is in
    /// looks at none. With `fresh_reads` (the oracle run), never.
    pub(super) fn children_can_wait(&self, m: &Migration) -> bool {
        if self.fresh_reads {
            return false;
        }
        let Ok(workflow) = self.workflow_of(m) else {
            return false;
        };
        workflow
            .stages_labelled(&m.issue.labels)
            .first()
            .is_some_and(|s| s.child_templates().is_empty())
    }
}

/// Whether children left unread must be read before `plan` is applied (or, when it moves
/// nothing, reported): a stage it enters looks at a child, or a child may exist.
/// `comments` are those the plan was made with (read when it moves).
pub(super) fn children_matter(
    workflow: &Workflow,
    m: &Migration,
    plan: &Plan,
    comments: &[Comment],
) -> bool {
    let enters_a_child_stage = plan.transitions.iter().any(|t| {
        workflow
            .stage(&t.to)
            .is_none_or(|s| !s.child_templates().is_empty())
    });
    enters_a_child_stage || may_have_children(workflow, m, plan, comments)
}

/// Whether `m` may have a child of shepherd's. None when the issue has no comment at all;
/// when the plan moves (its comments were read), none unless one of them records an entry
/// into a stage that opens a child. A plan that moves nothing was made without comments:
/// then only an issue known to have none is known to have no child.
fn may_have_children(
    workflow: &Workflow,
    m: &Migration,
    plan: &Plan,
    comments: &[Comment],
) -> bool {
    if m.issue.comment_count == Some(0) || !opens_children(workflow) {
        return false;
    }
    if plan.transitions.is_empty() {
        return true;
    }
    comments.iter().any(|c| {
        TransitionMarker::find(&c.body).is_some_and(|t| {
            workflow.stage(&t.to).is_none_or(|s| {
                s.on_enter
                    .iter()
                    .any(|a| matches!(a, Action::CreateIssue { .. }))
            })
        })
    })
}

/// Whether any stage of `workflow` opens a child.
fn opens_children(workflow: &Workflow) -> bool {
    workflow.stages.iter().any(|s| {
        s.on_enter
            .iter()
            .any(|a| matches!(a, Action::CreateIssue { .. }))
    })
}
