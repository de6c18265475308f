//! Report layer, a face: formats one [`Accounting`] as a table, JSON or markdown (and
//! `compare`'s side-by-side), to any writer. It may use the model, the runner's value types
//! (a workload's [`Spec`], a command's [`RunOutcome`]) and `units`; it reads nothing from /proc
//! and never uses the sampler, the tui or the cli. [`explain`] holds the sentences every face
//! shares.

pub mod compare;
pub mod explain;
pub mod grid;
pub mod json;
pub mod openmetrics;
pub mod plot;
pub mod text;

use std::io::{self, Write};

use crate::model::Accounting;
use crate::runner::command::RunOutcome;
use crate::runner::spec::Spec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An indented tree with human sizes and a plain-language explanation.
    Table,
    /// One JSON object, schema `memtree.report/v1`; every figure in bytes.
    Json,
    /// The tables as GitHub-flavoured markdown, for bug reports.
    Markdown,
    /// OpenMetrics text for Prometheus (node_exporter's textfile collector; `memtree serve`
    /// exports the same series over HTTP).
    Openmetrics,
}

/// What was inspected, as the report names it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    Pids(Vec<u32>),
    All,
    Command(Vec<String>),
    /// Built-in workloads memtree started (one tree each).
    Workload(Vec<Spec>),
}

/// Everything about the report that is not the accounting itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub target: Target,
    /// `None`: one moment (`"moment": "now"`); `Some`: a run, reported at its peak.
    pub run: Option<RunOutcome>,
    /// Where the files were read: `/proc` or a captured directory.
    pub source: String,
    /// Live processes (not a capture): the report may say what a costlier pass would add.
    pub live: bool,
    /// A moment of a recording (`report --from`): which sample it is.
    pub recorded: Option<Recorded>,
}

/// Which sample of a recording a report is of.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// How it was chosen: `"peak"`, `"end"` or `"seconds"` (`--at`).
    pub at: &'static str,
    /// Its place among the recording's samples, from 1.
    pub sample: usize,
    pub samples: usize,
    /// Seconds from the recording's start to the sample.
    pub seconds: f64,
}

impl Meta {
    /// A paragraph per tree ([`explain::per_tree`]) when there are several, or when the one
    /// tree is a built-in workload (its verdict); none for one other tree (the report's
    /// sentences are its own).
    pub fn tree_paragraphs(&self, accounting: &Accounting) -> Vec<String> {
        let specs: Vec<Option<Spec>> = match &self.target {
            Target::Workload(specs) if specs.len() == accounting.trees.len() => {
                specs.iter().copied().map(Some).collect()
            }
            _ => Vec::new(),
        };
        if accounting.trees.len() < 2 && specs.is_empty() {
            return Vec::new();
        }
        explain::per_tree(accounting, &specs)
    }

    /// The report's sentences: the explanation of the numbers, then, for live processes, what
    /// `--exact`/`--dedup` would add.
    pub fn sentences(&self, accounting: &Accounting) -> Vec<String> {
        let mut lines = explain::explain(accounting);
        if let Some(run) = &self.run
            && accounting.totals.processes == 0
        {
            lines.push(format!(
                "The command ran {:.3} s and exited before memtree could read its memory: no \
                 figure of it exists (a command this short uses what its program's start takes).",
                run.duration_seconds
            ));
        } else if accounting.totals.processes == 0 {
            lines.push("No process of the target could be found.".to_string());
        }
        if self.live {
            lines.extend(explain::hints(accounting));
        }
        lines
    }
}

/// Output styling for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    /// Columns the text fits in: the terminal's, 80 when not a terminal.
    pub width: usize,
}

impl Default for Style {
    fn default() -> Self {
        Style { color: false, width: 80 }
    }
}

pub fn write_report(
    out: &mut dyn Write,
    format: Format,
    accounting: &Accounting,
    meta: &Meta,
    style: Style,
) -> io::Result<()> {
    match format {
        Format::Table => text::write_table(out, accounting, meta, style),
        Format::Markdown => text::write_markdown(out, accounting, meta),
        Format::Json => json::write_json(out, accounting, meta),
        Format::Openmetrics => {
            let exposition = openmetrics::Exposition {
                ages: openmetrics::ages(accounting, crate::units::unix_now()),
                ..Default::default()
            };
            out.write_all(openmetrics::openmetrics(accounting, &exposition).as_bytes())
        }
    }
}
