//! One harness for shepherd on a remote tracker's test server: the real binary with the
//! tracker, its URL flag and its token variable.

use std::process::{Command, Output};

use serde_json::Value;

use crate::api::Api;
use crate::support::{stderr, stdout, GITALY_VARS, TO_ACCEPTANCE_TESTING};

pub struct Remote<S: Api> {
    pub server: S,
    dir: tempfile::TempDir,
    tracker: String,
    url_flag: &'static str,
    token_var: &'static str,
    bot: &'static str,
}

impl<S: Api> Remote<S> {
    pub fn new(
        server: S,
        tracker: &str,
        url_flag: &'static str,
        token_var: &'static str,
        bot: &'static str,
    ) -> Remote<S> {
        Remote {
            server,
            dir: tempfile::tempdir().unwrap(),
            tracker: tracker.to_string(),
            url_flag,
            token_var,
            bot,
        }
    }

    pub fn run_as(&self, token: &str, args: &[&str]) -> Output {
        self.run_with(token, &[], args)
    }

    /// Runs with extra environment variables.
    pub fn run_with(&self, token: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_shepherd"))
            .current_dir(self.dir.path())
            .envs(env.iter().copied())
            .env_remove("SHEPHERD_TRACKER")
            .env(self.token_var, token)
            .env("SHEPHERD_RETRY_BASE_MS", "10")
            .args(["--tracker", &self.tracker, self.url_flag, self.server.url()])
            .args(args)
            .output()
            .unwrap()
    }

    pub fn ok_as(&self, token: &str, args: &[&str]) -> String {
        let out = self.run_as(token, args);
        assert!(
            out.status.success(),
            "shepherd {args:?} failed:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs as the bot with `--format json`.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        serde_json::from_str(&self.ok_as(self.bot, &args)).unwrap()
    }

    /// Starts a gitaly-migration; returns its number.
    pub fn start(&self) -> u64 {
        let mut args = vec!["start", "gitaly-migration"];
        args.extend(GITALY_VARS);
        self.json(&args)["ref"].as_u64().unwrap()
    }

    /// Ticks every open item under `section` of issue `n`, as the bot.
    pub fn tick_section(&self, n: u64, section: &str) {
        let body = self.server.body(n);
        let t = n.to_string();
        for item in shepherd::core::checklist::parse(&body)
            .iter()
            .filter(|i| i.in_section(section) && !i.done())
        {
            self.ok_as(self.bot, &["tick", &t, &item.text, "--section", section]);
        }
    }

    /// Ticks every section a gitaly-migration needs to reach Acceptance Testing.
    pub fn tick_through_ready_for_testing(&self, n: u64) {
        for section in TO_ACCEPTANCE_TESTING {
            self.tick_section(n, section);
        }
    }

    pub fn advance(&self, n: u64) -> Value {
        self.json(&["advance", &n.to_string()])
    }

    pub fn labels(&self, n: u64) -> Vec<String> {
        self.server.label_names(n)
    }
}
