//! Validation sees the template (DESIGN §11): a checklist gate whose section matches no
//! heading of the template it reads, or whose `require` is more than the items under that
//! heading, is refused with its place; what a render may change is never held against it.

use crate::bad_input::{project, project_with, refused, MINI};
use crate::support::{at, Shepherd};

const GATE: &str = "      - checklist: {section: Proposal}";

#[test]
fn a_section_the_template_does_not_have_is_refused() {
    let s = project_with(&[(GATE, "      - checklist: {section: Propsal}")], &[]);
    refused(
        &s,
        "workflows/mini.yaml:9:30: section \"Propsal\" matches no heading of template `mini` (its headings: \"Proposal\"): the checklist gate could never hold",
    );
    // A section matches the headings that contain it, in any case.
    let s = project_with(&[(GATE, "      - checklist: {section: pos}")], &[]);
    s.ok(&["validate"]);
    // In a `when` and inside `any`, too.
    let s = project_with(
        &[(
            "    next: done\n",
            "    next:\n      - to: done\n        when: [{any: [{label: x}, {checklist: {section: Review}}]}]\n",
        )],
        &[],
    );
    refused(
        &s,
        "workflows/mini.yaml:12:57: section \"Review\" matches no heading",
    );
}

#[test]
fn a_require_larger_than_the_items_is_refused() {
    let s = project_with(
        &[(GATE, "      - checklist: {section: Proposal, require: 2}")],
        &[],
    );
    refused(
        &s,
        "workflows/mini.yaml:9:49: `require: 2` is more than the 1 task item under \"Proposal\" in template `mini`: the checklist gate could never hold",
    );
    // Counted as the gate counts: only the items its patterns match, or the whole body.
    let template = [(
        "- [ ] agreed\n",
        "- [ ] agreed\n- [ ] costed\n- [ ] costs agreed\n",
    )];
    let s = project_with(
        &[(
            GATE,
            "      - checklist: {section: Proposal, items: [cost], require: 3}",
        )],
        &template,
    );
    refused(
        &s,
        "workflows/mini.yaml:9:64: `require: 3` is more than the 2 task items matching \"cost\" under \"Proposal\"",
    );
    let s = project_with(&[(GATE, "      - checklist: {require: 4}")], &template);
    refused(
        &s,
        "workflows/mini.yaml:9:30: `require: 4` is more than the 3 task items in template `mini`",
    );
    let s = project_with(&[(GATE, "      - checklist: {require: 3}")], &template);
    s.ok(&["validate"]);
}

#[test]
fn a_child_gate_reads_the_child_template() {
    let child = "---\ntitle: Review\n---\n## Review\n- [ ] read\n";
    let s = project_with(
        &[
            (
                "    label: \"db::proposal\"\n",
                "    label: \"db::proposal\"\n    on_enter: [{create_issue: {template: review}}]\n",
            ),
            (GATE, "      - checklist: {child: review, section: Proposal}\n      - checklist: {child: review, section: Review, require: 2}"),
        ],
        &[],
    );
    std::fs::write(s.path("templates/review.md.hbs"), child).unwrap();
    // Both problems, in one run.
    let err = s.fails(&["validate"]);
    for expected in [
        "workflows/mini.yaml:10:45: section \"Proposal\" matches no heading of template `review` (its headings: \"Review\")",
        "workflows/mini.yaml:11:62: `require: 2` is more than the 1 task item under \"Review\" in template `review`",
    ] {
        assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    }
}

#[test]
fn a_child_workflow_is_held_against_the_template_it_is_opened_with() {
    // `mini` runs as a child of `parent`, which opens it from `other`: `mini`'s gate on
    // "Proposal" reads `other`, which has no such heading.
    let s = project(MINI);
    std::fs::write(
        s.path("templates/other.md.hbs"),
        "---\ntitle: Other\n---\n## Something else\n- [ ] x\n",
    )
    .unwrap();
    std::fs::write(
        s.path("workflows/parent.yaml"),
        "name: parent\nvariables:\n  table: {required: true}\ntracking: {template: mini}\nstages:\n  - id: one\n    label: \"p::one\"\n    on_enter: [{create_issue: {template: other, workflow: mini}}]\n    gates: [{completed: {child: other}}]\n    next: two\n  - id: two\n    label: \"p::two\"\n    terminal: true\n",
    )
    .unwrap();
    let err = s.fails(&["validate"]);
    assert!(
        err.contains(
            "workflows/mini.yaml:9:30: section \"Proposal\" matches no heading of template `other`"
        ) && err.contains("(workflow `parent` opens `mini` issues from template `other`)"),
        "{err}"
    );
}

#[test]
fn what_a_render_may_change_is_not_held_against_the_file() {
    for (name, template) in [
        (
            "items from a block",
            "## Proposal\n{{#each table}}\n- [ ] {{this}}\n{{/each}}\n- [ ] agreed\n",
        ),
        (
            "items in an if",
            "## Proposal\n- [ ] agreed\n{{#if table}}\n- [ ] {{table}} sized\n{{/if}}\n",
        ),
        ("a heading a value fills in", "## {{table}}\n- [ ] agreed\n"),
    ] {
        let s = project_with(
            &[(GATE, "      - checklist: {section: Proposal, require: 5}")],
            &[("## Proposal\n- [ ] agreed\n", template)],
        );
        let out = s.run(&["validate"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            crate::support::stderr(&out)
        );
    }
    // An item a value fills in may match any pattern.
    let s = project_with(
        &[(
            GATE,
            "      - checklist: {section: Proposal, items: [sized], require: 2}",
        )],
        &[("- [ ] agreed\n", "- [ ] agreed sized\n- [ ] {{table}}\n")],
    );
    s.ok(&["validate"]);
    s.ok(&["start", "mini", "--var", "table=sized", "--now", &at("0m")]);
}

#[test]
fn a_shipped_workflow_against_an_edited_template() {
    // Renaming a heading the shipped workflow's gates read is refused at the gate.
    let s = Shepherd::new();
    std::fs::create_dir_all(s.path("templates")).unwrap();
    let template = include_str!("../../templates/gitaly-migration.md.hbs");
    std::fs::write(
        s.path("templates/gitaly-migration.md.hbs"),
        template.replacen("## Opt-Out\n", "## Switched around\n", 1),
    )
    .unwrap();
    let workflow = include_str!("../../workflows/gitaly-migration.yaml");
    let (line, text) = workflow
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("checklist: {section: \"Opt-Out\"}"))
        .unwrap();
    let column = text.find("\"Opt-Out\"").unwrap() + 1;
    let err = s.fails(&["validate"]);
    assert!(
        err.contains(&format!(
            "(built-in)/workflows/gitaly-migration.yaml:{}:{column}: section \"Opt-Out\" matches no heading of template `gitaly-migration`",
            line + 1
        )),
        "{err}"
    );
    // The shipped ones as they are: every gate finds its section.
    Shepherd::new().ok(&["validate"]);
}
