//! One job's page: while it runs, its progress pushed by server-sent events ([`super::live`])
//! with a Stop button (as Ctrl-C); once it has ended, its results (rows per outcome, each
//! sheet's rows filterable by outcome, the results and to-fix workbooks to download) and what
//! may be done next: resume, abandon, undo (its plan previewed and confirmed first). Each
//! action is the verb's own [`pipeline`] call: `plbulk resume`, `abandon` and `undo`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, Section};
use super::live::{End, Live};
use crate::job::{self, InputLock, JobRef};
use crate::journal::{Journal, ResultRow};
use crate::model::{JobState, RowState};
use crate::pipeline::{self, Calls, Given, Opened};
use crate::status::JobStatus;

/// A job's sheets and rows as its journal has them, or why they cannot be read.
type Rows = Result<(Vec<crate::model::SheetRec>, Vec<ResultRow>), String>;

/// Rows shown per sheet on the results page; the results workbook has them all.
const ROWS_SHOWN: usize = 500;

/// The job `id` (or the start of one), or the page that says there is none.
pub async fn find(state: &super::State, id: &str) -> Result<JobRef, Response> {
    let root = state.options.jobs_root.clone();
    let id = id.to_string();
    let found = tokio::task::spawn_blocking(move || job::find(&root, Some(&id))).await;
    match found {
        Ok(Ok(j)) => Ok(j),
        Ok(Err(e)) => Err(layout::problem(
            state.mode(),
            StatusCode::NOT_FOUND,
            "No such job",
            &e.to_string(),
        )),
        Err(e) => Err(layout::problem(
            state.mode(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "Job",
            &e.to_string(),
        )),
    }
}

#[derive(Deserialize, Default)]
pub struct Filter {
    /// Show only the rows of this outcome ([`RowState::as_str`]); empty or absent: every row.
    #[serde(default)]
    outcome: Option<String>,
}

/// `GET /jobs/{id}`.
pub async fn page(
    State(state): State<Arc<super::State>>,
    Path(id): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    let job = match find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let live = state.jobs.get(&job.meta.id);
    let read = {
        let (job, root) = (job.clone(), state.options.jobs_root.clone());
        tokio::task::spawn_blocking(move || {
            let snap = super::live::snapshot(&job)?;
            let rows = Journal::open(&job.journal_path())
                .and_then(|j| Ok((j.sheets()?, j.result_rows()?)))
                .map_err(|e| e.to_string());
            Ok::<_, pipeline::Error>((snap, undone_by(&root, &job), rows))
        })
        .await
    };
    let (snap, undone, rows) = match read {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return problem(&state, &e.to_string()),
        Err(e) => return problem(&state, &e.to_string()),
    };
    let running = match &live {
        Some(l) => l.end().is_none(),
        None => snap.status.state == JobState::Running,
    };
    let status = &snap.status;
    let id = &status.id;
    let title = match &status.undo_of {
        Some(of) => format!("Job {id}: the undo of {of}"),
        None => format!("Job {id}"),
    };
    let body = html! {
        (facts(status))
        @if running {
            section.card aria-labelledby="run" {
                h2 #run { "Running" }
                div #progress data-events={ "/jobs/" (id) "/events" } {
                    (super::live::progress(&snap, live.as_deref()))
                }
                @if live.is_some() {
                    form method="post" action={ "/jobs/" (id) "/stop" } {
                        div.actions {
                            button.danger type="submit" #stop { "Stop" }
                            span.muted { "As Ctrl-C: no new rows, nothing more sent; the job stays resumable. Closing this page does not stop it." }
                        }
                    }
                    (layout::cli("Ctrl-C in the terminal of plbulk run"))
                } @else {
                    p.muted { "This job runs in another process (a terminal): Ctrl-C there stops it." }
                }
            }
        } @else {
            @if let Some(l) = &live { (ended(l)) }
            (results(&state, &job, status, &filter, undone.as_deref(), &rows))
        }
    };
    layout::page(state.mode(), Section::Jobs, &title, body).into_response()
}

