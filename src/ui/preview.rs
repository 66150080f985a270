//! A valid file's preview and its start, as `plbulk run --dry-run` and `plbulk run` do them,
//! through the same [`pipeline`] steps (the file read through its mapping, when it has one, as
//! `--map` reads it; a start is [`pipeline::begin`], `plbulk run`'s own): the file read and
//! planned, the account read by the
//! pre-flight (no write), and what the job would make, change field by field, delete and order,
//! with its calls and the time they take at the limit ([`pipeline::Calls`]). A job that orders
//! hardware or deletes anything starts only once the partner has confirmed it, the account and
//! the counts named ([`pipeline::Calls::to_confirm`]); the server checks that again at the start.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, Section};
use super::uploads::Upload;
use super::Mode;
use crate::client::Settings;
use crate::engine::Existing;
use crate::findings::Severity;
use crate::job::JobOptions;
use crate::pipeline::{self, Begun, Calls, Choices, Effect, Planned, Refusal, Verdict};
use crate::preflight::Change;
use crate::rehearsal::Rehearsal;

/// Pre-flight findings and changes shown; `plbulk validate --online` reports them all.
const SHOWN: usize = 100;

/// The account a page's job works on, as it was chosen on the Account page.
struct On {
    rehearsal: Option<Rehearsal>,
    settings: Option<Settings>,
}

impl On {
    fn of(mode: Mode) -> Result<On, pipeline::Error> {
        match mode {
            Mode::Rehearsal => Ok(On {
                rehearsal: Some(Rehearsal::Shared),
                settings: None,
            }),
            Mode::Account => Ok(On {
                rehearsal: None,
                settings: Some(
                    Settings::load(None).map_err(|e| pipeline::Error::Refused(e.to_string()))?,
                ),
            }),
        }
    }

    /// The account in words, as a confirmation names it.
    fn words(&self) -> String {
        match (&self.rehearsal, &self.settings) {
            (Some(_), _) | (None, None) => {
                "the rehearsal account on this computer (nothing reaches PL+)".into()
            }
            (None, Some(s)) => match &s.credentials {
                Some((c, _)) => format!("{} with API key {}", s.base_url, c.key_id),
                None => s.base_url.clone(),
            },
        }
    }
}

/// What the partner chose, as `plbulk run --existing` and `--skip-invalid` take it: carried
/// from the preview's form to its start, so the job is the one previewed.
#[derive(Deserialize, Debug, Clone, Copy, Default)]
pub struct Asked {
    #[serde(default)]
    existing: Existing,
    /// "yes" when ticked, as a checkbox posts it.
    #[serde(default, deserialize_with = "ticked")]
    skip_invalid: bool,
}

/// A checkbox's value: ticked when it is sent at all.
fn ticked<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<String>::deserialize(d)?.is_some_and(|v| v == "yes"))
}

impl Asked {
    /// The flags as `plbulk run` takes them, for the command line the page shows.
    fn flags(&self) -> String {
        let mut f = String::new();
        if self.existing != Existing::Skip {
            f.push_str(&format!(" --existing {}", self.existing));
        }
        if self.skip_invalid {
            f.push_str(" --skip-invalid");
        }
        f
    }
}

/// The file read and planned (off the async threads: a workbook takes a while), or why no
/// job may start from it.
async fn planned(up: &Upload, skip_invalid: bool) -> Result<Planned, pipeline::Error> {
    let (files, map) = (vec![up.path.clone()], up.mapping.clone());
    tokio::task::spawn_blocking(move || {
        let mapping = pipeline::load_mapping(map.as_deref())?;
        let read = pipeline::read(&files, None, mapping);
        match read.verdict(skip_invalid) {
            Verdict::Go => Ok(read.plan()),
            Verdict::Unreadable => Err(pipeline::Error::Input(read.inputs.unreadable.join("; "))),
            Verdict::Invalid(n) => Err(pipeline::Error::Refused(format!(
                "{} in the file: fix them in Excel and drop it again, or run the valid rows only (the others recorded as invalid) from its findings page",
                crate::words::count(n, "error")
            ))),
        }
    })
    .await
    .map_err(|e| pipeline::Error::Io(format!("reading the file failed: {e}")))?
}

