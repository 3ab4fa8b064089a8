//! The edges of the service (DESIGN §12), as a client sees them on a real socket: a
//! GitLab delivery without its token is refused before its body is read (a 24 MiB flood
//! leaves the server's memory where it was), at most eight bodies are read at once (more
//! get 503 with `Retry-After`) and a body that does not come is cut off, connections that
//! stall in their headers do not stop `/healthz` and are closed after 10 s,
//! `--max-connections` holds new connections back, a delivery about an issue that is no
//! migration is dropped, not retried, and `serve` on the local tracker needs no secret.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::service::Service;
use super::{gitlab_headers, gitlab_issue_hook, gitlab_lab, sample, serve_on_gitlab, SECRET};
use crate::api::Api;
use crate::gitlab_server::PROJECT;
use crate::support::{start_gitaly, Shepherd, T0};

const MIB: usize = 1024 * 1024;

/// A service on the local tracker of a fresh directory, with the webhook secret set.
fn local_service(serve_args: &[&str], env: &[(&str, &str)]) -> (Shepherd, Service) {
    let s = Shepherd::new();
    start_gitaly(&s, T0);
    let mut all = vec![("SHEPHERD_WEBHOOK_SECRET", SECRET)];
    all.extend_from_slice(env);
    let service = Service::start_args(s.dir.path(), &[], serve_args, &all);
    (s, service)
}

/// A connection that has sent the head of a POST to `path` with `headers`, declaring a
/// body of `length` bytes, and nothing of the body.
fn post_head(addr: &str, path: &str, headers: &[(&str, &str)], length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connects");
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("the head is sent");
    stream
}

/// The status line and headers of the answer on `stream` (lower case), read within
/// `within`; None when nothing came.
fn answer_head(stream: &mut TcpStream, within: Duration) -> Option<String> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).to_lowercase();
    (!text.is_empty()).then_some(text)
}

fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Waits up to `within` for the server to close `stream`; whether it did.
fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// The process's peak resident memory, in bytes.
fn peak_memory(service: &Service) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", service.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