fn problem(state: &super::State, m: &str) -> Response {
    layout::problem(state.mode(), StatusCode::INTERNAL_SERVER_ERROR, "Job", m)
}

/// Where the job ran and from what.
fn facts(s: &JobStatus) -> Markup {
    html! {
        dl.facts #job-facts {
            dt { "State" }
            dd { span class={ "state state-" (s.state.as_str()) } #job-state { (s.state.as_str()) } }
            dt { "On" }
            dd {
                @if s.endpoint.sandbox { "the rehearsal account on this computer" }
                @else { (s.endpoint.base_url) ", key " (s.endpoint.key_id) }
            }
            @if !s.inputs.is_empty() {
                dt { "File" }
                dd { @for f in &s.inputs { (crate::results::file_name(&f.path)) " " } }
            }
            dt { "Started" }
            dd { (s.created_at.replacen('T', " ", 1).replacen('Z', " UTC", 1)) }
        }
    }
}

/// How a job of this process ended, said plainly: what was said while it ran, and its end.
fn ended(l: &Live) -> Markup {
    let Some((end, written)) = l.end() else {
        return html! {};
    };
    html! {
        @match &end {
            End::Completed => p.ok role="status" #ended { "The job has run every row." },
            End::Interrupted(h) => p.warning role="status" #ended { (super::live::halt_words(h)) },
            End::JournalFailed(m) => p.error role="alert" #ended { (m) },
        }
        @if let Some(e) = &written.error { p.error role="alert" { (e) } }
    }
}

/// The results: rows per outcome, the workbooks, the next steps and each sheet's rows.
fn results(
    state: &super::State,
    job: &JobRef,
    s: &JobStatus,
    filter: &Filter,
    undone_by: Option<&str>,
    rows: &Rows,
) -> Markup {
    let id = &s.id;
    let shown = filter.outcome.as_deref().and_then(RowState::parse);
    let counts: Vec<(RowState, u64)> = RowState::ALL
        .iter()
        .map(|k| (*k, s.outcomes.get(k.as_str()).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let to_fix = state
        .jobs
        .get(id)
        .and_then(|l| l.end())
        .and_then(|(_, w)| w.to_fix)
        .or_else(|| {
            job.options()
                .ok()
                .map(|o| crate::results::to_fix_path(&o.results))
        })
        .filter(|p| p.exists());
    html! {
        section.card aria-labelledby="outcomes" {
            h2 #outcomes { "Results" }
            p #summary { (crate::results::summary_line(&counts)) }
            (chart(&counts, s.rows))
            p.actions {
                a.button href={ "/jobs/" (id) "/results" } download #download-results { "Download the results workbook" }
                " "
                @if to_fix.is_some() {
                    a.button.secondary href={ "/jobs/" (id) "/to-fix" } download #download-to-fix { "Download the rows to fix" }
                }
            }
            (layout::cli(&format!("plbulk results {id} --out FILE.xlsx")))
        }
        (next_steps(s, undone_by))
        section.card aria-labelledby="rows" {
            h2 #rows { "Rows" }
            form method="get" action={ "/jobs/" (id) } #filter {
                label for="outcome" { "Show the rows that" }
                select #outcome name="outcome" {
                    option value="" selected[shown.is_none()] { "ended any way" }
                    @for (k, n) in &counts {
                        option value=(k.as_str()) selected[shown == Some(*k)] { (k.label()) " (" (n) ")" }
                    }
                }
                " "
                button.secondary type="submit" #filter-go { "Show" }
            }
            @match rows {
                Ok((sheets, rows)) => {
                    @for sh in sheets {
                        @let mine: Vec<&ResultRow> = rows.iter()
                            .filter(|r| r.sheet == sh.idx && shown.is_none_or(|k| r.state == k))
                            .collect();
                        // Open when filtered, or when a row needs a person: a page of every
                        // row that went well is long and says little.
                        @let open = shown.is_some() || mine.iter().any(|r| Tone::of(r.state) != Tone::Good);
                        @if !mine.is_empty() {
                            details.sheet open[open] {
                            summary { h3 { (sh.sheet) " " span.muted { "(" (mine.len()) ")" } } }
                            div.scroll {
                                table.results data-sheet=(sh.sheet) {
                                    thead { tr {
                                        th.num scope="col" { "Row" } th scope="col" { "Outcome" }
                                        th scope="col" { "What happened" } th scope="col" { "The row" }
                                    } }
                                    tbody {
                                        @for r in mine.iter().take(ROWS_SHOWN) {
                                            tr data-state=(r.state.as_str()) {
                                                th.num scope="row" { (r.row_no) }
                                                td { span class={ "outcome outcome-" (r.state.as_str()) } { (r.state.label()) } }
                                                td { (r.detail.as_deref().unwrap_or("")) }
                                                td.muted { (gist(&r.cells)) }
                                            }
                                        }
                                    }
                                }
                            }
                            @if mine.len() > ROWS_SHOWN {
                                p.muted { "The first " (ROWS_SHOWN) "; the results workbook has them all." }
                            }
                            }
                        }
                    }
                }
                Err(e) => p.error { "The job's rows cannot be read: " (e) },
            }
        }
    }
}

