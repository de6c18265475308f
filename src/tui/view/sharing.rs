//! TUI layer, views: who shares with whom — how many processes map each frame, and the
//! pairs of processes sharing the most.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState, Wrap};

use super::theme::Theme;
use crate::tui::app::{App, View};
use crate::units::human_bytes;

pub fn render(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let block =
        Block::default().borders(Borders::ALL).title(format!(" {} ", View::Sharing.title()));
    let exact: Vec<_> = app
        .accounting
        .iter()
        .flat_map(|a| a.trees.iter())
        .filter_map(|t| t.totals.exact_ok().map(|e| (t, e)))
        .collect();
    if exact.is_empty() {
        let why = app.exact_note.clone().unwrap_or_else(|| {
            "Who shares with whom needs physical pages (root): waiting for exact figures…".into()
        });
        frame.render_widget(Paragraph::new(why).wrap(Wrap { trim: true }).block(block), area);
        return;
    }
    let [hist, pairs] =
        Layout::horizontal([Constraint::Length(34), Constraint::Min(20)]).areas(block.inner(area));
    frame.render_widget(block, area);
    let mut lines = vec![Line::styled("Frames mapped by k processes", theme.bold())];
    for (tree, e) in &exact {
        lines.push(Line::from(format!("tree {}:", tree.root_pid)));
        for &(k, bytes) in e.histogram.iter().rev() {
            lines.push(Line::from(format!("  k = {k:<3} {:>10}", human_bytes(bytes))));
        }
    }
    frame.render_widget(Paragraph::new(lines), hist);
    let header = Row::new(["PROCESS", "SHARES WITH", "BYTES"]).style(theme.bold());
    let rows: Vec<Row> = exact
        .iter()
        .flat_map(|(_, e)| e.pairs.iter())
        .map(|p| {
            Row::new(vec![
                Cell::from(p.a.to_string()),
                Cell::from(p.b.to_string()),
                Cell::from(Line::from(human_bytes(p.bytes)).right_aligned()),
            ])
        })
        .collect();
    let table =
        Table::new(rows, [Constraint::Length(9), Constraint::Length(12), Constraint::Length(10)])
            .header(header)
            .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, pairs, &mut state);
}
