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
/// print over the next row. An estimate: the words laid out greedily, as both wrap them. A
/// column's width is in widths of "0"; a line of plbulk's text, mostly narrower letters, fits
/// about 1.15 to 1.2 times as many characters (as the templates rendered in LibreOffice showed;
/// an estimate, not a measurement of every font), and the lower figure errs
/// towards a spare line rather than a cut one.
pub fn wrapped_height(text: &str, width: f64) -> f64 {
    let per_line = (width * 1.15).max(1.0) as usize;
    let lines: usize = text.split('\n').map(|l| lines_of(l, per_line)).sum();
    15.0 * lines.max(1) as f64
}

/// How many lines `line` wraps to, `per_line` characters each.
fn lines_of(line: &str, per_line: usize) -> usize {
    let mut lines = 1;
    let mut used = 0;
    for word in line.split(' ') {
        let n = word.chars().count();
        let need = if used == 0 { n } else { used + 1 + n };
        if need <= per_line {
            used = need;
            continue;
        }
        // On a line of its own; a word longer than a line is broken across lines.
        if used > 0 {
            lines += 1;
        }
        lines += n.saturating_sub(1) / per_line;
        used = match n % per_line {
            0 => per_line,
            rest => rest,
        };
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_takes_as_many_rows_as_it_wraps_to() {
        // 20 wide: 23 characters a line.
        assert_eq!(wrapped_height("short", 20.0), 15.0);
        assert_eq!(wrapped_height(&"x".repeat(50), 20.0), 45.0);
        // Words are not split: three of 9 letters take three lines of 11.
        assert_eq!(wrapped_height("aaaaaaaaa bbbbbbbbb ccccccccc", 10.0), 45.0);
        assert_eq!(wrapped_height("aaaa bbbbb", 10.0), 15.0);
        assert_eq!(wrapped_height(&format!("{} b", "x".repeat(22)), 10.0), 45.0);
        assert_eq!(wrapped_height("a\nb", 20.0), 30.0);
        assert_eq!(wrapped_height("", 20.0), 15.0);
    }
}