/// A row in a few words: its first non-blank cells.
fn gist(cells: &[String]) -> String {
    let mut out: Vec<&str> = cells
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .take(3)
        .collect();
    if cells.iter().filter(|c| !c.trim().is_empty()).count() > 3 {
        out.push("…");
    }
    out.join(" · ")
}

/// The outcome chart: a bar per outcome, its length its share of the rows, its count in words
/// beside it (the colour is never the only sign). A `meter` is coloured by the region its value
/// falls in, the page's policy refusing inline widths: a good outcome is all optimum (green), a
/// row not run or skipped always the middle region (amber), one that needs a person always the
/// worst (red).
fn chart(counts: &[(RowState, u64)], total: u64) -> Markup {
    let max = total.max(1) as f64;
    html! {
        ul.chart #chart aria-label="Rows per outcome" {
            @for (k, n) in counts {
                @let pct = (*n as f64 * 100.0 / max).round() as u64;
                @let (low, high, optimum) = match Tone::of(*k) {
                    Tone::Good => (0.0, max, max),
                    Tone::Waiting => (0.0001, max + 1.0, 0.0),
                    Tone::Bad => (0.0001, 0.0002, 0.0),
                };
                li {
                    span.chart-label { (k.label()) }
                    meter class={ "outcome-" (k.as_str()) } min="0" max=(max) value=(n)
                        low=(low) high=(high) optimum=(optimum) aria-label=(k.label()) {}
                    span.chart-n { (n) " (" (pct) "%)" }
                }
            }
        }
    }
}

/// How an outcome reads to a partner: done, still to do, or a row for a person to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Good,
    Waiting,
    Bad,
}

impl Tone {
    fn of(k: RowState) -> Tone {
        match k {
            RowState::Succeeded | RowState::AlreadyExisted | RowState::Unchanged => Tone::Good,
            RowState::Pending | RowState::Skipped => Tone::Waiting,
            RowState::Failed | RowState::NeedsReview | RowState::Invalid => Tone::Bad,
        }
    }
}

