//! Excel templates for every kind of row, made from the [`schema`](crate::schema) table.
//!
//! Each has a styled, frozen header with an input message on every header cell (what goes
//! there, whether it is required and when), a drop-down on every column with a fixed set of
//! values, fitted widths, phone and number columns formatted as Text, one example row (grey
//! italics; ignored on import while unchanged) and an Instructions sheet whose rows are as
//! tall as their wrapped text. Every sheet prints on A4, landscape, one page wide. The files in `templates/` are these, written by `plbulk template all`;
//! a test fails when they drift from what this module writes.

use std::path::{Path, PathBuf};

use rust_xlsxwriter::{
    Color, DataValidation, DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder,
    Workbook, Worksheet, XlsxError,
};

use crate::paper::{self, Orientation};
use crate::schema::{Field, Kind, Need};

/// Rows that get the drop-downs: enough for a large onboarding, small enough to stay light.
const VALIDATED_ROWS: u32 = 5_000;

fn header_format() -> Format {
    Format::new()
        .set_bold()
        .set_font_color(Color::White)
        .set_background_color(Color::RGB(0x004B87))
        .set_border_bottom(FormatBorder::Thin)
}

fn example_format() -> Format {
    Format::new()
        .set_italic()
        .set_font_color(Color::RGB(0x808080))
}

/// How a column's need reads, before its help (which, for a column sometimes required, says
/// when): the hover message stands alone, with nothing "below" it to see.
fn need_words(n: Need) -> &'static str {
    match n {
        Need::Required => "Required.",
        Need::Sometimes => "Sometimes required.",
        Need::Optional => "Optional.",
    }
}

/// Columns of phone numbers, number blocks and MAC addresses: digits a spreadsheet turns into
/// a number in a General cell, dropping the leading 0 (01632 960999 becomes 1632960999).
/// The templates (and the to-fix workbook) format them as Text.
const TEXT_FIELDS: [Field; 4] = [Field::Phone, Field::Number, Field::Redirect, Field::Mac];

/// Whether a column is formatted as Text ("@") in the workbooks a partner fills in.
pub fn is_text_column(field: Field) -> bool {
    TEXT_FIELDS.contains(&field)
}

/// Excel's built-in number format 49, Text ("@"): what is typed stays as typed.
pub const TEXT_FORMAT_INDEX: u8 = 49;

/// A cell format of Text.
pub fn text_format() -> Format {
    Format::new().set_num_format_index(TEXT_FORMAT_INDEX)
}

/// The widths of the Instructions sheet's columns: Column, Needed, What goes there.
const INSTRUCTION_WIDTHS: [f64; 3] = [24.0, 20.0, 72.0];

fn add_kind_sheet(book: &mut Workbook, kind: Kind) -> Result<(), XlsxError> {
    let ws: &mut Worksheet = book.add_worksheet();
    ws.set_name(kind.sheet_name())?;
    let header = header_format();
    let example = example_format();
    let example_text = example_format().set_num_format_index(TEXT_FORMAT_INDEX);
    let text = text_format();
    for (i, c) in kind.columns().iter().enumerate() {
        let col = i as u16;
        ws.write_string_with_format(0, col, c.header, &header)?;
        let width = c.header.len().max(c.example.len()).max(10) + 2;
        ws.set_column_width(col, width as f64)?;
        if is_text_column(c.field) {
            ws.set_column_format(col, &text)?;
            ws.write_string_with_format(1, col, c.example, &example_text)?;
        } else {
            ws.write_string_with_format(1, col, c.example, &example)?;
        }
        // Excel caps an input message at 255 characters and its title at 32.
        let message: String = format!("{} {}", need_words(c.need), c.help)
            .chars()
            .take(255)
            .collect();
        let title: String = c.header.chars().take(32).collect();
        let tip = DataValidation::new()
            .allow_any_value()
            .set_input_title(title)?
            .set_input_message(message)?;
        ws.add_data_validation(0, col, 0, col, &tip)?;
        if !c.values.is_empty() {
            let list = DataValidation::new()
                .allow_list_strings(c.values)?
                .set_error_title("Not one of the choices")?
                .set_error_message(format!(
                    "{} takes one of: {}",
                    c.header,
                    c.values.join(", ")
                ))?;
            ws.add_data_validation(1, col, VALIDATED_ROWS, col, &list)?;
        }
    }
    ws.set_freeze_panes(1, 0)?;
    paper::setup(ws, Orientation::Landscape, Some((0, 0)))?;
    Ok(())
}

