//! What the GitLab and GitHub test servers share: serving an axum app on 127.0.0.1 from a
//! thread of its own, and injected faults: an error status (with `Retry-After`), a lost
//! response, a server that accepts the request and never answers (`Fault::hang`), and one
//! that starts its answer and closes the connection halfway (`Fault::cut`); what tests
//! seed of merge requests and releases (`MrState`, `ReleaseKind`); and the clock the
//! servers stamp with and send as `Date` (`Clock`: real, or held within one second).
//!
//! `Server` is either server as a test holds it, with what both keep (`Data`: issues,
//! comments, labels, events, releases and known projects, the request log, the faults to
//! inject) and share with their handler (`Shared`: tokens, latency, clock), and the
//! handler that logs a request and checks its token and faults before the tracker's own
//! routes answer it; `Tracked` is what differs (`GitHub`, `GitLab`). Paging, the issue
//! list's filters, and the merge requests tests record (`Change`) are shared too.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use chrono::{DateTime, SubsecRound as _, Utc};
use serde_json::{json, Value};

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

/// Whether `project` is known to a server whose own project is `own`: its own, one made
/// known, or one with a merge request or a release.
pub fn knows<T: Tracked>(data: &Data<T>, own: &str, project: &str, mrs: &[&Change]) -> bool {
    project == own
        || data.projects.iter().any(|p| p == project)
        || data.releases.iter().any(|r| r.project == project)
        || mrs.iter().any(|m| m.project == project)
}

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
    /// Release `tag` of `project` at `at`, of `kind`.
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

/// One request as a server logged it: what both log, and what the tracker's server logs
/// besides (`sent`: GitHub the JSON body and `If-None-Match`, GitLab the form and the JSON
/// body), which it derefs to.
#[derive(Clone, Debug)]
pub struct Logged<X> {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub user: String,
    /// The status answered (0 while a request is unanswered).
    pub status: u16,
    pub sent: X,
}

impl<X> Logged<X> {
    pub fn query(&self, key: &str) -> Option<&str> {
        param(&self.query, key)
    }
}

impl<X> std::ops::Deref for Logged<X> {
    type Target = X;
    fn deref(&self) -> &X {
        &self.sent
    }
}

/// A tracker's test server: what it answers and keeps beyond what both servers share.
pub trait Tracked: Send + Sync + Sized + 'static {
    /// What the tracker's server keeps besides what `Data` holds for both.
    type Own: Default + Send;
    /// What it logs of a request besides its method, path, query and user.
    type Sent: Clone + Send;
    /// The message of an injected fault's error.
    const FAULT: &'static str;
    /// The kinds of release the tracker has.
    const RELEASES: &'static [ReleaseKind];
    /// The key of an issue's comment count (GitLab: `user_notes_count`).
    const COMMENTS: &'static str;
    /// The key and value of an event that adds a label (GitHub: `event`, `labeled`).
    const ADDED: (&'static str, &'static str);
    /// Comment (GitLab: note) `id` on issue `n` by `user`, written at `now`.
    fn comment_json(
        shared: &Shared<Self>,
        n: u64,
        id: u64,
        user: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Value;
    /// A time as the tracker writes it in its JSON.
    fn stamp(t: DateTime<Utc>) -> Value;
    /// Moves what is recorded of issue `only` (or of everything) `d` into the past.
    fn shift(data: &mut Data<Self>, only: Option<u64>, d: chrono::Duration);
    /// The body of the tracker's error answer.
    fn error_body(message: &str) -> Value;
    /// What the server logs of `request` besides what both log, and the user whose token
    /// it carried: without a token the server knows, the tracker's 401.
    fn read(shared: &Shared<Self>, request: &Request) -> (Self::Sent, Result<String, Response>);
    /// The tracker's answer to a request let in (`admit`), from `user`.
    fn respond(
        shared: &Shared<Self>,
        data: &mut Data<Self>,
        request: &Request,
        sent: &Self::Sent,
        user: &str,
    ) -> Response;
}

/// What a test server keeps behind its lock: issues by number (GitLab: iid), each issue's
/// comments (GitLab: notes) oldest first, labels, releases of any project and the projects
/// it knows besides its own, the request log, the faults still to inject, and the
/// tracker's own (`own`, which it derefs to).
pub struct Data<T: Tracked> {
    pub issues: BTreeMap<u64, Value>,
    pub comments: Vec<(u64, Value)>,
    pub labels: Vec<Value>,
    /// Each issue's events, oldest first (GitHub: its timeline; GitLab: its label events).
    pub events: Vec<(u64, Value)>,
    pub releases: Vec<Published>,
    pub projects: Vec<String>,
    pub log: Vec<Logged<T::Sent>>,
    pub faults: VecDeque<Fault>,
    /// The last id given to anything.
    pub next_id: u64,
    pub own: T::Own,
}

impl<T: Tracked> std::ops::Deref for Data<T> {
    type Target = T::Own;
    fn deref(&self) -> &T::Own {
        &self.own
    }
}

impl<T: Tracked> std::ops::DerefMut for Data<T> {
    fn deref_mut(&mut self) -> &mut T::Own {
        &mut self.own
    }
}

