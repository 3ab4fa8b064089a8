//! A real Unleash for tests: `UnleashHarness::start()` runs the npm package
//! `unleash-server` (`UNLEASH_VERSION`, the last 6.x, which runs on Node 20) on a free port of
//! 127.0.0.1, on a throw-away PostgreSQL database (`pg::TestDb`), with an admin token of its
//! own (`authentication.initApiTokens`), and waits until `/health` answers. Dropping the
//! harness stops it and drops the database. `UnleashHarness::shared()` is one server for the
//! whole test run (starting Unleash migrates its schema: a few seconds), which the tests
//! share, each with flag names of its own; it goes away with the test binary: the server
//! reads its stdin and, when the binary's end closes it, drops its database and exits.
//!
//! The package comes from `.ci/unleash` (`.ci/run` installs it) or `target/unleash`, where
//! the first test that needs it installs it with npm. Without `node`, `npm` or PostgreSQL
//! the tests are skipped with one line saying so, unless `CI` is set (`support::tool`,
//! `TestDb::create`). `backend.rs` holds the tests of shepherd's `unleash` flags backend.
//!
//! ```ignore
//! let Some(unleash) = UnleashHarness::shared() else { return };
//! let flags = unleash.client(Some("production"));        // shepherd::flags::unleash::Unleash
//! // or point shepherd at it: [flags] backend = "unleash", url = unleash.url(),
//! // UNLEASH_TOKEN = unleash.token()
//! let raw = unleash.feature("my-flag");                    // the Admin API's JSON, or None
//! ```

#![allow(dead_code)]

mod backend;

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shepherd::flags::unleash::Unleash;

use crate::pg::TestDb;
use crate::prom::{block_on, free_port};
use crate::support;

/// The package version the tests run (`.ci/run` installs the same).
pub const UNLEASH_VERSION: &str = "6.10.1";

/// The project every Unleash has.
pub const PROJECT: &str = "default";

/// The environments of the default project.
pub const ENVIRONMENTS: [&str; 2] = ["development", "production"];

/// How long `start` waits for `/health` (the schema's migrations run first).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running Unleash on its own database.
pub struct UnleashHarness {
    child: Child,
    /// Closing it tells the server to drop its database and exit.
    stdin: Option<ChildStdin>,
    url: String,
    token: String,
    dir: PathBuf,
    /// Dropped after the server is gone (the field order is the drop order).
    db: TestDb,
    started_in: Duration,
}

impl UnleashHarness {
    /// Starts an Unleash of this test's own; `None` (after one line saying why) when node,
    /// npm or PostgreSQL is missing and `CI` is not set.
    pub fn start() -> Option<UnleashHarness> {
        let current = std::thread::current();
        let test = current.name().unwrap_or("an Unleash test").to_string();
        let node = support::tool(
            &test,
            "node",
            "the unleash flags tests run a real Unleash server: Node 20 and npm",
        )?;
        let module = package(&test)?;
        // A free port may be taken between finding it and Unleash binding it: try again
        // (on a new database: a failed start drops its own).
        let mut last = String::new();
        for _ in 0..3 {
            match UnleashHarness::launch(&node, &module, TestDb::create()?) {
                Ok(harness) => return Some(harness),
                Err(why) => last = why,
            }
        }
        panic!("Unleash did not start: {last}");
    }

