//! shepherd's `unleash` flags backend (`shepherd::flags::unleash`) against a real Unleash
//! (`UnleashHarness::shared()`), each test with flag names of its own; and, for what must
//! not reach any server, against a socket that counts connections.

use std::time::Duration;

use shepherd::core::facts::{FlagState, FlagWant};
use shepherd::flags::unleash::Unleash;
use shepherd::flags::{FlagError, Flags};

use super::UnleashHarness;
use crate::support::block_on;

fn get(flags: &Unleash, name: &str, env: Option<&str>) -> Result<FlagState, FlagError> {
    block_on(flags.get(name, env))
}

fn set(
    flags: &Unleash,
    name: &str,
    env: Option<&str>,
    want: FlagWant,
) -> Result<FlagState, FlagError> {
    block_on(flags.set(name, env, &want))
}

/// The state's `(exists, enabled, percentage)`.
fn seen(state: &FlagState) -> (bool, bool, Option<f64>) {
    (state.exists, state.enabled, state.percentage)
}

/// An `Invalid` error's message, or a failure that shows what came instead.
fn invalid<T: std::fmt::Debug>(result: Result<T, FlagError>) -> String {
    match result {
        Err(FlagError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn a_flag_that_was_never_made_does_not_exist() {
    let Some(unleash) = UnleashHarness::shared() else {
        return;
    };
    let flags = unleash.client(None);
    let state = get(&flags, "shepherd-never-made", Some("production")).unwrap();
    assert_eq!(seen(&state), (false, false, None));
    assert_eq!(state.environment.as_deref(), Some("production"));
    let state = get(&flags, "shepherd-never-made", None).unwrap();
    assert_eq!((state.exists, state.environment), (false, None));
}

/// 1 → 5 → 50 → 100 % in production is one strategy throughout; development is left off;
/// off, archived, and set again (revived).
#[test]
fn a_rollout_turns_one_strategy_up_then_off_and_archives_it() {
    let Some(unleash) = UnleashHarness::shared() else {
        return;
    };
    let flags = unleash.client(None);
    let name = "shepherd-rollout";
    let prod = Some("production");

    let state = set(&flags, name, prod, FlagWant::Percentage(1.0)).unwrap();
    assert_eq!(seen(&state), (true, true, Some(1.0)));
    assert_eq!(
        seen(&get(&flags, name, prod).unwrap()),
        (true, true, Some(1.0))
    );
    let first = unleash.strategies(name, "production");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["name"], "flexibleRollout");
    assert_eq!(first[0]["parameters"]["rollout"], "1");
    assert_eq!(first[0]["parameters"]["stickiness"], "default");
    assert_eq!(first[0]["parameters"]["groupId"], name);

    for p in [5.0, 50.0, 100.0] {
        let state = set(&flags, name, prod, FlagWant::Percentage(p)).unwrap();
        assert_eq!(seen(&state), (true, true, Some(p)));
        assert_eq!(
            seen(&get(&flags, name, prod).unwrap()),
            (true, true, Some(p))
        );
        let now = unleash.strategies(name, "production");
        assert_eq!(now.len(), 1, "one strategy at {p} %: {now:?}");
        assert_eq!(now[0]["id"], first[0]["id"], "the same strategy at {p} %");
        assert_eq!(now[0]["parameters"]["rollout"], format!("{p}"));
    }
    let dev = get(&flags, name, Some("development")).unwrap();
    assert_eq!(seen(&dev), (true, false, None), "development untouched");
    // Every environment: development is off, so the flag is not on everywhere.
    assert_eq!(seen(&get(&flags, name, None).unwrap()), (true, false, None));

    let state = set(&flags, name, prod, FlagWant::Enabled(false)).unwrap();
    assert_eq!(seen(&state), (true, false, None));
    assert_eq!(seen(&get(&flags, name, prod).unwrap()), (true, false, None));
    assert_eq!(unleash.strategies(name, "production").len(), 1);

    let state = set(&flags, name, prod, FlagWant::Delete).unwrap();
    assert_eq!(seen(&state), (false, false, None));
    assert!(unleash.feature(name).is_none(), "archived");
    assert_eq!(
        seen(&get(&flags, name, prod).unwrap()),
        (false, false, None)
    );
    // Deleting what is gone is fine.
    let state = set(&flags, name, prod, FlagWant::Delete).unwrap();
    assert!(!state.exists);

    // Set again after the cleanup (a rollback): the archived feature comes back.
    let state = set(&flags, name, prod, FlagWant::Percentage(5.0)).unwrap();
    assert_eq!(seen(&state), (true, true, Some(5.0)));
    assert_eq!(unleash.strategies(name, "production").len(), 1);
}

#[test]
fn enabled_turns_a_flag_fully_on_and_none_means_every_environment() {
    let Some(unleash) = UnleashHarness::shared() else {
        return;
    };
    let flags = unleash.client(None);
    let name = "shepherd-every-environment";

    // Unleash gives an environment turned on with no strategy its default one (100 %).
    let state = set(&flags, name, Some("development"), FlagWant::Enabled(true)).unwrap();
    assert!(state.enabled);
    assert!(matches!(state.percentage, None | Some(100.0)), "{state:?}");

    let state = set(&flags, name, None, FlagWant::Percentage(5.0)).unwrap();
    assert_eq!(seen(&state), (true, true, Some(5.0)));
    assert_eq!(state.environment, None);
    for env in super::ENVIRONMENTS {
        let s = get(&flags, name, Some(env)).unwrap();
        assert_eq!(seen(&s), (true, true, Some(5.0)), "{env}");
        assert_eq!(unleash.strategies(name, env).len(), 1, "{env}");
    }

    // A rollout turned fully on is the same strategy at 100 %.
    let state = set(&flags, name, Some("production"), FlagWant::Enabled(true)).unwrap();
    assert_eq!(seen(&state), (true, true, Some(100.0)));
    assert_eq!(unleash.strategies(name, "production").len(), 1);
    // Every environment shows the least of them.
    assert_eq!(
        seen(&get(&flags, name, None).unwrap()),
        (true, true, Some(5.0))
    );

    let state = set(&flags, name, None, FlagWant::Enabled(false)).unwrap();
    assert_eq!(seen(&state), (true, false, None));
    for env in super::ENVIRONMENTS {
        assert!(!get(&flags, name, Some(env)).unwrap().enabled, "{env}");
    }
}

#[test]
fn the_configured_environment_is_the_default_and_list_lists_in_it() {
    let Some(unleash) = UnleashHarness::shared() else {
        return;
    };
    let flags = unleash.client(Some("production"));
    set(&flags, "shepherd-list-a", None, FlagWant::Percentage(50.0)).unwrap();
    set(&flags, "shepherd-list-b", None, FlagWant::Enabled(false)).unwrap();
    set(
        &flags,
        "shepherd-list-c",
        Some("development"),
        FlagWant::Enabled(true),
    )
    .unwrap();
    // The configured environment only.
    assert!(
        !get(&flags, "shepherd-list-a", Some("development"))
            .unwrap()
            .enabled
    );

    let listed = block_on(flags.list()).unwrap();
    let ours: Vec<_> = listed
        .iter()
        .filter(|s| s.name.starts_with("shepherd-list-"))
        .map(|s| {
            (
                s.name.as_str(),
                s.enabled,
                s.percentage,
                s.environment.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        ours,
        [
            ("shepherd-list-a", true, Some(50.0), Some("production")),
            ("shepherd-list-b", false, None, Some("production")),
            ("shepherd-list-c", false, None, Some("production")),
        ]
    );
    assert!(listed.iter().all(|s| s.exists));
    let mut names: Vec<_> = listed.iter().map(|s| s.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        listed.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "sorted"
    );

    // Every environment, where none is configured.
    let all = block_on(unleash.client(None).list()).unwrap();
    let c = all.iter().find(|s| s.name == "shepherd-list-c").unwrap();
    assert_eq!((c.enabled, c.environment.as_deref()), (false, None));
}

#[test]
fn a_wrong_token_is_refused_and_never_shown() {
    let Some(unleash) = UnleashHarness::shared() else {
        return;
    };
    let secret = "*:*.not-the-right-token-0123456789";
    for token in [Some(secret), None] {
        let flags = unleash.client_with("default", None, token);
        let results = [
            get(&flags, "shepherd-token", Some("production")).map(|_| ()),
            set(&flags, "shepherd-token", None, FlagWant::Percentage(5.0)).map(|_| ()),
            block_on(flags.list()).map(|_| ()),
        ];
        for result in results {
            let err = result.expect_err("refused");
            assert!(
                matches!(
                    err,
                    FlagError::Unauthorized {
                        status: 401,
                        token_var: "UNLEASH_TOKEN",
                        ..
                    }
                ),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "unleash at {} refused shepherd (401)",
                    unleash.url()
                )),
                "{message}"
            );
            assert!(message.contains("UNLEASH_TOKEN"), "{message}");
            assert!(!message.contains("not-the-right-token"), "{message}");
            assert!(!message.contains(unleash.token()), "{message}");
        }
    }
    assert!(unleash.feature("shepherd-token").is_none(), "nothing made");
}

#[test]
fn an_unknown_project_or_environment_is_invalid() {
    let Some(unleash) = UnleashHarness::shared() else {
        return;
    };
    let nope = unleash.client_with("no-such-project", None, Some(unleash.token()));
    let expected = format!(
        "Unleash project `no-such-project` does not exist at {}",
        unleash.url()
    );
    assert_eq!(
        invalid(get(&nope, "shepherd-project", Some("production"))),
        expected
    );
    assert_eq!(
        invalid(set(
            &nope,
            "shepherd-project",
            None,
            FlagWant::Enabled(true)
        )),
        expected
    );
    assert_eq!(invalid(block_on(nope.list())), expected);
    assert_eq!(
        invalid(set(&nope, "shepherd-project", None, FlagWant::Delete)),
        expected
    );

    let flags = unleash.client(None);
    // A flag that does not exist, and one that does.
    for name in ["shepherd-environment-missing", "shepherd-environment"] {
        if name == "shepherd-environment" {
            set(&flags, name, Some("production"), FlagWant::Enabled(true)).unwrap();
        }
        let message = invalid(get(&flags, name, Some("staging")));
        assert!(message.contains("`staging`"), "{message}");
        assert!(message.contains("development, production"), "{message}");
        let message = invalid(set(
            &flags,
            name,
            Some("staging"),
            FlagWant::Percentage(5.0),
        ));
        assert!(message.contains("`staging`"), "{message}");
    }
    assert!(
        unleash.feature("shepherd-environment-missing").is_none(),
        "nothing made"
    );
    let configured = unleash.client(Some("staging"));
    assert!(invalid(block_on(configured.list())).contains("`staging`"));
}

#[test]
fn a_name_unleash_rejects_is_invalid_with_its_message() {
    let Some(unleash) = UnleashHarness::shared() else {
        return;
    };
    let flags = unleash.client(None);
    let message = invalid(set(
        &flags,
        "bad name",
        Some("production"),
        FlagWant::Percentage(5.0),
    ));
    assert!(
        message.contains(&format!(
            "unleash at {} refused the flag name `bad name`",
            unleash.url()
        )),
        "{message}"
    );
    assert!(
        message.contains("must be URL friendly"),
        "Unleash's own words: {message}"
    );
    // Reading it is no error: there is no such flag.
    assert!(!get(&flags, "bad name", Some("production")).unwrap().exists);
}

/// A percentage outside 0–100 (or not whole) and an empty name are refused before any
/// request: the backend points at a socket that counts connections.
#[test]
fn bad_percentages_are_refused_without_a_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let flags = quick(&url, None, "*:*.secret");
    for p in [150.0, -1.0, 0.5, f64::NAN] {
        let message = invalid(set(
            &flags,
            "shepherd-percent",
            None,
            FlagWant::Percentage(p),
        ));
        assert!(message.contains(&format!("{p}")), "{message}");
    }
    assert!(invalid(set(&flags, "", None, FlagWant::Enabled(true))).contains("flag name"));
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection was made"
    );
}

