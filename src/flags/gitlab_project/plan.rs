//! What one `set` sends: the one request that makes a GitLab feature flag what is wanted in
//! an environment scope — a create, an update of its strategies (one kept and updated in
//! place, the others of the scope removed) or a delete — or why GitLab's flag cannot be
//! made so by changing this scope.

use serde_json::{json, Map, Value};

use super::{state, GlFeatureFlag, GlScope, GlStrategy, EVERY};
use crate::core::facts::{FlagState, FlagWant};
use crate::flags::gitlab_api as api;

/// What to send.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    Create(Value),
    Update(Value),
    Delete,
}

#[derive(Debug, PartialEq)]
pub(super) enum Plan {
    /// The flag is already so.
    Nothing,
    Send(Step),
    /// GitLab's flag cannot be made so by changing this scope: why, in a sentence.
    Refuse(String),
}

/// The one request that makes the flag `want` in `environment`, from `current` (`None`:
/// missing).
pub(super) fn plan(
    name: &str,
    current: Option<&GlFeatureFlag>,
    env: Option<&str>,
    want: &FlagWant,
) -> Plan {
    let scope = env.unwrap_or(EVERY);
    let Some(flag) = current else {
        return create(name, scope, want);
    };
    if *want == FlagWant::Delete {
        return Plan::Send(Step::Delete);
    }
    if want == &FlagWant::Enabled(false) && env.is_none() {
        return if flag.active {
            Plan::Send(Step::Update(json!({ "active": false })))
        } else {
            Plan::Nothing
        };
    }
    let (changes, after) = strategy_changes(flag, scope, want);
    let mut body = Map::new();
    let turns_on = !matches!(want, FlagWant::Enabled(false));
    if turns_on && !flag.active {
        body.insert("active".into(), json!(true));
    }
    if !changes.is_empty() {
        body.insert("strategies".into(), Value::Array(changes));
    }
    // Would the flag then be what is wanted, or does a strategy of another scope that
    // matches this environment (`*`, `review/*`) still turn it on further?
    let future = GlFeatureFlag {
        name: flag.name.clone(),
        active: flag.active || turns_on,
        version: flag.version.clone(),
        strategies: after,
    };
    let will = state(name, Some(&future), env);
    if !crate::core::drift::holds(&will, want) {
        return Plan::Refuse(overruled(flag, scope, env, want, &will));
    }
    if body.is_empty() {
        Plan::Nothing
    } else {
        Plan::Send(Step::Update(Value::Object(body)))
    }
}

/// A flag that does not exist yet, made as `want` in `scope`.
pub(super) fn create(name: &str, scope: &str, want: &FlagWant) -> Plan {
    match want {
        FlagWant::Delete => Plan::Nothing,
        FlagWant::Enabled(false) => Plan::Send(Step::Create(json!({
            "name": name,
            "version": "new_version_flag",
            "active": false,
        }))),
        FlagWant::Percentage(_) | FlagWant::Enabled(true) => {
            let mut strategy = wanted(want, None);
            strategy["scopes"] = json!([{ "environment_scope": scope }]);
            Plan::Send(Step::Create(json!({
                "name": name,
                "version": "new_version_flag",
                "active": true,
                "strategies": [strategy],
            })))
        }
    }
}

