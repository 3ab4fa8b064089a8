//! Reading a webhook's body, once its headers have passed what they alone can show
//! (`auth`). At most `BODIES_AT_ONCE` bodies are read at once across the hook endpoints
//! (more get 503 with `Retry-After`), each within the body timeout (else 408 and the
//! connection is closed) and up to `BODY_LIMIT` (else 413, at once when the declared
//! length says so). So a flood of large or slow deliveries holds at most a few bodies in
//! memory and no reader for long.

use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Shared, BODY_LIMIT};

/// How many webhook bodies are read at once, across the hook endpoints.
pub const BODIES_AT_ONCE: usize = 8;
/// What a delivery refused for want of a reading slot is told to wait, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// The slots for reading bodies, shared by the hook endpoints.
pub(super) fn slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(BODIES_AT_ONCE))
}

/// A body read whole, and the reading slot it holds until it is dropped (the bytes are
/// in memory until the handler is done with them).
pub(super) struct Read {
    pub(super) bytes: Bytes,
    _slot: OwnedSemaphorePermit,
}

/// Reads the body of a delivery from `source` in one of the reading slots, within the
/// body timeout; the answer to send instead when it cannot be read.
pub(super) async fn read(shared: &Shared, source: &str, body: Body) -> Result<Read, Response> {
    if body.size_hint().lower() > BODY_LIMIT as u64 {
        shared.metrics.delivery(source, "too_large");
        return Err(too_large());
    }
    let Ok(slot) = shared.bodies.clone().try_acquire_owned() else {
        shared.metrics.delivery(source, "busy");
        return Err(busy());
    };
    match tokio::time::timeout(shared.body_timeout, collect(body)).await {
        Ok(Ok(bytes)) => Ok(Read { bytes, _slot: slot }),
        Ok(Err(Unread::TooLarge)) => {
            shared.metrics.delivery(source, "too_large");
            Err(too_large())
        }
        Ok(Err(Unread::Broken)) => {
            shared.metrics.delivery(source, "malformed");
            Err(close(
                StatusCode::BAD_REQUEST,
                "the body could not be read\n",
            ))
        }
        Err(_) => {
            shared.metrics.delivery(source, "timeout");
            tracing::debug!(source, "a delivery's body did not arrive in time");
            Err(close(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time\n",
            ))
        }
    }
}

enum Unread {
    TooLarge,
    Broken,
}

/// The body's bytes, refusing more than `BODY_LIMIT`.
async fn collect(body: Body) -> Result<Bytes, Unread> {
    let mut stream = body.into_data_stream();
    let mut out: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Unread::Broken)?;
        if out.len() + chunk.len() > BODY_LIMIT {
            return Err(Unread::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

fn too_large() -> Response {
    close(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the body is larger than 25 MiB\n",
    )
}

fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())],
        "too many deliveries at once; deliver again later\n",
    )
        .into_response()
}

/// An answer after which the connection is closed: what is left of the body is not read.
fn close(status: StatusCode, text: &'static str) -> Response {
    (status, [(header::CONNECTION, "close")], text).into_response()
}
