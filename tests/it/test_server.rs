//! What the GitLab and GitHub test servers share: serving an axum app on 127.0.0.1 from a
//! thread of its own, and injected faults: an error status (with `Retry-After`), a lost
//! response, a server that accepts the request and never answers (`Fault::hang`), and one
//! that starts its answer and closes the connection halfway (`Fault::cut`); what tests
//! seed of merge requests and releases (`MrState`, `ReleaseKind`); and the clock the
//! servers stamp with and send as `Date` (`Clock`: real, or held within one second).
//!
//! `Server` is either server as a test holds it; `Served` is what each server's state tells
//! the machinery both share: the request log, faults and latency, the handler that logs a
//! request and checks its token before the tracker's own routes answer it, paging, and
//! what moving the clock does to the issues it keeps.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use chrono::{DateTime, SubsecRound as _, Utc};
use serde_json::Value;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
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

    /// Applies the next `times` matching requests, then answers `status`: the response
    /// is lost.
    pub fn lost(method: &'static str, path_ends: &str, status: u16, times: usize) -> Fault {
        Fault {
            after: true,
            ..Fault::status(method, path_ends, status, None, times)
        }
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

/// When a merge request was merged (`None`: it is not).
pub type MergedAt = Option<DateTime<Utc>>;

/// A merge request (GitHub: pull request) as a test server keeps it.
pub struct Change {
    pub project: String,
    pub number: u64,
    /// The issue it was recorded for.
    pub issue: u64,
    pub title: String,
    pub state: MrState,
    pub merged_at: MergedAt,
    pub created_at: DateTime<Utc>,
    /// Moved by every change: a new state, a new reference to an issue.
    pub updated_at: DateTime<Utc>,
}

impl Change {
    /// The next merge request of `project` among `list`, for `issue`, opened `now`.
    pub fn next<'a>(
        list: impl Iterator<Item = &'a Change>,
        project: &str,
        issue: u64,
        title: String,
        now: DateTime<Utc>,
    ) -> Change {
        let numbers = list.filter(|c| c.project == project).map(|c| c.number);
        Change {
            project: project.to_string(),
            number: numbers.max().unwrap_or(0) + 1,
            issue,
            title,
            state: MrState::Open,
            merged_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether this is merge request `number` of `project`.
    pub fn is(&self, project: &str, number: u64) -> bool {
        self.project == project && self.number == number
    }

    /// Gives it `state`; only a merged one keeps the merge time `at`.
    pub fn set(&mut self, state: MrState, at: MergedAt) {
        self.state = state;
        self.merged_at = at.filter(|_| state == MrState::Merged);
    }

    /// Moves its times `d` into the past.
    pub fn travel(&mut self, d: chrono::Duration) {
        self.created_at -= d;
        self.updated_at -= d;
        self.merged_at = self.merged_at.map(|t| t - d);
    }
}

/// A release as a test server keeps it.
pub struct Published {
    pub project: String,
    pub tag: String,
    pub at: DateTime<Utc>,
    pub kind: ReleaseKind,
}

impl Published {
    /// Release `tag` of `project` at `at`, of `kind`, which must be one of `kinds` (the
    /// tracker's own).
    pub fn new(project: &str, tag: &str, at: DateTime<Utc>, kind: ReleaseKind) -> Published {
        Published {
            project: project.to_string(),
            tag: tag.to_string(),
            at,
            kind,
        }
    }
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

/// One request as a server's handler sees it.
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The query's pairs, decoded.
    pub query: Vec<(String, String)>,
}

impl Request {
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// A header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the body says it is JSON.
    pub fn is_json(&self) -> bool {
        self.header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    }
}

/// What both servers keep of the requests: the log, and the faults still to inject.
pub struct Common<L> {
    pub log: Vec<L>,
    pub faults: VecDeque<Fault>,
}

impl<L> Default for Common<L> {
    fn default() -> Self {
        Common {
            log: Vec::new(),
            faults: VecDeque::new(),
        }
    }
}

/// A test server's shared state, as the machinery both servers share sees it.
pub trait Served: Send + Sync + Sized + 'static {
    /// What the server keeps behind its lock.
    type Data: Send;
    /// One request as the server logs it.
    type Logged: Clone;
    /// The message of an injected fault's error.
    const FAULT: &'static str;
    /// The message of a 401.
    const UNAUTHORIZED: &'static str;

    fn data(&self) -> &Mutex<Self::Data>;
    fn latency(&self) -> &Mutex<Duration>;
    fn clock(&self) -> &Clock;
    fn common(data: &mut Self::Data) -> &mut Common<Self::Logged>;
    /// The status a logged request was answered with (0 while unanswered).
    fn status(logged: &mut Self::Logged) -> &mut u16;
    fn method_and_path(logged: &Self::Logged) -> (&str, &str);
    /// The issues by number (GitLab: iid).
    fn issues(data: &mut Self::Data) -> &mut BTreeMap<u64, Value>;
    /// Each issue's comments (GitLab: notes), oldest first.
    fn comments(data: &Self::Data) -> &[(u64, Value)];
    fn labels(data: &Self::Data) -> &[Value];
    /// A time as the tracker writes it in its JSON.
    fn stamp(t: DateTime<Utc>) -> Value;
    /// Moves what is recorded of issue `only` (or of everything) `d` into the past.
    fn shift(data: &mut Self::Data, only: Option<u64>, d: chrono::Duration);
    /// The tracker's error answer.
    fn error(status: StatusCode, message: &str) -> Response;
    /// The answer to a request; `None` for a request that is never answered.
    fn answer(&self, request: &Request) -> Option<Response>;
}

/// A test server that runs until it is dropped.
pub struct Server<S> {
    pub url: String,
    pub shared: Arc<S>,
    /// Stops the server when this is dropped.
    _stop: Stop,
}

impl<S: Served> Server<S> {
    /// Serves `shared` on a free port.
    pub fn serve(shared: S) -> Server<S> {
        let shared = Arc::new(shared);
        let (url, stop) = serve_stoppable(
            Router::new()
                .fallback(handle::<S>)
                .with_state(shared.clone()),
        );
        Server {
            url,
            shared,
            _stop: stop,
        }
    }

    fn lock(&self) -> MutexGuard<'_, S::Data> {
        self.shared.data().lock().unwrap()
    }

    pub fn log(&self) -> Vec<S::Logged> {
        S::common(&mut self.lock()).log.clone()
    }

    pub fn clear_log(&self) {
        S::common(&mut self.lock()).log.clear();
    }

    pub fn fail(&self, fault: Fault) {
        S::common(&mut self.lock()).faults.push_back(fault);
    }

    pub fn clear_faults(&self) {
        S::common(&mut self.lock()).faults.clear();
    }

    pub fn set_latency(&self, d: Duration) {
        *self.shared.latency().lock().unwrap() = d;
    }

    /// Holds the server's clock within the second of `at` (`None`: the real clock): every
    /// write stamped within that second, every answer dated with it.
    pub fn hold_clock(&self, at: Option<DateTime<Utc>>) {
        self.shared.clock().hold(at);
    }

    pub fn issue(&self, n: u64) -> Value {
        S::issues(&mut self.lock())[&n].clone()
    }

    pub fn issues(&self) -> Vec<Value> {
        S::issues(&mut self.lock()).values().cloned().collect()
    }

    /// Issue `n`'s comments (GitLab: notes), oldest first.
    pub fn comments_of(&self, n: u64) -> Vec<Value> {
        let data = self.lock();
        let all = S::comments(&data).iter();
        all.filter(|(i, _)| *i == n)
            .map(|(_, c)| c.clone())
            .collect()
    }

    pub fn labels(&self) -> Vec<Value> {
        S::labels(&self.lock()).to_vec()
    }

    /// Stamps an issue as changed now, as a person's edit would.
    pub fn touch(&self, n: u64) {
        let now = self.shared.clock().now();
        S::issues(&mut self.lock()).get_mut(&n).unwrap()["updated_at"] = S::stamp(now);
    }

    /// Lets `d` pass for everything recorded so far: every stored time moves `d` into the
    /// past, while the server keeps stamping new records with its clock (which is the
    /// clock shepherd reads against a remote tracker).
    pub fn travel(&self, d: chrono::Duration) {
        S::shift(&mut self.lock(), None, d);
        self.shared.clock().after_travel();
    }

    /// Lets `d` pass for one issue only: as if it had been opened and worked on earlier.
    pub fn backdate(&self, n: u64, d: chrono::Duration) {
        S::shift(&mut self.lock(), Some(n), d);
    }

    /// The status each logged request was answered with (0: not yet).
    pub fn statuses(&self) -> Vec<u16> {
        let mut log = self.log();
        log.iter_mut().map(|l| *S::status(l)).collect()
    }

    /// `METHOD path` of each logged request.
    pub fn method_paths(&self) -> Vec<(String, String)> {
        let log = self.log();
        let pairs = log.iter().map(S::method_and_path);
        pairs.map(|(m, p)| (m.to_string(), p.to_string())).collect()
    }
}

