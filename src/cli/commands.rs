//! The commands that need no tracker: `init`, `validate`, `workflows`, `show`, `render`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::Utc;
use serde_json::json;

use super::config::Session;
use super::output::{io_error, line, note, print, warn, write_atomically, Format};
use crate::catalog::{BUILTIN_TEMPLATES, BUILTIN_WORKFLOWS};
use crate::core::workflow::{Gate, Workflow};

/// `--var K=V` and `--vars-file F` (a YAML or JSON mapping); `--var` wins.
pub(super) fn collect_vars(
    pairs: &[String],
    file: Option<&Path>,
) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).map_err(|e| io_error(path, "read vars file", e))?;
        let node = crate::core::yaml::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}:{}: {}",
                path.display(),
                e.loc.line,
                e.loc.column,
                e.message
            )
        })?;
        let crate::core::yaml::NodeKind::Map(entries) = &node.kind else {
            bail!(
                "{}:{}:{}: a vars file is a mapping of name: value",
                path.display(),
                node.loc.line,
                node.loc.column
            );
        };
        for (k, v) in entries {
            let (Some(key), Some(value)) = (k.scalar_text(), v.scalar_text()) else {
                bail!(
                    "{}:{}:{}: each variable must be `name: value` with a scalar value",
                    path.display(),
                    k.loc.line,
                    k.loc.column
                );
            };
            vars.insert(key, value);
        }
    }
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--var `{pair}` must be NAME=VALUE");
        };
        if k.is_empty() {
            bail!("--var `{pair}` has no name before `=`");
        }
        vars.insert(k.to_string(), v.to_string());
    }
    // Values are text: control characters never reach an issue (`core::value`).
    for (name, value) in vars.iter_mut() {
        if let std::borrow::Cow::Owned(clean) = crate::core::value::clean(value) {
            warn(&format!(
                "variable `{name}`: control characters taken out of its value (line breaks became spaces)"
            ));
            *value = clean;
        }
    }
    Ok(vars)
}

pub(super) fn init(session: &Session, dir: PathBuf) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let toml = "# shepherd configuration\n\n[tracker]\n# local[:PATH], gitlab:GROUP/PROJECT or github:OWNER/REPO\nspec = \"local:.shepherd/tracker.db\"\n";
    let mut files: Vec<(PathBuf, &str)> = vec![(dir.join("shepherd.toml"), toml)];
    for (name, text) in BUILTIN_WORKFLOWS {
        files.push((dir.join("workflows").join(format!("{name}.yaml")), text));
    }
    for (name, text) in BUILTIN_TEMPLATES {
        files.push((dir.join("templates").join(format!("{name}.md.hbs")), text));
    }
    let existing: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, _)| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        bail!(
            "init writes nothing over existing files; these exist already:\n{}",
            existing.join("\n")
        );
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, "create", e))?;
        }
        write_atomically(path, text)?;
    }
    let written: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    print(format, &json!({"written": written}), || {
        format!("wrote:\n{}", written.join("\n"))
    })
}

