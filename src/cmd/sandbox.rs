//! `plbulk sandbox`: the in-memory PL+ API, standalone, until Ctrl-C; and `sandbox status` and
//! `sandbox reset`, about the rehearsal account that `--sandbox` runs on.

use std::time::Duration;

use serde::Serialize;

use crate::cli::{SandboxAction, SandboxArgs};
use crate::rehearsal::{Counts, Holder, Place};
use crate::sandbox::{self, SandboxConfig, World};

use super::{Error, EXIT_OK};

pub async fn run(args: SandboxArgs, quiet: bool) -> Result<i32, Error> {
    match args.action {
        Some(SandboxAction::Status { json }) => return status(json),
        Some(SandboxAction::Reset) => return reset(quiet),
        None => {}
    }
    for (name, v) in [
        ("--fail-rate", args.fail_rate),
        ("--drop-rate", args.drop_rate),
        ("--gateway-error-rate", args.gateway_error_rate),
        ("--late-commit-rate", args.late_commit_rate),
        ("--lost-rate", args.lost_rate),
        ("--page-rate", args.page_rate),
        ("--truncate-rate", args.truncate_rate),
        ("--outage-rate", args.outage_rate),
        ("--key-refused-rate", args.key_refused_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(Error::Usage(format!(
                "{name} must be between 0 and 1, not {v}"
            )));
        }
    }
    if args.max_page_size == 0 {
        return Err(Error::Usage("--max-page-size must be at least 1".into()));
    }
    let outage_for = spell_length(
        "--outage-rate",
        args.outage_rate,
        "--outage-for",
        args.outage_for,
    )?;
    let key_refused_for = spell_length(
        "--key-refused-rate",
        args.key_refused_rate,
        "--key-refused-for",
        args.key_refused_for,
    )?;
    let config = SandboxConfig {
        keys: vec![(args.key.clone(), args.secret.clone())],
        rate: args.rate,
        token_ttl: args.token_ttl,
        fail_rate: args.fail_rate,
        drop_rate: args.drop_rate,
        gateway_rate: args.gateway_error_rate,
        late_rate: args.late_commit_rate,
        lost_rate: args.lost_rate,
        late_commit: std::time::Duration::from_millis(args.late_commit_ms),
        latency: args.latency_ms,
        seed: args.seed,
        max_page_size: args.max_page_size,
        page_rate: args.page_rate,
        truncate_rate: args.truncate_rate,
        retry_after_date: args.retry_after_date,
        outages: args.outages.clone(),
        outage_rate: args.outage_rate,
        outage_for,
        outage_mode: args.outage_mode,
        key_refusals: args.key_refused.clone(),
        key_refused_rate: args.key_refused_rate,
        key_refused_for,
    };
    // With --account, the rehearsal account is held (no rehearsal writes to it meanwhile)
    // and kept after every write, as an in-process rehearsal keeps it.
    let mut kept = None;
    let world = match &args.state {
        Some(path) => std::fs::read(path)
            .and_then(|bytes| World::from_saved(&bytes))
            .map_err(|e| Error::Io(format!("cannot start from {}: {e}", path.display())))?,
        None if args.account => {
            let place = Place::shared();
            let held = place.open("plbulk sandbox --account", None)?;
            let world = place.read()?.unwrap_or_else(World::seeded);
            let store = sandbox::Store::create(&place.file(), &world)
                .map_err(|e| Error::Io(format!("cannot keep {}: {e}", place.describe())))?;
            kept = Some((held, store));
            world
        }
        None => World::seeded(),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Io(format!("cannot listen on {}: {e}", args.listen)))?;
    let url = format!("http://{addr}");
    if let Some(path) = &args.url_file {
        std::fs::write(path, format!("{url}\n"))
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
    }
    if !quiet {
        // The sandbox's own credentials are not secrets: they are printed so they can be used.
        outln!("PL+ sandbox listening on {url}");
        outln!(
            "  rate limit {} per key; faults: {:.1}% 5xx, {:.1}% dropped creates, {:.1}% gateway errors after the write, {:.1}% writes landing after {} ms, {:.1}% writes lost before they are handled; latency {}-{} ms; token lifetime {}",
            config.rate,
            args.fail_rate * 100.0,
            args.drop_rate * 100.0,
            args.gateway_error_rate * 100.0,
            args.late_commit_rate * 100.0,
            args.late_commit_ms,
            args.lost_rate * 100.0,
            args.latency_ms.min.as_millis(),
            args.latency_ms.max.as_millis(),
            humantime::format_duration(args.token_ttl),
        );
        outln!(
            "  answers not the API's: {:.1}% HTML pages, {:.1}% cut off; Retry-After in {}; {}; {}",
            args.page_rate * 100.0,
            args.truncate_rate * 100.0,
            if args.retry_after_date {
                "HTTP dates"
            } else {
                "seconds"
            },
            outages_line(&config),
            refusals_line(&config),
        );
        outln!("Use it with:");
        outln!("  export PLBULK_BASE_URL={url}");
        outln!("  export PLBULK_API_KEY={}", args.key);
        outln!("  export PLBULK_API_SECRET={}", args.secret);
        outln!("Inspect: {url}/__sandbox/state and {url}/__sandbox/requests. Ctrl-C stops it.");
        if let Some((held, _)) = &kept {
            outln!(
                "Serving {}: every write is kept in it; rehearsals are refused while this runs.",
                held.place().describe()
            );
        }
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // The same server the tests start in-process, stopped by Ctrl-C.
    let served = match kept {
        Some((held, store)) => {
            let r = sandbox::run_kept(listener, config, world, store, stop).await;
            drop(held);
            r
        }
        None => sandbox::run_from(listener, config, world, stop).await,
    };
    served.map_err(|e| Error::Io(format!("the sandbox stopped: {e}")))?;
    Ok(EXIT_OK)
}

/// `plbulk sandbox status --json`.
#[derive(Serialize)]
struct Status {
    schema: u32,
    path: String,
    /// Whether anything was ever kept there (since it was last reset).
    kept: bool,
    changed_at: Option<String>,
    counts: Counts,
    in_use: Option<InUse>,
}

#[derive(Serialize)]
struct InUse {
    pid: Option<u32>,
    command: Option<String>,
    job: Option<String>,
    since: Option<String>,
}

/// `plbulk sandbox status`: where the rehearsal account is, what it holds, when it last
/// changed and who has it open. It reads the file as last kept, without taking the account.
fn status(json: bool) -> Result<i32, Error> {
    let place = Place::shared();
    let world = place.read()?;
    let counts = world.as_ref().map(Counts::of).unwrap_or_default();
    let changed_at = place
        .modified()
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let holder = place.holder()?;
    if json {
        let in_use = holder.map(|h| match h {
            Some(Holder {
                pid,
                since_ms,
                command,
                job,
            }) => InUse {
                pid: Some(pid),
                command: Some(command),
                job,
                since: Some(crate::results::time_text(since_ms)),
            },
            None => InUse {
                pid: None,
                command: None,
                job: None,
                since: None,
            },
        });
        outln!(
            "{}",
            super::to_json(&Status {
                schema: 1,
                path: place.file().display().to_string(),
                kept: world.is_some(),
                changed_at,
                counts,
                in_use,
            })
        );
        return Ok(EXIT_OK);
    }
    outln!("Rehearsal account: {}", place.file().display());
    match &changed_at {
        Some(t) => {
            outln!("  holds:        {}", counts.line());
            outln!("  last changed: {t}");
        }
        None => outln!("  empty: nothing was rehearsed on it yet (or since it was reset)"),
    }
    match holder {
        Some(Some(h)) => outln!("  in use by:    {}", h.describe()),
        Some(None) => outln!("  in use by:    another plbulk process"),
        None => outln!("  in use by:    nobody"),
    }
    Ok(EXIT_OK)
}

/// `plbulk sandbox reset`: the rehearsal account emptied, unless a process has it open.
fn reset(quiet: bool) -> Result<i32, Error> {
    let place = Place::shared();
    if let Some(h) = place.holder()? {
        return Err(Error::Refused(format!(
            "{} is in use by {}: it is not reset while a process has it open. Let that end (or stop it with Ctrl-C), then reset",
            place.describe(),
            h.map_or_else(|| "another plbulk process".into(), |h| h.describe())
        )));
    }
    let changed = place
        .modified()
        .map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let was = place.reset()?;
    if !quiet {
        match was {
            Some(w) => outln!(
                "Removed {}: it held {} (last changed {}). The next rehearsal starts on an empty account.",
                place.describe(),
                Counts::of(&w).line(),
                changed.unwrap_or_else(|| "at an unknown time".into())
            ),
            None => outln!(
                "Nothing to remove: {} holds nothing (nothing was kept there).",
                place.describe()
            ),
        }
    }
    Ok(EXIT_OK)
}

/// How long a spell started by a rate lasts: required with the rate, and more than nothing.
fn spell_length(
    rate_flag: &str,
    rate: f64,
    for_flag: &str,
    length: Option<Duration>,
) -> Result<Duration, Error> {
    match length {
        Some(d) if d.is_zero() => Err(Error::Usage(format!(
            "{for_flag} must be longer than 0, e.g. {for_flag} 30s"
        ))),
        Some(d) => Ok(d),
        None if rate > 0.0 => Err(Error::Usage(format!(
            "{rate_flag} needs {for_flag}, how long each one lasts: e.g. {for_flag} 30s"
        ))),
        // Never used: nothing starts one.
        None => Ok(Duration::from_secs(30)),
    }
}

fn outages_line(config: &SandboxConfig) -> String {
    let mut parts: Vec<String> = config
        .outages
        .iter()
        .map(|o| {
            format!(
                "{} from {} for {}",
                o.mode,
                humantime::format_duration(o.after),
                humantime::format_duration(o.duration)
            )
        })
        .collect();
    if config.outage_rate > 0.0 {
        parts.push(format!(
            "{:.1}% of requests start one ({}, {})",
            config.outage_rate * 100.0,
            config.outage_mode,
            humantime::format_duration(config.outage_for)
        ));
    }
    if parts.is_empty() {
        "no outages".to_string()
    } else {
        format!("outages: {}", parts.join(", "))
    }
}

fn refusals_line(config: &SandboxConfig) -> String {
    let mut parts: Vec<String> = config
        .key_refusals
        .iter()
        .map(|r| {
            format!(
                "from {} for {}",
                humantime::format_duration(r.after),
                humantime::format_duration(r.duration)
            )
        })
        .collect();
    if config.key_refused_rate > 0.0 {
        parts.push(format!(
            "{:.1}% of requests start one ({})",
            config.key_refused_rate * 100.0,
            humantime::format_duration(config.key_refused_for)
        ));
    }
    if parts.is_empty() {
        "key never refused".to_string()
    } else {
        format!("key refused: {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::sandbox::{OutageMode, PlannedOutage, PlannedRefusal};

    fn sandbox_args(flags: &[&str]) -> Result<SandboxArgs, String> {
        let argv = ["plbulk", "sandbox"].iter().chain(flags);
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Sandbox(a) => Ok(a),
            other => Err(format!("parsed as {other:?}")),
        }
    }

    #[test]
    fn the_new_fault_flags_parse() {
        let a = sandbox_args(&[
            "--page-rate",
            "0.1",
            "--truncate-rate",
            "0.2",
            "--retry-after-date",
            "--outage",
            "refuse:10s:90s",
            "--outage",
            "hang:0:1500ms",
            "--outage-rate",
            "0.01",
            "--outage-for",
            "30s",
            "--outage-mode",
            "hang",
            "--key-refused",
            "1m:20s",
            "--key-refused-rate",
            "0.001",
            "--key-refused-for",
            "5s",
        ])
        .unwrap();
        assert_eq!((a.page_rate, a.truncate_rate), (0.1, 0.2));
        assert!(a.retry_after_date);
        assert_eq!(
            a.outages,
            vec![
                PlannedOutage {
                    mode: OutageMode::Refuse,
                    after: Duration::from_secs(10),
                    duration: Duration::from_secs(90)
                },
                PlannedOutage {
                    mode: OutageMode::Hang,
                    after: Duration::ZERO,
                    duration: Duration::from_millis(1500)
                }
            ]
        );
        assert_eq!(a.outage_mode, OutageMode::Hang);
        assert_eq!(a.outage_for, Some(Duration::from_secs(30)));
        assert_eq!(
            a.key_refused,
            vec![PlannedRefusal {
                after: Duration::from_secs(60),
                duration: Duration::from_secs(20)
            }]
        );
        assert_eq!(a.key_refused_for, Some(Duration::from_secs(5)));

        let plain = sandbox_args(&[]).unwrap();
        assert!(!plain.retry_after_date && plain.outages.is_empty());
        assert_eq!(plain.outage_mode, OutageMode::Refuse);
    }

    #[test]
    fn bad_fault_values_say_what_to_type() {
        for (flags, hint) in [
            (&["--outage", "refuse:10s"][..], "refuse:10s:90s"),
            (&["--outage", "down:1s:2s"][..], "refuse or hang"),
            (&["--outage-mode", "off"][..], "refuse or hang"),
            (&["--key-refused", "soon:2s"][..], "like"),
            (&["--outage-for", "a while"][..], "--outage-for"),
        ] {
            let e = sandbox_args(flags).unwrap_err();
            assert!(e.contains(hint), "{flags:?}: {e}");
        }
    }

    #[test]
    fn a_rate_needs_the_length_of_what_it_starts() {
        let e = spell_length("--outage-rate", 0.1, "--outage-for", None).unwrap_err();
        assert!(e.to_string().contains("--outage-for 30s"), "{e}");
        let zero = Some(Duration::ZERO);
        assert!(spell_length("--key-refused-rate", 0.1, "--key-refused-for", zero).is_err());
        let d = Some(Duration::from_secs(5));
        assert_eq!(
            spell_length("--outage-rate", 0.1, "--outage-for", d).unwrap(),
            Duration::from_secs(5)
        );
        assert!(spell_length("--outage-rate", 0.0, "--outage-for", None).is_ok());
    }
}
