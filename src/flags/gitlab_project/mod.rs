//! `gitlab-project`: GitLab's project feature flags (`/projects/:id/feature_flags`, flags
//! of `version: new_version_flag`, which a Developer may change), the default backend on a
//! GitLab tracker.
//!
//! A flag is `active` or not, and has Unleash strategies, each scoped to environments
//! (`production`, `*` for every one, `review/*`). In an environment the flag is what the
//! strategies whose scopes match it say together (GitLab hands them all to Unleash, which
//! turns the flag on when any of them does): `default` is on for everyone; `flexibleRollout`
//! (`parameters.rollout`) and `gradualRolloutUserId` (`parameters.percentage`) are on for
//! that share; user lists count as 0 %. Without an environment, the strategies scoped `*`.
//!
//! `set` changes only the strategies scoped exactly to the environment (`*` without one):
//! a percentage is one `flexibleRollout` there, updated in place (its `id` sent, its
//! `groupId` and `stickiness` kept) and any other strategy of that scope removed
//! (`_destroy`), so 1 → 5 → 50 → 100 % never piles up strategies; on is a `default` strategy
//! there; off removes that scope's strategies, or, without an environment, makes the flag
//! inactive. Each is one `PUT` (or `POST` for a new flag, `DELETE` to delete it). The write
//! works from the caller's read when it is recent (`Remembered`), so `get` then `set` is
//! two requests; a write GitLab refuses because the flag changed meanwhile is made again,
//! once, from a fresh read. A change that another strategy would undo (a `*` strategy at
//! 100 % while production should go to 5 %) is refused before any request, saying which.

use async_trait::async_trait;
use gitlab::api::common::NameOrId;
use gitlab::api::endpoint_prelude::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

mod plan;

use plan::{plan, Plan, Step};

use super::gitlab_api::{self as api, Call, Remembered};
use super::{FlagError, Flags};
use crate::core::facts::{FlagState, FlagWant};
use crate::tracker::gitlab::http::Http;
use crate::tracker::gitlab::Config;

/// The scope that matches every environment.
const EVERY: &str = "*";

pub struct GitLabProjectFlags {
    http: Http,
    url: String,
    project: String,
    environment: Option<String>,
    seen: Remembered<GlFeatureFlag>,
}

impl GitLabProjectFlags {
    /// The flags of `config.project` on `config.url`, sent the way the GitLab tracker sends
    /// its requests (`config.policy`: timeouts, retries, waits) with `token` (`GITLAB_TOKEN`)
    /// as `PRIVATE-TOKEN`. `environment` is the one `list` reports (`[flags] environment`).
    /// Nothing is sent until the first call.
    pub fn new(
        config: &Config,
        token: &str,
        environment: Option<&str>,
    ) -> Result<GitLabProjectFlags, FlagError> {
        Ok(GitLabProjectFlags {
            http: api::transport(config, token)?,
            url: crate::http::redact::url(&config.url),
            project: config.project.clone(),
            environment: environment.map(str::to_string),
            seen: Remembered::default(),
        })
    }

    fn flags_path(&self) -> String {
        format!("projects/{}/feature_flags", NameOrId::from(&self.project))
    }

    fn flag_path(&self, name: &str) -> Result<String, FlagError> {
        Ok(format!(
            "{}/{}",
            self.flags_path(),
            api::segment(&self.describe(), name)?
        ))
    }

    /// A failed request about flag `name` (`None`: the list) as a `FlagError`.
    fn refused(&self, f: crate::http::retry::Failed, name: Option<&str>) -> FlagError {
        let backend = self.describe();
        let what = name.map_or("the flag list".to_string(), |n| format!("flag `{n}`"));
        api::refused(f, &backend, &backend, &what)
    }

