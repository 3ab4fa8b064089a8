//! The line for a limited stage keeps its order however long no run looked at it: a place
//! is seen again by every reconcile that finds its migration still before the stage.

use super::{flags, start};
use crate::support::Shepherd;

fn stage_of(s: &Shepherd, n: &str) -> String {
    s.json(&["status", n])["stage"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_place_in_line_outlasts_a_weekend_freeze_without_a_run() {
    let s = flags(Some(1));
    // The limited stage waits out change freezes too.
    let file = s.path("workflows/flag.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    let yaml = yaml.replace("    limit: 1\n", "    limit: 1\n    freeze: wait\n");
    std::fs::write(&file, yaml).unwrap();
    s.ok(&["clock", "set", "2026-12-04T09:00:00Z"]); // a Friday
    let first = start(&s, "first", None);
    let earlier = start(&s, "earlier", None);
    let later = start(&s, "later", None);
    s.ok(&["label", &first, "--add", "ready"]);
    s.json(&["reconcile"]);
    assert_eq!(stage_of(&s, &first), "global");
    // The lower number waits first: a run may look at the newest first, so without its place
    // the later one would take the slot.
    s.ok(&["label", &earlier, "--add", "ready"]);
    s.json(&["reconcile"]);
    s.ok(&["clock", "advance", "1h"]);
    s.ok(&["label", &later, "--add", "ready"]);
    s.json(&["reconcile"]);
    let plan = s.json(&["plan"]);
    let waits = plan["workflows"][0]["stages"][0]["waiting"].to_string();
    assert!(waits.contains(&format!("#{earlier}")), "{waits}");
    // Friday noon to Monday 7:00: the slot is freed during the freeze, nobody enters.
    s.ok(&[
        "freeze",
        "add",
        "--start",
        "0 12 * * 5",
        "--end",
        "0 7 * * 1",
    ]);
    s.ok(&["clock", "advance", "3h"]);
    s.ok(&["label", &first, "--add", "released"]);
    let out = s.json(&["reconcile"]);
    assert_eq!(stage_of(&s, &first), "done", "{out:#}");
    assert_eq!(stage_of(&s, &earlier), "prep", "{out:#}");
    // Monday 13:00, three days without a run: the one that waited first enters.
    s.ok(&["clock", "advance", "3d"]);
    let out = s.json(&["reconcile"]);
    assert_eq!(stage_of(&s, &earlier), "global", "{out:#}");
    assert_eq!(stage_of(&s, &later), "prep", "{out:#}");
}
