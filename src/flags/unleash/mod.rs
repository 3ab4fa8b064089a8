//! The `unleash` backend: an Unleash server's Admin API (v6), one project. A flag is a
//! feature of the project; its state in an environment is the environment's `enabled` and
//! the `rollout` of its first active `flexibleRollout` strategy (none: simply on or off).
//!
//! Writes keep to one strategy: a percentage updates the environment's first active
//! `flexibleRollout` strategy (or turns a constraint-free `default` one into it), and adds
//! one only when there is none, so 1 → 5 → 50 → 100 % is one strategy throughout. The
//! other strategies a person added are left as they are. After writing, the flag is read
//! again; where Unleash made it something else (turning an environment on adds the
//! project's default strategy, which may not be at 100 %), the writes are made once more.
//! `Delete` archives the feature; setting it again later revives it.
//!
//! Every request has the client's timeouts. A connection never made and a 429 are tried
//! again a couple of times; a 5xx and a broken connection only for requests that are safe
//! to repeat (all but adding a strategy); a timeout is not. The token (`UNLEASH_TOKEN`)
//! goes only into the `Authorization` header, as Unleash takes admin and personal tokens,
//! and is taken out of every message.

use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, StatusCode};
use serde_json::json;

mod model;
mod transport;

use super::{FlagError, Flags};
use crate::core::facts::{FlagState, FlagWant};
use crate::http::retry::Policy;
use crate::http::service;
use model::*;

/// The environment variable that holds the token.
pub const TOKEN_VAR: &str = "UNLEASH_TOKEN";

/// The strategy whose `rollout` parameter is the flag's percentage.
const FLEXIBLE_ROLLOUT: &str = "flexibleRollout";

/// `list` reads this many features' strategies at once.
const LIST_CONCURRENCY: usize = 8;

/// An Unleash server's Admin API, for one project.
pub struct Unleash {
    client: reqwest::Client,
    /// The URL as configured, without a trailing `/` (a path prefix is kept).
    base: url::Url,
    /// The URL for people: without user info or a trailing `/`.
    shown: String,
    project: String,
    /// `[flags] environment`: the environment of a call that names none.
    environment: Option<String>,
    token: Option<http::HeaderValue>,
    /// The token's text, taken out of every message.
    secret: String,
    timeout: Duration,
    retries: Policy,
}

