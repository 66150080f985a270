//! `plbulk check`: the credentials read as a job reads them, a token asked for, and Get Stats
//! called, so a partner knows before a job which endpoint and key it would use, or exactly
//! what is wrong: no key, a config file others can read, a secret refused, no endpoint. The
//! checks themselves are [`crate::account`]'s, which the page of `plbulk ui` calls too.

use crate::account;
use crate::cli::CheckArgs;

use super::{Error, EXIT_OK};

pub async fn run(args: CheckArgs, quiet: bool) -> Result<i32, Error> {
    if args.sandbox {
        return rehearsal(args, quiet).await;
    }
    let configured = account::configured(args.base_url.as_deref())?.key()?;
    if !quiet {
        outln!("Endpoint: {}", configured.base_url);
        outln!(
            "API key:  {} (from {})",
            configured.credentials.key_id,
            configured.source
        );
    }
    let stats = account::check(&configured, args.timeout, args.rate).await?;
    outln!(
        "OK: the key authenticates, and the account has {}.",
        account::holds(&stats)
    );
    Ok(EXIT_OK)
}

/// `check --sandbox`: the rehearsal account read through an in-process sandbox, as a
/// rehearsal reads it, with its counts.
async fn rehearsal(args: CheckArgs, quiet: bool) -> Result<i32, Error> {
    let place = crate::rehearsal::Place::shared();
    let stats = account::check_rehearsal(args.rate).await?;
    if !quiet {
        outln!(
            "Endpoint: {}, through an in-process sandbox (no credentials needed)",
            place.describe()
        );
    }
    outln!(
        "OK: the rehearsal account has {}{}.",
        account::holds(&stats),
        if place.modified().is_none() {
            " (nothing rehearsed on it yet)"
        } else {
            ""
        }
    );
    Ok(EXIT_OK)
}