/// A harness of a test's own: dropping it stops the server and drops its database.
#[test]
fn a_harness_of_its_own_goes_away_with_its_database() {
    let Some(unleash) = UnleashHarness::start() else {
        return;
    };
    let flags = unleash.client(Some("production"));
    set(&flags, "shepherd-own", None, FlagWant::Percentage(1.0)).unwrap();
    let (name, admin) = unleash.database();
    let (name, admin, pid) = (name.to_string(), admin.to_string(), unleash.pid());
    let exists = |name: String| {
        let admin = admin.clone();
        block_on(async move {
            let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL");
            tokio::spawn(connection);
            let rows = client
                .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .expect("pg_database");
            !rows.is_empty()
        })
    };
    assert!(exists(name.clone()));
    drop(unleash);
    assert!(!exists(name), "the database is dropped");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the server is gone"
    );
}

/// The answers a `Script` has left: a status and body, or `None` for one that never comes.
type Answers = std::collections::VecDeque<Option<(u16, String)>>;

/// A scripted stand-in for Unleash: each request takes the next answer (`None`: never
/// answer) and is logged as `METHOD /path`; the token it carried is kept.
#[derive(Clone, Default)]
struct Script {
    answers: std::sync::Arc<std::sync::Mutex<Answers>>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokens: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Script {
    fn new(answers: Vec<Option<(u16, &str)>>) -> Script {
        let script = Script::default();
        *script.answers.lock().unwrap() = answers
            .into_iter()
            .map(|a| a.map(|(status, body)| (status, body.to_string())))
            .collect();
        script
    }

    fn serve(&self) -> String {
        let script = self.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let script = script.clone();
            async move {
                script.log.lock().unwrap().push(format!(
                    "{} {}",
                    request.method(),
                    request.uri().path()
                ));
                if let Some(token) = request.headers().get("authorization") {
                    let token = token.to_str().unwrap_or_default().to_string();
                    script.tokens.lock().unwrap().push(token);
                }
                let next = script.answers.lock().unwrap().pop_front();
                match next {
                    Some(Some((status, body))) => (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body,
                    ),
                    Some(None) => std::future::pending().await,
                    None => panic!("no answer left for {}", request.uri()),
                }
            }
        });
        crate::test_server::serve(app)
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

const FEATURE: &str = r#"{"name": "f", "environments": [
    {"name": "production", "enabled": false, "strategies": []}]}"#;

