//! `plbulk export`: the account's state into an import template, paced like any job.

use crate::cli::ExportArgs;
use crate::client::Settings;
use crate::export::{self, ExportError};
use crate::job::{Connection, JobOptions};

use super::{Error, EXIT_OK};

pub async fn run(args: ExportArgs, quiet: bool) -> Result<i32, Error> {
    let kind = export::kind_of(&args.what).ok_or_else(|| {
        Error::Usage(format!(
            "{:?} cannot be exported: use customers, users, numbers, blocked or orders",
            args.what
        ))
    })?;
    let settings =
        Settings::load(args.base_url.as_deref()).map_err(|e| Error::Refused(e.to_string()))?;
    let options = JobOptions::reading(args.rate);
    let conn = Connection::open(&options, Some(&settings), None).await?;
    let result = export::export(&conn.client, kind, args.customer.as_deref(), &args.out).await;
    conn.close().await;
    let n = result.map_err(|e| match e {
        ExportError::Write { .. } => Error::Io(e.to_string()),
        ExportError::Api(api) => Error::reading("reading the account", &api),
        ExportError::Refused(m) => Error::Refused(m),
    })?;
    if !quiet {
        outln!(
            "Exported {n} row{} of {} to {}",
            if n == 1 { "" } else { "s" },
            kind.sheet_name(),
            args.out.display()
        );
    }
    Ok(EXIT_OK)
}
