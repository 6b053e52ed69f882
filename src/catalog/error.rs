//! What a catalog or provisioning rule refuses, in the terms the API answers with: each variant
//! is one family of the API's error codes, mapped to its HTTP answer once, in `api::error`.

use serde_json::Value;

use crate::store::principal::Principal;
use crate::store::StoreError;

/// A refusal of the domain services.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// `InvalidParameter.<parameter>`: the value breaks a rule.
    #[error("{message}")]
    InvalidParameter {
        /// The parameter (its top level names the code).
        parameter: String,
        /// What is wrong, for the caller.
        message: String,
    },
    /// `MissingParameter.<parameter>`: needed here, and why.
    #[error("{message}")]
    MissingParameter {
        /// The parameter.
        parameter: String,
        /// Why it is needed.
        message: String,
    },
    /// `EntityNotExists.<kind>`: missing, or not the caller's to see.
    #[error("The specified {} {id:?} does not exist.", crate::model::kind_words(kind))]
    NotFound {
        /// The kind of object (`Product`, `ProvisionedProduct`, …).
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// `EntityNotExists.<kind>` with a message of its own (a missing link between two objects).
    #[error("{message}")]
    Absent {
        /// The kind of object.
        kind: &'static str,
        /// What is missing, for the caller.
        message: String,
    },
    /// `InvalidStatus.<kind>`: the object's state forbids the operation.
    #[error("{message}")]
    InvalidStatus {
        /// The kind of object.
        kind: &'static str,
        /// Why, for the caller.
        message: String,
    },
    /// `Forbidden.<reason>`, with the `AccessDeniedDetail` the SDK exposes.
    #[error("{message}")]
    Forbidden {
        /// The reason (the code's suffix).
        reason: &'static str,
        /// What to do instead.
        message: String,
        /// The `AccessDeniedDetail` object.
        detail: Value,
    },
    /// A fault of the service (the detail is logged, never answered).
    #[error("{0}")]
    Internal(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DomainError {
    /// `InvalidParameter.<parameter>` with `message`.
    pub fn invalid_parameter(parameter: &str, message: impl Into<String>) -> Self {
        DomainError::InvalidParameter { parameter: parameter.to_string(), message: message.into() }
    }

    /// `MissingParameter.<parameter>`, saying only that it is required.
    pub fn missing_parameter(parameter: &str) -> Self {
        let message = format!("The required parameter {parameter} is missing.");
        DomainError::MissingParameter { parameter: parameter.to_string(), message }
    }

    /// `EntityNotExists.<kind>` for `id`.
    pub fn not_found(kind: &'static str, id: &str) -> Self {
        DomainError::NotFound { kind, id: id.to_string() }
    }

    /// `InvalidStatus.<kind>` with `message`.
    pub fn invalid_status(kind: &'static str, message: impl Into<String>) -> Self {
        DomainError::InvalidStatus { kind, message: message.into() }
    }
}

impl From<super::template::TemplateError> for DomainError {
    fn from(error: super::template::TemplateError) -> Self {
        match error {
            super::template::TemplateError::Internal(cause) => DomainError::Internal(cause),
            error => DomainError::invalid_parameter(error.parameter(), error.to_string()),
        }
    }
}

impl From<super::parameters::ParameterError> for DomainError {
    fn from(error: super::parameters::ParameterError) -> Self {
        DomainError::invalid_parameter("Parameters", error.0)
    }
}

/// `403 Forbidden.AdministratorOnly` for an end user asking what only administrators may.
pub fn administrators_only(principal: &Principal, action: &str, message: String) -> Result<(), DomainError> {
    if principal.is_admin {
        return Ok(());
    }
    Err(DomainError::Forbidden {
        reason: "AdministratorOnly",
        message,
        detail: serde_json::json!({"AuthAction": format!("servicecatalog:{action}"), "AuthPrincipalDisplayName": principal.name, "NoPermissionType": "ImplicitDeny"}),
    })
}
