//! The one integration-test binary: runs the real `shepherd` binary (and, for crash
//! injection, the engine on a faulty tracker) against the local tracker.

mod api;
mod bad_input;
mod bad_values;
mod cli;
mod commands;
mod concurrency;
mod crash;
mod differential;
mod facts;
mod feature_flag;
mod flags_gitlab;
mod flags_local;
mod gitaly;
mod github;
mod github_server;
mod gitlab;
mod gitlab_server;
mod kill;
mod local;
mod metric_gates;
mod pg;
mod prom;
mod readme;
mod remote;
mod remote_race;
mod render;
mod report;
mod serve;
mod stays;
mod store;
mod support;
mod test_server;
mod tidy;
mod unleash;
mod validate_sections;
