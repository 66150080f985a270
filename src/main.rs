//! The `plbulk` binary: parse the arguments, run the verb, turn its outcome into an exit code.

use clap::Parser;

fn main() {
    let cli = plbulk::cli::Cli::parse();
    let code = plbulk::cmd::main(cli);
    std::process::exit(code);
}
