//! TUI layer: drawing. `render` reads an [`App`] and draws one frame; it changes nothing and
//! reads nothing else. Colours are the 16 basic ANSI ones (and none with NO_COLOR).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table,
    TableState, Wrap,
};

use super::app::{App, Overlay, View};
use super::event::KEYS;
use crate::model::accounting::ProcessRow;
use crate::report::explain;
use crate::units::{human_bytes, human_opt};

/// Below this the screen shows only the totals and a note.
const MIN_WIDTH: u16 = 40;
const MIN_HEIGHT: u16 = 10;
/// Width of the per-process bar.
const BAR: usize = 20;

struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, color: Color) -> Style {
        if self.color { Style::default().fg(color) } else { Style::default() }
    }
    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    fn selected(&self) -> Style {
        if self.color {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
}

/// The bar's segments: private, shared within the tree, shared outside it, duplicated.
const SEGMENTS: [(char, Color, &str); 4] = [
    ('█', Color::Green, "private"),
    ('▓', Color::Cyan, "shared in tree"),
    ('▒', Color::Blue, "shared outside"),
    ('░', Color::Red, "duplicated"),
];

pub fn render(frame: &mut Frame, app: &App) {
    let theme = Theme { color: app.color };
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_tiny(frame, app, area, &theme);
        return;
    }
    let timeline = area.height >= 26;
    // A narrow window puts the four headline figures on two lines.
    let narrow = area.width < 60 || totals_line(app, &theme).width() > usize::from(area.width);
    let [header, body, chart, footer] = Layout::vertical([
        Constraint::Length(if narrow { 5 } else { 4 }),
        Constraint::Min(5),
        Constraint::Length(if timeline { 8 } else { 0 }),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(frame, app, header, &theme);
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
        View::Processes => render_processes(frame, app, main, &theme),
        View::Mappings => render_mappings(frame, app, main, &theme),
        View::Sharing => render_sharing(frame, app, main, &theme),
    }
    if let Some(side) = side {
        render_detail(frame, app, side, &theme);
    }
    if timeline {
        render_timeline(frame, app, chart, &theme);
    }
    render_footer(frame, app, footer, &theme);
    match app.overlay {
        Overlay::Help => render_help(frame, area, &theme),
        Overlay::Explain => render_explain(frame, app, area, &theme),
        Overlay::None => {}
    }
}

fn age(at: Option<std::time::Instant>) -> String {
    match at {
        Some(at) => format!("{:.1}s old", at.elapsed().as_secs_f64()),
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
        (None, _) => "n/a".to_string(),
    };
    let duplicated = match &t.dedup {
        Some(Ok(d)) => human_bytes(d.total.duplicated),
        _ => "n/a".to_string(),
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
            Span::styled(
                t.overcount.map_or("n/a".to_string(), |o| format!("{o:.1}×")),
                theme.bold(),
            ),
            Span::raw("  duplicated "),
            Span::styled(duplicated, theme.bold()),
        ]),
    ]
}