/// A client of project `default` at `url` (in `environment`) with `token`, giving up on
/// a request after a second.
fn quick(url: &str, environment: Option<&str>, token: &str) -> Unleash {
    let second = Duration::from_secs(1);
    let environment = environment.map(String::from);
    Unleash::new(
        url,
        "default",
        environment,
        Some(token.into()),
        second,
        second,
    )
    .unwrap()
}

fn scripted(url: &str) -> Unleash {
    quick(url, Some("production"), "*:*.scripted-secret").with_retries(
        shepherd::http::retry::Policy {
            attempts: 3,
            min_delay: Duration::from_millis(10),
            ..shepherd::http::retry::Policy::for_services()
        },
    )
}

/// A 5xx and a 429 are tried again; adding a strategy is not repeated after a 5xx (it may
/// have been added); a request that does not answer is not tried again; every request
/// carries the token as it is, and no message shows it.
#[test]
fn failures_are_retried_only_where_that_is_safe() {
    let script = Script::new(vec![
        Some((503, r#"{"message": "starting"}"#)),
        Some((429, "{}")),
        Some((200, FEATURE)),
    ]);
    let flags = scripted(&script.serve());
    let state = get(&flags, "f", None).unwrap();
    assert_eq!(seen(&state), (true, false, None));
    assert_eq!(script.log().len(), 3, "{:?}", script.log());
    assert!(script
        .tokens
        .lock()
        .unwrap()
        .iter()
        .all(|t| t == "*:*.scripted-secret"));

    let script = Script::new(vec![
        Some((200, FEATURE)),
        Some((502, r#"{"message": "bad gateway"}"#)),
    ]);
    let flags = scripted(&script.serve());
    let err = set(&flags, "f", None, FlagWant::Percentage(5.0)).unwrap_err();
    assert!(matches!(err, FlagError::Other(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("502"), "{message}");
    assert!(!message.contains("scripted-secret"), "{message}");
    assert_eq!(
        script.log(),
        [
            "GET /api/admin/projects/default/features/f",
            "POST /api/admin/projects/default/features/f/environments/production/strategies",
        ]
    );

    let script = Script::new(vec![None]);
    let url = script.serve();
    let flags = scripted(&url);
    let err = get(&flags, "f", None).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "unleash at {url}: GET /api/admin/projects/default/features/f: no answer within 1 s"
        )),
        "{message}"
    );
    assert_eq!(script.log().len(), 1, "not tried again");
}

/// A 403 for an operation Unleash denies whoever asks (a change request needed) is not
/// blamed on the token.
#[test]
fn a_denied_operation_is_not_a_refused_token() {
    let script = Script::new(vec![
        Some((200, FEATURE)),
        Some((
            403,
            r#"{"name": "OperationDeniedError", "message": "Change requests are enabled in production"}"#,
        )),
    ]);
    let flags = scripted(&script.serve());
    let message = invalid(set(&flags, "f", None, FlagWant::Percentage(5.0)));
    assert!(
        message.contains("Change requests are enabled in production"),
        "{message}"
    );
    let script = Script::new(vec![Some((
        403,
        r#"{"name": "NoAccessError", "message": "no"}"#,
    ))]);
    let flags = scripted(&script.serve());
    let err = get(&flags, "f", None).unwrap_err();
    assert!(
        matches!(err, FlagError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
}