    /// The flag as GitLab has it now (`None`: no such flag); remembered for a write.
    async fn read(&self, name: &str) -> Result<Option<GlFeatureFlag>, FlagError> {
        let call = Call::get(self.flag_path(name)?);
        let flag = match self.http.get::<GlFeatureFlag, _>(&call).await {
            Ok(flag) => Some(flag),
            Err(f) if f.status == Some(404) => None,
            Err(f) => return Err(self.refused(f, Some(name))),
        };
        self.seen.keep(name, flag.clone());
        Ok(flag)
    }

    /// Sends what `plan` says; the flag after it (`None`: deleted).
    async fn write(&self, name: &str, step: Step) -> Result<Option<GlFeatureFlag>, Written> {
        let create = matches!(step, Step::Create(_));
        let sent = match step {
            Step::Create(body) => {
                let call = Call::json(Method::POST, self.flags_path(), body);
                self.http.get::<GlFeatureFlag, _>(&call).await.map(Some)
            }
            Step::Update(body) => {
                let call = Call::json(Method::PUT, self.flag_path(name)?, body);
                self.http.get::<GlFeatureFlag, _>(&call).await.map(Some)
            }
            Step::Delete => {
                let call = Call::delete(self.flag_path(name)?);
                match self.http.send(&call, None).await {
                    // Deleted, or gone already (a retry whose first answer was lost).
                    Ok(_) => Ok(None),
                    Err(f) if f.status == Some(404) => Ok(None),
                    Err(f) => Err(f),
                }
            }
        };
        sent.map_err(|f| {
            // The flag, or one of its strategies, is not what the plan was made from: gone
            // (404), or made by someone else meanwhile ("Name has already been taken").
            let stale = match (create, f.status) {
                (false, Some(400 | 404 | 422)) => true,
                (true, Some(400 | 422)) => f.message.contains("taken"),
                _ => false,
            };
            let e = self.refused(f, Some(name));
            if stale {
                Written::Stale(e)
            } else {
                Written::Failed(e)
            }
        })
    }
}

/// Why a write did not happen: because the flag is not what the plan was made from (worth
/// one more try from a fresh read), or for good.
enum Written {
    Stale(FlagError),
    Failed(FlagError),
}

impl From<FlagError> for Written {
    fn from(e: FlagError) -> Written {
        Written::Failed(e)
    }
}

#[async_trait]
impl Flags for GitLabProjectFlags {
    fn describe(&self) -> String {
        format!("gitlab-project at {} ({})", self.url, self.project)
    }

    /// GitLab's rule for feature flag names (`Operations::FeatureFlag`'s validation).
    fn refuses_name(&self, name: &str) -> Option<String> {
        let b = name.as_bytes();
        let ok = b.first().is_some_and(u8::is_ascii_lowercase)
            && b.last()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
        (!ok).then(|| {
            "GitLab's project feature flag names are lowercase letters, digits, `_` and `-`, starting with a letter and ending with a letter or digit".to_string()
        })
    }

