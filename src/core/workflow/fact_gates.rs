//! Reading the gates that look at facts outside the issues: `merge_request`, `release` and
//! `metric`, each with its own fields and checks (a project path, a regex, a PromQL query,
//! exactly one of `below` and `above`).

use regex::Regex;

use super::load::Validator;
use super::{parse_threshold, FlagAction, Gate, MetricGate, Side, TextSpec, Threshold, Variable};
use crate::core::duration;
use crate::core::facts::FlagWant;
use crate::core::promql;
use crate::core::yaml::{Node, NodeKind};

impl Validator<'_> {
    pub(super) fn fact_gate(
        &mut self,
        kind: &str,
        value: &Node,
        variables: &[Variable],
    ) -> Option<Gate> {
        match kind {
            "merge_request" => self.merge_request_gate(value, variables),
            "release" => self.release_gate(value, variables),
            "flag" => self.flag_gate(value, variables),
            _ => self.metric_gate(value, variables),
        }
    }

    fn merge_request_gate(&mut self, value: &Node, variables: &[Variable]) -> Option<Gate> {
        let mut project = None;
        let mut count = 1;
        let mut child = None;
        if !matches!(value.kind, NodeKind::Null) {
            let fields = self.map(value, "`merge_request`", &["project", "count", "child"])?;
            for (k, v) in fields {
                match k.as_str() {
                    Some("project") => project = self.project_spec(v, variables),
                    Some("count") => count = self.count(v).unwrap_or(1),
                    Some("child") => child = self.string(v, "`child`"),
                    _ => {}
                }
            }
        }
        Some(Gate::MergeRequest {
            project,
            count,
            child,
        })
    }

    fn release_gate(&mut self, value: &Node, variables: &[Variable]) -> Option<Gate> {
        let mut project = None;
        let mut count = 1;
        let mut pattern = None;
        if !matches!(value.kind, NodeKind::Null) {
            let fields = self.map(value, "`release`", &["project", "count", "pattern"])?;
            for (k, v) in fields {
                match k.as_str() {
                    Some("project") => project = self.project_spec(v, variables),
                    Some("count") => count = self.count(v).unwrap_or(1),
                    Some("pattern") => {
                        let text = self.string(v, "`pattern`")?;
                        match Regex::new(&text) {
                            Ok(_) => pattern = Some(text),
                            Err(e) => self.problem(
                                v.loc,
                                format!(
                                    "bad regex in `pattern`: {}",
                                    super::load::one_line(&e.to_string())
                                ),
                            ),
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(Gate::Release {
            project,
            count,
            pattern,
        })
    }

    fn metric_gate(&mut self, value: &Node, variables: &[Variable]) -> Option<Gate> {
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

    /// `flag: {name, enabled, percentage, environment}`: at least one of `enabled` and
    /// `percentage`.
    fn flag_gate(&mut self, value: &Node, variables: &[Variable]) -> Option<Gate> {
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

    /// `feature_flag: {name, percentage | enabled | delete, environment}`.
    pub(super) fn flag_action(
        &mut self,
        value: &Node,
        variables: &[Variable],
    ) -> Option<FlagAction> {
        let fields = self.map(
            value,
            "`feature_flag`",
            &["name", "percentage", "enabled", "delete", "environment"],
        )?;
        let (mut name, mut environment) = (None, None);
        let mut wants = Vec::new();
        for (k, v) in fields {
            match k.as_str() {
                Some("name") => name = self.flag_name(v, variables),
                Some("environment") => environment = self.string(v, "`environment`"),
                Some("percentage") => {
                    if let Some(p) = self.percentage(v) {
                        wants.push(FlagWant::Percentage(p));
                    }
                }
                Some("enabled") => wants.push(FlagWant::Enabled(self.bool(v, "`enabled`"))),
                Some("delete") if self.bool(v, "`delete`") => wants.push(FlagWant::Delete),
                _ => {}
            }
        }
        let Some(name) = name else {
            self.problem(value.loc, "`feature_flag` needs a `name`");
            return None;
        };
        match wants.len() {
            1 => Some(FlagAction {
                name,
                want: wants.remove(0),
                environment,
            }),
            0 => {
                self.problem(
                    value.loc,
                    "`feature_flag` needs one of `percentage: P`, `enabled: true|false` and `delete: true`",
                );
                None
            }
            _ => {
                self.problem(
                    value.loc,
                    "`feature_flag` takes one of `percentage`, `enabled` and `delete`, not several",
                );
                None
            }
        }
    }

    /// A flag name: fixed, or `"{{variable}}"`.
    fn flag_name(&mut self, node: &Node, variables: &[Variable]) -> Option<TextSpec> {
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
    fn percentage(&mut self, node: &Node) -> Option<f64> {
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

    fn count(&mut self, node: &Node) -> Option<usize> {
        match node.kind {
            NodeKind::Int(n) if n >= 1 => Some(n as usize),
            _ => {
                self.problem(node.loc, "`count` must be a number of at least 1");
                None
            }
        }
    }

    fn project_spec(&mut self, node: &Node, variables: &[Variable]) -> Option<TextSpec> {
        let text = self.string(node, "`project`")?;
        let Some(var) = text
            .trim()
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
        else {
            return match check_project(&text) {
                Ok(()) => Some(TextSpec::Fixed(text)),
                Err(e) => {
                    self.problem(node.loc, e);
                    None
                }
            };
        };
        let var = var.trim();
        let Some(v) = variables.iter().find(|v| v.name == var) else {
            self.problem(
                node.loc,
                format!("`project` uses variable `{var}`, which the workflow does not declare"),
            );
            return None;
        };
        if let Some(Err(e)) = v
            .default
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(check_project)
        {
            self.problem(node.loc, format!("the default of `{var}`: {e}"));
        }
        Some(TextSpec::Variable {
            name: var.to_string(),
            default: v.default.clone().filter(|d| !d.is_empty()),
        })
    }
}

/// `group/project` (subgroups allowed), each part non-empty and without spaces.
pub fn check_project(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split('/').collect();
    let ok = parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "project `{text}` is not a path such as group/project or owner/repo"
        ))
    }
}

fn fields_have(node: &Node, key: &str) -> bool {
    matches!(&node.kind, NodeKind::Map(entries) if entries.iter().any(|(k, _)| k.as_str() == Some(key)))
}
