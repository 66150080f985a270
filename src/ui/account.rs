//! The account the page works on, as `plbulk check` says it: the rehearsal account, or the
//! settings' endpoint and key (and where the key comes from), with a button that checks
//! them. A partner with no config file types the key and secret as the portal shows them:
//! one token request says whether the API takes them, then they are saved to the config file
//! (its owner's alone). The secret goes one way: it is never put in a page, not even back in
//! the form that failed.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, Section};
use super::Mode;
use crate::account::{self, Configured, Settled};
use crate::client::credentials::{self, Credentials, Env, ProcessEnv, Settings};

/// What the settings say about the real account, for the page.
pub enum Key {
    /// A key is set: its endpoint, id and where it comes from.
    Set(Configured),
    /// No key anywhere yet; one typed in goes to `file`.
    None {
        base_url: String,
        file: Option<String>,
    },
    /// The settings cannot be read (a config file others can read, one that does not parse):
    /// what is wrong, in `plbulk check`'s words.
    Broken(String),
}

impl Key {
    pub fn read() -> Key {
        match account::configured(None) {
            Ok(Settled::Set(c)) => Key::Set(c),
            Ok(Settled::NoKey { base_url }) => Key::None {
                base_url,
                file: account::config_file().ok().map(|f| f.display().to_string()),
            },
            Err(e) => {
                let file = account::config_file().ok();
                let env_set = ProcessEnv.get(credentials::ENV_KEY).is_some()
                    || ProcessEnv.get(credentials::ENV_SECRET).is_some();
                // A config file named that is not there yet is a key to type in, and the file
                // is where it will go.
                let fresh = !env_set && file.as_ref().is_some_and(|f| !f.exists());
                if fresh {
                    Key::None {
                        base_url: base_url(),
                        file: file.map(|f| f.display().to_string()),
                    }
                } else {
                    Key::Broken(e.to_string())
                }
            }
        }
    }
}

/// The endpoint a key typed in is for: the settings', or the published one.
fn base_url() -> String {
    let url = Settings::load(None)
        .or_else(|_| Settings::load_from(None, &ProcessEnv, None))
        .map(|s| s.base_url)
        .unwrap_or_else(|_| crate::contract::DEFAULT_BASE_URL.to_string());
    crate::client::normalize_base_url(&url).unwrap_or(url)
}

/// The account in a few lines, with the button that checks it: on the start page and here.
pub fn summary(mode: Mode) -> Markup {
    let facts = match mode {
        Mode::Rehearsal => {
            let place = crate::rehearsal::Place::shared();
            html! {
                dl.facts {
                    dt { "Works on" }
                    dd { "The rehearsal account, on this computer (nothing reaches PL+)" }
                    dt { "Kept in" }
                    dd { code { (place.file().display()) } }
                    dt { "Last changed" }
                    dd {
                        @match place.modified() {
                            Some(t) => (humantime::format_rfc3339_seconds(t).to_string().replacen('T', " ", 1).replacen('Z', " UTC", 1)),
                            None => "never: nothing rehearsed on it yet",
                        }
                    }
                }
            }
        }
        Mode::Account => match Key::read() {
            Key::Set(c) => html! {
                dl.facts {
                    dt { "Works on" }
                    dd { "The PL+ account of this key" }
                    dt { "Endpoint" }
                    dd { code { (c.base_url) } }
                    dt { "API key" }
                    dd { code { (c.credentials.key_id) } " (from " (c.source) ")" }
                }
            },
            Key::None { .. } => {
                html! { p.error { "No API key is set: enter one on the Account page." } }
            }
            Key::Broken(m) => html! { p.error { (m) } },
        },
    };
    html! {
        (facts)
        form method="post" action="/account/check" hx-post="/account/check" hx-target="#check-result" hx-swap="innerHTML" {
            div.actions {
                button type="submit" #check { "Check the account" }
                span.busy.htmx-indicator { "Checking…" }
            }
        }
        div #check-result role="status" aria-live="polite" {}
    }
}

#[derive(Deserialize, Default)]
pub struct Shown {
    /// Set after a key was saved: the page says so once.
    #[serde(default)]
    saved: Option<String>,
}

pub async fn page(State(state): State<Arc<super::State>>, Query(shown): Query<Shown>) -> Response {
    let flash = shown.saved.map(|_| {
        html! { p.ok role="status" { "The key works, and is saved. The page now works on its account." } }
    });
    render(&state, flash, None, StatusCode::OK)
}

