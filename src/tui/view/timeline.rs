//! TUI layer, views: the timeline — Σ RSS (what a monitor shows), the footprint and Σ PSS
//! over the dashboard's history.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType};

use super::theme::Theme;
use crate::tui::app::App;

pub fn render(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let points = |f: fn(&crate::tui::app::Point) -> u64| -> Vec<(f64, f64)> {
        app.history.iter().map(|p| (p.t, f(p) as f64 / (1u64 << 20) as f64)).collect()
    };
    let rss = points(|p| p.rss_sum);
    let footprint = points(|p| p.footprint);
    let pss = points(|p| p.pss_sum);
    let (t0, t1) = (
        app.history.front().map_or(0.0, |p| p.t),
        app.history.back().map_or(1.0, |p| p.t).max(1.0),
    );
    let top = rss.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let datasets = vec![
        Dataset::default()
            .name("Σ RSS (a monitor)")
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.fg(Color::Red))
            .data(&rss),
        Dataset::default()
            .name("footprint")
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.fg(Color::Green))
            .data(&footprint),
        Dataset::default()
            .name("Σ PSS")
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.fg(Color::Cyan))
            .data(&pss),
    ];
    // The legend goes in the title: ratatui hides its own legend box in a chart this short.
    let title = Line::from(vec![
        Span::raw(" Timeline (MiB): "),
        Span::styled("━ Σ RSS (a monitor)", theme.fg(Color::Red)),
        Span::raw("  "),
        Span::styled("━ footprint", theme.fg(Color::Green)),
        Span::raw("  "),
        Span::styled("━ Σ PSS ", theme.fg(Color::Cyan)),
    ]);
    let chart = Chart::new(datasets)
        .legend_position(None)
        .block(Block::default().borders(Borders::ALL).title(title))
        .x_axis(time_axis(t0, t1))
        .y_axis(value_axis(top));
    frame.render_widget(chart, area);
}

/// A chart's time axis from `t0` to `t1` seconds, labelled at its ends.
pub fn time_axis<'a>(t0: f64, t1: f64) -> Axis<'a> {
    Axis::default()
        .bounds([t0, t1])
        .labels([Span::raw(format!("{t0:.0}s")), Span::raw(format!("{t1:.0}s"))])
}

/// A chart's value axis from 0 to `top`, labelled at its ends.
pub fn value_axis<'a>(top: f64) -> Axis<'a> {
    Axis::default().bounds([0.0, top]).labels([Span::raw("0"), Span::raw(format!("{top:.0}"))])
}
