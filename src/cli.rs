//! Command-line flags as clap parses them, and nothing more: each verb's module turns its raw
//! flags into checked settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::Existing;
use crate::pacing::Rate;
use crate::sandbox::{Latency, OutageMode, PlannedOutage, PlannedRefusal};
use crate::schema::Kind;

const EX_RUN: &str = "\
Examples:
  plbulk run samples/onboarding.xlsx --sandbox          # rehearse on the rehearsal account
  plbulk run onboarding.xlsx --sandbox-fresh            # rehearse on an empty account of its own
  plbulk run customers.csv --dry-run                    # the calls, and each field an update changes
  plbulk run migration.xlsx --skip-invalid              # run the valid rows, record the others
  plbulk run migration.to-fix.xlsx                      # the fixed rows of a run, run again
  plbulk run users-export.csv --map users.map.toml      # another system's export, through a mapping";

const EX_RESUME: &str = "\
Examples:
  plbulk resume                                         # the latest unfinished job
  plbulk resume 20261201-093000-3fa2c1 --rate 50/min";

const EX_STATUS: &str = "\
Examples:
  plbulk status                                         # the latest unfinished job, else the latest
  plbulk status 20261201-093000 --json | jq .outcomes";

const EX_JOBS: &str = "\
Examples:
  plbulk jobs
  plbulk jobs --json | jq -r '.jobs[] | select(.state != \"finished\") | .id'";

const EX_RESULTS: &str = "\
Examples:
  plbulk results                                        # the latest job's workbook, now
  plbulk results 20261201-093000 --format csv --out results.csv";

const EX_EXPORT: &str = "\
Examples:
  plbulk export customers --out customers.xlsx          # edit, then: plbulk run customers.xlsx
  plbulk export users --customer \"Acme Ltd\" --out acme-users.xlsx";

const EX_VALIDATE: &str = "\
Examples:
  plbulk validate onboarding.xlsx                       # writes onboarding.validation.xlsx
  plbulk validate --online updates.xlsx                 # also checks the account; a Changes sheet";

const EX_MAP_INIT: &str = "\
Examples:
  plbulk map init billing-export.csv --out customers.map.toml
  plbulk map init users-export.xlsx --sheet Users --kind users --out users.map.toml
  plbulk validate billing-export.csv --map customers.map.toml   # then: plbulk run … --map …";

const EX_TEMPLATE: &str = "\
Examples:
  plbulk template --out templates                       # every kind's template and the onboarding workbook
  plbulk template users                                 # users.xlsx here";

const EX_SANDBOX: &str = "\
Examples:
  plbulk sandbox --listen 127.0.0.1:8080                # then PLBULK_BASE_URL=http://127.0.0.1:8080
  plbulk sandbox --seed 7 --gateway-error-rate 0.2      # faults, the same ones for one seed
  plbulk sandbox --outage refuse:10s:90s                # unreachable from 10 s in, for 90 s
  plbulk sandbox status                                 # the rehearsal account: where, what, who has it
  plbulk sandbox reset                                  # empty the rehearsal account";

const EX_UNDO: &str = "\
Examples:
  plbulk undo 20261201-093000-3fa2c1 --dry-run          # what it would reverse, and what it cannot
  plbulk undo 20261201-093000-3fa2c1";

const EXIT_CODES: &str = "\
Exit codes:
  0  success: every row succeeded
  1  finished, with failed, skipped, needs-review or invalid rows, or results not written
  2  refused: bad arguments, validation errors, changed input, or a setup problem
  3  interrupted: the job can be resumed";

