//! `min_duration: 2h` (or a variable holding a duration): at least that long since the
//! migration's stay in the stage began.

use std::collections::BTreeMap;

use chrono::Duration;

use super::{outcome, Context, Gate, GateOutcome};
use crate::core::duration;
use crate::core::workflow::{Validator, Variable};
use crate::core::yaml::{Node, NodeKind};

/// A soak time, fixed in the file or taken from a migration variable (`"{{release_interval}}"`),
/// with the variable's default when it has one (for descriptions without a migration).
#[derive(Clone, Debug, PartialEq)]
pub enum DurationSpec {
    Fixed(Duration),
    Variable {
        name: String,
        default: Option<Duration>,
    },
}

impl Validator<'_> {
    /// `min_duration: 2h`, or a variable holding one (`"{{soak}}"`).
    pub(super) fn min_duration_gate(
        &mut self,
        _: &str,
        value: &Node,
        variables: &[Variable],
    ) -> Option<Gate> {
        let text = match &value.kind {
            NodeKind::Str(s) => s.trim().to_string(),
            _ => {
                self.problem(value.loc, format!("bad duration: `min_duration` must be a string such as 15m, 2h, 1d or 1w, found {}", value.kind_name()));
                return None;
            }
        };
        if let Some(var) = text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
            let var = var.trim();
            let mut default = None;
            match variables.iter().find(|v| v.name == var) {
                None => self.problem(
                    value.loc,
                    format!(
                        "`min_duration` uses variable `{var}`, which the workflow does not declare"
                    ),
                ),
                Some(v) => {
                    if let Some(d) = &v.default {
                        match duration::parse(d) {
                            Ok(d) => default = Some(d),
                            Err(e) => self.problem(
                                value.loc,
                                format!("bad duration in the default of `{var}`: {e}"),
                            ),
                        }
                    }
                }
            }
            return Some(Gate::MinDuration(DurationSpec::Variable {
                name: var.to_string(),
                default,
            }));
        }
        match duration::parse(&text) {
            Ok(d) => Some(Gate::MinDuration(DurationSpec::Fixed(d))),
            Err(e) => {
                self.problem(value.loc, format!("bad duration: {e}"));
                None
            }
        }
    }
}

pub(super) fn describe(spec: &DurationSpec, vars: &BTreeMap<String, String>) -> String {
    match spec {
        DurationSpec::Fixed(d) => format!("at least {} in this stage", duration::human(*d)),
        DurationSpec::Variable { name, default } => {
            let value = vars.get(name).and_then(|v| duration::parse(v).ok());
            match value.or(*default) {
                Some(d) => format!("at least {} in this stage", duration::human(d)),
                None => format!("at least the migration's `{name}` in this stage"),
            }
        }
    }
}

/// `min_duration`: the time since the stay began; until the label history is read, it
/// holds provisionally (the history is read once the other gates hold).
pub(super) fn evaluate(spec: &DurationSpec, cx: &Context) -> GateOutcome {
    if cx.snapshot.history_unread {
        return outcome(
            true,
            "soak not checked yet: the label history is read once the other gates hold".into(),
        );
    }
    let need = match spec {
        DurationSpec::Fixed(d) => *d,
        DurationSpec::Variable { name: v, .. } => {
            match cx.vars.get(v).map(|t| duration::parse(t)) {
                Some(Ok(d)) => d,
                Some(Err(e)) => return outcome(false, format!("variable `{v}`: {e}")),
                None => {
                    return outcome(
                        false,
                        format!("variable `{v}` is not set on this migration"),
                    )
                }
            }
        }
    };
    let spent = cx.now - cx.entered_at;
    if spent >= need {
        let detail = format!(
            "soaked {} of {}",
            duration::human(spent),
            duration::human(need)
        );
        outcome(true, detail)
    } else {
        let left = duration::human(need - spent);
        outcome(
            false,
            format!("soak: {left} of {} left", duration::human(need)),
        )
    }
}
