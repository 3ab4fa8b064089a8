//! kill -9 at random moments of a `reconcile` that moves migrations and sends their
//! events: after a rerun without a kill, every transition recorded on the tracker reached
//! the sink at least once, and a repeat can only follow a kill (at most one per kill).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{command, ok, project_with, recorded, slack_id, SinkServer, TOKEN};

/// SplitMix64, seeded: the same kill moments on every machine.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// The outbox's rows, for a failure's message.
fn outbox(s: &crate::support::Shepherd) -> Vec<String> {
    let store = rusqlite::Connection::open(s.path(".shepherd/state.db")).unwrap();
    let mut rows = store
        .prepare("SELECT id, attempts, error, done_at IS NOT NULL FROM outbox ORDER BY created_at")
        .unwrap();
    rows.query_map([], |r| {
        Ok(format!(
            "{} attempts={} error={:?} done={}",
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, bool>(3)?
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

const SEED: u64 = 0x5EED_0FC0_FFEE;
const TRIALS: usize = 20;
const MIGRATIONS: usize = 3;

#[test]
fn a_kill_at_any_moment_loses_no_event_and_repeats_at_most_one_per_kill() {
    let started = Instant::now();
    let mut rng = Rng(SEED);
    // Each answer takes a moment, so kills land between sends as well as between moves.
    let (sink, url) = SinkServer::start(Duration::from_millis(15));
    let env = [("SHEPHERD_LEASE_TTL", "2s")];
    // How long a whole reconcile takes on this machine now: kills fall within it.
    let (s, _) = migrations(&format!("{url}/calibrate/{TOKEN}"));
    let took = Instant::now();
    ok(&s, &["reconcile"], &env);
    let span = u64::try_from(took.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(50);
    let mut kills = 0;
    for trial in 0..TRIALS {
        let path = format!("/t{trial}/{TOKEN}");
        let (s, numbers) = migrations(&format!("{url}{path}"));
        let wait = rng.below(span);
        let mut child = command(&s, &["reconcile"], &env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait));
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        // Again without a kill; a send that failed (the sink is busy) is the next run's.
        let mut rerun = String::new();
        for _ in 0..3 {
            let out = command(&s, &["reconcile", "--format", "json"], &env)
                .env("SHEPHERD_LOG", "info")
                .output()
                .unwrap();
            assert!(out.status.success(), "trial {trial}: the rerun failed");
            rerun.push_str(&String::from_utf8_lossy(&out.stdout));
            rerun.push_str(&String::from_utf8_lossy(&out.stderr));
            if !outbox(&s).iter().any(|row| row.ends_with("done=false")) {
                break;
            }
        }

        let heard: Vec<String> = sink.received(&path).iter().map(slack_id).collect();
        let mut times: HashMap<&str, usize> = HashMap::new();
        for id in &heard {
            *times.entry(id.as_str()).or_default() += 1;
        }
        let mut recorded_ids = Vec::new();
        for n in &numbers {
            recorded_ids.extend(recorded(&s, *n));
        }
        assert_eq!(
            recorded_ids.len(),
            MIGRATIONS * 3,
            "trial {trial} (kill after {wait} ms of {span}): every migration is done"
        );
        for id in &recorded_ids {
            assert!(
                times.contains_key(id.as_str()),
                "trial {trial} (kill after {wait} ms): {id} was never sent; heard {heard:?}; the outbox: {:?}; the rerun: {rerun}; the comments: {:#?}",
                outbox(&s),
                numbers.iter().map(|n| s.comments(*n)).collect::<Vec<_>>()
            );
        }
        let repeats: usize = times.values().map(|t| t - 1).sum();
        assert!(
            repeats <= usize::from(killed),
            "trial {trial} (kill after {wait} ms): {repeats} repeats: {heard:?}"
        );
        assert_eq!(
            times.len(),
            recorded_ids.len(),
            "trial {trial}: nothing else was sent"
        );
    }
    assert!(kills >= TRIALS / 2, "most trials killed a run: {kills}");
    eprintln!(
        "{TRIALS} trials, {kills} kills, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A project whose one sink is `sink`, with `MIGRATIONS` notes started, every box ticked.
fn migrations(sink: &str) -> (crate::support::Shepherd, Vec<u64>) {
    let s = project_with(
        &format!("[[notify]]\nurl = \"{sink}\"\nformat = \"slack\"\n"),
        true,
    );
    let numbers = (0..MIGRATIONS)
        .map(|_| {
            let out = ok(&s, &["start", "note", "--format", "json"], &[]);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            v["ref"].as_u64().unwrap()
        })
        .collect();
    (s, numbers)
}
