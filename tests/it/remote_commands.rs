//! Comment commands on a remote tracker's test server, the same on GitLab and GitHub
//! (DESIGN §12): who may is the tracker's access level (GitLab's members API, GitHub's
//! collaborator permission); each command is acted on once, answered by one reply; an
//! idle poll reads no comment.

use serde_json::Value;

use crate::api::Api;
use crate::remote::{Remote, REVIEW};

/// What each command of a reconcile came to: (verb, who, done).
fn answered(v: &Value) -> Vec<(String, String, bool)> {
    v["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["commands"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["verb"].as_str().unwrap().to_string(),
                c["by"].as_str().unwrap().to_string(),
                c["done"].as_bool().unwrap(),
            )
        })
        .collect()
}

impl<S: Api> Remote<S> {
    /// `developer` (write access) pauses with a comment, `guest` (read only) is refused
    /// with a reply that says why; polls after that act on nothing again and the second
    /// reads no comment; `developer` resumes; `approver` approves with a comment and the
    /// migration moves. `comments` is the end of the path comments are read at.
    pub fn comment_commands(&self, developer: &str, guest: &str, approver: &str, comments: &str) {
        let dir = self.dir();
        std::fs::create_dir_all(dir.join("workflows")).unwrap();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(
            dir.join("workflows/review.yaml"),
            REVIEW.replace("APPROVER", approver),
        )
        .unwrap();
        std::fs::write(
            dir.join("templates/review.md.hbs"),
            "---\ntitle: \"A schema change\"\n---\nWaits for a DBA.\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("shepherd.toml"),
            "workflows = \"workflows\"\ntemplates = \"templates\"\n",
        )
        .unwrap();
        self.server.grant(developer, true);
        self.server.grant(guest, false);
        let n = self.json(&["start", "review"])["ref"].as_u64().unwrap();
        let replies = || -> Vec<String> {
            self.server
                .comment_bodies(n)
                .into_iter()
                .filter(|b| shepherd::core::command::answer_of(b).is_some())
                .collect()
        };

        self.server
            .comment_as(n, developer, "/shepherd pause waiting for the DBA");
        self.server.comment_as(n, guest, "/shepherd resume");
        let v = self.reconcile_cached(self.bot());
        assert_eq!(
            answered(&v),
            [
                ("pause".into(), developer.into(), true),
                ("resume".into(), guest.into(), false),
            ],
            "{v}"
        );
        assert!(self.labels(n).iter().any(|l| l == "shepherd::paused"));
        let r = replies();
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(
            r[0].contains(&format!("{developer} paused this migration")),
            "{r:?}"
        );
        let refusal = format!("@{guest} may not resume: needs ");
        assert!(r[1].starts_with(&refusal), "{r:?}");

        // Acted on once: the next polls answer nothing; the second reads no comment.
        let v = self.reconcile_cached(self.bot());
        assert!(answered(&v).is_empty(), "{v}");
        self.server.forget_requests();
        let v = self.reconcile_cached(self.bot());
        assert!(answered(&v).is_empty(), "{v}");
        let end = format!("/{comments}");
        let paths = self.server.paths();
        assert!(!paths.iter().any(|p| p.ends_with(&end)), "{paths:?}");
        assert_eq!(replies().len(), 2);

        self.server.comment_as(n, developer, "/shepherd resume");
        self.server.comment_as(n, approver, "/shepherd approve");
        let v = self.reconcile_cached(self.bot());
        assert_eq!(
            answered(&v),
            [
                ("resume".into(), developer.into(), true),
                ("approve".into(), approver.into(), true),
            ],
            "{v}"
        );
        assert_eq!(v["migrations"][0]["stage"], "done", "{v}");
        assert_eq!(replies().len(), 4);
        assert!(self.labels(n).iter().any(|l| l == "dba-approved"));
    }
}
