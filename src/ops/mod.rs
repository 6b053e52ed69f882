//! Running the server in production: shutdown signals, metrics, where the data lives (and the
//! master key's rotation), backups, the configuration file, the delivery of webhooks
//! ([`notify`]) and how long records are kept ([`retention`]). Each piece is wired into the
//! server's life in one place (`server`, `main`). The audit trail and request limits belong to
//! the request pipeline: `api::trail`, `api::limits`.

pub mod backup;
pub mod config;
pub mod data;
pub mod log_writer;
pub mod metrics;
pub mod notify;
pub mod retention;
pub mod shutdown;
