//! TUI layer, views: the processes view — one row per process, in tree order or as a flat
//! list sorted by a figure, with a bar splitting its RSS by who else maps its pages.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, TableState};

use super::table::{Column, column, fit, fitted_table, flexible, visible};
use super::theme::{SEGMENTS, Theme};
use crate::model::Unreadable;
use crate::model::accounting::ProcessRow;
use crate::tui::app::{App, View};
use crate::units::{NOT_AVAILABLE, human_bytes, human_opt, stripped};

/// Width of the per-process bar.
const BAR: usize = 20;

fn bar<'a>(row: &ProcessRow, theme: &Theme) -> Line<'a> {
    let Some(split) = row.rss_split() else { return Line::from("") };
    let parts = [split.private, split.shared_in_tree, split.shared_outside, split.duplicated];
    let total: u64 = parts.iter().sum();
    if total == 0 {
        return Line::from("");
    }
    let mut spans = Vec::new();
    let mut used = 0;
    for (i, (glyph, color, _)) in SEGMENTS.iter().enumerate() {
        let mut width = (parts[i] as f64 / total as f64 * BAR as f64).round() as usize;
        if i == SEGMENTS.len() - 1 || used + width > BAR {
            width = width.min(BAR - used);
        }
        if parts[i] > 0 && width == 0 && used < BAR {
            width = 1;
        }
        used += width;
        spans.push(Span::styled(glyph.to_string().repeat(width), theme.fg(*color)));
    }
    Line::from(spans)
}

/// The processes view's columns, the most important first.
pub const PROCESS_COLUMNS: [Column; 9] = [
    column("PID", 7, 0),
    flexible("NAME", 8),
    column("RSS", 10, 0),
    column("PSS", 10, 2),
    column("USS", 10, 1),
    column("SHARED", 10, 3),
    column("SWAP", 8, 6),
    column("COPIED", 10, 5),
    column("RSS SPLIT", BAR as u16, 4),
];

/// What a forked worker copied from its parent since the fork (`≈`: estimated without root);
/// blank for a tree's root and without pages.
fn copied_cell(row: &ProcessRow) -> String {
    match &row.erosion {
        Some(Ok(e)) => {
            format!("{}{}", if e.estimated { "≈" } else { "" }, human_bytes(e.copied_from_parent))
        }
        Some(Err(Unreadable::NotApplicable(_))) | None => String::new(),
        Some(Err(_)) => NOT_AVAILABLE.to_string(),
    }
}

pub fn render(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let rows = app.rows();
    let exact = app.accounting.as_ref().is_some_and(|a| a.totals.exact_ok().is_some());
    let (shown, selected) = visible(rows.len(), app.selected, area.height);
    let body: Vec<Vec<Cell>> = rows[shown]
        .iter()
        .map(|row| {
            let indent = if app.flat { String::new() } else { "  ".repeat(row.depth) };
            let name = format!("{indent}{}", stripped(&row.name));
            match &row.figures {
                Ok(f) => {
                    // How Python started it, after the name, dimmed.
                    let name = match app.roles.get(&row.pid) {
                        Some(role) => Line::from(vec![
                            Span::raw(name),
                            Span::styled(format!(" · {}", role.label()), theme.dim()),
                        ]),
                        None => Line::from(name),
                    };
                    let mut cells = vec![Cell::from(row.pid.to_string()), Cell::from(name)];
                    for v in [f.rss, f.pss, f.uss, f.shared, f.swap] {
                        cells.push(Cell::from(Line::from(human_opt(v)).right_aligned()));
                    }
                    cells.push(Cell::from(Line::from(copied_cell(row)).right_aligned()));
                    cells.push(Cell::from(bar(row, theme)));
                    cells
                }
                Err(reason) => {
                    // The reason goes beside the name: the one column every width shows.
                    let name = Line::from(vec![
                        Span::raw(name),
                        Span::styled(format!(" ({})", reason.kind()), theme.fg(Color::Yellow)),
                    ]);
                    let mut cells = vec![
                        Cell::from(row.pid.to_string()),
                        Cell::from(name),
                        Cell::from(Line::from(NOT_AVAILABLE).right_aligned()),
                    ];
                    cells.extend((0..6).map(|_| Cell::from("")));
                    cells
                }
            }
        })
        .collect();
    let mode = if app.flat { format!("flat, by {}", app.sort.name()) } else { "tree".to_string() };
    let legend = if exact {
        " █ private ▓ shared in tree ▒ shared outside ░ duplicated "
    } else {
        " █ private ▓ shared "
    };
    let keep = fit(&PROCESS_COLUMNS, area.width.saturating_sub(2));
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {} [{mode}] ", View::Processes.title()));
    if keep.contains(&(PROCESS_COLUMNS.len() - 1)) {
        block = block.title_bottom(Line::from(legend).right_aligned());
    }
    let table = fitted_table(&PROCESS_COLUMNS, &keep, body, theme).block(block);
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, area, &mut state);
}
