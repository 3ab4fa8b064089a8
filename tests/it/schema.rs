//! `shepherd schema`: the JSON Schema of workflow files, checked with a JSON Schema
//! validator — every shipped workflow passes it, and what `validate` refuses for its shape
//! (unknown keys, wrong types) it refuses too.

use serde_json::Value;

use crate::bad_input::{project, MINI};
use crate::support::Shepherd;

/// The schema as `shepherd schema` prints it, compiled by a 2020-12 validator.
fn validator() -> (Value, jsonschema::Validator) {
    let s = Shepherd::new();
    let out = s.run(&["schema"]);
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).expect("the schema is JSON");
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "a 2020-12 schema"
    );
    jsonschema::draft202012::meta::validate(&schema).expect("a valid 2020-12 schema");
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    (schema, validator)
}

/// A workflow file read as YAML, as an editor's language server reads it.
fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

fn errors(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    validator
        .iter_errors(&yaml(text))
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn every_shipped_workflow_passes_the_schema() {
    let (_, validator) = validator();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let errors = errors(&validator, &text);
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 3, "the shipped workflows are found ({seen})");
    assert!(errors(&validator, MINI).is_empty());
}

#[test]
fn what_validate_refuses_for_its_shape_the_schema_refuses() {
    let (_, validator) = validator();
    // (what to change in MINI, what `validate` says)
    let cases: &[(&str, &str, &str)] = &[
        (
            "      - checklist: {section: Proposal}",
            "      - checklist: {section: Proposal}\n      - soon: 1h",
            "unknown gate `soon`",
        ),
        (
            "    terminal: true",
            "    terminal: true\n    color: red",
            "unknown key `color` in a stage",
        ),
        (
            "{section: Proposal}",
            "{section: Proposal, every: true}",
            "unknown key `every`",
        ),
        (
            "{section: Proposal}",
            "{section: Proposal, require: 0}",
            "`require` must be `all` or a number of at least 1",
        ),
        ("    terminal: true", "    terminal: [yes]", "`terminal`"),
        (
            "      - checklist: {section: Proposal}",
            "      - approval: {by: [dave]}",
            "`approval` needs a `label`",
        ),
        (
            "    gates:\n      - checklist: {section: Proposal}\n",
            "    gates: {checklist: {section: Proposal}}\n",
            "gates must be a list",
        ),
        (
            "      - checklist: {section: Proposal}",
            "      - {label: a, no_label: b}",
            "a gate must have exactly one key",
        ),
        ("tracking: {template: mini}", "tracking: mini", "`tracking`"),
    ];
    for (from, to, said) in cases {
        assert!(MINI.contains(from), "{from}");
        let text = MINI.replacen(from, to, 1);
        let out = project(&text).run(&["validate"]);
        assert_eq!(out.status.code(), Some(1), "validate refuses {to:?}");
        let err = crate::support::stderr(&out);
        assert!(err.contains(said), "{to:?}: expected {said:?} in:\n{err}");
        assert!(
            !errors(&validator, &text).is_empty(),
            "the schema refuses {to:?} as validate does"
        );
    }
    // What only `validate` can see (stages that do not exist, regexes) is no matter of
    // shape: the schema lets it pass.
    let text = MINI.replacen("next: done", "next: finished", 1);
    assert!(errors(&validator, &text).is_empty());
}

#[test]
fn the_schema_describes_the_gates_for_an_editor() {
    let (schema, _) = validator();
    let text = schema.to_string();
    for gate in [
        "checklist",
        "no_label",
        "min_duration",
        "approval",
        "merge_request",
        "release",
        "metric",
        "flag",
        "any",
        "all",
    ] {
        assert!(
            text.contains(&format!("\"{gate}\"")),
            "gate {gate} in the schema"
        );
    }
    // Descriptions come along, for an editor's hover.
    assert!(text.contains("At least this long in the stage"), "{text}");
}