/// The four headline figures: what a monitor shows, what the tree uses, the overcount, and
/// the duplicated content.
fn totals_line<'a>(app: &App, theme: &Theme) -> Line<'a> {
    let Some(acc) = &app.accounting else {
        return Line::from("waiting for the first sample…");
    };
    let t = &acc.totals;
    let exact = t.exact_ok().is_some();
    let uses = match t.footprint {
        Some(f) if exact => format!("{} (exact)", human_bytes(f)),
        Some(f) => format!("≈ {} (PSS estimate)", human_bytes(f)),
        None => "n/a".to_string(),
    };
    let overcount = t.overcount.map_or("n/a".to_string(), |o| format!("{o:.1}×"));
    let over_style = match t.overcount {
        Some(o) if o >= 1.5 => theme.fg(Color::Red).add_modifier(Modifier::BOLD),
        _ => theme.bold(),
    };
    let duplicated = match &t.dedup {
        Some(Ok(d)) => human_bytes(d.total.duplicated),
        Some(Err(_)) => "n/a (needs root)".to_string(),
        None => "not measured (--dedup)".to_string(),
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

fn render_header(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let mut status = vec![Span::styled("memtree top", theme.bold())];
    if app.paused {
        // First, where a narrow window still shows it.
        status
            .push(Span::styled(" · PAUSED", theme.fg(Color::Yellow).add_modifier(Modifier::BOLD)));
    }
    status.extend([
        Span::raw(format!(" · {} · every {:.1}s", app.target, app.interval.as_secs_f64())),
        Span::raw(format!(" · figures {}", age(app.updated_at))),
    ]);
    if app.exact_at.is_some() {
        status.push(Span::raw(format!(" · exact {}", age(app.exact_at))));
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

/// RSS split into the bar's segments, in bytes.
fn split(row: &ProcessRow) -> Option<[u64; 4]> {
    let f = row.figures.as_ref().ok()?;
    let rss = f.rss?;
    let duplicated = row.dedup.as_ref().and_then(|d| d.as_ref().ok()).map_or(0, |d| d.duplicated);
    Some(match row.exact.as_ref().and_then(|e| e.as_ref().ok()) {
        Some(e) => [
            e.uss.saturating_sub(duplicated),
            e.shared_in_tree,
            e.shared_outside,
            duplicated.min(e.uss),
        ],
        // Without physical pages, shared is one lump (in the tree or not: unknown).
        None => [f.uss.unwrap_or(0), f.shared.unwrap_or(rss), 0, 0],
    })
}

fn bar<'a>(row: &ProcessRow, theme: &Theme) -> Line<'a> {
    let Some(parts) = split(row) else { return Line::from("") };
    let total: u64 = parts.iter().sum();
    if total == 0 {
        return Line::from("");
    }
    let mut spans = Vec::new();
    let mut used = 0;
    for (i, (glyph, color, _)) in SEGMENTS.iter().enumerate() {
        let mut width = (parts[i] as f64 / total as f64 * BAR as f64).round() as usize;
        if i == SEGMENTS.len() - 1 || used + width > BAR {
            width = width.min(BAR - used);
        }
        if parts[i] > 0 && width == 0 && used < BAR {
            width = 1;
        }
        used += width;
        spans.push(Span::styled(glyph.to_string().repeat(width), theme.fg(*color)));
    }
    Line::from(spans)
}

/// A table column: its title, its width (for the flexible name column, its minimum) and its
/// priority (0: always shown; higher: dropped first when the table is too narrow).
struct Column {
    title: &'static str,
    width: u16,
    priority: u8,
    flexible: bool,
}

const fn column(title: &'static str, width: u16, priority: u8) -> Column {
    Column { title, width, priority, flexible: false }
}

const fn flexible(title: &'static str, width: u16) -> Column {
    Column { title, width, priority: 0, flexible: true }
}

/// The columns that fit in `width` (a table's inner width, one space between columns), the
/// least important dropped first: ratatui would otherwise shrink every column and cut the
/// leading digits off the figures.
fn fit(columns: &[Column], width: u16) -> Vec<usize> {
    let mut keep: Vec<usize> = (0..columns.len()).collect();
    loop {
        let need: u16 = keep.iter().map(|&i| columns[i].width).sum::<u16>()
            + keep.len().saturating_sub(1) as u16;
        let drop = keep
            .iter()
            .enumerate()
            .filter(|&(_, &i)| columns[i].priority > 0)
            .max_by_key(|&(position, &i)| (columns[i].priority, position))
            .map(|(position, _)| position);
        match drop {
            Some(position) if need > width => {
                keep.remove(position);
            }
            _ => return keep,
        }
    }
}

/// The width the flexible column gets once the other kept columns have theirs.
fn flexible_width(columns: &[Column], keep: &[usize], width: u16) -> usize {
    let fixed: u16 =
        keep.iter().filter(|&&i| !columns[i].flexible).map(|&i| columns[i].width).sum();
    usize::from(width.saturating_sub(fixed + keep.len().saturating_sub(1) as u16))
}

/// `text` cut to `width` characters from the left, so a path keeps its file name:
/// `…/libc.so.6`.
fn tail(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width || width == 0 {
        return text.to_string();
    }
    let skip = count - (width - 1);
    format!("…{}", text.chars().skip(skip).collect::<String>())
}

/// A table of the kept `columns`: header, constraints, and each row's kept cells.
fn fitted_table<'a>(
    columns: &[Column],
    keep: &[usize],
    rows: Vec<Vec<Cell<'a>>>,
    theme: &Theme,
) -> Table<'a> {
    let pick = |cells: Vec<Cell<'a>>| -> Vec<Cell<'a>> {
        cells.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, c)| c).collect()
    };
    let header = Row::new(keep.iter().map(|&i| Cell::from(columns[i].title))).style(theme.bold());
    let widths: Vec<Constraint> = keep
        .iter()
        .map(|&i| {
            let c = &columns[i];
            if c.flexible { Constraint::Min(c.width) } else { Constraint::Length(c.width) }
        })
        .collect();
    Table::new(rows.into_iter().map(|cells| Row::new(pick(cells))), widths)
        .header(header)
        .row_highlight_style(theme.selected())
}

