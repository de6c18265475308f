//! TUI layer, views: the detail pane of the selected process — its command line, figures,
//! exact split, the processes it shares with, and its largest mappings.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

use super::theme::Theme;
use crate::tui::app::App;
use crate::units::{human_bytes, human_opt, shorten_left, shorten_right, stripped};

pub fn render(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(" Detail ");
    let Some(row) = app.selected_row() else {
        frame.render_widget(Paragraph::new("no process selected").block(block), area);
        return;
    };
    // Every line is fitted here (no wrapping by the widget): a figure never leaves its name.
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    let mut lines =
        vec![Line::styled(format!("{} ({})", stripped(&row.name), row.pid), theme.bold())];
    if let Some(cmd) = &row.cmdline {
        lines.push(Line::from(shorten_right(&stripped(&cmd.join(" ")), width)));
    }
    let tree = app.accounting.as_ref().and_then(|a| a.tree_of(row.pid));
    if let Some(role) = tree.and_then(|t| crate::model::python::roles(t).get(&row.pid).copied()) {
        lines.push(Line::from(shorten_right(&start_story(role), width)));
    }
    match &row.figures {
        Ok(f) => {
            let items = [("rss", f.rss), ("pss", f.pss), ("uss", f.uss), ("shared", f.shared)]
                .map(|(name, value)| format!("{name} {}", human_opt(value)));
            lines.extend(fit_items(&items, width).into_iter().map(Line::from));
        }
        Err(reason) => lines.push(Line::from(stripped(&reason.to_string()).into_owned())),
    }
    if let Some(Ok(e)) = &row.exact {
        let items = [
            format!("exact: private {}", human_bytes(e.uss)),
            format!("in tree {}", human_bytes(e.shared_in_tree)),
            format!("outside {}", human_bytes(e.shared_outside)),
        ];
        lines.extend(fit_items(&items, width).into_iter().map(Line::from));
    }
    if let Some(e) = tree.and_then(|t| t.totals.exact_ok()) {
        let partners = e.partners(row.pid);
        if !partners.is_empty() {
            lines.push(Line::styled("shares with:", theme.bold()));
            let name = |pid: u32| {
                tree.and_then(|t| t.processes.iter().find(|p| p.pid == pid))
                    .map_or(String::new(), |p| stripped(&p.name).into_owned())
            };
            for (pid, bytes) in partners.iter().take(4) {
                let line = format!("  {:>9}  {pid} {}", human_bytes(*bytes), name(*pid));
                lines.push(Line::from(shorten_right(&line, width)));
            }
        }
    }
    lines.push(Line::styled("largest mappings:", theme.bold()));
    match &row.mappings {
        Some(Ok(maps)) => {
            let mut maps: Vec<_> = maps.iter().collect();
            maps.sort_by_key(|m| std::cmp::Reverse(m.figures.rss));
            for m in maps.iter().take(6) {
                let figures = format!(
                    "  {:>9} {:>9} shared  ",
                    human_opt(m.figures.rss),
                    human_opt(m.figures.shared)
                );
                let room = width.saturating_sub(figures.chars().count()).max(8);
                lines.push(Line::from(format!(
                    "{figures}{}",
                    shorten_left(&stripped(&m.name), room)
                )));
            }
        }
        Some(Err(reason)) => lines.push(Line::from(format!("  {}", stripped(&reason.to_string())))),
        None => lines.push(Line::from("  reading smaps…")),
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// What a Python role means for the process's memory, in a line.
fn start_story(role: crate::model::python::PythonRole) -> String {
    use crate::model::python::{PythonRole, StartMethod};
    let what = match role {
        PythonRole::Worker(StartMethod::Fork) => "shares its parent's pages copy-on-write",
        PythonRole::Worker(_) => "inherited none of its parent's data",
        PythonRole::ForkServer => "forks the workers; holds none of the parent's data",
        PythonRole::ResourceTracker => "cleans up shared memory and semaphores",
    };
    format!("{}: {what}", role.describe())
}

/// `items` joined by two spaces on lines of at most `width` characters, broken only between
/// items (an item wider than a line has one of its own).
fn fit_items(items: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for item in items {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 2 + item.chars().count() <= width => {
                line.push_str("  ");
                line.push_str(item);
            }
            _ => lines.push(item.clone()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn figures_break_between_items_never_inside_one() {
        let items = ["rss 27.3 MiB", "pss 7.1 MiB", "uss 1012 KiB"].map(String::from);
        assert_eq!(super::fit_items(&items, 26), ["rss 27.3 MiB  pss 7.1 MiB", "uss 1012 KiB"]);
        assert_eq!(super::fit_items(&items, 80), ["rss 27.3 MiB  pss 7.1 MiB  uss 1012 KiB"]);
    }
}
