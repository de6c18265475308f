//! Report layer: the human formats, an aligned table for terminals and markdown for bug
//! reports. Both are built from the same [`Grid`]s.

use std::io::{self, Write};

use crossterm::style::Stylize;

use super::grid::{Align, Fit, Grid};
use super::{Meta, Style, Target, explain};
use crate::model::accounting::{NameGroup, ProcessRow};
use crate::model::{Accounting, Totals, Tree, Unreadable};
use crate::units::{NOT_AVAILABLE, human_bytes, human_opt, ratio, utc_timestamp, visible};

/// Mapping names listed per tree with `--mappings`.
const TOP_MAPPINGS: usize = 15;

/// A one-line title: what was inspected, when, from where.
pub fn title(accounting: &Accounting, meta: &Meta) -> String {
    let what = match &meta.target {
        Target::Pids(_) if accounting.trees.len() == 1 => {
            let tree = &accounting.trees[0];
            format!("tree of {} ({})", tree.root_pid, visible(&tree.name))
        }
        Target::Pids(pids) => {
            format!("trees of {}", pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))
        }
        Target::All => {
            format!(
                "every process ({})",
                crate::units::count(accounting.trees.len(), "tree", "trees")
            )
        }
        Target::Workload(specs) => {
            let names: Vec<&str> = specs.iter().map(|s| s.variant.as_str()).collect();
            let first = &specs[0];
            format!(
                "workload {} ({} × {}, touch {})",
                names.join(" + "),
                crate::units::human_bytes(first.size_bytes),
                crate::units::count(first.workers, "worker", "workers"),
                first.touch
            )
        }
        Target::Command(argv) => {
            format!(
                "`{}`",
                argv.iter().map(|a| shell_quote(&visible(a))).collect::<Vec<_>>().join(" ")
            )
        }
    };
    let when = match (&meta.run, &meta.recorded) {
        (None, Some(r)) => format!(
            "sample {} of {} ({:.1} s into the recording), {}",
            r.sample,
            r.samples,
            r.seconds,
            utc_timestamp(accounting.taken_at_unix)
        ),
        (None, None) => utc_timestamp(accounting.taken_at_unix),
        (Some(run), _) => {
            let end = match (run.exit_code, run.signal) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                _ => "the target still running at the end".to_string(),
            };
            format!(
                "at its peak footprint, {} (of {} sample{} over {:.1} s; {end})",
                utc_timestamp(accounting.taken_at_unix),
                run.samples,
                if run.samples == 1 { "" } else { "s" },
                run.duration_seconds
            )
        }
    };
    format!("memtree report: {what}, {when}, from {}", meta.source)
}

/// An argument as a shell would need it typed: bare when safe, else in single quotes.
fn shell_quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn process_grid(accounting: &Accounting, meta: &Meta) -> (Grid, usize) {
    let peak = meta.run.is_some();
    let mut columns = vec![
        ("PID", Align::Right),
        ("NAME", Align::Left),
        ("RSS", Align::Right),
        ("PSS", Align::Right),
        ("USS", Align::Right),
        ("SHARED", Align::Right),
        ("SWAP", Align::Right),
    ];
    // Only where some process is a forked worker of the tree (a lone root has nothing to show).
    let erosion = accounting.processes().any(|p| {
        matches!(&p.erosion, Some(Ok(_)))
            || matches!(&p.erosion, Some(Err(e)) if !matches!(e, Unreadable::NotApplicable(_)))
    });
    if erosion {
        columns.push(("W/ PARENT", Align::Right));
        columns.push(("COPIED", Align::Right));
    }
    if peak {
        columns.push(("PEAK RSS", Align::Right));
        columns.push(("PEAK PSS", Align::Right));
    }
    columns.push(("NOTE", Align::Left));
    let mut grid = Grid::new(&columns).fit("NOTE", Fit::Wrap);
    let mut hidden_kernel_threads = 0;
    for tree in &accounting.trees {
        let roles = crate::model::python::roles(tree);
        for row in &tree.processes {
            if row.figures == Err(Unreadable::NoAddressSpace) && row.depth > 0 {
                hidden_kernel_threads += 1;
                continue;
            }
            let name = format!("{}{}", "  ".repeat(row.depth), visible(&row.name));
            let mut cells = vec![row.pid.to_string(), name];
            match &row.figures {
                Ok(f) => cells.extend([f.rss, f.pss, f.uss, f.shared, f.swap].map(human_opt)),
                Err(_) => cells.extend(std::iter::repeat_n(NOT_AVAILABLE.to_string(), 5)),
            }
            if erosion {
                cells.extend(erosion_cells(row));
            }
            if peak {
                let p = row.peak;
                cells.push(human_opt(p.map(|p| p.rss)));
                cells.push(human_opt(p.map(|p| p.pss)));
            }
            let mut note: Vec<String> = row
                .figures
                .as_ref()
                .err()
                .map(|r| visible(&r.to_string()).into_owned())
                .into_iter()
                .collect();
            note.extend(roles.get(&row.pid).map(|r| r.label().to_string()));
            cells.push(note.join("; "));
            grid.push(cells);
        }
        if tree.processes.len() > 1 || accounting.trees.len() == 1 {
            let copied = erosion.then(|| copied_sum(&tree.processes));
            grid.push_strong(totals_cells(&tree.totals, "TOTAL", peak, copied));
        }
    }
    if accounting.trees.len() > 1 {
        let copied = erosion.then(|| {
            let rows: Vec<_> = accounting.processes().cloned().collect();
            copied_sum(&rows)
        });
        grid.push_strong(totals_cells(&accounting.totals, "ALL", peak, copied));
    }
    grid.drop_empty_columns();
    (grid, hidden_kernel_threads)
}

