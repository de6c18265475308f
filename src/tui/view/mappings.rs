//! TUI layer, views: mappings by name across the target (like librank), with the exact
//! sharing of each name when physical pages were read.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, TableState, Wrap};

use super::table::{Column, column, fit, fitted_table, flexible, flexible_width, visible};
use super::theme::Theme;
use crate::tui::app::{App, View};
use crate::units::{human_opt, shorten_left, stripped};

const MAPPING_COLUMNS: [Column; 7] = [
    flexible("MAPPING", 16),
    column("PROCS", 6, 5),
    column("Σ RSS", 10, 0),
    column("Σ PSS", 10, 1),
    column("Σ USS", 10, 2),
    column("IN TREE", 10, 3),
    column("OUTSIDE", 10, 4),
];

pub fn render(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let block =
        Block::default().borders(Borders::ALL).title(format!(" {} ", View::Mappings.title()));
    let groups = app.accounting.as_ref().and_then(|a| a.mappings_by_name.as_ref());
    let Some(groups) = groups else {
        let text = if app.replay.is_some() {
            "A recording holds no per-mapping rows: this view is for live processes \
             (`memtree top`, or `memtree report --mappings`)."
        } else {
            "Reading every mapping (smaps) of the tree… (this view asks the sampler for them)"
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(block), area);
        return;
    };
    let sharing = app.accounting.as_ref().and_then(|a| a.totals.exact_ok()).map(|e| &e.by_name);
    let keep = fit(&MAPPING_COLUMNS, area.width.saturating_sub(2));
    let name_width = flexible_width(&MAPPING_COLUMNS, &keep, area.width.saturating_sub(2));
    let (shown, selected) = visible(groups.len(), app.selected, area.height);
    let rows: Vec<Vec<Cell>> = groups[shown]
        .iter()
        .map(|g| {
            let exact = sharing.and_then(|s| s.iter().find(|n| n.name == g.name));
            let figure = |v: Option<u64>| Cell::from(Line::from(human_opt(v)).right_aligned());
            vec![
                Cell::from(shorten_left(&stripped(&g.name), name_width)),
                Cell::from(Line::from(g.processes.to_string()).right_aligned()),
                figure(Some(g.rss_sum)),
                figure(Some(g.pss_sum)),
                figure(Some(g.uss_sum)),
                // A name with no counted frame (vvar, vdso) shares nothing: 0, not unknown.
                figure(exact.map(|n| n.shared_in_tree).or(sharing.map(|_| 0))),
                figure(exact.map(|n| n.shared_outside).or(sharing.map(|_| 0))),
            ]
        })
        .collect();
    let table = fitted_table(&MAPPING_COLUMNS, &keep, rows, theme).block(block);
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, area, &mut state);
}
