//! Evaluating the gates on facts: `merge_request`, `release`, `metric`. A fact that was
//! not asked for is taken as holding when the snapshot says its facts are unread (the
//! cheapest look: an upper bound), and as not holding otherwise. A fact that could not be
//! read, and a metric answer that is no single clean series, never hold: the detail says
//! why.

use chrono::{DateTime, Duration, Utc};

use super::duration::human_short;
use super::facts::{MergeRequest, MetricAnswer, MetricQuestion, MrState, Question};
use super::gate::{Context, GateOutcome};
use super::promql;
use super::workflow::{MetricGate, Side, TextSpec};

/// The issue a `merge_request` gate looks at: the tracking issue, or child `child`'s.
pub fn mr_issue(child: Option<&str>, cx: &Context) -> Result<u64, String> {
    match child {
        None => Ok(cx.snapshot.issue.number),
        Some(t) => cx
            .snapshot
            .child(t)
            .map(|c| c.issue.number)
            .ok_or_else(|| format!("no {t} issue yet")),
    }
}

/// The project a `release` gate looks at (`None`: the tracker's own).
pub fn release_project(project: Option<&TextSpec>, cx: &Context) -> Result<Option<String>, String> {
    project.map(|p| p.resolve(cx.vars)).transpose()
}

/// The question a `metric` gate asks: its query with the migration's variables.
pub fn metric_question(gate: &MetricGate, cx: &Context) -> Result<MetricQuestion, String> {
    Ok(MetricQuestion {
        query: promql::render(&gate.query, cx.vars)?,
        window: gate.window,
    })
}

/// The question of a fact gate, when it can be asked.
pub fn question(gate: &super::workflow::Gate, cx: &Context) -> Option<Question> {
    use super::workflow::Gate;
    match gate {
        Gate::MergeRequest { child, project, .. } => {
            let issue = mr_issue(child.as_deref(), cx).ok()?;
            // A project that cannot be resolved fails the gate anyway: look anywhere.
            let projects = match project.as_ref().map(|p| p.resolve(cx.vars)) {
                Some(Ok(p)) => vec![p.to_lowercase()],
                _ => Vec::new(),
            };
            Some(Question::MergeRequests { issue, projects })
        }
        Gate::Release { project, .. } => release_project(project.as_ref(), cx)
            .ok()
            .map(|project| Question::Releases { project }),
        Gate::Flag {
            name, environment, ..
        } => name.resolve(cx.vars).ok().map(|name| Question::Flag {
            name,
            environment: environment.clone(),
        }),
        Gate::Metric(m) => metric_question(m, cx)
            .ok()
            .filter(|q| !q.query.trim().is_empty())
            .map(Question::Metric),
        _ => None,
    }
}

fn outcome(passed: bool, detail: String) -> GateOutcome {
    GateOutcome { passed, detail }
}

fn unasked(what: &str, cx: &Context) -> GateOutcome {
    if cx.snapshot.facts.unread {
        outcome(
            true,
            format!("{what} not checked yet: asked once the other gates hold"),
        )
    } else {
        outcome(false, format!("{what} not checked yet"))
    }
}

pub fn merge_request(
    project: Option<&TextSpec>,
    count: usize,
    child: Option<&str>,
    cx: &Context,
) -> GateOutcome {
    let issue = match mr_issue(child, cx) {
        Ok(n) => n,
        Err(e) => return outcome(false, e),
    };
    let project = match project.map(|p| p.resolve(cx.vars)).transpose() {
        Ok(p) => p,
        Err(e) => return outcome(false, e),
    };
    let project = project.as_deref();
    let list = match cx.snapshot.facts.merge_requests.get(&issue) {
        None => return unasked("merge requests", cx),
        Some(Err(e)) => return outcome(false, format!("merge requests of #{issue}: {e}")),
        Some(Ok(list)) => list,
    };
    let mut relevant: Vec<_> = list
        .iter()
        .filter(|mr| project.is_none_or(|p| mr.project.eq_ignore_ascii_case(p)))
        .collect();
    relevant.sort_by_key(|mr| (mr.project.clone(), mr.number));
    // A merge before the last rollback is no evidence of the current attempt.
    let since = cx.snapshot.evidence_since();
    let counts = |mr: &&&MergeRequest| {
        mr.state == MrState::Merged
            && since.is_none_or(|since| mr.merged_at.is_some_and(|at| at >= since))
    };
    let merged = relevant.iter().filter(counts).count();
    let place = project.map(|p| format!(" in {p}")).unwrap_or_default();
    if relevant.is_empty() {
        return outcome(
            false,
            format!("no merge request{place} references #{issue}"),
        );
    }
    let each: Vec<String> = relevant
        .iter()
        .map(|mr| match (mr.state, mr.merged_at) {
            (MrState::Merged, _) if !counts(&mr) => {
                format!("{} merged before the rollback", mr.reference)
            }
            (MrState::Merged, Some(at)) => {
                format!("{} merged {}", mr.reference, at.format("%Y-%m-%d"))
            }
            (MrState::Merged, None) => format!("{} merged", mr.reference),
            (MrState::Open, _) => format!("{} open", mr.reference),
            (MrState::Closed, _) => format!("{} closed", mr.reference),
        })
        .collect();
    let need = if count > 1 {
        format!(" ({merged} of {count} merged)")
    } else {
        String::new()
    };
    outcome(merged >= count, format!("{}{need}", each.join(", ")))
}