/// A worker's shared-with-parent and copied cells: `≈` marks the estimate without root; a
/// tree's root (no parent in the tree) has blank cells.
fn erosion_cells(row: &ProcessRow) -> [String; 2] {
    match &row.erosion {
        None | Some(Err(Unreadable::NotApplicable(_))) => [String::new(), String::new()],
        Some(Err(_)) => [NOT_AVAILABLE.to_string(), NOT_AVAILABLE.to_string()],
        Some(Ok(e)) => {
            let mark = if e.estimated { "≈" } else { "" };
            [
                format!("{mark}{}", human_bytes(e.shared_with_parent)),
                format!("{mark}{}", human_bytes(e.copied_from_parent)),
            ]
        }
    }
}

/// Σ copied from parent over the workers of `rows`: n/a when one could not be read.
fn copied_sum(rows: &[ProcessRow]) -> String {
    let mut sum = 0u64;
    let mut estimated = false;
    for row in rows {
        match &row.erosion {
            None | Some(Err(Unreadable::NotApplicable(_))) => {}
            Some(Err(_)) => return NOT_AVAILABLE.to_string(),
            Some(Ok(e)) => {
                sum += e.copied_from_parent;
                estimated |= e.estimated;
            }
        }
    }
    format!("{}{}", if estimated { "≈" } else { "" }, human_bytes(sum))
}

fn totals_cells(totals: &Totals, label: &str, peak: bool, copied: Option<String>) -> Vec<String> {
    let mut cells = vec![
        label.to_string(),
        format!(
            "{} {}",
            totals.processes,
            if totals.processes == 1 { "process" } else { "processes" }
        ),
        human_opt(totals.rss_sum),
        human_opt(totals.pss_sum),
        human_opt(totals.uss_sum),
        human_opt(totals.shared_sum),
        human_opt(totals.swap_sum),
    ];
    if let Some(copied) = copied {
        cells.extend([String::new(), copied]);
    }
    if peak {
        cells.extend([String::new(), String::new()]);
    }
    cells.push(footprint_note(totals));
    cells
}

/// `footprint ≈ 1.1 GiB (pss estimate), overcount 4.8×`
pub fn footprint_note(totals: &Totals) -> String {
    let Some(footprint) = totals.footprint else {
        if totals.kernel_threads == totals.processes {
            return "kernel threads: no user memory".to_string();
        }
        return "footprint n/a (nothing readable)".to_string();
    };
    let overcount =
        totals.overcount.map(|o| format!(", overcount {}", ratio(o))).unwrap_or_default();
    let duplicated = totals
        .dedup_ok()
        .map(|d| format!(", duplicated {}", human_bytes(d.total.duplicated)))
        .unwrap_or_default();
    match totals.exact_ok() {
        Some(exact) => format!(
            "footprint {} (exact), exclusive {}{duplicated}{overcount}",
            human_bytes(footprint),
            human_bytes(exact.exclusive)
        ),
        None => format!("footprint ≈ {} (pss estimate){overcount}", human_bytes(footprint)),
    }
}

