//! The `gitlab-project` and `gitlab-instance` flag backends on the GitLab test server,
//! request by request: a missing flag, a rollout 1 → 5 → 50 → 100 % that updates one
//! strategy in place, on and off, delete, environments that do not match, tokens refused
//! (named backend, never the token), what the Features API cannot do, bad input refused
//! before any request, and GitLab's documented examples parsed.

use serde_json::{json, Value};
use shepherd::core::facts::{FlagState, FlagWant};
use shepherd::flags::gitlab_instance::GlFeature;
use shepherd::flags::gitlab_project::GlFeatureFlag;
use shepherd::flags::{FlagError, Flags, GitLabInstanceFlags, GitLabProjectFlags};
use shepherd::tracker::gitlab::Config;

use crate::gitlab_server::flags::{Gates, Strategy};
use crate::gitlab_server::{Fault, GitLabServer, Logged, PROJECT};
use crate::remote::quick_policy;
use crate::support::{block_on, fixture};

const DEV: &str = "glpat-flags-developer-0123456789";
const ADMIN: &str = "glpat-flags-admin-0123456789";
const REPORTER: &str = "glpat-flags-reporter-0123456789";
const STRANGER: &str = "glpat-flags-unknown-0123456789";

fn server() -> GitLabServer {
    let server =
        GitLabServer::start(&[(DEV, "developer"), (ADMIN, "root"), (REPORTER, "reporter")]);
    server.set_admin("root", true);
    server.set_reporter("reporter", true);
    server
}

fn config(server: &GitLabServer) -> Config {
    let mut config = Config::new(&server.url, PROJECT);
    config.policy = quick_policy();
    config
}

fn project(server: &GitLabServer, token: &str) -> GitLabProjectFlags {
    GitLabProjectFlags::new(&config(server), token, Some("production")).expect("a backend")
}

fn instance(server: &GitLabServer, token: &str) -> GitLabInstanceFlags {
    GitLabInstanceFlags::new(&config(server), token).expect("a backend")
}

/// `METHOD path` of each request after `/api/v4/`, with its status.
fn requests(log: &[Logged]) -> Vec<String> {
    log.iter()
        .map(|l| {
            format!(
                "{} {} {}",
                l.method,
                l.path.trim_start_matches("/api/v4/"),
                l.status
            )
        })
        .collect()
}

fn state(name: &str, env: Option<&str>, enabled: bool, percentage: Option<f64>) -> FlagState {
    FlagState {
        name: name.into(),
        exists: true,
        enabled,
        percentage,
        environment: env.map(str::to_string),
    }
}

/// `(name, parameters, scopes)` of each strategy of a flag on the server.
fn strategies(flag: &Value) -> Vec<(String, Value, Vec<String>)> {
    flag["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let scopes = s["scopes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["environment_scope"].as_str().unwrap().to_string())
                .collect();
            (
                s["name"].as_str().unwrap().to_string(),
                s["parameters"].clone(),
                scopes,
            )
        })
        .collect()
}

fn rollout(p: &str) -> Value {
    json!({"groupId": "default", "rollout": p, "stickiness": "default"})
}

const FLAGS: &str = "projects/group%2Fproject/feature_flags";

