//! The workflows and templates in use: the defaults built into the binary, overridden by
//! name by files in the `workflows/` and `templates/` directories. Loading validates all of
//! them together, since workflows refer to templates (their variables, and for checklist
//! gates their headings and items) and to each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::core::outline::Outline;
use crate::core::workflow::Action;
use crate::core::workflow::{self, Known, Problem, Workflow};
use crate::render::{self, Rendered, Renderer, Template};

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
            outlines: templates
                .iter()
                .map(|t| (t.name.clone(), Outline::of(&t.body)))
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
        // Over the workflows that loaded: a cycle among them is wrong whatever else is.
        problems.extend(workflow::check_children(&workflows, &origins));
        problems.extend(workflow::check_after(&workflows, &origins));
        problems.extend(workflow::check_child_sections(
            &workflows,
            &origins,
            &known.outlines,
        ));
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

/// A template rendered for `shepherd render`, with what the caller should warn about.
#[derive(Clone, Debug)]
pub struct RenderOutput {
    pub rendered: Rendered,
    /// Given variables that neither the template nor a workflow using it knows.
    pub unused: Vec<String>,
}

impl Catalog {
    /// The workflows that use `template`: those whose tracking issue it renders first, then
    /// those that open a child with it, then the children's own workflows.
    pub fn workflows_using(&self, template: &str) -> Vec<&Workflow> {
        let mut names: Vec<&str> = Vec::new();
        for w in self.workflows.values() {
            if w.tracking.template == template {
                names.push(&w.name);
            }
        }
        let mut children = Vec::new();
        for w in self.workflows.values() {
            for action in w.stages.iter().flat_map(|s| &s.on_enter) {
                if let Action::CreateIssue {
                    template: t,
                    workflow: child,
                } = action
                {
                    if t == template {
                        names.push(&w.name);
                        children.extend(child.as_deref());
                    }
                }
            }
        }
        names.extend(children);
        let mut seen = BTreeSet::new();
        names
            .into_iter()
            .filter(|n| seen.insert(*n))
            .filter_map(|n| self.workflows.get(n))
            .collect()
    }

    /// Renders `template` as `shepherd render` does: the given variables (dotted, e.g.
    /// `migration.ref`), then the defaults of the workflows that use the template, as
    /// `start` would apply them. Given variables that neither the template nor those
    /// workflows declare come back in `unused`.
    pub fn render_with_defaults(
        &self,
        template: &str,
        given: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<RenderOutput> {
        let workflows = self.workflows_using(template);
        let mut vars = given.clone();
        for w in &workflows {
            for v in &w.variables {
                if let Some(default) = &v.default {
                    vars.entry(v.name.clone())
                        .or_insert_with(|| default.clone());
                }
            }
        }
        let rendered = self
            .renderer
            .render(template, &render::context_from_dotted(&vars, now))?;
        let used = self
            .renderer
            .template(template)
            .map(|t| t.variables.clone())
            .unwrap_or_default();
        let unused = given
            .keys()
            .filter(|name| {
                let head = name.split('.').next().unwrap_or_default();
                !used.contains(head)
                    && !["migration", "parent", "issue", "now"].contains(&head)
                    && !workflows.iter().any(|w| w.variable(head).is_some())
            })
            .cloned()
            .collect();
        Ok(RenderOutput { rendered, unused })
    }

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
