//! Who may deliver a webhook: checked on the raw headers and bytes before the body is
//! parsed, every comparison in constant time. GitLab sends its secret token
//! (`X-Gitlab-Token`) or signs with its signing token in the Standard Webhooks way
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`); GitHub signs the body
//! (`X-Hub-Signature-256`). What the headers alone can decide is decided before the body
//! is read (`gitlab_headers`, `github_headers`): a missing or wrong token, a missing or
//! malformed signature, a stale timestamp cost the sender no read of its body. The secrets never leave this module: `Secrets` has no `Debug`
//! that shows them.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far a Standard Webhooks timestamp may be from now, either way.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

/// The webhook secrets: `SHEPHERD_WEBHOOK_SECRET` (GitLab's secret token, GitHub's
/// webhook secret) and `SHEPHERD_WEBHOOK_SIGNING_TOKEN` (GitLab's `whsec_…` signing
/// token). With neither, deliveries are accepted only when `insecure` says so.
#[derive(Clone, Default)]
pub struct Secrets {
    secret: Option<Vec<u8>>,
    /// The decoded key of the signing token.
    signing_key: Option<Vec<u8>>,
    insecure: bool,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("signing_key", &self.signing_key.as_ref().map(|_| "***"))
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Why a delivery is refused. The answer to the sender is only ever "unauthorized"; the
/// reason goes to the debug log, never a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Missing,
    Wrong,
    Stale,
}

impl Secrets {
    /// Secrets as given (empty strings count as unset). A signing token must be
    /// `whsec_` followed by base64; anything else is an error that does not repeat it.
    pub fn new(
        secret: Option<&str>,
        signing_token: Option<&str>,
        insecure: bool,
    ) -> Result<Secrets, String> {
        let secret = secret
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec());
        let signing_key = match signing_token.filter(|s| !s.is_empty()) {
            None => None,
            Some(token) => Some(decode_signing_token(token)?),
        };
        Ok(Secrets {
            secret,
            signing_key,
            insecure,
        })
    }

    /// Whether any secret is configured.
    pub fn configured(&self) -> bool {
        self.secret.is_some() || self.signing_key.is_some()
    }

    /// What of a GitLab delivery the headers alone decide, before its body is read: the
    /// secret token whole; of a Standard Webhooks signature, that its headers are there,
    /// a signing token is configured and the timestamp is fresh. `Ok` still needs
    /// `gitlab` on the body.
    pub fn gitlab_headers(&self, headers: &HeaderMap, now: i64) -> Result<(), Refused> {
        if !self.configured() || headers.contains_key("x-gitlab-token") {
            return self.gitlab(headers, b"", now);
        }
        if !headers.contains_key("webhook-signature") {
            return Err(Refused::Missing);
        }
        if self.signing_key.is_none() {
            return Err(Refused::Wrong);
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(_), Some(timestamp)) = (header("webhook-id"), header("webhook-timestamp")) else {
            return Err(Refused::Missing);
        };
        let at: i64 = timestamp.trim().parse().map_err(|_| Refused::Wrong)?;
        if (now - at).abs() > TIMESTAMP_TOLERANCE_SECONDS {
            return Err(Refused::Stale);
        }
        Ok(())
    }

    /// What of a GitHub delivery the headers alone decide, before its body is read: a
    /// secret to check with, and an `X-Hub-Signature-256` of the right form. `Ok` still
    /// needs `github` on the body.
    pub fn github_headers(&self, headers: &HeaderMap) -> Result<(), Refused> {
        if self.secret.is_none() {
            return self.github(headers, b"");
        }
        let given = headers.get("x-hub-signature-256").ok_or(Refused::Missing)?;
        let well_formed = given
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("sha256="))
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if well_formed {
            Ok(())
        } else {
            Err(Refused::Wrong)
        }
    }

    /// Checks a GitLab delivery: the secret token, else the Standard Webhooks signature.
    /// `now` is the Unix time in seconds.
    pub fn gitlab(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Refused> {
        if !self.configured() {
            return if self.insecure {
                Ok(())
            } else {
                Err(Refused::Missing)
            };
        }
        if let Some(given) = headers.get("x-gitlab-token") {
            let Some(secret) = &self.secret else {
                return Err(Refused::Wrong);
            };
            return if bool::from(given.as_bytes().ct_eq(secret)) {
                Ok(())
            } else {
                Err(Refused::Wrong)
            };
        }
        if headers.contains_key("webhook-signature") {
            let Some(key) = &self.signing_key else {
                return Err(Refused::Wrong);
            };
            return standard_webhook(key, headers, body, now);
        }
        Err(Refused::Missing)
    }

    /// Checks a GitHub delivery: `X-Hub-Signature-256: sha256=<hex HMAC of the body>`.
    pub fn github(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refused> {
        let Some(secret) = &self.secret else {
            return if self.insecure && !self.configured() {
                Ok(())
            } else {
                Err(Refused::Missing)
            };
        };
        let Some(given) = headers.get("x-hub-signature-256") else {
            return Err(Refused::Missing);
        };
        let hex = given
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("sha256="))
            .ok_or(Refused::Wrong)?;
        let signature = decode_hex(hex).ok_or(Refused::Wrong)?;
        let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| Refused::Wrong)?;
        mac.update(body);
        mac.verify_slice(&signature).map_err(|_| Refused::Wrong)
    }
}

/// The Standard Webhooks check: the timestamp within five minutes of `now`, and one of
/// the `v1,<base64>` signatures equal to the HMAC-SHA256 of `id.timestamp.body`.
fn standard_webhook(key: &[u8], headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Refused> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err(Refused::Missing);
    };
    let at: i64 = timestamp.trim().parse().map_err(|_| Refused::Wrong)?;
    if (now - at).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(Refused::Stale);
    }
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| Refused::Wrong)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    let engine = base64::engine::general_purpose::STANDARD;
    let matched = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| engine.decode(s).ok())
        .fold(false, |found, given| {
            found | bool::from(given.as_slice().ct_eq(expected.as_slice()))
        });
    if matched {
        Ok(())
    } else {
        Err(Refused::Wrong)
    }
}

/// The key of a `whsec_<base64>` signing token.
fn decode_signing_token(token: &str) -> Result<Vec<u8>, String> {
    let encoded = token.strip_prefix("whsec_").ok_or_else(|| {
        "SHEPHERD_WEBHOOK_SIGNING_TOKEN must start with `whsec_` (GitLab's signing token)"
            .to_string()
    })?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            "SHEPHERD_WEBHOOK_SIGNING_TOKEN is not `whsec_` followed by base64".to_string()
        })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` with `key`: what a Standard
