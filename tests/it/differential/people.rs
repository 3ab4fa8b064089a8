//! People acting on the tracker itself, as in its UI: a box ticked or unticked in the
//! body, a label added or taken off, an issue closed or reopened — each as its person
//! (`carol`, `mallory`, `alice`: the label history records who), through the tracker
//! API in this process, never through shepherd or its Store, so no edit of theirs can
//! refresh what the cached world keeps. (Pausing, resuming and rolling back are
//! shepherd's own commands, run as shepherd runs.)

use shepherd::core::checklist;
use shepherd::tracker::{LabelSpec, Tracker};

use super::world::{Server, World, PEOPLE};
use crate::support::block_on;

/// What a person does to one issue.
pub enum Edit<'a> {
    Tick { item: &'a str, done: bool },
    Label { label: &'a str, add: bool },
    Open(bool),
}

/// `person` makes `edit` to issue `number`; `Err` when the tracker refused. An edit that
/// changes nothing (a box already so, a label already there) is not made, as in a UI.
pub fn act(world: &World, person: &str, number: u64, edit: Edit) -> Result<(), String> {
    block_on(async {
        let tracker = tracker(world, person).await?;
        let t = tracker.as_ref();
        let issue = t.issue(number).await.map_err(|e| e.to_string())?;
        match edit {
            Edit::Tick { item, done } => {
                let items = checklist::parse(&issue.body);
                let Some(found) = items.iter().find(|i| i.text == item) else {
                    return Err(format!("#{number} has no item {item:?}"));
                };
                if found.done() != done {
                    let body = checklist::set(&issue.body, found, done);
                    t.update_body(number, &body)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Edit::Label { label, add } => {
                if issue.labels.iter().any(|l| l == label) != add {
                    let name = vec![label.to_string()];
                    let spec = LabelSpec {
                        name: label.to_string(),
                        color: "#428bca".into(),
                        description: String::new(),
                    };
                    t.ensure_labels(&[spec]).await.map_err(|e| e.to_string())?;
                    let (add, remove) = if add { (name, vec![]) } else { (vec![], name) };
                    t.edit_labels(number, &issue.labels, &add, &remove)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Edit::Open(open) => {
                if issue.open != open {
                    t.set_open(number, open).await.map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    })
}

async fn tracker(world: &World, person: &str) -> Result<Box<dyn Tracker>, String> {
    let token = PEOPLE.iter().find(|(_, u)| *u == person).unwrap().0;
    let policy = crate::remote::quick_policy();
    Ok(match &world.server {
        Server::Local => Box::new(
            shepherd::tracker::local::LocalTracker::open(&world.db(), false, None, person)
                .map_err(|e| e.to_string())?,
        ),
        Server::Lab(s) => {
            let mut config =
                shepherd::tracker::gitlab::Config::new(&s.url, crate::gitlab_server::PROJECT);
            config.policy = policy;
            Box::new(
                shepherd::tracker::gitlab::GitLabTracker::connect(config, token)
                    .await
                    .map_err(|e| e.to_string())?,
            )
        }
        Server::Hub(s) => {
            let repo = format!(
                "{}/{}",
                crate::github_server::OWNER,
                crate::github_server::REPO
            );
            let mut config = shepherd::tracker::github::Config::new(&s.url, &repo);
            config.policy = policy;
            Box::new(
                shepherd::tracker::github::GitHubTracker::connect(config, token)
                    .map_err(|e| e.to_string())?,
            )
        }
    })
}
