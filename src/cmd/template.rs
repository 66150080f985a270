//! `plbulk template`: the Excel templates, one per kind and the onboarding workbook.

use crate::cli::TemplateArgs;
use crate::templates;

use super::{parse_kind, Error, EXIT_OK};

pub fn run(args: TemplateArgs, quiet: bool) -> Result<i32, Error> {
    let kind = if args.kind.eq_ignore_ascii_case("all") {
        None
    } else {
        Some(parse_kind(&args.kind)?)
    };
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