/// Largest pairs and names listed from the exact figures.
const TOP_EXACT: usize = 10;

/// With `--exact`: for each tree, how many processes map its frames, who shares with whom and
/// what each mapping name holds.
fn exact_grids(accounting: &Accounting) -> Vec<(String, Grid)> {
    let mut grids = Vec::new();
    for tree in &accounting.trees {
        let Some(exact) = tree.totals.exact_ok() else { continue };
        if exact.resident == 0 {
            continue;
        }
        let mut histogram = Grid::new(&[
            ("MAPPED BY", Align::Right),
            ("BYTES", Align::Right),
            ("SHARE", Align::Right),
        ]);
        for &(k, bytes) in exact.histogram.iter().rev() {
            histogram.push(vec![
                format!("{k} {}", if k == 1 { "process" } else { "processes" }),
                human_bytes(bytes),
                format!("{:.0}%", 100.0 * bytes as f64 / exact.resident as f64),
            ]);
        }
        grids.push((
            format!(
                "Physical pages of the tree of {} (exact): {} resident, {} in swap, {} freed \
                 if it exits",
                tree.root_pid,
                human_bytes(exact.resident),
                human_bytes(exact.swap),
                human_bytes(exact.exclusive)
            ),
            histogram,
        ));
        if !exact.groups.is_empty() {
            let mut groups = Grid::new(&[
                ("PROCS", Align::Right),
                ("SHARE", Align::Right),
                ("OF WHICH OUTSIDE", Align::Right),
                ("WHO", Align::Left),
                ("MAPPED AS", Align::Left),
            ])
            .fit("WHO", Fit::ShortenRight)
            .fit("MAPPED AS", Fit::Wrap);
            for group in exact.groups.iter().take(TOP_EXACT) {
                groups.push(vec![
                    group.members.len().to_string(),
                    human_bytes(group.bytes),
                    human_bytes(group.shared_outside),
                    visible(&explain::members(tree, &group.members)).into_owned(),
                    group
                        .mappings
                        .iter()
                        .map(|(n, _)| short_name(n))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]);
            }
            let more = exact.groups.len().saturating_sub(TOP_EXACT);
            let heading = if more > 0 {
                format!(
                    "Sharing groups: processes that map the same pages (largest {TOP_EXACT} of {})",
                    exact.groups.len()
                )
            } else {
                "Sharing groups: processes that map the same pages".to_string()
            };
            grids.push((heading, groups));
        }
        let mut names = Grid::new(&[
            ("MAPPING", Align::Left),
            ("PROCS", Align::Right),
            ("PRIVATE", Align::Right),
            ("SHARED IN TREE", Align::Right),
            ("SHARED OUTSIDE", Align::Right),
        ])
        .fit("MAPPING", Fit::ShortenLeft);
        for n in exact.by_name.iter().take(TOP_EXACT) {
            names.push(vec![
                visible(&n.name).into_owned(),
                n.processes.to_string(),
                human_bytes(n.private),
                human_bytes(n.shared_in_tree),
                human_bytes(n.shared_outside),
            ]);
        }
        grids.push(("Mappings by name, distinct physical bytes".to_string(), names));
        if let Some(dedup) = tree.totals.dedup_ok() {
            let mut content = Grid::new(&[
                ("MAPPING", Align::Left),
                ("DUPLICATED", Align::Right),
                ("ZERO-FILLED", Align::Right),
            ])
            .fit("MAPPING", Fit::ShortenLeft);
            for (name, d) in dedup.by_name.iter().take(TOP_EXACT) {
                content.push(vec![
                    visible(name).into_owned(),
                    human_bytes(d.duplicated),
                    human_bytes(d.zero_filled),
                ]);
            }
            grids.push((
                format!(
                    "Duplicated content ({} of anonymous and shared memory read, {} distinct \
                     chunks)",
                    human_bytes(dedup.scanned),
                    dedup.distinct_chunks
                ),
                content,
            ));
        }
    }
    grids
}