/// The strategy changes that make the flag `want` in exactly `scope` (one strategy of the
/// scope is kept and updated in place, the others go), and the strategies after them.
pub(super) fn strategy_changes(
    flag: &GlFeatureFlag,
    scope: &str,
    want: &FlagWant,
) -> (Vec<Value>, Vec<GlStrategy>) {
    let own: Vec<&GlStrategy> = flag
        .strategies
        .iter()
        .filter(|s| s.scoped(scope).is_some())
        .collect();
    let alone: Vec<&GlStrategy> = own
        .iter()
        .copied()
        .filter(|s| s.scopes.len() == 1)
        .collect();
    let keep: Option<&GlStrategy> = match want {
        FlagWant::Enabled(false) | FlagWant::Delete => None,
        FlagWant::Enabled(true) | FlagWant::Percentage(_) => {
            let kind = match want {
                FlagWant::Enabled(true) => "default",
                _ => "flexibleRollout",
            };
            alone
                .iter()
                .find(|s| s.name == kind)
                .or(alone.first())
                .copied()
        }
    };
    let mut changes: Vec<Value> = Vec::new();
    let mut after: Vec<GlStrategy> = flag
        .strategies
        .iter()
        .filter(|s| s.scoped(scope).is_none())
        .cloned()
        .collect();
    if !matches!(want, FlagWant::Enabled(false)) {
        let target = wanted(want, keep);
        match keep {
            Some(kept) => {
                if kept.name != target["name"]
                    || Value::Object(kept.parameters.clone()) != target["parameters"]
                {
                    let mut change = target.clone();
                    change["id"] = json!(kept.id);
                    changes.push(change);
                }
            }
            None => {
                let mut change = target.clone();
                change["scopes"] = json!([{ "environment_scope": scope }]);
                changes.push(change);
            }
        }
        after.push(GlStrategy {
            id: keep.map_or(0, |k| k.id),
            name: target["name"].as_str().unwrap_or_default().to_string(),
            parameters: target["parameters"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
            scopes: vec![GlScope {
                id: 0,
                environment_scope: scope.to_string(),
            }],
        });
    }
    for s in own.iter().filter(|s| keep.is_none_or(|k| k.id != s.id)) {
        if s.scopes.len() == 1 {
            changes.push(json!({ "id": s.id, "_destroy": true }));
        } else {
            let Some(mine) = s.scoped(scope) else {
                continue;
            };
            changes.push(json!({ "id": s.id, "scopes": [{ "id": mine.id, "_destroy": true }] }));
            let mut rest = (*s).clone();
            rest.scopes.retain(|x| x.id != mine.id);
            after.push(rest);
        }
    }
    (changes, after)
}

/// The strategy `want` asks for, keeping what it can of `kept` (its `groupId` and
/// `stickiness`; a `gradualRolloutUserId` becomes a `flexibleRollout` sticky on user ids).
pub(super) fn wanted(want: &FlagWant, kept: Option<&GlStrategy>) -> Value {
    let FlagWant::Percentage(p) = want else {
        return json!({ "name": "default", "parameters": {} });
    };
    let param = |key: &str| {
        kept.and_then(|k| k.parameters.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (group, stickiness) = match kept.map(|k| k.name.as_str()) {
        Some("flexibleRollout") => (param("groupId"), param("stickiness")),
        Some("gradualRolloutUserId") => (param("groupId"), Some("userId".to_string())),
        _ => (None, None),
    };
    json!({
        "name": "flexibleRollout",
        "parameters": {
            "groupId": group.unwrap_or_else(|| "default".into()),
            "rollout": api::percent_text(*p),
            "stickiness": stickiness.unwrap_or_else(|| "default".into()),
        }
    })
}

/// Why changing `scope` cannot make the flag `want` in `env`: the strategy of another scope
/// that still applies there.
pub(super) fn overruled(
    flag: &GlFeatureFlag,
    scope: &str,
    env: Option<&str>,
    want: &FlagWant,
    will: &FlagState,
) -> String {
    let other = flag
        .strategies
        .iter()
        .find(|s| s.scoped(scope).is_none() && s.applies(env));
    let wanted = match want {
        FlagWant::Percentage(p) => format!("at {} %", api::percent_text(*p)),
        FlagWant::Enabled(true) => "on".into(),
        FlagWant::Enabled(false) => "off".into(),
        FlagWant::Delete => "deleted".into(),
    };
    let would = match (will.enabled, will.percentage) {
        (false, _) => "off".to_string(),
        (true, None) => "on".to_string(),
        (true, Some(p)) => format!("at {} %", api::percent_text(p)),
    };
    let place = env.map_or("every environment".to_string(), |e| format!("`{e}`"));
    match other {
        Some(s) => {
            let scopes: Vec<&str> = s
                .scopes
                .iter()
                .map(|x| x.environment_scope.as_str())
                .collect();
            format!(
                "`{}` cannot be {wanted} in {place}: its strategy {} ({}, scoped `{}`) applies \
                 there too and would keep it {would}; change that strategy's scopes first",
                flag.name,
                s.id,
                s.name,
                scopes.join("`, `")
            )
        }
        None => format!(
            "`{}` cannot be {wanted} in {place}: it would be {would}",
            flag.name
        ),
    }
}
