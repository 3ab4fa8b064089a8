//! The metric source (`MetricSource`): where metric gates ask, a metrics server (Prometheus's HTTP API). A metric
//! question is answered with data, never an error: a server that does not answer is an
//! `Unavailable` answer, which makes the gate inconclusive, not the run fail.

pub mod prometheus;

use async_trait::async_trait;

use crate::core::facts::{MetricAnswer, MetricQuestion};

#[async_trait]
pub trait MetricSource: Send + Sync {
    /// The server as a person would name it (its URL, never a token).
    fn describe(&self) -> String;

    /// The values of the question's query over its window (wall clock), or at this
    /// instant.
    async fn ask(&self, question: &MetricQuestion) -> MetricAnswer;
}