#[derive(Parser, Debug)]
#[command(name = "plbulk", version, about = "Bulk jobs from spreadsheets against the PhoneLine+ Partner API", after_help = EXIT_CODES)]
pub struct Cli {
    /// More detail on stderr (-v info, -vv debug). PLBULK_LOG overrides, e.g. PLBULK_LOG=plbulk=trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr; no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run spreadsheets against the API as a resumable job: validate, plan, journal, execute,
    /// and write a results workbook.
    #[command(after_help = EX_RUN)]
    Run(RunArgs),
    /// Resume an interrupted job (the latest unfinished one when no id is given).
    #[command(after_help = EX_RESUME)]
    Resume(ResumeArgs),
    /// A job's state: rows per outcome, calls, time left.
    #[command(after_help = EX_STATUS)]
    Status(StatusArgs),
    /// List the jobs.
    #[command(after_help = EX_JOBS)]
    Jobs(JobsArgs),
    /// Write a job's results now (also while it runs): a workbook, or one CSV per sheet.
    #[command(after_help = EX_RESULTS)]
    Results(ResultsArgs),
    /// Read the account's customers, users, numbers, blocked numbers or orders into an import
    /// template, to edit and run back.
    #[command(after_help = EX_EXPORT)]
    Export(ExportArgs),
    /// Check spreadsheets before running them: every cell and row, with a report workbook.
    #[command(after_help = EX_VALIDATE)]
    Validate(ValidateArgs),
    /// Mapping files, for another system's export: `map init` guesses a first one from the
    /// export's columns and values.
    #[command(subcommand)]
    Map(MapCommand),
    /// Write Excel templates to fill in.
    #[command(after_help = EX_TEMPLATE)]
    Template(TemplateArgs),
    /// Run a local PL+ API sandbox (in memory) to rehearse jobs against; show or empty the
    /// rehearsal account that `--sandbox` runs on.
    #[command(after_help = EX_SANDBOX, args_conflicts_with_subcommands = true)]
    Sandbox(SandboxArgs),
    /// Reverse what a finished job did, newest first, as a job of its own: remove what it
    /// made, put back what it changed; list what the API cannot reverse.
    #[command(after_help = EX_UNDO)]
    Undo(UndoArgs),
    /// Give up an unfinished job: its pending rows are never run (it can still be undone).
    #[command(
        after_help = "Examples:\n  plbulk abandon 20261201-093000-3fa2c1   # then: plbulk undo 20261201-093000-3fa2c1"
    )]
    Abandon(AbandonArgs),
    /// Check the credentials as a job reads them: get a token, call Get Stats, and say which
    /// endpoint and key, and the account's counts, or exactly what is wrong.
    #[command(
        after_help = "Examples:\n  plbulk check\n  plbulk check --base-url https://api.phonelineplus.com/v1"
    )]
    Check(CheckArgs),
    /// Serve the local web page: a file's findings, templates, the account and key, the jobs.
    /// Loopback only, behind a token in the address it prints.
    #[command(after_help = EX_UI)]
    Ui(UiArgs),
    /// Print a shell's completion script for plbulk.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print plbulk's man page (roff), for `man -l -` or a man directory.
    #[command(
        after_help = "Examples:\n  plbulk man | man -l -\n  plbulk man > ~/.local/share/man/man1/plbulk.1"
    )]
    Man,
}

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  plbulk completions bash > ~/.local/share/bash-completion/completions/plbulk
  plbulk completions zsh > ~/.zfunc/_plbulk        # with fpath+=~/.zfunc in ~/.zshrc
  plbulk completions fish > ~/.config/fish/completions/plbulk.fish
  plbulk completions powershell >> $PROFILE";

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// API base URL [default: PLBULK_BASE_URL, the config file, or the PL+ production URL].
    #[arg(long)]
    pub base_url: Option<String>,

    /// Longest wait to connect and for each answer, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub timeout: std::time::Duration,

    /// The key's limit, shared with any job on it.
    #[arg(long, default_value_t = Rate::default())]
    pub rate: Rate,

    /// Check the rehearsal account instead (what `--sandbox` runs on): no credentials needed.
    #[arg(long, conflicts_with = "base_url")]
    pub sandbox: bool,
}

const EX_UI: &str = "\
Examples:
  plbulk ui                                             # a free port; opens the browser
  plbulk ui --listen 127.0.0.1:8484 --no-open           # print the address only";

#[derive(Args, Debug)]
pub struct UiArgs {
    /// Address and port to serve on: a loopback address only (127.0.0.1, `[::1]`, localhost);
    /// port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,

    /// Print the address, and do not open a browser.
    #[arg(long)]
    pub no_open: bool,

    /// Folder that holds the jobs [default: PLBULK_JOB_DIR, or jobs in the user's data folder].
    #[arg(long, env = "PLBULK_JOB_DIR")]
    pub job_dir: Option<PathBuf>,

    /// Longest wait for each answer when the page checks the account or a key.
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub timeout: std::time::Duration,

