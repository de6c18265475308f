//! Report layer: `memtree compare` — the three workloads side by side, with a verdict per
//! variant built from its numbers; and `compare --python`, the seed scenario under Python's
//! start methods. Schema `memtree.compare/v1` for JSON (`kind` tells the two apart).

use std::io::{self, Write};

use crossterm::style::Stylize;
use serde::Serialize;

use super::grid::{Align, Grid};
use super::json::TotalsJson;
use super::{Format, Style};
use crate::model::Accounting;
use crate::model::accounting::Totals;
use crate::model::dedup::DedupMethod;
use crate::runner::python::PythonVariant;
use crate::runner::spec::Spec;
use crate::units::{
    NOT_AVAILABLE, human_bytes, human_opt, ratio, ratio_opt, utc_timestamp, visible,
};

pub const SCHEMA: &str = "memtree.compare/v1";

/// One variant, measured once every worker held its data.
#[derive(Debug, Clone)]
pub struct VariantResult {
    pub spec: Spec,
    pub fill_seconds: f64,
    pub handoff_seconds: f64,
    pub accounting: Accounting,
}

impl VariantResult {
    /// How many copies of the data the tree holds: footprint / size.
    pub fn copies(&self) -> Option<f64> {
        let footprint = self.accounting.totals.footprint?;
        Some(footprint as f64 / self.spec.size_bytes as f64)
    }

    /// One sentence, from the numbers.
    pub fn verdict(&self) -> String {
        let rows: Vec<_> = self.accounting.processes().collect();
        let sentence =
            super::explain::variant_verdict(&self.spec, &self.accounting.totals, &rows, true);
        let mut chars = sentence.chars();
        let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
        out.push_str(chars.as_str());
        if self.accounting.totals.footprint.is_some() {
            out.push_str(&format!("; hand-off {:.2} s.", self.handoff_seconds));
        }
        out
    }
}

pub fn write(
    out: &mut dyn Write,
    format: Format,
    results: &[VariantResult],
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Json => write_json(out, results),
        Format::Table | Format::Markdown => write_text(out, format, results, style),
        Format::Openmetrics => Err(io::Error::other("compare has no openmetrics format")),
    }
}

const NOT_MEASURED: &str = "not measured";
const NOT_MEASURED_NOTE: &str = "DUPLICATED (identical content held more than once) is measured \
    as root unless --no-dedup: here it is not measured, not zero.";

fn title(results: &[VariantResult]) -> String {
    let Some(first) = results.first() else { return "memtree compare".into() };
    format!(
        "memtree compare: {} of pseudo-random data, {}, touch {}, {}",
        human_bytes(first.spec.size_bytes),
        crate::units::count(first.spec.workers, "worker", "workers"),
        first.spec.touch,
        utc_timestamp(first.accounting.taken_at_unix)
    )
}

/// The columns of a comparison: the variant, then `second`, then the figures of [`figures`].
fn columns(second: &'static str) -> Grid {
    Grid::new(&[
        ("VARIANT", Align::Left),
        (second, Align::Right),
        ("Σ RSS", Align::Right),
        ("Σ PSS", Align::Right),
        ("FOOTPRINT", Align::Right),
        ("COPIES", Align::Right),
        ("OVERCOUNT", Align::Right),
        ("DUPLICATED", Align::Right),
    ])
}

/// A variant's figures from its totals (`None`: no sample could be read), `copies` already
/// written.
fn figures(t: Option<&Totals>, copies: Option<String>) -> [String; 6] {
    let duplicated = match t.map(|t| &t.dedup) {
        Some(Some(Ok(d))) => human_bytes(d.total.duplicated),
        Some(None) => NOT_MEASURED.to_string(),
        Some(Some(Err(_))) | None => NOT_AVAILABLE.to_string(),
    };
    [
        human_opt(t.and_then(|t| t.rss_sum)),
        human_opt(t.and_then(|t| t.pss_sum)),
        human_opt(t.and_then(|t| t.footprint)),
        copies.unwrap_or_else(|| NOT_AVAILABLE.into()),
        ratio_opt(t.and_then(|t| t.overcount)),
        duplicated,
    ]
}

fn grid(results: &[VariantResult]) -> Grid {
    let mut grid = columns("HAND-OFF");
    for r in results {
        let mut cells = vec![r.spec.variant.to_string(), format!("{:.3} s", r.handoff_seconds)];
        let copies = r.copies().map(|c| format!("{c:.2}"));
        cells.extend(figures(Some(&r.accounting.totals), copies));
        grid.push(cells);
    }
    grid
}

