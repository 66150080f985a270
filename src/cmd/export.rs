//! `plbulk export`: the account's state into an import template, paced like any job.

use crate::cli::ExportArgs;
use crate::export::{self, ExportError};

use super::{Error, EXIT_OK};

pub async fn run(args: ExportArgs, quiet: bool) -> Result<i32, Error> {
    let kind = args.what.kind();
    // Before any call: the file's format by its extension, and a file there kept.
    let format = crate::outputs::export(&args.out, args.overwrite)?;
    let conn = crate::pipeline::look(args.rate, args.sandbox, args.base_url.as_deref()).await?;
    let result = export::export(
        &conn.client,
        kind,
        args.customer.as_deref(),
        &args.out,
        format,
    )
    .await;
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
