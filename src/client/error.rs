//! How a call to the API failed, sorted the way the engine must act on it.
//!
//! Three kinds, as the contract sets out: *transient* (429, 5xx, a connection that could not be
//! made, a timeout before anything was sent): try again later; *final* (any other 4xx): this
//! row will not succeed as written; and *outcome unknown*: the request went out and no answer
//! came back, so the change may or may not have happened. The last is kept apart because a
//! create must not simply be sent again: what it would have made is looked for first.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::contract::{ErrorBody, Operation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Try again: nothing happened, or the server said to wait.
    Transient,
    /// The server refused the request as written; repeating it will not help.
    Final,
    /// The request was sent and no response came: it may have taken effect.
    OutcomeUnknown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Final => "final",
            ErrorKind::OutcomeUnknown => "outcome unknown",
        }
    }
}

/// A failed call, with what the server said about it. Holds no credentials or tokens: the
/// message is the server's, or the transport's, which never carries headers or bodies sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub operation: Operation,
    /// HTTP status, when a response came back.
    pub status: Option<u16>,
    /// The server's `error.code`, or a transport code such as `timeout`.
    pub code: Option<String>,
    pub message: String,
    /// Per-field messages from a 422, keyed by the API's field name.
    pub fields: BTreeMap<String, String>,
    /// The server's `Retry-After`, on a 429 or 503.
    pub retry_after: Option<Duration>,
    /// How many times the request was sent, this failure included.
    pub attempts: u32,
}

impl ApiError {
    pub(crate) fn from_response(
        operation: Operation,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> ApiError {
        let kind = match status {
            429 | 500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Final,
        };
        let (code, message, fields) = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => (Some(b.error.code), b.error.message, b.error.fields),
            Err(_) => {
                // Not the contract's error shape (a proxy's page, say): keep a short excerpt.
                let text = String::from_utf8_lossy(body);
                let text: String = text.chars().take(200).collect();
                let message = if text.trim().is_empty() {
                    format!("HTTP {status} with no explanation")
                } else {
                    text.trim().to_string()
                };
                (None, message, BTreeMap::new())
            }
        };
        ApiError {
            kind,
            operation,
            status: Some(status),
            code,
            message,
            fields,
            retry_after,
            attempts: 1,
        }
    }

    pub(crate) fn transport(
        operation: Operation,
        kind: ErrorKind,
        code: &str,
        message: String,
    ) -> ApiError {
        ApiError {
            kind,
            operation,
            status: None,
            code: Some(code.to_string()),
            message,
            fields: BTreeMap::new(),
            retry_after: None,
            attempts: 1,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    pub fn is_final(&self) -> bool {
        self.kind == ErrorKind::Final
    }

    pub fn is_outcome_unknown(&self) -> bool {
        self.kind == ErrorKind::OutcomeUnknown
    }

    /// Whether the same request may simply be sent again: transient failures always, an unknown
    /// outcome only when sending twice does no more than sending once
    /// ([`Operation::is_repeatable`]).
    pub fn may_resend(&self) -> bool {
        match self.kind {
            ErrorKind::Transient => true,
            ErrorKind::OutcomeUnknown => self.operation.is_repeatable(),
            ErrorKind::Final => false,
        }
    }

    /// The server's message with its field errors, as a results file shows it.
    pub fn detail(&self) -> String {
        let mut s = self.message.clone();
        if !self.fields.is_empty() {
            let parts: Vec<String> = self
                .fields
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            s.push_str(" (");
            s.push_str(&parts.join("; "));
            s.push(')');
        }
        s
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.operation)?;
        match self.status {
            Some(s) => write!(f, "HTTP {s}")?,
            None => f.write_str(self.kind.as_str())?,
        }
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        write!(f, ": {}", self.detail())?;
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_sorted_as_the_contract_says() {
        let k = |s| ApiError::from_response(Operation::AddCustomer, s, b"", None).kind;
        assert_eq!(k(429), ErrorKind::Transient);
        assert_eq!(k(500), ErrorKind::Transient);
        assert_eq!(k(503), ErrorKind::Transient);
        for s in [400, 401, 403, 404, 409, 422] {
            assert_eq!(k(s), ErrorKind::Final, "{s}");
        }
    }

    #[test]
    fn field_errors_are_kept_and_shown() {
        let body = br#"{"error":{"code":"validation_failed","message":"Invalid customer","fields":{"email":"required for plan pro"}}}"#;
        let e = ApiError::from_response(Operation::AddCustomer, 422, body, None);
        assert_eq!(e.code.as_deref(), Some("validation_failed"));
        assert_eq!(e.fields["email"], "required for plan pro");
        assert_eq!(
            e.to_string(),
            "Add Customer: HTTP 422 validation_failed: Invalid customer (email: required for plan pro)"
        );
    }

    #[test]
    fn unknown_outcome_is_resent_only_when_idempotent() {
        let e = |op| ApiError::transport(op, ErrorKind::OutcomeUnknown, "closed", "x".into());
        assert!(!e(Operation::AddCustomerOrder).may_resend());
        assert!(e(Operation::AllocateNumber).may_resend());
        assert!(e(Operation::ListCustomers).may_resend());
    }

    #[test]
    fn a_body_that_is_not_json_is_summarised() {
        let e =
            ApiError::from_response(Operation::GetStats, 502, b"<html>Bad gateway</html>", None);
        assert!(e.is_transient());
        assert_eq!(e.message, "<html>Bad gateway</html>");
    }
}