fn write_text(
    out: &mut dyn Write,
    format: Format,
    results: &[VariantResult],
    style: Style,
) -> io::Result<()> {
    let title = title(results);
    let grid = grid(results);
    if format == Format::Markdown {
        writeln!(out, "### {title}")?;
        writeln!(out)?;
        grid.write_markdown(out)?;
        writeln!(out)?;
        for r in results {
            writeln!(out, "- **{}**: {}", r.spec.variant, r.verdict())?;
        }
    } else {
        if style.color {
            writeln!(out, "{}", title.as_str().bold())?;
        } else {
            writeln!(out, "{title}")?;
        }
        writeln!(out)?;
        grid.write_text(out, style.color, style.width)?;
        writeln!(out)?;
        for r in results {
            writeln!(out, "{}: {}", r.spec.variant, r.verdict())?;
        }
    }
    duplicated_note(out, results.iter().map(|r| &r.accounting))
}

/// Why DUPLICATED is missing, when it is for any of `measured`.
fn duplicated_note<'a>(
    out: &mut dyn Write,
    mut measured: impl Iterator<Item = &'a Accounting> + Clone,
) -> io::Result<()> {
    if measured.clone().all(|a| a.totals.dedup_ok().is_some()) {
        return Ok(());
    }
    writeln!(out)?;
    let reason = measured.find_map(|a| match &a.totals.dedup {
        Some(Err(reason)) => Some(reason.to_string()),
        _ => None,
    });
    match reason {
        Some(reason) => writeln!(out, "DUPLICATED could not be measured: {reason}."),
        None => writeln!(out, "{NOT_MEASURED_NOTE}"),
    }
}

/// How a comparison's DUPLICATED was measured, in JSON.
fn duplicated_method(accounting: &Accounting) -> &'static str {
    match &accounting.totals.dedup {
        Some(Ok(d)) if d.method == DedupMethod::ExclusivePages => "exclusive_pages",
        Some(Ok(_)) => "content",
        Some(Err(_)) => "unavailable",
        None => "not_measured",
    }
}

#[derive(Serialize)]
struct CompareJson<'a> {
    schema: &'static str,
    kind: &'static str,
    taken_at_unix: f64,
    privileged: bool,
    size_bytes: u64,
    workers: usize,
    touch: String,
    variants: Vec<VariantJson<'a>>,
}

#[derive(Serialize)]
struct VariantJson<'a> {
    variant: &'a str,
    fill_seconds: f64,
    handoff_seconds: f64,
    root_pid: Option<u32>,
    totals: TotalsJson,
    copies: Option<f64>,
    duplicated_bytes: Option<u64>,
    duplicated_method: &'static str,
    verdict: String,
}

