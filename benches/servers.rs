// The tests' GitLab and GitHub test servers and seeds, for a benchmark that measures
// against them: `include!("servers.rs")` at a benchmark's root, where these modules must
// stand (they name each other as `crate::…`).

#[path = "../tests/it/api.rs"]
mod api;
#[path = "../tests/it/github_server.rs"]
mod github_server;
#[path = "../tests/it/gitlab_server.rs"]
mod gitlab_server;
#[path = "../tests/it/seeds.rs"]
mod seeds;
#[path = "../tests/it/test_server.rs"]
mod test_server;