impl Unleash {
    /// A client for the Unleash at `url` (the address of its web UI,
    /// `http(s)://HOST[:PORT][/PATH]`), for `project`. `environment` is the one a call
    /// naming none works on (`None`: every environment of the project). `token`, an admin
    /// or personal access token, is sent as the `Authorization` header (none: an Unleash
    /// without authentication). `connect_timeout` bounds setting up a connection, `timeout`
    /// each whole request.
    pub fn new(
        url: &str,
        project: &str,
        environment: Option<String>,
        token: Option<String>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Unleash, String> {
        let address = service::address(url, "Unleash")?;
        let mut parsed = address.url;
        let trimmed = parsed.path().trim_end_matches('/').to_string();
        parsed.set_path(&trimmed);
        let shown = address.shown;
        if project.trim().is_empty() {
            return Err("the Unleash project is empty: set [flags] project".into());
        }
        if environment.as_deref().is_some_and(|e| e.trim().is_empty()) {
            return Err("the Unleash environment is empty: set [flags] environment".into());
        }
        let secret = token.unwrap_or_default();
        let token = service::authorization(&secret, str::to_string, TOKEN_VAR)?;
        let client = service::client(connect_timeout, timeout)?;
        Ok(Unleash {
            client,
            base: parsed,
            shown,
            project: project.to_string(),
            environment,
            token,
            secret,
            timeout,
            retries: Policy::for_services(),
        })
    }

    /// The same client with other retries (tests use short ones).
    pub fn with_retries(mut self, retries: Policy) -> Unleash {
        self.retries = retries.at_least_once();
        self
    }

    /// The URL as people may see it (no user info, no token).
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The backend as error messages name it.
    fn backend(&self) -> String {
        format!("unleash at {}", self.shown)
    }

    /// The feature `name`, or, when the project has none by that name, the project's
    /// environments (a project that does not exist is an error).
    async fn feature(&self, name: &str) -> Result<Lookup, FlagError> {
        let path = self.feature_path(name);
        let reply = self.send(Method::GET, &path, None, true).await?;
        match reply.status {
            StatusCode::OK => Ok(Lookup::Found(self.parse(&Method::GET, &path, &reply)?)),
            StatusCode::NOT_FOUND => Ok(Lookup::Missing {
                environments: self.project_environments().await?,
                said: unleash_message(&reply.body),
            }),
            _ => Err(self.unexpected(&Method::GET, &path, &reply)),
        }
    }

    /// The environments of the project; a project that does not exist is `Invalid`.
    async fn project_environments(&self) -> Result<Vec<String>, FlagError> {
        let path = vec!["api", "admin", "projects", self.project.as_str()];
        let reply = self.send(Method::GET, &path, None, true).await?;
        match reply.status {
            StatusCode::OK => {
                let project: Project = self.parse(&Method::GET, &path, &reply)?;
                Ok(project
                    .environments
                    .into_iter()
                    .map(ProjectEnvironment::name)
                    .collect())
            }
            StatusCode::NOT_FOUND => Err(self.no_project()),
            _ => Err(self.unexpected(&Method::GET, &path, &reply)),
        }
    }

    fn no_project(&self) -> FlagError {
        FlagError::Invalid(format!(
            "Unleash project `{}` does not exist at {}",
            self.project, self.shown
        ))
    }

    /// The environments a call works on: the one it names, else the configured one, else
    /// every environment of the project (`known`). One that `known` lacks is `Invalid`.
    fn targets(
        &self,
        environment: Option<&str>,
        known: &[String],
    ) -> Result<Vec<String>, FlagError> {
        match environment.or(self.environment.as_deref()) {
            Some(env) if known.iter().any(|k| k == env) => Ok(vec![env.to_string()]),
            Some(env) => Err(FlagError::Invalid(format!(
                "Unleash environment `{env}` does not exist in project `{}` at {} (it has {})",
                self.project,
                self.shown,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))),
            None => Ok(known.to_vec()),
        }
    }

    /// The environment a state is of: the one named or configured (`None`: all of them).
    fn state_environment(&self, environment: Option<&str>) -> Option<String> {
        environment
            .or(self.environment.as_deref())
            .map(String::from)
    }

    /// Creates the feature `name` (a `release` feature), or revives it when an archived
    /// feature of the project has that name. When Unleash would do neither (the name is a
    /// feature of another project), what it said, for the message of the caller, who reads
    /// the feature again.
    async fn create(&self, name: &str) -> Result<Option<String>, FlagError> {
        let path = self.features_path();
        let body = json!({"name": name, "type": "release"});
        // Safe to repeat: a second creation is a 409, taken as done below.
        let reply = self.send(Method::POST, &path, Some(&body), true).await?;
        match reply.status {
            s if s.is_success() => Ok(None),
            StatusCode::BAD_REQUEST => Err(FlagError::Invalid(format!(
                "{} refused the flag name `{name}`: {}",
                self.backend(),
                unleash_message(&reply.body)
            ))),
            StatusCode::NOT_FOUND => Err(self.no_project()),
            StatusCode::CONFLICT => {
                // Archived (by an earlier `Delete`), or created meanwhile, or a feature
                // of another project: revive it where it is this project's; the caller
                // reads it again and says what it found.
                let path = vec!["api", "admin", "projects", self.project.as_str(), "revive"];
                let body = json!({ "features": [name] });
                let revived = self.send(Method::POST, &path, Some(&body), true).await?;
                if revived.status.is_success() {
                    return Ok(None);
                }
                Ok(Some(format!(
                    "{} (and reviving it: {})",
                    unleash_message(&reply.body),
                    unleash_message(&revived.body)
                )))
            }
            _ => Err(self.unexpected(&Method::POST, &path, &reply)),
        }
    }

    /// The writes that make environment `env` of the feature `name` what `want` says.
    fn plan(name: &str, env: &Environment, want: &FlagWant) -> Vec<Step> {
        let mut steps = Vec::new();
        match want {
            FlagWant::Percentage(p) => {
                match rollout_strategy(env) {
                    Some(s) if s.name == FLEXIBLE_ROLLOUT && s.rollout() == Some(*p) => {}
                    Some(s) => steps.push(Step::Update {
                        id: s.id.clone(),
                        body: s.with_rollout(name, *p),
                    }),
                    None => steps.push(Step::Add {
                        body: json!({
                            "name": FLEXIBLE_ROLLOUT,
                            "constraints": [],
                            "parameters": {
                                "rollout": rollout_text(*p),
                                "stickiness": "default",
                                "groupId": name,
                            },
                        }),
                    }),
                }
                if !env.enabled {
                    steps.push(Step::On);
                }
            }
            FlagWant::Enabled(true) => {
                let partial = active(env)
                    .find(|s| s.name == FLEXIBLE_ROLLOUT)
                    .filter(|s| s.rollout() != Some(100.0));
                if let Some(s) = partial {
                    steps.push(Step::Update {
                        id: s.id.clone(),
                        body: s.with_rollout(name, 100.0),
                    });
                }
                if !env.enabled {
                    steps.push(Step::On);
                }
            }
            FlagWant::Enabled(false) => {
                if env.enabled {
                    steps.push(Step::Off);
                }
            }
            FlagWant::Delete => {}
        }
        steps
    }

    /// Makes one write of a plan.
    async fn apply(&self, name: &str, env: &str, step: &Step) -> Result<(), FlagError> {
        let mut path = self.feature_path(name);
        path.extend(["environments", env]);
        let (method, body, safe) = match step {
            Step::Update { id, body } => {
                path.extend(["strategies", id.as_str()]);
                (Method::PUT, Some(body), true)
            }
            Step::Add { body } => {
                path.push("strategies");
                // Not repeated after a 5xx or a broken connection: it may have been added.
                (Method::POST, Some(body), false)
            }
            Step::On => {
                path.push("on");
                (Method::POST, None, true)
            }
            Step::Off => {
                path.push("off");
                (Method::POST, None, true)
            }
        };
        let reply = self.send(method.clone(), &path, body, safe).await?;
        match reply.status {
            s if s.is_success() => Ok(()),
            StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN => Err(FlagError::Invalid(format!(
                "{} refused to change `{name}` in {env}: {}",
                self.backend(),
                unleash_message(&reply.body)
            ))),
            _ => Err(self.unexpected(&method, &path, &reply)),
        }
    }

    /// Archives the feature `name`; one that does not exist is fine.
    async fn archive(&self, name: &str, environment: Option<&str>) -> Result<FlagState, FlagError> {
        let path = self.feature_path(name);
        let reply = self.send(Method::DELETE, &path, None, true).await?;
        match reply.status {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                // Gone already, unless the project itself is.
                self.project_environments().await?;
            }
            _ => return Err(self.unexpected(&Method::DELETE, &path, &reply)),
        }
        Ok(FlagState::missing(
            name,
            self.state_environment(environment),
        ))
    }
}

