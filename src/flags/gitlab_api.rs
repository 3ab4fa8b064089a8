//! What the two GitLab flag backends share: their requests as `gitlab` crate `Endpoint`s
//! (the crate has none for feature flags), sent by the GitLab tracker's transport
//! (`tracker::gitlab::http::Http`: `PRIVATE-TOKEN`, timeouts, the shared `Retrier`, the
//! token taken out of every message); names checked before they go into a path; GitLab's
//! refusals turned into `FlagError`s that name the backend, never the token; and the last
//! state read of each flag, kept a moment for the write that follows a caller's read.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gitlab::api::endpoint_prelude::{BodyError, Endpoint, Method};
use gitlab::api::JsonParams;

use super::FlagError;
use crate::http::retry::Failed;
use crate::tracker::gitlab::http::Http;
use crate::tracker::gitlab::Config;

/// The variable both backends read their token from.
pub const TOKEN_VAR: &str = "GITLAB_TOKEN";

/// One request: a method, a path under `/api/v4/` (already escaped) and an optional body.
pub struct Call {
    method: Method,
    path: String,
    body: Option<Body>,
}

enum Body {
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

impl Call {
    pub fn get(path: String) -> Call {
        Call {
            method: Method::GET,
            path,
            body: None,
        }
    }

    pub fn delete(path: String) -> Call {
        Call {
            method: Method::DELETE,
            path,
            body: None,
        }
    }

    pub fn json(method: Method, path: String, body: serde_json::Value) -> Call {
        Call {
            method,
            path,
            body: Some(Body::Json(body)),
        }
    }

    pub fn form(method: Method, path: String, pairs: &[(&str, String)]) -> Call {
        let pairs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Call {
            method,
            path,
            body: Some(Body::Form(pairs)),
        }
    }
}

impl Endpoint for Call {
    fn method(&self) -> Method {
        self.method.clone()
    }

    fn endpoint(&self) -> Cow<'static, str> {
        Cow::Owned(self.path.clone())
    }

    fn body(&self) -> Result<Option<(&'static str, Vec<u8>)>, BodyError> {
        match &self.body {
            None => Ok(None),
            Some(Body::Json(value)) => JsonParams::into_body(value),
            Some(Body::Form(pairs)) => {
                let mut params = gitlab::api::FormParams::default();
                for (k, v) in pairs {
                    params.push(k.as_str(), v.as_str());
                }
                params.into_body()
            }
        }
    }
}

/// The GitLab transport for a flag backend, from the tracker's own settings.
pub fn transport(config: &Config, token: &str) -> Result<Http, FlagError> {
    Http::new(config, token).map_err(|e| FlagError::Other(e.to_string()))
}

/// A name as one path segment, escaped as the GitLab tracker escapes project paths. Names
/// that a URL would not keep as one segment (empty, `.`, `..`, with `/` or `\`, or control
/// characters) are refused before any request: `..` would climb out of the flag's path.
pub fn segment(backend: &str, name: &str) -> Result<String, FlagError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control);
    if bad {
        return Err(FlagError::Invalid(format!(
            "`{}` cannot be a flag name on {backend}: it would not stay one part of the \
             request's path",
            name.escape_debug()
        )));
    }
    Ok(gitlab::api::common::path_escaped(name).to_string())
}

/// A percentage outside 0–100 (or not a number) is refused before any request.
pub fn check_percentage(p: f64) -> Result<(), FlagError> {
    crate::core::facts::check_percentage(p).map_err(FlagError::Invalid)
}

/// A percentage as GitLab writes it: `5`, `0.5`.
pub fn percent_text(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        p.to_string()
    }
}

