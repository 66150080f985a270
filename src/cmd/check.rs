//! `plbulk check`: the credentials read as a job reads them, a token asked for, and Get Stats
//! called, so a partner knows before a job which endpoint and key it would use, or exactly
//! what is wrong: no key, a config file others can read, a secret refused, no endpoint.

use std::sync::Arc;

use crate::cli::CheckArgs;
use crate::client::credentials::{config_path, Settings};
use crate::client::{Client, ClientConfig};
use crate::contract::Operation;
use crate::job::{budget_key, budget_path};
use crate::journal::budget::SharedBudget;
use crate::pacing::Pacer;

use super::{Error, EXIT_OK};

pub async fn run(args: CheckArgs, quiet: bool) -> Result<i32, Error> {
    if args.sandbox {
        return rehearsal(args, quiet).await;
    }
    let settings = Settings::load(args.base_url.as_deref())
        .map_err(|e| Error::Refused(format!("the settings cannot be read: {e}")))?;
    let base_url = crate::client::normalize_base_url(&settings.base_url)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let Some((credentials, source)) = settings.credentials.clone() else {
        let file = config_path()
            .map(|p| format!(", or api_key and api_secret in {}", p.display()))
            .unwrap_or_default();
        return Err(Error::Refused(format!(
            "no API key is set for {base_url}: set PLBULK_API_KEY and PLBULK_API_SECRET{file}"
        )));
    };
    if !quiet {
        outln!("Endpoint: {base_url}");
        outln!("API key:  {} (from {source})", credentials.key_id);
    }
    let key = credentials.key_id.clone();
    // Its two calls spend from the key's budget like a job's: a check beside a running job
    // must not draw a 429.
    let budget = SharedBudget::open(&budget_path(), &budget_key(&base_url, &key), args.rate)
        .map_err(|e| Error::Journal(e.to_string()))?;
    let mut config = ClientConfig::new(base_url.clone(), credentials);
    config.timeout = args.timeout;
    config.connect_timeout = args.timeout;
    config.pacer = Some(Arc::new(budget) as Arc<dyn Pacer>);
    // One try: a check says what is wrong now, rather than wait out the retries of a job.
    config.retry.max_attempts = 1;
    let client = Client::new(config).map_err(|e| Error::Usage(e.to_string()))?;
    let stats = client.get_stats().await.map_err(|e| match (e.status, e.operation) {
        (None, _) => Error::Network(format!(
            "cannot reach {base_url}: {}. Check the base URL (--base-url, PLBULK_BASE_URL or base_url in the config file) and the network",
            e.detail()
        )),
        (Some(401 | 403), Operation::GetJwt) => Error::Api(format!(
            "the API refused key {key}'s secret (HTTP {}): check PLBULK_API_SECRET (or api_secret), or ask PL+ whether the key is still active",
            e.status.unwrap_or_default()
        )),
        (Some(status), op) => Error::Api(format!(
            "{} answered HTTP {status}: {}",
            op.name(),
            e.detail()
        )),
    })?;
    outln!(
        "OK: the key authenticates, and the account has {}, {} and {}.",
        crate::words::count(stats.customers as u64, "customer"),
        crate::words::count(stats.users as u64, "user"),
        crate::words::count(stats.numbers as u64, "number")
    );
    Ok(EXIT_OK)
}

/// `check --sandbox`: the rehearsal account read through an in-process sandbox, as a
/// rehearsal reads it, with its counts.
async fn rehearsal(args: CheckArgs, quiet: bool) -> Result<i32, Error> {
    let place = crate::rehearsal::Place::shared();
    let conn = crate::pipeline::look(args.rate, true, None).await?;
    let stats = conn.client.get_stats().await;
    conn.close().await;
    let stats = stats.map_err(|e| Error::reading("reading the rehearsal account", &e))?;
    if !quiet {
        outln!(
            "Endpoint: {}, through an in-process sandbox (no credentials needed)",
            place.describe()
        );
    }
    outln!(
        "OK: the rehearsal account has {} customers, {} users and {} numbers{}.",
        stats.customers,
        stats.users,
        stats.numbers,
        if place.modified().is_none() {
            " (nothing rehearsed on it yet)"
        } else {
            ""
        }
    );
    Ok(EXIT_OK)
}
