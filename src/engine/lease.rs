//! Leases: every write to a migration happens while this process holds that migration's
//! lease in the Store. A lease is held for the engine's `lease_ttl`, renewed while the work goes on,
//! and given back at the end; when a process dies, its leases expire and others take over.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::Engine;

/// How long a lease lasts without renewal unless the settings say otherwise.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// How long commands that act on one migration (`advance`, `tick`, …) wait for another
/// process to give its lease back before they fail.
pub const LEASE_WAIT: Duration = Duration::from_secs(15);

/// The outcome of work that needed a lease.
#[derive(Debug)]
pub enum Leased<T> {
    Done(T),
    /// Someone else holds the lease: who, and until when.
    Busy(String),
}

impl<'a> Engine<'a> {
    /// The Store key of a migration's lease: the tracker and the issue number.
    pub fn lease_key(&self, number: u64) -> String {
        format!("{}#{number}", self.tracker.describe())
    }

    /// Runs `work` while holding the lease on `number`, waiting up to `wait` for it.
    /// The lease is renewed every third of its life while `work` runs; if a renewal finds
    /// the lease taken by another (this process stalled longer than the lease), `work` is
    /// abandoned with an error. The lease is given back at the end, also on error.
    pub async fn leased<T, F>(&self, number: u64, wait: Duration, work: F) -> Result<Leased<T>>
    where
        F: Future<Output = Result<T>>,
    {
        self.leased_on(&self.lease_key(number), &format!("#{number}"), wait, work)
            .await
    }

    /// Like `leased`, for any key; `what` names it in messages ("#12", "the summary issue").
    pub async fn leased_on<T, F>(
        &self,
        key: &str,
        what: &str,
        wait: Duration,
        work: F,
    ) -> Result<Leased<T>>
    where
        F: Future<Output = Result<T>>,
    {
        let key = key.to_string();
        let owner = format!(
            "{}/{}",
            self.run_id,
            self.lease_counter.fetch_add(1, Ordering::Relaxed)
        );
        let ttl = self.lease_ttl;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.store.acquire(&key, &owner, ttl).await? {
                break;
            }
            if !self.store.shared() {
                // Every holder of a lease in a Store no other machine shares runs here:
                // one whose process is gone was killed with the lease in hand, and the
                // work it began is this run's to finish now, not when the lease expires.
                if let Some((holder, _)) = self.store.holder(&key).await? {
                    if holder_is_gone(&holder) {
                        tracing::info!(
                            "{what}: the shepherd that held its lease ({holder}) is gone; taking over"
                        );
                        self.store.release(&key, &holder).await?;
                        continue;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let holder = match self.store.holder(&key).await? {
                    Some((who, until)) => format!(
                        "{what} is being worked on by another shepherd ({who}, lease until {})",
                        until.format("%H:%M:%S UTC")
                    ),
                    None => format!("{what} is being worked on by another shepherd"),
                };
                return Ok(Leased::Busy(holder));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let renew = async {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match self.store.renew(&key, &owner, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        return anyhow!(
                            "lost the lease on {what} (this process stalled longer than {}s); nothing more was written",
                            ttl.as_secs()
                        )
                    }
                    Err(e) => {
                        return anyhow::Error::from(e)
                            .context(format!("renewing the lease on {what}"))
                    }
                }
            }
        };
        let result = tokio::select! {
            r = work => r,
            e = renew => Err(e),
        };
        let released = self.store.release(&key, &owner).await;
        let out = result?;
        released?;
        Ok(Leased::Done(out))
    }

    /// Like `leased`, for commands on one migration: a lease that stays busy is an error.
    pub async fn with_lease<T, F>(&self, number: u64, work: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        match self.leased(number, LEASE_WAIT, work).await? {
            Leased::Done(t) => Ok(t),
            Leased::Busy(who) => Err(anyhow!(
                "{who}; waited {}s: try again in a moment",
                LEASE_WAIT.as_secs()
            )),
        }
    }
}

/// Whether a lease holder (`HOST-PID-xxxxxxxx/N`, a run id and a counter) is a process of
/// this machine that has ended. Only where `/proc` tells (Linux); a process that cannot be
/// looked at, or a pid used again, counts as running, and its lease is left to expire.
fn holder_is_gone(holder: &str) -> bool {
    let run = holder.split('/').next().unwrap_or_default();
    let mut parts = run.rsplit('-');
    let (Some(_), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if pid == std::process::id() || !std::path::Path::new("/proc/self/stat").exists() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command's closing parenthesis: a zombie or dead one is gone.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::holder_is_gone;

    #[test]
    fn a_holder_is_gone_only_when_its_process_is() {
        let me = format!("host-{}-0badf00d/3", std::process::id());
        assert!(!holder_is_gone(&me), "this process runs");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(holder_is_gone(&format!("ci-runner-{pid}-12345678/0")));
        }
        assert!(!holder_is_gone("not a run id"));
        assert!(!holder_is_gone("host-notapid-12345678/1"));
    }
}
