//! A mapping file on the page (issue 22, item 2): another system's export is read through a
//! mapping, as `--map` reads it. The mapping dropped with the file is kept with it
//! ([`super::uploads`]) and its findings, preview and job all read the file through it; a
//! file with none can start one here with `plbulk map init`'s own library call
//! ([`crate::intake::guess::init`]): the guess is kept with a copy of the file, so the file is
//! checked through it at once, and offered to download and edit, with what it could not guess.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::layout::{self, Section};
use super::uploads::Upload;
use crate::intake::guess;

/// What the findings page says about the file's mapping: the one it is read through, or the
/// way to start one.
pub fn card(up: &Upload) -> Markup {
    html! {
        @if let Some(name) = up.mapping_name() {
            p #mapping {
                "Read through the mapping file " strong #mapping-name { (name) }
                ", as " code { "--map" } " reads it: findings name the export's own columns. "
                a href={ "/files/" (up.id) "/mapping" } download #mapping-download { "Download the mapping" }
            }
        } @else {
            form method="post" action={ "/files/" (up.id) "/map-init" } #map-init-form {
                p.muted {
                    "Another system's export, not a plbulk sheet? A mapping says which of its columns is which and how its values translate. "
                    button.secondary type="submit" #map-init { "Start a mapping from this file" }
                }
            }
        }
    }
}

/// `GET /files/{id}/mapping`: the upload's mapping file, to keep and edit.
pub async fn download(State(state): State<Arc<super::State>>, Path(id): Path<String>) -> Response {
    let mode = state.mode();
    let Some((up, path)) = state
        .uploads
        .find(&id)
        .and_then(|u| u.mapping.clone().map(|m| (u, m)))
    else {
        return layout::problem(
            mode,
            StatusCode::NOT_FOUND,
            "No such mapping",
            "This file has no mapping kept here: drop it again with its mapping.",
        );
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let name = up.mapping_name().unwrap_or_default();
            let disposition = format!(
                "attachment; filename=\"{}\"",
                name.replace(['"', '\\', '\r', '\n'], "_")
            );
            (
                [
                    (header::CONTENT_TYPE, "application/toml".to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => layout::problem(
            mode,
            StatusCode::NOT_FOUND,
            "Mapping",
            &format!(
                "The mapping {} cannot be read ({e}): drop the file again with its mapping.",
                path.display()
            ),
        ),
    }
}

/// A mapping started from an export.
struct Started {
    /// The copy of the export kept with its guessed mapping.
    upload: Upload,
    guess: guess::Guess,
}

/// `POST /files/{id}/map-init`: `plbulk map init` on the dropped file; the guess kept with a
/// copy of it (checked through it), and what could not be guessed said.
pub async fn init(State(state): State<Arc<super::State>>, Path(id): Path<String>) -> Response {
    let mode = state.mode();
    let Some(up) = state.uploads.find(&id) else {
        return layout::problem(
            mode,
            StatusCode::NOT_FOUND,
            "No such file",
            "This file is not kept here any more: drop it again on the start page.",
        );
    };
    let started = {
        let (state, up) = (state.clone(), up.clone());
        tokio::task::spawn_blocking(move || start(&state, &up))
            .await
            .unwrap_or_else(|e| Err(format!("starting the mapping failed: {e}")))
    };
    let started = match started {
        Ok(s) => s,
        Err(m) => {
            let body = html! {
                p.error role="alert" #map-init-error { (m) }
                p { a href={ "/files/" (up.id) } { "Back to the file's findings" } }
            };
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                layout::page(mode, Section::Other, "No mapping started", body),
            )
                .into_response();
        }
    };
    // Checked now, so its findings page opens at once.
    if let Err(m) = super::findings::checked(&state, started.upload.clone()).await {
        return layout::problem(mode, StatusCode::INTERNAL_SERVER_ERROR, "Findings", &m);
    }
    render(mode, &up, &started)
}

/// The export read and its mapping guessed, as `plbulk map init` does; kept as a new upload.
fn start(state: &super::State, up: &Upload) -> Result<Started, String> {
    let name = up.name();
    let (guess, text) = guess::init(
        std::slice::from_ref(&up.path),
        std::slice::from_ref(&name),
        None,
        None,
    )
    .map_err(|e| format!("No mapping could be started from {name}: {e}"))?;
    let bytes = std::fs::read(&up.path).map_err(|e| format!("{name} cannot be read: {e}"))?;
    let mapping = map_name(up);
    let upload = state
        .uploads
        .save(&name, &bytes, Some((&mapping, text.as_bytes())))?;
    Ok(Started { upload, guess })
}

/// `STEM.map.toml` for the export `STEM.ext`, as the samples name theirs.
fn map_name(up: &Upload) -> String {
    let stem = up
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    format!("{stem}.map.toml")
}

fn render(mode: super::Mode, from: &Upload, s: &Started) -> Response {
    let g = &s.guess;
    let open = g.not_guessed();
    let name = s.upload.mapping_name().unwrap_or_default();
    let body = html! {
        p #guessed {
            "From " strong { (from.name()) } ": " (g.kind) " rows"
            @if g.kind_guessed { " (guessed from the columns)" }
            ", " (crate::words::count(g.columns.len() as u64, "column")) " guessed. "
            "Every line is a guess: check each one before a job runs on it."
        }
        @if open.is_empty() {
            p.ok #not-guessed { "Every column and value was guessed: check them all the same." }
        } @else {
            section.card aria-labelledby="open" {
                h2 #open { "Not guessed, for you to fill in or check" }
                ul #not-guessed { @for line in &open { li { (line) } } }
            }
        }
        div.actions {
            a.button href={ "/files/" (s.upload.id) } #use-mapping { "Check the file with this mapping" }
            " "
            a.button.secondary href={ "/files/" (s.upload.id) "/mapping" } download #mapping-download { "Download " (name) }
        }
        p.muted { "Edit the mapping in a text editor, then drop the export again with it." }
        (layout::cli(&format!("plbulk map init {} --out {name}", from.name())))
    };
    layout::page(
        mode,
        Section::Other,
        &format!("Mapping started: {name}"),
        body,
    )
    .into_response()
}
