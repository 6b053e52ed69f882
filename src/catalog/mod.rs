//! The catalog's rules, free of HTTP: template validation and inspection ([`template`], bounded
//! by the nesting pre-scan of `nesting`),
//! constraint Config documents ([`constraint`]), the parameter metadata of product versions with
//! the check of launch parameters ([`parameters`]), and — the one part reading the store — a
//! product version resolved for launch ([`version`]). API handlers and the engine call them alike;
//! what they refuse is a [`error::DomainError`].

pub mod constraint;
pub mod error;
mod nesting;
pub mod parameters;
pub mod tag;
pub mod template;
pub mod version;
