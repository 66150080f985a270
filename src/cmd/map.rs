//! `plbulk map init`: a first mapping file for another system's export, guessed from its
//! columns and values ([`crate::intake::guess`]), and what could not be guessed said.

use crate::cli::{MapCommand, MapInitArgs};
use crate::intake::guess;

use super::{Error, EXIT_OK};

pub fn run(cmd: MapCommand, quiet: bool) -> Result<i32, Error> {
    match cmd {
        MapCommand::Init(args) => init(args, quiet),
    }
}

fn init(args: MapInitArgs, quiet: bool) -> Result<i32, Error> {
    // Before the exports are read: a mapping the partner has edited is not replaced.
    crate::outputs::mapping(&args.out, &args.files, args.overwrite)?;
    let names: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
    let (guess, text) = guess::init(&args.files, &names, args.sheet.as_deref(), args.kind)
        .map_err(|e| Error::Input(e.to_string()))?;
    crate::atomic_write(&args.out, text.as_bytes())
        .map_err(|e| Error::Io(format!("cannot write {}: {e}", args.out.display())))?;
    if !quiet {
        outln!(
            "Wrote {}: {} rows{}, {} guessed.",
            args.out.display(),
            guess.kind,
            if guess.kind_guessed {
                " (guessed from the columns; --kind says otherwise)"
            } else {
                ""
            },
            crate::words::count(guess.columns.len() as u64, "column")
        );
        let open = guess.not_guessed();
        if open.is_empty() {
            outln!("Every column and value was guessed: check them all the same.");
        } else {
            outln!("Not guessed, for you to fill in or check:");
            for line in open {
                outln!("  {line}");
            }
        }
        outln!(
            "Then: plbulk validate {} --map {}",
            names.join(" "),
            args.out.display()
        );
    }
    Ok(EXIT_OK)
}