#[test]
fn a_missing_project_flag_is_created_and_rolled_out_in_one_strategy() {
    let server = server();
    let flags = project(&server, DEV);
    let path = format!("{FLAGS}/gitaly_find_commit");
    block_on(async {
        let missing = flags
            .get("gitaly_find_commit", Some("production"))
            .await
            .unwrap();
        assert_eq!(
            missing,
            FlagState {
                exists: false,
                ..state("gitaly_find_commit", Some("production"), false, None)
            }
        );
        assert_eq!(requests(&server.log()), [format!("GET {path} 404")]);

        // 1 %: created with one flexibleRollout strategy scoped production.
        server.clear_log();
        let after = flags
            .set(
                "gitaly_find_commit",
                Some("production"),
                &FlagWant::Percentage(1.0),
            )
            .await
            .unwrap();
        assert_eq!(
            after,
            state("gitaly_find_commit", Some("production"), true, Some(1.0))
        );
        let log = server.log();
        assert_eq!(
            requests(&log),
            [format!("POST {FLAGS} 201")],
            "the caller's read is used"
        );
        assert_eq!(
            log[0].json,
            Some(json!({
                "name": "gitaly_find_commit", "version": "new_version_flag", "active": true,
                "strategies": [{"name": "flexibleRollout", "parameters": rollout("1"),
                                "scopes": [{"environment_scope": "production"}]}],
            }))
        );
        let first_id =
            server.project_flag("gitaly_find_commit").unwrap()["strategies"][0]["id"].clone();

        // 5, 50, 100 %: each a get and one PUT that updates that strategy by its id.
        for p in [5.0, 50.0, 100.0] {
            server.clear_log();
            let before = flags
                .get("gitaly_find_commit", Some("production"))
                .await
                .unwrap();
            assert!(before.enabled && before.percentage != Some(p));
            let after = flags
                .set(
                    "gitaly_find_commit",
                    Some("production"),
                    &FlagWant::Percentage(p),
                )
                .await
                .unwrap();
            assert_eq!(
                after,
                state("gitaly_find_commit", Some("production"), true, Some(p))
            );
            let log = server.log();
            assert_eq!(
                requests(&log),
                [format!("GET {path} 200"), format!("PUT {path} 200")],
                "{p} %"
            );
            let text = format!("{p}");
            assert_eq!(
                log[1].json,
                Some(
                    json!({"strategies": [{"id": first_id, "name": "flexibleRollout", "parameters": rollout(&text)}]})
                )
            );
            let flag = server.project_flag("gitaly_find_commit").unwrap();
            assert_eq!(
                strategies(&flag),
                [(
                    "flexibleRollout".to_string(),
                    rollout(&text),
                    vec!["production".to_string()]
                )],
                "one strategy, never two"
            );
            assert_eq!(flag["strategies"][0]["id"], first_id);
        }

        // The same again writes nothing.
        server.clear_log();
        let same = flags
            .set(
                "gitaly_find_commit",
                Some("production"),
                &FlagWant::Percentage(100.0),
            )
            .await
            .unwrap();
        assert_eq!(same.percentage, Some(100.0));
        assert!(server.log().is_empty(), "{:?}", requests(&server.log()));
    });
}

