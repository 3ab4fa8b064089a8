//! Fields more than one gate kind reads: a project path (fixed or a variable) and a count.

use crate::core::workflow::{TextSpec, Validator, Variable};
use crate::core::yaml::{Node, NodeKind};

impl Validator<'_> {
    pub(super) fn count(&mut self, node: &Node) -> Option<usize> {
        match node.kind {
            NodeKind::Int(n) if n >= 1 => Some(n as usize),
            _ => {
                self.problem(node.loc, "`count` must be a number of at least 1");
                None
            }
        }
    }

    pub(super) fn project_spec(&mut self, node: &Node, variables: &[Variable]) -> Option<TextSpec> {
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

/// A project named in the file or by a variable: its value, else which variable.
pub(super) fn project_name(
    spec: &TextSpec,
    vars: &std::collections::BTreeMap<String, String>,
) -> String {
    match spec {
        TextSpec::Fixed(p) => p.clone(),
        TextSpec::Variable { name, .. } => spec
            .resolve(vars)
            .unwrap_or_else(|_| format!("the migration's `{name}`")),
    }
}