pub fn release(
    project: Option<&TextSpec>,
    count: usize,
    pattern: Option<&str>,
    cx: &Context,
) -> GateOutcome {
    let project = match release_project(project, cx) {
        Ok(p) => p,
        Err(e) => return outcome(false, e),
    };
    let of = project
        .as_deref()
        .map(|p| format!(" of {p}"))
        .unwrap_or_default();
    let list = match cx.snapshot.facts.releases.get(&project) {
        None => return unasked(&format!("releases{of}"), cx),
        Some(Err(e)) => return outcome(false, format!("releases{of}: {e}")),
        Some(Ok(list)) => list,
    };
    let re = match pattern.map(regex::Regex::new).transpose() {
        Ok(re) => re,
        Err(e) => return outcome(false, format!("bad `pattern`: {e}")),
    };
    let mut since: Vec<_> = list
        .iter()
        .filter(|r| r.released_at > cx.entered_at && r.released_at <= cx.now)
        .filter(|r| re.as_ref().is_none_or(|re| re.is_match(&r.tag)))
        .collect();
    since.sort_by_key(|r| r.released_at);
    let tags: Vec<&str> = since.iter().map(|r| r.tag.as_str()).collect();
    let shown = if tags.is_empty() {
        String::new()
    } else {
        format!(": {}", tags.join(", "))
    };
    // Without the label history the stage's start is not known yet: counted from an
    // earlier moment (an upper bound), and said so.
    let from = if cx.snapshot.history_unread {
        format!(
            "since {} at the earliest (when the stage began is read once the other gates hold)",
            cx.entered_at.format("%Y-%m-%d %H:%M UTC")
        )
    } else {
        format!("since {}", cx.entered_at.format("%Y-%m-%d %H:%M UTC"))
    };
    outcome(
        since.len() >= count,
        format!("{} of {count} releases{of} {from}{shown}", since.len()),
    )
}

