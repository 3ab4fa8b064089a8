//! The workflows and templates in use: the defaults built into the binary, overridden by
//! name by files in the `workflows/` and `templates/` directories. Loading validates all of
//! them together, since workflows refer to templates and to each other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::core::workflow::{self, Known, Problem, Workflow};
use crate::render::{Renderer, Template};

/// Built-in workflows: (name, text).
pub const BUILTIN_WORKFLOWS: &[(&str, &str)] = &[
    (
        "gitaly-migration",
        include_str!("../workflows/gitaly-migration.yaml"),
    ),
    (
        "acceptance-testing",
        include_str!("../workflows/acceptance-testing.yaml"),
    ),
    (
        "feature-flag-rollout",
        include_str!("../workflows/feature-flag-rollout.yaml"),
    ),
];

/// Built-in templates: (name, text).
pub const BUILTIN_TEMPLATES: &[(&str, &str)] = &[
    (
        "gitaly-migration",
        include_str!("../templates/gitaly-migration.md.hbs"),
    ),
    (
        "acceptance-testing",
        include_str!("../templates/acceptance-testing.md.hbs"),
    ),
    (
        "feature-flag-rollout",
        include_str!("../templates/feature-flag-rollout.md.hbs"),
    ),
];

/// A workflow or template text and where it came from.
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub file: String,
    pub text: String,
}

/// The texts to load, after overrides.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    pub workflows: BTreeMap<String, Source>,
    pub templates: BTreeMap<String, Source>,
}

/// Loaded, validated workflows and compiled templates.
pub struct Catalog {
    pub workflows: BTreeMap<String, Workflow>,
    pub renderer: Renderer,
    /// Where each workflow came from.
    pub origins: BTreeMap<String, String>,
}

impl Sources {
    pub fn builtin() -> Sources {
        let mut s = Sources::default();
        for (name, text) in BUILTIN_WORKFLOWS {
            s.workflows.insert(
                name.to_string(),
                Source {
                    name: name.to_string(),
                    file: format!("(built-in)/workflows/{name}.yaml"),
                    text: text.to_string(),
                },
            );
        }
        for (name, text) in BUILTIN_TEMPLATES {
            s.templates.insert(
                name.to_string(),
                Source {
                    name: name.to_string(),
                    file: format!("(built-in)/templates/{name}.md.hbs"),
                    text: text.to_string(),
                },
            );
        }
        s
    }

    /// Adds every `*.yaml`/`*.yml` of `dir` as a workflow, overriding by name.
    pub fn add_workflow_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        for path in files(dir)? {
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                self.add_file(&path)?;
            }
        }
        Ok(())
    }

    /// Adds every `*.md.hbs` of `dir` as a template, overriding by name.
    pub fn add_template_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        for path in files(dir)? {
            if path.to_string_lossy().ends_with(".md.hbs") {
                self.add_file(&path)?;
            }
        }
        Ok(())
    }

    /// Adds one file: a template if it ends in `.md.hbs`, else a workflow.
    pub fn add_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let file = path.display().to_string();
        if let Some(name) = file_name.strip_suffix(".md.hbs") {
            self.templates.insert(
                name.to_string(),
                Source {
                    name: name.to_string(),
                    file,
                    text,
                },
            );
        } else {
            let name = file_name
                .trim_end_matches(".yaml")
                .trim_end_matches(".yml")
                .to_string();
            self.workflows
                .insert(name.clone(), Source { name, file, text });
        }
        Ok(())
    }

    /// Validates everything, reporting every problem of every file.
    pub fn load(&self) -> Result<Catalog, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut templates = Vec::new();
        for source in self.templates.values() {
            match Template::parse(&source.name, &source.file, &source.text) {
                Ok(t) => templates.push(t),
                Err(p) => problems.extend(p),
            }
        }
        let mut known = Known {
            templates: templates
                .iter()
                .map(|t| (t.name.clone(), t.variables.clone()))
                .collect(),
            workflows: self.workflows.keys().cloned().collect(),
        };
        // A template that failed to parse still exists; do not also report it as missing.
        for name in self.templates.keys() {
            known.templates.entry(name.clone()).or_default();
        }
        let renderer = match Renderer::new(templates) {
            Ok(r) => Some(r),
            Err(p) => {
                problems.extend(p);
                None
            }
        };
        let mut workflows = BTreeMap::new();
        let mut origins = BTreeMap::new();
        for source in self.workflows.values() {
            match workflow::load(&source.file, &source.text, Some(&source.name), &known) {
                Ok(w) => {
                    origins.insert(w.name.clone(), source.file.clone());
                    workflows.insert(w.name.clone(), w);
                }
                Err(p) => problems.extend(p),
            }
        }
        match renderer {
            Some(renderer) if problems.is_empty() => Ok(Catalog {
                workflows,
                renderer,
                origins,
            }),
            _ => Err(problems),
        }
    }
}

impl Catalog {
    pub fn workflow(&self, name: &str) -> anyhow::Result<&Workflow> {
        self.workflows.get(name).with_context(|| {
            format!(
                "unknown workflow `{name}` (workflows: {})",
                self.workflows
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}
