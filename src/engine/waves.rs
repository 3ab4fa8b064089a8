//! The order of a reconcile: migrations by parent (`Kin`) and in waves, deepest first.

use std::collections::HashMap;

use super::Migration;

/// Migrations by parent: children found without scanning the whole index.
pub(crate) struct Kin<'i> {
    by_parent: HashMap<u64, Vec<&'i Migration>>,
}

impl<'i> Kin<'i> {
    pub(crate) fn new(index: &'i [Migration]) -> Kin<'i> {
        let mut by_parent: HashMap<u64, Vec<&'i Migration>> = HashMap::new();
        for m in index {
            if let Some(p) = m.marker.parent {
                by_parent.entry(p).or_default().push(m);
            }
        }
        Kin { by_parent }
    }

    pub(crate) fn children(&self, parent: u64) -> &[&'i Migration] {
        self.by_parent
            .get(&parent)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The open migrations of `index` in waves, deepest first, so that a parent sees what its
/// children did in the same run.
pub(crate) fn waves(index: &[Migration]) -> Vec<Vec<u64>> {
    let parents: HashMap<u64, Option<u64>> = index
        .iter()
        .map(|m| (m.issue.number, m.marker.parent))
        .collect();
    let depth = |m: &Migration| {
        let mut depth = 0;
        let mut parent = m.marker.parent;
        while let Some(p) = parent {
            depth += 1;
            if depth > 16 {
                break;
            }
            parent = parents.get(&p).copied().flatten();
        }
        depth
    };
    let mut by_depth: std::collections::BTreeMap<std::cmp::Reverse<usize>, Vec<u64>> =
        Default::default();
    for m in index
        .iter()
        .filter(|m| m.issue.open && m.marker.workflow.is_some())
    {
        by_depth
            .entry(std::cmp::Reverse(depth(m)))
            .or_default()
            .push(m.issue.number);
    }
    by_depth
        .into_values()
        .map(|mut w| {
            w.sort();
            w
        })
        .collect()
}
