//! Change freezes in `shepherd.toml` (DESIGN §13): `[[freeze]]` tables (`start`, `end`:
//! five-field crons as GitLab deploy freeze periods write them; `timezone`: IANA, default
//! UTC), checked as the file is read, so a bad one is an error of the file at its line like
//! any other; and `[tracker] freezes = "gitlab"`, which makes a GitLab project's deploy
//! freeze periods change freezes too.

use anyhow::{bail, Result};
use serde::Deserialize;

use crate::core::freeze::Freeze;
use crate::tracker::TrackerSpec;

/// One `[[freeze]]` table, checked.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawFreeze")]
pub(super) struct ConfigFreeze(pub(super) Freeze);

/// One `[[freeze]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreeze {
    start: String,
    end: String,
    timezone: Option<String>,
}

impl TryFrom<RawFreeze> for ConfigFreeze {
    type Error = String;

    fn try_from(raw: RawFreeze) -> Result<ConfigFreeze, String> {
        Freeze::new(&raw.start, &raw.end, raw.timezone.as_deref())
            .map(ConfigFreeze)
            .map_err(|e| format!("[[freeze]]: {e}"))
    }
}

/// `freezes` under `[tracker]`: whose freeze periods are change freezes besides
/// `[[freeze]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum FreezeSource {
    /// The GitLab project's deploy freeze periods.
    Gitlab,
    /// Only `[[freeze]]` (and the local tracker's own).
    None,
}

/// Whether tracker `spec` reads its deploy freeze periods: `freezes = "gitlab"` on a
/// GitLab tracker; the same on another tracker is an error that says what to use.
pub(super) fn deploy(spec: &TrackerSpec, freezes: Option<FreezeSource>) -> Result<bool> {
    match (freezes, spec) {
        (Some(FreezeSource::Gitlab), TrackerSpec::GitLab(_)) => Ok(true),
        (Some(FreezeSource::Gitlab), other) => bail!(
            "freezes = \"gitlab\" reads a GitLab project's deploy freeze periods, and {other} is no GitLab tracker: write the freezes as [[freeze]] in shepherd.toml{}",
            if other.is_local() {
                " or add them with `shepherd freeze add`"
            } else {
                ""
            }
        ),
        _ => Ok(false),
    }
}
