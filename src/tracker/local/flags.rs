//! The local tracker's feature flags: the `local` flags backend, so a whole rollout
//! rehearses offline. A flag is kept per environment, `*` standing for every environment;
//! a read of one environment falls back to `*`. Names are those every backend takes
//! (letters, digits, `_`, `-`, `.`, `:`). Times come from the tracker's clock.

use rusqlite::{params, Connection, OptionalExtension};

use super::issues::time;
use super::{sql, LocalTracker};
use crate::core::facts::{FlagState, FlagWant};
use crate::tracker::TrackerError;

/// The environment key that stands for every environment.
const EVERY: &str = "*";

impl LocalTracker {
    /// The flag `name` in `environment` (`None`: every environment).
    pub fn flag(&self, name: &str, environment: Option<&str>) -> Result<FlagState, TrackerError> {
        check_name(name)?;
        self.read(|conn| state(conn, name, environment))
    }

    /// Sets flag `name` as `want` says, in `environment` (`None`: every environment, which
    /// replaces the per-environment settings). Returns the state after.
    pub fn set_flag(
        &self,
        name: &str,
        environment: Option<&str>,
        want: &FlagWant,
    ) -> Result<FlagState, TrackerError> {
        check_name(name)?;
        if let FlagWant::Percentage(p) = want {
            crate::core::facts::check_percentage(*p).map_err(TrackerError::Other)?;
        }
        let at = time(self.now_at());
        self.persist()?;
        self.write(|tx| {
            let env = environment.unwrap_or(EVERY);
            if environment.is_none() || matches!(want, FlagWant::Delete) {
                let clear = if environment.is_none() {
                    "DELETE FROM flags WHERE name = ?1"
                } else {
                    "DELETE FROM flags WHERE name = ?1 AND environment = ?2"
                };
                let mut stmt = tx.prepare_cached(clear).map_err(sql)?;
                if environment.is_none() {
                    stmt.execute([name]).map_err(sql)?;
                } else {
                    stmt.execute([name, env]).map_err(sql)?;
                }
            }
            let (enabled, percentage) = match want {
                FlagWant::Delete => return state(tx, name, environment),
                FlagWant::Enabled(on) => (*on, None),
                FlagWant::Percentage(p) => (*p > 0.0, Some(*p)),
            };
            tx.prepare_cached(
                "INSERT INTO flags (name, environment, enabled, percentage, updated_by, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (name, environment) DO UPDATE SET enabled = ?3, percentage = ?4, \
                 updated_by = ?5, updated_at = ?6",
            )
            .map_err(sql)?
            .execute(params![name, env, enabled, percentage, self.actor, at])
            .map_err(sql)?;
            state(tx, name, environment)
        })
    }

    /// Every flag, each in every environment it is set for.
    pub fn flags(&self) -> Result<Vec<FlagState>, TrackerError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name, environment, enabled, percentage FROM flags ORDER BY name, environment",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |r| {
                    let env: String = r.get(1)?;
                    Ok(FlagState {
                        name: r.get(0)?,
                        exists: true,
                        enabled: r.get(2)?,
                        percentage: r.get(3)?,
                        environment: (env != EVERY).then_some(env),
                    })
                })
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
    }
}

fn state(
    conn: &Connection,
    name: &str,
    environment: Option<&str>,
) -> Result<FlagState, TrackerError> {
    let row = |env: &str| -> Result<Option<(bool, Option<f64>)>, TrackerError> {
        conn.prepare_cached(
            "SELECT enabled, percentage FROM flags WHERE name = ?1 AND environment = ?2",
        )
        .map_err(sql)?
        .query_row([name, env], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(sql)
    };
    let found = match environment {
        Some(env) => match row(env)? {
            Some(x) => Some(x),
            None => row(EVERY)?,
        },
        None => match row(EVERY)? {
            Some(x) => Some(x),
            // Set only per environment: "every environment" reads as the most that is on.
            None => conn
                .prepare_cached(
                    "SELECT max(enabled), max(CASE WHEN enabled THEN coalesce(percentage, 100) ELSE 0 END), count(*) \
                     FROM flags WHERE name = ?1",
                )
                .map_err(sql)?
                .query_row([name], |r| {
                    Ok((r.get::<_, Option<bool>>(0)?, r.get::<_, Option<f64>>(1)?, r.get::<_, i64>(2)?))
                })
                .map_err(sql)
                .map(|(enabled, top, count)| {
                    (count > 0).then(|| {
                        let enabled = enabled.unwrap_or(false);
                        (enabled, top.filter(|_| enabled))
                    })
                })?,
        },
    };
    Ok(match found {
        Some((enabled, percentage)) => FlagState {
            name: name.to_string(),
            exists: true,
            enabled,
            percentage,
            environment: environment.map(str::to_string),
        },
        None => FlagState::missing(name, environment.map(str::to_string)),
    })
}

/// A flag name every backend takes.
pub fn check_name(name: &str) -> Result<(), TrackerError> {
    crate::core::facts::check_flag_name(name).map_err(TrackerError::Other)
}
