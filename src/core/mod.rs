//! The pure core: workflows, checklists, gates, the state machine and the report model.
//! Nothing here does IO, reads the clock or awaits; every input is an argument.

pub mod checklist;
pub mod command;
pub mod drift;
pub mod duration;
pub mod events;
pub mod facts;
pub mod forecast;
pub mod freeze;
pub mod gates;
pub mod machine;
pub mod marker;
pub mod outline;
pub mod overdue;
pub mod plan;
pub mod portfolio;
pub mod promql;
pub mod questions;
pub mod report;
pub mod snapshot;
pub mod time;
pub mod value;
pub mod workflow;
pub mod yaml;
