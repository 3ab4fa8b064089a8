//! `shepherd serve` as a process, and a bare HTTP client for it: shared by the service's
//! tests and `benches/serve.rs` (which uses part of it).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `shepherd serve`: its address and what it wrote on stderr.
pub struct Service {
    pub child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Service {
    pub fn start(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Service {
        Service::start_args(dir, args, &[], env)
    }

    /// `shepherd serve SERVE_ARGS` of the GitLab test server's project at `url` on the
    /// Store at `state`, with `args` more before `serve` and `env`.
    pub fn on_gitlab(
        dir: &std::path::Path,
        url: &str,
        state: &str,
        args: &[&str],
        serve_args: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let tracker = format!("gitlab:{}", crate::gitlab_server::PROJECT);
        let mut all = vec!["--tracker", &tracker, "--gitlab-url", url, "--state", state];
        all.extend(args);
        Service::start_args(dir, &all, serve_args, env)
    }

    /// `shepherd ARGS serve --listen 127.0.0.1:0 SERVE_ARGS`, waited for until ready.
    pub fn start_args(
        dir: &std::path::Path,
        args: &[&str],
        serve_args: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shepherd"))
            .current_dir(dir)
            .env_remove("SHEPHERD_TRACKER")
            .env_remove("SHEPHERD_WEBHOOK_SECRET")
            .env_remove("SHEPHERD_WEBHOOK_SIGNING_TOKEN")
            .env("SHEPHERD_LOG", "shepherd=info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .args(args)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(serve_args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shepherd serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split(' ').next().unwrap_or_default().to_string());
                }
                let mut log = keep.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not start:\n{}", log.lock().unwrap()));
        let service = Service { child, addr, log };
        service.wait_for("ready", || service.get("/readyz").0 == 200);
        service
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Polls `done` every 100 ms for up to a minute.
    pub fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}; serve said:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(&self.addr, "GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        http(&self.addr, "POST", path, headers, body)
    }

    /// SIGTERM, then the exit code (within 40 s: 30 s to finish what is in hand).
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection; the status and the body. A connection
/// that fails counts as status 0.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() || stream.write_all(body).is_err() {
        return (0, String::new());
    }
    let mut response = Vec::new();
    if stream.read_to_end(&mut response).is_err() {
        return (0, String::new());
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
