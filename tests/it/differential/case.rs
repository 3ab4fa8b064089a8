//! One case: the same steps in two worlds side by side — cached and the oracle — checked
//! after every step. Kills happen only in the cached world (the oracle runs the same run to
//! its end); from a kill until the rerun that follows it the worlds may differ, so they are
//! compared only outside such a window. Each world keeps its own model of the boxes people
//! ticked: a box stays ticked unless a person unticked it or a rollback's audit comment
//! lists it (no lost edit).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::observe::{unticks, Seen};
use super::people::{self, Edit};
use super::steps::Person;
use super::steps::{Plan, Step};
use super::world::{Ran, World};
use super::Kind;

/// What one world is doing: its issue numbers and what its people ticked.
struct Side {
    world: World,
    /// Migration index → tracking issue number.
    numbers: Vec<u64>,
    /// Boxes a person ticked and nothing since unticked: (issue, item).
    ticked: BTreeSet<(u64, String)>,
    /// Transitions whose untick lists are taken into `ticked` already, per issue.
    unticks_seen: BTreeMap<u64, BTreeSet<u64>>,
    /// Rollbacks whose stay has not been left yet, with the evidence given since.
    holds: Vec<Hold>,
    rollbacks_seen: BTreeSet<(u64, u64)>,
}

/// A stay a rollback began (DESIGN §11, a rollback holds): it is left only on evidence
/// given after the rollback — in `review` a `carol` adding the approval, in `soak` a `go`
/// added and the soak's time passed. (A person's tick on Plan is the model's business.)
struct Hold {
    issue: u64,
    seq: u64,
    stage: String,
    approved: bool,
    go: bool,
    time: bool,
}

/// Runs `plan` on `kind`; `Err` says which step broke which promise, with both worlds.
pub fn run(kind: Kind, plan: &Plan, verbose: bool) -> Result<(), String> {
    let began = std::time::Instant::now();
    let mut sides = [Side::new(kind, true), Side::new(kind, false)];
    for i in 0..plan.migrations {
        for side in &mut sides {
            let var = format!("n=m{i}");
            let out = side
                .world
                .run(&["start", "diff", "--var", &var, "--format", "json"]);
            if out.code != Some(0) {
                return Err(format!("start failed: {}", out.stderr));
            }
            let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            side.numbers.push(v["ref"].as_u64().unwrap());
        }
    }
    let mut in_window = false;
    for (k, step) in plan.steps.iter().enumerate() {
        if verbose {
            println!("{:>6} ms  {k:>2}. {step}", began.elapsed().as_millis());
        }
        let fail = |what: String, sides: &[Side; 2]| -> Result<(), String> {
            Err(format!(
                "step {k} ({step}): {what}\n-- cached world:\n{}-- oracle world:\n{}",
                sides[0].describe(),
                sides[1].describe()
            ))
        };
        // Both worlds must have a child for a tick on one in a kill window (the cached
        // world may not have opened it yet).
        let skip = match step {
            Step::TickChild { m, .. } if in_window => sides
                .iter()
                .any(|s| Seen::read(&s.world).newest_child(s.numbers[*m]).is_none()),
            _ => false,
        };
        let mut codes = Vec::new();
        for (w, side) in sides.iter_mut().enumerate() {
            if skip {
                continue;
            }
            let ran = side.apply(kind, step, w == 0);
            if let Some(ran) = ran {
                if !matches!(ran.code, Some(0) | Some(1)) {
                    let what = format!("exit {:?}: {}", ran.code, ran.stderr);
                    return fail(what, &sides);
                }
                codes.push((ran.code, ran.stderr));
            }
        }
        if codes.len() == 2 && codes[0].0 != codes[1].0 {
            let what = format!(
                "the worlds answered differently: cached {:?} {}, oracle {:?} {}",
                codes[0].0, codes[0].1, codes[1].0, codes[1].1
            );
            return fail(what, &sides);
        }
        if step.kill().is_some() {
            in_window = true;
        } else if step.is_run() {
            in_window = false;
        }
        let seen = [Seen::read(&sides[0].world), Seen::read(&sides[1].world)];
        for (w, side) in sides.iter_mut().enumerate() {
            let settled = w == 1 || !in_window;
            let name = if w == 0 { "cached" } else { "oracle" };
            let mut problems = Vec::new();
            for &n in &side.numbers {
                problems.extend(seen[w].problems(n, settled));
            }
            problems.extend(side.lost(&seen[w]));
            problems.extend(side.holds(&seen[w]));
            let deleted = side.world.deleted_comments();
            if !deleted.is_empty() {
                problems.push(format!("a comment was posted and taken back: {deleted:?}"));
            }
            if !problems.is_empty() {
                return fail(format!("{name} world: {problems:?}"), &sides);
            }
        }
        if !in_window {
            for m in 0..plan.migrations {
                let a = seen[0].summary(sides[0].numbers[m]);
                let b = seen[1].summary(sides[1].numbers[m]);
                if a != b {
                    let what = format!("m{m} differs:\n   cached:\n{a}   oracle:\n{b}");
                    return fail(what, &sides);
                }
            }
        }
    }
    Ok(())
}

