//! The notification outbox's rows as both stores give them back (DESIGN §12, STYLE 16):
//! an event is put in the same step as what it reports, and one sender — whoever holds
//! the `outbox` lease — sends it to each sink and records each sink that took it, so a
//! sink that answered is never sent it again and a crash loses nothing.

/// Done events are forgotten after this long (a transition recorded again after that
/// would be sent again; no run finishes a transition that late).
pub(crate) const KEEP_DONE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// One event waiting in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// The event's stable id: the same at every sink and on every retry.
    pub id: String,
    /// The event as JSON (`notify::Event`).
    pub body: String,
    /// Failed sends so far.
    pub attempts: u32,
    /// The sinks (by key) that took it already.
    pub sent: Vec<String>,
}