fn write_json(out: &mut dyn Write, results: &[VariantResult]) -> io::Result<()> {
    let first = results.first();
    let doc = CompareJson {
        schema: SCHEMA,
        kind: "workloads",
        taken_at_unix: first.map_or(0.0, |r| r.accounting.taken_at_unix),
        privileged: first.is_some_and(|r| r.accounting.privileged),
        size_bytes: first.map_or(0, |r| r.spec.size_bytes),
        workers: first.map_or(0, |r| r.spec.workers),
        touch: first.map_or(String::new(), |r| r.spec.touch.to_string()),
        variants: results
            .iter()
            .map(|r| VariantJson {
                variant: r.spec.variant.as_str(),
                fill_seconds: r.fill_seconds,
                handoff_seconds: r.handoff_seconds,
                root_pid: r.accounting.trees.first().map(|t| t.root_pid),
                totals: TotalsJson::from(&r.accounting.totals),
                copies: r.copies().map(|c| (c * 1000.0).round() / 1000.0),
                duplicated_bytes: r.accounting.totals.dedup_ok().map(|d| d.total.duplicated),
                duplicated_method: duplicated_method(&r.accounting),
                verdict: r.verdict(),
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

/// One variant of `compare --python`, measured at its tree's peak footprint.
#[derive(Debug, Clone)]
pub struct PythonResult {
    pub variant: PythonVariant,
    /// The DataFrame's data, in bytes.
    pub frame_bytes: u64,
    pub workers: usize,
    /// The tree at its peak (`None` when no sample of it could be read).
    pub accounting: Option<Accounting>,
    /// The program's exit status (128 + a signal's number).
    pub exit_status: i32,
    pub duration_seconds: f64,
    /// The program's last line of output, made visible and cut to 200 characters.
    pub said: Option<String>,
}

/// A whole `compare --python` run.
#[derive(Debug, Clone)]
pub struct PythonComparison {
    pub python_version: String,
    pub default_start_method: String,
    pub results: Vec<PythonResult>,
}

impl PythonResult {
    /// How many copies of the frame the tree holds, from its content: one, and one more for
    /// every frame's worth of duplicated content.
    pub fn copies(&self) -> Option<f64> {
        let d = self.accounting.as_ref()?.totals.dedup_ok()?;
        Some(1.0 + d.total.duplicated as f64 / self.frame_bytes.max(1) as f64)
    }

    /// Multiprocessing's helpers in the tree: `fork server`, `resource tracker`.
    pub fn helpers(&self) -> Vec<&'static str> {
        use crate::model::python::{PythonRole, all_roles};
        let Some(accounting) = &self.accounting else { return Vec::new() };
        let roles = all_roles(accounting);
        let mut helpers: Vec<&'static str> = roles
            .values()
            .filter_map(|r| match r {
                PythonRole::ForkServer => Some("fork server"),
                PythonRole::ResourceTracker => Some("resource tracker"),
                PythonRole::Worker(_) => None,
            })
            .collect();
        helpers.sort_unstable();
        helpers.dedup();
        helpers
    }

    /// One sentence, from the numbers.
    pub fn verdict(&self) -> String {
        if self.exit_status != 0 {
            let said = self.said.as_deref().map(|l| format!(": {l}")).unwrap_or_default();
            return format!("The program failed (exit status {}){said}.", self.exit_status);
        }
        let Some(t) = self.accounting.as_ref().map(|a| &a.totals) else {
            return "Not measured: no sample of its tree could be read.".to_string();
        };
        let (Some(footprint), Some(rss), Some(overcount)) = (t.footprint, t.rss_sum, t.overcount)
        else {
            return "Not measured: its processes could not be read.".to_string();
        };
        let size = human_bytes(self.frame_bytes);
        let workers = crate::units::count(self.workers, "worker", "workers");
        let v = &self.variant;
        let holding = match (self.copies(), t.dedup_ok()) {
            (Some(c), _) if c < 1.5 => {
                format!("One copy of the {size} frame serves the {workers}: {}", v.shares)
            }
            (Some(c), Some(d)) if c >= self.workers as f64 + 0.5 => format!(
                "{c:.1} copies of the {size} frame, one in the parent and one in every worker: \
                 {}; {} duplicated",
                v.copies,
                human_bytes(d.total.duplicated)
            ),
            (Some(c), Some(d)) => format!(
                "{c:.1} copies of the {size} frame for {workers}; {} duplicated",
                human_bytes(d.total.duplicated)
            ),
            _ => "How many copies it holds is not known without duplicated content".to_string(),
        };
        let helpers = self.helpers();
        let helpers = if helpers.is_empty() {
            String::new()
        } else {
            format!("; besides the workers, the {}", helpers.join(" and the "))
        };
        format!(
            "{holding}; a monitor shows {} ({} the {} really used){helpers}.",
            human_bytes(rss),
            ratio(overcount),
            human_bytes(footprint)
        )
    }
}

/// What the variants' names mean, under the comparison.
const PYTHON_LEGEND: &str = "global: a DataFrame built at module level and read through the \
    global (workloads/pool_module_global.py). main() global: built in main() and read through a \
    global, the seed's structure (pool_global.py). shared memory: a multiprocessing.Array handed \
    to the workers and wrapped with pd.DataFrame(array, copy=False) (pool_shared_array.py). \
    COPIES: one, plus the duplicated content in frames.";

pub fn write_python(
    out: &mut dyn Write,
    format: Format,
    comparison: &PythonComparison,
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Json => write_python_json(out, comparison),
        Format::Table | Format::Markdown => write_python_text(out, format, comparison, style),
        Format::Openmetrics => Err(io::Error::other("compare has no openmetrics format")),
    }
}

fn python_title(c: &PythonComparison) -> String {
    let first = c.results.first();
    let taken = first.and_then(|r| r.accounting.as_ref()).map(|a| a.taken_at_unix);
    format!(
        "memtree compare --python: a {} DataFrame read by {} of a Pool, Python {} (default start \
         method {}){}",
        human_bytes(first.map_or(0, |r| r.frame_bytes)),
        crate::units::count(first.map_or(0, |r| r.workers), "worker", "workers"),
        visible(&c.python_version),
        visible(&c.default_start_method),
        taken.map(|t| format!(", {}", utc_timestamp(t))).unwrap_or_default()
    )
}

fn python_grid(c: &PythonComparison) -> Grid {
    let mut grid = columns("EXIT");
    for r in &c.results {
        let mut cells = vec![r.variant.name.to_string(), r.exit_status.to_string()];
        let copies = r.copies().map(|c| format!("{c:.1}"));
        cells.extend(figures(r.accounting.as_ref().map(|a| &a.totals), copies));
        grid.push(cells);
    }
    grid
}

fn write_python_text(
    out: &mut dyn Write,
    format: Format,
    c: &PythonComparison,
    style: Style,
) -> io::Result<()> {
    let title = python_title(c);
    let grid = python_grid(c);
    if format == Format::Markdown {
        writeln!(out, "### {title}")?;
        writeln!(out)?;
        grid.write_markdown(out)?;
        writeln!(out)?;
        for r in &c.results {
            writeln!(out, "- **{}**: {}", r.variant.name, r.verdict())?;
        }
        writeln!(out)?;
        writeln!(out, "{PYTHON_LEGEND}")?;
    } else {
        if style.color {
            writeln!(out, "{}", title.as_str().bold())?;
        } else {
            writeln!(out, "{title}")?;
        }
        writeln!(out)?;
        grid.write_text(out, style.color, style.width)?;
        let width = style.width.max(40);
        for r in &c.results {
            writeln!(out)?;
            for line in crate::units::wrap(&format!("{}: {}", r.variant.name, r.verdict()), width) {
                writeln!(out, "{line}")?;
            }
        }
        writeln!(out)?;
        for line in crate::units::wrap(PYTHON_LEGEND, width) {
            writeln!(out, "{line}")?;
        }
    }
    duplicated_note(out, c.results.iter().filter_map(|r| r.accounting.as_ref()))
}

#[derive(Serialize)]
struct PythonCompareJson<'a> {
    schema: &'static str,
    kind: &'static str,
    taken_at_unix: Option<f64>,
    privileged: bool,
    python_version: &'a str,
    default_start_method: &'a str,
    frame_bytes: u64,
    workers: usize,
    variants: Vec<PythonVariantJson<'a>>,
}

#[derive(Serialize)]
struct PythonVariantJson<'a> {
    variant: &'a str,
    program: &'a str,
    start_method: &'a str,
    exit_status: i32,
    duration_seconds: f64,
    said: Option<&'a str>,
    root_pid: Option<u32>,
    totals: Option<TotalsJson>,
    copies: Option<f64>,
    duplicated_bytes: Option<u64>,
    duplicated_method: &'static str,
    helpers: Vec<&'static str>,
    verdict: String,
}

