//! TUI layer: the frame's layout. `render` reads an [`App`] and places the views of
//! [`super::view`] in one frame; it changes nothing and reads nothing else (not even the clock:
//! the time is `App::now`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};

use super::app::{App, Overlay, View};
use super::view::overlays::{MIN_HEIGHT, MIN_WIDTH};
use super::view::theme::Theme;
use super::view::{detail, header, mappings, overlays, processes, sharing, timeline};

pub fn render(frame: &mut Frame, app: &App) {
    let theme = Theme { color: app.color };
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        overlays::render_tiny(frame, app, area, &theme);
        return;
    }
    let with_timeline = area.height >= 26;
    // A narrow window puts the four headline figures on two lines.
    let narrow =
        area.width < 60 || header::totals_line(app, &theme).width() > usize::from(area.width);
    let [top, body, chart, footer] = Layout::vertical([
        Constraint::Length(if narrow { 5 } else { 4 }),
        Constraint::Min(5),
        Constraint::Length(if with_timeline { 8 } else { 0 }),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(frame, app, top, &theme);
    let (main, side) = if app.detail && body.width >= 100 {
        let [m, s] = Layout::horizontal([Constraint::Min(60), Constraint::Length(44)]).areas(body);
        (m, Some(s))
    } else if app.detail {
        let [m, s] = Layout::vertical([Constraint::Min(4), Constraint::Length(10)]).areas(body);
        (m, Some(s))
    } else {
        (body, None)
    };
    match app.view {
        View::Processes => processes::render(frame, app, main, &theme),
        View::Mappings => mappings::render(frame, app, main, &theme),
        View::Sharing => sharing::render(frame, app, main, &theme),
    }
    if let Some(side) = side {
        detail::render(frame, app, side, &theme);
    }
    if with_timeline {
        timeline::render(frame, app, chart, &theme);
    }
    header::render_footer(frame, app, footer, &theme);
    match app.overlay {
        Overlay::Help => overlays::render_help(frame, area, &theme, app.replay.is_some()),
        Overlay::Explain => overlays::render_explain(frame, app, area, &theme),
        Overlay::None => {}
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::tui::app::tests::app_with_data;
    use crate::tui::event::{Action, KEYS};
    use crate::tui::view::processes::PROCESS_COLUMNS;
    use crate::tui::view::table::fit;
    use crate::units::shorten_left;

    fn draw(app: &App, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render(f, app)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| (0..width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>())
            .collect()
    }

    fn contains(lines: &[String], text: &str) -> bool {
        lines.iter().any(|l| l.contains(text))
    }

    #[test]
    fn header_totals_and_rows() {
        let app = app_with_data();
        let lines = draw(&app, 120, 30);
        assert!(
            lines[0].contains("memtree top") && lines[0].contains("workload fork"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("Monitor (Σ RSS) 1 GiB"), "{}", lines[1]);
        assert!(lines[1].contains("Really uses ≈ 258 MiB (PSS estimate)"), "{}", lines[1]);
        assert!(lines[1].contains("Overcount 4.0×"), "{}", lines[1]);
        assert!(lines[1].contains("Duplicated not measured"), "{}", lines[1]);
        assert!(contains(&lines, " Processes [tree] "));
        let root = lines.iter().find(|l| l.contains("fork_cow ")).unwrap();
        assert!(
            root.contains("100") && root.contains("258 MiB") && root.contains("66 MiB"),
            "{root}"
        );
        let worker = lines.iter().find(|l| l.contains("  fork_cow-w0")).unwrap();
        assert!(worker.contains("257 MiB") && worker.contains("1 MiB"), "{worker}");
        // The bar: almost all of a worker's RSS is shared.
        assert!(worker.contains("▓▓▓▓▓▓▓▓▓▓"), "{worker}");
        assert!(contains(&lines, "Timeline (MiB)"));
        assert!(contains(&lines, "q quit"));
    }

    #[test]
    fn ages_come_from_the_app_clock() {
        let mut app = app_with_data();
        app.now = app.updated_at.unwrap() + std::time::Duration::from_millis(2500);
        let first = draw(&app, 140, 30).remove(0);
        assert!(first.contains("figures 2.5s old"), "{first}");
        // The same state draws the same frame, however late it is drawn.
        assert_eq!(draw(&app, 140, 30), draw(&app, 140, 30));
    }

    #[test]
    fn detail_pane_and_overlays() {
        let mut app = app_with_data();
        app.apply(Action::Down);
        app.apply(Action::Detail);
        let lines = draw(&app, 120, 30);
        assert!(contains(&lines, " Detail "));
        assert!(contains(&lines, "fork_cow-w0 (101)"));
        assert!(contains(&lines, "largest mappings:"));
        app.apply(Action::Explain);
        let lines = draw(&app, 120, 30);
        assert!(contains(&lines, " Explain (Esc closes) "));
        assert!(contains(&lines, "A monitor adding RSS shows 1 GiB"), "{lines:#?}");
        app.apply(Action::Help);
        let lines = draw(&app, 120, 30);
        assert!(contains(&lines, " Keys (Esc closes) "));
        // Every key that does something live; stepping through samples is for a replay.
        for (keys, _) in KEYS {
            assert_eq!(contains(&lines, keys), !keys.starts_with('←'), "help lists {keys}");
            // …each apart from what it does.
            if !keys.starts_with('←') {
                assert!(contains(&lines, &format!("{keys}  ")), "{keys} runs into its text");
            }
        }
    }

    #[test]
    fn views_render_without_their_data() {
        let mut app = app_with_data();
        app.apply(Action::NextView);
        let lines = draw(&app, 100, 24);
        assert!(contains(&lines, "Mappings by name"));
        app.apply(Action::NextView);
        let lines = draw(&app, 100, 24);
        assert!(contains(&lines, "needs physical pages (root)"));
    }

    #[test]
    fn narrow_tables_drop_columns_not_digits() {
        let mut app = app_with_data();
        for (width, detail) in [(120, true), (80, false), (60, false), (40, false)] {
            if detail != app.detail {
                app.apply(Action::Detail);
            }
            let lines = draw(&app, width, 30);
            let root = lines.iter().find(|l| l.starts_with("│100 ")).unwrap();
            // The parent's RSS is 258 MiB: whole, never "58 MiB" or "iB".
            assert!(root.contains(" 258 MiB"), "{width} wide: {root}");
            assert!(!lines.iter().any(|l| l.contains("│iB") || l.contains(" iB")), "{lines:#?}");
        }
        let lines = draw(&app, 40, 10);
        assert!(lines[1].contains("Σ RSS 1 GiB") && lines[1].contains("uses"), "{lines:#?}");
        assert!(lines[2].contains("overcount 4.0×"), "{lines:#?}");
        assert!(contains(&lines, "USS"), "RSS and USS fit in 40 columns: {lines:#?}");
        let all = fit(&PROCESS_COLUMNS, 200);
        assert_eq!(all.len(), PROCESS_COLUMNS.len());
        let narrow = fit(&PROCESS_COLUMNS, 38);
        let titles: Vec<_> = narrow.iter().map(|&i| PROCESS_COLUMNS[i].title).collect();
        assert_eq!(titles, ["PID", "NAME", "RSS", "USS"]);
        assert_eq!(shorten_left("/usr/lib/x86_64-linux-gnu/libc.so.6", 10), "…libc.so.6");
        assert_eq!(shorten_left("[heap]", 10), "[heap]");
    }

    #[test]
    fn tiny_terminals_say_what_to_do_first() {
        let mut app = app_with_data();
        for (w, h) in [(39, 9), (20, 5), (30, 2)] {
            let text = draw(&app, w, h).join("");
            assert!(text.contains("enlarge to 40×10"), "{w}×{h}: {text:?}");
        }
        let lines = draw(&app, 39, 9);
        assert!(lines[0].starts_with("enlarge to 40×10 (now 39×9)"), "{lines:#?}");
        assert!(contains(&lines, "memtree top"), "{lines:#?}");
        // 40×10 is enough for the dashboard itself, detail pane and overlay included.
        app.apply(Action::Detail);
        app.apply(Action::Help);
        let lines = draw(&app, 40, 10);
        assert!(!contains(&lines, "enlarge"), "{lines:#?}");
        assert!(contains(&lines, "Keys (Esc closes)"), "{lines:#?}");
        // A 1×1 window draws without panicking.
        assert_eq!(draw(&app, 1, 1), ["e"]);
    }

    /// The dashboard on the three built-in workloads (exact figures), the clock stopped at the
    /// sample's time so every frame is the same.
    fn workloads_app() -> App {
        use crate::model::{Grouping, account, testing};
        use crate::runner::spec::{Spec, Touch, Variant};
        let accounting =
            account(&testing::workloads_snapshot(), &Grouping::Roots(vec![100, 200, 300]));
        let mut app = App::new(
            "workload fork + serialize + shared (64 KiB × 3 workers)".into(),
            std::time::Duration::from_secs(1),
            false,
        );
        let at = app.started;
        app.on_update(crate::sampler::Round {
            accounting: std::sync::Arc::new(accounting),
            at,
            exact_at: Some(at),
            exact_fresh: true,
            read: 12,
            reused: 0,
            cost: std::time::Duration::from_millis(3),
            target_gone: false,
        });
        app.now = at;
        let spec = |variant| Spec { variant, size_bytes: 64 << 10, workers: 3, touch: Touch::Read };
        app.workloads = vec![
            (100, spec(Variant::Fork)),
            (200, spec(Variant::Serialize)),
            (300, spec(Variant::Shared)),
        ];
        app
    }

    fn screen(app: &App, width: u16, height: u16) -> String {
        draw(app, width, height).iter().map(|l| l.trim_end()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn screens_of_the_three_workloads() {
        let mut app = workloads_app();
        insta::assert_snapshot!("processes_80x24", screen(&app, 80, 24));
        insta::assert_snapshot!("tiny_20x5", screen(&app, 20, 5));
        app.apply(Action::Explain);
        insta::assert_snapshot!("explain_120x40", screen(&app, 120, 40));
        let explain = screen(&app, 120, 40);
        // Each tree its own paragraph and verdict, then the whole.
        assert!(explain.contains("fork_cow (pid 100, 4 processes)"), "{explain}");
        // The overlay's text, its lines joined (a verdict may wrap anywhere).
        let tall = screen(&app, 120, 50);
        let text: String = tall
            .lines()
            .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace() || "▓0123".contains(c)))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains("one copy of the 64 KiB (inherited"), "{text}");
        assert!(text.contains("4.2 copies of the 64 KiB (sent"), "{text}");
        assert!(tall.contains("All together"), "{tall}");
        app.apply(Action::Explain);
        app.apply(Action::NextView);
        app.apply(Action::NextView);
        insta::assert_snapshot!("sharing_120x30", screen(&app, 120, 30));
        let sharing = screen(&app, 120, 30);
        assert!(sharing.contains("100 fork_cow, 101 fork_cow-w0"), "names beside pids: {sharing}");
        app.apply(Action::NextView);
        app.apply(Action::Down);
        app.apply(Action::Detail);
        let detail = screen(&app, 80, 24);
        insta::assert_snapshot!("detail_80x24", detail);
        // The partners by name, and no figure split from its name across lines.
        assert!(detail.contains("100 fork_cow"), "{detail}");
        for line in detail.lines() {
            assert!(
                !line.trim_end().ends_with(" rss") && !line.trim_end().ends_with(" pss"),
                "{line}"
            );
        }
    }
}
