//! TUI layer, views: a table whose columns fit the width they get — the least important
//! dropped first, never the digits of a figure cut off (ratatui would shrink every column).

use ratatui::layout::Constraint;
use ratatui::widgets::{Cell, Row, Table};

use super::theme::Theme;

/// A table column: its title, its width (for the flexible name column, its minimum) and its
/// priority (0: always shown; higher: dropped first when the table is too narrow).
pub struct Column {
    pub title: &'static str,
    pub width: u16,
    pub priority: u8,
    pub flexible: bool,
}

pub const fn column(title: &'static str, width: u16, priority: u8) -> Column {
    Column { title, width, priority, flexible: false }
}

pub const fn flexible(title: &'static str, width: u16) -> Column {
    Column { title, width, priority: 0, flexible: true }
}

/// The columns that fit in `width` (a table's inner width, one space between columns), the
/// least important dropped first: ratatui would otherwise shrink every column and cut the
/// leading digits off the figures.
pub fn fit(columns: &[Column], width: u16) -> Vec<usize> {
    let mut keep: Vec<usize> = (0..columns.len()).collect();
    loop {
        let need: u16 = keep.iter().map(|&i| columns[i].width).sum::<u16>()
            + keep.len().saturating_sub(1) as u16;
        let drop = keep
            .iter()
            .enumerate()
            .filter(|&(_, &i)| columns[i].priority > 0)
            .max_by_key(|&(position, &i)| (columns[i].priority, position))
            .map(|(position, _)| position);
        match drop {
            Some(position) if need > width => {
                keep.remove(position);
            }
            _ => return keep,
        }
    }
}

/// The width the flexible column gets once the other kept columns have theirs.
pub fn flexible_width(columns: &[Column], keep: &[usize], width: u16) -> usize {
    let fixed: u16 =
        keep.iter().filter(|&&i| !columns[i].flexible).map(|&i| columns[i].width).sum();
    usize::from(width.saturating_sub(fixed + keep.len().saturating_sub(1) as u16))
}

/// A table of the kept `columns`: header, constraints, and each row's kept cells.
pub fn fitted_table<'a>(
    columns: &[Column],
    keep: &[usize],
    rows: Vec<Vec<Cell<'a>>>,
    theme: &Theme,
) -> Table<'a> {
    let pick = |cells: Vec<Cell<'a>>| -> Vec<Cell<'a>> {
        cells.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, c)| c).collect()
    };
    let header = Row::new(keep.iter().map(|&i| Cell::from(columns[i].title))).style(theme.bold());
    let widths: Vec<Constraint> = keep
        .iter()
        .map(|&i| {
            let c = &columns[i];
            if c.flexible { Constraint::Min(c.width) } else { Constraint::Length(c.width) }
        })
        .collect();
    Table::new(rows.into_iter().map(|cells| Row::new(pick(cells))), widths)
        .header(header)
        .row_highlight_style(theme.selected())
}

/// The rows of a list of `len` that a table of `area_height` lines (borders and header
/// included) shows with `selected` in view, and the selection's place among them: only those
/// rows are built, so a list of thousands costs what the screen shows. The window follows the
/// selection as ratatui's would when scrolling down from the top.
pub fn visible(len: usize, selected: usize, area_height: u16) -> (std::ops::Range<usize>, usize) {
    let height = usize::from(area_height.saturating_sub(3)).max(1);
    let selected = selected.min(len.saturating_sub(1));
    let offset = (selected + 1).saturating_sub(height);
    (offset..len.min(offset + height), selected - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rows_on_screen_are_built_and_the_selection_stays_on_it() {
        // 1,000 rows in a table of 13 lines: 10 rows on screen.
        assert_eq!(visible(1000, 0, 13), (0..10, 0));
        assert_eq!(visible(1000, 9, 13), (0..10, 9));
        assert_eq!(visible(1000, 10, 13), (1..11, 9));
        assert_eq!(visible(1000, 999, 13), (990..1000, 9));
        assert_eq!(visible(3, 7, 13), (0..3, 2), "a selection past the end is the last row");
        assert_eq!(visible(0, 0, 13), (0..0, 0));
    }
}
