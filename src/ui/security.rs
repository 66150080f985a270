//! The gate every request of the page passes: it is served on loopback only, and a request is
//! answered only when its Host and Origin are the page's own (so a site the partner visits
//! cannot reach it through DNS rebinding, or post a form to it) and it carries the token the
//! terminal printed, in the address once and then in a cookie the browser keeps for this page
//! alone (HttpOnly, SameSite=Strict). The address with the token is answered by a redirect to
//! the same address without it, so it stays out of the history, bookmarks and referrers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// The token that opens the page: 32 random bytes, as hex.
pub struct Token(String);

impl Token {
    /// A fresh token from the thread's generator, which rand seeds from the operating system
    /// and which is a cryptographic generator (ChaCha12).
    pub fn random() -> Token {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        Token(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The token itself, for the address printed on the terminal.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token, compared in time that does not depend on where they
    /// differ.
    fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// `--listen` as a socket address, refused unless it is loopback: the page holds the
/// partner's files and drives their account, and nothing but this machine may reach it.
pub fn loopback(listen: &str) -> Result<SocketAddr, String> {
    let refuse = || {
        format!(
            "--listen {listen:?}: the page is served on this machine only: give a loopback address and a port, such as 127.0.0.1:0 (a free port), 127.0.0.1:8484 or [::1]:8484"
        )
    };
    let addr = match listen.parse::<SocketAddr>() {
        Ok(a) => a,
        // "localhost:8484": the name, read as the machine's own, and nothing a resolver
        // could point elsewhere.
        Err(_) => match listen.rsplit_once(':') {
            Some((host, port)) if host.eq_ignore_ascii_case("localhost") => SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                port.parse().map_err(|_| refuse())?,
            ),
            // Any other name is refused unresolved: a resolver may point it anywhere.
            _ => return Err(refuse()),
        },
    };
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(refuse())
    }
}

/// The page's own address, as Host and Origin headers name it.
#[derive(Debug, Clone)]
pub struct Own {
    pub addr: SocketAddr,
    /// Host header values that are the page's: its address, and `localhost` on its port.
    hosts: Vec<String>,
}

impl Own {
    pub fn of(addr: SocketAddr) -> Own {
        let hosts = vec![addr.to_string(), format!("localhost:{}", addr.port())];
        Own { addr, hosts }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn is_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn is_origin(&self, origin: &str) -> bool {
        origin
            .strip_prefix("http://")
            .is_some_and(|host| self.is_host(host))
    }

    /// The cookie's name, with the port: two pages on one machine keep a token each.
    fn cookie(&self) -> String {
        format!("plbulk_ui_{}", self.addr.port())
    }
}

/// Why a request was refused, said plainly on the page that refuses it.
fn refuse(status: StatusCode, why: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>plbulk ui: refused</title><body><h1>Refused</h1><p>{why}</p></body></html>"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The token a request carries in the cookie named `name`.
fn cookie_token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `token` in a query string, and the query without it.
fn query_token(uri: &Uri) -> Option<(String, String)> {
    let query = uri.query()?;
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("token", v)) => token = Some(v.to_string()),
            _ => rest.push(pair),
        }
    }
    token.map(|t| (t, rest.join("&")))
}

/// The gate, before every route: Host and Origin, then the token; and on every answer the
/// headers that keep the page to itself.
pub async fn gate(
    State(state): State<Arc<super::State>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let mut response = check(&state, req, next).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    // Scripts and styles from the binary only; no frame may hold the page (clickjacking);
    // no address is sent to another site as a referrer. (`no-referrer` would also make the
    // browser send `Origin: null` with the page's own forms, which the gate refuses.)
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::CACHE_CONTROL, "no-store");
    response
}

async fn check(state: &super::State, req: Request<Body>, next: Next) -> Response {
    let headers = req.headers();
    // DNS rebinding: a name of the attacker's, pointed at 127.0.0.1, arrives with that name as
    // its Host.
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(|h| state.own.is_host(h)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This page answers only at the address plbulk ui printed.",
        );
    }
    // A form posted from another site carries that site's Origin; a browser sends an Origin
    // with every request that can change something, so one without it is not the page's.
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or(""));
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    match origin {
        Some(o) if !state.own.is_origin(o) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "This request came from another site, so plbulk ui did not act on it.",
            )
        }
        None if !safe => {
            return refuse(
                StatusCode::FORBIDDEN,
                "This request did not say where it came from, so plbulk ui did not act on it.",
            )
        }
        _ => {}
    }
    if let Some((given, rest)) = query_token(req.uri()) {
        if !state.token.matches(&given) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "This address's token is not the one plbulk ui printed: open the address it printed last.",
            );
        }
        let path = req.uri().path();
        let to = if rest.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{rest}")
        };
        let mut r = Redirect::to(&to).into_response();
        let cookie = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            state.own.cookie(),
            state.token.expose()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        return r;
    }
    match cookie_token(headers, &state.own.cookie()) {
        Some(t) if state.token.matches(t) => next.run(req).await,
        _ => refuse(
            StatusCode::UNAUTHORIZED,
            "Open this page with the address plbulk ui printed on its terminal (it carries the page's token).",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served() {
        assert_eq!(
            loopback("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(loopback("[::1]:8484").unwrap().ip().is_loopback());
        assert!(loopback("localhost:8484").unwrap().ip().is_loopback());
        for bad in [
            "0.0.0.0:8484",
            "192.168.1.5:80",
            "[::]:80",
            "example.com:80",
            "8484",
        ] {
            let e = loopback(bad).unwrap_err();
            assert!(e.contains("loopback"), "{bad}: {e}");
        }
    }

    #[test]
    fn host_and_origin_must_be_the_pages_own() {
        let own = Own::of("127.0.0.1:4321".parse().unwrap());
        assert!(own.is_host("127.0.0.1:4321") && own.is_host("localhost:4321"));
        assert!(!own.is_host("evil.example:4321") && !own.is_host("127.0.0.1:4322"));
        assert!(own.is_origin("http://127.0.0.1:4321"));
        assert!(!own.is_origin("http://evil.example") && !own.is_origin("null"));
        assert!(!own.is_origin("https://127.0.0.1:4321"));
    }

    #[test]
    fn the_token_is_random_and_compared_whole() {
        let (a, b) = (Token::random(), Token::random());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
        assert!(a.matches(a.expose()));
        assert!(!a.matches(&a.expose()[..63]) && !a.matches(b.expose()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn the_token_is_taken_out_of_the_address() {
        let uri: Uri = "/files/x?token=abc&sheet=Users".parse().unwrap();
        assert_eq!(
            query_token(&uri),
            Some(("abc".to_string(), "sheet=Users".to_string()))
        );
        assert_eq!(query_token(&"/?a=1".parse().unwrap()), None);
    }
}