#[test]
fn on_off_and_delete_in_an_environment_and_everywhere() {
    let server = server();
    server.set_project_flag(
        "new_pipeline",
        true,
        &[
            Strategy::rollout(50, &["production"]),
            Strategy::on(&["staging"]),
        ],
    );
    let flags = project(&server, DEV);
    let path = format!("{FLAGS}/new_pipeline");
    block_on(async {
        // On in production: the rollout strategy becomes a default one, in place.
        server.clear_log();
        let on = flags
            .set("new_pipeline", Some("production"), &FlagWant::Enabled(true))
            .await
            .unwrap();
        assert_eq!(on, state("new_pipeline", Some("production"), true, None));
        assert_eq!(
            requests(&server.log()),
            [format!("GET {path} 200"), format!("PUT {path} 200")],
            "no read of the caller's: one of its own"
        );
        let flag = server.project_flag("new_pipeline").unwrap();
        assert_eq!(
            strategies(&flag),
            [
                (
                    "default".to_string(),
                    json!({}),
                    vec!["production".to_string()]
                ),
                (
                    "default".to_string(),
                    json!({}),
                    vec!["staging".to_string()]
                ),
            ]
        );

        // Off in production: its strategy removed; staging keeps its own.
        flags.get("new_pipeline", Some("production")).await.unwrap();
        server.clear_log();
        let off = flags
            .set(
                "new_pipeline",
                Some("production"),
                &FlagWant::Enabled(false),
            )
            .await
            .unwrap();
        assert_eq!(off, state("new_pipeline", Some("production"), false, None));
        let log = server.log();
        assert_eq!(requests(&log), [format!("PUT {path} 200")]);
        let id = &log[0].json.as_ref().unwrap()["strategies"][0];
        assert_eq!(id["_destroy"], true);
        let flag = server.project_flag("new_pipeline").unwrap();
        assert_eq!(
            strategies(&flag),
            [(
                "default".to_string(),
                json!({}),
                vec!["staging".to_string()]
            )]
        );
        assert!(
            flags
                .get("new_pipeline", Some("staging"))
                .await
                .unwrap()
                .enabled
        );

        // Off everywhere: the flag made inactive, its strategies kept.
        server.clear_log();
        let off = flags
            .set("new_pipeline", None, &FlagWant::Enabled(false))
            .await
            .unwrap();
        assert_eq!(off, state("new_pipeline", None, false, None));
        let log = server.log();
        assert_eq!(requests(&log), [format!("PUT {path} 200")]);
        assert_eq!(log[0].json, Some(json!({"active": false})));
        assert_eq!(
            server.project_flag("new_pipeline").unwrap()["active"],
            false
        );
        assert!(
            !flags
                .get("new_pipeline", Some("staging"))
                .await
                .unwrap()
                .enabled
        );

        // On everywhere: active again, with a default strategy scoped `*`.
        server.clear_log();
        let on = flags
            .set("new_pipeline", None, &FlagWant::Enabled(true))
            .await
            .unwrap();
        assert_eq!(on, state("new_pipeline", None, true, None));
        let log = server.log();
        assert_eq!(requests(&log), [format!("PUT {path} 200")]);
        assert_eq!(
            log[0].json,
            Some(
                json!({"active": true, "strategies": [{"name": "default", "parameters": {}, "scopes": [{"environment_scope": "*"}]}]})
            )
        );
        assert_eq!(
            flags.get("new_pipeline", Some("production")).await.unwrap(),
            state("new_pipeline", Some("production"), true, None)
        );

        // Delete: one DELETE; deleting again finds nothing to do.
        server.clear_log();
        let gone = flags
            .set("new_pipeline", None, &FlagWant::Delete)
            .await
            .unwrap();
        assert!(!gone.exists && !gone.enabled);
        assert_eq!(requests(&server.log()), [format!("DELETE {path} 200")]);
        assert_eq!(server.project_flag("new_pipeline"), None);
        server.clear_log();
        flags
            .set("new_pipeline", None, &FlagWant::Delete)
            .await
            .unwrap();
        assert!(server.log().is_empty(), "remembered gone: nothing sent");
    });
}

#[test]
fn environments_match_by_scope_and_a_wildcard_that_overrules_is_named() {
    let server = server();
    server.set_project_flag(
        "review_apps",
        true,
        &[
            Strategy::gradual(25, &["staging"]),
            Strategy::on(&["review/*"]),
            Strategy::users("user1", &["canary"]),
        ],
    );
    let flags = project(&server, DEV);
    block_on(async {
        let at = |env: &'static str| {
            let flags = &flags;
            async move {
                let s = flags.get("review_apps", Some(env)).await.unwrap();
                (s.enabled, s.percentage)
            }
        };
        assert_eq!(
            at("production").await,
            (false, None),
            "no strategy matches production"
        );
        assert_eq!(at("staging").await, (true, Some(25.0)));
        assert_eq!(at("review/my-branch").await, (true, None));
        assert_eq!(at("canary").await, (true, Some(0.0)), "named users only");
        let none = flags.get("review_apps", None).await.unwrap();
        assert!(!none.enabled, "nothing is scoped `*`");

        // A `*` strategy at 100 % would keep production on whatever its own strategy says.
        server.set_project_flag("everywhere", true, &[Strategy::on(&["*"])]);
        flags.get("everywhere", Some("production")).await.unwrap();
        server.clear_log();
        let err = flags
            .set("everywhere", Some("production"), &FlagWant::Percentage(5.0))
            .await
            .unwrap_err();
        assert!(matches!(err, FlagError::Unsupported(_)), "{err:?}");
        let id = server.project_flag("everywhere").unwrap()["strategies"][0]["id"].clone();
        assert_eq!(
            err.to_string(),
            format!(
                "gitlab-project at {} (group/project): `everywhere` cannot be at 5 % in `production`: \
                 its strategy {id} (default, scoped `*`) applies there too and would keep it on; \
                 change that strategy's scopes first",
                server.url
            )
        );
        assert!(server.log().is_empty(), "refused before any request");
    });
}

