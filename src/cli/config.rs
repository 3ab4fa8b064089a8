//! Configuration: `shepherd.toml`, found from the current directory upwards as git finds
//! `.git`, and the `Session` built from flags, environment and that file (`--tracker` >
//! `SHEPHERD_TRACKER` > `shepherd.toml` > the default). Relative paths in the file are
//! relative to its directory; the defaults (`.shepherd/tracker.db`, `.shepherd/state.db`,
//! `workflows/`, `templates/`) are relative to the project: the file's directory, or the
//! current directory when there is no file. Opens the trackers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::args::Global;
use super::login::login_name;
use super::output::{io_error, Format};
use crate::catalog::{Catalog, Sources};
use crate::tracker::local::LocalTracker;
use crate::tracker::{github, gitlab};
use crate::tracker::{Tracker, TrackerSpec};

/// The configuration file's name.
pub(super) const CONFIG_FILE: &str = "shepherd.toml";

/// `shepherd.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Config {
    #[serde(default)]
    pub(super) tracker: Option<TrackerConfig>,
    /// `[[trackers]]`: the trackers `serve` serves together.
    #[serde(default)]
    pub(super) trackers: Vec<TrackerConfig>,
    #[serde(default)]
    pub(super) state: Option<StateConfig>,
    #[serde(default)]
    pub(super) prometheus: Option<PrometheusConfig>,
    #[serde(default)]
    pub(super) flags: Option<FlagsConfig>,
    /// `[people] operators = [...]`: who may give comment commands on the local tracker.
    #[serde(default)]
    pub(super) people: Option<PeopleConfig>,
    /// `[[notify]]`: where notifications go (`cli::notify_cmd`).
    #[serde(default)]
    pub(super) notify: Vec<crate::notify::RawSink>,
    /// `[[freeze]]`: change freezes, checked as they are read (`cli::freeze_config`).
    #[serde(default)]
    pub(super) freeze: Vec<super::freeze_config::ConfigFreeze>,
    pub(super) workflows: Option<PathBuf>,
    pub(super) templates: Option<PathBuf>,
}

/// `[tracker]` in `shepherd.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrackerConfig {
    pub(super) spec: Option<String>,
    pub(super) gitlab_url: Option<String>,
    pub(super) github_url: Option<String>,
    /// `freezes = "gitlab"`: the project's deploy freeze periods are change freezes.
    pub(super) freezes: Option<super::freeze_config::FreezeSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PeopleConfig {
    pub(super) operators: Option<Vec<String>>,
}

/// `[state]` in `shepherd.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateConfig {
    pub(super) url: Option<String>,
}

/// `[prometheus]` in `shepherd.toml`: where metric gates ask (its token from
/// `PROMETHEUS_TOKEN`, never from the file).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PrometheusConfig {
    pub(super) url: Option<String>,
}

/// `[flags]` in `shepherd.toml`: the feature-flag backend and its place (tokens from the
/// environment: `GITLAB_TOKEN`, `UNLEASH_TOKEN`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FlagsConfig {
    pub(super) backend: Option<String>,
    pub(super) url: Option<String>,
    pub(super) project: Option<String>,
    pub(super) environment: Option<String>,
}

/// Everything a command needs to know besides its own arguments: flags, environment and
/// `shepherd.toml`, resolved once.
pub(super) struct Session {
    format: Option<Format>,
    pub(super) config: Config,
    /// The directory of the `shepherd.toml` in use, if any.
    config_dir: Option<PathBuf>,
    /// Where the defaults live: `config_dir`, else the current directory.
    root: PathBuf,
    /// `--tracker`, as often as given.
    tracker_specs: Vec<String>,
    state: Option<String>,
    /// `--now`: the time for this one command on the local tracker.
    pub(super) now: Option<DateTime<Utc>>,
    pub(super) actor: String,
    workflows: Option<PathBuf>,
    templates: Option<PathBuf>,
    pub(super) concurrency: usize,
    /// `SHEPHERD_CACHE=off`: no Store cache and a full, fresh read of every migration —
    /// the run every cache and shortcut is compared against (DESIGN §11).
    pub(super) fresh_reads: bool,
    /// `--timeout`: how long one request to a remote tracker may take.
    pub(super) timeout: Duration,
    /// `--max-wait`: the longest wait for a rate limit or retries.
    pub(super) max_wait: Duration,
    /// `SHEPHERD_RETRIES` and `SHEPHERD_RETRY_BASE_MS` (tests use short delays).
    retries: Option<usize>,
    retry_base: Option<Duration>,
    /// `SHEPHERD_LEASE_TTL` (e.g. `3s`, 1–3600 s): how long a killed process's work stays
    /// blocked.
    lease_ttl: Duration,
    /// `HOSTNAME`: the first part of this run's id.
    host: String,
    gitlab_url: Option<String>,
    github_url: Option<String>,
    prometheus_url: Option<String>,
    flags: Option<String>,
}

