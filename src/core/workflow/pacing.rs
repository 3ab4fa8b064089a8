//! A stage's portfolio keys (DESIGN §13): `limit` (slots), `target` (overdue after),
//! `owners` (who is nudged) and `freeze: wait`, read from the stage's part of a file.

use chrono::Duration;

use crate::core::duration;
use crate::core::workflow::Validator;
use crate::core::yaml::{Node, NodeKind};

/// The keys of a stage that make many migrations one plan; the default has none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pacing {
    /// At most this many open migrations of the workflow stand in the stage at once.
    pub limit: Option<u32>,
    /// A stay longer than this is overdue.
    pub target: Option<Duration>,
    /// Who is nudged when a stay is overdue (`@name`s); empty: the assignees.
    pub owners: Vec<String>,
    /// `freeze: wait`: not entered while a change freeze is in effect.
    pub freeze_wait: bool,
}

/// The stage keys `pacing_key` reads.
pub(crate) const PACING_KEYS: [&str; 4] = ["limit", "target", "owners", "freeze"];

impl Validator<'_> {
    /// Reads one of `PACING_KEYS` into `pacing`.
    pub(crate) fn pacing_key(&mut self, key: &str, value: &Node, pacing: &mut Pacing) {
        match key {
            "limit" => match value.kind {
                NodeKind::Int(n) if (1..=i64::from(u32::MAX)).contains(&n) => {
                    pacing.limit = Some(n as u32)
                }
                _ => self.problem(
                    value.loc,
                    format!(
                        "`limit` must be a number of at least 1, found {}",
                        value.kind_name()
                    ),
                ),
            },
            "target" => match &value.kind {
                NodeKind::Str(s) => match duration::parse(s.trim()) {
                    Ok(d) => pacing.target = Some(d),
                    Err(e) => self.problem(value.loc, format!("bad `target`: {e}")),
                },
                _ => self.problem(
                    value.loc,
                    format!(
                        "`target` must be a duration such as 2d or 1w, found {}",
                        value.kind_name()
                    ),
                ),
            },
            "owners" => {
                pacing.owners = self.strings(value, "an owner");
                for (owner, item) in pacing.owners.iter().zip(items(value)) {
                    if owner.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        self.problem(
                            item.loc,
                            format!("owner `{owner}` must be one name such as @gitaly-maintainers"),
                        );
                    }
                }
            }
            "freeze" => match &value.kind {
                NodeKind::Str(s) if s == "wait" => pacing.freeze_wait = true,
                NodeKind::Str(s) if s == "ignore" => pacing.freeze_wait = false,
                _ => self.problem(
                    value.loc,
                    "`freeze` must be `wait` (not entered during a change freeze) or `ignore`",
                ),
            },
            _ => {}
        }
    }
}

fn items(node: &Node) -> Vec<&Node> {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    }
}

impl Pacing {
    /// `@name` for each owner, whether or not the file wrote the `@`.
    pub fn mentions(&self) -> Vec<String> {
        self.owners
            .iter()
            .map(|o| format!("@{}", o.trim_start_matches('@')))
            .collect()
    }
}
