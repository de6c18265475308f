//! TUI layer, views: the detail pane of the selected process — its command line, figures,
//! exact split, the processes it shares with, and its largest mappings.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Chart, Dataset, GraphType, Paragraph};

use super::theme::Theme;
use super::timeline;
use crate::model::erosion;
use crate::tui::app::App;
use crate::units::{human_bytes, human_opt, human_rate, shorten_left, shorten_right, stripped};

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
    if let Some(role) = app.roles.get(&row.pid).copied() {
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
    let series = app.copies.get(&row.pid).filter(|s| s.len() >= 2);
    let mut copies_in = None;
    if let Some(Ok(e)) = &row.erosion {
        let estimate = if e.estimated { "≈" } else { "" };
        let growth = series
            .and_then(|s| erosion::growth(&s.iter().copied().collect::<Vec<_>>()))
            .map(|g| format!(" ({})", human_rate(g)))
            .unwrap_or_default();
        let items = [
            format!(
                "forked from {}: shares {estimate}{}",
                e.parent,
                human_bytes(e.shared_with_parent)
            ),
            format!("copied {estimate}{}{growth}", human_bytes(e.copied_from_parent)),
        ];
        lines.extend(fit_items(&items, width).into_iter().map(Line::from));
        if !e.by_mapping.is_empty() {
            let names: Vec<String> = e
                .by_mapping
                .iter()
                .map(|(name, bytes)| {
                    format!("{} {}", shorten_left(&stripped(name), 24), human_bytes(*bytes))
                })
                .collect();
            let line = format!("copies in: {}", names.join(", "));
            copies_in = Some(Line::from(shorten_right(&line, width)));
        }
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
    lines.extend(copies_in);
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
        None if app.replay.is_some() => lines.push(Line::from("  not in a recording")),
        None => lines.push(Line::from("  reading smaps…")),
    }
    // A worker's copies over time under its lines, when the pane has room for both.
    let chart_rows = 7;
    let text_rows = lines.len() as u16 + 2;
    match series {
        Some(series) if area.height >= text_rows.min(14) + chart_rows => {
            let [text, chart] =
                Layout::vertical([Constraint::Min(4), Constraint::Length(chart_rows)]).areas(area);
            frame.render_widget(Paragraph::new(lines).block(block), text);
            render_copies(frame, series, chart, theme);
        }
        _ => frame.render_widget(Paragraph::new(lines).block(block), area),
    }
}

/// The selected worker's copied-from-parent bytes over the dashboard's history.
fn render_copies(
    frame: &mut Frame,
    series: &std::collections::VecDeque<(f64, u64)>,
    area: Rect,
    theme: &Theme,
) {
    let points: Vec<(f64, f64)> =
        series.iter().map(|&(t, bytes)| (t, bytes as f64 / (1u64 << 20) as f64)).collect();
    let (t0, t1) = (points[0].0, points[points.len() - 1].0.max(points[0].0 + 1.0));
    let top = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let data = Dataset::default()
        .marker(symbols::Marker::Braille)
        .graph_type(GraphType::Line)
        .style(theme.fg(Color::Magenta))
        .data(&points);
    let chart = Chart::new(vec![data])
        .legend_position(None)
        .block(Block::default().borders(Borders::ALL).title(Line::from(vec![
            Span::raw(" "),
            Span::styled("━ copied from parent", theme.fg(Color::Magenta)),
            Span::raw(" (MiB) "),
        ])))
        .x_axis(timeline::time_axis(t0, t1))
        .y_axis(timeline::value_axis(top));
    frame.render_widget(chart, area);
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