async fn handle<S: Served>(
    State(shared): State<Arc<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = *shared.latency().lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let request = Request {
        method,
        uri,
        headers,
        body,
        query,
    };
    match shared.answer(&request) {
        Some(response) => response,
        None => never().await,
    }
}

/// An injected fault's answer: the tracker's error, with `Retry-After` where it has one.
pub fn fault_response<S: Served>(f: &Fault) -> Response {
    let mut r = S::error(StatusCode::from_u16(f.status).unwrap(), S::FAULT);
    if let Some(s) = f.retry_after {
        r.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(&s.to_string()).unwrap(),
        );
    }
    r
}

/// A request let in: where it stands in the log, whose token it carried, and the fault
/// whose error replaces its answer once it is applied (the response is lost).
pub struct Admitted {
    pub at: usize,
    pub user: String,
    pub lost: Option<Fault>,
}

/// Logs a request (`logged`, unanswered so far), then answers it as it must be before any
/// route does: 401 without a known token (`user`), or the first fault that matches.
/// `Err(None)`: never answered.
pub fn admit<S: Served>(
    data: &mut S::Data,
    request: &Request,
    logged: S::Logged,
    user: Option<String>,
) -> Result<Admitted, Option<Response>> {
    let common = S::common(data);
    common.log.push(logged);
    let at = common.log.len() - 1;
    let status = |common: &mut Common<S::Logged>, status: u16| {
        *S::status(&mut common.log[at]) = status;
    };
    let Some(user) = user else {
        status(common, 401);
        return Err(Some(S::error(StatusCode::UNAUTHORIZED, S::UNAUTHORIZED)));
    };
    let fault = take(&mut common.faults, request.method.as_str(), request.path());
    match fault {
        Some(f) if f.status == Fault::HANG => Err(None),
        Some(f) if f.status == Fault::CUT => {
            status(common, 200);
            Err(Some(cut_response()))
        }
        Some(f) if !f.after => {
            status(common, f.status);
            Err(Some(fault_response::<S>(&f)))
        }
        lost => Ok(Admitted { at, user, lost }),
    }
}