/// A request that failed, as a `FlagError`: 401/403 is `Unauthorized` naming the backend
/// (`backend`, the 403 wording when it differs), 400/422 is `Invalid` with GitLab's own
/// message after `what` ("refused flag `x`"), anything else `Other`, prefixed with the
/// backend.
pub fn refused(f: Failed, backend: &str, forbidden: &str, what: &str) -> FlagError {
    match f.status {
        Some(401) => FlagError::Unauthorized {
            backend: backend.to_string(),
            status: 401,
            token_var: TOKEN_VAR,
        },
        Some(403) => FlagError::Unauthorized {
            backend: forbidden.to_string(),
            status: 403,
            token_var: TOKEN_VAR,
        },
        Some(status @ (400 | 422)) => FlagError::Invalid(format!(
            "{backend} refused {what}: {}",
            gitlab_says(&f.message, status)
        )),
        _ => FlagError::Other(format!("{backend}: {}", f.message)),
    }
}

/// GitLab's own words in a failure's message: what follows `failed: STATUS `, where the
/// transport puts the answer's `message`.
fn gitlab_says(message: &str, status: u16) -> &str {
    let marker = format!("failed: {status} ");
    message
        .find(&marker)
        .map_or(message, |at| &message[at + marker.len()..])
}

/// How long a read is trusted for the write that follows it.
const REMEMBER_FOR: Duration = Duration::from_secs(15);

/// The last state read (or written) of each flag: `None` for a flag known to be missing.
/// A caller reads a flag (`get`) and then writes it (`set`); the write uses the read,
/// instead of reading again, when it is younger than `REMEMBER_FOR`.
pub struct Remembered<T> {
    seen: Mutex<HashMap<String, (Instant, Option<T>)>>,
}

impl<T: Clone> Default for Remembered<T> {
    fn default() -> Self {
        Remembered {
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Remembered<T> {
    pub fn keep(&self, name: &str, value: Option<T>) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (Instant::now(), value));
    }

    /// The remembered state, if it is recent: `Some(None)` for a flag known missing.
    pub fn recall(&self, name: &str) -> Option<Option<T>> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(name)
            .filter(|(at, _)| at.elapsed() < REMEMBER_FOR)
            .map(|(_, v)| v.clone())
    }

    pub fn forget(&self, name: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_their_path_are_refused() {
        for name in ["", ".", "..", "a/b", "..\\..", "a\nb"] {
            assert!(
                matches!(segment("b", name), Err(FlagError::Invalid(_))),
                "{name:?}"
            );
        }
        assert_eq!(segment("b", "my_flag").unwrap(), "my_flag");
        assert_eq!(segment("b", "a b?c#d").unwrap(), "a%20b%3Fc%23d");
        assert_eq!(segment("b", "...").unwrap(), "...");
    }

    #[test]
    fn percentages_are_checked_and_written_as_gitlab_reads_them() {
        for p in [-1.0, 100.5, 150.0, f64::NAN, f64::INFINITY] {
            assert!(check_percentage(p).is_err(), "{p}");
        }
        for p in [0.0, 0.5, 100.0] {
            assert!(check_percentage(p).is_ok(), "{p}");
        }
        assert_eq!(percent_text(5.0), "5");
        assert_eq!(percent_text(0.5), "0.5");
        assert_eq!(percent_text(100.0), "100");
    }

    #[test]
    fn gitlabs_own_words_are_kept() {
        let f = |status, message: &str| Failed {
            status: Some(status),
            message: message.to_string(),
        };
        let e = refused(
            f(400, "GitLab request POST projects/g%2Fp/feature_flags failed: 400 Name can contain only lowercase letters"),
            "gitlab-project at http://h (g/p)",
            "gitlab-project at http://h (g/p)",
            "flag `X`",
        );
        assert_eq!(
            e.to_string(),
            "gitlab-project at http://h (g/p) refused flag `X`: Name can contain only lowercase letters"
        );
        let e = refused(f(403, "x"), "b", "b, forbidden", "w");
        assert_eq!(
            e.to_string(),
            "b, forbidden refused shepherd (403): check GITLAB_TOKEN"
        );
        let e = refused(
            f(500, "GitLab request GET x failed: 500 boom"),
            "b",
            "b",
            "w",
        );
        assert_eq!(e.to_string(), "b: GitLab request GET x failed: 500 boom");
    }
}
