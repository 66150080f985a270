//! Every job, as `plbulk jobs` lists them (the same [`crate::status::list`] that `jobs --json`
//! prints): its state, its file, whether it was a rehearsal, what an undo reverses, and its
//! rows per outcome, newest first. Read from the journals beside any job that is running, so
//! a job started in a terminal shows here while it runs. Each has the buttons its state allows:
//! resume and abandon an unfinished one, undo a finished or abandoned one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::layout::{self, Section};
use crate::model::RowState;
use crate::status::{JobStatus, Listed};

pub async fn page(State(state): State<Arc<super::State>>) -> Response {
    let root = state.options.jobs_root.clone();
    let listed =
        tokio::task::spawn_blocking(move || crate::status::list(&crate::job::list_all(&root)).jobs)
            .await
            .unwrap_or_default();
    // Each job's finished undo, by the job it reverses: a job is undone once.
    let undone: HashMap<&str, &str> = listed
        .iter()
        .filter_map(|l| match l {
            Listed::Job(j) if !j.state.is_open() => Some((j.undo_of.as_deref()?, j.id.as_str())),
            Listed::Job(_) | Listed::Unreadable { .. } => None,
        })
        .collect();
    let body = html! {
        @if listed.is_empty() {
            p #no-jobs { "No jobs yet in " code { (state.options.jobs_root.display()) } ". A job run from a terminal (" code { "plbulk run FILE" } ") shows here too." }
        } @else {
            p.muted { "Newest first, from " code { (state.options.jobs_root.display()) } "." }
            div.scroll {
                table #jobs {
                    thead {
                        tr {
                            th scope="col" { "Job" }
                            th scope="col" { "State" }
                            th scope="col" { "Started" }
                            th scope="col" { "On" }
                            th scope="col" { "File" }
                            th scope="col" { "Rows" }
                            th scope="col" { "Actions" }
                        }
                    }
                    tbody {
                        @for l in listed.iter().rev() { (row(l, &undone)) }
                    }
                }
            }
        }
        (layout::cli("plbulk jobs"))
    };
    layout::page(state.mode(), Section::Jobs, "Jobs", body).into_response()
}

fn row(l: &Listed, undone: &HashMap<&str, &str>) -> Markup {
    match l {
        Listed::Job(j) => job(j, undone.get(j.id.as_str()).copied()),
        Listed::Unreadable { id, error } => html! {
            tr data-job=(id) {
                th scope="row" { code { (id) } }
                td { span.state.state-unreadable { "unreadable" } }
                td {}
                td {}
                td colspan="3" { (error) }
            }
        },
    }
}

fn job(j: &JobStatus, undone_by: Option<&str>) -> Markup {
    let state = j.state.as_str();
    let file = match &j.undo_of {
        Some(of) => html! { "Undo of job " code { (of) } },
        None => html! {
            @for (i, f) in j.inputs.iter().enumerate() {
                @if i > 0 { ", " }
                span title=(f.path) { (crate::results::file_name(&f.path)) }
            }
        },
    };
    html! {
        tr data-job=(j.id) {
            th scope="row" { a href={ "/jobs/" (j.id) } { code { (j.id) } } }
            td { span class={ "state state-" (state) } { (state) } }
            td { (j.created_at.replacen('T', " ", 1).replacen('Z', " UTC", 1)) }
            td {
                @if j.endpoint.sandbox {
                    span.tag { "rehearsal" }
                } @else {
                    (crate::status::host_of(&j.endpoint.base_url)) br; span.muted { "key " (j.endpoint.key_id) }
                }
            }
            td { (file) }
            td { (outcomes(j)) }
            td { (super::job::next_steps(j, undone_by)) }
        }
    }
}

/// Rows per outcome, those with none left out, as `plbulk jobs` says them: "12 succeeded,
/// 1 failed".
fn outcomes(j: &JobStatus) -> String {
    let counts: Vec<(RowState, u64)> = RowState::ALL
        .iter()
        .map(|s| (*s, j.outcomes.get(s.as_str()).copied().unwrap_or(0)))
        .collect();
    crate::results::summary_line(&counts)
}