/// What the preview found.
struct Previewed {
    planned: Planned,
    calls: Calls,
    /// Errors and warnings, as "Sheet row N: message".
    said: Vec<(Severity, String)>,
    errors: usize,
    changes: Vec<Change>,
    unchanged: usize,
    /// Why the account's values are not shown (it could not be read).
    unread: Option<String>,
}

/// The dry run: the plan, and the account read to say what it changes.
async fn preview(
    state: &super::State,
    up: &Upload,
    on: &On,
    asked: Asked,
) -> Result<Previewed, pipeline::Error> {
    let mut planned = planned(up, asked.skip_invalid).await?;
    let rate = state.options.rate;
    let conn = pipeline::connect_reading(
        rate,
        on.rehearsal.clone(),
        on.settings.as_ref(),
        "the page's preview",
    )
    .await;
    let (mut said, mut errors, mut changes, mut unchanged, mut unread) =
        (Vec::new(), 0, Vec::new(), 0, None);
    match conn {
        Ok(conn) => {
            let pre = pipeline::preflight(&planned, &conn, Some(asked.existing)).await;
            conn.close().await;
            match pre {
                Ok(pre) => {
                    pre.apply(&mut planned.plan);
                    errors = pre.errors();
                    said = pre.said().map(|f| (f.severity, f.to_string())).collect();
                    unchanged = pre.checked.unchanged.len();
                    changes = pre.checked.changes;
                }
                Err(e) => unread = Some(e.detail().trim_start_matches("not sent: ").to_string()),
            }
        }
        Err(e) => unread = Some(e.to_string()),
    }
    Ok(Previewed {
        calls: Calls::of(&planned.plan, rate),
        planned,
        said,
        errors,
        changes,
        unchanged,
        unread,
    })
}

/// `GET /files/{id}/preview`, with the choices of its form ([`Asked`]).
pub async fn page(
    State(state): State<Arc<super::State>>,
    Path(id): Path<String>,
    Query(asked): Query<Asked>,
) -> Response {
    let mode = state.mode();
    let Some(up) = state.uploads.find(&id) else {
        return gone(mode);
    };
    let task = {
        let (state, up) = (state.clone(), up.clone());
        super::off_thread(move || async move {
            let on = On::of(state.mode())?;
            let p = preview(&state, &up, &on, asked).await?;
            Ok::<_, pipeline::Error>((on, p))
        })
        .await
    };
    match task {
        Ok(Ok((on, p))) => render(mode, &up, &on, &p, asked),
        Ok(Err(e)) => refused(mode, &up, &e.to_string()),
        Err(e) => refused(mode, &up, &format!("the preview failed: {e}")),
    }
}

fn gone(mode: Mode) -> Response {
    layout::problem(
        mode,
        StatusCode::NOT_FOUND,
        "No such file",
        "This file is not kept here any more: drop it again on the start page.",
    )
}

/// The file cannot run, in the pipeline's words, with the way back to its findings.
fn refused(mode: Mode, up: &Upload, why: &str) -> Response {
    let body = html! {
        p.error role="alert" #refused { (why) }
        p { a href={ "/files/" (up.id) } { "Back to the file's findings" } }
    };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        layout::page(mode, Section::Other, "The job cannot start", body),
    )
        .into_response()
}