/// Resume, abandon and undo, as the job's state allows them: the buttons of the job's page
/// and of the jobs list. `undone_by`: the finished undo of this job, if there is one (a job is
/// undone once).
pub fn next_steps(s: &JobStatus, undone_by: Option<&str>) -> Markup {
    let id = &s.id;
    html! {
        div.actions.next data-job=(id) {
            @match s.state {
                JobState::Running => {}
                JobState::Interrupted => {
                    form method="post" action={ "/jobs/" (id) "/resume" } {
                        button type="submit" .resume { "Resume" }
                    }
                    form method="post" action={ "/jobs/" (id) "/abandon" } {
                        button.secondary type="submit" .abandon { "Abandon" }
                    }
                }
                JobState::Finished | JobState::Abandoned => {
                    @if let Some(by) = undone_by {
                        span.muted.undone { "Undone by " a href={ "/jobs/" (by) } { code { (by) } } }
                    } @else if s.undo_of.is_none() {
                        a.button.secondary.undo href={ "/jobs/" (id) "/undo" } { "Undo…" }
                    }
                }
            }
        }
    }
}

/// The finished undo of `job`, if there is one, as `plbulk undo` finds it.
fn undone_by(root: &std::path::Path, job: &JobRef) -> Option<String> {
    job::list(root)
        .into_iter()
        .find(|j| {
            !j.meta.state.is_open()
                && j.options()
                    .is_ok_and(|o| o.undo_of.as_deref() == Some(job.meta.id.as_str()))
        })
        .map(|j| j.meta.id)
}

/// `POST /jobs/{id}/stop`: as Ctrl-C.
pub async fn stop(State(state): State<Arc<super::State>>, Path(id): Path<String>) -> Response {
    let job = match find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    match state.jobs.get(&job.meta.id) {
        Some(l) => {
            l.stop();
            Redirect::to(&format!("/jobs/{}", job.meta.id)).into_response()
        }
        None => layout::problem(
            state.mode(),
            StatusCode::CONFLICT,
            "Stop",
            &format!(
                "Job {} is not running in this page's process: Ctrl-C in the terminal that runs it stops it.",
                job.meta.id
            ),
        ),
    }
}

/// Opens `job` to go on, as `plbulk resume` does, and starts it in this process; its id.
pub async fn resume(
    state: &super::State,
    job: JobRef,
    input: Option<InputLock>,
) -> Result<String, pipeline::Error> {
    let id = job.meta.id.clone();
    let held = match pipeline::open_job(job, &Given::default(), input)? {
        Opened::Ready(held) => held,
        // Nothing to run: its results written again, as the verb does.
        Opened::Finished(held) => {
            let out = pipeline::write_outputs(&held, None, false);
            return match out.error {
                Some(e) => Err(e),
                None => Ok(id),
            };
        }
    };
    let conn = pipeline::connect_job(&held.job, &held.journal, &held.options, "resume it").await?;
    super::live::run(&state.jobs, held, conn)?;
    Ok(id)
}

/// `POST /jobs/{id}/resume`.
pub async fn resume_page(
    State(state): State<Arc<super::State>>,
    Path(id): Path<String>,
) -> Response {
    let job = match find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let task = {
        let state = state.clone();
        super::off_thread(move || async move { resume(&state, job, None).await })
    };
    done(&state, "Resume", task.await)
}