/// The account page, with `flash` at the top and `key_error` by the key form.
fn render(
    state: &super::State,
    flash: Option<Markup>,
    key_error: Option<(String, String)>,
    status: StatusCode,
) -> Response {
    let mode = state.mode();
    let key = Key::read();
    let has_key = matches!(key, Key::Set(_));
    let body = html! {
        @if let Some(f) = flash { (f) }
        section.card aria-labelledby="which" {
            h2 #which { "Which account" }
            (summary(mode))
            (layout::cli(match mode { Mode::Rehearsal => "plbulk check --sandbox", Mode::Account => "plbulk check" }))
        }
        section.card aria-labelledby="switch" {
            h2 #switch { "Rehearse or work on the account" }
            @match mode {
                Mode::Rehearsal => {
                    p { "Files are checked, and jobs will run, on the rehearsal account: a copy kept on this computer, as the account would answer." }
                    @if has_key {
                        form method="post" action="/account/mode" {
                            input type="hidden" name="mode" value="account";
                            button type="submit" { "Work on the real account" }
                        }
                    } @else {
                        p.muted { "To work on the real account, enter its API key below." }
                    }
                }
                Mode::Account => {
                    p { "Jobs will run on the real account of this key." }
                    form method="post" action="/account/mode" {
                        input type="hidden" name="mode" value="rehearsal";
                        button.secondary type="submit" { "Rehearse instead" }
                    }
                }
            }
        }
        section.card aria-labelledby="key" {
            @if has_key && key_error.is_none() {
                details {
                    summary { h2 #key { "Use another API key" } }
                    (key_form(&key, None))
                }
            } @else {
                h2 #key { @if has_key { "Use another API key" } @else { "Enter your API key" } }
                (key_form(&key, key_error))
            }
        }
    };
    (
        status,
        layout::page(mode, Section::Account, "Account", body),
    )
        .into_response()
}

fn key_form(key: &Key, error: Option<(String, String)>) -> Markup {
    let (base_url, file) = match key {
        Key::Set(c) => (
            c.base_url.clone(),
            account::config_file().ok().map(|f| f.display().to_string()),
        ),
        Key::None { base_url, file } => (base_url.clone(), file.clone()),
        Key::Broken(_) => (
            base_url(),
            account::config_file().ok().map(|f| f.display().to_string()),
        ),
    };
    let env_wins = ProcessEnv.get(credentials::ENV_KEY).is_some();
    let (typed_key, message) = match error {
        Some((k, m)) => (k, Some(m)),
        None => (String::new(), None),
    };
    html! {
        p { "Copy the key and its secret from the PL+ partner portal (API keys). plbulk asks the API for one token with them, and saves them only if it gives one." }
        @if let Some(m) = message { p.error role="alert" #key-error { (m) } }
        @if env_wins {
            p.warning { "PLBULK_API_KEY is set where plbulk ui was started, and wins over a key saved here." }
        }
        dl.facts {
            dt { "Endpoint" }
            dd { code { (base_url) } }
            dt { "Saved in" }
            dd {
                @match file {
                    Some(f) => code { (f) },
                    None => "no config file can be found: set PLBULK_CONFIG",
                }
                " (readable by you only)"
            }
        }
        form method="post" action="/account/key" autocomplete="off" {
            label for="api_key" { "API key" span.hint { "As the portal shows it, e.g. pk_live_…" } }
            input #api_key type="text" name="api_key" value=(typed_key) required spellcheck="false" autocapitalize="off";
            label for="api_secret" { "API secret" span.hint { "Shown once by the portal. It is saved on this computer and never shown again." } }
            input #api_secret type="password" name="api_secret" required autocomplete="new-password";
            div.actions {
                button type="submit" #save-key { "Check and save" }
            }
        }
    }
}

/// The result of a check, in the words `plbulk check` prints.
async fn check_now(state: &super::State) -> Result<String, String> {
    let o = &state.options;
    match state.mode() {
        Mode::Rehearsal => {
            let stats = account::check_rehearsal(o.rate)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "OK: the rehearsal account has {}.",
                account::holds(&stats)
            ))
        }
        Mode::Account => {
            let c = account::configured(None)
                .and_then(Settled::key)
                .map_err(|e| e.to_string())?;
            let stats = account::check(&c, o.timeout, o.rate)
                .await
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "OK: key {} authenticates, and the account has {}.",
                c.credentials.key_id,
                account::holds(&stats)
            ))
        }
    }
}

fn result_markup(r: &Result<String, String>) -> Markup {
    match r {
        Ok(m) => html! { p.ok { (m) } },
        Err(m) => html! { p.error { (m) } },
    }
}

/// The button: a fragment for htmx, the whole page without it.
pub async fn check(State(state): State<Arc<super::State>>, headers: HeaderMap) -> Response {
    let r = check_now(&state).await;
    if headers.contains_key("hx-request") {
        return result_markup(&r).into_response();
    }
    render(&state, Some(result_markup(&r)), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct KeyForm {
    api_key: String,
    api_secret: String,
}

pub async fn save_key(
    State(state): State<Arc<super::State>>,
    Form(form): Form<KeyForm>,
) -> Response {
    // Copied from a page, a key often brings a space or a line break with it.
    let key_id = form.api_key.trim().to_string();
    let secret = form.api_secret.trim().to_string();
    let fail = |m: String| {
        render(
            &state,
            None,
            Some((key_id.clone(), m)),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    if key_id.is_empty() || secret.is_empty() {
        return fail("Enter both the API key and its secret.".into());
    }
    let credentials = Credentials::new(key_id.clone(), secret);
    let o = &state.options;
    if let Err(e) = account::try_key(&base_url(), credentials.clone(), o.timeout, o.rate).await {
        return fail(format!("Not saved: {e}"));
    }
    let saved = account::config_file().and_then(|path| account::save_key(&path, &credentials));
    if let Err(e) = saved {
        return fail(format!("The key works, but was not saved: {e}"));
    }
    state.set_mode(Mode::Account);
    Redirect::to("/account?saved=1").into_response()
}

#[derive(Deserialize)]
pub struct ModeForm {
    mode: String,
}

pub async fn set_mode(
    State(state): State<Arc<super::State>>,
    Form(form): Form<ModeForm>,
) -> Response {
    let mode = match form.mode.as_str() {
        "rehearsal" => Mode::Rehearsal,
        "account" => Mode::Account,
        other => {
            return layout::problem(
                state.mode(),
                StatusCode::BAD_REQUEST,
                "Account",
                &format!("{other:?} is not a way to work: rehearsal or account."),
            )
        }
    };
    if mode == Mode::Account && !matches!(Key::read(), Key::Set(_)) {
        return render(
            &state,
            Some(
                html! { p.error role="alert" { "There is no API key to work with yet: enter it below." } },
            ),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    state.set_mode(mode);
    Redirect::to("/account").into_response()
}