#[test]
fn refused_tokens_name_the_backend_and_never_the_token() {
    let server = server();
    server.set_project_flag("f", true, &[Strategy::on(&["*"])]);
    block_on(async {
        let unknown = project(&server, STRANGER);
        let err = unknown.get("f", Some("production")).await.unwrap_err();
        assert!(
            matches!(err, FlagError::Unauthorized { status: 401, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "gitlab-project at {} (group/project) refused shepherd (401): check GITLAB_TOKEN",
                server.url
            )
        );

        // A Reporter reads, but may not write.
        let reporter = project(&server, REPORTER);
        assert!(reporter.get("f", Some("production")).await.unwrap().enabled);
        let err = reporter
            .set("f", None, &FlagWant::Enabled(false))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "gitlab-project at {} (group/project) refused shepherd (403): check GITLAB_TOKEN",
                server.url
            )
        );
        assert!(!format!("{err:?}").contains(REPORTER));

        // The Features API takes only an administrator's token.
        let developer = instance(&server, DEV);
        let err = developer.get("f", None).await.unwrap_err();
        assert!(
            matches!(err, FlagError::Unauthorized { status: 403, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "gitlab-instance at {} (the Features API takes only an administrator's token) \
                 refused shepherd (403): check GITLAB_TOKEN",
                server.url
            )
        );
        let err = instance(&server, STRANGER).list().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "gitlab-instance at {} refused shepherd (401): check GITLAB_TOKEN",
                server.url
            )
        );
        for token in [DEV, REPORTER, STRANGER] {
            assert!(!format!("{err:?}").contains(token));
        }
    });
}

#[test]
fn bad_input_is_refused_before_any_request_or_with_gitlabs_words() {
    let server = server();
    let flags = project(&server, DEV);
    let features = instance(&server, ADMIN);
    block_on(async {
        for want in [
            FlagWant::Percentage(150.0),
            FlagWant::Percentage(-1.0),
            FlagWant::Percentage(f64::NAN),
        ] {
            let err = flags.set("f", Some("production"), &want).await.unwrap_err();
            assert!(matches!(err, FlagError::Invalid(_)), "{err:?}");
            let err = features.set("f", None, &want).await.unwrap_err();
            assert!(matches!(err, FlagError::Invalid(_)), "{err:?}");
        }
        let err = flags
            .set("f", Some("production"), &FlagWant::Percentage(150.0))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "percentage 150 is outside 0–100");
        let err = flags
            .set("f", Some("production"), &FlagWant::Percentage(2.5))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("takes whole percentages"), "{err}");
        let err = flags.get("..", None).await.unwrap_err();
        assert!(matches!(err, FlagError::Invalid(_)), "{err:?}");
        let err = features
            .set("../../projects/1", None, &FlagWant::Delete)
            .await
            .unwrap_err();
        assert!(matches!(err, FlagError::Invalid(_)), "{err:?}");
        assert!(server.log().is_empty(), "{:?}", requests(&server.log()));

        // A name GitLab refuses: its own message.
        let err = flags
            .set("Bad_Name_", Some("production"), &FlagWant::Enabled(true))
            .await
            .unwrap_err();
        assert!(matches!(err, FlagError::Invalid(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "gitlab-project at {} (group/project) refused flag `Bad_Name_`: Name can contain only \
                 lowercase letters, digits, '_' and '-'. Must start with a letter, and cannot end with '-' or '_'",
                server.url
            )
        );
        assert_eq!(
            requests(&server.log()),
            [
                format!("GET {FLAGS}/Bad_Name_ 404"),
                format!("POST {FLAGS} 400")
            ]
        );
    });
}

