//! The workflow file's shape as types, from which `shepherd schema` derives a JSON Schema
//! (2020-12) for editors: with `# yaml-language-server: $schema=…` at the top of a
//! workflow, an editor completes keys and flags unknown keys and wrong types as they are
//! typed. The schema checks the shape only; what it cannot say (a `next` that names no
//! stage, a template that does not exist, a bad regex or duration) `validate` says.
//!
//! These types mirror what `load` accepts, and a test holds them to it: every shipped
//! workflow passes the schema, and the bad-shape fixtures that `validate` refuses, it
//! refuses too.

use std::collections::BTreeMap;

use schemars::JsonSchema;

use crate::core::gates::RawGate;

/// The JSON Schema of a workflow file, as pretty-printed JSON.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(WorkflowFile);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// A shepherd workflow: the stages a migration goes through and the gates between them.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "shepherd workflow")]
#[allow(dead_code)]
struct WorkflowFile {
    /// The workflow's name; a file's name is its name with `.yaml`
    name: String,
    /// What the workflow is for, shown by `shepherd workflows`
    #[serde(default)]
    description: Option<Text>,
    /// The inputs given at `start` (`--var K=V`), by name
    #[serde(default)]
    variables: BTreeMap<String, Option<Variable>>,
    /// The tracking issue: its template and the labels always on it
    tracking: Tracking,
    /// The stages, the first one first
    stages: Vec<Stage>,
}

/// A string; a number or a boolean is read as its text.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum Text {
    String(String),
    Number(f64),
    Bool(bool),
}

/// One text or a list of them.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum OneOrMany {
    One(Text),
    Many(Vec<Text>),
}

/// A number, or a variable that holds one (`"{{threshold}}"`).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum NumberOrVariable {
    Number(f64),
    Variable(String),
}

/// A workflow input.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Variable {
    /// `start` fails without it
    #[serde(default)]
    required: Option<bool>,
    /// The value when none is given
    #[serde(default)]
    default: Option<Text>,
    /// A regular expression the value must match
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    description: Option<Text>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Tracking {
    /// The template of the tracking issue (`templates/NAME.md.hbs`)
    template: Text,
    /// Labels always on the tracking issue
    #[serde(default)]
    labels: Option<OneOrMany>,
}

/// One stage: its label on the tracking issue, the gates that let a migration leave it,
/// and where to.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Stage {
    /// The stage's id, unique in the workflow
    id: Text,
    /// The stage label on the tracking issue, unique in the workflow
    label: Text,
    #[serde(default)]
    description: Option<Text>,
    /// All must hold to leave by `next`
    #[serde(default)]
    gates: Option<Vec<RawGate>>,
    /// The next stage, or edges whose first `when` that holds wins
    #[serde(default)]
    next: Option<Next>,
    /// Ways out without the stage's gates, each when its `when` holds
    #[serde(default)]
    exits: Option<Vec<Edge>>,
    /// A stage with no way out: the migration is done
    #[serde(default)]
    terminal: Option<bool>,
    /// What happens on entering the stage, in order
    #[serde(default)]
    on_enter: Option<Vec<Action>>,
    /// At most this many open migrations of the workflow in the stage at once
    #[serde(default)]
    #[schemars(range(min = 1))]
    limit: Option<u32>,
    /// A stay longer than this is overdue: 15m, 2h, 1d, 1w
    #[serde(default)]
    target: Option<Text>,
    /// Who is nudged when a stay is overdue (default: the assignees)
    #[serde(default)]
    owners: Option<OneOrMany>,
    /// `wait`: not entered while a change freeze is in effect
    #[serde(default)]
    freeze: Option<Freeze>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum Freeze {
    Wait,
    Ignore,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum Next {
    /// A stage id
    Stage(Text),
    /// Edges, the first whose `when` holds wins; one without `when` is the default
    Edges(Vec<Edge>),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Edge {
    /// A stage id
    to: Text,
    /// Gates that must all hold
    #[serde(default)]
    when: Option<Vec<RawGate>>,
}

/// An action: one key naming its kind.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
enum Action {
    /// Open a child issue from a template (with its own workflow, if given)
    CreateIssue(CreateIssue),
    /// A comment on the tracking issue (Handlebars)
    Comment(Text),
    /// Labels to add and remove (a bare list adds)
    Labels(Labels),
    /// Close the tracking issue
    Close(bool),
    /// Set a feature flag
    FeatureFlag(FeatureFlag),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CreateIssue {
    template: Text,
    #[serde(default)]
    workflow: Option<Text>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum Labels {
    Add(OneOrMany),
    Change(LabelChange),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LabelChange {
    #[serde(default)]
    add: Option<OneOrMany>,
    #[serde(default)]
    remove: Option<OneOrMany>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FeatureFlag {
    name: Text,
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    percentage: Option<f64>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    delete: Option<bool>,
    #[serde(default)]
    environment: Option<Text>,
}
