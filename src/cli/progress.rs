//! Progress on stderr for long runs on a remote tracker (`indicatif`): a spinner while the
//! migrations are listed, a bar once their number is known. Hidden when stderr is not a
//! terminal, when the tracker is local (it answers at once), and when JSON is printed to
//! a pipe.
//!
//! The engine reports through its small `engine::Progress` trait, so it knows nothing of
//! terminals; `Bar` is the terminal's side of it.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Progress;

/// A progress bar on stderr, or nothing when it should be hidden. Cleared when dropped.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A spinner saying `what` (e.g. "reconciling"), shown only if `visible`.
    pub fn new(what: &str, visible: bool) -> Bar {
        let bar = if visible {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar { bar }
    }

    /// Whether progress should show: a remote tracker, stderr a terminal, and not JSON
    /// going to a pipe.
    pub fn visible(remote: bool, json: bool) -> bool {
        let json_to_pipe = json && !std::io::stdout().is_terminal();
        remote && std::io::stderr().is_terminal() && !json_to_pipe
    }
}

impl Progress for Bar {
    fn start(&self, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
        self.bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
    }

    fn inc(&self) {
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
