//! Configuration: `shepherd.toml`, the `Session` built from flags, environment and the
//! file (`--tracker` > `SHEPHERD_TRACKER` > `shepherd.toml`), and opening trackers.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::output::Format;
use crate::catalog::{Catalog, Sources};
use crate::tracker::local::LocalTracker;
use crate::tracker::{github, gitlab};
use crate::tracker::{Tracker, TrackerSpec};

/// `shepherd.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    #[serde(default)]
    pub(super) tracker: Option<TrackerConfig>,
    pub(super) workflows: Option<PathBuf>,
    pub(super) templates: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrackerConfig {
    pub(super) spec: Option<String>,
    pub(super) gitlab_url: Option<String>,
    pub(super) github_url: Option<String>,
}

pub(super) struct Session {
    pub(super) cli_format: Option<String>,
    pub(super) config: Config,
    pub(super) tracker_spec: Option<String>,
    pub(super) now: Option<DateTime<Utc>>,
    pub(super) actor: String,
    pub(super) workflows: Option<PathBuf>,
    pub(super) templates: Option<PathBuf>,
    pub(super) concurrency: usize,
    pub(super) gitlab_url: Option<String>,
    pub(super) github_url: Option<String>,
}

impl Session {
    pub(super) fn format(&self, allowed: &[Format]) -> Result<Format> {
        let format = match self.cli_format.as_deref() {
            None | Some("text") => Format::Text,
            Some("json") => Format::Json,
            Some("mermaid") => Format::Mermaid,
            Some("md" | "markdown") => Format::Md,
            Some("csv") => Format::Csv,
            Some("html") => Format::Html,
            Some(other) => {
                bail!("unknown --format `{other}` (formats: text, json, mermaid, md, csv, html)")
            }
        };
        if !allowed.contains(&format) {
            bail!(
                "this command cannot print --format {}",
                self.cli_format.as_deref().unwrap_or("text")
            );
        }
        Ok(format)
    }

    pub(super) fn sources(&self) -> Result<Sources> {
        let mut sources = Sources::builtin();
        let workflows = self
            .workflows
            .clone()
            .or_else(|| self.config.workflows.clone())
            .or_else(|| existing_dir("workflows"));
        let templates = self
            .templates
            .clone()
            .or_else(|| self.config.templates.clone())
            .or_else(|| existing_dir("templates"));
        if let Some(dir) = templates {
            sources.add_template_dir(&dir)?;
        }
        if let Some(dir) = workflows {
            sources.add_workflow_dir(&dir)?;
        }
        Ok(sources)
    }

    pub(super) fn catalog(&self) -> Result<Catalog> {
        self.sources()?.load().map_err(|problems| {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            anyhow::anyhow!(
                "the workflows and templates in use have {} problem(s):\n{}",
                problems.len(),
                list.join("\n")
            )
        })
    }

    pub(super) fn spec(&self) -> Result<TrackerSpec> {
        let text = self
            .tracker_spec
            .clone()
            .or_else(|| self.config.tracker.as_ref().and_then(|t| t.spec.clone()))
            .unwrap_or_else(|| format!("local:{}", TrackerSpec::DEFAULT_LOCAL));
        TrackerSpec::parse(&text).map_err(anyhow::Error::msg)
    }

    /// Opens the tracker. `create` creates a missing local tracker; other commands see an
    /// empty one. Remote trackers read their token from the environment.
    pub(super) async fn tracker(&self, create: bool) -> Result<Box<dyn Tracker>> {
        let spec = self.spec()?;
        if self.now.is_some() && !spec.is_local() {
            bail!("--now sets the local tracker's clock and cannot be used with {spec}: remote trackers keep their own time");
        }
        match spec {
            TrackerSpec::Local(path) => Ok(Box::new(LocalTracker::open(
                &path,
                create,
                self.now,
                &self.actor,
            )?)),
            TrackerSpec::GitLab(project) => {
                let token = std::env::var("GITLAB_TOKEN").ok().filter(|t| !t.is_empty()).context(
                    "GITLAB_TOKEN is not set: shepherd reads the GitLab token from the environment",
                )?;
                let url = self
                    .gitlab_url
                    .clone()
                    .or_else(|| {
                        self.config
                            .tracker
                            .as_ref()
                            .and_then(|t| t.gitlab_url.clone())
                    })
                    .unwrap_or_else(|| "https://gitlab.com".to_string());
                let mut config = gitlab::Config::new(&url, &project);
                config.concurrency = self.concurrency;
                Ok(Box::new(
                    gitlab::GitLabTracker::connect(config, &token).await?,
                ))
            }
            TrackerSpec::GitHub(repo) => {
                let token = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()).context(
                    "GITHUB_TOKEN is not set: shepherd reads the GitHub token from the environment",
                )?;
                let url = self
                    .github_url
                    .clone()
                    .or_else(|| {
                        self.config
                            .tracker
                            .as_ref()
                            .and_then(|t| t.github_url.clone())
                    })
                    .unwrap_or_else(|| "https://api.github.com".to_string());
                let mut config = github::Config::new(&url, &repo);
                config.concurrency = self.concurrency;
                Ok(Box::new(github::GitHubTracker::connect(config, &token)?))
            }
        }
    }
}

pub(super) fn existing_dir(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(name);
    p.is_dir().then_some(p)
}

pub(super) fn read_config(path: &Path) -> Result<Config> {
    if !path.exists() {
        return Ok(Config::default());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
}
