//! A limited stage on the GitLab test server, with runs that share no Store: four
//! reconciles at once, each with its own SQLite Store, never put more than `limit`
//! migrations into the stage — the tracker keeps them to it (an entry's audit comment is
//! its claim on a slot; of two that want the last one, the earlier comment wins).

use std::time::Duration;

use super::{flags, reconcile as reconcile_on, seed_flags};
use crate::api::Api;
use crate::gitlab_server::GitLabServer;
use crate::support::{stderr, stdout};

#[test]
fn reconciles_with_separate_stores_keep_a_stage_to_its_limit_through_the_tracker() {
    let s = flags(Some(2));
    let server = GitLabServer::start(&[("bot-token", "shepherd-bot")]);
    let numbers = seed_flags(&server, 6, &["flag::prep", "ready"]);
    server.latency(Duration::from_millis(10));
    // A reconcile with a Store of its own.
    let reconcile = |i: usize| {
        let state = format!("sqlite:{}", s.path(&format!("state-{i}.db")).display());
        reconcile_on(&s, &server, "bot-token", &state, &[])
    };
    let runs: Vec<_> = (0..4)
        .map(|i| reconcile(i).spawn().expect("shepherd starts"))
        .collect();
    let mut outputs = Vec::new();
    for run in runs {
        let out = run.wait_with_output().expect("ends");
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        outputs.push(stdout(&out));
    }
    let in_global = || -> Vec<u64> {
        numbers
            .iter()
            .copied()
            .filter(|n| server.label_names(*n).iter().any(|l| l == "flag::global"))
            .collect()
    };
    // Never more than the limit; fewer only where every run that wanted the last slot saw
    // an earlier claim that then gave way: the next run fills it.
    let after_race = in_global();
    assert!(
        (1..=2).contains(&after_race.len()),
        "{after_race:?}\n{}",
        outputs.join("\n")
    );
    let out = reconcile(4).output().expect("ends");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(in_global().len(), 2);
    // Each entry is one audit comment standing; those that lost withdrew theirs.
    let entries: usize = numbers
        .iter()
        .map(|n| {
            server
                .comment_bodies(*n)
                .iter()
                .filter(|b| b.contains("\"to\":\"global\""))
                .count()
        })
        .sum();
    assert_eq!(entries, 2);
    for n in &numbers {
        assert!(server.label_added_count(*n, "flag::global") <= 1);
    }
}
