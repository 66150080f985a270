//! `plbulk validate`: read every input (through `--map`'s mapping file when given), check every
//! row, print a summary and write the report.

use crate::cli::ValidateArgs;
use crate::findings::{Finding, Severity};
use crate::report;

use super::{Error, EXIT_OK, EXIT_REFUSED};

pub async fn run(args: ValidateArgs, quiet: bool) -> Result<i32, Error> {
    let kind = args.kind;
    let mapping = crate::pipeline::load_mapping(args.map.as_deref())?;
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| super::beside(&args.files[0], "validation.xlsx"));
    // Before any read of the account: a report that cannot be written, or would replace an
    // input or a file of the partner's, is said now.
    if !args.no_report {
        crate::outputs::report(&report_path, &args.files, args.overwrite)?;
    }
    let mut changes = None;
    let (outcome, unreadable) = if args.online {
        // The pre-flight needs the plan, and the plan the rows: read once, keeping them.
        let planned = crate::pipeline::read(&args.files, kind, mapping.clone()).plan();
        let (online, lines) = if planned.inputs.unreadable.is_empty() {
            online_findings(&args, &planned).await?
        } else {
            (Vec::new(), Vec::new())
        };
        changes = Some(lines);
        let inputs = planned.inputs;
        let mut outcome = inputs.outcome;
        if inputs.unreadable.is_empty() {
            outcome
                .findings
                .remove_where(crate::validate::settled_online);
        }
        outcome.findings.extend(online);
        let order: Vec<_> = outcome
            .sheets
            .iter()
            .map(|(f, s, ..)| (f.clone(), s.clone()))
            .collect();
        outcome
            .findings
            .sort_in(order.iter().map(|(f, s)| (&**f, &**s)));
        (outcome, inputs.unreadable)
    } else {
        // Row by row, keeping nothing but what cross-row checks need.
        crate::validate::check_files(
            crate::validate::Validator::new(),
            &args.files,
            kind,
            mapping.as_ref(),
            |_| {},
            |_, _, _, _, _| {},
            |_, _| {},
        )
    };
    let findings = &outcome.findings;
    let errors = findings.errors() + unreadable.len() as u64;

    if !quiet {
        // Past the kept findings, neither --show nor the report has the rest.
        let kept = findings.items().len();
        let more = match (args.no_report, findings.dropped() > 0) {
            (true, false) => {
                "(--show N prints more, or leave out --no-report for a report of them all)".into()
            }
            (false, false) => "in the report".into(),
            (true, true) => {
                format!("(--show N prints up to {kept}; fix those and validate again for the rest)")
            }
            (false, true) => format!(
                "(the report lists the first {kept}; fix those and validate again for the rest)"
            ),
        };
        print_summary(&outcome.sheets, findings, errors, args.show, &more);
    }
    for e in &unreadable {
        eprintln!("error: {e}");
    }
    if !args.no_report && !outcome.sheets.is_empty() {
        // Files that cannot be opened are left out of the report by itself.
        let inputs: Vec<_> = args.files.iter().map(|f| (f.clone(), kind)).collect();
        let path = report_path;
        let cuts = report::write(
            &path,
            &inputs,
            mapping.as_ref(),
            findings,
            changes.as_deref(),
        )
        .map_err(|e| Error::Io(e.to_string()))?;
        if !quiet {
            outln!("Report: {}", path.display());
        }
        // Said even when quiet: the report is not the whole file.
        for cut in &cuts {
            eprintln!("note: {cut}");
        }
    }
    Ok(if errors > 0 { EXIT_REFUSED } else { EXIT_OK })
}

