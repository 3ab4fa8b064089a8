//! Output: the `--format` values, `print` (JSON or text), and the text of statuses and
//! moves shared by several commands; files written atomically.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::core::report;
use crate::engine::Advanced;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Text,
    Json,
    Mermaid,
    Md,
    Csv,
    Html,
}

pub(super) fn print<T: Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<ExitCode> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        _ => println!("{}", text()),
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn status_text(s: &report::Status) -> String {
    let mut out = format!(
        "#{} {}\nworkflow: {}\nstage: {} ({})\nstate: {}\nin stage since: {}\nurl: {}\n",
        s.number,
        s.title,
        s.workflow,
        s.stage.as_deref().unwrap_or("-"),
        s.label.as_deref().unwrap_or("no stage label"),
        s.state,
        s.entered_at.format("%Y-%m-%d %H:%M UTC"),
        s.url
    );
    if !s.gates.is_empty() {
        out.push_str("gates:\n");
        for g in &s.gates {
            out.push_str(&format!(
                "  {} {}: {} — {}\n",
                if g.passed { "✔" } else { "✘" },
                g.gate,
                g.description,
                g.detail
            ));
        }
    }
    if !s.children.is_empty() {
        out.push_str("children:\n");
        for c in &s.children {
            out.push_str(&format!(
                "  #{} {} — {} ({})\n",
                c.number,
                c.template,
                c.stage.as_deref().unwrap_or("-"),
                c.state
            ));
        }
    }
    out.trim_end().to_string()
}

pub(super) fn advanced_text(a: &Advanced, dry_run: bool) -> String {
    let verb = if dry_run { "would move" } else { "moved" };
    let mut out = Vec::new();
    for t in &a.transitions {
        let from = t.from.as_deref().unwrap_or("(start)");
        let why = t
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let resumed = if t.resumed {
            " [finished an interrupted move]"
        } else {
            ""
        };
        out.push(format!(
            "#{}: {verb} {from} → {}{why}{resumed}",
            a.number, t.to
        ));
    }
    if a.transitions.is_empty() {
        out.push(format!(
            "#{}: stays in {}",
            a.number,
            a.stage.as_deref().unwrap_or("-")
        ));
    }
    for b in &a.blocked_by {
        out.push(format!(
            "  blocked by {}: {} — {}",
            b.gate, b.description, b.detail
        ));
    }
    for w in &a.warnings {
        out.push(format!("  warning: {w}"));
    }
    for c in &a.created {
        out.push(format!("  created #{c}"));
    }
    out.join("\n")
}

pub(super) fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("shepherd-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