/// Where an action leads: the job's page, or what refused it in the pipeline's words.
fn done(
    state: &super::State,
    what: &str,
    r: Result<Result<String, pipeline::Error>, tokio::task::JoinError>,
) -> Response {
    let m = match r {
        Ok(Ok(id)) => return Redirect::to(&format!("/jobs/{id}")).into_response(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    layout::problem(state.mode(), StatusCode::CONFLICT, what, &m)
}

/// `POST /jobs/{id}/abandon`.
pub async fn abandon(State(state): State<Arc<super::State>>, Path(id): Path<String>) -> Response {
    let job = match find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let id = job.meta.id.clone();
    let r = tokio::task::spawn_blocking(move || pipeline::abandon(&job).map(|()| id)).await;
    done(&state, "Abandon", r)
}

/// The workbooks a job's end writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workbook {
    Results,
    ToFix,
}

/// `GET /jobs/{id}/results`.
pub async fn results_file(state: State<Arc<super::State>>, id: Path<String>) -> Response {
    download(state, id, Workbook::Results).await
}

/// `GET /jobs/{id}/to-fix`.
pub async fn to_fix_file(state: State<Arc<super::State>>, id: Path<String>) -> Response {
    download(state, id, Workbook::ToFix).await
}

/// The workbook as the job's end wrote it.
async fn download(
    State(state): State<Arc<super::State>>,
    Path(id): Path<String>,
    which: Workbook,
) -> Response {
    let job = match find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let results = match job.options() {
        Ok(o) => o.results,
        Err(e) => return problem(&state, &e.to_string()),
    };
    let path = match which {
        Workbook::Results => results,
        Workbook::ToFix => state
            .jobs
            .get(&job.meta.id)
            .and_then(|l| l.end())
            .and_then(|(_, w)| w.to_fix)
            .unwrap_or_else(|| crate::results::to_fix_path(&results)),
    };
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || std::fs::read(path)).await
    };
    match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
        Ok(bytes) => super::start::xlsx(
            &path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes,
        ),
        Err(e) => layout::problem(
            state.mode(),
            StatusCode::NOT_FOUND,
            "Results",
            &format!(
                "{} cannot be read ({e}). The job's outcome is safe in its journal: plbulk results {} --out FILE.xlsx writes it again.",
                path.display(),
                job.meta.id
            ),
        ),
    }
}

/// What an undo would do, or why there is none.
enum UndoView {
    /// An undo of this job was begun and did not finish: it goes on instead.
    Begun(JobRef),
    Plan {
        was: job::JobOptions,
        calls: Calls,
        irreversible: Vec<String>,
        left_alone: u64,
    },
}

fn undo_view(state: &super::State, source: &JobRef) -> Result<UndoView, pipeline::Error> {
    let was = pipeline::undoable(source)?;
    if let Some(earlier) = pipeline::undo_begun(&state.options.jobs_root, source)? {
        return Ok(UndoView::Begun(earlier));
    }
    let (_, up) = pipeline::plan_undo(source, false)?;
    Ok(UndoView::Plan {
        calls: Calls::of(&up.plan, was.rate),
        was,
        irreversible: up.irreversible,
        left_alone: up.left_alone,
    })
}

/// The account a job ran on, in words.
fn account_of(source: &JobRef, was: &job::JobOptions) -> String {
    if was.sandbox {
        "the rehearsal account on this computer".into()
    } else {
        format!(
            "{} with API key {}",
            source.meta.base_url, source.meta.key_id
        )
    }
}

