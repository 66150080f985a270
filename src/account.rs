//! Which account plbulk works on, and whether it answers: the settings' endpoint and key (or
//! the rehearsal account), a check of them with a token and Get Stats, and, for a partner who
//! has never seen a config file, a key and secret tried with one token request and saved.
//!
//! `plbulk check` and the page of `plbulk ui` both say the same things through these calls,
//! so a check on the page and one in a terminal cannot disagree.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::client::credentials::{config_path, ConfigError, Credentials, Settings, Source};
use crate::client::{Client, ClientConfig};
use crate::contract::{Operation, Stats};
use crate::job::{budget_key, budget_path};
use crate::journal::budget::SharedBudget;
use crate::pacing::{Pacer, Rate};
use crate::pipeline::Error;

/// The endpoint and key the settings point at, as a check reports them.
#[derive(Debug, Clone)]
pub struct Configured {
    pub base_url: String,
    pub credentials: Credentials,
    pub source: Source,
}

/// What the settings hold: a key for an endpoint, or no key yet.
#[derive(Debug, Clone)]
pub enum Settled {
    Set(Configured),
    /// No key is set for `base_url`: a partner's first day, not an error of the settings.
    NoKey {
        base_url: String,
    },
}

impl Settled {
    /// The key, or a refusal that says where to set one.
    pub fn key(self) -> Result<Configured, Error> {
        match self {
            Settled::Set(c) => Ok(c),
            Settled::NoKey { base_url } => {
                let file = config_path()
                    .map(|p| format!(", or api_key and api_secret in {}", p.display()))
                    .unwrap_or_default();
                Err(Error::Refused(format!(
                    "no API key is set for {base_url}: set PLBULK_API_KEY and PLBULK_API_SECRET{file}"
                )))
            }
        }
    }
}

/// The settings' endpoint and key (`base_url_flag` first), whether a key is set, or why the
/// settings cannot be read.
pub fn configured(base_url_flag: Option<&str>) -> Result<Settled, Error> {
    let settings = Settings::load(base_url_flag)
        .map_err(|e| Error::Refused(format!("the settings cannot be read: {e}")))?;
    let base_url = crate::client::normalize_base_url(&settings.base_url)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let Some((credentials, source)) = settings.credentials.clone() else {
        return Ok(Settled::NoKey { base_url });
    };
    Ok(Settled::Set(Configured {
        base_url,
        credentials,
        source,
    }))
}

/// A client for one check: one try per request (a check says what is wrong now, rather than
/// wait out the retries of a job), spending from the key's budget like a job (a check beside
/// a running job must not draw a 429).
fn check_client(
    base_url: &str,
    credentials: Credentials,
    timeout: Duration,
    rate: Rate,
) -> Result<Client, Error> {
    let budget = SharedBudget::open(
        &budget_path(),
        &budget_key(base_url, &credentials.key_id),
        rate,
    )
    .map_err(|e| Error::Journal(e.to_string()))?;
    let mut config = ClientConfig::new(base_url.to_string(), credentials);
    config.timeout = timeout;
    config.connect_timeout = timeout;
    config.pacer = Some(Arc::new(budget) as Arc<dyn Pacer>);
    config.retry.max_attempts = 1;
    Client::new(config).map_err(|e| Error::Usage(e.to_string()))
}

/// What a failed call of a check means, in words that say where to look.
fn check_failed(base_url: &str, key: &str, e: &crate::client::ApiError) -> Error {
    match (e.status, e.operation) {
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
    }
}

/// Checks `account`: a token, then Get Stats, as a job would make them.
pub async fn check(account: &Configured, timeout: Duration, rate: Rate) -> Result<Stats, Error> {
    let key = account.credentials.key_id.clone();
    let client = check_client(
        &account.base_url,
        account.credentials.clone(),
        timeout,
        rate,
    )?;
    client
        .get_stats()
        .await
        .map_err(|e| check_failed(&account.base_url, &key, &e))
}

/// Tries a key and secret a partner typed on `base_url` with one token request: Ok when the
/// API gives a token for them.
pub async fn try_key(
    base_url: &str,
    credentials: Credentials,
    timeout: Duration,
    rate: Rate,
) -> Result<(), Error> {
    let base_url =
        crate::client::normalize_base_url(base_url).map_err(|e| Error::Usage(e.to_string()))?;
    let key = credentials.key_id.clone();
    let client = check_client(&base_url, credentials, timeout, rate)?;
    client.authenticate().await.map_err(|e| match e.status {
        // Typed, not set in a variable or a file: said in the partner's words.
        Some(status @ (401 | 403)) => Error::Api(format!(
            "the API refused key {key} with this secret (HTTP {status}): copy the key and the secret again from the partner portal, or ask PL+ whether the key is still active"
        )),
        _ => check_failed(&base_url, &key, &e),
    })
}

