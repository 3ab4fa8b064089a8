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
        let owner = match self.acquire_lease(key, what, wait).await? {
            Ok(owner) => owner,
            Err(busy) => return Ok(Leased::Busy(busy)),
        };
        let ttl = self.lease_ttl;
        let renew = async {
            loop {
                tokio::time::sleep(ttl / 3).await;
                if let Some(e) = self.lease_lost(what, self.store.renew(key, &owner, ttl).await) {
                    return e;
                }
            }
        };
        let result = tokio::select! {
            r = work => r,
            e = renew => Err(e),
        };
        let released = self.store.release(key, &owner).await;
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
            Leased::Busy(who) => Err(busy(&who)),
        }
    }

    /// Takes the lease on `key`, waiting up to `wait`: the owner it was taken as, or who
    /// holds it (`Err`).
    async fn acquire_lease(
        &self,
        key: &str,
        what: &str,
        wait: Duration,
    ) -> Result<std::result::Result<String, String>> {
        let owner = format!(
            "{}/{}",
            self.run_id,
            self.lease_counter.fetch_add(1, Ordering::Relaxed)
        );
        let ttl = self.lease_ttl;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.store.acquire(key, &owner, ttl).await? {
                return Ok(Ok(owner));
            }
            if !self.store.shared() {
                // Every holder of a lease in a Store no other machine shares runs here:
                // one whose process is gone was killed with the lease in hand, and the
                // work it began is this run's to finish now, not when the lease expires.
                if let Some((holder, _)) = self.store.holder(key).await? {
                    if holder_is_gone(&holder) {
                        tracing::info!(
                            "{what}: the shepherd that held its lease ({holder}) is gone; taking over"
                        );
                        self.store.release(key, &holder).await?;
                        continue;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let holder = match self.store.holder(key).await? {
                    Some((who, until)) => format!(
                        "{what} is being worked on by another shepherd ({who}, lease until {})",
                        until.format("%H:%M:%S UTC")
                    ),
                    None => format!("{what} is being worked on by another shepherd"),
                };
                return Ok(Err(holder));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The error a renewal's answer means, if any: the lease taken by another, or the
    /// Store failing.
    fn lease_lost(
        &self,
        what: &str,
        renewed: std::result::Result<bool, crate::store::StoreError>,
    ) -> Option<anyhow::Error> {
        match renewed {
            Ok(true) => None,
            Ok(false) => Some(anyhow!(
                "lost the lease on {what} (this process stalled longer than {}s); nothing more was written",
                self.lease_ttl.as_secs()
            )),
            Err(e) => {
                Some(anyhow::Error::from(e).context(format!("renewing the lease on {what}")))
            }
        }
    }

    /// Takes the lease on `number` as `with_lease` does (a lease that stays busy is an
    /// error) and adds it to `held`, the last one.
    pub(super) async fn hold(&self, held: &HeldLeases, number: u64) -> Result<()> {
        let (key, what) = (self.lease_key(number), format!("#{number}"));
        match self.acquire_lease(&key, &what, LEASE_WAIT).await? {
            Ok(owner) => {
                held.lock().push(Held { key, owner, what });
                Ok(())
            }
            Err(who) => Err(busy(&who)),
        }
    }

    /// Gives back the last lease of `held`.
    pub(super) async fn give_back(&self, held: &HeldLeases) -> Result<()> {
        let Some(h) = held.lock().pop() else {
            return Ok(());
        };
        Ok(self.store.release(&h.key, &h.owner).await?)
    }

    /// Renews every lease in `held` every third of a lease's life, for as long as it is
    /// polled; ends with the position of the first lease a renewal lost, and why. A lease
    /// given back while its renewal was under way is not lost.
    pub(super) async fn keep_renewed(&self, held: &HeldLeases) -> (usize, anyhow::Error) {
        let ttl = self.lease_ttl;
        loop {
            tokio::time::sleep(ttl / 3).await;
            let now: Vec<Held> = held.lock().clone();
            for h in now {
                let renewed = self.store.renew(&h.key, &h.owner, ttl).await;
                if let Some(e) = self.lease_lost(&h.what, renewed) {
                    let at = held.lock().iter().position(|x| x.owner == h.owner);
                    if let Some(at) = at {
                        return (at, e);
                    }
                }
            }
        }
    }
}

/// Leases taken one inside another's work (a child started while its parent's lease is
/// held) and held together, each renewed by `keep_renewed` until `give_back`, innermost
/// first: the explicit form of nested `with_lease`s.
#[derive(Default)]
pub(super) struct HeldLeases(std::sync::Mutex<Vec<Held>>);

impl HeldLeases {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many are held.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Forgets (without giving back) all but the first `n`: the work that held them was
    /// abandoned, as a dropped `with_lease` leaves its lease to expire.
    pub(super) fn forget_after(&self, n: usize) {
        self.lock().truncate(n);
    }
}

#[derive(Clone)]
struct Held {
    key: String,
    owner: String,
    what: String,
}

/// A lease that stayed busy past `LEASE_WAIT`, as an error.
fn busy(who: &str) -> anyhow::Error {
    anyhow!(
        "{who}; waited {}s: try again in a moment",
        LEASE_WAIT.as_secs()
    )
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