/// A mapping name as a table shows it: a path by its file name, made visible.
fn short_name(name: &str) -> String {
    match name.rsplit_once('/') {
        Some((_, file)) if name.starts_with('/') && !file.is_empty() => visible(file).into_owned(),
        _ => visible(name).into_owned(),
    }
}

fn mapping_grids(accounting: &Accounting) -> Vec<(String, Grid)> {
    let mut grids = Vec::new();
    let mut add = |heading: String, groups: &[NameGroup]| {
        let mut grid = Grid::new(&[
            ("MAPPING", Align::Left),
            ("PROCS", Align::Right),
            ("Σ RSS", Align::Right),
            ("Σ PSS", Align::Right),
            ("Σ USS", Align::Right),
            ("Σ SWAP", Align::Right),
        ])
        .fit("MAPPING", Fit::ShortenLeft);
        for g in groups.iter().take(TOP_MAPPINGS) {
            grid.push(vec![
                visible(&g.name).into_owned(),
                g.processes.to_string(),
                human_bytes(g.rss_sum),
                human_bytes(g.pss_sum),
                human_bytes(g.uss_sum),
                human_bytes(g.swap_sum),
            ]);
        }
        let more = groups.len().saturating_sub(TOP_MAPPINGS);
        let heading = if more > 0 {
            format!("{heading} (largest {TOP_MAPPINGS} of {} names by Σ RSS)", groups.len())
        } else {
            heading
        };
        grids.push((heading, grid));
    };
    let multi = accounting.trees.len() > 1;
    if multi {
        if let Some(groups) = &accounting.mappings_by_name {
            add("Mappings by name, every tree".to_string(), groups);
        }
    } else if let Some(Tree { root_pid, mappings_by_name: Some(groups), .. }) =
        accounting.trees.first()
    {
        add(format!("Mappings by name, tree of {root_pid}"), groups);
    }
    grids
}

pub fn write_table(
    out: &mut dyn Write,
    accounting: &Accounting,
    meta: &Meta,
    style: Style,
) -> io::Result<()> {
    for line in crate::units::wrap(&title(accounting, meta), style.width.max(40)) {
        if style.color {
            writeln!(out, "{}", line.bold())?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    writeln!(out)?;
    let (grid, hidden) = process_grid(accounting, meta);
    grid.write_text(out, style.color, style.width)?;
    if hidden > 0 {
        writeln!(out, "({hidden} kernel threads not shown: they have no user memory.)")?;
    }
    for (heading, grid) in mapping_grids(accounting).into_iter().chain(exact_grids(accounting)) {
        writeln!(out)?;
        for line in crate::units::wrap(&heading, style.width.max(40)) {
            writeln!(out, "{line}")?;
        }
        grid.write_text(out, style.color, style.width)?;
    }
    writeln!(out)?;
    let width = style.width.max(40);
    let paragraphs = meta.tree_paragraphs(accounting);
    for paragraph in &paragraphs {
        for line in crate::units::wrap(paragraph, width) {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
    }
    if paragraphs.len() > 1 {
        writeln!(out, "All together:")?;
    }
    for sentence in meta.sentences(accounting) {
        for line in crate::units::wrap(&sentence, width) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

pub fn write_markdown(out: &mut dyn Write, accounting: &Accounting, meta: &Meta) -> io::Result<()> {
    writeln!(out, "### {}", title(accounting, meta))?;
    writeln!(out)?;
    let (grid, hidden) = process_grid(accounting, meta);
    grid.write_markdown(out)?;
    if hidden > 0 {
        writeln!(out)?;
        writeln!(out, "{hidden} kernel threads not shown: they have no user memory.")?;
    }
    for (heading, grid) in mapping_grids(accounting).into_iter().chain(exact_grids(accounting)) {
        writeln!(out)?;
        writeln!(out, "#### {heading}")?;
        writeln!(out)?;
        grid.write_markdown(out)?;
    }
    writeln!(out)?;
    let paragraphs = meta.tree_paragraphs(accounting);
    for paragraph in &paragraphs {
        writeln!(out, "- {paragraph}")?;
    }
    if !paragraphs.is_empty() {
        writeln!(out)?;
    }
    if paragraphs.len() > 1 {
        write!(out, "All together: ")?;
    }
    writeln!(out, "{}", meta.sentences(accounting).join(" "))?;
    Ok(())
}