fn write_python_json(out: &mut dyn Write, c: &PythonComparison) -> io::Result<()> {
    let first = c.results.first();
    let measured = || c.results.iter().filter_map(|r| r.accounting.as_ref());
    let doc = PythonCompareJson {
        schema: SCHEMA,
        kind: "python",
        taken_at_unix: measured().next().map(|a| a.taken_at_unix),
        privileged: measured().next().is_some_and(|a| a.privileged),
        python_version: &c.python_version,
        default_start_method: &c.default_start_method,
        frame_bytes: first.map_or(0, |r| r.frame_bytes),
        workers: first.map_or(0, |r| r.workers),
        variants: c
            .results
            .iter()
            .map(|r| PythonVariantJson {
                variant: r.variant.name,
                program: r.variant.program,
                start_method: r.variant.start_method,
                exit_status: r.exit_status,
                duration_seconds: r.duration_seconds,
                said: r.said.as_deref(),
                root_pid: r.accounting.as_ref().and_then(|a| a.trees.first()).map(|t| t.root_pid),
                totals: r.accounting.as_ref().map(|a| TotalsJson::from(&a.totals)),
                copies: r.copies().map(|c| (c * 1000.0).round() / 1000.0),
                duplicated_bytes: r
                    .accounting
                    .as_ref()
                    .and_then(|a| a.totals.dedup_ok())
                    .map(|d| d.total.duplicated),
                duplicated_method: r.accounting.as_ref().map_or("unavailable", duplicated_method),
                helpers: r.helpers(),
                verdict: r.verdict(),
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
