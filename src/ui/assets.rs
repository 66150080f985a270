//! The page's scripts and style, compiled into the binary: no CDN, no build step, nothing
//! beside the binary to install. htmx is vendored as its project publishes it (minified, with
//! its licence beside it in `assets/`).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const HTMX: &str = include_str!("assets/htmx.min.js");
const STYLE: &str = include_str!("assets/style.css");
const PAGE_JS: &str = include_str!("assets/page.js");

/// An asset by name, or 404.
pub async fn serve(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "page.js" => (PAGE_JS, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
