//! `plbulk ui`: the local web page for partner staff who never open a terminal, served from
//! the plbulk binary on loopback and running the same library calls as the verbs: what the
//! page says about a file, an account or a job is what `validate`, `check` and `jobs` say.
//!
//! Server-rendered HTML ([`maud`]) with htmx and a few lines of plain JavaScript, all compiled
//! into the binary ([`assets`]). Every request passes [`security`]'s gate first: the token, a
//! Host and Origin of the page's own. The pages, one module per concern: [`start`] (where a
//! partner begins: the account in a line, a file to drop, the templates), [`account`] (which
//! account and key, checked; a key typed in and saved), [`findings`] (a dropped file checked
//! as `plbulk validate` checks it, each finding on the partner's own cells), [`mapping`] (the
//! mapping file an export is read through, dropped with it or started from it as `plbulk map
//! init` starts one), [`preview`] (a
//! valid file's pre-flight and change preview, as `run --dry-run`, and its start, confirmed
//! when it orders or deletes), [`job`] (one job: its progress while it runs, pushed by
//! [`live`]'s server-sent events, with Stop; then its results, and resume, abandon, undo) and
//! [`jobs`] (every job, as `plbulk jobs`). [`layout`] is the frame around each; [`uploads`]
//! keeps the dropped files in the data folder.
//!
//! A job started from the page runs in this process, held in [`State`] ([`live::Jobs`]), so
//! it outlives the page that started it; a job started in a terminal is watched from its
//! journal the same way.

pub mod account;
pub mod assets;
pub mod browser;
pub mod findings;
pub mod job;
pub mod jobs;
pub mod layout;
pub mod live;
pub mod mapping;
pub mod preview;
pub mod security;
pub mod start;
pub mod uploads;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::pacing::Rate;

/// The largest file the page takes: far above any partner's workbook, and still a bound.
pub const MAX_UPLOAD: usize = 64 * 1024 * 1024;

/// How the page is served.
#[derive(Debug, Clone)]
pub struct Options {
    /// A loopback address ([`security::loopback`] checks it); port 0 picks a free one.
    pub listen: SocketAddr,
    /// Where the jobs are, as `plbulk jobs` finds them.
    pub jobs_root: PathBuf,
    /// Longest wait for each answer when the page checks the account or a key.
    pub timeout: Duration,
    /// The key's limit, which a check spends from like a job.
    pub rate: Rate,
}

/// Which account the page works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The rehearsal account (`--sandbox`): the default until a key is set.
    Rehearsal,
    /// The account of the key in the settings.
    Account,
}

/// What every handler shares.
pub struct State {
    pub(crate) token: security::Token,
    /// The page's own origin and host names, as the gate compares them.
    pub(crate) own: security::Own,
    pub(crate) options: Options,
    pub(crate) uploads: uploads::Store,
    pub(crate) mode: Mutex<Mode>,
    /// Files checked, by upload id: a page shown again is not checked again.
    pub(crate) checked: Mutex<HashMap<String, Arc<findings::Checked>>>,
    /// The jobs this process runs (started, resumed or undone from the page).
    pub(crate) jobs: live::Jobs,
    /// Set when the server is to stop: the progress streams end.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
}

impl State {
    pub(crate) fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = m;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("cannot serve the page on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Uploads(String),
    #[error("the page's server stopped: {0}")]
    Serve(std::io::Error),
}

/// Runs the future `make` makes to its end on a blocking thread of the runtime, and waits for
/// it. The pipeline's pre-flight and connections borrow a connection across their awaits, and
/// a connection (its SQLite call budget) is not `Sync`, so those futures cannot be spawned or
/// awaited in a handler (the CLI runs them on its main thread). Run here, they also go on to
/// their end when the page that asked is closed: no job is left made and not started.
pub(crate) async fn off_thread<T, F>(
    make: impl FnOnce() -> F + Send + 'static,
) -> Result<T, tokio::task::JoinError>
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(make())).await
}

/// Every route of the page, behind the gate.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(start::page))
        .route("/account", get(account::page))
        .route("/account/check", post(account::check))
        .route("/account/key", post(account::save_key))
        .route("/account/mode", post(account::set_mode))
        .route("/files", post(findings::upload))
        .route("/files/{id}", get(findings::page))
        .route("/files/{id}/report", get(findings::report))
        .route("/files/{id}/mapping", get(mapping::download))
        .route("/files/{id}/map-init", post(mapping::init))
        .route("/files/{id}/preview", get(preview::page))
        .route("/files/{id}/run", post(preview::start))
        .route("/jobs", get(jobs::page))
        .route("/jobs/{id}", get(job::page))
        .route("/jobs/{id}/events", get(live::events))
        .route("/jobs/{id}/stop", post(job::stop))
        .route("/jobs/{id}/resume", post(job::resume_page))
        .route("/jobs/{id}/abandon", post(job::abandon))
        .route("/jobs/{id}/undo", get(job::undo_page).post(job::undo_start))
        .route("/jobs/{id}/results", get(job::results_file))
        .route("/jobs/{id}/to-fix", get(job::to_fix_file))
        .route("/templates/{name}", get(start::template))
        .route("/assets/{name}", get(assets::serve))
        .fallback(layout::not_found)
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::gate,
        ))
        .with_state(state)
}

/// The page's server: bound, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<State>,
}

impl Server {
    /// Binds `options.listen` and makes the token. Refuses an address that is not loopback.
    pub async fn start(options: Options) -> Result<Server, UiError> {
        if !options.listen.ip().is_loopback() {
            return Err(UiError::Bind {
                addr: options.listen,
                source: std::io::Error::other("the page is served on a loopback address only"),
            });
        }
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| UiError::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| UiError::Bind {
            addr: options.listen,
            source,
        })?;
        let uploads = uploads::Store::open(&crate::job::data_dir()).map_err(UiError::Uploads)?;
        // Rehearsal until a key is set: a first look never reaches a real account by surprise.
        let mode = if matches!(
            crate::account::configured(None),
            Ok(crate::account::Settled::Set(_))
        ) {
            Mode::Account
        } else {
            Mode::Rehearsal
        };
        let state = Arc::new(State {
            token: security::Token::random(),
            own: security::Own::of(addr),
            options,
            uploads,
            mode: Mutex::new(mode),
            checked: Mutex::new(HashMap::new()),
            jobs: live::Jobs::default(),
            closing: tokio::sync::watch::channel(false).0,
        });
        Ok(Server { listener, state })
    }

    /// Where the page is, with the token that opens it: for the person who started it.
    pub fn url(&self) -> String {
        format!(
            "{}/?token={}",
            self.state.own.origin(),
            self.state.token.expose()
        )
    }

    /// Serves until `shutdown` completes; then the jobs this process runs are stopped as
    /// Ctrl-C stops `plbulk run` (no new rows, the answers of requests sent recorded, results
    /// written: resumable), and this returns once they have ended. The progress streams end
    /// first: an open stream would hold the graceful shutdown for ever.
    pub async fn serve_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), UiError> {
        let state = self.state.clone();
        let closing = {
            let state = state.clone();
            async move {
                shutdown.await;
                state.closing.send_replace(true);
                state.jobs.stop_all();
            }
        };
        let app = router(self.state);
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(closing)
            .await
            .map_err(UiError::Serve);
        state.jobs.stop_all();
        state.jobs.wait_all().await;
        served
    }
}