#[test]
fn deliveries_without_their_token_are_refused_before_the_body_is_read() {
    let (_s, service) = local_service(&[], &[]);
    let addr = service.addr.clone();
    // The head alone, declaring 24 MiB: the answer comes without a byte of the body.
    let refused = [
        ("/hooks/gitlab", vec![("X-Gitlab-Event", "Issue Hook")]),
        ("/hooks/gitlab", vec![("X-Gitlab-Token", "wrong")]),
        ("/hooks/github", vec![("X-GitHub-Event", "issues")]),
    ];
    for (path, headers) in &refused {
        let mut stream = post_head(&addr, path, headers, 24 * MIB);
        let head = answer_head(&mut stream, Duration::from_secs(5));
        let head = head.unwrap_or_else(|| panic!("{path} {headers:?}: no answer before the body"));
        assert_eq!(status(&head), 401, "{path} {headers:?}: {head}");
    }
    // With its signature header, a GitHub body is read (the signature needs it): no
    // answer until it comes.
    let mut signed = post_head(
        &addr,
        "/hooks/github",
        &[("X-Hub-Signature-256", &format!("sha256={}", "0".repeat(64)))],
        24 * MIB,
    );
    assert_eq!(answer_head(&mut signed, Duration::from_millis(500)), None);
    drop(signed);

    // 64 at once, each sending 24 MiB without a token: none is read whole, and the
    // server's memory stays where it was (reading them all took 1.6 GB).
    let before = peak_memory(&service);
    let senders: Vec<_> = (0..64)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut stream = post_head(&addr, "/hooks/gitlab", &[], 24 * MIB);
                stream
                    .set_write_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while sent < 24 * MIB {
                    match stream.write(&chunk) {
                        Ok(n) => sent += n,
                        Err(e) => return (sent, Some(e.kind())),
                    }
                }
                (sent, None)
            })
        })
        .collect();
    for sender in senders {
        let (sent, error) = sender.join().unwrap();
        assert!(sent < 24 * MIB, "a 24 MiB body was read whole");
        assert!(
            !matches!(error, Some(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
            "the server neither read nor closed: {error:?}"
        );
    }
    let grown = peak_memory(&service).saturating_sub(before);
    assert!(
        grown < 200 * MIB as u64,
        "peak memory grew by {} MiB",
        grown / MIB as u64
    );
    assert_eq!(service.get("/healthz").0, 200);
}

#[test]
fn at_most_eight_bodies_are_read_at_once_and_a_slow_one_is_cut_off() {
    let (_s, service) = local_service(&[], &[("SHEPHERD_BODY_TIMEOUT", "3s")]);
    let addr = service.addr.clone();
    let headers = gitlab_headers(SECRET, "slow");
    // Eight deliveries whose bodies come slowly: a few bytes, then nothing.
    let mut slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = post_head(&addr, "/hooks/gitlab", &headers, 1000);
            stream.write_all(b"{\"object_kind\"").unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    // A ninth is refused once the eight are being read.
    let body = gitlab_issue_hook(1, "", PROJECT);
    let busy = loop {
        let mut stream = post_head(
            &addr,
            "/hooks/gitlab",
            &gitlab_headers(SECRET, "9th"),
            body.len(),
        );
        stream.write_all(&body).unwrap();
        let head = answer_head(&mut stream, Duration::from_secs(5)).unwrap_or_default();
        if status(&head) == 503 {
            break head;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a ninth body was read beside eight slow ones: {head}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let retry_after = busy
        .lines()
        .find_map(|l| l.strip_prefix("retry-after:"))
        .map(str::trim);
    assert!(
        retry_after.is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s > 0)),
        "{busy}"
    );
    // The slow ones are cut off at the body timeout: 408, and the connection closed.
    for stream in &mut slow {
        let head = answer_head(stream, Duration::from_secs(10)).expect("an answer");
        assert_eq!(status(&head), 408, "{head}");
        assert!(closed(stream, Duration::from_secs(5)));
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    // The slots are free again.
    let (code, text) = service.post("/hooks/gitlab", &gitlab_headers(SECRET, "after"), &body);
    assert_eq!(code, 202, "{text}");
    let (_, metrics) = service.get("/metrics");
    assert!(
        sample(
            &metrics,
            "shepherd_webhook_deliveries_total{source=\"gitlab\",result=\"busy\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
}

#[test]
fn stalled_connections_leave_healthz_answering_and_are_closed_after_ten_seconds() {
    let (_s, service) = local_service(&[], &[]);
    let opened = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut stream = TcpStream::connect(&service.addr).expect("connects");
            stream
                .write_all(b"POST /hooks/gitlab HTTP/1.1\r\nHost: x\r\nContent-Le")
                .unwrap();
            stream
        })
        .collect();
    let asked = Instant::now();
    let (code, _) = service.get("/healthz");
    assert_eq!(code, 200);
    // Well before the stalled ones' 10 s: they hold nothing up (a busy machine may take a
    // second or so to answer).
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "/healthz took {:?} beside 300 stalled connections",
        asked.elapsed()
    );
    // Not closed before their 10 s (counted from when the first one opened: opening 300
    // takes a while on a busy machine), closed soon after.
    let until_nine = Duration::from_secs(9).saturating_sub(opened.elapsed());
    if !until_nine.is_zero() {
        assert!(
            !closed(&mut stalled[0], until_nine),
            "closed {:?} after it opened",
            opened.elapsed()
        );
    }
    for stream in &mut stalled {
        assert!(closed(stream, Duration::from_secs(15)), "still open");
    }
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(25),
        "{took:?}"
    );
    assert_eq!(service.get("/healthz").0, 200);
}