const PROCESS_COLUMNS: [Column; 8] = [
    column("PID", 7, 0),
    flexible("NAME", 8),
    column("RSS", 10, 0),
    column("PSS", 10, 2),
    column("USS", 10, 1),
    column("SHARED", 10, 3),
    column("SWAP", 8, 5),
    column("RSS SPLIT", BAR as u16, 4),
];

fn render_processes(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let rows = app.rows();
    let exact = app.accounting.as_ref().is_some_and(|a| a.totals.exact_ok().is_some());
    let body: Vec<Vec<Cell>> = rows
        .iter()
        .map(|row| {
            let indent = if app.flat { String::new() } else { "  ".repeat(row.depth) };
            let name = format!("{indent}{}", row.name);
            match &row.figures {
                Ok(f) => {
                    let mut cells = vec![Cell::from(row.pid.to_string()), Cell::from(name)];
                    for v in [f.rss, f.pss, f.uss, f.shared, f.swap] {
                        cells.push(Cell::from(Line::from(human_opt(v)).right_aligned()));
                    }
                    cells.push(Cell::from(bar(row, theme)));
                    cells
                }
                Err(reason) => {
                    // The reason goes beside the name: the one column every width shows.
                    let name = Line::from(vec![
                        Span::raw(name),
                        Span::styled(format!(" ({})", reason.kind()), theme.fg(Color::Yellow)),
                    ]);
                    let mut cells = vec![
                        Cell::from(row.pid.to_string()),
                        Cell::from(name),
                        Cell::from(Line::from("n/a").right_aligned()),
                    ];
                    cells.extend((0..5).map(|_| Cell::from("")));
                    cells
                }
            }
        })
        .collect();
    let mode = if app.flat { format!("flat, by {}", app.sort.name()) } else { "tree".to_string() };
    let legend = if exact {
        " █ private ▓ shared in tree ▒ shared outside ░ duplicated "
    } else {
        " █ private ▓ shared "
    };
    let keep = fit(&PROCESS_COLUMNS, area.width.saturating_sub(2));
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {} [{mode}] ", View::Processes.title()));
    if keep.contains(&(PROCESS_COLUMNS.len() - 1)) {
        block = block.title_bottom(Line::from(legend).right_aligned());
    }
    let table = fitted_table(&PROCESS_COLUMNS, &keep, body, theme).block(block);
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

const MAPPING_COLUMNS: [Column; 7] = [
    flexible("MAPPING", 16),
    column("PROCS", 6, 5),
    column("Σ RSS", 10, 0),
    column("Σ PSS", 10, 1),
    column("Σ USS", 10, 2),
    column("IN TREE", 10, 3),
    column("OUTSIDE", 10, 4),
];

fn render_mappings(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let block =
        Block::default().borders(Borders::ALL).title(format!(" {} ", View::Mappings.title()));
    let groups = app.accounting.as_ref().and_then(|a| a.mappings_by_name.as_ref());
    let Some(groups) = groups else {
        let text =
            "Reading every mapping (smaps) of the tree… (this view asks the sampler for them)";
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }).block(block), area);
        return;
    };
    let sharing = app.accounting.as_ref().and_then(|a| a.totals.exact_ok()).map(|e| &e.by_name);
    let keep = fit(&MAPPING_COLUMNS, area.width.saturating_sub(2));
    let name_width = flexible_width(&MAPPING_COLUMNS, &keep, area.width.saturating_sub(2));
    let rows: Vec<Vec<Cell>> = groups
        .iter()
        .map(|g| {
            let exact = sharing.and_then(|s| s.iter().find(|n| n.name == g.name));
            let figure = |v: Option<u64>| {
                Cell::from(Line::from(v.map_or("n/a".into(), human_bytes)).right_aligned())
            };
            vec![
                Cell::from(tail(&g.name, name_width)),
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
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn render_sharing(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
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

fn render_detail(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(" Detail ");
    let Some(row) = app.selected_row() else {
        frame.render_widget(Paragraph::new("no process selected").block(block), area);
        return;
    };
    let mut lines = vec![Line::styled(format!("{} ({})", row.name, row.pid), theme.bold())];
    if let Some(cmd) = &row.cmdline {
        lines.push(Line::from(cmd.join(" ")));
    }
    match &row.figures {
        Ok(f) => lines.push(Line::from(format!(
            "rss {}  pss {}  uss {}  shared {}",
            human_opt(f.rss),
            human_opt(f.pss),
            human_opt(f.uss),
            human_opt(f.shared)
        ))),
        Err(reason) => lines.push(Line::from(reason.to_string())),
    }
    if let Some(Ok(e)) = &row.exact {
        lines.push(Line::from(format!(
            "exact: private {}, in tree {}, outside {}",
            human_bytes(e.uss),
            human_bytes(e.shared_in_tree),
            human_bytes(e.shared_outside)
        )));
    }
    let tree = app
        .accounting
        .as_ref()
        .and_then(|a| a.trees.iter().find(|t| t.processes.iter().any(|p| p.pid == row.pid)));
    if let Some(e) = tree.and_then(|t| t.totals.exact_ok()) {
        let mut partners: Vec<(u32, u64)> = e
            .pairs
            .iter()
            .filter_map(|p| match (p.a == row.pid, p.b == row.pid) {
                (true, _) => Some((p.b, p.bytes)),
                (_, true) => Some((p.a, p.bytes)),
                _ => None,
            })
            .collect();
        partners.sort_by_key(|p| std::cmp::Reverse(p.1));
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
                    m.name
                )));
            }
        }
        Some(Err(reason)) => lines.push(Line::from(format!("  {reason}"))),
        None => lines.push(Line::from("  reading smaps…")),
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

fn render_timeline(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let points = |f: fn(&super::app::Point) -> u64| -> Vec<(f64, f64)> {
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
        .x_axis(
            Axis::default()
                .bounds([t0, t1])
                .labels([Span::raw(format!("{t0:.0}s")), Span::raw(format!("{t1:.0}s"))]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels([Span::raw("0"), Span::raw(format!("{top:.0}"))]),
        );
    frame.render_widget(chart, area);
}

fn render_footer(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let hint = if app.target_gone.is_some() {
        " q quit · ? help · e explain · Tab views · Enter detail"
    } else {
        " q quit · ? help · e explain · Tab views · Enter detail · s sort · t tree/flat · p pause"
    };
    frame.render_widget(Paragraph::new(Line::styled(hint, theme.fg(Color::Gray))), area);
}

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

fn render_help(frame: &mut Frame, area: Rect, theme: &Theme) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![Span::styled(format!("{keys:<16}"), theme.bold()), Span::raw(*what)])
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

fn render_explain(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let mut lines = vec![
        Line::styled("What these numbers mean", theme.bold()),
        Line::from(
            "A system monitor shows each process's RSS: every page it maps, counted in full \
             even when other processes map the same page. Forked workers share their parent's \
             pages copy-on-write, so each one \"uses\" the whole data set in the monitor while \
             the machine holds it once.",
        ),
        Line::from(""),
    ];
    match &app.accounting {
        Some(acc) => {
            for sentence in explain::explain(acc) {
                lines.push(Line::from(sentence));
            }
        }
        None => lines.push(Line::from("Waiting for the first sample…")),
    }
    lines.push(Line::from(""));
    lines.push(Line::from(
        "USS is what a process alone holds; if every worker's USS is about the data size, the \
         data was copied (pickled, or copied by a library), not shared.",
    ));
    let popup = centered(area, area.width.saturating_sub(8).max(40), area.height.saturating_sub(4));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title(" Explain (Esc closes) ")),
        popup,
    );
}

fn render_tiny(frame: &mut Frame, app: &App, area: Rect, theme: &Theme) {
    let lines = vec![
        Line::styled("memtree top", theme.bold()),
        totals_line(app, theme),
        Line::from(format!(
            "window {}×{}: enlarge to {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        )),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::tui::app::tests::app_with_data;
    use crate::tui::event::Action;

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
        for (keys, _) in KEYS {
            assert!(contains(&lines, keys), "help lists {keys}");
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
        assert_eq!(tail("/usr/lib/x86_64-linux-gnu/libc.so.6", 10), "…libc.so.6");
        assert_eq!(tail("[heap]", 10), "[heap]");
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        let mut app = app_with_data();
        for (w, h) in [(40, 10), (39, 9), (20, 5), (1, 1), (80, 12)] {
            let lines = draw(&app, w, h);
            assert_eq!(lines.len(), h as usize);
        }
        app.apply(Action::Detail);
        app.apply(Action::Help);
        let _ = draw(&app, 40, 10);
        let lines = draw(&app, 30, 8);
        assert!(lines[0].contains("memtree top"));
    }
}
