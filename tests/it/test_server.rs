//! What the GitLab and GitHub test servers share: serving an axum app on 127.0.0.1 from a
//! thread of its own, and injected faults: an error status (with `Retry-After`), a lost
//! response, a server that accepts the request and never answers (`Fault::hang`), and one
//! that starts its answer and closes the connection halfway (`Fault::cut`); what tests
//! seed of merge requests and releases (`MrState`, `ReleaseKind`); and the clock the
//! servers stamp with and send as `Date` (`Clock`: real, or held within one second).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::Mutex;

use axum::http::HeaderValue;
use chrono::{DateTime, SubsecRound as _, Utc};

use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::Router;

/// A fault to inject into the next requests that match.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: Option<&'static str>,
    /// The request path ends with this.
    pub path_ends: String,
    pub status: u16,
    pub retry_after: Option<u64>,
    /// Apply the request, then fail (the response is lost).
    pub after: bool,
    pub times: usize,
}

impl Fault {
    /// The `status` of a fault that never answers.
    pub const HANG: u16 = 0;
    /// The `status` of a fault that sends the headers and part of the body, then closes.
    pub const CUT: u16 = 1;

    /// `status` (with `Retry-After: retry_after`) for the next `times` matching requests.
    pub fn status(
        method: &'static str,
        path_ends: &str,
        status: u16,
        retry_after: Option<u64>,
        times: usize,
    ) -> Fault {
        Fault {
            method: Some(method),
            path_ends: path_ends.to_string(),
            status,
            retry_after,
            after: false,
            times,
        }
    }

    /// Accepts the next matching request and never answers it.
    pub fn hang(method: &'static str, path_ends: &str) -> Fault {
        Fault::status(method, path_ends, Fault::HANG, None, 1)
    }

    /// Closes the connection halfway through the answer to the next `times` requests.
    pub fn cut(method: &'static str, path_ends: &str, times: usize) -> Fault {
        Fault::status(method, path_ends, Fault::CUT, None, times)
    }
}

/// The answer that never comes (the connection stays open until the client gives up).
pub async fn never() -> Response {
    std::future::pending().await
}

/// A 200 whose body breaks off: the headers promise 4 KiB, a few bytes come, and a moment
/// later the connection closes.
pub fn cut_response() -> Response {
    let parts = futures::stream::unfold(0, |step| async move {
        match step {
            0 => Some((Ok(Bytes::from_static(b"[{\"id\": 1, \"title\": \"")), 1)),
            1 => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected: connection closed mid-response",
                    )),
                    2,
                ))
            }
            _ => None,
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("content-length", "4096")
        .body(Body::from_stream(parts))
        .unwrap()
}

/// Serves `app` on a free port of 127.0.0.1; returns its base URL.
pub fn serve(app: Router) -> String {
    spawn_server(app, None)
}

/// Stops the server `serve_stoppable` started when dropped (its thread and runtime end
/// once the open connections have closed): a test that starts hundreds of servers does
/// not keep them all.
pub struct Stop(#[allow(dead_code)] tokio::sync::oneshot::Sender<()>);

/// `serve`, with the server stopped when the `Stop` is dropped.
pub fn serve_stoppable(app: Router) -> (String, Stop) {
    let (stop, stopped) = tokio::sync::oneshot::channel();
    (spawn_server(app, Some(stopped)), Stop(stop))
}

fn spawn_server(app: Router, stopped: Option<tokio::sync::oneshot::Receiver<()>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let stop = async move {
                match stopped {
                    Some(stopped) => {
                        let _ = stopped.await;
                    }
                    None => std::future::pending().await,
                }
            };
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .unwrap();
        });
    });
    url
}

/// Takes the first fault that matches this request (counting its uses down).
pub fn take(faults: &mut VecDeque<Fault>, method: &str, path: &str) -> Option<Fault> {
    let i = faults
        .iter()
        .position(|f| f.method.is_none_or(|m| m == method) && path.ends_with(&f.path_ends))?;
    let f = faults[i].clone();
    if f.times <= 1 {
        faults.remove(i);
    } else {
        faults[i].times -= 1;
    }
    Some(f)
}

/// A merge request's (pull request's) state, as a test seeds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MrState {
    Open,
    Merged,
    Closed,
}

/// What kind of release a test publishes: a published one, or one the tracker lists but
/// that is no release yet (GitLab: upcoming; GitHub: draft or pre-release).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseKind {
    Published,
    /// GitLab: `upcoming_release: true` (also when its time is still to come).
    Upcoming,
    /// GitHub: `draft: true`, no `published_at`.
    Draft,
    /// GitHub: `prerelease: true`.
    Prerelease,
}

/// The time a test server stamps on what it records and sends as `Date`: the real clock,
/// or, while held, one second in which everything happens — each reading a millisecond
/// after the one before (within that second), as writes a moment apart in a busy second.
/// GitHub's whole-second stamps then all show the same second; GitLab's milliseconds
/// still tell them apart.
///
/// Stamps never go back and never repeat a second already stamped before a `travel`:
/// moving recorded times into the past must not let a later write stamp an `updated_at`
/// an issue already had (no tracker's clock goes back; a cache keyed by `updated_at` may
/// rely on it).
#[derive(Default)]
pub struct Clock(
    Mutex<Option<(DateTime<Utc>, i64)>>,
    Mutex<Option<DateTime<Utc>>>,
);

impl Clock {
    /// The time to stamp a record with.
    pub fn now(&self) -> DateTime<Utc> {
        let mut held = self.0.lock().unwrap();
        match held.as_mut() {
            Some((second, ms)) => {
                *ms = (*ms + 1).min(999);
                *second + chrono::Duration::milliseconds(*ms)
            }
            None => {
                let mut last = self.1.lock().unwrap();
                let now = Utc::now().max(last.map_or(DateTime::<Utc>::MIN_UTC, |l| {
                    l + chrono::Duration::milliseconds(1)
                }));
                *last = Some(now);
                now
            }
        }
    }

    /// After recorded times moved into the past: the next stamp falls in a second after
    /// every one stamped so far.
    pub fn after_travel(&self) {
        let mut last = self.1.lock().unwrap();
        if let Some(l) = *last {
            *last = Some(l.trunc_subsecs(0) + chrono::Duration::milliseconds(999));
        }
    }

    /// Holds the clock within the second of `at` (`None`: the real clock again).
    pub fn hold(&self, at: Option<DateTime<Utc>>) {
        *self.0.lock().unwrap() = at.map(|t| (t.trunc_subsecs(0), 0));
    }

    /// `Date` for a response: the clock's second, as HTTP writes it.
    pub fn date(&self) -> HeaderValue {
        let at = self
            .0
            .lock()
            .unwrap()
            .map_or_else(Utc::now, |(second, _)| second);
        let text = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        HeaderValue::from_str(&text).expect("a date is a header value")
    }
}