#[test]
fn max_connections_holds_new_connections_back_until_one_closes() {
    let (_s, service) = local_service(
        &["--max-connections", "4"],
        &[("SHEPHERD_HEADER_TIMEOUT", "3s")],
    );
    // Three stalled in their first request's headers, and one kept alive, idle after
    // its first answer.
    let mut stalled: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(&service.addr).expect("connects");
            stream.write_all(b"GET /heal").unwrap();
            stream
        })
        .collect();
    let mut idle = TcpStream::connect(&service.addr).expect("connects");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = answer_head(&mut idle, Duration::from_secs(5)).expect("answered");
    assert_eq!(status(&head), 200, "{head}");
    stalled.push(idle);
    std::thread::sleep(Duration::from_millis(300));
    let mut fifth = TcpStream::connect(&service.addr).expect("the kernel takes it");
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        answer_head(&mut fifth, Duration::from_secs(1)),
        None,
        "a fifth connection was served beside four"
    );
    // The four are closed at their header timeout; then the fifth is served.
    let head = answer_head(&mut fifth, Duration::from_secs(10)).expect("served at last");
    assert_eq!(status(&head), 200, "{head}");
    for stream in &mut stalled {
        assert!(closed(stream, Duration::from_secs(5)), "still open");
    }
    let out = Shepherd::new().run(&["serve", "--max-connections", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_delivery_about_no_migration_is_dropped_not_retried() {
    let lab = gitlab_lab();
    let n = lab.start();
    let marked = lab.server.body(n);
    let plain = lab
        .server
        .seed("Just an issue", "No marker here.", &[], "alice");
    let dir = tempfile::tempdir().unwrap();
    let service = serve_on_gitlab(&lab, dir.path(), &[]);
    let tracker = format!("gitlab:{PROJECT}");
    // Deliveries whose bodies carry a migration's marker, about an issue that does not
    // exist and about one that has none.
    for (issue, uuid) in [(99_999, "gone"), (plain, "plain")] {
        let body = gitlab_issue_hook(issue, &marked, PROJECT);
        let (code, text) = service.post("/hooks/gitlab", &gitlab_headers(SECRET, uuid), &body);
        assert_eq!(code, 202, "{text}");
        assert!(text.contains(&format!("#{issue}")), "{text}");
    }
    service.wait_for("both to be dropped", || {
        let (_, metrics) = service.get("/metrics");
        sample(
            &metrics,
            &format!("shepherd_advances_total{{tracker=\"{tracker}\",result=\"dropped\"}}"),
        ) == Some(2.0)
    });
    // The warnings reach the log through a pipe: a moment after the counter.
    let warned = |log: &str, key: &str| {
        log.lines()
            .any(|l| l.contains("WARN") && l.contains(key) && l.contains("dropped"))
    };
    let keys = [format!("{tracker}#99999"), format!("{tracker}#{plain}")];
    service.wait_for("both warnings in the log", || {
        let log = service.log();
        keys.iter().all(|k| warned(&log, k))
    });
    let log = service.log();
    assert!(log.contains("issue #99999 does not exist"), "{log}");
    assert!(log.contains("has no shepherd marker"), "{log}");
    let (_, metrics) = service.get("/metrics");
    for series in [
        "shepherd_failing_migrations",
        "shepherd_queue_depth",
        &format!("shepherd_advances_total{{tracker=\"{tracker}\",result=\"failed\"}}"),
    ] {
        assert!(
            sample(&metrics, series).is_none_or(|v| v == 0.0),
            "{series}: {metrics}"
        );
    }
    // Nothing asks for them again.
    std::thread::sleep(Duration::from_secs(2));
    let asked = lab
        .server
        .log()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/issues/99999"))
        .count();
    assert_eq!(asked, 1, "issue 99999 was read again");
}

#[test]
fn serve_on_the_local_tracker_needs_no_webhook_secret() {
    let s = Shepherd::new();
    start_gitaly(&s, T0);
    let mut service = Service::start(s.dir.path(), &[], &[]);
    assert!(!service.log().contains("WARNING"), "{}", service.log());
    // Without a secret every delivery is refused.
    let (code, _) = service.post("/hooks/gitlab", &gitlab_headers("", "x"), b"{}");
    assert_eq!(code, 401);
    let (code, _) = service.post("/hooks/github", &[("X-GitHub-Event", "ping")], b"{}");
    assert_eq!(code, 401);
    assert_eq!(service.terminate(), Some(0));
}
