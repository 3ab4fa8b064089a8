//! The `feature_flag` action: read the flag, write only what differs, and say what
//! happened in a comment ("`gitaly_find_commit`: 1% → 5%, production"). Without a flags
//! backend, or with one whose rules refuse the flag's name (GitLab's project flags are
//! lowercase; the Gitaly seed's toggles are `GITALY_…`), the flag is left alone and the
//! comment says what a person should run.

use anyhow::{anyhow, Result};

use super::{Engine, Migration};
use crate::core::drift::{holds, want_text};
use crate::core::facts::{FlagState, FlagWant};
use crate::core::workflow::FlagAction;

impl Engine<'_> {
    /// Performs `flag` for migration `m`; returns the comment's text (without its marker).
    pub(crate) async fn set_flag(&self, m: &Migration, flag: &FlagAction) -> Result<String> {
        let name = flag
            .name
            .resolve(&m.marker.vars)
            .map_err(|e| anyhow!("the feature_flag action's name: {e}"))?;
        let env = flag.environment.as_deref();
        let place = env.map(|e| format!(", {e}")).unwrap_or_default();
        let Some(flags) = self.flags else {
            return Ok(format!(
                "🚩 `{name}` was **not** set to {}{place}: shepherd has no flags backend here (`--flags`, `[flags] backend` in shepherd.toml). Set it yourself: `{}`",
                want_text(&flag.want),
                chatops(&name, &flag.want, env)
            ));
        };
        if let Some(why) = flags.refuses_name(&name) {
            return Ok(format!(
                "🚩 `{name}` was **not** set to {}{place}: {} cannot hold that name ({why}). Set it yourself: `{}`",
                want_text(&flag.want),
                flags.describe(),
                chatops(&name, &flag.want, env)
            ));
        }
        let before = flags
            .get(&name, env)
            .await
            .map_err(|e| anyhow!("feature flag `{name}` on {}: {e}", flags.describe()))?;
        if holds(&before, &flag.want) {
            return Ok(format!(
                "🚩 `{name}`: already {}{place} ({})",
                short(&before),
                flags.describe()
            ));
        }
        let after = flags
            .set(&name, env, &flag.want)
            .await
            .map_err(|e| anyhow!("feature flag `{name}` on {}: {e}", flags.describe()))?;
        self.facts.forget_flags();
        let after = if matches!(flag.want, FlagWant::Delete) {
            "deleted".to_string()
        } else {
            short(&after)
        };
        Ok(format!(
            "🚩 `{name}`: {} → {after}{place} (set by shepherd on {}; the chatops line in the checklist is done)",
            short(&before),
            flags.describe()
        ))
    }
}

/// A state in a word or two: "missing", "off", "5%", "on".
fn short(state: &FlagState) -> String {
    match (state.exists, state.enabled, state.percentage) {
        (false, _, _) => "missing".into(),
        (true, false, _) => "off".into(),
        (true, true, Some(p)) => format!("{p}%"),
        (true, true, None) => "on".into(),
    }
}

/// What a person would type in GitLab's chatops instead.
fn chatops(name: &str, want: &FlagWant, env: Option<&str>) -> String {
    let env = match env {
        Some("production") | None => String::new(),
        Some(e) => format!(" --{e}"),
    };
    match want {
        FlagWant::Percentage(p) => format!("/chatops run feature set {name} {p}{env}"),
        FlagWant::Enabled(on) => format!("/chatops run feature set {name} {on}{env}"),
        FlagWant::Delete => format!("/chatops run feature delete {name}{env}"),
    }
}

impl Engine<'_> {
    /// After an advance of `number`, where drift is noted: only a workflow that sets flags
    /// can drift, so the others cost no read.
    pub(crate) async fn note_drift_after(
        &self,
        number: u64,
        advanced: &super::Advanced,
    ) -> Result<()> {
        let sets_flags = self
            .catalog
            .workflows
            .get(&advanced.workflow)
            .is_some_and(|w| w.sets_flags());
        if self.note_drift && sets_flags {
            self.note_drift(number).await?;
        }
        Ok(())
    }

    /// Says on the tracking issue, once per drift, that a flag is not what the
    /// migration's stages set (the service does this after each advance, under the
    /// migration's lease). Each note carries a marker naming the flag and the state seen,
    /// so a poll that sees the same drift again says nothing. Returns the drift seen.
    pub(crate) async fn note_drift(
        &self,
        number: u64,
    ) -> Result<Vec<crate::core::drift::FlagDrift>> {
        if self.flags.is_none() {
            return Ok(Vec::new());
        }
        let (m, workflow) = self.migration(number).await?;
        if !workflow.sets_flags() || !m.issue.open {
            return Ok(Vec::new());
        }
        let (mut snapshot, comments) = self
            .snapshot(&m, workflow, &[], true, Some(Vec::new()))
            .await?;
        self.answer_drift(workflow, &mut snapshot).await;
        let drift = crate::core::drift::drift(workflow, &snapshot);
        for d in &drift {
            let env = d.environment.as_deref().unwrap_or("*");
            let mark = format!("<!-- shepherd:drift={}|{env}|{} -->", d.name, d.actual);
            if comments.iter().any(|c| c.body.contains(&mark)) {
                continue;
            }
            let place = d.place();
            let text = format!(
                "⚑ Feature flag `{}`{place} is **{}**, but this migration's stage set it to **{}**. shepherd leaves it as it is: set it back (`shepherd flag set {} …`) or move the migration to match.\n\n{mark}",
                d.name, d.actual, d.expected, d.name
            );
            self.tracker.add_comment(number, &text).await?;
        }
        Ok(drift)
    }
}
