//! Output: the `--format` values, `print` (JSON or text) to a locked stdout that ends
//! quietly when the reader goes away (`| head`), notes and warnings on stderr, the text of
//! statuses and moves shared by several commands, and files written atomically.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::core::report;
use crate::engine::Advanced;

/// `--format`: what a command prints. Each command accepts some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Format {
    /// Text for people
    Text,
    /// One JSON document (shapes in docs/json.md)
    Json,
    /// A Mermaid stateDiagram-v2 (show)
    Mermaid,
    /// Markdown (report)
    #[value(alias = "markdown")]
    Md,
    /// CSV, one row per migration (report)
    Csv,
    /// One self-contained HTML page (report)
    Html,
}

/// Prints `value` as JSON, or `text()` and a line break.
pub(super) fn print<T: Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<ExitCode> {
    match format {
        Format::Json => {
            let mut json = serde_json::to_vec_pretty(value)?;
            json.push(b'\n');
            raw(&json)?
        }
        _ => line(&text())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` and a line break on stdout.
pub(super) fn line(text: &str) -> Result<()> {
    raw(format!("{text}\n").as_bytes())
}

/// Writes `bytes` on stdout, locked, and flushes. A reader that has gone away (a closed
/// pipe, `| head -1`) ends the output quietly: that is not an error.
pub(super) fn raw(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
        Ok(()) => Ok(()),
    }
}

/// A note for the person on stderr (never fails: a closed stderr loses the note).
pub(super) fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// A warning on stderr, printed once, as `warning: …`.
pub(super) fn warn(text: &str) {
    note(&format!("warning: {text}"));
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
    if s.paused {
        let since = s
            .paused_at
            .map(|at| format!(" since {}", at.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        let by = s
            .paused_by
            .as_deref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default();
        let why = s
            .paused_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "paused{by}{since}{why} (`shepherd resume {}` lets it move on)\n",
            s.number
        ));
    }
    if let Some(error) = &s.failing {
        out.push_str(&format!("failing: {error}\n"));
    }
    for w in &s.waiting {
        out.push_str(&format!("waiting: {}\n", w.detail));
    }
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
            if let Some(who) = &g.waits_for {
                out.push_str(&format!("      waits for {who}\n"));
            }
        }
    }
    if !s.flag_drift.is_empty() {
        out.push_str("flag drift:\n");
        for d in &s.flag_drift {
            let place = d.place();
            out.push_str(&format!(
                "  ⚠ `{}`{place} is {}, but its stage set {}\n",
                d.name, d.actual, d.expected
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

/// Writes `text` to `path` through a temporary file beside it, renamed over `path`, so a
/// reader sees the old file or the new one. On failure nothing is left behind, and the
/// error names `path` as the user wrote it.
pub(super) fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let parent = check_target(path)?;
    let name = path.file_name().unwrap_or_default();
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".shepherd-tmp");
    let tmp = parent.join(tmp_name);
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, "write", e));
    }
    Ok(())
}

/// Checks that `path` can be a file: not a directory, in a directory that exists. Returns
/// that directory. Commands call it before their work, so a bad `--output` fails early.
pub(super) fn check_target(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        bail!("cannot write {}: it is a directory", path.display());
    }
    if path.file_name().is_none() {
        bail!("cannot write {}: it names no file", path.display());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        let why = if parent.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        bail!(
            "cannot write {}: {} {why}",
            path.display(),
            parent.display()
        );
    }
    Ok(parent)
}

/// An IO error about `path`, for people: "permission denied: PATH", else "cannot VERB PATH".
pub(super) fn io_error(path: &Path, verb: &str, e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        anyhow::anyhow!("permission denied: {}", path.display())
    } else {
        anyhow::Error::new(e).context(format!("cannot {verb} {}", path.display()))
    }
}
