//! `metric: {query, below | above, for}`: a PromQL query returns one series that stayed on
//! one side of a threshold over a window. No data, several series, NaN or no answer are
//! inconclusive: the gate does not hold, and says which.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{outcome, unasked, Context, Gate, GateOutcome};
use crate::core::duration::{self, human_short};
use crate::core::facts::{MetricAnswer, MetricQuestion, Question};
use crate::core::promql;
use crate::core::workflow::schema::NumberOrVariable;
use crate::core::workflow::{Validator, Variable};
use crate::core::yaml::{Node, NodeKind};
use schemars::JsonSchema;

/// `metric: {query, below | above, for}`: the query (with `{{variable}}`s, each escaped for
/// use inside PromQL quotes) returns one series, and it stayed on the `side` of the
/// threshold during the whole window (`None`: at this instant). A query that comes out
/// empty (its variable left empty) is not applicable: the gate holds, and an exit whose
/// `when` has it is not taken.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricGate {
    pub query: String,
    pub side: Side,
    pub threshold: Threshold,
    pub window: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Side {
    Below,
    Above,
}

impl Side {
    pub fn holds(&self, value: f64, threshold: f64) -> bool {
        match self {
            Side::Below => value < threshold,
            Side::Above => value > threshold,
        }
    }

    /// `<` or `>`, as details write it.
    pub fn sign(&self) -> &'static str {
        match self {
            Side::Below => "<",
            Side::Above => ">",
        }
    }

    pub fn word(&self) -> &'static str {
        match self {
            Side::Below => "below",
            Side::Above => "above",
        }
    }
}

/// A metric threshold, fixed in the file or taken from a migration variable.
#[derive(Clone, Debug, PartialEq)]
pub enum Threshold {
    Fixed(f64),
    Variable { name: String, default: Option<f64> },
}

impl Threshold {
    /// The value for a migration with `vars`; `Err` says what is wrong with the variable.
    pub fn resolve(&self, vars: &BTreeMap<String, String>) -> Result<f64, String> {
        match self {
            Threshold::Fixed(x) => Ok(*x),
            Threshold::Variable { name, default } => match vars.get(name) {
                Some(text) if !text.trim().is_empty() => {
                    parse_threshold(text).map_err(|e| format!("variable `{name}`: {e}"))
                }
                _ => {
                    default.ok_or_else(|| format!("variable `{name}` is not set on this migration"))
                }
            },
        }
    }
}

/// A threshold as a variable writes it: a finite number.
pub fn parse_threshold(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("`{text}` is not a number")),
    }
}