pub fn metric(gate: &MetricGate, cx: &Context) -> GateOutcome {
    let question = match metric_question(gate, cx) {
        Ok(q) => q,
        Err(e) => return outcome(false, format!("metric query: {e}")),
    };
    if question.query.trim().is_empty() {
        // Not applicable: a stage gate holds, an exit is not taken.
        return outcome(!cx.exit, "no metric: the query is empty".to_string());
    }
    let threshold = match gate.threshold.resolve(cx.vars) {
        Ok(x) => x,
        Err(e) => return outcome(false, format!("metric threshold: {e}")),
    };
    let shown = format!("`{}`", question.query);
    let answer = match cx.snapshot.facts.metrics.get(&question) {
        None => return unasked(&format!("metric {shown}"), cx),
        Some(a) => a,
    };
    let series = match answer {
        MetricAnswer::Series(s) => s,
        MetricAnswer::NoData => {
            return outcome(false, format!("{shown} returned no data: inconclusive"))
        }
        MetricAnswer::Many(sets) => {
            let some: Vec<&str> = sets.iter().take(3).map(String::as_str).collect();
            return outcome(
                false,
                format!(
                    "{shown} returned {} series ({}{}): a metric gate needs exactly one; inconclusive",
                    sets.len(),
                    some.join(", "),
                    if sets.len() > 3 { ", …" } else { "" }
                ),
            );
        }
        MetricAnswer::Unavailable(e) => return outcome(false, format!("{e}: inconclusive")),
    };
    let Some(&(_, last)) = series.samples.last() else {
        return outcome(false, format!("{shown} returned no data: inconclusive"));
    };
    if series.samples.iter().any(|(_, v)| v.is_nan()) {
        return outcome(
            false,
            format!(
                "{shown} returned NaN: inconclusive ([graph]({}))",
                series.graph_url
            ),
        );
    }
    let min = series
        .samples
        .iter()
        .map(|s| s.1)
        .fold(f64::INFINITY, f64::min);
    let max = series
        .samples
        .iter()
        .map(|s| s.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let side = gate.side;
    let worst = match side {
        Side::Below => max,
        Side::Above => min,
    };
    let graph = format!("[graph]({})", series.graph_url);
    let Some(window) = gate.window else {
        let held = side.holds(last, threshold);
        let sign = if held { side.sign() } else { not_sign(side) };
        return outcome(
            held,
            format!(
                "{shown} = {} {sign} {} now ({graph})",
                num(last),
                num(threshold)
            ),
        );
    };
    let covered = covered(&series.samples, series.asked_at, window, cx);
    let values = format!("min {}, max {}, last {}", num(min), num(max), num(last));
    if !side.holds(worst, threshold) {
        return outcome(
            false,
            format!(
                "{shown} was {} {} {} in the last {}: {values} ({graph})",
                num(worst),
                not_sign(side),
                num(threshold),
                human_short(window)
            ),
        );
    }
    outcome(
        covered >= window,
        format!(
            "{shown} {} {} for {} of {}: {values} ({graph})",
            side.sign(),
            num(threshold),
            human_short(covered.min(window)),
            human_short(window)
        ),
    )
}

pub fn flag(
    name: &TextSpec,
    environment: Option<&str>,
    enabled: Option<bool>,
    percentage: Option<f64>,
    cx: &Context,
) -> GateOutcome {
    let name = match name.resolve(cx.vars) {
        Ok(n) => n,
        Err(e) => return outcome(false, e),
    };
    let key = (name.clone(), environment.map(str::to_string));
    let state = match cx.snapshot.facts.flags.get(&key) {
        None => return unasked(&format!("feature flag `{name}`"), cx),
        Some(Err(e)) => return outcome(false, format!("feature flag `{name}`: {e}")),
        Some(Ok(state)) => state,
    };
    let shown = flag_text(state);
    let on_ok = enabled.is_none_or(|want| state.enabled == want);
    // A flag simply on counts as 100 %.
    let actual = if state.enabled {
        state.percentage.unwrap_or(100.0)
    } else {
        0.0
    };
    let share_ok = percentage.is_none_or(|want| (actual - want).abs() < 1e-9);
    outcome(on_ok && share_ok, format!("`{name}` is {shown}"))
}

/// A flag's state as people read it: "on at 5% in production", "off", "missing".
pub fn flag_text(state: &crate::core::facts::FlagState) -> String {
    let env = state
        .environment
        .as_ref()
        .map(|e| format!(" in {e}"))
        .unwrap_or_default();
    if !state.exists {
        return format!("missing{env}");
    }
    match (state.enabled, state.percentage) {
        (false, _) => format!("off{env}"),
        (true, Some(p)) => format!("on at {}%{env}", num(p)),
        (true, None) => format!("on{env}"),
    }
}

/// How much of `window` the samples show the value in bounds: from the oldest sample (or
/// the window's start, when one is at it) to the moment asked — capped, when the tracker's
/// clock is the wall clock, at the time since the stage was entered.
fn covered(
    samples: &[(DateTime<Utc>, f64)],
    asked_at: DateTime<Utc>,
    window: Duration,
    cx: &Context,
) -> Duration {
    let first = samples.first().map(|s| s.0).unwrap_or(asked_at);
    // A sample a scrape interval or two after the window's start still covers it.
    let slack = (window / 50).max(Duration::seconds(2));
    let mut covered = if first <= asked_at - window + slack {
        window
    } else {
        asked_at - first
    };
    let wall_clock = (cx.now - asked_at).abs() <= Duration::minutes(1);
    if wall_clock {
        covered = covered.min(cx.now - cx.entered_at);
    }
    covered.max(Duration::zero())
}

fn not_sign(side: Side) -> &'static str {
    match side {
        Side::Below => "≥",
        Side::Above => "≤",
    }
}

/// A value as people read it: up to 6 significant digits, no trailing zeros.
fn num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[path = "gate_facts_tests.rs"]
mod tests;
