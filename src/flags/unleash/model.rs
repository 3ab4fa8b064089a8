//! The Unleash Admin API's JSON as the backend reads it (features, environments,
//! strategies, projects), the state a flag is in from it, what Unleash takes (names,
//! whole percentages) and what it says when it refuses.

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{FlagError, FLEXIBLE_ROLLOUT};
use crate::core::facts::FlagState;

/// A flag name Unleash could never take as a path segment: refused before any request.
pub(super) fn check_name(name: &str) -> Result<(), FlagError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(FlagError::Invalid(format!(
            "`{name}` is not a flag name Unleash can take"
        )));
    }
    Ok(())
}

/// A percentage Unleash can roll out: a whole number from 0 to 100 (the SDKs read
/// `rollout` as an integer).
pub(super) fn check_percentage(p: f64) -> Result<(), FlagError> {
    crate::core::facts::check_percentage(p).map_err(FlagError::Invalid)?;
    if p.fract() != 0.0 {
        return Err(FlagError::Invalid(format!(
            "Unleash rolls out whole percentages, not {p}"
        )));
    }
    Ok(())
}

/// `p` as Unleash writes a `rollout`: `"5"`.
pub(super) fn rollout_text(p: f64) -> String {
    format!("{}", p.round() as i64)
}

/// The flag's state over `targets` (the environments asked about): on only where every
/// one is on; the percentage their common one, or, where they differ, the lowest (the
/// share the flag is on for at least everywhere; simply on counts as 100 %).
pub(super) fn state(
    name: &str,
    feature: &Feature,
    targets: &[String],
    environment: Option<String>,
) -> FlagState {
    let states: Vec<(bool, Option<f64>)> = targets
        .iter()
        .filter_map(|t| feature.environments.iter().find(|e| &e.name == t))
        .map(environment_state)
        .collect();
    let enabled = !states.is_empty() && states.iter().all(|(on, _)| *on);
    let percentage = if !enabled {
        None
    } else if states.windows(2).all(|w| w[0].1 == w[1].1) {
        states.first().and_then(|(_, p)| *p)
    } else {
        states
            .iter()
            .map(|(_, p)| p.unwrap_or(100.0))
            .min_by(|a, b| a.total_cmp(b))
    };
    FlagState {
        name: name.to_string(),
        exists: true,
        enabled,
        percentage,
        environment,
    }
}

/// One environment: on or off, and when on, the rollout of its first active
/// `flexibleRollout` strategy (none: simply on).
pub(super) fn environment_state(env: &Environment) -> (bool, Option<f64>) {
    if !env.enabled {
        return (false, None);
    }
    let percentage = active(env)
        .find(|s| s.name == FLEXIBLE_ROLLOUT)
        .and_then(Strategy::rollout);
    (true, percentage)
}

/// The environment's active strategies, in Unleash's order.
pub(super) fn active(env: &Environment) -> impl Iterator<Item = &Strategy> {
    let mut strategies: Vec<&Strategy> = env
        .strategies
        .iter()
        .filter(|s| s.disabled != Some(true))
        .collect();
    strategies.sort_by(|a, b| {
        a.sort_order
            .unwrap_or(0.0)
            .total_cmp(&b.sort_order.unwrap_or(0.0))
    });
    strategies.into_iter()
}

/// The strategy a percentage goes into: the first active `flexibleRollout`, else the first
/// active `default` strategy without constraints or segments (on for everyone, which a
/// rollout replaces).
pub(super) fn rollout_strategy(env: &Environment) -> Option<&Strategy> {
    active(env)
        .find(|s| s.name == FLEXIBLE_ROLLOUT)
        .or_else(|| {
            active(env)
                .find(|s| s.name == "default" && s.constraints.is_empty() && s.segments.is_empty())
        })
}

/// A 401, or a 403 about the token's rights. Unleash answers 403 to operations it denies
/// whoever asks, too (`InvalidOperationError`, `OperationDeniedError` when a change request
/// is required, `IncompatibleProjectError`): those come back to the caller.
pub(super) fn refuses_the_token(reply: &Reply) -> bool {
    match reply.status {
        StatusCode::UNAUTHORIZED => true,
        StatusCode::FORBIDDEN => {
            #[derive(Deserialize)]
            struct Error {
                name: Option<String>,
            }
            let name = serde_json::from_slice::<Error>(&reply.body)
                .ok()
                .and_then(|e| e.name);
            !matches!(
                name.as_deref(),
                Some("InvalidOperationError" | "OperationDeniedError" | "IncompatibleProjectError")
            )
        }
        _ => false,
    }
}