    /// The key's limit, shared with any job on it.
    #[arg(long, default_value_t = Rate::default())]
    pub rate: Rate,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// CSV files (.csv, .tsv, .txt) and workbooks (.xlsx, .xlsm, .xls, .ods).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// What a CSV file (or a one-sheet workbook whose sheet has another name) holds:
    /// customers, users, numbers, blocked-numbers, devices, orders, user-settings, partner-users.
    #[arg(long, value_parser = kind_arg)]
    pub kind: Option<Kind>,

    /// A mapping file (TOML) that reads another system's export as a plbulk sheet: its kind,
    /// which of its columns is which, how its values translate. `plbulk map init` writes a
    /// first one.
    #[arg(long, value_name = "FILE", conflicts_with = "kind")]
    pub map: Option<PathBuf>,

    /// Rehearse on the rehearsal account (kept in the data folder, shared by rehearsals),
    /// through an in-process sandbox with the limit of --rate.
    #[arg(long)]
    pub sandbox: bool,

    /// Rehearse on an empty account of this job's own (kept in its folder), not the shared
    /// rehearsal account.
    #[arg(long, conflicts_with = "sandbox")]
    pub sandbox_fresh: bool,

    /// List the calls that would be made, in order, with counts and the time they would take;
    /// send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Folder that holds the jobs [default: PLBULK_JOB_DIR, or jobs in the user's data folder].
    #[arg(long, env = "PLBULK_JOB_DIR")]
    pub job_dir: Option<PathBuf>,

    /// Results workbook [default: FIRST-FILE.results.xlsx beside it].
    #[arg(long)]
    pub results: Option<PathBuf>,

    /// Replace a file at the results path that plbulk would otherwise keep (one it did not
    /// write, or a to-fix file changed since). An input is never replaced.
    #[arg(long)]
    pub overwrite: bool,

    /// Requests in flight at once (hides the API's latency; the pace stays within --rate)
    /// [default: 8, or as the unfinished job it resumes began].
    #[arg(long)]
    pub concurrency: Option<usize>,

    /// The API key's limit, in any sliding window: 100/min, or faster for a sandbox
    /// [default: 100/min, or as the unfinished job it resumes began].
    #[arg(long)]
    pub rate: Option<Rate>,

    /// When a create finds what it would make already there: skip (record "already existed"),
    /// update it to match the row, or fail the row.
    #[arg(long, default_value = "skip", ignore_case = true)]
    pub existing: Existing,

    /// Run the valid rows and record the invalid ones as such, instead of refusing to start.
    #[arg(long)]
    pub skip_invalid: bool,

    /// Start a new job even though this input has an unfinished one (which is left as it is;
    /// what it made is found and recorded as already existed).
    #[arg(long)]
    pub new_job: bool,

    /// Skip the online pre-flight (customers, numbers, products and postcodes checked against
    /// the account with List calls before any write).
    #[arg(long)]
    pub no_preflight: bool,

    /// Longest wait for one response, e.g. 10s [default: 30s].
    #[arg(long, value_parser = positive_duration)]
    pub timeout: Option<std::time::Duration>,

    /// How long the API may be unreachable before the job stops (resumable); meanwhile it
    /// waits and tries again [default: 15m, or as the unfinished job it resumes began].
    #[arg(long, value_parser = duration)]
    pub max_outage: Option<std::time::Duration>,

    /// API base URL [default: PLBULK_BASE_URL, the config file, or the PL+ production URL].
    #[arg(long)]
    pub base_url: Option<String>,

    /// Print the final summary as one JSON document (as status --json), and nothing else on
    /// stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// Job id, or the start of one [default: the latest unfinished job].
    pub job: Option<String>,

    /// The mapping file the job ran with, if it has moved: refused unless it is that file as
    /// it was [default: the one the job recorded, checked where it was].
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,

    /// Folder that holds the jobs.
    #[arg(long, env = "PLBULK_JOB_DIR")]
    pub job_dir: Option<PathBuf>,

    /// Requests in flight at once [default: as the job began].
    #[arg(long)]
    pub concurrency: Option<usize>,

    /// The key's limit [default: as the job began].
    #[arg(long)]
    pub rate: Option<Rate>,

    /// Results workbook [default: as the job began].
    #[arg(long)]
    pub results: Option<PathBuf>,

