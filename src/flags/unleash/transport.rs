//! The Admin API's transport: each request's address under the project, sent with the
//! token, tried again on a broken connection, a 5xx or a 429 (`Policy::delays`), its
//! answer read or turned into a `FlagError` that names the backend and never the token.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::model::*;
use super::{Unleash, TOKEN_VAR};
use crate::flags::FlagError;
use crate::http::retry::{chain, redact, seconds};

impl Unleash {
    pub(super) fn features_path(&self) -> Vec<&str> {
        vec![
            "api",
            "admin",
            "projects",
            self.project.as_str(),
            "features",
        ]
    }

    pub(super) fn feature_path<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        let mut path = self.features_path();
        path.push(name);
        path
    }

    /// The address of the API path whose segments are `path` (each percent-encoded).
    pub(super) fn address(&self, path: &[&str]) -> Result<url::Url, FlagError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| FlagError::Other(format!("{}: not a base URL", self.backend())))?
            .pop_if_empty()
            .extend(path);
        Ok(url)
    }

    /// Sends one request, trying again a couple of times after a failure worth it. Any
    /// answer comes back but a refused token (`Unauthorized`, see `refuses_the_token`) and
    /// a 5xx or 429 that stayed one.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &[&str],
        body: Option<&Value>,
        safe: bool,
    ) -> Result<Reply, FlagError> {
        let url = self.address(path)?;
        let what = format!("{method} /{}", path.join("/"));
        let mut delays = self.retries.delays();
        let mut tries = 0;
        loop {
            tries += 1;
            let trouble = match self.send_once(&method, &url, body).await {
                Ok(reply) if reply.status == StatusCode::TOO_MANY_REQUESTS => Trouble {
                    message: format!("{}: {}", reply.status, unleash_message(&reply.body)),
                    retry: true,
                },
                Ok(reply) if reply.status.is_server_error() => Trouble {
                    message: format!("{}: {}", reply.status, unleash_message(&reply.body)),
                    retry: safe,
                },
                Ok(reply) if refuses_the_token(&reply) => {
                    tracing::debug!(
                        "{}",
                        self.redact(&format!(
                            "{}: {what} answered {}: {}",
                            self.backend(),
                            reply.status,
                            unleash_message(&reply.body)
                        ))
                    );
                    return Err(FlagError::Unauthorized {
                        backend: self.backend(),
                        status: reply.status.as_u16(),
                        token_var: TOKEN_VAR,
                    });
                }
                Ok(reply) => return Ok(reply),
                Err(trouble) => Trouble {
                    retry: trouble.retry || (safe && trouble.sent),
                    message: trouble.message,
                },
            };
            let next = if trouble.retry { delays.next() } else { None };
            let Some(delay) = next else {
                let tries = if tries > 1 {
                    format!(" ({tries} tries)")
                } else {
                    String::new()
                };
                return Err(FlagError::Other(self.redact(&format!(
                    "{}: {what}: {}{tries}",
                    self.backend(),
                    trouble.message
                ))));
            };
            tracing::warn!(
                "{}",
                self.redact(&format!(
                    "{}: {what}: {}; trying again in {delay:?}",
                    self.backend(),
                    trouble.message
                ))
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One request and its whole answer.
    pub(super) async fn send_once(
        &self,
        method: &Method,
        url: &url::Url,
        body: Option<&Value>,
    ) -> Result<Reply, Transport> {
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .header(http::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, token.clone());
        }
        if let Some(body) = body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        Ok(Reply {
            status,
            body: body.to_vec(),
        })
    }

    /// A request that got no whole answer. A timeout is not tried again: the next try
    /// would wait as long.
    pub(super) fn transport(&self, e: reqwest::Error) -> Transport {
        if e.is_timeout() {
            return Transport {
                message: format!("no answer within {}", seconds(self.timeout)),
                retry: false,
                sent: false,
            };
        }
        let connect = e.is_connect();
        let what = if connect {
            "cannot connect"
        } else {
            "the request failed"
        };
        // The message names the request already.
        let e = e.without_url();
        Transport {
            message: format!("{what}: {}", chain(&e)),
            retry: connect,
            sent: !connect,
        }
    }

    /// An answer's JSON, or an error that names the request.
    pub(super) fn parse<T: serde::de::DeserializeOwned>(
        &self,
        method: &Method,
        path: &[&str],
        reply: &Reply,
    ) -> Result<T, FlagError> {
        serde_json::from_slice(&reply.body).map_err(|e| {
            FlagError::Other(format!(
                "{}: {method} /{}: not the Admin API's answer ({e})",
                self.backend(),
                path.join("/")
            ))
        })
    }

    /// An answer the request should not have had.
    pub(super) fn unexpected(&self, method: &Method, path: &[&str], reply: &Reply) -> FlagError {
        FlagError::Other(self.redact(&format!(
            "{}: {method} /{} answered {}: {}",
            self.backend(),
            path.join("/"),
            reply.status,
            unleash_message(&reply.body)
        )))
    }

    pub(super) fn redact(&self, text: &str) -> String {
        redact(text, &self.secret)
    }
}
