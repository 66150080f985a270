//! How a call to the API failed, sorted the way the engine must act on it.
//!
//! Three kinds: *transient*: nothing happened, try again later; *final*: the server refused the
//! request as written, and repeating it will not help; and *outcome unknown*: the request may
//! have reached the account and no answer proves whether it did. The last is kept apart
//! because a create must not simply be sent again: what it would have made is looked for first.
//!
//! Once a write may have reached the server its outcome is unknown unless the answer proves
//! otherwise. Only two answers prove that nothing was applied: a 429 (the limit is checked
//! before the request is handled) and a 4xx carrying the contract's error body (the API itself
//! refused it; 401 too, which the client answers with a fresh token). A 5xx to a write proves
//! nothing: a gateway that gives up on the backend answers 502 or 504 while the change stands.
//! For a read, a 5xx is simply transient.

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
    /// Never sent: the client was halted (a stop asked for, a refused key, an outage longer
    /// than the job allows) while the request waited its turn.
    Halted,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Final => "final",
            ErrorKind::OutcomeUnknown => "outcome unknown",
            ErrorKind::Halted => "not sent",
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
    /// The answer's content type, as it came.
    pub content_type: Option<Box<str>>,
    /// Whether the answer carried the contract's error body: the API's own word, not a page
    /// from something in front of it.
    pub from_api: bool,
}

