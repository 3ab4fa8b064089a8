//! The dashboard of a running `shepherd serve`, opened in headless Chromium (required when
//! `CI` is set): the page renders the migrations from the service's cache, fetches nothing
//! from elsewhere, and says nothing on the console.

use super::{Service, SECRET};
use crate::support::{headless, screenshot, start_gitaly, tool, Shepherd, T0};

#[test]
fn the_dashboard_opens_in_chromium_and_shows_the_migrations() {
    let Some(chromium) = tool(
        "the_dashboard_opens_in_chromium_and_shows_the_migrations",
        "chromium",
        "to open the dashboard",
    ) else {
        return;
    };
    let s = Shepherd::new();
    let (a, b) = (start_gitaly(&s, T0), start_gitaly(&s, T0));
    let db = format!("local:{}", s.db().display());
    let mut service = Service::start(
        s.dir.path(),
        &["--tracker", &db],
        &[("SHEPHERD_WEBHOOK_SECRET", SECRET)],
    );
    let url = format!("http://{}/", service.addr);
    let (dom, console) = headless(&chromium, &url, &["--dump-dom"]);
    assert!(console.is_empty(), "{console:#?}");
    assert!(dom.contains("Migration report"), "{dom}");
    for n in [a, b] {
        let title = s.issue(n).title;
        assert!(dom.contains(&format!("#{n}")), "#{n} in {dom}");
        assert!(dom.contains(&title), "{title} in {dom}");
    }
    assert!(
        dom.contains("Selection") || dom.contains("selection"),
        "{dom}"
    );
    // A picture for a person to look at: target/test-output/serve-dashboard.png.
    screenshot(&chromium, &url, "serve-dashboard.png", 900, 10_000);
    assert_eq!(service.terminate(), Some(0));
}

#[test]
fn a_migrations_page_opens_in_chromium_with_its_gates_who_must_act_history_and_links() {
    let Some(chromium) = tool(
        "a_migrations_page_opens_in_chromium_with_its_gates_who_must_act_history_and_links",
        "chromium",
        "to open a migration's page",
    ) else {
        return;
    };
    let s = Shepherd::new();
    let n = start_gitaly(&s, T0);
    let number = n.to_string();
    s.ok(&[
        "pause",
        &number,
        "--reason",
        "waiting for the DBA",
        "--actor",
        "dave",
    ]);
    let db = format!("local:{}", s.db().display());
    let mut service = Service::start(
        s.dir.path(),
        &["--tracker", &db],
        &[("SHEPHERD_WEBHOOK_SECRET", SECRET)],
    );
    let url = format!("http://{}/m/local/{n}", service.addr);
    let (dom, console) = headless(&chromium, &url, &["--dump-dom"]);
    assert!(console.is_empty(), "{console:#?}");
    for said in [
        s.issue(n).title.as_str(),
        "Selection",
        "Who must act",
        "whoever works on the migration to tick the items under *Selection*",
        "Paused by dave",
        "waiting for the DBA",
        "/shepherd resume",
        "History",
        "<td>(start) → selection</td>",
        "<td>paused</td><td>dave</td><td>waiting for the DBA</td>",
    ] {
        assert!(dom.contains(said), "{said:?} in {dom}");
    }
    assert!(
        dom.contains("href=\"/?tracker="),
        "a link back to the dashboard: {dom}"
    );
    screenshot(&chromium, &url, "serve-migration-page.png", 1000, 10_000);
    assert_eq!(service.terminate(), Some(0));
}