#[test]
fn a_flag_changed_between_the_read_and_the_write_is_read_again_once() {
    let server = server();
    server.set_project_flag("f", true, &[Strategy::rollout(5, &["production"])]);
    let flags = project(&server, DEV);
    let path = format!("{FLAGS}/f");
    block_on(async {
        flags.get("f", Some("production")).await.unwrap();
        // Someone recreates the flag meanwhile: the strategy id read is gone.
        server.set_project_flag("f", true, &[Strategy::rollout(10, &["production"])]);
        server.clear_log();
        let after = flags
            .set("f", Some("production"), &FlagWant::Percentage(50.0))
            .await
            .unwrap();
        assert_eq!(after.percentage, Some(50.0));
        assert_eq!(
            requests(&server.log()),
            [
                format!("PUT {path} 404"),
                format!("GET {path} 200"),
                format!("PUT {path} 200")
            ]
        );
        assert_eq!(strategies(&server.project_flag("f").unwrap()).len(), 1);

        // A server error is not a stale read: retried by the transport, then an error.
        flags.get("f", Some("production")).await.unwrap();
        server.fail(Fault::status("PUT", "/feature_flags/f", 500, None, 5));
        server.clear_log();
        let err = flags
            .set("f", Some("production"), &FlagWant::Percentage(100.0))
            .await
            .unwrap_err();
        assert!(matches!(err, FlagError::Other(_)), "{err:?}");
        assert!(
            err.to_string().starts_with(&format!(
                "gitlab-project at {} (group/project): GitLab request PUT",
                server.url
            )),
            "{err}"
        );
        assert_eq!(
            requests(&server.log()),
            [
                format!("PUT {path} 500"),
                format!("PUT {path} 500"),
                format!("PUT {path} 500")
            ]
        );
    });
}

#[test]
fn project_flags_are_listed_in_the_configured_environment() {
    let server = server();
    server.set_project_flag(
        "a",
        true,
        &[
            Strategy::rollout(5, &["production"]),
            Strategy::on(&["staging"]),
        ],
    );
    server.set_project_flag("b", false, &[Strategy::on(&["*"])]);
    server.set_project_flag("c", true, &[Strategy::on(&["staging"])]);
    let flags = project(&server, DEV);
    block_on(async {
        let list = flags.list().await.unwrap();
        assert_eq!(
            list,
            [
                state("a", Some("production"), true, Some(5.0)),
                state("b", Some("production"), false, None),
                state("c", Some("production"), false, None),
            ]
        );
        assert_eq!(requests(&server.log()), [format!("GET {FLAGS} 200")]);
    });
    assert_eq!(
        server.log()[0]
            .query
            .iter()
            .find(|(k, _)| k == "per_page")
            .map(|(_, v)| v.as_str()),
        Some("100")
    );
}

#[test]
fn instance_features_are_set_with_one_post_each() {
    let server = server();
    server.set_instance_feature(
        "other_feature",
        Gates {
            boolean: true,
            ..Gates::default()
        },
    );
    let features = instance(&server, ADMIN);
    let path = "features/gitaly_find_commit";
    block_on(async {
        let missing = features.get("gitaly_find_commit", None).await.unwrap();
        assert_eq!(
            missing,
            FlagState {
                exists: false,
                ..state("gitaly_find_commit", None, false, None)
            }
        );
        assert_eq!(
            requests(&server.log()),
            ["GET features 200"],
            "one list: GitLab has no single GET"
        );

        for p in [1.0, 5.0, 50.0] {
            server.clear_log();
            let after = features
                .set("gitaly_find_commit", None, &FlagWant::Percentage(p))
                .await
                .unwrap();
            assert_eq!(after, state("gitaly_find_commit", None, true, Some(p)));
            let log = server.log();
            assert_eq!(requests(&log), [format!("POST {path} 201")]);
            let text = format!("{p}");
            assert_eq!(log[0].form("value"), Some(text.as_str()));
            assert_eq!(log[0].form("key"), Some("percentage_of_time"));
        }
        assert_eq!(
            server.instance_feature("gitaly_find_commit").unwrap()["gates"],
            json!([{"key": "boolean", "value": false}, {"key": "percentage_of_time", "value": 50}])
        );
        // 100 % of time is on, as Flipper says.
        let full = features
            .set("gitaly_find_commit", None, &FlagWant::Percentage(100.0))
            .await
            .unwrap();
        assert_eq!(full, state("gitaly_find_commit", None, true, None));

        server.clear_log();
        let off = features
            .set("gitaly_find_commit", None, &FlagWant::Enabled(false))
            .await
            .unwrap();
        assert_eq!(off, state("gitaly_find_commit", None, false, None));
        let on = features
            .set("gitaly_find_commit", None, &FlagWant::Enabled(true))
            .await
            .unwrap();
        assert_eq!(on, state("gitaly_find_commit", None, true, None));
        let log = server.log();
        assert_eq!(
            requests(&log),
            [format!("POST {path} 201"), format!("POST {path} 201")]
        );
        assert_eq!(
            (log[0].form("value"), log[0].form("key")),
            (Some("false"), None)
        );
        assert_eq!(
            (log[1].form("value"), log[1].form("key")),
            (Some("true"), None)
        );

        server.clear_log();
        let gone = features
            .set("gitaly_find_commit", None, &FlagWant::Delete)
            .await
            .unwrap();
        assert!(!gone.exists);
        assert_eq!(requests(&server.log()), [format!("DELETE {path} 204")]);
        assert_eq!(server.instance_feature("gitaly_find_commit"), None);

        let list = features.list().await.unwrap();
        assert_eq!(list, [state("other_feature", None, true, None)]);
    });
}