/// What a server's handler shares with the test: its data, the tokens it knows (each a
/// user), its latency and clock, and the tracker's own (`tracker`, which it derefs to).
pub struct Shared<T: Tracked> {
    pub data: Mutex<Data<T>>,
    pub tokens: BTreeMap<String, String>,
    pub latency: Mutex<Duration>,
    /// What the server stamps and answers as `Date`.
    pub clock: Clock,
    pub tracker: T,
}

impl<T: Tracked> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.tracker
    }
}

/// A test server that runs until it is dropped.
pub struct Server<T: Tracked> {
    pub url: String,
    pub shared: Arc<Shared<T>>,
    /// Stops the server when this is dropped.
    _stop: Stop,
}

impl<T: Tracked> Server<T> {
    /// Starts a server of `tracker` on a free port; `tokens` maps each token to its user's
    /// name; ids given start after `first_id`.
    pub fn start_with(tracker: T, tokens: &[(&str, &str)], first_id: u64) -> Server<T> {
        let data = Data {
            issues: BTreeMap::new(),
            comments: Vec::new(),
            labels: Vec::new(),
            events: Vec::new(),
            releases: Vec::new(),
            projects: Vec::new(),
            log: Vec::new(),
            faults: VecDeque::new(),
            next_id: first_id,
            own: T::Own::default(),
        };
        let tokens = tokens.iter().map(|(t, u)| (t.to_string(), u.to_string()));
        let shared = Arc::new(Shared {
            data: Mutex::new(data),
            tokens: tokens.collect(),
            latency: Mutex::new(Duration::ZERO),
            clock: Clock::default(),
            tracker,
        });
        let app = Router::new().fallback(handle::<T>);
        let (url, stop) = serve_stoppable(app.with_state(shared.clone()));
        Server {
            url,
            shared,
            _stop: stop,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Data<T>> {
        self.shared.data.lock().unwrap()
    }

    pub fn log(&self) -> Vec<Logged<T::Sent>> {
        self.lock().log.clone()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    pub fn fail(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub fn set_latency(&self, d: Duration) {
        *self.shared.latency.lock().unwrap() = d;
    }

    /// Holds the server's clock within the second of `at` (`None`: the real clock): every
    /// write stamped within that second, every answer dated with it.
    pub fn hold_clock(&self, at: Option<DateTime<Utc>>) {
        self.shared.clock.hold(at);
    }

    pub fn issue(&self, n: u64) -> Value {
        self.lock().issues[&n].clone()
    }

    pub fn issues(&self) -> Vec<Value> {
        self.lock().issues.values().cloned().collect()
    }

    /// Issue `n`'s comments (GitLab: notes), oldest first.
    pub fn comments_of(&self, n: u64) -> Vec<Value> {
        let data = self.lock();
        let all = data.comments.iter();
        all.filter(|(i, _)| *i == n)
            .map(|(_, c)| c.clone())
            .collect()
    }

    pub fn labels(&self) -> Vec<Value> {
        self.lock().labels.clone()
    }

    /// Issue `n`'s events, oldest first.
    pub fn events(&self, n: u64) -> Vec<Value> {
        let data = self.lock();
        let all = data.events.iter();
        all.filter(|(i, _)| *i == n)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// How many times `label` was added to issue `n`.
    pub fn label_added_count(&self, n: u64, label: &str) -> usize {
        let (key, added) = T::ADDED;
        let adds = |e: &&Value| e[key] == added && e["label"]["name"] == label;
        self.events(n).iter().filter(adds).count()
    }

    /// A comment on issue `n` by `user`, as a person writes it (no request); its id.
    pub fn comment_as(&self, n: u64, user: &str, body: &str) -> u64 {
        let now = self.shared.clock.now();
        let c = add_comment(&self.shared, &mut self.lock(), n, user, body, now);
        c["id"].as_u64().unwrap()
    }

    /// Stamps an issue as changed now, as a person's edit would.
    pub fn touch(&self, n: u64) {
        let now = self.shared.clock.now();
        self.lock().issues.get_mut(&n).unwrap()["updated_at"] = T::stamp(now);
    }

    /// Lets `d` pass for everything recorded so far: every stored time moves `d` into the
    /// past, while the server keeps stamping new records with its clock (which is the
    /// clock shepherd reads against a remote tracker).
    pub fn travel(&self, d: chrono::Duration) {
        let mut data = self.lock();
        data.releases.iter_mut().for_each(|r| r.at -= d);
        T::shift(&mut data, None, d);
        self.shared.clock.after_travel();
    }

    /// Publishes release `tag` of `project` at `at`, of `kind` (one the tracker has).
    pub fn publish_release(&self, project: &str, tag: &str, at: DateTime<Utc>, kind: ReleaseKind) {
        assert!(T::RELEASES.contains(&kind), "no {kind:?} releases here");
        let release = Published::new(project, tag, at, kind);
        self.lock().releases.push(release);
    }

    /// Makes `project` known (its lists answer, empty).
    pub fn add_project(&self, project: &str) {
        self.lock().projects.push(project.to_string());
    }

    /// Lets `d` pass for one issue only: as if it had been opened and worked on earlier.
    pub fn backdate(&self, n: u64, d: chrono::Duration) {
        T::shift(&mut self.lock(), Some(n), d);
    }

    /// The status each logged request was answered with (0: not yet).
    pub fn statuses(&self) -> Vec<u16> {
        self.lock().log.iter().map(|l| l.status).collect()
    }

    /// `METHOD path` of each logged request.
    pub fn method_paths(&self) -> Vec<(String, String)> {
        let data = self.lock();
        let pairs = data.log.iter().map(|l| (l.method.clone(), l.path.clone()));
        pairs.collect()
    }
}

async fn handle<T: Tracked>(
    State(shared): State<Arc<Shared<T>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = *shared.latency.lock().unwrap();
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
    match answer(&shared, &request) {
        Some(response) => response,
        None => never().await,
    }
}

/// The answer to one request; `None` for a request that is never answered. The request
/// is logged (unanswered so far), then answered as it must be before any route does: 401
/// without a known token, or the first fault that matches; else by the tracker's routes,
/// unless a fault loses that answer. Logged with its status, dated by the server's clock.
fn answer<T: Tracked>(shared: &Shared<T>, request: &Request) -> Option<Response> {
    let (sent, user) = T::read(shared, request);
    let mut data = shared.data.lock().unwrap();
    data.log.push(Logged {
        method: request.method.to_string(),
        path: request.path().to_string(),
        query: request.query.clone(),
        user: user.as_ref().cloned().unwrap_or_default(),
        status: 0,
        sent: sent.clone(),
    });
    let at = data.log.len() - 1;
    let user = match user {
        Ok(user) => user,
        Err(unauthorized) => {
            data.log[at].status = 401;
            return Some(unauthorized);
        }
    };
    let lost = match take(&mut data.faults, request.method.as_str(), request.path()) {
        Some(f) if f.status == Fault::HANG => return None,
        Some(f) if f.status == Fault::CUT => {
            data.log[at].status = 200;
            return Some(cut_response());
        }
        Some(f) if !f.after => {
            data.log[at].status = f.status;
            return Some(fault_response::<T>(&f));
        }
        lost => lost,
    };
    let response = T::respond(shared, &mut data, request, &sent, &user);
    let mut response = match lost {
        Some(f) => fault_response::<T>(&f),
        None => response,
    };
    data.log[at].status = response.status().as_u16();
    response.headers_mut().insert("date", shared.clock.date());
    Some(response)
}

/// Adds a comment (GitLab: note) by `user` to issue `n`, written at `now`; the issue's
/// comment count and `updated_at` follow. Returns the comment.
pub fn add_comment<T: Tracked>(
    shared: &Shared<T>,
    data: &mut Data<T>,
    n: u64,
    user: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Value {
    data.next_id += 1;
    let comment = T::comment_json(shared, n, data.next_id, user, body, now);
    data.comments.push((n, comment.clone()));
    let count = data.comments.iter().filter(|(i, _)| *i == n).count();
    let issue = data.issues.get_mut(&n).expect("the issue exists");
    issue[T::COMMENTS] = json!(count);
    issue["updated_at"] = T::stamp(now);
    comment
}

/// The tracker's error answer.
pub fn error<T: Tracked>(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(T::error_body(message))).into_response()
}

/// An injected fault's answer: the tracker's error, with `Retry-After` where it has one.
pub fn fault_response<T: Tracked>(f: &Fault) -> Response {
    let mut r = error::<T>(StatusCode::from_u16(f.status).unwrap(), T::FAULT);
    if let Some(s) = f.retry_after {
        r.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(&s.to_string()).unwrap(),
        );
    }
    r
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

/// The issues a list asks for, newest first: in `state` (`all` or `None`: any), changed at
/// or after the time the query's `changed_since` names (both trackers read it so: to the
/// second on GitHub, inclusive), with every label its `labels` names (comma-separated).
/// GitLab lists an issue's label names, GitHub its labels.
pub fn issues_asked<'a>(
    issues: &'a BTreeMap<u64, Value>,
    query: &[(String, String)],
    state: Option<&str>,
    changed_since: &str,
) -> Vec<&'a Value> {
    let labels = param(query, "labels").unwrap_or("").split(',');
    let labels: Vec<&str> = labels.filter(|s| !s.is_empty()).collect();
    let since = param(query, changed_since).map(parse_time);
    let name = |l: &'a Value| l["name"].as_str().or(l.as_str());
    let has = |i: &'a Value, label: &str| {
        i["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| name(l) == Some(label))
    };
    let changed = |i: &Value| parse_time(i["updated_at"].as_str().unwrap());
    issues
        .values()
        .rev()
        .filter(|i| state.is_none_or(|s| s == "all" || i["state"] == s))
        .filter(|i| since.is_none_or(|t| changed(i) >= t))
        .filter(|i| labels.iter().all(|l| has(i, l)))
        .collect()
}

/// The time a JSON value holds (RFC 3339).
pub fn parse_time(v: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v)
        .expect("a time in RFC 3339")
        .with_timezone(&Utc)
}
