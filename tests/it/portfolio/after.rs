//! The `after` gate on the local tracker: a migration waits for the migrations it depends
//! on (matched by variables) to reach a stage; completed ones count, rolled-back ones do
//! not, and an empty dependency waits for nothing.

use super::{after_gate, flags, start};

#[test]
fn a_flag_waits_for_the_flag_it_depends_on_to_be_rolled_out() {
    let s = flags(None);
    let a = start(&s, "alpha", None);
    let b = start(&s, "beta", Some("alpha"));
    s.ok(&["label", &b, "--add", "ready"]);
    s.ok(&["advance", &b]);
    let (stage, passed, detail) = after_gate(&s, &b);
    assert_eq!(stage, "prep");
    assert!(!passed, "{detail}");
    assert_eq!(detail, format!("flag #{a} is in prep"));
    // Its own gate is not what holds alpha: nothing to wait for.
    let (_, passed, detail) = after_gate(&s, &a);
    assert!(passed, "{detail}");
    assert!(detail.contains("`depends_on` is not set"), "{detail}");

    s.ok(&["label", &a, "--add", "ready"]);
    s.ok(&["advance", &a]);
    s.ok(&["advance", &b]);
    assert_eq!(after_gate(&s, &b).0, "global");
    let history = s.ok(&["history", &b]);
    assert!(
        history
            .lines()
            .any(|l| l.contains(" prep ") && l.contains("→ global")),
        "{history}"
    );
    // A completed dependency counts too.
    s.ok(&["label", &a, "--add", "released"]);
    s.ok(&["reconcile"]);
    assert_eq!(after_gate(&s, &a).0, "done");
    let c = start(&s, "gamma", Some("alpha"));
    s.ok(&["label", &c, "--add", "ready"]);
    s.ok(&["reconcile"]);
    let (stage, _, detail) = after_gate(&s, &c);
    assert_eq!(stage, "global", "{detail}");
}

#[test]
fn a_dependency_rolled_back_or_missing_does_not_let_a_flag_on() {
    let s = flags(None);
    let d = start(&s, "delta", None);
    let e = start(&s, "epsilon", Some("delta"));
    let z = start(&s, "zeta", Some("nosuchflag"));
    s.ok(&["label", &d, "--add", "ready"]);
    s.ok(&["advance", &d]);
    s.ok(&["label", &d, "--add", "rollback"]);
    s.ok(&["advance", &d]);
    assert_eq!(after_gate(&s, &d).0, "rolled-back");
    for n in [&e, &z] {
        s.ok(&["label", n, "--add", "ready"]);
    }
    s.ok(&["reconcile"]);
    let (stage, passed, detail) = after_gate(&s, &e);
    assert_eq!((stage.as_str(), passed), ("prep", false), "{detail}");
    assert_eq!(
        detail,
        "no open or completed flag migration with flag = delta yet"
    );
    let (stage, _, detail) = after_gate(&s, &z);
    assert_eq!(stage, "prep");
    assert_eq!(
        detail,
        "no open or completed flag migration with flag = nosuchflag yet"
    );
    // Said in the text status too.
    let text = s.ok(&["status", &e]);
    assert!(text.contains("flag = delta"), "{text}");
}

#[test]
fn validate_refuses_an_after_gate_on_an_unknown_workflow_stage_or_variable() {
    let s = flags(None);
    let file = s.path("workflows/flag.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let bad = text.replace("stage: global, where: {flag:", "stage: globl, where: {flg:");
    std::fs::write(&file, &bad).unwrap();
    let err = s.fails(&["validate"]);
    assert!(err.contains("`after` names stage `globl`, which workflow `flag` does not have (prep, global, done, rolled-back)"), "{err}");
    assert!(
        err.contains("`after` matches variable `flg`, which workflow `flag` does not declare"),
        "{err}"
    );
    assert!(
        err.contains("flag.yaml:13:40: `after` names stage"),
        "{err}"
    );
    assert!(err.contains("flag.yaml:13:55: `after` matches"), "{err}");
    std::fs::write(&file, text.replace("{workflow: flag,", "{workflow: flags,")).unwrap();
    let err = s.fails(&["validate"]);
    assert!(
        err.contains("`after` names workflow `flags`, which is not in the catalogue"),
        "{err}"
    );
}
