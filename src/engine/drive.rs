//! The advance loop and its driver. One migration's advance plans and applies round after
//! round (`Advance::round`); where a round needs children started (made by its apply, or
//! made before a crash and never started), it hands them back instead of starting them
//! itself. The driver keeps a stack of advances: it starts each child under its own lease
//! (held, with its parent's, while the child and its own children move), then resumes the
//! parent where it stopped. No advance calls another: no recursion, no boxed futures.

use std::collections::{BTreeMap, VecDeque};

use anyhow::{bail, Context as _, Result};

use super::apply::Applied;
use super::lease::{HeldLeases, Leased, LEASE_WAIT};
use super::slots;
use super::{report_plan, Advanced, Engine, Kin, Migration, MoveReport};
use crate::core::machine;
use crate::core::marker::IssueMarker;
use crate::core::portfolio::Slots;
use crate::core::snapshot::LabelEvent;
use crate::core::workflow::{Stage, Workflow};
use crate::tracker::Issue;

/// How many rounds one advance may take before its workflow is taken for a loop.
const ROUNDS: usize = 5;

/// One migration's advance, as it stands between two rounds.
pub(super) struct Advance {
    number: u64,
    dry_run: bool,
    index: Vec<Migration>,
    /// Label history an earlier look of this advance already read.
    events: Option<Vec<LabelEvent>>,
    /// This run has just made the issue: it has no comments to read yet.
    new_issue: bool,
    /// `index` holds the children (else they are read once they can matter: `lazy_kin`).
    kin_read: bool,
    round: usize,
    transitions: Vec<MoveReport>,
    created: Vec<u64>,
    /// Children left unstarted by an earlier run are being started: the round goes on
    /// with the index read again.
    unstarted_started: bool,
    /// The rest of a round whose apply made children that are being started.
    after: Option<AfterApply>,
    /// The slots of limited stages this advance looked at, under their leases.
    slots: BTreeMap<String, Slots>,
}

/// What a round that applied a plan still has to do once the children it made started.
struct AfterApply {
    report: Advanced,
    applied: Applied,
    /// The children known before the apply.
    kids: Vec<Migration>,
}

impl Advance {
    /// Plans and (unless `dry_run`) applies, as far as the gates allow. The caller holds
    /// the lease when not `dry_run`. `events` is label history an earlier look of this
    /// advance already read; `kin_read` says that `index` holds the children.
    pub(super) fn new(
        number: u64,
        index: Vec<Migration>,
        dry_run: bool,
        events: Option<Vec<LabelEvent>>,
        kin_read: bool,
    ) -> Advance {
        Advance {
            number,
            dry_run,
            index,
            events,
            new_issue: false,
            kin_read,
            round: 0,
            transitions: Vec::new(),
            created: Vec::new(),
            unstarted_started: false,
            after: None,
            slots: BTreeMap::new(),
        }
    }

    /// The first stage of an issue this run has just made: the issue as made is all there
    /// is to read (no comments, no history, no children).
    pub(super) fn new_issue(m: Migration) -> Advance {
        let mut a = Advance::new(m.issue.number, vec![m], false, Some(Vec::new()), true);
        a.new_issue = true;
        a
    }
}

/// A child to start.
enum Start {
    /// One that runs a workflow but has no stage yet (a crash came between creating it and
    /// its first move): advanced as `advance` would.
    Unstarted(u64),
    /// One this run has just made: it enters its first stage, read from nothing more.
    New(Issue),
}

/// What a round ends in.
enum Round {
    Done(Box<Advanced>),
    /// These children first, in order; then the round goes on.
    Start(Vec<Start>),
    /// The next round.
    Again,
}

/// One level of the driver's stack.
struct Frame {
    /// How this level was started (none for the driver's root).
    start: Option<Start>,
    work: Work,
    /// Children to start before `work` goes on.
    pending: VecDeque<Start>,
}

enum Work {
    /// An unstarted child whose family is read once its lease is held.
    Family(u64),
    Advancing(Box<Advance>),
    /// Only children to start (those a rollback made).
    Nothing,
}

impl<'a> Engine<'a> {
    /// Runs an advance to its end, starting the children it needs started on the way.
    pub(super) async fn drive(&self, advance: Advance) -> Result<Advanced> {
        let root = Frame {
            start: None,
            work: Work::Advancing(Box::new(advance)),
            pending: VecDeque::new(),
        };
        let done = self.run(root).await?;
        done.context("an advance ends in a report")
    }

    /// Starts the children an apply made that run their own workflow (`Applied::created`),
    /// each under its lease, in order. The caller holds the parent's lease.
    pub(crate) async fn start_made(&self, created: &[(Issue, bool)]) -> Result<()> {
        let root = Frame {
            start: None,
            work: Work::Nothing,
            pending: new_starts(created),
        };
        self.run(root).await.map(drop)
    }