#[test]
fn what_the_features_api_cannot_do_is_unsupported() {
    let server = server();
    server.set_instance_feature(
        "fully_on",
        Gates {
            boolean: true,
            ..Gates::default()
        },
    );
    server.set_instance_feature(
        "by_actors",
        Gates {
            percentage_of_actors: Some(34.0),
            ..Gates::default()
        },
    );
    let features = instance(&server, ADMIN);
    block_on(async {
        let err = features
            .get("fully_on", Some("production"))
            .await
            .unwrap_err();
        assert!(matches!(err, FlagError::Unsupported(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("gitlab-instance has no environments: `production`"),
            "{err}"
        );
        let err = features
            .set("fully_on", Some("production"), &FlagWant::Enabled(false))
            .await
            .unwrap_err();
        assert!(matches!(err, FlagError::Unsupported(_)), "{err:?}");
        assert!(server.log().is_empty());

        let actors = features.get("by_actors", None).await.unwrap();
        assert_eq!(
            actors,
            state("by_actors", None, true, Some(34.0)),
            "a percentage of actors is reported"
        );

        features.get("fully_on", None).await.unwrap();
        server.clear_log();
        let err = features
            .set("fully_on", None, &FlagWant::Percentage(50.0))
            .await
            .unwrap_err();
        assert!(matches!(err, FlagError::Unsupported(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "gitlab-instance at {}: `fully_on` is fully on; the Features API cannot lower it to \
                 50 % (its boolean gate stays on): turn it off first, then set 50 %",
                server.url
            )
        );
        let err = features
            .set("by_actors", None, &FlagWant::Percentage(10.0))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("is on for 34 % of actors"),
            "{err}"
        );
        assert!(server.log().is_empty(), "{:?}", requests(&server.log()));
        // Above the actors' share is fine.
        let up = features
            .set("by_actors", None, &FlagWant::Percentage(50.0))
            .await
            .unwrap();
        assert_eq!(up.percentage, Some(50.0));
    });
}

#[test]
fn documented_flags_parse() {
    let read =
        |name: &str| std::fs::read_to_string(fixture(&format!("gitlab/api/{name}"))).unwrap();
    let list: Vec<GlFeatureFlag> = serde_json::from_str(&read("list_feature_flags.json")).unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].strategies[0].name, "userWithId");
    for name in [
        "get_feature_flag.json",
        "create_feature_flag.json",
        "update_feature_flag.json",
    ] {
        let flag: GlFeatureFlag = serde_json::from_str(&read(name)).unwrap();
        assert_eq!(flag.name, "awesome_feature", "{name}");
        assert!(flag.active);
    }
    let features: Vec<GlFeature> = serde_json::from_str(&read("list_features.json")).unwrap();
    assert_eq!(
        features
            .iter()
            .map(|f| f.state.as_str())
            .collect::<Vec<_>>(),
        ["off", "on", "on"]
    );
    let set: GlFeature = serde_json::from_str(&read("set_feature.json")).unwrap();
    assert_eq!(set.gates[1].key, "percentage_of_time");
}
