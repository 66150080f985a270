//! `plbulk sandbox`: the in-memory PL+ API, standalone, until Ctrl-C.

use crate::cli::SandboxArgs;
use crate::sandbox::{self, SandboxConfig, World};

use super::{Error, EXIT_OK};

pub async fn run(args: SandboxArgs, quiet: bool) -> Result<i32, Error> {
    for (name, v) in [
        ("--fail-rate", args.fail_rate),
        ("--drop-rate", args.drop_rate),
        ("--gateway-error-rate", args.gateway_error_rate),
        ("--late-commit-rate", args.late_commit_rate),
        ("--lost-rate", args.lost_rate),
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
    };
    let world = match &args.state {
        Some(path) => std::fs::read(path)
            .and_then(|bytes| World::from_saved(&bytes))
            .map_err(|e| Error::Io(format!("cannot start from {}: {e}", path.display())))?,
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
        outln!("Use it with:");
        outln!("  export PLBULK_BASE_URL={url}");
        outln!("  export PLBULK_API_KEY={}", args.key);
        outln!("  export PLBULK_API_SECRET={}", args.secret);
        outln!("Inspect: {url}/__sandbox/state and {url}/__sandbox/requests. Ctrl-C stops it.");
    }
    // The same server the tests start in-process, stopped by Ctrl-C.
    sandbox::run_from(listener, config, world, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| Error::Io(format!("the sandbox stopped: {e}")))?;
    Ok(EXIT_OK)
}
