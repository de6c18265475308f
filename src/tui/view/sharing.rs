//! TUI layer, views: who shares with whom — how many processes map each frame, and the sharing
//! groups: the sets of processes that map the same frames, with their names, largest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, TableState, Wrap};

use super::table::{Column, column, fit, fitted_table, flexible, flexible_width, visible};
use super::theme::Theme;
use crate::report::explain;
use crate::tui::app::{App, View};
use crate::units::{human_bytes, shorten_left, shorten_right, stripped};

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
    let [hist, groups_area] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(20)]).areas(block.inner(area));
    frame.render_widget(block, area);
    let mut lines = vec![Line::styled("Frames mapped by k processes", theme.bold())];
    for (tree, e) in &exact {
        lines.push(Line::from(format!("tree {}:", tree.root_pid)));
        for &(k, bytes) in e.histogram.iter().rev() {
            lines.push(Line::from(format!("  k = {k:<3} {:>10}", human_bytes(bytes))));
        }
    }
    frame.render_widget(Paragraph::new(lines), hist);
    let keep = fit(&GROUP_COLUMNS, groups_area.width);
    let who_width = flexible_width(&GROUP_COLUMNS, &keep, groups_area.width);
    let all: Vec<_> =
        exact.iter().flat_map(|(tree, e)| e.groups.iter().map(move |g| (tree, g))).collect();
    let (shown, selected) = visible(all.len(), app.selected, groups_area.height + 2);
    let rows: Vec<Vec<Cell>> = all[shown]
        .iter()
        .map(|&(tree, g)| {
            let mapped: Vec<String> =
                g.mappings.iter().map(|(name, _)| shorten_left(&stripped(name), 24)).collect();
            vec![
                Cell::from(Line::from(g.members.len().to_string()).right_aligned()),
                Cell::from(Line::from(human_bytes(g.bytes)).right_aligned()),
                Cell::from(shorten_right(
                    &stripped(&explain::members(tree, &g.members)),
                    who_width,
                )),
                Cell::from(mapped.join(", ")),
            ]
        })
        .collect();
    let table = fitted_table(&GROUP_COLUMNS, &keep, rows, theme);
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, groups_area, &mut state);
}

/// The groups table: how many processes, the bytes they share, who they are, what as.
const GROUP_COLUMNS: [Column; 4] = [
    column("PROCS", 5, 0),
    column("SHARE", 10, 0),
    flexible("WHO", 20),
    column("MAPPED AS", 20, 1),
];