    /// Replace a file at the results path that plbulk would otherwise keep (one it did not
    /// write for this job, or a to-fix file changed since). An input is never replaced.
    #[arg(long)]
    pub overwrite: bool,

    /// How long the API may be unreachable before the job stops again [default: as the job
    /// began].
    #[arg(long, value_parser = duration)]
    pub max_outage: Option<std::time::Duration>,
}

#[derive(Args, Debug)]
pub struct UndoArgs {
    /// The job to undo: its id, or the start of one.
    pub job: String,

    /// Folder that holds the jobs.
    #[arg(long, env = "PLBULK_JOB_DIR")]
    pub job_dir: Option<PathBuf>,

    /// List what undo would do, with counts and the time it takes at the limit; send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Put back, and remove, even what was changed since the job by someone else.
    #[arg(long)]
    pub force: bool,

    /// Start without asking. On a terminal undo lists what it will do and asks first; from a
    /// script (no terminal) it never asks.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Requests in flight at once.
    #[arg(long)]
    pub concurrency: Option<usize>,

    /// The key's limit [default: as the job ran].
    #[arg(long)]
    pub rate: Option<Rate>,

    /// Results workbook [default: beside the job's, ending .undo.xlsx].
    #[arg(long)]
    pub results: Option<PathBuf>,

    /// Replace a file at the results path that plbulk would otherwise keep. (Not --force,
    /// which says what the undo may put back.)
    #[arg(long)]
    pub overwrite: bool,

    /// Undo a rehearsal (its account is the one it ran on, with or without this flag); a real
    /// job is refused.
    #[arg(long)]
    pub sandbox: bool,
}

#[derive(Args, Debug)]
pub struct AbandonArgs {
    /// The unfinished job to give up: its id, or the start of one.
    pub job: String,

    /// Folder that holds the jobs.
    #[arg(long, env = "PLBULK_JOB_DIR")]
    pub job_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Job id, or the start of one [default: the latest unfinished job, else the latest].
    pub job: Option<String>,

    /// Folder that holds the jobs.
    #[arg(long, env = "PLBULK_JOB_DIR")]
    pub job_dir: Option<PathBuf>,

    /// Print one JSON document: id, state, outcomes per sheet, calls, results and journal paths
    /// (schema 1; the README's "JSON for scripts" gives every field).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ResultsArgs {
    /// Job id, or the start of one [default: the latest unfinished job, else the latest].
    pub job: Option<String>,

    /// Folder that holds the jobs.
    #[arg(long, env = "PLBULK_JOB_DIR")]
    pub job_dir: Option<PathBuf>,

    /// Where to write [default: the job's results file]. With --format csv, the CSV files are
    /// named after it, one per sheet: NAME.SHEET.csv.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// xlsx, or csv (UTF-8 with a BOM; cells that would start a formula get a leading ').
    #[arg(long, value_enum, default_value_t = ResultsFormat::Xlsx)]
    pub format: ResultsFormat,

    /// Replace a file at --out that is not this job's results workbook. An input of the job
    /// is never replaced.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// customers, users, numbers, blocked or orders.
    #[arg(value_parser = export_what)]
    pub what: ExportWhat,

    /// Only this customer (an id or a company name).
    #[arg(long)]
    pub customer: Option<String>,

    /// The file to write: a workbook (.xlsx) or a CSV file (.csv), by its extension.
    #[arg(long)]
    pub out: PathBuf,

    /// Replace a file already at --out (an export is edited, so one is kept otherwise).
    #[arg(long)]
    pub overwrite: bool,

    /// API base URL [default: PLBULK_BASE_URL, the config file, or the PL+ production URL].
    #[arg(long)]
    pub base_url: Option<String>,

    /// The key's limit, for the export's calls.
    #[arg(long, default_value_t = Rate::default())]
    pub rate: Rate,

    /// Export the rehearsal account (what `--sandbox` runs on) instead.
    #[arg(long, conflicts_with = "base_url")]
    pub sandbox: bool,
}

#[derive(Args, Debug)]
pub struct JobsArgs {
    /// Folder that holds the jobs.
    #[arg(long, env = "PLBULK_JOB_DIR")]
    pub job_dir: Option<PathBuf>,

