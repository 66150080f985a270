//! `plbulk ui`: serves the local web page ([`crate::ui`]) until Ctrl-C, printing its address
//! (with the token that opens it) and opening a browser on it unless `--no-open`.

use crate::cli::UiArgs;
use crate::ui;

use super::{Error, EXIT_OK};

pub async fn run(args: UiArgs, quiet: bool) -> Result<i32, Error> {
    let listen = ui::security::loopback(&args.listen).map_err(Error::Usage)?;
    let options = ui::Options {
        listen,
        jobs_root: crate::job::jobs_root(args.job_dir.as_deref()),
        timeout: args.timeout,
        rate: args.rate,
    };
    let server = ui::Server::start(options)
        .await
        .map_err(|e| Error::Io(e.to_string()))?;
    // The address carries the token: it is printed for the person at this terminal, and
    // never logged.
    outln!("{}", server.url());
    if !quiet {
        outln!("plbulk ui is serving the page above on this machine only; Ctrl-C stops it.");
    }
    if !args.no_open {
        if let Err(why) = ui::browser::open(&server.url()) {
            if !quiet {
                outln!("No browser was opened ({why}): open the address above in one.");
            }
        }
    }
    server
        .serve_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Io(e.to_string()))?;
    Ok(EXIT_OK)
}