    fn kind(&self) -> &'static str {
        "gitlab-project"
    }

    /// One request: `GET /projects/:id/feature_flags/:name` (404: missing).
    async fn get(&self, name: &str, environment: Option<&str>) -> Result<FlagState, FlagError> {
        let flag = self.read(name).await?;
        Ok(state(name, flag.as_ref(), environment))
    }

    /// One write (`POST`, `PUT` or `DELETE`) after the caller's `get`; a read first when
    /// there was none in the last moments.
    async fn set(
        &self,
        name: &str,
        environment: Option<&str>,
        want: &FlagWant,
    ) -> Result<FlagState, FlagError> {
        if let FlagWant::Percentage(p) = want {
            api::check_percentage(*p)?;
            if p.fract() != 0.0 {
                return Err(FlagError::Invalid(format!(
                    "{} takes whole percentages (a flexibleRollout's rollout is an integer): {p}",
                    self.describe()
                )));
            }
        }
        if let Some(env) = environment {
            if env.is_empty() || env.chars().any(char::is_control) {
                return Err(FlagError::Invalid(format!(
                    "`{}` cannot be an environment",
                    env.escape_debug()
                )));
            }
        }
        api::segment(&self.describe(), name)?;
        let (mut current, mut fresh) = match self.seen.recall(name) {
            Some(flag) => (flag, false),
            None => (self.read(name).await?, true),
        };
        loop {
            let step = match plan(name, current.as_ref(), environment, want) {
                Plan::Nothing => return Ok(state(name, current.as_ref(), environment)),
                Plan::Refuse(why) => {
                    return Err(FlagError::Unsupported(format!(
                        "{}: {why}",
                        self.describe()
                    )))
                }
                Plan::Send(step) => step,
            };
            match self.write(name, step).await {
                Ok(after) => {
                    self.seen.keep(name, after.clone());
                    return Ok(state(name, after.as_ref(), environment));
                }
                Err(Written::Stale(e)) if !fresh => {
                    let before = current.take();
                    current = self.read(name).await?;
                    fresh = true;
                    if current == before {
                        return Err(e);
                    }
                }
                Err(Written::Stale(e) | Written::Failed(e)) => {
                    self.seen.forget(name);
                    return Err(e);
                }
            }
        }
    }

    /// Every flag of the project (100 a page), in the configured environment.
    async fn list(&self) -> Result<Vec<FlagState>, FlagError> {
        let call = Call::get(self.flags_path());
        let flags: Vec<GlFeatureFlag> = self
            .http
            .all(&call)
            .await
            .map_err(|f| self.refused(f, None))?;
        let env = self.environment.as_deref();
        Ok(flags
            .iter()
            .map(|flag| state(&flag.name, Some(flag), env))
            .collect())
    }
}

/// A project feature flag as GitLab answers it (`API::Entities::FeatureFlag`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct GlFeatureFlag {
    pub name: String,
    pub active: bool,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub strategies: Vec<GlStrategy>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct GlStrategy {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default)]
    pub scopes: Vec<GlScope>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct GlScope {
    pub id: u64,
    pub environment_scope: String,
}

impl GlStrategy {
    /// The share of users it is on for: `None` for everyone (`default`), 0 for a strategy
    /// of named users only.
    fn share(&self) -> Option<f64> {
        let number = |key: &str| {
            self.parameters.get(key).and_then(|v| match v {
                Value::String(s) => s.trim().parse::<f64>().ok(),
                v => v.as_f64(),
            })
        };
        match self.name.as_str() {
            "default" => None,
            "flexibleRollout" => Some(number("rollout").unwrap_or(0.0)),
            "gradualRolloutUserId" => Some(number("percentage").unwrap_or(0.0)),
            _ => Some(0.0),
        }
    }

    fn scoped(&self, scope: &str) -> Option<&GlScope> {
        self.scopes.iter().find(|s| s.environment_scope == scope)
    }

    /// Whether it applies in `environment` (`None`: the strategies of every environment).
    fn applies(&self, environment: Option<&str>) -> bool {
        match environment {
            None => self.scoped(EVERY).is_some(),
            Some(env) => self
                .scopes
                .iter()
                .any(|s| scope_matches(&s.environment_scope, env)),
        }
    }
}

/// GitLab's environment scopes: `*` stands for any text (`*`, `review/*`).
fn scope_matches(scope: &str, environment: &str) -> bool {
    let parts: Vec<&str> = scope.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return scope == environment;
    };
    if parts.len() == 1 {
        return scope == environment;
    }
    let Some(mut rest) = environment.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The flag's state in `environment` from GitLab's answer (`None`: no such flag).
