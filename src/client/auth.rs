//! The JWT: fetched with key and secret, shared by every caller, refreshed before it expires.
//!
//! Callers take the token under one async lock; whoever finds it missing or close to expiry
//! fetches a new one while holding the lock, so a hundred requests in flight when the token runs
//! out cause one `POST /auth`, not a hundred. Each token has a generation number: a caller whose
//! request got a 401 drops the token only if it is still the one that failed, so two callers
//! failing with the same stale token refresh it once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{
    decode, ApiError, ApiRequest, Client, Credentials, ErrorKind, Halt, Next, Secret, Tries,
};
use crate::contract::{AuthRequest, AuthResponse, Operation};

/// Refresh this long before expiry at most; tokens shorter than five times this refresh at a
/// fifth of their life before the end.
const MAX_MARGIN: Duration = Duration::from_secs(60);
/// When the server's clock disagrees with ours so much that the token looks already expired,
/// use it this long and let a 401 say when to refresh.
const SKEWED_LIFETIME: Duration = Duration::from_secs(30);

pub(super) struct Auth {
    credentials: Credentials,
    state: Mutex<State>,
}

struct State {
    token: Option<(Secret, Instant)>,
    generation: u64,
}

impl Auth {
    pub(super) fn new(credentials: Credentials) -> Auth {
        Auth {
            credentials,
            state: Mutex::new(State {
                token: None,
                generation: 0,
            }),
        }
    }

    pub(super) fn key_id(&self) -> &str {
        &self.credentials.key_id
    }

    /// A token good for a while yet, and its generation.
    pub(super) async fn token(&self, client: &Client) -> Result<(Secret, u64), ApiError> {
        let mut st = self.state.lock().await;
        if let Some((t, refresh_at)) = &st.token {
            if Instant::now() < *refresh_at {
                return Ok((t.clone(), st.generation));
            }
        }
        let (token, refresh_at) = self.fetch(client).await?;
        st.generation += 1;
        st.token = Some((token.clone(), refresh_at));
        tracing::debug!(generation = st.generation, "new access token");
        Ok((token, st.generation))
    }

    /// The token in hand, if it is still good: for a probe, which must not wait on anything.
    pub(super) async fn current(&self) -> Option<(Secret, u64)> {
        // Not waited for: a token fetch holds the lock while it waits for the API, and the
        // probe is what tells it the API is back.
        let st = self.state.try_lock().ok()?;
        match &st.token {
            Some((t, refresh_at)) if Instant::now() < *refresh_at => {
                Some((t.clone(), st.generation))
            }
            _ => None,
        }
    }

    /// One token request past the outage gate, kept if it answers: a probe of an outage with
    /// no token in hand.
    pub(super) async fn probe(&self, client: &Client) -> Result<(), ApiError> {
        let req = self.request();
        let reply = client.send(&req, None, true).await;
        let reply = match reply {
            Err(e) if self.refused(&e) => return Err(self.halt(client, &e)),
            other => other?,
        };
        let (token, refresh_at) = self.read(&reply.body)?;
        // Kept if no fetch is under way; one that is gets its own token once the API answers.
        if let Ok(mut st) = self.state.try_lock() {
            st.generation += 1;
            st.token = Some((token, refresh_at));
        }
        Ok(())
    }

    /// Forget the token of `generation`, if it is still the current one.
    pub(super) async fn invalidate(&self, generation: u64) {
        let mut st = self.state.lock().await;
        if st.generation == generation {
            st.token = None;
        }
    }

    fn request(&self) -> ApiRequest {
        ApiRequest::new(Operation::GetJwt, &[]).json(&AuthRequest {
            key_id: self.credentials.key_id.clone(),
            secret: self.credentials.secret.expose().to_string(),
        })
    }

    /// The API's own refusal of the key and secret.
    fn refused(&self, e: &ApiError) -> bool {
        e.from_api && matches!(e.status, Some(401 | 403))
    }

    /// A refused key halts the client: every row would meet it, and none of them is at fault.
    fn halt(&self, client: &Client, e: &ApiError) -> ApiError {
        let halt = Halt::KeyRefused {
            message: format!(
                "the API refused key {:?} and its secret ({})",
                self.credentials.key_id,
                e.detail()
            ),
        };
        client.health().halt(halt.clone());
        // The refusal's status stays with it: a check reports a refused secret as such.
        let mut halted = ApiError::halted(Operation::GetJwt, &halt);
        halted.status = e.status;
        halted
    }

    async fn fetch(&self, client: &Client) -> Result<(Secret, Instant), ApiError> {
        let req = self.request();
        let mut tries = Tries::default();
        loop {
            // Getting a token changes nothing on the server, so a lost answer is simply
            // asked again.
            let mut err = match client.send(&req, None, false).await {
                Ok(reply) => match self.read(&reply.body) {
                    Ok(t) => return Ok(t),
                    Err(e) => e,
                },
                Err(e) if self.refused(&e) => return Err(self.halt(client, &e)),
                Err(mut e) => {
                    if e.kind == ErrorKind::OutcomeUnknown {
                        e.kind = ErrorKind::Transient;
                    }
                    e
                }
            };
            let next = tries.after(client, &err);
            err.attempts = tries.sent;
            match next {
                Next::GiveUp => return Err(err),
                Next::Retry(wait) => {
                    if let Err(h) = client.health().sleep(wait).await {
                        return Err(ApiError::halted(Operation::GetJwt, &h));
                    }
                }
            }
        }
    }

    /// A token answer, and when to refresh it.
    fn read(&self, body: &[u8]) -> Result<(Secret, Instant), ApiError> {
        let resp: AuthResponse = decode(Operation::GetJwt, body).map_err(|mut e| {
            e.kind = ErrorKind::Transient;
            e
        })?;
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let remaining = resp.expires as f64 - now_unix;
        let life = if remaining > 0.0 {
            Duration::from_secs_f64(remaining)
        } else {
            SKEWED_LIFETIME
        };
        let margin = (life / 5).min(MAX_MARGIN);
        Ok((
            Secret::new(resp.access_token),
            Instant::now() + life - margin,
        ))
    }
}