/// Up to `chars` of a body that is not the API's, for the message that says what came
/// instead; what could be a credential never is. A page that echoes its request (a proxy's
/// error page, a debugging gateway) would otherwise put the secret of a token request, or the
/// token of any call, into stderr, the journal and the results.
fn excerpt(operation: Operation, body: &[u8], chars: usize) -> String {
    if operation == Operation::GetJwt {
        return String::new();
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(chars).collect();
    text.split_inclusive(|c: char| !is_token_char(c))
        .map(|word| {
            let bare = word.trim_end_matches(|c: char| !is_token_char(c));
            if looks_like_jwt(bare) {
                word.replacen(bare, "[token withheld]", 1)
            } else {
                word.to_string()
            }
        })
        .collect()
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A JSON Web Token: three base64url parts, the first a JSON header (`eyJ` is `{"`).
fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.split('.').count() == 3
}

impl ApiError {
    pub(crate) fn from_response(
        operation: Operation,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> ApiError {
        let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
        let from_api = parsed.is_some();
        let kind = classify(operation, status, parsed.is_some());
        let (code, message, fields) = match parsed {
            Some(b) => (Some(b.error.code), b.error.message, b.error.fields),
            None => {
                // Not the contract's error shape (a proxy's page, say): keep a short excerpt.
                let text = excerpt(operation, body, 200);
                let message = if text.is_empty() {
                    format!("HTTP {status} with no explanation")
                } else {
                    text
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
            content_type: None,
            from_api,
        }
    }

    /// A success status whose answer is not the contract's JSON (another content type, or a
    /// body that does not parse): something in front of the API answered, or the answer was
    /// cut. It proves nothing, so a write's outcome is unknown and a read is tried again.
    pub(crate) fn not_the_apis(
        operation: Operation,
        status: u16,
        content_type: Option<Box<str>>,
        body: &[u8],
    ) -> ApiError {
        let excerpt = excerpt(operation, body, 120);
        let what = content_type.as_deref().unwrap_or("no content type");
        ApiError {
            kind: if operation.is_write() {
                ErrorKind::OutcomeUnknown
            } else {
                ErrorKind::Transient
            },
            operation,
            status: Some(status),
            code: Some("not_the_api".to_string()),
            message: format!(
                "the answer (HTTP {status}, {what}) is not the API's JSON, so it proves nothing{}",
                if excerpt.is_empty() {
                    String::new()
                } else {
                    format!(": {excerpt:?}")
                }
            ),
            fields: BTreeMap::new(),
            retry_after: None,
            attempts: 1,
            content_type,
            from_api: false,
        }
    }

    /// A request dropped before it was sent, because the client was halted.
    pub(crate) fn halted(operation: Operation, why: &super::Halt) -> ApiError {
        ApiError {
            kind: ErrorKind::Halted,
            operation,
            status: None,
            code: Some("halted".to_string()),
            message: why.to_string(),
            fields: BTreeMap::new(),
            retry_after: None,
            attempts: 0,
            content_type: None,
            from_api: false,
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
            content_type: None,
            from_api: false,
        }
    }

    pub fn is_halted(&self) -> bool {
        self.kind == ErrorKind::Halted
    }

    /// Whether the failure says nothing about the request it came back on: no connection, no
    /// answer in time, a 5xx, an answer that is not the API's. Many of them together mean the
    /// API is down (see [`super::Health`]), which is the job's problem, not the row's.
    pub fn is_outage_sign(&self) -> bool {
        match self.kind {
            ErrorKind::Halted => false,
            ErrorKind::Transient | ErrorKind::Final | ErrorKind::OutcomeUnknown => {
                match self.status {
                    // A success in the API's JSON of another shape is the API answering: no
                    // outage, however often it comes.
                    None => !matches!(
                        self.code.as_deref(),
                        Some("bad_request" | "incomplete_list" | "unreadable_response")
                    ),
                    Some(429) => false,
                    Some(s) if s >= 500 => true,
                    Some(_) => !self.from_api,
                }
            }
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
            ErrorKind::Final | ErrorKind::Halted => false,
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

/// What an HTTP failure status proves, for this operation; `contract_body` says whether the
/// answer carried the contract's error shape (the API's own refusal, not a proxy's page).
fn classify(operation: Operation, status: u16, contract_body: bool) -> ErrorKind {
    match status {
        429 => ErrorKind::Transient,
        500..=599 if operation.is_write() => ErrorKind::OutcomeUnknown,
        500..=599 => ErrorKind::Transient,
        401 => ErrorKind::Final,
        _ if operation.is_write() && !contract_body => ErrorKind::OutcomeUnknown,
        // A page from something in front of the API says nothing of what was asked: a read
        // is simply asked again.
        _ if !contract_body => ErrorKind::Transient,
        _ => ErrorKind::Final,
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

    const REFUSED: &[u8] = br#"{"error":{"code":"conflict","message":"no"}}"#;

    /// A page that echoes the request it was given never carries a credential into a message.
    #[test]
    fn an_echoing_page_keeps_no_credential() {
        let echo = br#"<pre>POST /auth {"apiKey":"pk_1","apiSecret":"s3cr3t-Value"}</pre>"#;
        let e = ApiError::from_response(Operation::GetJwt, 502, echo, None);
        assert!(!e.message.contains("s3cr3t"), "{}", e.message);
        let e = ApiError::not_the_apis(Operation::GetJwt, 200, None, echo);
        assert!(!e.message.contains("s3cr3t"), "{}", e.message);
        let jwt = b"<p>Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwayJ9.c2lnbmF0dXJl denied</p>";
        let e = ApiError::from_response(Operation::ListCustomers, 403, jwt, None);
        assert!(!e.message.contains("eyJhbGci"), "{}", e.message);
        assert!(
            e.message.contains("[token withheld] denied"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_read_that_fails_is_transient_or_final() {
        let k = |s| ApiError::from_response(Operation::ListCustomers, s, REFUSED, None).kind;
        assert_eq!(k(429), ErrorKind::Transient);
        assert_eq!(k(500), ErrorKind::Transient);
        assert_eq!(k(503), ErrorKind::Transient);
        for s in [400, 401, 403, 404, 409, 422] {
            assert_eq!(k(s), ErrorKind::Final, "{s}");
        }
        let bare = ApiError::from_response(Operation::ListCustomers, 404, b"<html>", None);
        assert_eq!(bare.kind, ErrorKind::Transient, "not the API's word");
        assert!(bare.is_outage_sign());
        let own = ApiError::from_response(Operation::ListCustomers, 404, REFUSED, None);
        assert!(
            !own.is_outage_sign(),
            "the API's own refusal is about the request"
        );
    }

    #[test]
    fn a_write_is_proved_unapplied_only_by_a_429_or_the_apis_own_refusal() {
        for op in [
            Operation::AddCustomer,
            Operation::UpdateCustomer,
            Operation::DeleteCustomerUser,
            Operation::ResendActivation,
        ] {
            let k = |s, body: &[u8]| ApiError::from_response(op, s, body, None).kind;
            assert_eq!(k(429, b""), ErrorKind::Transient, "{op}");
            for s in [500, 502, 503, 504] {
                assert_eq!(k(s, REFUSED), ErrorKind::OutcomeUnknown, "{op} {s}");
                assert_eq!(k(s, b"Bad gateway"), ErrorKind::OutcomeUnknown, "{op} {s}");
            }
            for s in [400, 401, 403, 404, 409, 422] {
                assert_eq!(k(s, REFUSED), ErrorKind::Final, "{op} {s}");
            }
            // A 404 or 408 page from something in front of the API proves nothing.
            assert_eq!(k(404, b"<html>"), ErrorKind::OutcomeUnknown, "{op}");
            assert_eq!(k(408, b""), ErrorKind::OutcomeUnknown, "{op}");
            assert_eq!(k(401, b""), ErrorKind::Final, "{op}");
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
