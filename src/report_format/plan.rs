//! `shepherd plan` as text: a block per workflow, a line per stage with its migrations
//! (and its slots), a line per wait and one for the overdue.

use crate::core::plan::Plan;
use crate::core::portfolio::WaitKind;

/// The plan as text: a block per workflow, a line per stage, a line per wait.
pub fn plan_text(plan: &Plan) -> String {
    let refs = |ns: &[u64]| {
        ns.iter()
            .map(|n| format!("#{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    if plan.workflows.is_empty() {
        out.push_str("no open migrations\n");
    }
    for w in &plan.workflows {
        out.push_str(&format!("{}\n", w.name));
        let width = w.stages.iter().map(|s| s.id.len()).max().unwrap_or(0);
        for s in &w.stages {
            let limit = s
                .limit
                .map(|l| format!("  ({} of {l} slots taken)", s.within.len()))
                .unwrap_or_default();
            out.push_str(&format!("  {:width$}  {}{limit}\n", s.id, refs(&s.within)));
            for wait in &s.waiting {
                let kind = match wait.kind {
                    WaitKind::Slot => "slot",
                    WaitKind::After => "after",
                    WaitKind::Freeze => "freeze",
                };
                out.push_str(&format!(
                    "  {:width$}    #{} waits ({kind}): {}\n",
                    "", wait.number, wait.detail
                ));
            }
            if !s.overdue.is_empty() {
                out.push_str(&format!(
                    "  {:width$}    overdue: {}\n",
                    "",
                    refs(&s.overdue)
                ));
            }
        }
    }
    out
}
