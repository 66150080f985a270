//! Where the client's settings come from: the API key and secret, and the base URL.
//!
//! Order of precedence: command-line flag (base URL only), then `PLBULK_BASE_URL`,
//! `PLBULK_API_KEY` and `PLBULK_API_SECRET`, then the config file (`config.toml` in the user's
//! config directory, or the file `PLBULK_CONFIG` names), then the published base URL. The
//! secret is held in a [`Secret`] whose `Debug` never shows it, and a config file that others
//! can read is refused, as ssh refuses a private key that others can read.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::contract;

pub const ENV_KEY: &str = "PLBULK_API_KEY";
pub const ENV_SECRET: &str = "PLBULK_API_SECRET";
pub const ENV_BASE_URL: &str = "PLBULK_BASE_URL";
pub const ENV_CONFIG: &str = "PLBULK_CONFIG";

/// A value that must never be printed: the API secret or a JWT.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Clone, Debug)]
pub struct Credentials {
    pub key_id: String,
    pub secret: Secret,
}

impl Credentials {
    pub fn new(key_id: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials {
            key_id: key_id.into(),
            secret: Secret::new(secret),
        }
    }
}

/// Where the credentials were found, to say so to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Environment,
    ConfigFile(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment => write!(f, "{ENV_KEY}/{ENV_SECRET}"),
            Source::ConfigFile(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub base_url: String,
    /// None when neither the environment nor a config file gives any.
    pub credentials: Option<(Credentials, Source)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {} is not valid: line {line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "the config file {} can be read by other users (mode {mode:o}) and holds the API secret; \
         run `chmod 600 {}` and try again",
        path.display(), path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error(
        "{ENV_CONFIG} names the config file {}, which does not exist: correct the path, or unset {ENV_CONFIG} to use the usual one",
        path.display()
    )]
    NamedMissing { path: PathBuf },
    #[error(
        "{set} is set but {missing} is not: set both, or unset both to use the config file{}",
        config_path().map(|p| format!(" {}", p.display())).unwrap_or_default()
    )]
    HalfSet {
        set: &'static str,
        missing: &'static str,
    },
    #[error(
        "the config file {} has {set} but not {missing}: add it, or remove both",
        path.display()
    )]
    HalfConfigured {
        path: PathBuf,
        set: &'static str,
        missing: &'static str,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    api_key: Option<String>,
    api_secret: Option<String>,
    base_url: Option<String>,
}

/// The config file's path: `PLBULK_CONFIG`, else `config.toml` in the user's config directory.
pub fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ENV_CONFIG) {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("com", "PhoneLinePlus", "plbulk")
        .map(|d| d.config_dir().join("config.toml"))
}

/// What to say when no credentials are set: where each of the two places is, this machine's
/// config file by its path.
pub fn missing_text() -> String {
    let file = match config_path() {
        Some(p) => format!("api_key and api_secret in the config file {}", p.display()),
        None => "api_key and api_secret in a config file named by PLBULK_CONFIG".into(),
    };
    format!(
        "no API credentials: set {ENV_KEY} and {ENV_SECRET}, or {file}, or rehearse with --sandbox"
    )
}

