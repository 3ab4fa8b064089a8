//! `flag: {name, enabled, percentage, environment}`: the feature flag's real state, as the
//! flags backend reads it, is as given.

use std::collections::BTreeMap;

use super::{outcome, unasked, Context, Gate, GateOutcome};
use crate::core::facts::Question;
use crate::core::workflow::schema::Text;
use crate::core::workflow::{TextSpec, Validator, Variable};
use crate::core::yaml::{Node, NodeKind};
use schemars::JsonSchema;

impl Validator<'_> {
    /// `flag: {name, enabled, percentage, environment}`: at least one of `enabled` and
    /// `percentage`.
    pub(super) fn flag_gate(&mut self, value: &Node, variables: &[Variable]) -> Option<Gate> {
        let fields = self.map(
            value,
            "`flag`",
            &["name", "enabled", "percentage", "environment"],
        )?;
        let (mut name, mut environment, mut enabled, mut percentage) = (None, None, None, None);
        for (k, v) in fields {
            match k.as_str() {
                Some("name") => name = self.flag_name(v, variables),
                Some("environment") => environment = self.string(v, "`environment`"),
                Some("enabled") => enabled = Some(self.bool(v, "`enabled`")),
                Some("percentage") => percentage = self.percentage(v),
                _ => {}
            }
        }
        let Some(name) = name else {
            self.problem(value.loc, "`flag` needs a `name`");
            return None;
        };
        if enabled.is_none() && percentage.is_none() {
            self.problem(
                value.loc,
                "`flag` needs `enabled: true|false` or `percentage: P`: the state it waits for",
            );
            return None;
        }
        Some(Gate::Flag {
            name,
            environment,
            enabled,
            percentage,
        })
    }

    /// A flag name: fixed, or `"{{variable}}"`.
    pub(crate) fn flag_name(&mut self, node: &Node, variables: &[Variable]) -> Option<TextSpec> {
        let text = self.string(node, "`name`")?;
        if let Some(var) = text
            .trim()
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
        {
            let var = var.trim();
            let Some(v) = variables.iter().find(|v| v.name == var) else {
                self.problem(
                    node.loc,
                    format!("`name` uses variable `{var}`, which the workflow does not declare"),
                );
                return None;
            };
            return Some(TextSpec::Variable {
                name: var.to_string(),
                default: v.default.clone().filter(|d| !d.is_empty()),
            });
        }
        match crate::core::facts::check_flag_name(&text) {
            Ok(()) => Some(TextSpec::Fixed(text)),
            Err(e) => {
                self.problem(node.loc, e);
                None
            }
        }
    }

    /// A percentage, 0 to 100.
    pub(crate) fn percentage(&mut self, node: &Node) -> Option<f64> {
        let p = match node.kind {
            NodeKind::Int(n) => n as f64,
            NodeKind::Float(f) => f,
            _ => f64::NAN,
        };
        if (0.0..=100.0).contains(&p) {
            Some(p)
        } else {
            self.problem(node.loc, "`percentage` must be a number from 0 to 100");
            None
        }
    }
}

pub(super) fn describe(
    name: &TextSpec,
    environment: Option<&str>,
    enabled: Option<bool>,
    percentage: Option<f64>,
    vars: &BTreeMap<String, String>,
) -> String {
    let name = match name.resolve(vars) {
        Ok(n) => format!("`{n}`"),
        Err(_) => match name {
            TextSpec::Variable { name, .. } => format!("the migration's `{name}`"),
            TextSpec::Fixed(n) => format!("`{n}`"),
        },
    };
    let mut want = Vec::new();
    if let Some(on) = enabled {
        want.push(if on { "on" } else { "off" }.to_string());
    }
    if let Some(p) = percentage {
        want.push(format!("at {p}%"));
    }
    let env = environment.map(|e| format!(" in {e}")).unwrap_or_default();
    format!("feature flag {name} is {}{env}", want.join(" and "))
}

/// The question the gate asks: the flag's state in its environment.
pub(super) fn question(
    name: &TextSpec,
    environment: Option<&str>,
    cx: &Context,
) -> Option<Question> {
    name.resolve(cx.vars).ok().map(|name| Question::Flag {
        name,
        environment: environment.map(str::to_string),
    })
}

pub(super) fn evaluate(
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
        (true, Some(p)) => format!("on at {}%{env}", super::metric::num(p)),
        (true, None) => format!("on{env}"),
    }
}

/// The gate's shape in a workflow file, for `shepherd schema`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "Flag")]
pub(crate) struct Raw {
    name: Text,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    percentage: Option<f64>,
    #[serde(default)]
    environment: Option<Text>,
}