pub(super) fn validate(session: &Session, paths: &[PathBuf]) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let mut sources = session.sources()?;
    for path in paths {
        if path.is_dir() {
            sources.add_workflow_dir(path)?;
            sources.add_template_dir(path)?;
        } else {
            sources.add_file(path)?;
        }
    }
    let result = sources.load();
    let problems = result.as_ref().err().cloned().unwrap_or_default();
    // Warnings do not fail validation: a guardrail, not a rule.
    let warnings: Vec<String> = result
        .as_ref()
        .map(|c| {
            c.workflows
                .values()
                .flat_map(crate::core::drift::flag_jumps)
                .collect()
        })
        .unwrap_or_default();
    for w in &warnings {
        warn(w);
    }
    let checked = sources.workflows.len() + sources.templates.len();
    let json = json!({
        "ok": problems.is_empty(),
        "warnings": warnings,
        "problems": problems.iter().map(|p| json!({"file": p.file, "line": p.loc.line, "column": p.loc.column, "message": p.message})).collect::<Vec<_>>(),
    });
    match format {
        Format::Json => line(&serde_json::to_string_pretty(&json)?)?,
        _ if problems.is_empty() => line(&format!(
            "ok: {} workflows, {} templates",
            sources.workflows.len(),
            sources.templates.len()
        ))?,
        _ => {
            for p in &problems {
                note(&p.to_string());
            }
            note(&format!(
                "error: {} problem(s) in {checked} files",
                problems.len()
            ));
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(super) fn workflows(session: &Session) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let catalog = session.catalog()?;
    let list: Vec<_> = catalog
        .workflows
        .values()
        .map(|w| json!({"name": w.name, "description": w.description, "stages": w.stages.len(), "source": catalog.origins.get(&w.name)}))
        .collect();
    print(format, &json!({"workflows": list}), || {
        catalog
            .workflows
            .values()
            .map(|w| {
                format!(
                    "{:<22} {:>2} stages  {}",
                    w.name,
                    w.stages.len(),
                    w.description
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

pub(super) fn show(session: &Session, name: &str) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json, Format::Mermaid])?;
    let catalog = session.catalog()?;
    let w = catalog.workflow(name)?;
    match format {
        Format::Json => {
            let value = json!({
                "name": w.name,
                "description": w.description,
                "variables": w.variables.iter().map(|v| json!({"name": v.name, "required": v.required, "default": v.default, "pattern": v.pattern.as_ref().map(|p| p.as_str()), "description": v.description})).collect::<Vec<_>>(),
                "tracking": {"template": w.tracking.template, "labels": w.tracking.labels},
                "stages": w.stages.iter().map(|s| json!({
                    "id": s.id,
                    "label": s.label,
                    "description": s.description,
                    "terminal": s.terminal,
                    "gates": s.gates.iter().map(gate_json).collect::<Vec<_>>(),
                    "next": s.next.iter().map(|e| json!({"to": e.to, "when": e.when.iter().map(gate_json).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                    "exits": s.exits.iter().map(|e| json!({"to": e.to, "when": e.when.iter().map(gate_json).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                    "on_enter": s.on_enter.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            });
            line(&serde_json::to_string_pretty(&value)?)?;
        }
        Format::Mermaid => line(&mermaid(w))?,
        _ => {
            let mut out = format!("{} — {}\n", w.name, w.description);
            for s in &w.stages {
                out.push_str(&format!(
                    "\n{} ~\"{}\"{}\n",
                    s.id,
                    s.label,
                    if s.terminal { " (terminal)" } else { "" }
                ));
                for g in &s.gates {
                    out.push_str(&format!("  gate: {}\n", g.describe()));
                }
                for e in &s.next {
                    let when = if e.when.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " when {}",
                            e.when
                                .iter()
                                .map(Gate::describe)
                                .collect::<Vec<_>>()
                                .join(" and ")
                        )
                    };
                    out.push_str(&format!("  next → {}{when}\n", e.to));
                }
                for e in &s.exits {
                    out.push_str(&format!(
                        "  exit → {} when {}\n",
                        e.to,
                        e.when
                            .iter()
                            .map(Gate::describe)
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ));
                }
            }
            line(out.trim_end())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn gate_json(g: &Gate) -> serde_json::Value {
    json!({"gate": g.kind(), "description": g.describe()})
}

pub(super) fn mermaid(w: &Workflow) -> String {
    let id = |s: &str| s.replace(['-', ' ', ':'], "_");
    let mut out = String::from("stateDiagram-v2\n");
    for s in &w.stages {
        out.push_str(&format!(
            "    state \"{}\" as {}\n",
            s.label.replace('"', "'"),
            id(&s.id)
        ));
    }
    // Labels lose what Mermaid reads as syntax.
    let clean = |text: String| {
        text.replace(';', ",")
            .replace(['"', ':', '#', '{', '}'], "")
    };
    for s in &w.stages {
        for g in &s.gates {
            out.push_str(&format!("    {} : {}\n", id(&s.id), clean(g.describe())));
        }
    }
    out.push_str(&format!("    [*] --> {}\n", id(&w.first_stage().id)));
    for s in &w.stages {
        for e in &s.next {
            let when = if e.when.is_empty() {
                String::new()
            } else {
                format!(
                    " : when {}",
                    e.when
                        .iter()
                        .map(Gate::describe)
                        .collect::<Vec<_>>()
                        .join(" and ")
                        .replace(['"', ':', ';'], "")
                )
            };
            out.push_str(&format!("    {} --> {}{when}\n", id(&s.id), id(&e.to)));
        }
        for e in &s.exits {
            let when: Vec<String> = e.when.iter().map(Gate::describe).collect();
            out.push_str(&format!(
                "    {} --> {} : exit when {}\n",
                id(&s.id),
                id(&e.to),
                clean(when.join(" and "))
            ));
        }
        if s.terminal {
            out.push_str(&format!("    {} --> [*]\n", id(&s.id)));
        }
    }
    out.trim_end().to_string()
}

pub(super) fn render_cmd(
    session: &Session,
    template: &str,
    pairs: &[String],
    file: Option<&Path>,
) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let catalog = session.catalog()?;
    let vars = collect_vars(pairs, file)?;
    if catalog.renderer.template(template).is_none() {
        bail!(
            "unknown template `{template}` (templates: {})",
            catalog.renderer.names().collect::<Vec<_>>().join(", ")
        );
    }
    let now = session.now.unwrap_or_else(Utc::now);
    // The defaults of the workflows that use the template, as `start` applies them.
    let out = catalog.render_with_defaults(template, &vars, now)?;
    for name in &out.unused {
        warn(&format!(
            "template `{template}` does not use variable `{name}`"
        ));
    }
    let rendered = out.rendered;
    print(
        format,
        &json!({"title": rendered.title, "labels": rendered.labels, "body": rendered.body}),
        || format!("# {}\n\n{}", rendered.title, rendered.body.trim_end()),
    )
}