impl Side {
    fn new(kind: Kind, cached: bool) -> Side {
        Side {
            world: World::new(kind, cached),
            numbers: Vec::new(),
            ticked: BTreeSet::new(),
            unticks_seen: BTreeMap::new(),
            holds: Vec::new(),
            rollbacks_seen: BTreeSet::new(),
        }
    }

    fn describe(&self) -> String {
        let seen = Seen::read(&self.world);
        let mut out = String::new();
        for (m, n) in self.numbers.iter().enumerate() {
            out.push_str(&format!(" m{m} (#{n}):\n{}", seen.summary(*n)));
        }
        out
    }

    /// Applies `step`; `None` when it is no command (nothing to compare).
    fn apply(&mut self, kind: Kind, step: &Step, cached: bool) -> Option<Ran> {
        let world = &mut self.world;
        let n = |m: &usize| self.numbers[*m].to_string();
        let ran = match step {
            Step::Tick { m, item, undo } => {
                let issue = self.numbers[*m];
                let edit = Edit::Tick { item, done: !undo };
                let ran = Ran::edit(people::act(world, "alice", issue, edit));
                if ran.code == Some(0) {
                    let key = (issue, item.to_string());
                    if *undo {
                        self.ticked.remove(&key);
                    } else {
                        self.ticked.insert(key);
                    }
                }
                ran
            }
            Step::TickChild { m, item } => match Seen::read(world).newest_child(self.numbers[*m]) {
                Some(child) => {
                    let edit = Edit::Tick { item, done: true };
                    let ran = Ran::edit(people::act(world, "alice", child, edit));
                    if ran.code == Some(0) {
                        self.ticked.insert((child, item.to_string()));
                    }
                    ran
                }
                None => Ran::edit(Err("no child yet".into())),
            },
            Step::Progress { m } => {
                let issue = self.numbers[*m];
                let seen = Seen::read(world);
                let labels = &seen.issues[&issue].labels;
                let has = |l: &str| labels.iter().any(|x| x == l);
                let label = |name: &str, label: &'static str, add: bool| {
                    Ran::edit(people::act(world, name, issue, Edit::Label { label, add }))
                };
                let stage = labels.iter().find_map(|l| l.strip_prefix("df::"));
                match stage.unwrap_or_default() {
                    "plan" => {
                        for item in super::steps::PLAN {
                            let edit = Edit::Tick { item, done: true };
                            let ran = Ran::edit(people::act(world, "alice", issue, edit));
                            if ran.code != Some(0) {
                                return Some(ran);
                            }
                            self.ticked.insert((issue, item.to_string()));
                        }
                        Ran::edit(Ok(()))
                    }
                    "review" => {
                        for h in self.holds.iter_mut().filter(|h| h.issue == issue) {
                            h.approved = true;
                        }
                        if has("approved") {
                            label("carol", "approved", false);
                        }
                        label("carol", "approved", true)
                    }
                    "soak" => {
                        for h in self.holds.iter_mut().filter(|h| h.issue == issue) {
                            h.go = true;
                        }
                        if has("go") {
                            label("mallory", "go", false);
                        }
                        label("mallory", "go", true)
                    }
                    "build" => {
                        world.mr_open(issue);
                        world.mr_merge(issue)
                    }
                    "rollout" => match seen.newest_child(issue) {
                        Some(child) => {
                            for item in super::steps::CHILD {
                                let edit = Edit::Tick { item, done: true };
                                let ran = Ran::edit(people::act(world, "alice", child, edit));
                                if ran.code != Some(0) {
                                    return Some(ran);
                                }
                                self.ticked.insert((child, item.to_string()));
                            }
                            Ran::edit(Ok(()))
                        }
                        None => Ran::edit(Err("no child yet".into())),
                    },
                    _ => return None,
                }
            }
            Step::Label { m, label, add, by } => {
                let issue = self.numbers[*m];
                for h in self.holds.iter_mut().filter(|h| h.issue == issue && *add) {
                    h.approved |= *label == "approved" && *by == Person::Carol;
                    h.go |= *label == "go";
                }
                let edit = Edit::Label { label, add: *add };
                Ran::edit(people::act(world, by.name(), issue, edit))
            }
            Step::Close { m } => Ran::edit(people::act(
                world,
                "alice",
                self.numbers[*m],
                Edit::Open(false),
            )),
            Step::Reopen { m } => Ran::edit(people::act(
                world,
                "alice",
                self.numbers[*m],
                Edit::Open(true),
            )),
            Step::Pause { m } => world.shepherd_as("alice", &["pause", &n(m), "--reason", "wait"]),
            Step::Resume { m } => world.shepherd_as("alice", &["resume", &n(m)]),
            Step::Rollback { m, back, keep } => {
                let seen = Seen::read(world);
                let mut earlier: Vec<String> = Vec::new();
                for t in seen.transitions(self.numbers[*m]) {
                    earlier.retain(|s| *s != t.to);
                    earlier.push(t.to);
                }
                earlier.pop();
                if earlier.is_empty() {
                    return None;
                }
                let to = earlier[earlier.len() - 1 - back % earlier.len()].clone();
                let num = n(m);
                let mut args = vec!["rollback", num.as_str(), "--to", &to, "--reason", "redo"];
                if *keep {
                    args.push("--keep-checklists");
                }
                let ran = world.shepherd_as("alice", &args);
                world.past_the_second();
                ran
            }
            Step::MrOpen { m } => {
                let issue = self.numbers[*m];
                world.mr_open(issue)
            }
            Step::MrMerge { m } => {
                let issue = self.numbers[*m];
                world.mr_merge(issue)
            }
            Step::Time => {
                for h in &mut self.holds {
                    h.time = true;
                }
                world.pass_time();
                return None;
            }
            Step::Advance { m, kill } => {
                let num = n(m);
                let args = ["advance", num.as_str(), "--format", "json"];
                match kill {
                    Some(ms) if cached => {
                        world.run_killed(&args, Duration::from_millis(*ms), latency(kind));
                        return None;
                    }
                    _ => world.run(&args),
                }
            }
            Step::Race { m, after } if cached => {
                let others: Vec<u64> = (self.numbers.iter().copied())
                    .filter(|&o| o != self.numbers[*m])
                    .collect();
                let after = Duration::from_millis(*after);
                world.race(self.numbers[*m], &others, after, latency(kind))
            }
            Step::Race { m, .. } => {
                let a = world.run(&["reconcile", "--format", "json"]);
                let b = world.run(&["advance", &n(m), "--format", "json"]);
                Ran {
                    code: a.code.max(b.code),
                    stdout: a.stdout + &b.stdout,
                    stderr: a.stderr + &b.stderr,
                }
            }
            Step::Reconcile { kill } => {
                let args = ["reconcile", "--format", "json"];
                match kill {
                    Some(ms) if cached => {
                        world.run_killed(&args, Duration::from_millis(*ms), latency(kind));
                        return None;
                    }
                    _ => world.run(&args),
                }
            }
        };
        Some(ran)
    }

    /// Stays begun by a rollback that were left without evidence given after it.
    fn holds(&mut self, seen: &Seen) -> Vec<String> {
        let mut out = Vec::new();
        for &n in &self.numbers {
            let transitions = seen.transitions(n);
            for t in transitions.iter().filter(|t| t.rollback) {
                if self.rollbacks_seen.insert((n, t.seq)) {
                    self.holds.retain(|h| h.issue != n);
                    self.holds.push(Hold {
                        issue: n,
                        seq: t.seq,
                        stage: t.to.clone(),
                        approved: false,
                        go: false,
                        time: false,
                    });
                }
            }
            self.holds.retain(|h| {
                let left = transitions.iter().find(|t| {
                    h.issue == n
                        && t.seq > h.seq
                        && !t.rollback
                        && t.from.as_deref() == Some(h.stage.as_str())
                });
                let Some(left) = left else { return true };
                let evidence = match h.stage.as_str() {
                    "review" => h.approved,
                    "soak" => h.go && h.time,
                    _ => true,
                };
                if !evidence {
                    out.push(format!(
                        "#{n} left {} (transition {}) on evidence from before its rollback (transition {})",
                        h.stage, left.seq, h.seq
                    ));
                }
                false
            });
        }
        out
    }

    /// Boxes a person ticked that are no longer ticked, save those a rollback unticked
    /// and listed (taken out of the model as their audit comments appear).
    fn lost(&mut self, seen: &Seen) -> Vec<String> {
        for &n in &self.numbers {
            let done = self.unticks_seen.entry(n).or_default();
            for (seq, items) in unticks(&seen.transitions(n)) {
                if done.insert(seq) {
                    for item in items {
                        self.ticked.remove(&(n, item.1));
                    }
                }
            }
        }
        self.ticked
            .iter()
            .filter(|(n, text)| seen.ticked(*n, text) != Some(true))
            .map(|(n, text)| format!("#{n}: {text:?} was ticked and is not"))
            .collect()
    }
}

/// How late a test server answers while a run is to be killed, so the kill lands inside it.
fn latency(kind: Kind) -> Duration {
    match kind {
        Kind::Local => Duration::ZERO,
        _ => Duration::from_millis(10),
    }
}