impl Session {
    /// Reads `shepherd.toml` (from the current directory upwards) and takes the flags.
    pub(super) fn new(cli: &Global) -> Result<Session> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let (config, config_dir) = match find_config(&cwd) {
            Some(path) => {
                let config = read_config(&path)?;
                (config, path.parent().map(Path::to_path_buf))
            }
            None => (Config::default(), None),
        };
        let actor = cli
            .actor
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(login_name);
        Ok(Session {
            format: cli.format,
            root: config_dir.clone().unwrap_or(cwd),
            config,
            config_dir,
            tracker_specs: cli.tracker.clone(),
            state: cli.state.clone(),
            now: cli.now,
            actor,
            workflows: cli.workflows.clone(),
            templates: cli.templates.clone(),
            concurrency: cli.concurrency as usize,
            fresh_reads: std::env::var("SHEPHERD_CACHE").is_ok_and(|v| v == "off"),
            timeout: cli.timeout,
            max_wait: cli.max_wait,
            retries: env_number("SHEPHERD_RETRIES").map(|n| n.clamp(1, 20) as usize),
            retry_base: env_number("SHEPHERD_RETRY_BASE_MS").map(Duration::from_millis),
            lease_ttl: std::env::var("SHEPHERD_LEASE_TTL")
                .ok()
                .and_then(|v| v.strip_suffix('s').and_then(|n| n.parse::<u64>().ok()))
                .filter(|n| (1..=3600).contains(n))
                .map_or(crate::engine::lease::DEFAULT_LEASE_TTL, Duration::from_secs),
            host: std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "host".into()),
            gitlab_url: cli.gitlab_url.clone(),
            github_url: cli.github_url.clone(),
            prometheus_url: cli.prometheus_url.clone(),
            flags: cli.flags.clone(),
        })
    }

    /// How the engine behaves in this process: who acts, how many requests at once,
    /// whether caches are used, the lease's length, and a new run id.
    pub(super) fn engine_settings(&self) -> crate::engine::Settings {
        crate::engine::Settings {
            actor: self.actor.clone(),
            run_id: crate::engine::new_run_id(&self.host),
            concurrency: self.concurrency,
            fresh_reads: self.fresh_reads,
            note_drift: false,
            lease_ttl: self.lease_ttl,
            operators: self
                .config
                .people
                .as_ref()
                .and_then(|p| p.operators.clone()),
            freezes: self.config.freeze.iter().map(|f| f.0.clone()).collect(),
        }
    }

    /// How requests to a remote tracker are timed out, retried and announced.
    fn retry_policy(&self) -> crate::http::retry::Policy {
        let d = crate::http::retry::Policy::default();
        crate::http::retry::Policy {
            attempts: self.retries.unwrap_or(d.attempts),
            min_delay: self.retry_base.unwrap_or(d.min_delay),
            timeout: self.timeout,
            max_wait: self.max_wait,
            announce: Some(super::output::note),
            ..d
        }
    }

    /// The `--format` asked for (text when none), if this command can print it.
    pub(super) fn format(&self, allowed: &[Format]) -> Result<Format> {
        let format = self.format.unwrap_or(Format::Text);
        if !allowed.contains(&format) {
            let names: Vec<String> = allowed
                .iter()
                .map(|f| format!("{f:?}").to_lowercase())
                .collect();
            bail!(
                "this command cannot print --format {} (it prints {})",
                format!("{format:?}").to_lowercase(),
                names.join(", ")
            );
        }
        Ok(format)
    }

    /// The workflow and template sources: built in, then the directories in use (flag, then
    /// `shepherd.toml`, then `workflows/` and `templates/` of the project if they exist).
    pub(super) fn sources(&self) -> Result<Sources> {
        let mut sources = Sources::builtin();
        let dir = |flag: &Option<PathBuf>, configured: &Option<PathBuf>, name: &str| {
            flag.clone()
                .or_else(|| configured.as_ref().map(|p| self.in_config_dir(p)))
                .or_else(|| {
                    let p = self.root.join(name);
                    p.is_dir().then_some(p)
                })
        };
        let workflows = dir(&self.workflows, &self.config.workflows, "workflows");
        let templates = dir(&self.templates, &self.config.templates, "templates");
        if let Some(dir) = templates {
            sources.add_template_dir(&dir)?;
        }
        if let Some(dir) = workflows {
            sources.add_workflow_dir(&dir)?;
        }
        Ok(sources)
    }

    /// Loads every workflow and template in use; their problems are one error.
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

    /// The tracker in use. A local path from `shepherd.toml` is relative to its directory;
    /// the default one lives in the project's `.shepherd/`.
    pub(super) fn spec(&self) -> Result<TrackerSpec> {
        match self.tracker_specs.as_slice() {
            [] => {}
            [text] => return TrackerSpec::parse(text).map_err(anyhow::Error::msg),
            [..] => bail!(
                "--tracker is given {} times: only `serve` serves several trackers; other commands act on one",
                self.tracker_specs.len()
            ),
        }
        let configured = self.config.tracker.as_ref().and_then(|t| t.spec.clone());
        let spec = match configured {
            Some(text) => TrackerSpec::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", self.config_path().display()))?,
            None => TrackerSpec::Local(PathBuf::from(TrackerSpec::DEFAULT_LOCAL)),
        };
        Ok(self.rooted(spec))
    }

    /// A local tracker's path from `shepherd.toml` is relative to its directory.
    fn rooted(&self, spec: TrackerSpec) -> TrackerSpec {
        match spec {
            TrackerSpec::Local(path) => TrackerSpec::Local(self.root.join(path)),
            other => other,
        }
    }

    /// The trackers `serve` serves: every `--tracker`, else every `[[trackers]]` of
    /// `shepherd.toml` (each with its own URLs), else the one tracker in use.
    pub(super) fn targets(&self) -> Result<Vec<(TrackerSpec, Target)>> {
        let of_config = |t: &TrackerConfig| Target {
            gitlab_url: t.gitlab_url.clone(),
            github_url: t.github_url.clone(),
            freezes: t.freezes,
        };
        if self.tracker_specs.len() > 1 {
            let shared = self.config.tracker.as_ref().map(of_config);
            return self
                .tracker_specs
                .iter()
                .map(|text| {
                    let spec = TrackerSpec::parse(text).map_err(anyhow::Error::msg)?;
                    Ok((spec, shared.clone().unwrap_or_default()))
                })
                .collect();
        }
        if self.tracker_specs.is_empty() && !self.config.trackers.is_empty() {
            return self
                .config
                .trackers
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let text = t.spec.as_deref().with_context(|| {
                        format!(
                            "{}: [[trackers]] number {} has no `spec`",
                            self.config_path().display(),
                            i + 1
                        )
                    })?;
                    let spec = TrackerSpec::parse(text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", self.config_path().display()))?;
                    Ok(of_config(t).with(self.rooted(spec)))
                })
                .collect();
        }
        let shared = self.config.tracker.as_ref().map(of_config);
        Ok(vec![shared.unwrap_or_default().with(self.spec()?)])
    }

    /// The Prometheus that metric gates ask: `--prometheus-url`, `SHEPHERD_PROMETHEUS_URL`,
    /// else `[prometheus] url`; its token from `PROMETHEUS_TOKEN` (never printed). `None`
    /// when none is configured: metric gates are then inconclusive and say so.
    pub(super) fn prometheus(
        &self,
    ) -> Result<Option<crate::metric_source::prometheus::Prometheus>> {
        let url = self
            .prometheus_url
            .clone()
            .or_else(|| self.config.prometheus.as_ref().and_then(|p| p.url.clone()));
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let token = std::env::var("PROMETHEUS_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        crate::metric_source::prometheus::Prometheus::new(
            &url,
            token,
            Duration::from_secs(10),
            self.timeout,
        )
        .map(Some)
        .map_err(|e| anyhow::anyhow!("--prometheus-url: {e}"))
    }

    /// The feature-flag backend of the one tracker this command acts on.
    pub(super) fn flags_backend(&self) -> Result<Option<Box<dyn crate::flags::Flags>>> {
        let (spec, target) = self.one_target()?;
        self.flags_backend_for(&spec, &target)
    }

    /// The feature-flag backend of tracker `spec`: `--flags`, `SHEPHERD_FLAGS`, `[flags]
    /// backend` (the same for every tracker `serve` serves), else `local` on a local
    /// tracker and `gitlab-project` on a GitLab one. `None`: none (`none`, or GitHub with
    /// none configured).
    pub(super) fn flags_backend_for(
        &self,
        spec: &TrackerSpec,
        target: &Target,
    ) -> Result<Option<Box<dyn crate::flags::Flags>>> {
        let spec = spec.clone();
        let config = self.config.flags.as_ref();
        let named = self
            .flags
            .clone()
            .or_else(|| config.and_then(|c| c.backend.clone()));
        let backend = match named.as_deref() {
            Some(b) => b.to_string(),
            None if spec.is_local() => "local".to_string(),
            // A GitLab project's own feature flags, with the tracker's token (DESIGN §8).
            None if matches!(spec, TrackerSpec::GitLab(_)) => "gitlab-project".to_string(),
            // GitHub has no flags of its own: a backend is chosen (`unleash`), or none.
            None => return Ok(None),
        };
        match backend.as_str() {
            // Flags left to people: the audit comment says what to run.
            "none" => Ok(None),
            "local" => {
                let TrackerSpec::Local(path) = &spec else {
                    bail!("the `local` flags backend keeps flags in the local tracker's file; {spec} has none (use gitlab-project, gitlab-instance or unleash)");
                };
                let flags = crate::flags::local::LocalFlags::open(path, self.now, &self.actor)?;
                Ok(Some(Box::new(flags)))
            }
            "gitlab-project" | "gitlab-instance" => {
                let url = self
                    .gitlab_url
                    .clone()
                    .or_else(|| config.and_then(|c| c.url.clone()))
                    .or_else(|| target.gitlab_url.clone())
                    .unwrap_or_else(|| "https://gitlab.com".to_string());
                let project = config
                    .and_then(|c| c.project.clone())
                    .or_else(|| match &spec {
                        TrackerSpec::GitLab(p) => Some(p.clone()),
                        _ => None,
                    });
                let token = token("GITLAB_TOKEN", "GitLab")?;
                let flags: Box<dyn crate::flags::Flags> = if backend == "gitlab-project" {
                    let Some(project) = project else {
                        bail!("the `gitlab-project` flags backend needs a project: [flags] project = \"group/project\" in shepherd.toml");
                    };
                    let mut gl = gitlab::Config::new(&url, &project);
                    gl.policy = self.retry_policy();
                    let environment = config.and_then(|c| c.environment.clone());
                    Box::new(crate::flags::GitLabProjectFlags::new(
                        &gl,
                        &token,
                        environment.as_deref(),
                    )?)
                } else {
                    let mut gl = gitlab::Config::new(&url, project.as_deref().unwrap_or("-/-"));
                    gl.policy = self.retry_policy();
                    Box::new(crate::flags::GitLabInstanceFlags::new(&gl, &token)?)
                };
                Ok(Some(flags))
            }
            "unleash" => {
                let Some(url) = config.and_then(|c| c.url.clone()) else {
                    bail!("the `unleash` flags backend needs its address: [flags] url = \"http://…:4242\" in shepherd.toml");
                };
                let project = config
                    .and_then(|c| c.project.clone())
                    .unwrap_or_else(|| "default".to_string());
                let token = std::env::var("UNLEASH_TOKEN").ok().filter(|t| !t.is_empty());
                let unleash = crate::flags::unleash::Unleash::new(
                    &url,
                    &project,
                    config.and_then(|c| c.environment.clone()),
                    token,
                    Duration::from_secs(10),
                    self.timeout,
                )
                .map_err(|e| anyhow::anyhow!("[flags] url: {e}"))?;
                Ok(Some(Box::new(unleash)))
            }
            other => bail!(
                "unknown flags backend `{other}` (backends: local, gitlab-project, gitlab-instance, unleash, none)"
            ),
        }
    }

    /// The state store's URL: `--state`, `SHEPHERD_STATE`, `[state] url` (a relative
    /// `sqlite:` path is relative to `shepherd.toml`), else `sqlite:` beside the default
    /// local tracker. It may carry a password: never print it.
    pub(super) fn state_url(&self) -> String {
        if let Some(url) = &self.state {
            return url.clone();
        }
        match self.config.state.as_ref().and_then(|s| s.url.as_deref()) {
            Some(url) => match url.strip_prefix("sqlite:") {
                Some(path) if !path.starts_with("//") => {
                    format!("sqlite:{}", self.root.join(path).display())
                }
                _ => url.to_string(),
            },
            None => format!("sqlite:{}", self.root.join(".shepherd/state.db").display()),
        }
    }

    fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    fn in_config_dir(&self, path: &Path) -> PathBuf {
        match &self.config_dir {
            Some(dir) => dir.join(path),
            None => path.to_path_buf(),
        }
    }

    /// The one tracker a command acts on, with the URLs `shepherd.toml` gives it.
    pub(super) fn one_target(&self) -> Result<(TrackerSpec, Target)> {
        let configured = self.config.tracker.as_ref();
        let target = Target {
            gitlab_url: configured.and_then(|t| t.gitlab_url.clone()),
            github_url: configured.and_then(|t| t.github_url.clone()),
            freezes: configured.and_then(|t| t.freezes),
        };
        Ok((self.spec()?, target))
    }

    /// Opens one tracker with the URLs `target` configures (the flags come first).
    pub(super) async fn open(
        &self,
        spec: &TrackerSpec,
        target: &Target,
        create: bool,
    ) -> Result<Box<dyn Tracker>> {
        if self.now.is_some() && !spec.is_local() {
            bail!("--now sets the local tracker's clock and cannot be used with {spec}: remote trackers keep their own time");
        }
        let deploy_freezes = super::freeze_config::deploy(spec, target.freezes)?;
        match spec.clone() {
            TrackerSpec::Local(path) => Ok(Box::new(LocalTracker::open(
                &path,
                create,
                self.now,
                &self.actor,
            )?)),
            TrackerSpec::GitLab(project) => {
                let token = token("GITLAB_TOKEN", "GitLab")?;
                let url = self
                    .gitlab_url
                    .clone()
                    .or_else(|| target.gitlab_url.clone())
                    .unwrap_or_else(|| "https://gitlab.com".to_string());
                let mut config = gitlab::Config::new(&url, &project);
                config.concurrency = self.concurrency;
                config.policy = self.retry_policy();
                config.freeze_periods = deploy_freezes;
                Ok(Box::new(
                    gitlab::GitLabTracker::connect(config, &token).await?,
                ))
            }
            TrackerSpec::GitHub(repo) => {
                let token = token("GITHUB_TOKEN", "GitHub")?;
                let given = self
                    .github_url
                    .clone()
                    .or_else(|| target.github_url.clone())
                    .unwrap_or_else(|| "https://api.github.com".to_string());
                // octocrab never sends a URL's user info (the token is GITHUB_TOKEN), so it
                // is left out here, where it cannot reach a message further down.
                let url = crate::http::redact::url(&given);
                if url != given {
                    super::output::warn(&format!(
                        "the user info of the GitHub URL is not used (shepherd sends GITHUB_TOKEN): {url}"
                    ));
                }
                let mut config = github::Config::new(&url, &repo);
                config.concurrency = self.concurrency;
                config.policy = self.retry_policy();
                Ok(Box::new(github::GitHubTracker::connect(config, &token)?))
            }
        }
    }
}

/// A whole number from the environment variable `name`, if it holds one.
fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The URLs one tracker is reached at, from `shepherd.toml` (`--gitlab-url` and
/// `--github-url` come first).
#[derive(Clone, Debug, Default)]
pub(super) struct Target {
    gitlab_url: Option<String>,
    github_url: Option<String>,
    freezes: Option<super::freeze_config::FreezeSource>,
}

impl Target {
    fn with(self, spec: TrackerSpec) -> (TrackerSpec, Target) {
        (spec, self)
    }
}

fn token(var: &str, name: &str) -> Result<String> {
    std::env::var(var)
        .ok()
        .filter(|t| !t.is_empty())
        .with_context(|| {
            format!("{var} is not set: shepherd reads the {name} token from the environment")
        })
}

/// The nearest `shepherd.toml` in `dir` or its ancestors.
fn find_config(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(CONFIG_FILE))
        .find(|p| p.is_file())
}

fn read_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, "read", e))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
}