/// The rehearsal account's counts, as a rehearsal reads it (the account as last kept,
/// through an in-process sandbox; nothing is kept and no lock is taken).
pub async fn check_rehearsal(rate: Rate) -> Result<Stats, Error> {
    let conn = crate::pipeline::look(rate, true, None).await?;
    let stats = conn.client.get_stats().await;
    conn.close().await;
    stats.map_err(|e| Error::reading("reading the rehearsal account", &e))
}

/// What an account holds, as a check says it: "3 customers, 12 users and 9 numbers".
pub fn holds(stats: &Stats) -> String {
    format!(
        "{}, {} and {}",
        crate::words::count(stats.customers, "customer"),
        crate::words::count(stats.users, "user"),
        crate::words::count(stats.numbers, "number")
    )
}

/// Where a key typed on the page is saved: the config file, by its path.
pub fn config_file() -> Result<PathBuf, Error> {
    config_path().ok_or_else(|| {
        Error::Refused(
            "this machine has no config folder for plbulk: set PLBULK_CONFIG to the file to keep the key in".into(),
        )
    })
}

/// Saves `credentials` to the config file at `path`, readable by its owner only, keeping the
/// base URL it names (if any). The file is written whole and renamed into place.
pub fn save_key(path: &Path, credentials: &Credentials) -> Result<(), Error> {
    let io = |what: &str, e: std::io::Error| {
        Error::Refused(format!("cannot {what} {}: {e}", path.display()))
    };
    // Read as a job reads it: a file others can read, or one that does not parse, is said so
    // rather than overwritten.
    let kept_base_url = match Settings::load_from(
        None,
        &NoEnv,
        Some(path).filter(|p| p.exists()).map(|p| p as &Path),
    ) {
        Ok(s) if s.base_url != crate::contract::DEFAULT_BASE_URL => Some(s.base_url),
        Ok(_) => None,
        Err(e @ (ConfigError::Parse { .. } | ConfigError::TooOpen { .. })) => {
            return Err(Error::Refused(format!("{e}; the key was not saved")))
        }
        Err(e) => return Err(Error::Refused(e.to_string())),
    };
    let mut text = String::from("# plbulk's settings, written by plbulk ui. Readable by its owner only: it holds the API secret.\n");
    text.push_str(&format!("api_key = {}\n", toml_string(&credentials.key_id)));
    text.push_str(&format!(
        "api_secret = {}\n",
        toml_string(credentials.secret.expose())
    ));
    if let Some(url) = kept_base_url {
        text.push_str(&format!("base_url = {}\n", toml_string(&url)));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("create the folder of", e))?;
    }
    crate::atomic_write(path, text.as_bytes()).map_err(|e| io("write", e))?;
    // A file replaced keeps its mode; this one holds the secret, so it is the owner's alone
    // whatever it was.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("make private", e))?;
    }
    Ok(())
}

/// A TOML basic string: quotes and backslashes escaped, and control characters too.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// No environment: the config file's own contents, for [`save_key`].
struct NoEnv;

impl crate::client::credentials::Env for NoEnv {
    fn get(&self, _: &str) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_saved_key_is_private_reads_back_and_keeps_the_base_url() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        save_key(&path, &Credentials::new("pk_1", "se\"cr\\et")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let s = Settings::load_from(None, &NoEnv, Some(&path)).unwrap();
        let (c, _) = s.credentials.unwrap();
        assert_eq!(
            (c.key_id.as_str(), c.secret.expose()),
            ("pk_1", "se\"cr\\et")
        );

        // A base URL the partner set is kept when a new key replaces the old one.
        std::fs::write(
            &path,
            "api_key = \"a\"\napi_secret = \"b\"\nbase_url = \"http://127.0.0.1:9\"\n",
        )
        .unwrap();
        save_key(&path, &Credentials::new("pk_2", "s2")).unwrap();
        let s = Settings::load_from(None, &NoEnv, Some(&path)).unwrap();
        assert_eq!(s.base_url, "http://127.0.0.1:9");
        assert_eq!(s.credentials.unwrap().0.key_id, "pk_2");
    }

    #[cfg(unix)]
    #[test]
    fn a_config_file_others_can_read_is_not_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "api_key = \"a\"\napi_secret = \"old\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = save_key(&path, &Credentials::new("pk", "new")).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(std::fs::read_to_string(&path).unwrap().contains("old"));
    }
}