    /// The driver: the stack of frames, with the leases of the children in it renewed
    /// while it runs. On an error each child's lease is given back, innermost first, and
    /// the error says which child it was starting, as nested leases would.
    async fn run(&self, root: Frame) -> Result<Option<Advanced>> {
        let held = HeldLeases::default();
        let mut stack = vec![root];
        let outcome = {
            let work = self.run_stack(&mut stack, &held);
            tokio::select! {
                r = work => r.map_err(|e| (e, None)),
                (at, e) = self.keep_renewed(&held) => Err((e, Some(at))),
            }
        };
        match outcome {
            Ok(done) => Ok(done),
            Err((mut e, lost)) => {
                if let Some(at) = lost {
                    // The children inside the one whose lease was lost are abandoned.
                    held.forget_after(at + 1);
                    stack.truncate(at + 2);
                }
                while stack.len() > 1 {
                    let frame = stack.pop().expect("a child frame");
                    let _ = self.give_back(&held).await;
                    e = with_start_context(frame.start.as_ref(), e);
                }
                Err(e)
            }
        }
    }

    /// Works on the top frame until the root is done. The stack holds one frame more than
    /// `held` holds leases (the root's lease is its caller's).
    async fn run_stack(
        &self,
        stack: &mut Vec<Frame>,
        held: &HeldLeases,
    ) -> Result<Option<Advanced>> {
        loop {
            debug_assert_eq!(stack.len(), held.len() + 1);
            let top = stack.last_mut().expect("the root frame");
            if let Some(start) = top.pending.pop_front() {
                let (number, work) = match &start {
                    Start::Unstarted(n) => {
                        // What brought this advance may be a merge request.
                        self.facts.forget_merge_requests();
                        self.tracker.forget_merge_requests();
                        (*n, Work::Family(*n))
                    }
                    Start::New(child) => {
                        let n = child.number;
                        let Some(marker) = IssueMarker::find(&child.body) else {
                            bail!("child #{n} was made without its marker");
                        };
                        let m = Migration::new(child.clone(), marker);
                        (n, Work::Advancing(Box::new(Advance::new_issue(m))))
                    }
                };
                if let Err(e) = self.hold(held, number).await {
                    return Err(with_start_context(Some(&start), e));
                }
                stack.push(Frame {
                    start: Some(start),
                    work,
                    pending: VecDeque::new(),
                });
                continue;
            }
            let done = match &mut top.work {
                Work::Family(n) => {
                    let (index, kin_read) = self.family(*n).await?;
                    let a = Advance::new(*n, index, false, None, kin_read);
                    top.work = Work::Advancing(Box::new(a));
                    continue;
                }
                Work::Nothing => None,
                Work::Advancing(a) => match self.round(a).await? {
                    Round::Done(advanced) => Some(*advanced),
                    Round::Start(starts) => {
                        top.pending.extend(starts);
                        continue;
                    }
                    Round::Again => continue,
                },
            };
            if let (Some(Start::Unstarted(n)), Some(advanced)) = (&top.start, &done) {
                self.note_drift_after(*n, advanced).await?;
            }
            let frame = stack.pop().expect("the top frame");
            if stack.is_empty() {
                return Ok(done);
            }
            self.give_back(held)
                .await
                .map_err(|e| with_start_context(frame.start.as_ref(), e))?;
        }
    }

