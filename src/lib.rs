//! shepherd moves migrations and feature-flag rollouts through their stages on an issue
//! tracker. See ARCHITECTURE.md for the map.

pub mod catalog;
pub mod cli;
pub mod core;
pub mod engine;
pub mod flags;
pub mod fresh;
pub mod http;
pub mod metric_source;
pub mod notify;
pub mod render;
pub mod report_format;
pub mod serve;
pub mod store;
pub mod tracker;
