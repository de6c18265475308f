//! TUI layer, views: the header — what is watched, how fresh the figures are, the four
//! headline figures (what a monitor shows, what the target really uses, the overcount, the
//! duplicated content) and a note — and the footer's key hints.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::tui::app::App;
use crate::units::{NOT_AVAILABLE, human_bytes, human_opt, ratio_opt, stripped};

fn age(app: &App, at: Option<Instant>) -> String {
    match at {
        Some(at) => format!("{:.1}s old", app.now.saturating_duration_since(at).as_secs_f64()),
        None => "none yet".to_string(),
    }
}

/// The headline figures in short words, two lines, for windows under 60 columns.
fn compact_totals<'a>(app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let Some(acc) = &app.accounting else { return vec![Line::from("waiting…")] };
    let t = &acc.totals;
    let uses = match (t.footprint, t.exact_ok().is_some()) {
        (Some(f), true) => format!("{} exact", human_bytes(f)),
        (Some(f), false) => format!("≈ {}", human_bytes(f)),
        (None, _) => NOT_AVAILABLE.to_string(),
    };
    let duplicated = match &t.dedup {
        Some(Ok(d)) => human_bytes(d.total.duplicated),
        _ => NOT_AVAILABLE.to_string(),
    };
    vec![
        Line::from(vec![
            Span::raw("Σ RSS "),
            Span::styled(human_opt(t.rss_sum), theme.bold()),
            Span::raw("  uses "),
            Span::styled(uses, theme.fg(Color::Green).add_modifier(Modifier::BOLD)),
        ]),
        Line::from(vec![
            Span::raw("overcount "),
            Span::styled(ratio_opt(t.overcount), theme.bold()),
            Span::raw("  duplicated "),
            Span::styled(duplicated, theme.bold()),
        ]),
    ]
}

/// The four headline figures: what a monitor shows, what the tree uses, the overcount, and
/// the duplicated content.
pub fn totals_line<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let Some(acc) = &app.accounting else {
        return Line::from("waiting for the first sample…");
    };
    let t = &acc.totals;
    let exact = t.exact_ok().is_some();
    let uses = match t.footprint {
        Some(f) if exact => format!("{} (exact)", human_bytes(f)),
        Some(f) => format!("≈ {} (PSS estimate)", human_bytes(f)),
        None => NOT_AVAILABLE.to_string(),
    };
    let overcount = ratio_opt(t.overcount);
    let over_style = match t.overcount {
        Some(o) if o >= 1.5 => theme.fg(Color::Red).add_modifier(Modifier::BOLD),
        _ => theme.bold(),
    };
    let duplicated = match &t.dedup {
        Some(Ok(d)) => human_bytes(d.total.duplicated),
        Some(Err(_)) => format!("{NOT_AVAILABLE} (needs root)"),
        None => "not measured".to_string(),
    };
    Line::from(vec![
        Span::raw("Monitor (Σ RSS) "),
        Span::styled(human_opt(t.rss_sum), theme.bold()),
        Span::raw("  │  Really uses "),
        Span::styled(uses, theme.fg(Color::Green).add_modifier(Modifier::BOLD)),
        Span::raw("  │  Overcount "),
        Span::styled(overcount, over_style),
        Span::raw("  │  Duplicated "),
        Span::styled(duplicated, theme.bold()),
    ])
}

pub fn render(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let mut status = vec![Span::styled("memtree top", theme.bold())];
    if app.paused {
        // First, where a narrow window still shows it.
        status
            .push(Span::styled(" · PAUSED", theme.fg(Color::Yellow).add_modifier(Modifier::BOLD)));
    }
    // Without root the costly pass is the content pass alone: named for what it gave.
    let exact = app.accounting.as_ref().is_some_and(|a| a.totals.exact_ok().is_some());
    let pass = if exact { "exact" } else { "content" };
    if let Some(replay) = &app.replay {
        // The sample first, with how old its carried figures were when it was taken (a repeat
        // of an earlier sample has its own time): a long target or path is what gets cut.
        let point = replay.points.get(replay.at);
        let carried = app.accounting.as_ref().and_then(|a| a.exact_taken_at_unix);
        let old = match (carried, point) {
            (Some(at), Some(p)) => format!(" ({pass} {:.1}s old)", (p.taken_at_unix - at).max(0.0)),
            _ => String::new(),
        };
        status.push(Span::styled(
            format!(
                " · sample {}/{} at {:.1}s{old}",
                replay.at + 1,
                replay.points.len(),
                point.map_or(0.0, |p| p.seconds),
            ),
            theme.bold(),
        ));
        status.push(Span::raw(format!(
            " · replay of {}, {}",
            stripped(&app.target),
            point.map_or_else(String::new, |p| crate::units::utc_timestamp(p.taken_at_unix))
        )));
    } else {
        status.extend([
            Span::raw(format!(
                " · {} · every {:.1}s",
                stripped(&app.target),
                app.interval.as_secs_f64()
            )),
            Span::raw(format!(" · figures {}", age(app, app.updated_at))),
        ]);
        if app.exact_at.is_some() {
            status.push(Span::raw(format!(" · {pass} {}", age(app, app.exact_at))));
        }
    }
    let mut lines = vec![Line::from(status)];
    let totals = totals_line(app, theme);
    if area.width < 60 {
        lines.extend(compact_totals(app, theme));
    } else if totals.width() > usize::from(area.width) {
        // Too narrow for one line: the four figures two by two.
        let mut spans = totals.spans;
        let mut second = spans.split_off(spans.len() / 2);
        if let Some(label) = second.first_mut() {
            let trimmed = label.content.trim_start_matches([' ', '│']).to_string();
            label.content = trimmed.into();
        }
        lines.push(Line::from(spans));
        lines.push(Line::from(second));
    } else {
        lines.push(totals);
    }
    let note = if let Some(gone) = &app.target_gone {
        Some(Span::styled(
            format!("{gone}: these are its last figures (q to quit)"),
            theme.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ))
    } else {
        app.exact_note.as_ref().map(|n| Span::styled(n.clone(), theme.fg(Color::Yellow)))
    };
    if let Some(acc) = &app.accounting {
        let t = &acc.totals;
        let narrow = area.width < 60;
        let mut info = format!(
            "{} {} in {} {}",
            t.processes,
            if t.processes == 1 { "process" } else { "processes" },
            acc.trees.len(),
            if acc.trees.len() == 1 { "tree" } else { "trees" }
        );
        if t.unreadable_count() > 0 {
            info.push_str(&format!(", {} unreadable", t.unreadable_count()));
        }
        if let Some(e) = t.exact_ok() {
            let frees = if narrow { "frees" } else { "exiting frees" };
            info.push_str(&format!(", {frees} {}", human_bytes(e.exclusive)));
        }
        if narrow {
            info = info.replace(" processes in ", " processes, ");
        }
        lines.push(Line::from(info));
    }
    if let Some(note) = note {
        lines.push(Line::from(note));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

pub fn render_footer(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let hint = if app.replay.is_some() {
        " q quit · ← → earlier/later (Shift: ×10) · ? help · e explain · Tab views · Enter detail"
    } else if app.target_gone.is_some() {
        " q quit · ? help · e explain · Tab views · Enter detail"
    } else {
        " q quit · ? help · e explain · Tab views · Enter detail · s sort · t tree/flat · p pause"
    };
    frame.render_widget(Paragraph::new(Line::styled(hint, theme.fg(Color::Gray))), area);
}