    /// One round of an advance: children left unstarted first, then the plan, and its
    /// apply. Applying can change what the gates see (a child now exists): the advance
    /// plans again until nothing moves, so the report ends with the gates that really
    /// block (and once more when children left unread turn out to matter).
    async fn round(&self, a: &mut Advance) -> Result<Round> {
        let number = a.number;
        if let Some(after) = a.after.take() {
            return self.after_apply(a, after).await;
        }
        if a.round == ROUNDS {
            bail!("#{number} keeps moving after several rounds: does its workflow loop?");
        }
        if std::mem::take(&mut a.unstarted_started) {
            a.index = self.local_index(number).await?;
        } else if !a.dry_run {
            let unstarted: Vec<Start> = Kin::new(&a.index)
                .children(number)
                .iter()
                .filter(|c| c.issue.open && self.unstarted(c))
                .map(|c| Start::Unstarted(c.issue.number))
                .collect();
            if !unstarted.is_empty() {
                a.unstarted_started = true;
                return Ok(Round::Start(unstarted));
            }
        }
        let (m, workflow) = match a.index.iter().find(|m| m.issue.number == number) {
            Some(m) => (m.clone(), self.workflow_of(m)?),
            None => self.migration(number).await?,
        };
        let kin = Kin::new(&a.index);
        let kids = kin.children(number);
        let read_comments = !std::mem::take(&mut a.new_issue);
        let (plan, comments) = self
            .decide(&m, workflow, kids, a.events.take(), read_comments, &a.slots)
            .await?;
        if !a.kin_read && super::lazy_kin::children_matter(workflow, &m, &plan, &comments) {
            // Judged again with them (the reads of this look are kept in the cache).
            let mut family = vec![m.clone()];
            family.extend(self.children(number).await?);
            a.index = family;
            a.kin_read = true;
            a.round += 1;
            return Ok(Round::Again);
        }
        if a.dry_run {
            // What a real run would do: the slots of a limited stage it would enter, read
            // (nothing is written, no place in line taken).
            let entry =
                slots::limited_entry(workflow, &plan).filter(|s| !a.slots.contains_key(&s.id));
            if let Some(stage) = entry {
                let slots = self.slots(workflow, stage, &m).await?;
                a.slots.insert(stage.id.clone(), slots);
                let (plan, _) = self
                    .decide(&m, workflow, kids, None, read_comments, &a.slots)
                    .await?;
                return Ok(Round::Done(Box::new(done(number, workflow, plan, a))));
            }
        }
        if a.dry_run || plan.transitions.is_empty() {
            if !a.dry_run && slots::waits_for_freeze(&plan) {
                self.set_places(workflow, &m, true).await?;
            } else if !a.dry_run && !slots::waits_for_slot(&plan) {
                self.set_places(workflow, &m, false).await?;
            }
            return Ok(Round::Done(Box::new(done(number, workflow, plan, a))));
        }
        // Owned: the rounds below change the advance (whose index `kids` borrows).
        let owned: Vec<Migration> = kids.iter().map(|k| (*k).clone()).collect();
        let kids: Vec<&Migration> = owned.iter().collect();
        if let Some(stage) =
            slots::limited_entry(workflow, &plan).filter(|s| !a.slots.contains_key(&s.id))
        {
            return self
                .in_slot(a, &m, workflow, &kids, stage, read_comments)
                .await;
        }
        self.apply_round(a, &m, workflow, &kids, plan, comments)
            .await
    }

    /// A round whose plan enters a stage with a `limit`: under the stage's lease, the
    /// slots are looked at, the plan made again with them, and applied; a migration that
    /// gets no slot keeps its place in line.
    async fn in_slot(
        &self,
        a: &mut Advance,
        m: &Migration,
        workflow: &Workflow,
        kids: &[&Migration],
        stage: &Stage,
        read_comments: bool,
    ) -> Result<Round> {
        let (key, what) = (
            self.slot_key(workflow, stage),
            slots::slots_of(workflow, stage),
        );
        let work = async {
            let slots = self.slots(workflow, stage, m).await?;
            a.slots.insert(stage.id.clone(), slots);
            let (plan, comments) = self
                .decide(m, workflow, kids, None, read_comments, &a.slots)
                .await?;
            let waits = slots::waits_for_slot(&plan);
            self.note_waiting(workflow, stage, m, waits).await?;
            if plan.transitions.is_empty() {
                return Ok(Round::Done(Box::new(done(a.number, workflow, plan, a))));
            }
            self.apply_round(a, m, workflow, kids, plan, comments).await
        };
        match self.leased_on(&key, &what, LEASE_WAIT, work).await? {
            Leased::Done(round) => Ok(round),
            Leased::Busy(who) => bail!(
                "{who}; waited {}s: try again in a moment",
                LEASE_WAIT.as_secs()
            ),
        }
    }

    /// Notes whether `m` waits in the line of each limited stage its stage leads to.
    /// `waiting`: its plan waits out a freeze before the stage (`freeze: wait`), and it
    /// keeps, or takes, its place, so that when the freeze ends the slots go in the order
    /// of the wait, not of who asks first. Otherwise its plan does not wait for a slot
    /// (paused, its gates no longer hold, moved on), and it gives up any place it has.
    async fn set_places(&self, workflow: &Workflow, m: &Migration, waiting: bool) -> Result<()> {
        for stage in slots::limited_next(workflow, &m.issue.labels) {
            let concerned = if waiting {
                stage.pacing.freeze_wait
            } else {
                self.in_line(workflow, stage, m.issue.number).await
            };
            if !concerned {
                continue;
            }
            let (key, what) = (
                self.slot_key(workflow, stage),
                slots::slots_of(workflow, stage),
            );
            let work = self.note_waiting(workflow, stage, m, waiting);
            if let Leased::Busy(who) = self.leased_on(&key, &what, LEASE_WAIT, work).await? {
                tracing::info!(
                    "{what}: {who}; #{}'s place in line is left as it is for now",
                    m.issue.number
                );
            }
        }
        Ok(())
    }

