//! One module per verb. Each turns its raw flags into checked settings, calls into the library
//! and returns an exit code; this module sets up logging and maps errors to codes and one line
//! on stderr, as xsv and ripgrep do.

/// `println!` for the verbs: a closed stdout (see [`print_line`]) ends their printing quietly.
macro_rules! outln {
    () => {
        $crate::cmd::print_line(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::cmd::print_line(format_args!($($t)*))
    };
}

mod check;
mod export;
mod jobs;
mod map;
mod run;
mod sandbox;
mod template;
mod ui;
mod undo;
mod validate;

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::{Cli, Command};

/// Whether stdout's reader has gone.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes a line to stdout. A closed pipe (`plbulk jobs | head -1`) is not an error, as for
/// every Unix tool: the reader has what it wanted, so nothing more is printed, and the command
/// goes on to its end. A job keeps running: its journal and results do not depend on a
/// terminal.
pub(crate) fn print_line(args: fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{args}").and_then(|()| out.flush()).is_err() {
        STDOUT_GONE.store(true, Ordering::Relaxed);
    }
}

/// A JSON document as the verbs print it: pretty, for a person reading it too.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("status documents serialise")
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_ROWS_FAILED: i32 = 1;
pub const EXIT_REFUSED: i32 = 2;
pub const EXIT_INTERRUPTED: i32 = 3;

/// A verb's failure, by category: the pipeline's ([`crate::pipeline::Error`]), as every verb
/// shares it.
pub use crate::pipeline::Error;

impl Error {
    /// Every category is a refusal to go on (exit 2); a finished job's exit codes are the
    /// verbs' own.
    fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::Input(_)
            | Error::Network(_)
            | Error::Api(_)
            | Error::Journal(_)
            | Error::Io(_)
            | Error::Refused(_) => EXIT_REFUSED,
        }
    }
}

pub(crate) use crate::outputs::beside;

/// A template argument as a kind (its "all" is the template verb's), or a usage error listing
/// the choices.
pub(crate) fn parse_kind(s: &str) -> Result<crate::schema::Kind, Error> {
    crate::cli::kind_arg(s).map_err(Error::Usage)
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_env("PLBULK_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("plbulk={level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn main(cli: Cli) -> i32 {
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_REFUSED;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args, cli.quiet).await,
            Command::Resume(args) => run::resume(args, cli.quiet).await,
            Command::Status(args) => jobs::status(args),
            Command::Jobs(args) => jobs::list(args),
            Command::Results(args) => jobs::write_results(args, cli.quiet),
            Command::Export(args) => export::run(args, cli.quiet).await,
            Command::Sandbox(args) => sandbox::run(args, cli.quiet).await,
            Command::Validate(args) => validate::run(args, cli.quiet).await,
            Command::Map(cmd) => map::run(cmd, cli.quiet),
            Command::Template(args) => template::run(args, cli.quiet),
            Command::Undo(args) => undo::run(args, cli.quiet).await,
            Command::Abandon(args) => undo::abandon(args, cli.quiet),
            Command::Check(args) => check::run(args, cli.quiet).await,
            Command::Ui(args) => ui::run(args, cli.quiet).await,
            Command::Completions(args) => Ok(completions(args.shell)),
            Command::Man => man(),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

/// `plbulk completions SHELL`: the script, from the same definitions as `--help`.
fn completions(shell: clap_complete::Shell) -> i32 {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "plbulk", &mut out);
    outln!("{}", String::from_utf8_lossy(&out).trim_end());
    EXIT_OK
}

/// `plbulk man`: the man page in roff, from the same definitions as `--help`.
fn man() -> Result<i32, Error> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| Error::Io(format!("cannot write the man page: {e}")))?;
    outln!("{}", String::from_utf8_lossy(&out).trim_end());
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ApiError, ErrorKind};
    use crate::contract::Operation;

    /// Issue 12: a failed read of the account says which kind of failure it was.
    #[test]
    fn a_failed_read_is_a_network_or_an_api_error_by_what_came_back() {
        let unreachable = ApiError {
            kind: ErrorKind::Transient,
            operation: Operation::ListCustomers,
            status: None,
            code: Some("connect".into()),
            message: "could not connect".into(),
            fields: Default::default(),
            retry_after: None,
            attempts: 5,
            content_type: None,
            from_api: false,
        };
        let e = Error::reading("listing", &unreachable);
        assert!(
            e.to_string()
                .starts_with("network error: listing: could not connect"),
            "{e}"
        );
        let refused = ApiError {
            status: Some(403),
            ..unreachable
        };
        assert!(Error::reading("listing", &refused)
            .to_string()
            .starts_with("API error: "));
        assert_eq!(Error::Journal("x".into()).exit_code(), EXIT_REFUSED);
    }
}