    /// Print one JSON document: every job, as status --json shows one.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// CSV files (.csv, .tsv, .txt) and workbooks (.xlsx, .xlsm, .xls, .ods).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// What a CSV file (or a one-sheet workbook whose sheet has another name) holds:
    /// customers, users, numbers, blocked-numbers, devices, orders, user-settings, partner-users.
    #[arg(long, value_parser = kind_arg)]
    pub kind: Option<Kind>,

    /// A mapping file (TOML) that reads another system's export as a plbulk sheet: its kind,
    /// which of its columns is which, how its values translate. `plbulk map init` writes a
    /// first one.
    #[arg(long, value_name = "FILE", conflicts_with = "kind")]
    pub map: Option<PathBuf>,

    /// Where to write the report workbook [default: FIRST-FILE.validation.xlsx beside it].
    #[arg(long, conflicts_with = "no_report")]
    pub report: Option<PathBuf>,

    /// Print the summary only; write no report workbook.
    #[arg(long)]
    pub no_report: bool,

    /// Replace a file at the report's path that is not a validation report. An input is
    /// never replaced.
    #[arg(long, conflicts_with = "no_report")]
    pub overwrite: bool,

    /// How many findings to print.
    #[arg(long, default_value_t = 20)]
    pub show: usize,

    /// Also check what only the account knows (referenced customers, available numbers,
    /// products, delivery postcodes, what already exists), with paced List calls. Uses the
    /// credentials and endpoint as `run` does.
    #[arg(long)]
    pub online: bool,

    /// API base URL for --online.
    #[arg(long)]
    pub base_url: Option<String>,

    /// The key's limit, for --online's calls.
    #[arg(long, default_value_t = Rate::default())]
    pub rate: Rate,

    /// With --online: check against the rehearsal account (what `--sandbox` runs on).
    #[arg(long, requires = "online", conflicts_with = "base_url")]
    pub sandbox: bool,
}

#[derive(Subcommand, Debug)]
pub enum MapCommand {
    /// Guess a mapping from exports: each column from its header and its values, each choice
    /// column's values listed to fill in. Prints what it could not guess.
    #[command(after_help = EX_MAP_INIT)]
    Init(MapInitArgs),
}

#[derive(Args, Debug)]
pub struct MapInitArgs {
    /// The export(s): CSV files or workbooks with the same columns.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// The plbulk sheet the rows become: customers, users, numbers, blocked-numbers, devices,
    /// orders, user-settings, partner-users [default: guessed from the columns].
    #[arg(long, value_parser = kind_arg)]
    pub kind: Option<Kind>,

    /// Which sheet of a workbook [default: its only sheet].
    #[arg(long)]
    pub sheet: Option<String>,

    /// Where to write the mapping.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Replace a file already at --out (a mapping is edited, so one is kept otherwise).
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args, Debug)]
pub struct TemplateArgs {
    /// A kind (customers, users, numbers, blocked-numbers, devices, orders, user-settings,
    /// partner-users), or all: every kind's template and the onboarding workbook.
    #[arg(default_value = "all")]
    pub kind: String,

    /// Folder to write into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,

