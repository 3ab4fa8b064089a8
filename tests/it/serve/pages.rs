//! The dashboard's links and filters, and one migration's own page (DESIGN §12 "What
//! people see"): every name links to `/m/{tracker}/{ref}`, which shows its gates and who
//! must act, its history and a way back; `?workflow=&stage=&label=&state=` narrow the page.

use axum::http::StatusCode;

use super::rig_published;

/// The `href`s of `page` that start with `prefix`.
fn links<'p>(page: &'p str, prefix: &str) -> Vec<&'p str> {
    page.match_indices(&format!("href=\"{prefix}"))
        .map(|(at, _)| {
            let rest = &page[at + 6..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

#[test]
fn every_migration_links_to_its_own_page_with_gates_who_must_act_and_history() {
    let rig = rig_published();
    let (status, page) = rig.get("/?tracker=local");
    assert_eq!(status, StatusCode::OK);
    let to_page = links(&page, "/m/");
    assert!(!to_page.is_empty(), "the names link to their pages: {page}");
    let url = to_page[0].replace("&amp;", "&");
    assert!(url.ends_with(&format!("/{}", rig.number)), "{url}");

    let (status, one) = rig.get(&url);
    assert_eq!(status, StatusCode::OK, "{url}: {one}");
    assert!(
        one.contains(&format!("<h1>#{} Gitaly migration", rig.number)),
        "{one}"
    );
    assert!(one.contains("<h2>Gates</h2>"), "{one}");
    assert!(
        one.contains("whoever works on the migration to tick the items under *Selection*"),
        "who must act: {one}"
    );
    assert!(
        one.contains("<h2>History</h2>") && one.contains("(start)"),
        "{one}"
    );
    assert!(!links(&one, "/?tracker=").is_empty(), "a way back: {one}");
    // The tracker by its kind works as in the API; a ref that is no open migration does not.
    assert_eq!(
        rig.get(&format!("/m/local/{}", rig.number)).0,
        StatusCode::OK
    );
    assert_eq!(rig.get("/m/local/999").0, StatusCode::NOT_FOUND);
    assert_eq!(rig.get("/m/nowhere/1").0, StatusCode::NOT_FOUND);
}

#[test]
fn the_dashboard_filters_by_workflow_stage_label_and_state() {
    let rig = rig_published();
    let showing = |query: &str| {
        let (status, page) = rig.get(&format!("/?tracker=local&{query}"));
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        let at = page
            .find("Showing ")
            .unwrap_or_else(|| panic!("{query}: {page}"));
        page[at + 8..]
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    assert_eq!(showing("stage=selection"), 1);
    assert_eq!(showing("workflow=gitaly-migration&label=Selection"), 1);
    assert_eq!(showing("workflow=feature-flag-rollout"), 0);
    assert_eq!(showing("state=paused"), 0);
    // Started on 1 January and still in its first stage: stale.
    assert_eq!(showing("state=stale"), 1);
    let (status, why) = rig.get("/?tracker=local&state=asleep");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(why.contains("paused, failing, overdue, stale"), "{why}");
    // A way back to the whole page of the same tracker.
    let (_, page) = rig.get("/?tracker=local&stage=selection");
    assert!(page.contains("show all"), "{page}");
    assert!(!links(&page, "/?tracker=local%3A").is_empty(), "{page}");
    // No filter: the page as refreshed, with no "Showing".
    let (_, page) = rig.get("/?tracker=local");
    assert!(!page.contains("Showing "), "{page}");
}
