//! Reading the `feature_flag` action: a flag's name (fixed or a variable) and exactly one
//! of `percentage`, `enabled` and `delete`.

use super::load::Validator;
use super::{FlagAction, Variable};
use crate::core::facts::FlagWant;
use crate::core::yaml::Node;

impl Validator<'_> {
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
}