    /// The rest of a round whose plan moves: the claim, the writes, the children to start.
    async fn apply_round(
        &self,
        a: &mut Advance,
        m: &Migration,
        workflow: &Workflow,
        kids: &[&Migration],
        plan: machine::Plan,
        comments: Vec<crate::tracker::Comment>,
    ) -> Result<Round> {
        let number = a.number;
        let store_id = self.store_id().await?.clone();
        if let Some(busy) = self.in_other_hands(number, &plan, &comments, &store_id) {
            return Ok(Round::Done(Box::new(left_alone(
                m, workflow, plan, a, busy,
            ))));
        }
        let applied = self.apply(m, workflow, &plan, &comments).await?;
        if slots::touches_limited(workflow, &plan) {
            self.facts.forget_standing();
        }
        if let Some(left) = applied.left {
            let why = left.why(number);
            return Ok(Round::Done(Box::new(left_alone(m, workflow, plan, a, why))));
        }
        let starts = new_starts(&applied.created);
        let kids = if applied.created.is_empty() {
            Vec::new()
        } else {
            kids.iter().map(|k| (*k).clone()).collect()
        };
        let after = AfterApply {
            report: report_plan(number, workflow, plan, Vec::new()),
            applied,
            kids,
        };
        if starts.is_empty() {
            return self.after_apply(a, after).await;
        }
        // A child that runs its own workflow enters its first stage right away.
        a.after = Some(after);
        Ok(Round::Start(starts.into()))
    }

    /// The rest of a round that applied a plan, once the children it made have started.
    async fn after_apply(&self, a: &mut Advance, after: AfterApply) -> Result<Round> {
        let number = a.number;
        let AfterApply {
            report,
            applied,
            kids,
        } = after;
        let children_changed = !applied.created.is_empty();
        a.created
            .extend(applied.created.iter().map(|(c, _)| c.number));
        a.transitions.extend(report.transitions.iter().cloned());
        if !children_changed {
            // The plan went as far as the gates allow; nothing it wrote changes them.
            let mut report = report;
            report.transitions = std::mem::take(&mut a.transitions);
            report.created = std::mem::take(&mut a.created);
            report.seen = applied.issue.map(|issue| super::Seen {
                issue,
                comments: applied.comments,
            });
            return Ok(Round::Done(Box::new(report)));
        }
        // New children change what the gates see: look again, at the tracking issue as
        // the move's response showed it.
        a.index = match applied.issue {
            Some(issue) => {
                let Some(marker) = IssueMarker::find(&issue.body) else {
                    bail!("#{number} lost its shepherd marker");
                };
                let mut family = vec![Migration::new(issue, marker)];
                if applied
                    .created
                    .iter()
                    .any(|(_, started_apart)| *started_apart)
                {
                    // A child that entered its first stage on its own: read them.
                    family.extend(self.children(number).await?);
                } else {
                    // The children are those known and those just made, as made.
                    family.extend(kids);
                    for (child, _) in &applied.created {
                        if let Some(marker) = IssueMarker::find(&child.body) {
                            family.push(Migration::new(child.clone(), marker));
                        }
                    }
                }
                family
            }
            None => self.local_index(number).await?,
        };
        a.round += 1;
        Ok(Round::Again)
    }
}

/// The children of `created` that still have to enter their first stage.
fn new_starts(created: &[(Issue, bool)]) -> VecDeque<Start> {
    created
        .iter()
        .filter(|(_, needs_start)| *needs_start)
        .map(|(child, _)| Start::New(child.clone()))
        .collect()
}

/// The report of a round that moves nothing more: this advance's moves and where it
/// stopped.
fn done(number: u64, workflow: &Workflow, plan: machine::Plan, a: &mut Advance) -> Advanced {
    let mut report = report_plan(number, workflow, plan, std::mem::take(&mut a.created));
    let mut transitions = std::mem::take(&mut a.transitions);
    transitions.append(&mut report.transitions);
    report.transitions = transitions;
    report
}

/// An error met while starting a child, saying which child (for a child this run made).
fn with_start_context(start: Option<&Start>, e: anyhow::Error) -> anyhow::Error {
    match start {
        Some(Start::New(child)) => e.context(format!("starting child #{}", child.number)),
        _ => e,
    }
}

/// The report of an advance that left the migration to another run: the moves this run
/// made before, the stage it is in, and why it stopped.
fn left_alone(
    m: &Migration,
    workflow: &Workflow,
    plan: machine::Plan,
    a: &mut Advance,
    why: String,
) -> Advanced {
    let mut report = report_plan(
        m.issue.number,
        workflow,
        plan,
        std::mem::take(&mut a.created),
    );
    report.transitions = std::mem::take(&mut a.transitions);
    report.stage = workflow
        .stages_labelled(&m.issue.labels)
        .first()
        .map(|s| s.id.clone());
    report.skipped = Some(why);
    report
}