    /// One Unleash for the whole test run, started by the first test that asks; `None` as
    /// for `start`.
    pub fn shared() -> Option<&'static UnleashHarness> {
        static SHARED: OnceLock<Option<UnleashHarness>> = OnceLock::new();
        SHARED.get_or_init(UnleashHarness::start).as_ref()
    }

    fn launch(node: &Path, module: &Path, db: TestDb) -> Result<UnleashHarness, String> {
        let dir = match tempfile::Builder::new()
            .prefix("shepherd-unleash")
            .tempdir()
        {
            Ok(dir) => dir.keep(),
            Err(e) => return Err(e.to_string()),
        };
        let port = free_port();
        let token = format!("*:*.{}", random_hex());
        let connection = connection(db.url())?;
        let config = json!({
            "dir": dir,
            "adminUrl": db.admin_url(),
            "database": db.name(),
            "options": {
                "db": connection,
                "server": {"host": "127.0.0.1", "port": port},
                "authentication": {
                    "type": "open-source",
                    "createAdminUser": false,
                    "initApiTokens": [{
                        "secret": token,
                        "type": "admin",
                        "project": "*",
                        "environment": "*",
                        "tokenName": "shepherd-tests",
                    }],
                },
                "versionCheck": {"enable": false},
                "logLevel": "warn",
            },
        });
        let entry = dir.join("start.js");
        let log_path = dir.join("unleash.log");
        let files = std::fs::write(&entry, ENTRY)
            .and_then(|()| std::fs::File::create(&log_path))
            .and_then(|log| Ok((log.try_clone()?, log)));
        let (out, err) = match files {
            Ok(f) => f,
            Err(e) => return Err(format!("cannot write {}: {e}", dir.display())),
        };
        let started = Instant::now();
        let mut command = Command::new(node);
        command
            .arg(&entry)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &dir)
            .env("UNLEASH_MODULE", module)
            .env("SHEPHERD_UNLEASH", config.to_string())
            .env("SEND_TELEMETRY", "false")
            .env("CHECK_VERSION", "false")
            .env("NODE_ENV", "production")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return Err(format!("cannot run {}: {e}", node.display())),
        };
        let stdin = child.stdin.take();
        let mut harness = UnleashHarness {
            child,
            stdin,
            url: format!("http://127.0.0.1:{port}"),
            token,
            dir,
            db,
            started_in: Duration::ZERO,
        };
        let deadline = started + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = harness.child.try_wait() {
                return Err(format!("it exited ({status}):\n{}", harness.log()));
            }
            if matches!(harness.request("GET", "/health", None, true), Ok((200, _))) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no /health within {START_TIMEOUT:?}:\n{}",
                    harness.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        harness.started_in = started.elapsed();
        println!(
            "Unleash {UNLEASH_VERSION} started in {:.1} s at {}",
            harness.started_in.as_secs_f64(),
            harness.url
        );
        Ok(harness)
    }

    /// Unleash's address, as `[flags] url` takes it: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin token (`UNLEASH_TOKEN`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The server's database (`shepherd_test_…`), and the URL of the server's own, to
    /// look it up.
    pub fn database(&self) -> (&str, &str) {
        (self.db.name(), self.db.admin_url())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long the server took to answer `/health`.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// shepherd's backend on this server's default project, with the admin token, the
    /// configured environment `environment`, and short retries.
    pub fn client(&self, environment: Option<&str>) -> Unleash {
        self.client_with(PROJECT, environment, Some(&self.token))
    }

    /// shepherd's backend on `project` with `token` (none: no `Authorization` header).
    pub fn client_with(
        &self,
        project: &str,
        environment: Option<&str>,
        token: Option<&str>,
    ) -> Unleash {
        Unleash::new(
            &self.url,
            project,
            environment.map(String::from),
            token.map(String::from),
            Duration::from_secs(5),
            Duration::from_secs(30),
        )
        .expect("an Unleash client")
        .with_retries(shepherd::http::retry::Policy {
            attempts: 2,
            min_delay: Duration::from_millis(100),
            ..shepherd::http::retry::Policy::for_services()
        })
    }

    /// The feature `name` of the default project as the Admin API shows it, or `None` when
    /// there is none (or it is archived).
    pub fn feature(&self, name: &str) -> Option<Value> {
        let path = format!("/api/admin/projects/{PROJECT}/features/{name}");
        match self.request("GET", &path, None, true) {
            Ok((200, body)) => Some(serde_json::from_str(&body).expect("the feature's JSON")),
            Ok((404, _)) => None,
            other => panic!("GET {path}: {other:?}"),
        }
    }

    /// The strategies of `name` in `environment`, as the Admin API shows them.
    pub fn strategies(&self, name: &str, environment: &str) -> Vec<Value> {
        let feature = self
            .feature(name)
            .unwrap_or_else(|| panic!("no feature {name}"));
        feature["environments"]
            .as_array()
            .expect("environments")
            .iter()
            .find(|e| e["name"] == environment)
            .unwrap_or_else(|| panic!("{name} has no environment {environment}: {feature}"))
            ["strategies"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// One Admin API request with the admin token (`auth`) or none: its status and body.
    /// For tests that change a flag behind shepherd's back.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> Result<(u16, String), String> {
        let url = format!("{}{path}", self.url);
        let token = auth.then(|| self.token.clone());
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        block_on(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?;
            let mut request = client.request(method, &url);
            if let Some(token) = token {
                request = request.header("authorization", token);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|e| e.to_string())?;
            Ok((status, body))
        })
    }

    /// The end of the server's log.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("unleash.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Closes the server's stdin (it drops its database and exits) and waits a little for
    /// it; then kills it.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for UnleashHarness {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The entry the server runs: starts Unleash with the options of `SHEPHERD_UNLEASH`, and
/// when its stdin closes (the harness dropped, or the test binary gone), drops its
/// database, removes its directory and exits.
const ENTRY: &str = r#"
const fs = require('fs');
const moduleDir = process.env.UNLEASH_MODULE;
const config = JSON.parse(process.env.SHEPHERD_UNLEASH);
const unleash = require(moduleDir);
const { Client } = require(require.resolve('pg', { paths: [moduleDir] }));

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  // Dropping the database cuts Unleash's connections, whose errors no longer matter.
  process.on('uncaughtException', () => {});
  process.on('unhandledRejection', () => {});
  setTimeout(() => process.exit(0), 8000).unref();
  fs.rmSync(config.dir, { recursive: true, force: true });
  try {
    const admin = new Client({ connectionString: config.adminUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${config.database}" WITH (FORCE)`);
    await admin.end();
  } catch (e) {
    console.error('could not drop the test database', config.database, e);
  }
  process.exit(0);
}
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);

unleash.start(config.options).then(
  () => console.log('unleash started'),
  (e) => { console.error('unleash did not start', e); process.exit(1); },
);
"#;

/// The installed `unleash-server` package: `.ci/unleash`, `target/unleash`, or installed
/// into `target/unleash` now with npm (once per run). `None` when npm is missing and `CI`
/// is not set.
fn package(test: &str) -> Option<PathBuf> {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let installed = |dir: &Path| {
        let module = dir.join("node_modules/unleash-server");
        let manifest = std::fs::read_to_string(module.join("package.json")).unwrap_or_default();
        let version: Value = serde_json::from_str(&manifest).unwrap_or(Value::Null);
        (version["version"] == UNLEASH_VERSION).then_some(module)
    };
    for dir in [root.join(".ci/unleash"), root.join("target/unleash")] {
        if let Some(module) = installed(&dir) {
            return Some(module);
        }
    }
    let npm = support::tool(
        test,
        "npm",
        "Node 20 and npm install unleash-server for the unleash flags tests",
    )?;
    let dir = root.join("target/unleash");
    std::fs::create_dir_all(&dir).expect("target/unleash");
    let package = format!("unleash-server@{UNLEASH_VERSION}");
    let out = Command::new(npm)
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(&package)
        .output()
        .expect("npm runs (Node 20 and npm are needed for the unleash tests)");
    assert!(
        out.status.success(),
        "npm install {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(installed(&dir).unwrap_or_else(|| panic!("npm installed no {package}")))
}

/// The `db` options of Unleash (knex's `pg` connection) for the database at `url`.
fn connection(url: &str) -> Result<Value, String> {
    let url = url::Url::parse(url).map_err(|e| format!("bad database URL: {e}"))?;
    Ok(json!({
        "host": url.host_str().unwrap_or("127.0.0.1"),
        "port": url.port().unwrap_or(5432),
        "user": unescape(url.username()),
        "password": url.password().map(unescape).unwrap_or_default(),
        "database": url.path().trim_start_matches('/'),
        "ssl": false,
    }))
}

/// A URL's percent-encoded part as text.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// 32 hex digits that no other run guesses.
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
