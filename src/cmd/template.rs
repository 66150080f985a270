//! `plbulk template`: the Excel templates, one per kind and the onboarding workbook.

use crate::cli::TemplateArgs;
use crate::schema::Kind;
use crate::templates;

use super::{parse_kind, Error, EXIT_OK};

pub fn run(args: TemplateArgs, quiet: bool) -> Result<i32, Error> {
    let kind = if args.kind.eq_ignore_ascii_case("all") {
        None
    } else {
        Some(parse_kind(&args.kind)?)
    };
    if args.out.is_file() {
        return Err(Error::Usage(format!(
            "--out names the folder to write the templates into, and {} is a file: give a folder",
            args.out.display()
        )));
    }
    // Every file checked before any is written: a refusal leaves the folder as it was.
    if args.out.is_dir() {
        let names = match kind {
            Some(k) => vec![templates::file_name(Some(k))],
            None => Kind::ALL
                .iter()
                .map(|&k| templates::file_name(Some(k)))
                .chain([templates::file_name(None)])
                .collect(),
        };
        let paths: Vec<_> = names.iter().map(|n| args.out.join(n)).collect();
        crate::outputs::templates(&paths, args.overwrite)?;
    }
    let written = templates::write(&args.out, kind).map_err(|e| {
        Error::Io(format!(
            "cannot write templates into {}: {e}",
            args.out.display()
        ))
    })?;
    if !quiet {
        for p in written {
            outln!("wrote {}", p.display());
        }
    }
    Ok(EXIT_OK)
}
