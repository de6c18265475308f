//! Report layer: a small table of strings rendered as aligned text or as markdown, so the
//! table and markdown reports share one set of rows.

use std::io::{self, Write};

use crossterm::style::Stylize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grid {
    pub columns: Vec<(String, Align)>,
    pub rows: Vec<Vec<String>>,
    /// Rows drawn emphasised (totals).
    pub strong_rows: Vec<usize>,
}

impl Grid {
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Grid {
            columns: columns.iter().map(|(name, align)| (name.to_string(), *align)).collect(),
            rows: Vec::new(),
            strong_rows: Vec::new(),
        }
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

    pub fn write_text(&self, out: &mut dyn Write, color: bool) -> io::Result<()> {
        let widths = self.widths();
        let line = |cells: &[String]| -> String {
            let mut text = String::new();
            for (c, cell) in cells.iter().enumerate() {
                let pad = widths[c].saturating_sub(cell.chars().count());
                let last = c + 1 == cells.len();
                if c > 0 {
                    text.push_str("  ");
                }
                match self.columns[c].1 {
                    Align::Left => {
                        text.push_str(cell);
                        if !last {
                            text.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                    Align::Right => {
                        text.extend(std::iter::repeat_n(' ', pad));
                        text.push_str(cell);
                    }
                }
            }
            text.truncate(text.trim_end().len());
            text
        };
        let header: Vec<String> = self.columns.iter().map(|c| c.0.clone()).collect();
        let header = line(&header);
        if color {
            writeln!(out, "{}", header.bold())?;
        } else {
            writeln!(out, "{header}")?;
        }
        for (index, row) in self.rows.iter().enumerate() {
            let text = line(row);
            if color && self.strong_rows.contains(&index) {
                writeln!(out, "{}", text.bold())?;
            } else {
                writeln!(out, "{text}")?;
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
                    // Markdown collapses leading spaces: keep the tree's indentation as NBSPs.
                    let body = cell.trim_start_matches(' ');
                    let indent = cell.len() - body.len();
                    let cell = format!("{}{}", "\u{a0}".repeat(indent), escape(body));
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
        g.write_text(&mut out, false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), " PID  NAME\n   1  init\n1234    a|b\n");
    }

    #[test]
    fn markdown_escapes_pipes() {
        let mut g = grid();
        g.drop_empty_columns();
        let mut out = Vec::new();
        g.write_markdown(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "| PID | NAME |\n| ---: | --- |\n| 1 | init |\n| 1234 | \u{a0}\u{a0}a\\|b |\n"
        );
    }
}