fn state(name: &str, flag: Option<&GlFeatureFlag>, environment: Option<&str>) -> FlagState {
    let (exists, enabled, percentage) = match flag {
        None => (false, false, None),
        Some(flag) if !flag.active => (true, false, None),
        Some(flag) => {
            let shares: Vec<Option<f64>> = flag
                .strategies
                .iter()
                .filter(|s| s.applies(environment))
                .map(GlStrategy::share)
                .collect();
            if shares.is_empty() {
                (true, false, None)
            } else if shares.iter().any(Option::is_none) {
                (true, true, None)
            } else {
                let most = shares.into_iter().flatten().fold(0.0, f64::max);
                (true, true, Some(most))
            }
        }
    };
    FlagState {
        name: name.to_string(),
        exists,
        enabled,
        percentage,
        environment: environment.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_gitlab_s_rule() {
        let config = Config::new("http://h", "g/p");
        let flags = GitLabProjectFlags::new(&config, "t", None).unwrap();
        for ok in ["gitaly_find_commit", "a", "a-b_c9", "x1"] {
            assert_eq!(flags.refuses_name(ok), None, "{ok}");
        }
        for bad in ["GITALY_FIND_COMMIT", "", "1a", "a_", "a-", "_a", "a.b", "ä"] {
            assert!(flags.refuses_name(bad).is_some(), "{bad}");
        }
    }

    fn strategy(id: u64, name: &str, parameters: Value, scopes: &[(u64, &str)]) -> GlStrategy {
        GlStrategy {
            id,
            name: name.into(),
            parameters: parameters.as_object().cloned().unwrap_or_default(),
            scopes: scopes
                .iter()
                .map(|(id, s)| GlScope {
                    id: *id,
                    environment_scope: s.to_string(),
                })
                .collect(),
        }
    }

    fn flag(active: bool, strategies: Vec<GlStrategy>) -> GlFeatureFlag {
        GlFeatureFlag {
            name: "f".into(),
            active,
            version: Some("new_version_flag".into()),
            strategies,
        }
    }

    fn rollout(id: u64, p: &str, scopes: &[(u64, &str)]) -> GlStrategy {
        strategy(
            id,
            "flexibleRollout",
            json!({"groupId": "default", "rollout": p, "stickiness": "default"}),
            scopes,
        )
    }

    #[test]
    fn scopes_match_with_wildcards() {
        for (scope, env, matches) in [
            ("*", "production", true),
            ("production", "production", true),
            ("production", "staging", false),
            ("review/*", "review/feature-1", true),
            ("review/*", "production", false),
            ("*-canary", "gprd-canary", true),
            ("*-canary", "gprd", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "ac", false),
        ] {
            assert_eq!(scope_matches(scope, env), matches, "{scope} {env}");
        }
    }

    #[test]
    fn the_state_is_what_the_matching_strategies_say_together() {
        let prod = [(1, "production")];
        let f = flag(
            true,
            vec![
                rollout(1, "5", &prod),
                strategy(
                    2,
                    "gradualRolloutUserId",
                    json!({"groupId": "default", "percentage": "25"}),
                    &[(2, "staging")],
                ),
                strategy(3, "default", json!({}), &[(3, "review/*")]),
                strategy(4, "userWithId", json!({"userIds": "u1"}), &[(4, "canary")]),
            ],
        );
        let at = |env: Option<&str>| {
            let s = state("f", Some(&f), env);
            (s.enabled, s.percentage)
        };
        assert_eq!(at(Some("production")), (true, Some(5.0)));
        assert_eq!(at(Some("staging")), (true, Some(25.0)));
        assert_eq!(at(Some("review/x")), (true, None));
        assert_eq!(at(Some("canary")), (true, Some(0.0)));
        assert_eq!(at(Some("development")), (false, None));
        assert_eq!(at(None), (false, None), "nothing is scoped `*`");
        let off = flag(false, f.strategies.clone());
        assert!(!state("f", Some(&off), Some("production")).enabled);
        assert!(!state("f", None, Some("production")).exists);
    }

    #[test]
    fn a_percentage_updates_the_scopes_strategy_in_place() {
        let f = flag(
            true,
            vec![
                rollout(7, "5", &[(8, "production")]),
                rollout(9, "1", &[(10, "staging")]),
            ],
        );
        let p = plan(
            "f",
            Some(&f),
            Some("production"),
            &FlagWant::Percentage(50.0),
        );
        assert_eq!(
            p,
            Plan::Send(Step::Update(json!({"strategies": [{
                "id": 7, "name": "flexibleRollout",
                "parameters": {"groupId": "default", "rollout": "50", "stickiness": "default"}
            }]})))
        );
        assert_eq!(
            plan(
                "f",
                Some(&f),
                Some("production"),
                &FlagWant::Percentage(5.0)
            ),
            Plan::Nothing
        );
    }

    #[test]
    fn a_scope_shared_with_another_environment_is_split_off() {
        let f = flag(
            true,
            vec![rollout(7, "5", &[(8, "production"), (9, "staging")])],
        );
        let p = plan("f", Some(&f), Some("production"), &FlagWant::Enabled(true));
        assert_eq!(
            p,
            Plan::Send(Step::Update(json!({"strategies": [
                {"name": "default", "parameters": {}, "scopes": [{"environment_scope": "production"}]},
                {"id": 7, "scopes": [{"id": 8, "_destroy": true}]},
            ]})))
        );
    }

    #[test]
    fn a_wildcard_strategy_that_would_overrule_the_change_is_named() {
        let f = flag(true, vec![strategy(3, "default", json!({}), &[(4, "*")])]);
        let Plan::Refuse(why) = plan(
            "f",
            Some(&f),
            Some("production"),
            &FlagWant::Percentage(5.0),
        ) else {
            panic!("refused");
        };
        assert_eq!(
            why,
            "`f` cannot be at 5 % in `production`: its strategy 3 (default, scoped `*`) applies \
             there too and would keep it on; change that strategy's scopes first"
        );
        // Higher than the `*` strategy's share is fine: the two together are the higher.
        let f = flag(true, vec![rollout(3, "10", &[(4, "*")])]);
        assert!(matches!(
            plan(
                "f",
                Some(&f),
                Some("production"),
                &FlagWant::Percentage(50.0)
            ),
            Plan::Send(_)
        ));
    }

    #[test]
    fn off_without_an_environment_makes_the_flag_inactive() {
        let f = flag(true, vec![rollout(3, "10", &[(4, "*")])]);
        assert_eq!(
            plan("f", Some(&f), None, &FlagWant::Enabled(false)),
            Plan::Send(Step::Update(json!({"active": false})))
        );
        assert_eq!(
            plan("f", Some(&f), Some("production"), &FlagWant::Enabled(false)),
            Plan::Refuse("`f` cannot be off in `production`: its strategy 3 (flexibleRollout, scoped `*`) applies there too and would keep it at 10 %; change that strategy's scopes first".into())
        );
    }

    #[test]
    fn a_missing_flag_is_created_with_one_strategy() {
        assert_eq!(
            plan("f", None, Some("production"), &FlagWant::Percentage(1.0)),
            Plan::Send(Step::Create(json!({
                "name": "f", "version": "new_version_flag", "active": true,
                "strategies": [{
                    "name": "flexibleRollout",
                    "parameters": {"groupId": "default", "rollout": "1", "stickiness": "default"},
                    "scopes": [{"environment_scope": "production"}],
                }],
            })))
        );
        assert_eq!(plan("f", None, None, &FlagWant::Delete), Plan::Nothing);
    }

    #[test]
    fn a_gradual_rollout_becomes_a_flexible_one_sticky_on_user_ids() {
        let f = flag(
            true,
            vec![strategy(
                2,
                "gradualRolloutUserId",
                json!({"groupId": "mine", "percentage": "25"}),
                &[(2, "production")],
            )],
        );
        let Plan::Send(Step::Update(body)) = plan(
            "f",
            Some(&f),
            Some("production"),
            &FlagWant::Percentage(50.0),
        ) else {
            panic!("an update");
        };
        assert_eq!(
            body["strategies"][0],
            json!({"id": 2, "name": "flexibleRollout", "parameters": {"groupId": "mine", "rollout": "50", "stickiness": "userId"}})
        );
    }
}
