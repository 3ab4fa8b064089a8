//! Prometheus's HTTP API (`/api/v1/query`, `/api/v1/query_range`).