/// `GET /jobs/{id}/undo`: the undo's plan, and the confirmation that starts it.
pub async fn undo_page(State(state): State<Arc<super::State>>, Path(id): Path<String>) -> Response {
    let source = match find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let view = {
        let (state2, source) = (state.clone(), source.clone());
        tokio::task::spawn_blocking(move || undo_view(&state2, &source)).await
    };
    let id = &source.meta.id;
    let body = match view {
        Ok(Ok(UndoView::Begun(earlier))) => html! {
            p.warning { "Job " (id) " has an undo that did not finish, job " code { (earlier.meta.id) } ": it goes on." }
            form method="post" action={ "/jobs/" (earlier.meta.id) "/resume" } {
                button type="submit" #resume-undo { "Resume the undo" }
            }
        },
        Ok(Ok(UndoView::Plan {
            was,
            calls,
            irreversible,
            left_alone,
        })) => html! {
            p { "The undo of job " code { (id) } " is a job of its own, on " strong #undo-on { (account_of(&source, &was)) } ". It would make, in this order:" }
            (super::preview::effects(&calls))
            p #at-limit { (crate::words::count(calls.writes, "write call")) " at " (calls.rate) " take at least " (humantime::format_duration(calls.at_limit)) "." }
            @if left_alone > 0 {
                p.muted { (crate::words::count(left_alone, "row")) " left alone: what they name was in the account before the job." }
            }
            @if !irreversible.is_empty() {
                details.irreversible {
                    summary { (crate::words::count(irreversible.len() as u64, "row")) " cannot be reversed through the API (the undo's results say so on each)" }
                    ul { @for line in irreversible.iter().take(50) { li { (line) } } }
                    @if irreversible.len() > 50 { p.muted { "… and " (irreversible.len() - 50) " more." } }
                }
            }
            form method="post" action={ "/jobs/" (id) "/undo" } #undo-form {
                label.check for="confirm" {
                    input #confirm type="checkbox" name="confirm" value="yes" required;
                    " I confirm: undo job " (id) " on " (account_of(&source, &was)) ", with " (crate::words::count(calls.writes, "write call")) "."
                }
                div.actions { button.danger type="submit" #start-undo { "Start the undo" } }
            }
            (layout::cli(&format!("plbulk undo {id} --dry-run")))
        },
        Ok(Err(e)) => html! { p.error role="alert" #refused { (e) } },
        Err(e) => html! { p.error role="alert" { (e) } },
    };
    layout::page(state.mode(), Section::Jobs, &format!("Undo job {id}"), body).into_response()
}

#[derive(Deserialize, Default)]
pub struct UndoForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /jobs/{id}/undo`: the undo started as `plbulk undo --yes` starts it.
pub async fn undo_start(
    State(state): State<Arc<super::State>>,
    Path(id): Path<String>,
    Form(form): Form<UndoForm>,
) -> Response {
    let source = match find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    if form.confirm.as_deref() != Some("yes") {
        return layout::problem(
            state.mode(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Undo",
            "The undo starts only once confirmed: tick the box on its preview. Nothing was sent.",
        );
    }
    let task = {
        let state = state.clone();
        super::off_thread(move || async move { undo(&state, source).await })
    };
    done(&state, "Undo", task.await)
}

/// The steps of `plbulk undo` from the plan to the engine's start; the undo's id.
async fn undo(state: &super::State, source: JobRef) -> Result<String, pipeline::Error> {
    let root = &state.options.jobs_root;
    let was = pipeline::undoable(&source)?;
    if let Some(earlier) = pipeline::undo_begun(root, &source)? {
        return resume(state, earlier, None).await;
    }
    let (journal, up) = pipeline::plan_undo(&source, false)?;
    let sources: Vec<&str> = source.meta.inputs.iter().map(|f| f.path.as_str()).collect();
    let requested = was.results.with_extension("undo.xlsx");
    let results = crate::outputs::results_for_new_job(
        &requested,
        &sources,
        pipeline::results_held_by(root, &requested),
        false,
        &crate::outputs::stamp_now(),
    )?;
    let options = pipeline::undo_options(&source, &was, &results.path, None, None, false);
    let mut conn = pipeline::connect_job(&source, &journal, &options, "undo it").await?;
    let held = pipeline::create_job(root, Vec::new(), &up.plan, options, &mut conn, None)?;
    drop(up);
    let live = super::live::run(&state.jobs, held, conn)?;
    Ok(live.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rows_that_need_a_person_read_as_bad() {
        for k in RowState::ALL {
            let want = match k {
                RowState::Failed | RowState::NeedsReview | RowState::Invalid => Tone::Bad,
                RowState::Pending | RowState::Skipped => Tone::Waiting,
                RowState::Succeeded | RowState::AlreadyExisted | RowState::Unchanged => Tone::Good,
            };
            assert_eq!(Tone::of(k), want, "{k:?}");
        }
    }

    #[test]
    fn a_row_is_said_in_its_first_cells() {
        let cells = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            gist(&cells(&["add", "", "ACME", "Acme Ltd"])),
            "add · ACME · Acme Ltd"
        );
        assert_eq!(gist(&cells(&["a", "b", "c", "d"])), "a · b · c · …");
    }
}
