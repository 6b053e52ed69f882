//! Running the server in production: shutdown signals, metrics, the audit trail, request limits,
//! backups and the configuration file. Each piece is wired into the request pipeline or the
//! server's life in one place (`api::rpc`, `server`, `main`).

pub mod shutdown;
pub mod metrics;
pub mod limits;
pub mod audit;
pub mod backup;
pub mod config;
pub mod log_writer;
