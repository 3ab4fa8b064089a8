//! The `local` flags backend: flags kept in the local tracker's file, read and written
//! at the tracker's clock, so a rollout rehearses offline end to end.

use async_trait::async_trait;

use super::{FlagError, Flags};
use crate::core::facts::{FlagState, FlagWant};
use crate::tracker::local::LocalTracker;
use crate::tracker::TrackerError;

pub struct LocalFlags {
    tracker: LocalTracker,
    name: String,
}

impl LocalFlags {
    /// The flags of the local tracker file at `path` (its own connection).
    pub fn open(
        path: &std::path::Path,
        now: Option<chrono::DateTime<chrono::Utc>>,
        actor: &str,
    ) -> Result<LocalFlags, TrackerError> {
        Ok(LocalFlags {
            tracker: LocalTracker::open(path, false, now, actor)?,
            name: format!("local:{}", path.display()),
        })
    }
}

fn invalid(e: TrackerError) -> FlagError {
    FlagError::Invalid(e.to_string())
}

#[async_trait]
impl Flags for LocalFlags {
    fn describe(&self) -> String {
        format!("local flags in {}", self.name)
    }

    fn kind(&self) -> &'static str {
        "local"
    }

    async fn get(&self, name: &str, environment: Option<&str>) -> Result<FlagState, FlagError> {
        self.tracker.flag(name, environment).map_err(invalid)
    }

    async fn set(
        &self,
        name: &str,
        environment: Option<&str>,
        want: &FlagWant,
    ) -> Result<FlagState, FlagError> {
        self.tracker
            .set_flag(name, environment, want)
            .map_err(invalid)
    }

    async fn list(&self) -> Result<Vec<FlagState>, FlagError> {
        self.tracker.flags().map_err(invalid)
    }
}