#[async_trait]
impl Flags for Unleash {
    fn describe(&self) -> String {
        let mut text = format!("unleash at {}, project {}", self.shown, self.project);
        if let Some(env) = &self.environment {
            text.push_str(&format!(", environment {env}"));
        }
        text
    }

    fn kind(&self) -> &'static str {
        "unleash"
    }

    async fn get(&self, name: &str, environment: Option<&str>) -> Result<FlagState, FlagError> {
        check_name(name)?;
        match self.feature(name).await? {
            Lookup::Found(feature) => {
                let known = feature.environment_names();
                let targets = self.targets(environment, &known)?;
                Ok(state(
                    name,
                    &feature,
                    &targets,
                    self.state_environment(environment),
                ))
            }
            Lookup::Missing { environments, .. } => {
                self.targets(environment, &environments)?;
                Ok(FlagState::missing(
                    name,
                    self.state_environment(environment),
                ))
            }
        }
    }

    async fn set(
        &self,
        name: &str,
        environment: Option<&str>,
        want: &FlagWant,
    ) -> Result<FlagState, FlagError> {
        check_name(name)?;
        if let FlagWant::Percentage(p) = want {
            check_percentage(*p)?;
        }
        if *want == FlagWant::Delete {
            return self.archive(name, environment).await;
        }
        let mut feature = match self.feature(name).await? {
            Lookup::Found(feature) => feature,
            Lookup::Missing { environments, .. } => {
                self.targets(environment, &environments)?;
                let refused = self.create(name).await?;
                match self.feature(name).await? {
                    Lookup::Found(feature) => feature,
                    Lookup::Missing { said, .. } => {
                        return Err(FlagError::Invalid(format!(
                            "{} cannot make the flag `{name}` in project `{}`: {}",
                            self.backend(),
                            self.project,
                            refused.unwrap_or(said)
                        )))
                    }
                }
            }
        };
        let targets = self.targets(environment, &feature.environment_names())?;
        // A second round when Unleash made an environment something else than asked (its
        // default strategy when turned on).
        for _ in 0..2 {
            let mut wrote = false;
            for env in &targets {
                let Some(current) = feature.environments.iter().find(|e| &e.name == env) else {
                    continue;
                };
                for step in Self::plan(name, current, want) {
                    tracing::debug!("{}: `{name}` in {env}: {step:?}", self.backend());
                    self.apply(name, env, &step).await?;
                    wrote = true;
                }
            }
            if !wrote {
                break;
            }
            feature = match self.feature(name).await? {
                Lookup::Found(feature) => feature,
                Lookup::Missing { said, .. } => {
                    return Err(FlagError::Other(format!(
                        "{}: the flag `{name}` went away while shepherd set it: {said}",
                        self.backend()
                    )))
                }
            };
        }
        Ok(state(
            name,
            &feature,
            &targets,
            self.state_environment(environment),
        ))
    }

    async fn list(&self) -> Result<Vec<FlagState>, FlagError> {
        let path = self.features_path();
        let reply = self.send(Method::GET, &path, None, true).await?;
        if reply.status != StatusCode::OK {
            return Err(self.unexpected(&Method::GET, &path, &reply));
        }
        let listed: ProjectFeatures = self.parse(&Method::GET, &path, &reply)?;
        // Unleash lists an unknown project as one without features.
        let known = match listed.features.first() {
            Some(first) => first.environments.iter().map(|e| e.name.clone()).collect(),
            None => self.project_environments().await?,
        };
        let targets = self.targets(None, &known)?;
        let environment = self.state_environment(None);
        let mut states: Vec<FlagState> = futures::stream::iter(listed.features)
            .map(|listed| {
                let (targets, environment) = (&targets, environment.clone());
                async move {
                    // Only an environment that is on with strategies has a percentage,
                    // which only the feature itself shows.
                    let needs_strategies = listed.environments.iter().any(|e| {
                        targets.contains(&e.name)
                            && e.enabled
                            && e.has_enabled_strategies != Some(false)
                    });
                    let feature = if needs_strategies {
                        match self.feature(&listed.name).await? {
                            Lookup::Found(feature) => feature,
                            // Archived meanwhile.
                            Lookup::Missing { .. } => return Ok(None),
                        }
                    } else {
                        listed.without_strategies()
                    };
                    Ok::<_, FlagError>(Some(state(&listed.name, &feature, targets, environment)))
                }
            })
            .buffered(LIST_CONCURRENCY)
            .try_filter_map(|s| async move { Ok(s) })
            .try_collect()
            .await?;
        states.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn env(enabled: bool, strategies: Value) -> Environment {
        serde_json::from_value(json!({
            "name": "production",
            "enabled": enabled,
            "strategies": strategies,
        }))
        .unwrap()
    }

    fn flexible(id: &str, rollout: &str, order: i64) -> Value {
        json!({"id": id, "name": "flexibleRollout", "sortOrder": order, "disabled": false,
               "constraints": [], "variants": [], "segments": [],
               "parameters": {"rollout": rollout, "stickiness": "default", "groupId": "f"}})
    }

    #[test]
    fn the_percentage_is_the_first_active_flexible_rollout() {
        let e = env(
            true,
            json!([flexible("b", "50", 2), flexible("a", "5", 1),
                   {"id": "c", "name": "flexibleRollout", "sortOrder": 0, "disabled": true,
                    "parameters": {"rollout": "1"}}]),
        );
        assert_eq!(environment_state(&e), (true, Some(5.0)));
        assert_eq!(
            environment_state(&env(false, json!([flexible("a", "5", 0)]))),
            (false, None)
        );
        let default = json!([{"id": "d", "name": "default", "parameters": {}}]);
        assert_eq!(environment_state(&env(true, default)), (true, None));
    }

    #[test]
    fn a_percentage_updates_the_strategy_there_is() {
        let e = env(true, json!([flexible("a", "5", 0)]));
        let steps = Unleash::plan("f", &e, &FlagWant::Percentage(50.0));
        let [Step::Update { id, body }] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert_eq!(id, "a");
        assert_eq!(body["parameters"]["rollout"], "50");
        assert!(Unleash::plan("f", &e, &FlagWant::Percentage(5.0)).is_empty());
        let off = env(false, json!([]));
        let steps = Unleash::plan("f", &off, &FlagWant::Percentage(1.0));
        assert!(
            matches!(steps.as_slice(), [Step::Add { .. }, Step::On]),
            "{steps:?}"
        );
        let default = env(
            true,
            json!([{"id": "d", "name": "default", "parameters": {}}]),
        );
        let steps = Unleash::plan("f", &default, &FlagWant::Percentage(1.0));
        let [Step::Update { id, body }] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert_eq!(id, "d");
        assert_eq!(body["name"], "flexibleRollout");
        assert_eq!(body["parameters"]["groupId"], "f");
    }

    #[test]
    fn enabled_means_fully_on() {
        let e = env(false, json!([flexible("a", "5", 0)]));
        let steps = Unleash::plan("f", &e, &FlagWant::Enabled(true));
        assert!(
            matches!(steps.as_slice(), [Step::Update { .. }, Step::On]),
            "{steps:?}"
        );
        assert!(Unleash::plan("f", &e, &FlagWant::Enabled(false)).is_empty());
        let on = env(true, json!([flexible("a", "100", 0)]));
        assert!(Unleash::plan("f", &on, &FlagWant::Enabled(true)).is_empty());
        let steps = Unleash::plan("f", &on, &FlagWant::Enabled(false));
        assert!(matches!(steps.as_slice(), [Step::Off]), "{steps:?}");
    }

    #[test]
    fn every_environment_shows_the_least() {
        let feature: Feature = serde_json::from_value(json!({"environments": [
            {"name": "development", "enabled": true, "strategies": []},
            {"name": "production", "enabled": true, "strategies": [flexible("a", "5", 0)]},
        ]}))
        .unwrap();
        let all = ["development".to_string(), "production".to_string()];
        let s = state("f", &feature, &all, None);
        assert!(s.enabled);
        assert_eq!(s.percentage, Some(5.0));
        let s = state("f", &feature, &all[..1], Some("development".into()));
        assert_eq!((s.enabled, s.percentage), (true, None));
    }

    #[test]
    fn percentages_are_whole_and_in_range() {
        assert!(check_percentage(0.0).is_ok());
        assert!(check_percentage(100.0).is_ok());
        for bad in [150.0, -1.0, 0.5, f64::NAN] {
            assert!(
                matches!(check_percentage(bad), Err(FlagError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn unleash_messages_come_from_details() {
        let body = br#"{"name":"BadDataError","message":"Request validation failed","details":[{"message":"\"name\" must be URL friendly."}]}"#;
        assert_eq!(unleash_message(body), "\"name\" must be URL friendly.");
        assert_eq!(unleash_message(b"<html>"), "<html>");
    }

    #[test]
    fn the_token_is_never_shown() {
        let u = Unleash::new(
            "http://user:pw@127.0.0.1:4242/unleash/",
            "default",
            None,
            Some("*:*.secret".into()),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(u.url(), "http://127.0.0.1:4242/unleash");
        assert_eq!(
            u.describe(),
            "unleash at http://127.0.0.1:4242/unleash, project default"
        );
        let url = u
            .address(&["api", "admin", "projects", "default", "features", "a b/c"])
            .unwrap();
        assert_eq!(
            url.path(),
            "/unleash/api/admin/projects/default/features/a%20b%2Fc"
        );
    }
}
