//! The API's error contract: every failure becomes one [`ApiError`] with an HTTP status and a wire
//! code, rendered once as `{RequestId, HostId, Code, Message, Recommend}` (plus
//! `AccessDeniedDetail` on 403). Internal detail is logged, never returned.

use std::borrow::Cow;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::catalog::error::DomainError;
use crate::catalog::parameters::ParameterError;
use crate::catalog::template::TemplateError;
use crate::store::StoreError;

/// An error answered to the caller.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    access_denied_detail: Option<Value>,
    retry_after_seconds: Option<u64>,
}

impl ApiError {
    /// An error with any status, code and message.
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), access_denied_detail: None, retry_after_seconds: None }
    }

    /// `400 MissingParameter.<Name>`.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("MissingParameter.{}", top_level(name)),
            format!("The required parameter {name} is missing."),
        )
    }

    /// `400 MissingParameter.<Name>` with a message saying why it is needed here.
    pub fn missing_parameter_because(name: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("MissingParameter.{}", top_level(name)), message)
    }

    /// `400 InvalidParameter.<Name>`.
    pub fn invalid_parameter(name: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("InvalidParameter.{}", top_level(name)), message)
    }

    /// `404 EntityNotExists.<Kind>`.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("EntityNotExists.{kind}"),
            format!("The specified {} {id:?} does not exist.", crate::model::kind_words(kind)),
        )
    }

    /// `409 InvalidStatus.<Kind>`: the resource is not in a state that allows the operation.
    pub fn invalid_status(kind: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, format!("InvalidStatus.{kind}"), message)
    }

    /// `403 Forbidden.<Reason>` with the `AccessDeniedDetail` the SDK exposes.
    pub fn forbidden(reason: &str, message: impl Into<String>, detail: Value) -> Self {
        let mut error = Self::new(StatusCode::FORBIDDEN, format!("Forbidden.{reason}"), message);
        error.access_denied_detail = Some(detail);
        error
    }

    /// `500 InternalError`; the cause is logged here and never returned.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "A system error occurred.")
    }

    /// `503 ServiceUnavailable`: a dependency (the database) is unreachable; safe to retry.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "service unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "The service is temporarily unavailable; retry later.")
    }

    /// `503 ServiceUnavailable.StorageFull`: the database cannot write for lack of space; nothing
    /// was changed, and the same request succeeds once an operator frees space.
    pub fn storage_full(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "the database's storage is full");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable.StorageFull",
            "The server's storage is full: nothing was changed. Retry once space is freed.",
        )
    }

    /// Asks the caller to retry after `seconds` (the SDK then raises `ThrottlingException`).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The wire code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Seconds after which the caller may retry (sent as `x-acs-retry-after`).
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after_seconds
    }

    /// The response body.
    pub fn body(&self, request_id: &str, host_id: &str) -> Value {
        let mut body = json!({
            "RequestId": request_id,
            "HostId": host_id,
            "Code": self.code,
            "Message": self.message,
            "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}", self.code),
        });
        if let Some(detail) = &self.access_denied_detail {
            body["AccessDeniedDetail"] = detail.clone();
        }
        body
    }
}

/// `Tags.1.Key` → `Tags`: codes name the top-level parameter; messages name the full path.
fn top_level(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => ApiError::unavailable(cause),
            StoreError::Full(cause) => ApiError::storage_full(cause),
            StoreError::Database(cause) => ApiError::internal(cause),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::InvalidParameter { parameter, message } => ApiError::invalid_parameter(&parameter, message),
            DomainError::MissingParameter { parameter, message } => ApiError::missing_parameter_because(&parameter, message),
            DomainError::NotFound { kind, id } => ApiError::not_found(kind, &id),
            DomainError::Absent { kind, message } => ApiError::new(StatusCode::NOT_FOUND, format!("EntityNotExists.{kind}"), message),
            DomainError::InvalidStatus { kind, message } => ApiError::invalid_status(kind, message),
            DomainError::Forbidden { reason, message, detail } => ApiError::forbidden(reason, message, detail),
            DomainError::Internal(cause) => ApiError::internal(cause),
            DomainError::Store(e) => e.into(),
        }
    }
}

impl From<TemplateError> for ApiError {
    fn from(error: TemplateError) -> Self {
        DomainError::from(error).into()
    }
}

impl From<ParameterError> for ApiError {
    fn from(error: ParameterError) -> Self {
        DomainError::from(error).into()
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(error: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError::*;
        let message = format!("{error}");
        match error {
            Incomplete(_) => ApiError::new(StatusCode::BAD_REQUEST, "IncompleteSignature", message),
            UnknownAccessKey(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "InvalidAccessKeyId.NotFound", "The specified AccessKey id does not exist.")
            }
            SignatureMismatch(_) => ApiError::new(StatusCode::BAD_REQUEST, "SignatureDoesNotMatch", message),
            BadTimestamp(_) => ApiError::new(StatusCode::BAD_REQUEST, "InvalidTimeStamp.Format", format!("Specified {message}.")),
            Expired(_) => ApiError::new(StatusCode::BAD_REQUEST, "InvalidTimeStamp.Expired", format!("Specified {message}.")),
            NonceUsed(_) => ApiError::new(StatusCode::BAD_REQUEST, "SignatureNonceUsed", format!("Specified {message}.")),
            SecretUnreadable => ApiError::internal(message),
            Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_every_field_the_sdk_reads() {
        let body = ApiError::not_found("Portfolio", "port-x").body("RID", "host");
        assert_eq!(body["Code"], "EntityNotExists.Portfolio");
        assert_eq!(body["RequestId"], "RID");
        assert_eq!(body["HostId"], "host");
        assert!(body["Recommend"].as_str().unwrap().ends_with("EntityNotExists.Portfolio"));
        assert!(body.get("AccessDeniedDetail").is_none());
    }

    #[test]
    fn nested_parameter_codes_name_the_top_level_parameter() {
        let e = ApiError::missing_parameter("ProductVersionParameters.TemplateUrl");
        assert_eq!(e.code(), "MissingParameter.ProductVersionParameters");
        assert!(e.message().contains("ProductVersionParameters.TemplateUrl"));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal("secret path /var/x");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.body("r", "h").to_string().contains("/var/x"));
    }
}