/// The answer sent for an admitted request: `response`, or the lost one's fault; logged
/// with its status and dated by the server's clock.
pub fn answered<S: Served>(
    shared: &S,
    data: &mut S::Data,
    admitted: Admitted,
    response: Response,
) -> Option<Response> {
    let mut response = match admitted.lost {
        Some(f) => fault_response::<S>(&f),
        None => response,
    };
    *S::status(&mut S::common(data).log[admitted.at]) = response.status().as_u16();
    response.headers_mut().insert("date", shared.clock().date());
    Some(response)
}

pub fn ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

pub fn created(value: Value) -> Response {
    (StatusCode::CREATED, axum::Json(value)).into_response()
}

/// The value of `key` in a query or form.
pub fn param<'a>(list: &'a [(String, String)], key: &str) -> Option<&'a str> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The items a page holds: `per_page` (`default` when not given), at most 100.
pub fn page_size(query: &[(String, String)], default: usize) -> usize {
    let asked = param(query, "per_page").and_then(|v| v.parse::<usize>().ok());
    asked.unwrap_or(default).clamp(1, 100)
}

/// A list's page as `per_page` (`default` when not given; at most 100) and `page` ask:
/// the page's items, the page's number and how many pages there are.
pub fn page_of<'a>(
    list: impl ExactSizeIterator<Item = &'a Value>,
    query: &[(String, String)],
    default: usize,
) -> (Vec<Value>, usize, usize) {
    let per_page = page_size(query, default);
    let page = param(query, "page").and_then(|v| v.parse::<usize>().ok());
    let page = page.unwrap_or(1).max(1);
    let pages = list.len().div_ceil(per_page).max(1);
    let items = list.skip((page - 1) * per_page).take(per_page).cloned();
    (items.collect(), page, pages)
}

/// The time a JSON value holds (RFC 3339).
pub fn parse_time(v: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v)
        .expect("a time in RFC 3339")
        .with_timezone(&Utc)
}
