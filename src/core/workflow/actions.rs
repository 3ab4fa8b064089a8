//! Reading a stage's `on_enter` actions: `create_issue`, `comment`, `labels`, `close`,
//! `feature_flag` (read in `fact_gates`, beside the `flag` gate).

use super::load::Validator;
use super::{raw_use_message, raw_variable_uses, Action, Variable};
use crate::core::yaml::{Loc, Node, NodeKind};

impl Validator<'_> {
    pub(super) fn actions(
        &mut self,
        node: &Node,
        creates: &mut Vec<(String, Option<String>, Loc)>,
        variables: &[Variable],
    ) -> Vec<Action> {
        const ACTIONS: &[&str] = &["create_issue", "comment", "labels", "close", "feature_flag"];
        let NodeKind::Seq(items) = &node.kind else {
            self.problem(
                node.loc,
                format!(
                    "`on_enter` must be a list of actions, found {}",
                    node.kind_name()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let NodeKind::Map(entries) = &item.kind else {
                self.problem(
                    item.loc,
                    format!(
                        "an action must be a one-key mapping such as `- close: true`, found {}",
                        item.kind_name()
                    ),
                );
                continue;
            };
            if entries.len() != 1 {
                self.problem(
                    item.loc,
                    format!(
                        "an action must have exactly one key, found {}",
                        entries.len()
                    ),
                );
                continue;
            }
            let (key, value) = &entries[0];
            match key.as_str() {
                Some("create_issue") => {
                    let Some(fields) = self.map(value, "`create_issue`", &["template", "workflow"])
                    else {
                        continue;
                    };
                    let mut template = None;
                    let mut workflow = None;
                    for (k, v) in fields {
                        match k.as_str() {
                            Some("template") => {
                                template = self.string(v, "`template`").map(|t| (t, v.loc))
                            }
                            Some("workflow") => workflow = self.string(v, "`workflow`"),
                            _ => {}
                        }
                    }
                    match template {
                        Some((t, loc)) => {
                            creates.push((t.clone(), workflow.clone(), loc));
                            out.push(Action::CreateIssue {
                                template: t,
                                workflow,
                            });
                        }
                        None => self.problem(value.loc, "`create_issue` needs a `template`"),
                    }
                }
                Some("comment") => {
                    if let Some(text) = self.string(value, "`comment`") {
                        for (_, var) in raw_variable_uses(&text) {
                            self.problem(value.loc, raw_use_message(&var));
                        }
                        out.push(Action::Comment(text));
                    }
                }
                Some("labels") => match &value.kind {
                    NodeKind::Map(_) => {
                        let Some(fields) = self.map(value, "`labels`", &["add", "remove"]) else {
                            continue;
                        };
                        let (mut add, mut remove) = (Vec::new(), Vec::new());
                        for (k, v) in fields {
                            match k.as_str() {
                                Some("add") => add = self.labels(v, "a label"),
                                Some("remove") => remove = self.labels(v, "a label"),
                                _ => {}
                            }
                        }
                        out.push(Action::Labels { add, remove });
                    }
                    _ => out.push(Action::Labels {
                        add: self.labels(value, "a label"),
                        remove: Vec::new(),
                    }),
                },
                Some("close") => {
                    if self.bool(value, "`close`") {
                        out.push(Action::Close);
                    }
                }
                Some("feature_flag") => {
                    if let Some(flag) = self.flag_action(value, variables) {
                        out.push(Action::FeatureFlag(flag));
                    }
                }
                Some(other) => self.problem(
                    key.loc,
                    format!("unknown action `{other}` (actions: {})", ACTIONS.join(", ")),
                ),
                None => self.problem(key.loc, "an action's key must be a string"),
            }
        }
        out
    }
}