    /// Replace template files already in the folder (they may hold filled-in rows, so they
    /// are kept otherwise).
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args, Debug)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub action: Option<SandboxAction>,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Requests allowed per key in any sliding window, e.g. 100/min, 20/2s.
    #[arg(long, default_value_t = Rate::default())]
    pub rate: Rate,

    /// Fraction of requests answered 500/503 without being processed (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,

    /// Fraction of successful creates committed and then answered by a closed connection (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,

    /// Fraction of writes applied and then answered by a gateway's 502 or 504 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub gateway_error_rate: f64,

    /// Fraction of writes held for --late-commit-ms before they are applied, so that a client
    /// with a shorter timeout gives up on a change that still lands (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub late_commit_rate: f64,

    /// Fraction of writes whose connection closes before they are handled: nothing applied,
    /// no answer (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub lost_rate: f64,

    /// How long a late write is held, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    pub late_commit_ms: u64,

    /// Fraction of requests answered 200 with an HTML page by something in front of the API
    /// (a captive portal, a firewall); a seeded draw decides whether the request was applied
    /// first or never passed on (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub page_rate: f64,

    /// Fraction of successful answers cut off half-way after the change is applied: the right
    /// status and JSON content type, a body that does not parse (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub truncate_rate: f64,

    /// Give a 429's Retry-After as an HTTP date (Fri, 04 Dec 2026 15:02:10 GMT) instead of
    /// seconds.
    #[arg(long)]
    pub retry_after_date: bool,

    /// An outage counted from the sandbox's start, MODE:AFTER:FOR: refuse:10s:90s refuses
    /// connections, hang:1m:30s accepts them and answers nothing. Repeatable.
    #[arg(long = "outage", value_name = "MODE:AFTER:FOR")]
    pub outages: Vec<PlannedOutage>,

    /// Chance that a request starts an outage of --outage-for (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub outage_rate: f64,

    /// How long an outage started by --outage-rate lasts, e.g. 30s.
    #[arg(long, value_parser = positive_duration)]
    pub outage_for: Option<std::time::Duration>,

    /// What an outage started by --outage-rate does: refuse or hang.
    #[arg(long, default_value = "refuse")]
    pub outage_mode: OutageMode,

    /// A spell of the key refused (as after a rotation in the partner portal), counted from the
    /// sandbox's start, AFTER:FOR: 10s:90s. Auth and every call answer 401; tokens issued
    /// before it stay refused. Repeatable.
    #[arg(long = "key-refused", value_name = "AFTER:FOR")]
    pub key_refused: Vec<PlannedRefusal>,

    /// Chance that a request starts a spell of the key refused of --key-refused-for (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub key_refused_rate: f64,

    /// How long a key refusal started by --key-refused-rate lasts, e.g. 30s.
    #[arg(long, value_parser = positive_duration)]
    pub key_refused_for: Option<std::time::Duration>,

    /// Start from an account state saved before (a rehearsal account's account.json),
    /// instead of an empty account. Nothing is written back to it.
    #[arg(long, conflicts_with = "account")]
    pub state: Option<PathBuf>,

    /// Serve the rehearsal account (what `--sandbox` runs on), keeping every write in it, for
    /// scripts to rehearse against over HTTP. It is held while the server runs.
    #[arg(long)]
    pub account: bool,

    /// Added latency in milliseconds: 150, or a range such as 100-200.
    #[arg(long, default_value = "0")]
    pub latency_ms: Latency,

    /// Seed for the fault injection, so that a run can be repeated.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// How long an access token lives, e.g. 1h, 10m, 30s.
    #[arg(long, default_value = "1h", value_parser = positive_duration)]
    pub token_ttl: std::time::Duration,

    /// API key the sandbox accepts.
    #[arg(long, default_value = crate::sandbox::DEFAULT_KEY)]
    pub key: String,

    /// Secret for --key.
    #[arg(long, default_value = crate::sandbox::DEFAULT_SECRET)]
    pub secret: String,

    /// Largest page size the sandbox gives, whatever a client asks for.
    #[arg(long, default_value_t = crate::contract::MAX_PAGE_SIZE)]
    pub max_page_size: u32,

    /// Write the URL the sandbox listens on to this file once it is ready (for scripts).
    #[arg(long)]
    pub url_file: Option<PathBuf>,
}

/// What `plbulk sandbox` does besides serving.
#[derive(Subcommand, Debug)]
pub enum SandboxAction {
    /// Where the rehearsal account is, what it holds per kind, when it last changed, and which
    /// job or process has it open.
    Status {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Empty the rehearsal account (refused while a process has it open), and say what it held.
    Reset,
}

/// A `--kind` as a kind of row, in any of the spellings a sheet's name may take
/// ("blocked-numbers", "Blocked Numbers", "blocked"), or the choices.
pub fn kind_arg(s: &str) -> Result<Kind, String> {
    Kind::from_name(s).ok_or_else(|| {
        let names = crate::schema::kind_names(Kind::cli_name);
        format!("{s:?} is not a kind of row: use one of {names}")
    })
}

/// What `plbulk results` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResultsFormat {
    /// One workbook.
    Xlsx,
    /// One CSV file per sheet.
    Csv,
}

/// What `plbulk export` reads from the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportWhat {
    Customers,
    Users,
    Numbers,
    #[value(alias = "blocked-numbers")]
    Blocked,
    Orders,
}