fn render(mode: Mode, up: &Upload, on: &On, p: &Previewed, asked: Asked) -> Response {
    let name = up.name();
    let calls = &p.calls;
    let body = html! {
        p { "On " strong #on { (on.words()) } ". Nothing has been sent: the account was only read." }
        @if let Some(why) = &p.unread {
            p.error role="alert" #unread { "The account could not be read, so nothing is checked and the job cannot start: " (why) ". Check the account on the Account page, then preview again. The calls below are the plan's." }
        }
        section.card aria-labelledby="pre" {
            h2 #pre { "Pre-flight" }
            @if p.unread.is_some() {
                p.muted #preflight { "Not checked: the account could not be read." }
            } @else if p.said.is_empty() {
                p.ok #preflight { "The account has what every row needs: customers, numbers, products and postcodes checked." }
            } @else {
                p #preflight class=(if p.errors > 0 { "error" } else { "warning" }) {
                    (crate::words::count(p.errors as u64, "error")) ", "
                    (crate::words::count((p.said.len() - p.errors) as u64, "warning")) "."
                }
                ul.messages {
                    @for (sev, line) in p.said.iter().take(SHOWN) {
                        li class={ "sev-" (sev.as_str()) } { span.sev { (sev.as_str()) } (line) }
                    }
                }
            }
            @if p.unchanged > 0 {
                p.muted { (crate::words::count(p.unchanged as u64, "update row")) " would change nothing in the account and will not be sent." }
            }
        }
        section.card aria-labelledby="what" {
            h2 #what { "What the job will do" }
            (effects(calls))
            @if calls.invalid > 0 {
                p.muted { (crate::words::count(calls.invalid, "invalid row")) " would be recorded as such and not sent." }
            }
            p #at-limit {
                strong { (crate::words::count(calls.writes, "write call")) }
                " at " (calls.rate) " take at least "
                strong { (humantime::format_duration(calls.at_limit)) }
                ", plus authentication and a few look-ups (at most one list per collection)."
            }
        }
        @let expansions = p.planned.plan.expansions();
        @if !expansions.is_empty() {
            section.card aria-labelledby="per-row" {
                h2 #per-row { "What each row makes" }
                p.muted { "A row of the Migration sheet is a person: the changes it stands for, rows that make the same together." }
                div.scroll {
                    table #expansions {
                        thead { tr {
                            th scope="col" { "Sheet" } th scope="col" { "Rows" }
                            th.num scope="col" { "Write calls a row" } th scope="col" { "Steps" }
                        } }
                        tbody {
                            @for e in expansions.iter().take(SHOWN) {
                                tr {
                                    td { (e.sheet) }
                                    td { (e.rows_text()) }
                                    td.num { (e.writes()) }
                                    td { (e.steps().join("; ")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !p.changes.is_empty() {
            section.card aria-labelledby="changes" {
                h2 #changes { "Changes, field by field" }
                div.scroll {
                    table #change-list {
                        thead { tr {
                            th scope="col" { "Sheet" } th scope="col" { "Row" } th scope="col" { "What" }
                            th scope="col" { "Field" } th scope="col" { "Now" } th scope="col" { "After" }
                        } }
                        tbody {
                            @for ch in p.changes.iter().take(SHOWN) {
                                @let row = &p.planned.plan.rows[ch.row];
                                tr {
                                    td { (p.planned.inputs.sheets[row.sheet as usize].name) }
                                    td.num { (row.row_no) }
                                    td { (ch.entity) }
                                    td { (ch.field) }
                                    td { (pipeline::quoted(&ch.now)) }
                                    td { (pipeline::quoted(&ch.after)) }
                                }
                            }
                        }
                    }
                }
                @if p.changes.len() > SHOWN {
                    p.muted { "… and " (p.changes.len() - SHOWN) " more." }
                }
            }
        }
        (choices_form(up, asked))
        (start_form(up, on, p, asked))
        (layout::cli(&format!("plbulk run --dry-run {}{}", up.words(), asked.flags())))
    };
    layout::page(mode, Section::Other, &format!("Preview: {name}"), body).into_response()
}

/// The write calls by what they do to the account, in the order they are made.
pub fn effects(calls: &Calls) -> Markup {
    html! {
        @if calls.each.is_empty() {
            p #effects { "Nothing to send: every row is done already, or changes nothing." }
        } @else {
            div.scroll {
                table #effects {
                    thead { tr {
                        th scope="col" { "Effect" } th.num scope="col" { "Calls" } th scope="col" { "Call, in the order made" }
                    } }
                    tbody {
                        @for (op, n) in &calls.each {
                            @let e = Effect::of(*op);
                            tr class={ "effect-" (effect_class(e)) } data-effect=(effect_class(e)) {
                                td { (e.label()) }
                                td.num { (n) }
                                td { (op.name()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn effect_class(e: Effect) -> &'static str {
    match e {
        Effect::Create => "create",
        Effect::Change => "change",
        Effect::Delete => "delete",
        Effect::Order => "order",
        Effect::Message => "message",
    }
}

/// `plbulk run`'s `--existing` and `--skip-invalid`, in its own words; a change previews
/// again with them.
fn choices_form(up: &Upload, asked: Asked) -> Markup {
    let choice = |e: Existing, words: &str| {
        html! {
            option value=(e) selected[asked.existing == e] { (words) }
        }
    };
    html! {
        section.card aria-labelledby="choices" {
            h2 #choices { "Choices" }
            form method="get" action={ "/files/" (up.id) "/preview" } #choices-form {
                p {
                    label for="existing" { "When a create finds what it would make already there: " }
                    select #existing name="existing" {
                        (choice(Existing::Skip, "skip (record \"already existed\")"))
                        (choice(Existing::Update, "update it to match the row"))
                        (choice(Existing::Fail, "fail the row"))
                    }
                }
                p {
                    label.check for="skip-invalid" {
                        input #skip-invalid type="checkbox" name="skip_invalid" value="yes" checked[asked.skip_invalid];
                        " Run the valid rows and record the invalid ones as such, instead of refusing to start."
                    }
                }
                div.actions { button.secondary type="submit" #preview-again { "Preview again with these choices" } }
            }
        }
    }
}

/// The start button, and the confirmation a job that orders or deletes asks for.
fn start_form(up: &Upload, on: &On, p: &Previewed, asked: Asked) -> Markup {
    if p.errors > 0 && !asked.skip_invalid {
        return html! {
            p.error #cannot-start { "The job cannot start: fix the pre-flight's errors in Excel and drop the file again, or tick the choice above to run the other rows and record these as invalid." }
        };
    }
    // As `plbulk run`, which stops when its pre-flight cannot read the account.
    if p.unread.is_some() {
        return html! {
            p.error #cannot-start { "The job cannot start until the account can be read." }
        };
    }
    let confirm = p.calls.to_confirm();
    html! {
        form method="post" action={ "/files/" (up.id) "/run" } #start-form {
            input type="hidden" name="existing" value=(asked.existing);
            @if asked.skip_invalid { input type="hidden" name="skip_invalid" value="yes"; }
            @if let Some(c) = confirm {
                p.warning #confirm-needed {
                    "This job " (c.words()) " on " strong { (on.words()) } "."
                    @if c.orders > 0 {
                        @if on.rehearsal.is_some() { " On a real account, hardware ordered is shipped and billed." }
                        @else { " Hardware ordered is shipped and billed, and cannot be called back through the API." }
                    }
                    @if c.deletes > 0 { " A deletion cannot be taken back by running the file again." }
                }
                label.check for="confirm" {
                    input #confirm type="checkbox" name="confirm" value="yes" required;
                    " I confirm: " (c.words()) " on " (on.words()) "."
                }
            }
            div.actions {
                button type="submit" #start { "Start the job" }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct StartForm {
    #[serde(default)]
    confirm: Option<String>,
    #[serde(flatten)]
    asked: Asked,
}

/// `POST /files/{id}/run`: the job started as `plbulk run` starts it (an unfinished job of
/// this file goes on instead), then its page. The steps run on a task of their own, so a page
/// closed meanwhile does not leave a job made and not started.
pub async fn start(
    State(state): State<Arc<super::State>>,
    Path(id): Path<String>,
    Form(form): Form<StartForm>,
) -> Response {
    let mode = state.mode();
    let Some(up) = state.uploads.find(&id) else {
        return gone(mode);
    };
    let confirmed = form.confirm.as_deref() == Some("yes");
    let task = {
        let (state, up) = (state.clone(), up.clone());
        let asked = form.asked;
        super::off_thread(move || async move { begin(&state, &up, confirmed, asked).await })
    };
    match task.await {
        Ok(Ok(job)) => Redirect::to(&format!("/jobs/{job}")).into_response(),
        Ok(Err(e)) => refused(mode, &up, &e.to_string()),
        Err(e) => refused(mode, &up, &format!("the job could not start: {e}")),
    }
}

/// `plbulk run`'s start ([`pipeline::begin`]) with the page's choices; the id of the job
/// started, or of the unfinished job of this file that goes on instead.
async fn begin(
    state: &super::State,
    up: &Upload,
    confirmed: bool,
    asked: Asked,
) -> Result<String, pipeline::Error> {
    let on = On::of(state.mode())?;
    let choices = Choices {
        command: "the page's job",
        root: state.options.jobs_root.clone(),
        files: vec![up.path.clone()],
        kind: None,
        map: up.mapping.clone(),
        rehearsal: on.rehearsal.clone(),
        base_url: None,
        results: None,
        overwrite: false,
        concurrency: None,
        rate: Some(state.options.rate),
        existing: asked.existing,
        skip_invalid: asked.skip_invalid,
        new_job: false,
        preflight: true,
        dry_run: false,
        timeout: None,
        max_outage: None,
    };
    let mut page = Page { confirmed, on: &on };
    match pipeline::begin(&choices, &mut page).await? {
        Begun::Created(created) => {
            let live = super::live::run(&state.jobs, created.held, created.conn)?;
            Ok(live.id.clone())
        }
        // As `plbulk run`: an unfinished job of this file on this account goes on.
        Begun::Resume { job, lock } => super::job::resume(state, job, Some(lock)).await,
        Begun::Refused(r) => Err(pipeline::Error::Refused(refusal(r))),
        Begun::DryRun(_) => Err(pipeline::Error::Usage(
            "a preview starts no job: start it from the preview".into(),
        )),
    }
}

/// Why the file starts no job, in the page's words (the preview had shown it).
fn refusal(r: Refusal) -> String {
    match r {
        Refusal::Unreadable => {
            "the file could not be read: its findings page says why, and nothing was sent".into()
        }
        Refusal::Invalid(n) => format!(
            "{} in the file; nothing was sent: fix them in Excel and drop it again",
            crate::words::count(n, "error")
        ),
        Refusal::Preflight(n) => format!(
            "the pre-flight found {}; nothing was written. The preview lists them: fix them in Excel and drop the file again",
            crate::words::count(n as u64, "error")
        ),
    }
}

/// How the page's start shows the steps: nothing as they happen (the page shows the job's
/// page, or why it did not start); the confirmation checked on the plan that runs.
struct Page<'a> {
    confirmed: bool,
    on: &'a On,
}

impl pipeline::Show for Page<'_> {
    fn confirm(&mut self, planned: &Planned, options: &JobOptions) -> Result<(), pipeline::Error> {
        // Asked on the preview, and checked here on the plan that runs: a form posted without
        // it starts nothing.
        if let (Some(c), false) = (
            Calls::of(&planned.plan, options.rate).to_confirm(),
            self.confirmed,
        ) {
            return Err(pipeline::Error::Refused(format!(
                "this job {} on {}: tick the box on the preview to confirm it; nothing was sent",
                c.words(),
                self.on.words()
            )));
        }
        Ok(())
    }
}
