//! TUI layer, views: the detail pane of the selected process — its command line, figures,
//! exact split, the processes it shares with, and its largest mappings.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::theme::Theme;
use crate::tui::app::App;
use crate::units::{human_bytes, human_opt, stripped};

pub fn render(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(" Detail ");
    let Some(row) = app.selected_row() else {
        frame.render_widget(Paragraph::new("no process selected").block(block), area);
        return;
    };
    let mut lines =
        vec![Line::styled(format!("{} ({})", stripped(&row.name), row.pid), theme.bold())];
    if let Some(cmd) = &row.cmdline {
        lines.push(Line::from(stripped(&cmd.join(" ")).into_owned()));
    }
    match &row.figures {
        Ok(f) => lines.push(Line::from(format!(
            "rss {}  pss {}  uss {}  shared {}",
            human_opt(f.rss),
            human_opt(f.pss),
            human_opt(f.uss),
            human_opt(f.shared)
        ))),
        Err(reason) => lines.push(Line::from(stripped(&reason.to_string()).into_owned())),
    }
    if let Some(Ok(e)) = &row.exact {
        lines.push(Line::from(format!(
            "exact: private {}, in tree {}, outside {}",
            human_bytes(e.uss),
            human_bytes(e.shared_in_tree),
            human_bytes(e.shared_outside)
        )));
    }
    let tree = app.accounting.as_ref().and_then(|a| a.tree_of(row.pid));
    if let Some(e) = tree.and_then(|t| t.totals.exact_ok()) {
        let partners = e.partners(row.pid);
        if !partners.is_empty() {
            lines.push(Line::styled("shares with:", theme.bold()));
            for (pid, bytes) in partners.iter().take(4) {
                lines.push(Line::from(format!("  {pid:<8} {}", human_bytes(*bytes))));
            }
        }
    }
    lines.push(Line::styled("largest mappings:", theme.bold()));
    match &row.mappings {
        Some(Ok(maps)) => {
            let mut maps: Vec<_> = maps.iter().collect();
            maps.sort_by_key(|m| std::cmp::Reverse(m.figures.rss));
            for m in maps.iter().take(6) {
                lines.push(Line::from(format!(
                    "  {:>9} {:>9} shared  {}",
                    human_opt(m.figures.rss),
                    human_opt(m.figures.shared),
                    stripped(&m.name)
                )));
            }
        }
        Some(Err(reason)) => lines.push(Line::from(format!("  {}", stripped(&reason.to_string())))),
        None => lines.push(Line::from("  reading smaps…")),
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}
