//! Report layer: a small table of strings rendered as aligned text or as markdown, so the
//! table and markdown reports share one set of rows.

use std::io::{self, Write};

use crossterm::style::Stylize;

use crate::units::{shorten_left, shorten_right, wrap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// How a column gives way when the table is wider than the page (text only; markdown and
/// JSON keep every cell whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Never narrowed (figures, pids).
    #[default]
    Keep,
    /// Cut from the left, so a path keeps its file name (`…/libc.so.6`).
    ShortenLeft,
    /// Cut at its end (a list whose first items matter most).
    ShortenRight,
    /// Wrapped onto lines of its own under the column (the last column: notes).
    Wrap,
}

/// A column is never narrowed below this.
const MIN_FITTED: usize = 16;
/// A wrapped column narrower than this goes under its row instead.
const NARROWEST_WRAP: usize = 30;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grid {
    pub columns: Vec<(String, Align)>,
    pub rows: Vec<Vec<String>>,
    /// Rows drawn emphasised (totals).
    pub strong_rows: Vec<usize>,
    /// How named columns give way to the page width.
    pub fits: Vec<(String, Fit)>,
}

impl Grid {
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Grid {
            columns: columns.iter().map(|(name, align)| (name.to_string(), *align)).collect(),
            rows: Vec::new(),
            strong_rows: Vec::new(),
            fits: Vec::new(),
        }
    }

    /// Lets the column `name` give way as `fit` says when the table is too wide.
    pub fn fit(mut self, name: &str, fit: Fit) -> Self {
        self.fits.push((name.to_string(), fit));
        self
    }

    fn fit_of(&self, column: usize) -> Fit {
        let name = &self.columns[column].0;
        self.fits.iter().find(|(n, _)| n == name).map_or(Fit::Keep, |(_, f)| *f)
    }

    /// The columns' widths within `page` characters: the columns that may give way, narrowed
    /// (paths first, then the wrapped one) until the table fits or they reach their minimum.
    fn fitted_widths(&self, page: usize) -> Vec<usize> {
        let mut widths = self.widths();
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        for kind in [Fit::ShortenLeft, Fit::ShortenRight, Fit::Wrap] {
            for c in 0..widths.len() {
                let excess = total(&widths).saturating_sub(page);
                if excess == 0 {
                    return widths;
                }
                if self.fit_of(c) == kind {
                    let least = MIN_FITTED.max(self.columns[c].0.chars().count()).min(widths[c]);
                    widths[c] = widths[c].saturating_sub(excess).max(least);
                }
            }
        }
        widths
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub fn push_strong(&mut self, row: Vec<String>) {
        self.strong_rows.push(self.rows.len());
        self.push(row);
    }

    /// Drops columns that are empty in every row (an all-blank NOTE column, say).
    pub fn drop_empty_columns(&mut self) {
        let keep: Vec<bool> = (0..self.columns.len())
            .map(|c| self.rows.iter().any(|row| !row[c].is_empty()))
            .collect();
        let filter = |cells: &mut Vec<String>| {
            let mut index = 0;
            cells.retain(|_| {
                index += 1;
                keep[index - 1]
            });
        };
        let mut names: Vec<String> = self.columns.iter().map(|c| c.0.clone()).collect();
        filter(&mut names);
        let aligns: Vec<Align> =
            self.columns.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c.1).collect();
        self.columns = names.into_iter().zip(aligns).collect();
        for row in &mut self.rows {
            filter(row);
        }
    }

    fn widths(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .map(|(c, (name, _))| {
                self.rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0).max(name.len())
            })
            .collect()
    }

    /// The table as aligned text within `page` columns (where the columns that may give way
    /// let it: see [`Fit`]).
    pub fn write_text(&self, out: &mut dyn Write, color: bool, page: usize) -> io::Result<()> {
        let widths = self.fitted_widths(page);
        let last_column = self.columns.len().saturating_sub(1);
        let wraps = self.fit_of(last_column) == Fit::Wrap;
        // Where the last column starts, for the lines a wrapped cell continues on.
        let indent: usize = widths[..last_column].iter().map(|w| w + 2).sum();
        let line = |cells: &[String]| -> Vec<String> {
            let mut text = String::new();
            let mut more = Vec::new();
            for (c, cell) in cells.iter().enumerate() {
                let last = c + 1 == cells.len();
                let cell = match self.fit_of(c) {
                    Fit::ShortenLeft => shorten_left(cell, widths[c]),
                    Fit::ShortenRight => shorten_right(cell, widths[c]),
                    Fit::Wrap if last && wraps && cell.chars().count() > widths[c] => {
                        if widths[c] >= NARROWEST_WRAP {
                            // Under the column, line by line.
                            let mut lines = wrap(cell, widths[c]).into_iter();
                            let first = lines.next().unwrap_or_default();
                            more = lines.map(|l| format!("{}{l}", " ".repeat(indent))).collect();
                            first
                        } else {
                            // Too narrow to read: on lines of its own under the row, after
                            // the first column.
                            let below = widths[0] + 2;
                            more = wrap(cell, page.saturating_sub(below).max(NARROWEST_WRAP))
                                .into_iter()
                                .map(|l| format!("{}{l}", " ".repeat(below)))
                                .collect();
                            String::new()
                        }
                    }
                    _ => cell.clone(),
                };
                let pad = widths[c].saturating_sub(cell.chars().count());
                if c > 0 {
                    text.push_str("  ");
                }
                match self.columns[c].1 {
                    Align::Left => {
                        text.push_str(&cell);
                        if !last {
                            text.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                    Align::Right => {
                        text.extend(std::iter::repeat_n(' ', pad));
                        text.push_str(&cell);
                    }
                }
            }
            text.truncate(text.trim_end().len());
            std::iter::once(text).chain(more).collect()
        };
        let header: Vec<String> = self.columns.iter().map(|c| c.0.clone()).collect();
        for header in line(&header) {
            if color {
                writeln!(out, "{}", header.bold())?;
            } else {
                writeln!(out, "{header}")?;
            }
        }
        for (index, row) in self.rows.iter().enumerate() {
            for text in line(row) {
                if color && self.strong_rows.contains(&index) {
                    writeln!(out, "{}", text.bold())?;
                } else {
                    writeln!(out, "{text}")?;
                }
            }
        }
        Ok(())
    }

    pub fn write_markdown(&self, out: &mut dyn Write) -> io::Result<()> {
        let escape = |cell: &str| cell.replace('|', "\\|");
        let header: Vec<String> = self.columns.iter().map(|c| escape(&c.0)).collect();
        writeln!(out, "| {} |", header.join(" | "))?;
        let rule: Vec<&str> =
            self.columns.iter().map(|c| if c.1 == Align::Right { "---:" } else { "---" }).collect();
        writeln!(out, "| {} |", rule.join(" | "))?;
        for (index, row) in self.rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .map(|cell| {
                    // Markdown collapses leading spaces: the tree's indentation (two spaces a
                    // level) is drawn with visible marks instead (`└ child`, `· └ grandchild`),
                    // which survive copying.
                    let body = cell.trim_start_matches(' ');
                    let depth = (cell.len() - body.len()) / 2;
                    let marks = match depth {
                        0 => String::new(),
                        d => format!("{}└ ", "· ".repeat(d - 1)),
                    };
                    let cell = format!("{marks}{}", escape(body));
                    if self.strong_rows.contains(&index) && !cell.is_empty() {
                        format!("**{cell}**")
                    } else {
                        cell
                    }
                })
                .collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        let mut g =
            Grid::new(&[("PID", Align::Right), ("NAME", Align::Left), ("NOTE", Align::Left)]);
        g.push(vec!["1".into(), "init".into(), String::new()]);
        g.push(vec!["1234".into(), "  a|b".into(), String::new()]);
        g
    }

    #[test]
    fn text_aligns_and_drops_empty_columns() {
        let mut g = grid();
        g.drop_empty_columns();
        let mut out = Vec::new();
        g.write_text(&mut out, false, 80).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), " PID  NAME\n   1  init\n1234    a|b\n");
    }

    #[test]
    fn a_wide_table_shortens_paths_from_the_left_and_wraps_its_notes() {
        let mut g =
            Grid::new(&[("RSS", Align::Right), ("MAPPING", Align::Left), ("NOTE", Align::Left)])
                .fit("MAPPING", Fit::ShortenLeft)
                .fit("NOTE", Fit::Wrap);
        g.push(vec![
            "1 MiB".into(),
            "/usr/lib/x86_64-linux-gnu/python3.11/lib-dynload/_random.cpython-311-x86_64-linux-gnu.so".into(),
            "footprint 29.7 MiB (exact), exclusive 28 MiB, overcount 3.8×".into(),
        ]);
        let mut out = Vec::new();
        g.write_text(&mut out, false, 50).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "  RSS  MAPPING           NOTE\n\
             1 MiB  …64-linux-gnu.so\n\
             \x20      footprint 29.7 MiB (exact), exclusive\n\
             \x20      28 MiB, overcount 3.8×\n"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 50), "{text}");
    }

    #[test]
    fn markdown_escapes_pipes() {
        let mut g = grid();
        g.drop_empty_columns();
        let mut out = Vec::new();
        g.write_markdown(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "| PID | NAME |\n| ---: | --- |\n| 1 | init |\n| 1234 | └ a\\|b |\n");
    }
}
