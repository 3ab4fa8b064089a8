//! HTTP as every client of shepherd's uses it — the trackers, the flags backends and the
//! metric source: `retry` (timeouts, retries with backoff and jitter, rate-limit waits
//! and pacing, announced long waits, request counts), `service` (a service's checked
//! address, its token as a sensitive header, a client with shepherd's user agent and
//! timeouts) and `redact` (URLs without user info, tokens out of messages).

pub mod redact;
pub mod retry;
pub mod service;