/// An export's argument, in any case ("Blocked-Numbers" too), or the choices.
fn export_what(s: &str) -> Result<ExportWhat, String> {
    ExportWhat::from_str(s.trim(), true).map_err(|_| {
        format!("{s:?} cannot be exported: use customers, users, numbers, blocked or orders")
    })
}

impl ExportWhat {
    /// The kind of row whose template it is written in.
    pub fn kind(self) -> Kind {
        match self {
            ExportWhat::Customers => Kind::Customers,
            ExportWhat::Users => Kind::Users,
            ExportWhat::Numbers => Kind::Numbers,
            ExportWhat::Blocked => Kind::BlockedNumbers,
            ExportWhat::Orders => Kind::Orders,
        }
    }
}

/// `--existing`'s choices, listed in `--help` and completions (the engine's own names).
impl ValueEnum for Existing {
    fn value_variants<'a>() -> &'a [Existing] {
        &[Existing::Skip, Existing::Update, Existing::Fail]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Existing::Skip => "skip",
            Existing::Update => "update",
            Existing::Fail => "fail",
        }))
    }
}

/// A length of time as a flag gives it (30s, 2m, 1m30s, 1h), or what to type instead: the
/// parser's own "expected number at 0" says nothing to someone who typed "abc".
fn duration(v: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(v.trim())
        .map_err(|_| format!("{v:?} is not a length of time: write it like 30s, 2m or 1m30s"))
}

/// A length of time that must be more than nothing: a timeout of 0s would fail every request.
fn positive_duration(v: &str) -> Result<std::time::Duration, String> {
    let d = duration(v)?;
    if d.is_zero() {
        return Err(format!(
            "{v:?} is no time at all: give a length of time such as 30s"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_say_what_to_type() {
        assert_eq!(duration("1m30s"), Ok(std::time::Duration::from_secs(90)));
        let e = duration("abc").unwrap_err();
        assert!(
            e.contains("not a length of time") && e.contains("30s"),
            "{e}"
        );
        assert!(positive_duration("0s")
            .unwrap_err()
            .contains("no time at all"));
        assert_eq!(duration("0s"), Ok(std::time::Duration::ZERO));
    }

    /// The job timeout's default is the pipeline's (a run and the page use it alike); the help
    /// says it, and must say it right.
    #[test]
    fn runs_help_says_the_pipelines_default_timeout() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let run = cmd.find_subcommand("run").unwrap();
        let help = run
            .get_arguments()
            .find(|a| a.get_id() == "timeout")
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let default = humantime::format_duration(crate::pipeline::DEFAULT_TIMEOUT).to_string();
        assert!(help.contains(&format!("[default: {default}]")), "{help}");
    }

    /// Issue 20: the choices are typed where clap reads them, in the spellings users type.
    #[test]
    fn choices_are_typed_at_the_edge() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "plbulk",
            "run",
            "x.csv",
            "--kind",
            "Blocked Numbers",
            "--existing",
            "UPDATE",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.kind, Some(Kind::BlockedNumbers));
        assert_eq!(args.existing, Existing::Update);
        let e = Cli::try_parse_from(["plbulk", "validate", "x.csv", "--kind", "phones"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"phones\" is not a kind of row: use one of customers"),
            "{e}"
        );
        for (typed, kind) in [
            ("blocked", Kind::BlockedNumbers),
            ("Blocked-Numbers", Kind::BlockedNumbers),
            ("orders", Kind::Orders),
        ] {
            let cli = Cli::try_parse_from(["plbulk", "export", typed, "--out", "x.xlsx"]).unwrap();
            let Command::Export(args) = cli.command else {
                panic!("not export")
            };
            assert_eq!(args.what.kind(), kind);
        }
        let e = Cli::try_parse_from(["plbulk", "export", "devices", "--out", "x.xlsx"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"devices\" cannot be exported: use customers"),
            "{e}"
        );
        let cli = Cli::try_parse_from(["plbulk", "results", "--format", "csv"]).unwrap();
        let Command::Results(args) = cli.command else {
            panic!("not results")
        };
        assert_eq!(args.format, ResultsFormat::Csv);
    }

    #[test]
    fn a_bare_rate_is_read_as_the_count_a_minute_it_likely_meant() {
        let e = "100".parse::<Rate>().unwrap_err().to_string();
        assert!(e.contains("100/min"), "{e}");
    }
}
