//! How every workbook plbulk writes prints (or saves as PDF): on A4, one page wide however
//! many pages long, the header row on every page, and the sheet's name and page number in the
//! footer. Partners are in the UK: Letter paper, the writer's default, cuts A4 short.

use rust_xlsxwriter::{Worksheet, XlsxError};

/// Excel's paper size code for A4.
pub const A4: u8 = 9;

/// Which way round a sheet prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    /// Narrow sheets: a list of a few columns reads best upright.
    Portrait,
    /// Sheets of many columns, or one wide column of text.
    Landscape,
}

/// Sets up `ws` for print: A4 in `orientation`, fit to one page wide, and rows `repeat`
/// (first, last; 0-based) at the top of every page.
pub fn setup(
    ws: &mut Worksheet,
    orientation: Orientation,
    repeat: Option<(u32, u32)>,
) -> Result<(), XlsxError> {
    ws.set_paper_size(A4);
    match orientation {
        Orientation::Portrait => ws.set_portrait(),
        Orientation::Landscape => ws.set_landscape(),
    };
    // 0 pages high: as many as it takes, never shrunk to fit a page.
    ws.set_print_fit_to_pages(1, 0);
    ws.set_footer("&L&A&RPage &P of &N");
    if let Some((first, last)) = repeat {
        ws.set_repeat_rows(first, last)?;
    }
    Ok(())
}

/// The height (points) of a row whose text wraps in a column `width` characters wide: Excel
/// and LibreOffice keep a row's default height when the file sets none, and wrapped lines then
/// print over the next row. An estimate by characters, a little generous, as a proportional
/// font fits more narrow letters than wide ones.
pub fn wrapped_height(text: &str, width: f64) -> f64 {
    let per_line = (width * 1.1).max(1.0) as usize;
    let lines: usize = text
        .split('\n')
        .map(|l| l.chars().count().div_ceil(per_line).max(1))
        .sum();
    15.0 * lines.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_takes_as_many_rows_as_it_wraps_to() {
        assert_eq!(wrapped_height("short", 20.0), 15.0);
        assert_eq!(wrapped_height(&"x".repeat(45), 20.0), 45.0);
        assert_eq!(wrapped_height("a\nb", 20.0), 30.0);
        assert_eq!(wrapped_height("", 20.0), 15.0);
    }
}
