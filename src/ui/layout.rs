//! The frame around every page: the title, the navigation, and while the page works on the
//! rehearsal account a banner saying so, so that no one takes a rehearsal for the real thing.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::Mode;

/// The sections of the page, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Start,
    Account,
    Jobs,
    /// A page reached from another (a file's findings): no item is current.
    Other,
}

const SECTIONS: [(Section, &str, &str); 3] = [
    (Section::Start, "/", "Start"),
    (Section::Account, "/account", "Account"),
    (Section::Jobs, "/jobs", "Jobs"),
];

/// A whole page: `title` in the tab and as its heading, `body` under it.
pub fn page(mode: Mode, section: Section, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // htmx's own inline style and eval would be refused by the page's policy.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
                title { (title) " · plbulk" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/htmx.min.js" defer {}
                script src="/assets/page.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    span.brand { "plbulk" }
                    nav aria-label="Sections" {
                        ul {
                            @for (s, href, label) in SECTIONS {
                                li {
                                    @if s == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if mode == Mode::Rehearsal {
                    div.banner role="note" {
                        strong { "Rehearsal." }
                        " This page works on the rehearsal account kept on this computer: nothing reaches PL+. "
                        a href="/account" { "Use a real account" }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page that says something went wrong, and what to do, with `status`.
pub fn problem(mode: Mode, status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! {
        p.error role="alert" { (message) }
        p { a href="/" { "Back to the start" } }
    };
    (status, page(mode, Section::Other, title, body)).into_response()
}

/// No such page.
pub async fn not_found(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<super::State>>,
) -> Response {
    problem(
        state.mode(),
        StatusCode::NOT_FOUND,
        "No such page",
        "There is nothing at this address.",
    )
}

/// The command that does the same in a terminal, for those who will want it.
pub fn cli(command: &str) -> Markup {
    html! {
        p.cli { "In a terminal: " code { (command) } }
    }
}