impl Validator<'_> {
    pub(super) fn metric_gate(&mut self, value: &Node, variables: &[Variable]) -> Option<Gate> {
        let fields = self.map(value, "`metric`", &["query", "below", "above", "for"])?;
        let mut query = None;
        let mut bounds = Vec::new();
        let mut window = None;
        for (k, v) in fields {
            match k.as_str() {
                Some("query") => {
                    let Some(text) = self.string(v, "`query`") else {
                        continue;
                    };
                    let declared: Vec<&str> = variables.iter().map(|v| v.name.as_str()).collect();
                    match promql::check(&text, &declared) {
                        Ok(()) => query = Some(text),
                        Err(e) => self.problem(v.loc, format!("bad `query`: {e}")),
                    }
                }
                Some(side @ ("below" | "above")) => {
                    let side = if side == "below" {
                        Side::Below
                    } else {
                        Side::Above
                    };
                    if let Some(t) = self.threshold(v, side.word(), variables) {
                        bounds.push((side, t));
                    }
                }
                Some("for") => {
                    let text = match &v.kind {
                        NodeKind::Str(s) => s.clone(),
                        _ => {
                            self.problem(
                                v.loc,
                                "bad duration: `for` must be a string such as 30s, 15m or 2h",
                            );
                            continue;
                        }
                    };
                    // Prometheus windows may be seconds long, as its own `for:` may.
                    match duration::parse_cli(&text) {
                        Ok(d) if d.as_secs() == 0 => {
                            self.problem(v.loc, "`for` must be longer than 0s")
                        }
                        Ok(d) => window = Some(chrono::Duration::seconds(d.as_secs() as i64)),
                        Err(e) => self.problem(v.loc, format!("bad duration in `for`: {e}")),
                    }
                }
                _ => {}
            }
        }
        let Some(query) = query else {
            if !fields_have(value, "query") {
                self.problem(value.loc, "`metric` needs a `query` (PromQL)");
            }
            return None;
        };
        let (side, threshold) = match bounds.as_slice() {
            [b] => b.clone(),
            [] => {
                self.problem(
                    value.loc,
                    "`metric` needs `below: X` or `above: X`: the threshold the value must stay under or over",
                );
                return None;
            }
            _ => {
                self.problem(
                    value.loc,
                    "`metric` takes one of `below` and `above`, not both",
                );
                return None;
            }
        };
        Some(Gate::Metric(MetricGate {
            query,
            side,
            threshold,
            window,
        }))
    }

    /// A threshold: a number, or `"{{variable}}"` whose default (if any) is a number.
    fn threshold(&mut self, node: &Node, side: &str, variables: &[Variable]) -> Option<Threshold> {
        match &node.kind {
            NodeKind::Int(n) => Some(Threshold::Fixed(*n as f64)),
            NodeKind::Float(f) if f.is_finite() => Some(Threshold::Fixed(*f)),
            NodeKind::Str(text) => {
                let Some(var) = text
                    .trim()
                    .strip_prefix("{{")
                    .and_then(|t| t.strip_suffix("}}"))
                else {
                    return match parse_threshold(text) {
                        Ok(x) => Some(Threshold::Fixed(x)),
                        Err(e) => {
                            self.problem(node.loc, format!("`{side}`: {e}"));
                            None
                        }
                    };
                };
                let var = var.trim();
                let Some(v) = variables.iter().find(|v| v.name == var) else {
                    self.problem(
                        node.loc,
                        format!(
                            "`{side}` uses variable `{var}`, which the workflow does not declare"
                        ),
                    );
                    return None;
                };
                let default = match v
                    .default
                    .as_deref()
                    .filter(|d| !d.trim().is_empty())
                    .map(parse_threshold)
                {
                    Some(Ok(x)) => Some(x),
                    Some(Err(e)) => {
                        self.problem(node.loc, format!("the default of `{var}`: {e}"));
                        None
                    }
                    None => None,
                };
                Some(Threshold::Variable {
                    name: var.to_string(),
                    default,
                })
            }
            _ => {
                self.problem(node.loc, format!("`{side}` must be a number"));
                None
            }
        }
    }
}

pub(super) fn describe(m: &MetricGate, vars: &BTreeMap<String, String>) -> String {
    let query = crate::core::promql::render(&m.query, vars).unwrap_or(m.query.clone());
    let threshold = match (&m.threshold, m.threshold.resolve(vars)) {
        (_, Ok(x)) => x.to_string(),
        (Threshold::Variable { name, .. }, Err(_)) => format!("the migration's `{name}`"),
        (Threshold::Fixed(x), Err(_)) => x.to_string(),
    };
    let window = match m.window {
        Some(d) => format!(" for {}", duration::human_short(d)),
        None => String::new(),
    };
    let side = m.side.word();
    if query.trim().is_empty() {
        return "no metric (its query is empty)".to_string();
    }
    match query
        .trim()
        .strip_prefix("{{")
        .and_then(|q| q.strip_suffix("}}"))
    {
        // Not known without a migration: the variable may be left empty.
        Some(name) => format!(
            "the migration's `{}` query, when set, {side} {threshold}{window}",
            name.trim()
        ),
        None => format!("`{query}` {side} {threshold}{window}"),
    }
}

/// The question a `metric` gate asks: its query with the migration's variables.
pub fn metric_question(gate: &MetricGate, cx: &Context) -> Result<MetricQuestion, String> {
    Ok(MetricQuestion {
        query: promql::render(&gate.query, cx.vars)?,
        window: gate.window,
    })
}

/// The question the gate asks, unless its query comes out empty (not applicable).
pub(super) fn question(gate: &MetricGate, cx: &Context) -> Option<Question> {
    metric_question(gate, cx)
        .ok()
        .filter(|q| !q.query.trim().is_empty())
        .map(Question::Metric)
}

pub(super) fn evaluate(gate: &MetricGate, cx: &Context) -> GateOutcome {
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
pub(super) fn num(v: f64) -> String {
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

fn fields_have(node: &Node, key: &str) -> bool {
    matches!(&node.kind, NodeKind::Map(entries) if entries.iter().any(|(k, _)| k.as_str() == Some(key)))
}

/// The gate's shape in a workflow file, for `shepherd schema`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "Metric")]
pub(crate) struct Raw {
    /// PromQL (Handlebars variables allowed)
    query: String,
    #[serde(default)]
    below: Option<NumberOrVariable>,
    #[serde(default)]
    above: Option<NumberOrVariable>,
    /// The window the bound must hold over (30s, 15m, 2h)
    #[serde(default, rename = "for")]
    window: Option<String>,
}