/// A lookup of environment variables; tests give a map instead of the process environment.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Settings {
    /// Settings from the process environment and the config file, `base_url_flag` first.
    pub fn load(base_url_flag: Option<&str>) -> Result<Settings, ConfigError> {
        // A file the user named on purpose and that is not there is a mistake to say, not a
        // file with no keys in it: the "no credentials" that follows would send them editing
        // a file that does not exist.
        if let Some(named) = std::env::var_os(ENV_CONFIG).map(PathBuf::from) {
            if !named.exists() {
                return Err(ConfigError::NamedMissing { path: named });
            }
        }
        Settings::load_from(base_url_flag, &ProcessEnv, config_path().as_deref())
    }

    pub fn load_from(
        base_url_flag: Option<&str>,
        env: &dyn Env,
        config: Option<&Path>,
    ) -> Result<Settings, ConfigError> {
        let file = match config {
            Some(p) if p.exists() => Some((read_config(p)?, p.to_path_buf())),
            _ => None,
        };
        let from_env = match (env.get(ENV_KEY), env.get(ENV_SECRET)) {
            (Some(k), Some(s)) => Some((Credentials::new(k, s), Source::Environment)),
            (Some(_), None) => {
                return Err(ConfigError::HalfSet {
                    set: ENV_KEY,
                    missing: ENV_SECRET,
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::HalfSet {
                    set: ENV_SECRET,
                    missing: ENV_KEY,
                })
            }
            (None, None) => None,
        };
        let from_file = match &file {
            Some((f, path)) => match (&f.api_key, &f.api_secret) {
                (Some(k), Some(s)) => Some((
                    Credentials::new(k.clone(), s.clone()),
                    Source::ConfigFile(path.clone()),
                )),
                (Some(_), None) => {
                    return Err(ConfigError::HalfConfigured {
                        path: path.clone(),
                        set: "api_key",
                        missing: "api_secret",
                    })
                }
                (None, Some(_)) => {
                    return Err(ConfigError::HalfConfigured {
                        path: path.clone(),
                        set: "api_secret",
                        missing: "api_key",
                    })
                }
                (None, None) => None,
            },
            None => None,
        };
        let base_url = base_url_flag
            .map(str::to_string)
            .or_else(|| env.get(ENV_BASE_URL))
            .or_else(|| file.as_ref().and_then(|(f, _)| f.base_url.clone()))
            .unwrap_or_else(|| contract::DEFAULT_BASE_URL.to_string());
        Ok(Settings {
            base_url,
            credentials: from_env.or(from_file),
        })
    }
}

fn read_config(path: &Path) -> Result<FileSettings, ConfigError> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // toml's own Display quotes the offending line, which may be the secret: report the line
    // number and the message only.
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        line: e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        }),
        message: e.message().to_string(),
    })
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, &'static str>);
    impl Env for MapEnv {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    fn write_config(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("config.toml");
        std::fs::write(&p, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let _ = mode;
        p
    }

    #[test]
    fn environment_wins_over_the_file_and_flag_over_both() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_config(
            dir.path(),
            "api_key = \"filekey\"\napi_secret = \"filesecret\"\nbase_url = \"http://file\"\n",
            0o600,
        );
        let env = MapEnv(HashMap::from([
            (ENV_KEY, "envkey"),
            (ENV_SECRET, "envsecret"),
        ]));
        let s = Settings::load_from(None, &env, Some(&p)).unwrap();
        let (c, src) = s.credentials.unwrap();
        assert_eq!((c.key_id.as_str(), src), ("envkey", Source::Environment));
        assert_eq!(s.base_url, "http://file");
        let s =
            Settings::load_from(Some("http://flag"), &MapEnv(HashMap::new()), Some(&p)).unwrap();
        assert_eq!(s.base_url, "http://flag");
        assert_eq!(s.credentials.unwrap().0.key_id, "filekey");
    }

    #[test]
    fn defaults_to_the_published_url_without_credentials() {
        let s = Settings::load_from(None, &MapEnv(HashMap::new()), None).unwrap();
        assert_eq!(s.base_url, contract::DEFAULT_BASE_URL);
        assert!(s.credentials.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_config_file_others_can_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_config(
            dir.path(),
            "api_key = \"k\"\napi_secret = \"s3cr3t\"\n",
            0o644,
        );
        let e = Settings::load_from(None, &MapEnv(HashMap::new()), Some(&p)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("chmod 600"), "{msg}");
        assert!(!msg.contains("s3cr3t"));
    }

    #[test]
    fn a_broken_config_file_names_the_line_but_not_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_config(
            dir.path(),
            "api_key = \"k\"\napi_secret = s3cr3t-unquoted\n",
            0o600,
        );
        let msg = Settings::load_from(None, &MapEnv(HashMap::new()), Some(&p))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn half_set_environment_is_an_error() {
        let env = MapEnv(HashMap::from([(ENV_KEY, "k")]));
        let e = Settings::load_from(None, &env, None).unwrap_err();
        assert!(e.to_string().contains(ENV_SECRET));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let c = Credentials::new("key", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
