//! `gitlab-instance`: the Features API of a self-managed GitLab (`/api/v4/features`), the
//! Flipper flags GitLab's own development flags are, set with an administrator's token.
//!
//! A feature's `state` is `on`, `off` or `conditional`, with gates: `boolean`,
//! `percentage_of_time`, `percentage_of_actors` (and actors, groups). Conditional on a
//! percentage is that percentage (the larger, when both are set); conditional on actors or
//! groups only is on for 0 %. GitLab has no single-feature GET, so `get` lists every
//! feature (`GET /features`) and finds the name. `set` is one `POST /features/:name`:
//! `value=true|false` (which clears the other gates, as Flipper does) or
//! `value=P&key=percentage_of_time`; `Delete` is `DELETE /features/:name`.
//!
//! There are no environments: a call with one is `Unsupported`, as is what the API cannot
//! do in one request: lowering a fully-on feature to a percentage (the boolean gate stays
//! on until the feature is turned off) or below its percentage of actors.

use async_trait::async_trait;
use gitlab::api::endpoint_prelude::Method;
use serde::Deserialize;
use serde_json::Value;

use super::gitlab_api::{self as api, Call, Remembered};
use super::{FlagError, Flags};
use crate::core::facts::{FlagState, FlagWant};
use crate::http::retry::Failed;
use crate::tracker::gitlab::http::Http;
use crate::tracker::gitlab::Config;

pub struct GitLabInstanceFlags {
    http: Http,
    url: String,
    seen: Remembered<GlFeature>,
}

impl GitLabInstanceFlags {
    /// The features of the GitLab at `config.url` (`config.project` is not used), sent the
    /// way the GitLab tracker sends its requests (`config.policy`) with `token`
    /// (`GITLAB_TOKEN`, an administrator's) as `PRIVATE-TOKEN`. Nothing is sent until the
    /// first call.
    pub fn new(config: &Config, token: &str) -> Result<GitLabInstanceFlags, FlagError> {
        Ok(GitLabInstanceFlags {
            http: api::transport(config, token)?,
            url: crate::http::redact::url(&config.url),
            seen: Remembered::default(),
        })
    }

    fn refused(&self, f: Failed, what: &str) -> FlagError {
        let backend = self.describe();
        let forbidden = format!("{backend} (the Features API takes only an administrator's token)");
        api::refused(f, &backend, &forbidden, what)
    }

    fn no_environments(&self, environment: Option<&str>) -> Result<(), FlagError> {
        match environment {
            None => Ok(()),
            Some(env) => Err(FlagError::Unsupported(format!(
                "gitlab-instance has no environments: `{env}` cannot be given (its features are \
                 the whole instance's; leave out the environment)"
            ))),
        }
    }

    /// Every feature GitLab has persisted, each remembered for a write.
    async fn all(&self) -> Result<Vec<GlFeature>, FlagError> {
        let call = Call::get("features".to_string());
        let features: Vec<GlFeature> = self
            .http
            .get(&call)
            .await
            .map_err(|f| self.refused(f, "the feature list"))?;
        for f in &features {
            self.seen.keep(&f.name, Some(f.clone()));
        }
        Ok(features)
    }

    async fn read(&self, name: &str) -> Result<Option<GlFeature>, FlagError> {
        let found = self.all().await?.into_iter().find(|f| f.name == name);
        if found.is_none() {
            self.seen.keep(name, None);
        }
        Ok(found)
    }
}

#[async_trait]
impl Flags for GitLabInstanceFlags {
    fn describe(&self) -> String {
        format!("gitlab-instance at {}", self.url)
    }

    fn kind(&self) -> &'static str {
        "gitlab-instance"
    }

    /// One request: `GET /features`, the name found in it.
    async fn get(&self, name: &str, environment: Option<&str>) -> Result<FlagState, FlagError> {
        self.no_environments(environment)?;
        api::segment(&self.describe(), name)?;
        let feature = self.read(name).await?;
        Ok(state(name, feature.as_ref()))
    }

    /// One request (`POST` or `DELETE /features/:name`) after the caller's `get`; a read
    /// first when there was none in the last moments and the write depends on it.
    async fn set(
        &self,
        name: &str,
        environment: Option<&str>,
        want: &FlagWant,
    ) -> Result<FlagState, FlagError> {
        self.no_environments(environment)?;
        if let FlagWant::Percentage(p) = want {
            api::check_percentage(*p)?;
        }
        let path = format!("features/{}", api::segment(&self.describe(), name)?);
        let what = format!("feature `{name}`");
        let (value, key) = match want {
            FlagWant::Delete => {
                let call = Call::delete(path);
                self.http
                    .send(&call, None)
                    .await
                    .map_err(|f| self.refused(f, &what))?;
                self.seen.keep(name, None);
                return Ok(state(name, None));
            }
            FlagWant::Enabled(on) => (on.to_string(), None),
            // GitLab reads `0` as `false`: off, as 0 % is.
            FlagWant::Percentage(p) => {
                let current = match self.seen.recall(name) {
                    Some(feature) => feature,
                    None => self.read(name).await?,
                };
                if let Some(why) = current.as_ref().and_then(|f| cannot_lower(f, *p)) {
                    return Err(FlagError::Unsupported(format!(
                        "{}: `{name}` {why}",
                        self.describe()
                    )));
                }
                (api::percent_text(*p), Some("percentage_of_time"))
            }
        };
        let mut form = vec![("value", value)];
        if let Some(key) = key {
            form.push(("key", key.to_string()));
        }
        let call = Call::form(Method::POST, path, &form);
        match self.http.get::<GlFeature, _>(&call).await {
            Ok(feature) => {
                self.seen.keep(name, Some(feature.clone()));
                Ok(state(name, Some(&feature)))
            }
            Err(f) => {
                self.seen.forget(name);
                Err(self.refused(f, &what))
            }
        }
    }

    /// Every persisted feature (one request).
    async fn list(&self) -> Result<Vec<FlagState>, FlagError> {
        Ok(self
            .all()
            .await?
            .iter()
            .map(|f| state(&f.name, Some(f)))
            .collect())
    }
}

