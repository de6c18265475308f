//! Report layer: `memtree compare` — the three workloads side by side, with a verdict per
//! variant built from its numbers. Schema `memtree.compare/v1` for JSON.

use std::io::{self, Write};

use crossterm::style::Stylize;
use serde::Serialize;

use super::grid::{Align, Grid};
use super::json::TotalsJson;
use super::{Format, Style};
use crate::model::Accounting;
use crate::runner::spec::Spec;
use crate::units::{NOT_AVAILABLE, human_bytes, human_opt, ratio_opt, utc_timestamp};

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
        let sentence = super::explain::variant_verdict(&self.spec, &self.accounting.totals, true);
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

fn grid(results: &[VariantResult]) -> Grid {
    let mut grid = Grid::new(&[
        ("VARIANT", Align::Left),
        ("HAND-OFF", Align::Right),
        ("Σ RSS", Align::Right),
        ("Σ PSS", Align::Right),
        ("FOOTPRINT", Align::Right),
        ("COPIES", Align::Right),
        ("OVERCOUNT", Align::Right),
        ("DUPLICATED", Align::Right),
    ]);
    for r in results {
        let t = &r.accounting.totals;
        grid.push(vec![
            r.spec.variant.to_string(),
            format!("{:.3} s", r.handoff_seconds),
            human_opt(t.rss_sum),
            human_opt(t.pss_sum),
            human_opt(t.footprint),
            r.copies().map_or(NOT_AVAILABLE.into(), |c| format!("{c:.2}")),
            ratio_opt(t.overcount),
            match &t.dedup {
                Some(Ok(d)) => human_bytes(d.total.duplicated),
                Some(Err(_)) => NOT_AVAILABLE.to_string(),
                None => NOT_MEASURED.to_string(),
            },
        ]);
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
    let measured = results.iter().all(|r| r.accounting.totals.dedup_ok().is_some());
    if !measured {
        writeln!(out)?;
        let reason = results.iter().find_map(|r| match &r.accounting.totals.dedup {
            Some(Err(reason)) => Some(reason.to_string()),
            _ => None,
        });
        match reason {
            Some(reason) => writeln!(out, "DUPLICATED could not be measured: {reason}.")?,
            None => writeln!(out, "{NOT_MEASURED_NOTE}")?,
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct CompareJson<'a> {
    schema: &'static str,
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
                duplicated_method: match &r.accounting.totals.dedup {
                    Some(Ok(d)) if d.method == crate::model::dedup::DedupMethod::ExclusivePages => {
                        "exclusive_pages"
                    }
                    Some(Ok(_)) => "content",
                    Some(Err(_)) => "unavailable",
                    None => "not_measured",
                },
                verdict: r.verdict(),
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
