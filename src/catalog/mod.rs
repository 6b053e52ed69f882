//! The catalog's rules, free of HTTP and storage: constraint Config documents, read by the API
//! handlers and the provisioning engine alike.

pub mod constraint;