/// The online pre-flight's findings, from the account the settings point at, and what each
/// update row would change.
async fn online_findings(
    args: &ValidateArgs,
    planned: &crate::pipeline::Planned,
) -> Result<(Vec<Finding>, Vec<report::ChangeLine>), Error> {
    let (inputs, plan) = (&planned.inputs, &planned.plan);
    let conn = crate::pipeline::look(args.rate, args.sandbox, args.base_url.as_deref()).await?;
    let found = crate::pipeline::preflight(planned, &conn, None).await;
    conn.close().await;
    let found = found
        .map_err(|e| Error::reading("the online checks could not read the account", &e))?
        .checked;
    let lines = found
        .changes
        .iter()
        .map(|ch| {
            let row = &plan.rows[ch.row];
            report::ChangeLine {
                sheet: inputs.sheets[row.sheet as usize].name.to_string(),
                row: row.row_no,
                entity: ch.entity.clone(),
                field: ch.field.clone(),
                now: ch.now.clone(),
                after: ch.after.clone(),
            }
        })
        .collect();
    let mut findings: Vec<Finding> = found.findings.into_iter().map(|(_, f)| f).collect();
    // Rows that change nothing are worth a note on their row: the run will not send them.
    for &i in &found.unchanged {
        let row = &plan.rows[i];
        let sheet = &inputs.sheets[row.sheet as usize];
        findings.push(Finding {
            severity: Severity::Note,
            file: sheet.file.clone(),
            sheet: sheet.name.clone(),
            row: Some(row.row_no),
            column: None,
            header: None,
            value: String::new(),
            message: "no change: the account holds these values already, so the run will not send this row".into(),
        });
    }
    Ok((findings, lines))
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Rows per sheet, counts of findings, and the first `show` findings, errors first.
pub(crate) fn print_summary(
    sheets: &[(
        std::sync::Arc<str>,
        std::sync::Arc<str>,
        crate::schema::Kind,
        crate::validate::SheetCounts,
    )],
    findings: &crate::findings::Findings,
    errors: u64,
    show: usize,
    more: &str,
) {
    for (file, sheet, kind, c) in sheets {
        let label = if **sheet == *kind.sheet_name() {
            format!("{file} [{sheet}]")
        } else {
            format!("{file} [{sheet}: {kind}]")
        };
        outln!(
            "{label}: {} row{}, {} valid, {} with errors{}",
            c.rows,
            plural(c.rows),
            c.valid,
            c.invalid,
            if c.ignored > 0 {
                format!(" ({} ignored)", c.ignored)
            } else {
                String::new()
            }
        );
    }
    outln!(
        "{} error{}, {} warning{}, {} note{}.",
        errors,
        plural(errors),
        findings.warnings(),
        plural(findings.warnings()),
        findings.count(Severity::Note),
        plural(findings.count(Severity::Note))
    );
    // What was decided about a whole file (its encoding, its kind) is said here too, not only
    // in the report: a wrong guess there is wrong for every row.
    for f in findings.items().iter().filter(|f| file_level(f)) {
        outln!("  {f}");
    }
    print_findings(
        findings.items().iter().filter(|f| !file_level(f)),
        findings.total() - findings.items().iter().filter(|f| file_level(f)).count() as u64,
        show,
        more,
    );
}

/// A note about a whole file or sheet (its encoding, its kind), printed always by
/// [`print_summary`].
fn file_level(f: &Finding) -> bool {
    // Not a note on a row (the pre-flight's "no change", one per update row): thousands of
    // them were printed uncapped.
    f.severity == Severity::Note && f.row.is_none()
}

/// Up to `show` of `items` (of `total` in all, some perhaps not kept), errors first, then
/// warnings, then notes, each in file order; then how many more there are and where `more`
/// says to see them. Every finding a count line counts can be printed: "3 notes" once printed
/// one, the others never shown anywhere but the report.
pub(crate) fn print_findings<'a>(
    items: impl Iterator<Item = &'a Finding> + Clone,
    total: u64,
    show: usize,
    more: &str,
) {
    let mut shown = 0u64;
    for severity in [Severity::Error, Severity::Warning, Severity::Note] {
        for f in items
            .clone()
            .filter(|f| f.severity == severity)
            .take(show.saturating_sub(shown as usize))
        {
            outln!("  {f}");
            shown += 1;
        }
    }
    let rest = total.saturating_sub(shown);
    if rest > 0 {
        outln!("  … and {rest} more {more}");
    }
}
