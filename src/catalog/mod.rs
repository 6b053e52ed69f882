//! The catalog's rules, free of HTTP: template validation and inspection ([`template`], bounded
//! by the nesting pre-scan of `nesting`),
//! constraint Config documents ([`constraint`]), the parameter metadata of product versions with
//! the check of launch parameters ([`parameters`]), and — the one part reading the store — a
//! product version resolved for launch ([`version`]). API handlers and the engine call them alike.

pub mod constraint;
mod nesting;
pub mod parameters;
pub mod tag;
pub mod template;
pub mod version;

use crate::api::error::ApiError;

impl From<template::TemplateError> for ApiError {
    fn from(error: template::TemplateError) -> Self {
        match error {
            template::TemplateError::Internal(cause) => ApiError::internal(cause),
            error => ApiError::invalid_parameter(error.parameter(), error.to_string()),
        }
    }
}

impl From<parameters::ParameterError> for ApiError {
    fn from(error: parameters::ParameterError) -> Self {
        ApiError::invalid_parameter("Parameters", error.0)
    }
}