/// A feature as the Features API answers it (`API::Entities::Feature`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct GlFeature {
    pub name: String,
    pub state: String,
    #[serde(default)]
    pub gates: Vec<GlGate>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct GlGate {
    pub key: String,
    #[serde(default)]
    pub value: Value,
}

impl GlFeature {
    fn gate(&self, key: &str) -> Option<&Value> {
        self.gates.iter().find(|g| g.key == key).map(|g| &g.value)
    }

    fn percentage(&self, key: &str) -> Option<f64> {
        self.gate(key)
            .and_then(|v| match v {
                Value::String(s) => s.trim().parse::<f64>().ok(),
                v => v.as_f64(),
            })
            .filter(|p| *p > 0.0)
    }
}

/// Why a percentage of time `p` cannot be had in one request, if it cannot.
fn cannot_lower(feature: &GlFeature, p: f64) -> Option<String> {
    let shown = api::percent_text(p);
    if p >= 100.0 {
        return None;
    }
    if feature.gate("boolean") == Some(&Value::Bool(true)) {
        return Some(format!(
            "is fully on; the Features API cannot lower it to {shown} % (its boolean gate \
             stays on): turn it off first, then set {shown} %"
        ));
    }
    match feature.percentage("percentage_of_actors") {
        Some(actors) if actors > p => Some(format!(
            "is on for {} % of actors, which a percentage of time cannot lower to {shown} %: \
             turn it off first, then set {shown} %",
            api::percent_text(actors)
        )),
        _ => None,
    }
}

fn state(name: &str, feature: Option<&GlFeature>) -> FlagState {
    let (exists, enabled, percentage) = match feature {
        None => (false, false, None),
        Some(f) => match f.state.as_str() {
            "on" => (true, true, None),
            "conditional" => {
                let shares = [
                    f.percentage("percentage_of_time"),
                    f.percentage("percentage_of_actors"),
                ];
                let most = shares.into_iter().flatten().fold(0.0, f64::max);
                (true, true, Some(most))
            }
            _ => (true, false, None),
        },
    };
    FlagState {
        name: name.to_string(),
        exists,
        enabled,
        percentage,
        environment: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(state: &str, gates: &[(&str, Value)]) -> GlFeature {
        GlFeature {
            name: "f".into(),
            state: state.into(),
            gates: gates
                .iter()
                .map(|(k, v)| GlGate {
                    key: k.to_string(),
                    value: v.clone(),
                })
                .collect(),
        }
    }

    #[test]
    fn states_come_from_the_state_and_the_percentage_gates() {
        use serde_json::json;
        let at = |f: GlFeature| {
            let s = state("f", Some(&f));
            (s.enabled, s.percentage)
        };
        assert_eq!(at(feature("on", &[("boolean", json!(true))])), (true, None));
        assert_eq!(
            at(feature("off", &[("boolean", json!(false))])),
            (false, None)
        );
        assert_eq!(
            at(feature(
                "conditional",
                &[("boolean", json!(false)), ("percentage_of_time", json!(30))]
            )),
            (true, Some(30.0))
        );
        assert_eq!(
            at(feature("on", &[("percentage_of_actors", json!(34))])),
            (true, None),
            "as GitLab's documented example has it"
        );
        assert_eq!(
            at(feature(
                "conditional",
                &[
                    ("percentage_of_actors", json!(34)),
                    ("percentage_of_time", json!(10))
                ]
            )),
            (true, Some(34.0))
        );
        assert_eq!(
            at(feature("conditional", &[("actors", json!(["User;1"]))])),
            (true, Some(0.0))
        );
        assert!(!state("f", None).exists);
    }

    #[test]
    fn what_one_request_cannot_lower_is_named() {
        use serde_json::json;
        let on = feature("on", &[("boolean", json!(true))]);
        assert!(cannot_lower(&on, 50.0).unwrap().starts_with("is fully on"));
        assert_eq!(cannot_lower(&on, 100.0), None);
        let actors = feature("conditional", &[("percentage_of_actors", json!(34))]);
        assert!(cannot_lower(&actors, 10.0)
            .unwrap()
            .starts_with("is on for 34 % of actors"));
        assert_eq!(cannot_lower(&actors, 50.0), None);
    }
}
