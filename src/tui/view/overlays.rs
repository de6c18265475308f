//! TUI layer, views: what draws over the rest — the help (every key), the explanation of the
//! figures, and the screen for a window too small for the dashboard.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::header::totals_line;
use super::theme::Theme;
use crate::report::explain;
use crate::tui::app::App;
use crate::tui::event::KEYS;

/// Below this the screen shows only the totals and a note.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// The help's column of keys: the widest, and two spaces.
const KEY_COLUMN: usize = 19;

/// The keys that do something here: a replay has no sampling to pause, a live dashboard no
/// samples to step through.
pub fn render_help(frame: &mut Frame, area: Rect, theme: &Theme, replay: bool) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .filter(|(keys, _)| if replay { !keys.starts_with('p') } else { !keys.starts_with('←') })
        .map(|(keys, what)| {
            // The widest keys ("q  Ctrl-Q  Ctrl-C") and two spaces before what they do.
            let keys = format!("{keys:<width$}", width = KEY_COLUMN);
            Line::from(vec![Span::styled(keys, theme.bold()), Span::raw(*what)])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(
        "Bar: RSS split into private, shared in tree, shared outside, duplicated.",
    ));
    let popup = centered(area, 90, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title(" Keys (Esc closes) ")),
        popup,
    );
}

pub fn render_explain(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let mut lines = vec![
        Line::styled("What these numbers mean", theme.bold()),
        Line::from(explain::WHY_MONITORS_OVERCOUNT),
        Line::from(""),
    ];
    match &app.accounting {
        Some(acc) => {
            let specs: Vec<_> = acc
                .trees
                .iter()
                .map(|t| app.workloads.iter().find(|(root, _)| *root == t.root_pid).map(|w| w.1))
                .collect();
            let per_tree = acc.trees.len() > 1 || specs.iter().any(Option::is_some);
            if per_tree {
                for paragraph in explain::per_tree(acc, &specs) {
                    lines.push(Line::from(crate::units::stripped(&paragraph).into_owned()));
                    lines.push(Line::from(""));
                }
                if acc.trees.len() > 1 {
                    lines.push(Line::styled("All together", theme.bold()));
                }
            }
            for sentence in explain::explain(acc) {
                lines.push(Line::from(sentence));
            }
        }
        None => lines.push(Line::from("Waiting for the first sample…")),
    }
    lines.push(Line::from(""));
    lines.push(Line::from(explain::READING_USS));
    let popup = centered(area, area.width.saturating_sub(8).max(40), area.height.saturating_sub(4));
    let text = Paragraph::new(lines).wrap(Wrap { trim: true });
    // Longer than the window: it scrolls, never further than its last line.
    let inner = (popup.width.saturating_sub(2), popup.height.saturating_sub(2));
    let total = u16::try_from(text.line_count(inner.0)).unwrap_or(u16::MAX);
    let overflow = total.saturating_sub(inner.1);
    let scroll = app.explain_scroll.min(overflow);
    app.explain_max.set(overflow);
    let title = match (overflow, scroll) {
        (0, _) => " Explain (Esc closes) ".to_string(),
        (_, s) if s >= overflow => " Explain (↑ scrolls back · Esc closes) ".to_string(),
        _ => " Explain (↓ more · Esc closes) ".to_string(),
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        text.scroll((scroll, 0)).block(Block::default().borders(Borders::ALL).title(title)),
        popup,
    );
}

/// A window below [`MIN_WIDTH`]×[`MIN_HEIGHT`]: what to do first (so it is never pushed off
/// the screen), then the headline figures in what room is left.
pub fn render_tiny(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let lines = vec![
        Line::from(format!(
            "enlarge to {MIN_WIDTH}×{MIN_HEIGHT} (now {}×{})",
            area.width, area.height
        )),
        Line::styled("memtree top", theme.bold()),
        totals_line(app, theme),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}