/// What Unleash said in an error answer: the messages of its `details`, else its
/// `message`, else the start of the body.
pub(super) fn unleash_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Error {
        message: Option<String>,
        #[serde(default)]
        details: Vec<Detail>,
    }
    #[derive(Deserialize)]
    struct Detail {
        message: Option<String>,
    }
    if let Ok(error) = serde_json::from_slice::<Error>(body) {
        let details: Vec<String> = error
            .details
            .into_iter()
            .filter_map(|d| d.message)
            .collect();
        if !details.is_empty() {
            return details.join("; ");
        }
        if let Some(message) = error.message {
            return message;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// One write of `set`.
#[derive(Debug)]
pub(super) enum Step {
    /// Replace strategy `id` with `body` (the same strategy, another rollout).
    Update {
        id: String,
        body: Value,
    },
    /// Add the strategy `body`.
    Add {
        body: Value,
    },
    On,
    Off,
}

/// An HTTP answer.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) body: Vec<u8>,
}

/// A request that got no whole answer.
pub(super) struct Transport {
    pub(super) message: String,
    /// Worth another try whatever the request (no connection was made).
    pub(super) retry: bool,
    /// The request may have reached the server.
    pub(super) sent: bool,
}

/// A failure `send` may try again.
pub(super) struct Trouble {
    pub(super) message: String,
    pub(super) retry: bool,
}

/// What a feature look-up found.
pub(super) enum Lookup {
    Found(Feature),
    /// No feature by that name in the project: the project's environments, and what
    /// Unleash said.
    Missing {
        environments: Vec<String>,
        said: String,
    },
}

/// `GET /api/admin/projects/{project}/features/{name}`.
#[derive(Deserialize)]
pub(super) struct Feature {
    #[serde(default)]
    pub(super) environments: Vec<Environment>,
}

impl Feature {
    pub(super) fn environment_names(&self) -> Vec<String> {
        self.environments.iter().map(|e| e.name.clone()).collect()
    }
}

#[derive(Deserialize)]
pub(super) struct Environment {
    pub(super) name: String,
    pub(super) enabled: bool,
    #[serde(default)]
    pub(super) strategies: Vec<Strategy>,
}

/// A strategy, with everything a `PUT` of it must send back unchanged.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct Strategy {
    pub(super) id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) disabled: Option<bool>,
    #[serde(default, rename = "sortOrder")]
    pub(super) sort_order: Option<f64>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) parameters: serde_json::Map<String, Value>,
    #[serde(default)]
    pub(super) constraints: Vec<Value>,
    #[serde(default)]
    pub(super) variants: Vec<Value>,
    #[serde(default)]
    pub(super) segments: Vec<Value>,
}

impl Strategy {
    /// The `rollout` parameter (a string, or a number where a person wrote one).
    pub(super) fn rollout(&self) -> Option<f64> {
        match self.parameters.get("rollout")? {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The body of a `PUT` that makes this strategy a `flexibleRollout` at `p` and keeps
    /// the rest (a `PUT` replaces constraints and variants; segments stay unless sent).
    pub(super) fn with_rollout(&self, feature: &str, p: f64) -> Value {
        let mut parameters = self.parameters.clone();
        parameters.insert("rollout".into(), Value::String(rollout_text(p)));
        parameters
            .entry("stickiness")
            .or_insert_with(|| Value::String("default".into()));
        parameters
            .entry("groupId")
            .or_insert_with(|| Value::String(feature.into()));
        let mut body = json!({
            "name": FLEXIBLE_ROLLOUT,
            "parameters": parameters,
            "constraints": self.constraints,
            "variants": self.variants,
            "segments": self.segments,
            "disabled": false,
        });
        if let Some(title) = &self.title {
            body["title"] = Value::String(title.clone());
        }
        if let Some(order) = self.sort_order {
            body["sortOrder"] = json!(order);
        }
        body
    }
}

/// `GET /api/admin/projects/{project}`.
#[derive(Deserialize)]
pub(super) struct Project {
    #[serde(default)]
    pub(super) environments: Vec<ProjectEnvironment>,
}

/// An environment of a project: `{"environment": "production", …}` (or, from older
/// servers, its name alone).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum ProjectEnvironment {
    Named { environment: String },
    Bare(String),
}

impl ProjectEnvironment {
    pub(super) fn name(self) -> String {
        match self {
            ProjectEnvironment::Named { environment } => environment,
            ProjectEnvironment::Bare(name) => name,
        }
    }
}

/// `GET /api/admin/projects/{project}/features`: each feature's environments, without
/// their strategies.
#[derive(Deserialize)]
pub(super) struct ProjectFeatures {
    #[serde(default)]
    pub(super) features: Vec<ListedFeature>,
}

#[derive(Deserialize)]
pub(super) struct ListedFeature {
    pub(super) name: String,
    #[serde(default)]
    pub(super) environments: Vec<ListedEnvironment>,
}

impl ListedFeature {
    /// The feature as far as the list tells it (no strategies: no percentage).
    pub(super) fn without_strategies(&self) -> Feature {
        Feature {
            environments: self
                .environments
                .iter()
                .map(|e| Environment {
                    name: e.name.clone(),
                    enabled: e.enabled,
                    strategies: Vec::new(),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ListedEnvironment {
    pub(super) name: String,
    pub(super) enabled: bool,
    #[serde(default, rename = "hasEnabledStrategies")]
    pub(super) has_enabled_strategies: Option<bool>,
}