fn add_instructions(book: &mut Workbook, kinds: &[Kind]) -> Result<(), XlsxError> {
    let ws = book.add_worksheet();
    ws.set_name("Instructions")?;
    let title = Format::new().set_bold().set_font_size(14);
    let bold = Format::new().set_bold();
    let wrap = Format::new().set_text_wrap().set_align(FormatAlign::Top);
    let top = Format::new().set_align(FormatAlign::Top);
    for (c, w) in INSTRUCTION_WIDTHS.iter().enumerate() {
        ws.set_column_width(c as u16, *w)?;
    }
    let all_width: f64 = INSTRUCTION_WIDTHS.iter().sum();
    ws.write_string_with_format(0, 0, "plbulk: bulk changes for PhoneLine+", &title)?;
    let intro = [
        "Fill one row per change on the sheets named below; keep the sheet names and the header row.",
        "Row 2 of each sheet is an example in grey: it is ignored while unchanged. Overwrite it or delete it.",
        "Check the file first with: plbulk validate FILE. Then run it with: plbulk run FILE.",
        "In other sheets, Customer is a Ref from the Customers sheet, a PL+ customer id, or the exact company name.",
        "Phone numbers, numbers to add or block and MAC addresses go in columns formatted as Text, so a leading 0 stays.",
    ];
    let mut row = 2u32;
    for line in intro {
        // Across the three columns, so a line prints whole within the page.
        ws.merge_range(row, 0, row, 2, line, &wrap)?;
        ws.set_row_height(row, paper::wrapped_height(line, all_width))?;
        row += 1;
    }
    for &kind in kinds {
        row += 1;
        ws.write_string_with_format(row, 0, kind.sheet_name(), &title)?;
        row += 1;
        if let Some(about) = sheet_intro(kind) {
            ws.merge_range(row, 0, row, 2, about, &wrap)?;
            ws.set_row_height(row, paper::wrapped_height(about, all_width))?;
            row += 1;
        }
        ws.write_string_with_format(row, 0, "Column", &bold)?;
        ws.write_string_with_format(row, 1, "Needed", &bold)?;
        ws.write_string_with_format(row, 2, "What goes there", &bold)?;
        row += 1;
        for c in kind.columns() {
            ws.write_string_with_format(row, 0, c.header, &top)?;
            ws.write_string_with_format(row, 1, need_words(c.need).trim_end_matches('.'), &top)?;
            let mut help = c.help.to_string();
            if !c.values.is_empty() {
                help.push_str(&format!(" Choices: {}.", c.values.join(", ")));
            }
            ws.set_row_height(row, paper::wrapped_height(&help, INSTRUCTION_WIDTHS[2]))?;
            ws.write_string_with_format(row, 2, &help, &wrap)?;
            row += 1;
        }
    }
    paper::setup(ws, Orientation::Landscape, None)?;
    Ok(())
}

/// What a sheet is for, where its columns alone do not say: the Migration sheet's one row
/// per person stands for several changes.
fn sheet_intro(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Migration => Some(
            "One row per person, as another provider's export lists them. Each row makes: its customer (once, from the first row with its Customer Ref, or Company Name without one; later rows may leave the company columns blank, and must agree where they fill them); its user, when First Name, Last Name and User Email are given; its Number, added to the customer and allocated to the user; its Device, assigned to the user when a MAC Address is given, else ordered: one order per customer for all its rows' devices, delivered to the customer's address. The results show each row's outcome per step.",
        ),
        Kind::Customers
        | Kind::Users
        | Kind::Numbers
        | Kind::BlockedNumbers
        | Kind::Devices
        | Kind::Orders
        | Kind::UserSettings
        | Kind::PartnerUsers => None,
    }
}

/// A template workbook for `kinds`: Instructions first, then one sheet per kind.
pub fn workbook(kinds: &[Kind]) -> Result<Workbook, XlsxError> {
    let mut book = Workbook::new();
    // A fixed date, so the same generator writes the same bytes and the golden test holds.
    let fixed = ExcelDateTime::from_ymd(2026, 1, 1)?;
    book.set_properties(
        &DocProperties::new()
            .set_creation_datetime(&fixed)
            .set_title("plbulk template"),
    );
    add_instructions(&mut book, kinds)?;
    for &k in kinds {
        add_kind_sheet(&mut book, k)?;
    }
    Ok(book)
}

/// The file a template is written to: `customers.xlsx`, …, and `onboarding.xlsx` for all.
pub fn file_name(kind: Option<Kind>) -> String {
    match kind {
        Some(k) => format!("{}.xlsx", k.cli_name()),
        None => "onboarding.xlsx".into(),
    }
}

/// Writes the template for `kind` (None: every kind's, and the onboarding workbook) into `dir`.
pub fn write(dir: &Path, kind: Option<Kind>) -> Result<Vec<PathBuf>, XlsxError> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut one = |kinds: &[Kind], name: String| -> Result<(), XlsxError> {
        let path = dir.join(name);
        let bytes = workbook(kinds)?.save_to_buffer()?;
        crate::atomic_write(&path, &bytes)?;
        written.push(path);
        Ok(())
    };
    match kind {
        Some(k) => one(&[k], file_name(Some(k)))?,
        None => {
            for k in Kind::ALL {
                one(&[k], file_name(Some(k)))?;
            }
            one(&Kind::ALL, file_name(None))?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hover message stands alone: a column sometimes required says when, in its own words.
    #[test]
    fn a_column_sometimes_required_says_when() {
        for kind in Kind::ALL {
            for c in kind.columns() {
                if c.need == Need::Sometimes {
                    assert!(
                        c.help.contains("Required") || c.help.contains("required"),
                        "{} {}: {}",
                        kind.sheet_name(),
                        c.header,
                        c.help
                    );
                }
            }
        }
    }
}