/// Webhooks sender puts in `webhook-signature` (for tests and tools).
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let sig = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
}

/// `sha256=` and the hex HMAC-SHA256 of `body` with `secret`: GitHub's
/// `X-Hub-Signature-256` (for tests and tools).
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let sig = mac.finalize().into_bytes();
    let hex: String = sig.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn githubs_documented_example_verifies() {
        let s = Secrets::new(Some("It's a Secret to Everybody"), None, false).unwrap();
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            github_signature(b"It's a Secret to Everybody", b"Hello, World!"),
            sig
        );
        let h = headers(&[("x-hub-signature-256", sig)]);
        assert_eq!(s.github(&h, b"Hello, World!"), Ok(()));
        assert_eq!(s.github(&h, b"Hello, World?"), Err(Refused::Wrong));
        assert_eq!(s.github(&HeaderMap::new(), b"x"), Err(Refused::Missing));
        let odd = headers(&[("x-hub-signature-256", "sha256=abc")]);
        assert_eq!(s.github(&odd, b"x"), Err(Refused::Wrong));
    }

    #[test]
    fn standard_webhooks_signature_and_timestamp() {
        let key = b"a signing key of thirty-two bytes";
        let token = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        let s = Secrets::new(None, Some(&token), false).unwrap();
        let now = 1_767_225_600;
        let sig = standard_signature(key, "msg_1", now, b"{}");
        let ts = now.to_string();
        let good = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &format!("v1,bm90IGl0 {sig}")),
        ]);
        assert_eq!(s.gitlab(&good, b"{}", now + 10), Ok(()));
        assert_eq!(s.gitlab(&good, b"{ }", now), Err(Refused::Wrong));
        assert_eq!(s.gitlab(&good, b"{}", now + 301), Err(Refused::Stale));
        assert_eq!(s.gitlab(&good, b"{}", now - 301), Err(Refused::Stale));
        assert!(Secrets::new(None, Some("whsec_!!"), false).is_err());
        assert!(Secrets::new(None, Some("secret"), false).is_err());
    }

    #[test]
    fn gitlab_token_and_insecure_mode() {
        let s = Secrets::new(Some("s3cret"), None, false).unwrap();
        let ok = headers(&[("x-gitlab-token", "s3cret")]);
        assert_eq!(s.gitlab(&ok, b"", 0), Ok(()));
        let bad = headers(&[("x-gitlab-token", "s3cre")]);
        assert_eq!(s.gitlab(&bad, b"", 0), Err(Refused::Wrong));
        assert_eq!(s.gitlab(&HeaderMap::new(), b"", 0), Err(Refused::Missing));
        let open = Secrets::new(None, None, true).unwrap();
        assert_eq!(open.gitlab(&HeaderMap::new(), b"", 0), Ok(()));
        assert_eq!(open.github(&HeaderMap::new(), b""), Ok(()));
        let closed = Secrets::new(None, None, false).unwrap();
        assert!(closed.gitlab(&ok, b"", 0).is_err());
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn headers_alone_refuse_what_they_can() {
        let key = b"a signing key of thirty-two bytes";
        let token = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        let s = Secrets::new(Some("s3cret"), Some(&token), false).unwrap();
        let gl = |pairs: &[(&'static str, &str)]| s.gitlab_headers(&headers(pairs), 1_000);
        assert_eq!(gl(&[("x-gitlab-token", "s3cret")]), Ok(()));
        assert_eq!(gl(&[("x-gitlab-token", "nope")]), Err(Refused::Wrong));
        assert_eq!(gl(&[]), Err(Refused::Missing));
        let signed = [
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1000"),
            ("webhook-signature", "v1,AAAA"),
        ];
        // The signature itself needs the body.
        assert_eq!(gl(&signed), Ok(()));
        assert_eq!(
            s.gitlab(&headers(&signed), b"{}", 1_000),
            Err(Refused::Wrong)
        );
        assert_eq!(gl(&signed[1..]), Err(Refused::Missing));
        let stale = [("webhook-timestamp", "1"), signed[0], signed[2]];
        assert_eq!(gl(&stale), Err(Refused::Stale));
        let none = Secrets::new(None, None, false).unwrap();
        assert!(none
            .gitlab_headers(&headers(&[("x-gitlab-token", "x")]), 0)
            .is_err());
        assert!(none.github_headers(&HeaderMap::new()).is_err());

        let hex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let gh = |value: &str| s.github_headers(&headers(&[("x-hub-signature-256", value)]));
        assert_eq!(gh(&format!("sha256={hex}")), Ok(()));
        assert_eq!(gh(&format!("sha1={hex}")), Err(Refused::Wrong));
        assert_eq!(gh("sha256=abc"), Err(Refused::Wrong));
        assert_eq!(s.github_headers(&HeaderMap::new()), Err(Refused::Missing));
        let open = Secrets::new(None, None, true).unwrap();
        assert_eq!(open.github_headers(&HeaderMap::new()), Ok(()));
        assert_eq!(open.gitlab_headers(&HeaderMap::new(), 0), Ok(()));
    }
}
