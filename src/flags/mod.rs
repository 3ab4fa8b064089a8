//! The `Flags` trait: the door to a feature-flag service. Backends: `local` (flags in the
//! local tracker's file), `gitlab-project` (GitLab's project feature flags API),
//! `gitlab-instance` (a self-managed GitLab's Features API), `unleash` (the Unleash Admin
//! API). Each reads before it writes, and writes only what differs.

mod gitlab_api;
pub mod gitlab_instance;
pub mod gitlab_project;
pub mod local;
pub mod unleash;

use async_trait::async_trait;

pub use self::gitlab_instance::GitLabInstanceFlags;
pub use self::gitlab_project::GitLabProjectFlags;

use crate::core::facts::{FlagState, FlagWant};

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// The backend refused the token (401/403). The message names the backend, never the
    /// token.
    #[error("{backend} refused shepherd ({status}): check {token_var}")]
    Unauthorized {
        backend: String,
        status: u16,
        token_var: &'static str,
    },
    /// The backend cannot do this (e.g. a percentage of actors on `gitlab-instance`).
    #[error("{0}")]
    Unsupported(String),
    /// Bad input: a flag name the backend rejects, a percentage outside 0–100, an unknown
    /// environment or project.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait Flags: Send + Sync {
    /// The backend as a person would name it ("unleash at http://…, project default"),
    /// never with a token.
    fn describe(&self) -> String;

    /// The backend's name as `[flags] backend` spells it (`local`, `gitlab-project`, …).
    fn kind(&self) -> &'static str;

    /// The flag's state in `environment` (`None`: every environment, or the backend's
    /// default). A flag that does not exist is `exists: false`, not an error.
    async fn get(&self, name: &str, environment: Option<&str>) -> Result<FlagState, FlagError>;

    /// Makes the flag what `want` says in `environment` (`None`: every environment),
    /// creating it when missing (unless `want` is `Delete`); returns the state after. A
    /// caller reads first and calls this only when the state differs.
    async fn set(
        &self,
        name: &str,
        environment: Option<&str>,
        want: &FlagWant,
    ) -> Result<FlagState, FlagError>;

    /// Every flag the backend holds (in the configured environment).
    async fn list(&self) -> Result<Vec<FlagState>, FlagError>;

    /// Why the backend cannot hold a flag called `name`, where it says so by its rules
    /// alone (no request): a workflow's action then leaves the flag to people.
    fn refuses_name(&self, _name: &str) -> Option<String> {
        None
    }
}
