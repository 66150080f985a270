//! Where a partner begins: the jobs this process is running (a page closed meanwhile finds
//! them here), which account the page works on (checked with a button), a file to drop or
//! pick, and the templates to fill in, as `plbulk template` writes them.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::layout::{self, Section};
use crate::schema::Kind;

pub async fn page(State(state): State<Arc<super::State>>) -> Response {
    let mode = state.mode();
    // A page closed while its job ran finds the job again here.
    let running = state.jobs.running();
    let body = html! {
        @if !running.is_empty() {
            section.card #running-now aria-labelledby="now" {
                h2 #now { "Running now" }
                ul { @for id in &running { li { a href={ "/jobs/" (id) } { "Job " code { (id) } } } } }
            }
        }
        section.card aria-labelledby="acct" {
            h2 #acct { "Account" }
            (super::account::summary(mode))
        }
        section.card aria-labelledby="file" {
            h2 #file { "Check a file" }
            (drop_form())
            (layout::cli("plbulk validate FILE"))
        }
        section.card aria-labelledby="tpl" {
            h2 #tpl { "Templates" }
            (templates())
            (layout::cli("plbulk template --out DIR"))
        }
    };
    layout::page(mode, Section::Start, "Start", body).into_response()
}

/// The drop zone: a file picker inside a label, which a drop fills (page.js), and a picker for
/// the mapping file an export is read through (a `.toml` dropped with the export fills it);
/// it works with the keyboard and without the script as plain pickers and a button.
pub fn drop_form() -> Markup {
    html! {
        form method="post" action="/files" enctype="multipart/form-data" data-drop {
            label.drop for="file-input" {
                strong { "Drop a spreadsheet here, or pick one" }
                span.hint { "CSV, XLSX, XLS or ODS: each row is checked as a job would check it, and nothing is sent." }
                input #file-input type="file" name="file" required
                    accept=(accepted());
                span.picked aria-live="polite" {}
            }
            p.mapping-pick {
                label for="mapping-input" {
                    "Another system's export? Its mapping file (.toml), as "
                    code { "--map" } " takes it (optional): "
                }
                input #mapping-input type="file" name="mapping" accept=".toml";
                br;
                span.hint { "No mapping yet? Check the export without one, then start a mapping from it on its findings page, as " code { "plbulk map init" } " does." }
            }
            div.actions {
                button type="submit" #check-file { "Check this file" }
                span.busy hidden { "Checking the file…" }
            }
        }
    }
}

/// The templates to download: one per kind of row, and the onboarding workbook with them all.
fn templates() -> Markup {
    html! {
        p { "Excel workbooks with a sheet per kind of row, a note on every column, drop-downs for fixed choices and an example row." }
        ul.templates {
            li { a href={ "/templates/" (crate::templates::file_name(None)) } download { "Onboarding: every sheet" } }
            @for k in Kind::ALL {
                li { a href={ "/templates/" (crate::templates::file_name(Some(k))) } download { (k.sheet_name()) } }
            }
        }
    }
}

/// A template by its file name, written as `plbulk template` writes it.
pub async fn template(
    State(state): State<Arc<super::State>>,
    Path(name): Path<String>,
) -> Response {
    let kinds: Vec<Kind> = if name == crate::templates::file_name(None) {
        Kind::ALL.to_vec()
    } else {
        match Kind::ALL
            .into_iter()
            .find(|&k| crate::templates::file_name(Some(k)) == name)
        {
            Some(k) => vec![k],
            None => {
                return layout::problem(
                    state.mode(),
                    StatusCode::NOT_FOUND,
                    "No such template",
                    &format!("There is no template {name:?}."),
                )
            }
        }
    };
    match crate::templates::workbook(&kinds).and_then(|mut b| b.save_to_buffer()) {
        Ok(bytes) => xlsx(&name, bytes),
        Err(e) => layout::problem(
            state.mode(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "Template",
            &format!("The template could not be written: {e}"),
        ),
    }
}

/// A workbook to download as `name`.
pub fn xlsx(name: &str, bytes: Vec<u8>) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(['"', '\\', '\r', '\n'], "_")
    );
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}

/// The file picker's `accept`: every extension plbulk reads.
fn accepted() -> String {
    crate::intake::TEXT
        .iter()
        .chain(crate::intake::WORKBOOKS.iter())
        .map(|e| format!(".{e}"))
        .collect::<Vec<_>>()
        .join(",")
}
