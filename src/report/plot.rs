//! Report layer, a face: a recording (or a followed run) drawn with plotters, as SVG or PNG —
//! above, Σ RSS (what a monitor shows) against the footprint and Σ PSS over time; below, what
//! each forked worker copied from its parent since the fork. Text is drawn with DejaVu Sans,
//! built in (assets/), so a PNG looks the same on a machine without fonts.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::Target;
use crate::model::Accounting;
use crate::units::human_bytes;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 900;
/// Workers drawn each in a colour of their own, the most copied first; the rest in grey.
const NAMED_WORKERS: usize = 8;
/// Dark enough on white, told apart from each other (and from the totals' red, green, blue).
const WORKER_COLORS: [RGBColor; NAMED_WORKERS] = [
    RGBColor(148, 0, 211),
    RGBColor(230, 120, 0),
    RGBColor(0, 150, 160),
    RGBColor(180, 30, 110),
    RGBColor(90, 90, 20),
    RGBColor(60, 60, 200),
    RGBColor(140, 70, 20),
    RGBColor(0, 110, 40),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotFormat {
    Svg,
    Png,
}

/// The picture format `path` asks for by its extension.
pub fn format_of(path: &Path) -> Result<PlotFormat, String> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => Ok(PlotFormat::Svg),
        Some("png") => Ok(PlotFormat::Png),
        _ => Err(format!(
            "cannot tell the picture format of {}: name it .svg or .png",
            crate::units::visible(&path.display().to_string())
        )),
    }
}

/// One moment of the totals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub seconds: f64,
    pub rss_sum: Option<u64>,
    pub footprint: Option<u64>,
    pub pss_sum: Option<u64>,
}

/// What the plot draws, built sample by sample.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub points: Vec<Point>,
    /// Each forked worker (by pid): its name and its copied-from-parent bytes over time.
    pub workers: BTreeMap<u32, Worker>,
    /// Whether any footprint was exact (else the PSS estimate).
    pub exact: bool,
    /// Whether any worker's copies were the estimate without root.
    pub estimated: bool,
}

impl Series {
    pub fn add(&mut self, seconds: f64, accounting: &Accounting) {
        let t = &accounting.totals;
        self.points.push(Point {
            seconds,
            rss_sum: t.rss_sum,
            footprint: t.footprint,
            pss_sum: t.pss_sum,
        });
        self.exact |= t.exact_ok().is_some();
        for row in accounting.processes() {
            if let Some(Ok(e)) = &row.erosion {
                self.estimated |= e.estimated;
                let entry = self
                    .workers
                    .entry(row.pid)
                    .or_insert_with(|| (row.name.clone(), Vec::new(), seconds));
                entry.1.push((seconds, e.copied_from_parent));
                entry.2 = seconds;
            }
        }
    }

    /// The last sample again at `seconds` (nothing moved): the totals' point, and every worker
    /// seen in it still there (its line is drawn on to here).
    pub fn repeat(&mut self, seconds: f64) {
        let Some(&last) = self.points.last() else { return };
        let before = last.seconds;
        self.points.push(Point { seconds, ..last });
        for (_, _, last_seen) in self.workers.values_mut() {
            if *last_seen == before {
                *last_seen = seconds;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The target in a few words, for the plot's title.
pub fn describe(target: &Target) -> String {
    match target {
        Target::Pids(pids) => {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            format!("tree of {}", pids.join(", "))
        }
        Target::All => "every process".into(),
        Target::Command(argv) => {
            let shown: Vec<String> =
                argv.iter().map(|a| crate::units::visible(a).into_owned()).collect();
            crate::units::shorten_right(&shown.join(" "), 60)
        }
        Target::Workload(specs) => {
            let names: Vec<&str> = specs.iter().map(|s| s.variant.as_str()).collect();
            format!("workload {}", names.join(" + "))
        }
    }
}

/// A unit for bytes up to `max`: its divisor and name.
fn byte_unit(max: u64) -> (f64, &'static str) {
    if max >= 10 << 30 { ((1u64 << 30) as f64, "GiB") } else { ((1u64 << 20) as f64, "MiB") }
}

/// A unit for seconds up to `max`.
fn time_unit(max: f64) -> (f64, &'static str) {
    if max >= 1200.0 { (60.0, "min") } else { (1.0, "s") }
}

/// Draws `series` into `path`.
pub fn draw(series: &Series, title: &str, path: &Path, format: PlotFormat) -> Result<(), String> {
    // Registered once per process; a second registration replaces the first.
    register_font("sans-serif", FontStyle::Normal, FONT).map_err(|_| "no usable font")?;
    let result = match format {
        PlotFormat::Svg => {
            let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
            paint(&root, series, title).and_then(|()| root.present().map_err(|e| e.to_string()))
        }
        PlotFormat::Png => {
            let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
            paint(&root, series, title).and_then(|()| root.present().map_err(|e| e.to_string()))
        }
    };
    result.map_err(|e| crate::units::visible(&e).into_owned())
}

type Area<'a, DB> = DrawingArea<DB, plotters::coord::Shift>;
/// A line of the totals: its legend, its colour, its figure.
type Line = (&'static str, RGBColor, fn(&Point) -> Option<u64>);
/// A worker's name, its copies over time, and the last moment it was seen (a repeated sample
/// draws its line on without a point of its own).
type Worker = (String, Vec<(f64, u64)>, f64);

fn paint<DB: DrawingBackend>(root: &Area<DB>, series: &Series, title: &str) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(err)?;
    let (top, bottom) = root.split_vertically(HEIGHT * 55 / 100);
    let t_max = series.points.last().map_or(1.0, |p| p.seconds).max(1.0);
    let (t_div, t_name) = time_unit(t_max);

    // Above: the totals.
    let max = series
        .points
        .iter()
        .flat_map(|p| [p.rss_sum, p.footprint, p.pss_sum])
        .flatten()
        .max()
        .unwrap_or(1)
        .max(1);
    let (div, unit) = byte_unit(max);
    let caption = "What a monitor shows against what the tree really uses";
    let axes = Axes { x: t_max / t_div, y: max as f64 / div * 1.1, x_unit: t_name, y_unit: unit };
    let mut chart = captioned(&top, caption, &axes).map_err(err)?;
    let footprint_name =
        if series.exact { "footprint (exact)" } else { "footprint (PSS estimate)" };
    let lines: [Line; 3] = [
        ("Σ RSS (what a monitor shows)", RGBColor(200, 30, 30), |p| p.rss_sum),
        (footprint_name, RGBColor(20, 140, 60), |p| p.footprint),
        ("Σ PSS", RGBColor(30, 90, 200), |p| p.pss_sum),
    ];
    for (name, color, value) in lines {
        let points = series
            .points
            .iter()
            .filter_map(|p| value(p).map(|v| (p.seconds / t_div, v as f64 / div)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(3)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;

    // Below: each forked worker's copies.
    let mut workers: Vec<(&u32, &Worker)> = series.workers.iter().collect();
    // The workers that copied most, at their highest (a worker may free what it copied).
    let most = |w: &Worker| w.1.iter().map(|p| p.1).max().unwrap_or(0);
    workers.sort_by(|a, b| most(b.1).cmp(&most(a.1)).then(a.0.cmp(b.0)));
    let copied_max = workers.iter().flat_map(|w| w.1.1.iter().map(|p| p.1)).max().unwrap_or(0);
    let (div, unit) = byte_unit(copied_max.max(1));
    let estimate = if series.estimated { " (estimated: no root)" } else { "" };
    let caption = if workers.is_empty() {
        "Copied from parent: no forked worker's pages were read (root, or --exact)".to_string()
    } else {
        format!("What each forked worker copied from its parent since the fork{estimate}")
    };
    let y = copied_max.max(1 << 20) as f64 / div * 1.1;
    let axes = Axes { x: t_max / t_div, y, x_unit: t_name, y_unit: unit };
    let mut chart = captioned(&bottom, &caption, &axes).map_err(err)?;
    for (rank, (pid, (name, points, last_seen))) in workers.iter().enumerate() {
        let named = rank < NAMED_WORKERS;
        let color =
            if named { WORKER_COLORS[rank].to_rgba() } else { RGBAColor(150, 150, 150, 0.6) };
        let drawn = chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .copied()
                    .chain(points.last().filter(|p| p.0 < *last_seen).map(|p| (*last_seen, p.1)))
                    .map(|(t, b)| (t / t_div, b as f64 / div)),
                color.stroke_width(2),
            ))
            .map_err(err)?;
        if named {
            let last = points.last().map_or(0, |p| p.1);
            let highest = points.iter().map(|p| p.1).max().unwrap_or(0);
            let figure = if human_bytes(last) == human_bytes(highest) {
                human_bytes(last)
            } else {
                format!("{}; at most {}", human_bytes(last), human_bytes(highest))
            };
            drawn.label(format!("{pid} {} ({figure})", visible_name(name))).legend(
                move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2)),
            );
        } else if rank == NAMED_WORKERS {
            let more = workers.len() - NAMED_WORKERS;
            drawn.label(format!("{more} more")).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
        }
    }
    if !workers.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// A chart's axes: from 0 to `x` (time, in `x_unit`) and to `y` (bytes, in `y_unit`).
struct Axes {
    x: f64,
    y: f64,
    x_unit: &'static str,
    y_unit: &'static str,
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A captioned chart over `area` with its grid and labelled axes drawn.
fn captioned<'a, DB: DrawingBackend>(
    area: &'a Area<DB>,
    caption: &str,
    axes: &Axes,
) -> Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..axes.x, 0.0..axes.y)?;
    chart
        .configure_mesh()
        .x_desc(format!("time since the start ({})", axes.x_unit))
        .y_desc(axes.y_unit)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    Ok(chart)
}

/// A process name as a picture may show it: controls dropped (a name is anyone's to choose).
fn visible_name(name: &str) -> String {
    crate::units::stripped(name).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{process, snapshot};
    use crate::model::{Grouping, account};

    #[test]
    fn a_series_draws_as_svg_and_png() {
        let mut series = Series::default();
        for i in 0..5u64 {
            let snap = snapshot(vec![
                process(10, 1).figures((100 + i) << 20, 60 << 20, 10 << 20).build(),
                process(11, 10).figures(100 << 20, 60 << 20, 10 << 20).build(),
            ]);
            series.add(i as f64, &account(&snap, &Grouping::Roots(vec![10])));
        }
        series.workers.insert(11, ("w\x1b[31m".into(), vec![(0.0, 0), (4.0, 8 << 20)], 4.0));
        // One that copied more, then freed most of it: named by its highest.
        let fell = vec![(0.0, 0), (2.0, 16 << 20), (4.0, 4 << 20)];
        series.workers.insert(12, ("x".into(), fell, 4.0));
        series.repeat(5.0);
        assert_eq!(series.workers[&11].2, 5.0, "in the last sample: drawn on to the repeat");
        let dir = tempfile::tempdir().unwrap();
        for name in ["p.svg", "p.png"] {
            let path = dir.path().join(name);
            draw(&series, "memtree: test", &path, format_of(&path).unwrap()).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.len() > 1000, "{name}: {} bytes", bytes.len());
        }
        let svg = std::fs::read_to_string(dir.path().join("p.svg")).unwrap();
        assert!(svg.contains("Σ RSS (what a monitor shows)"), "the legend is there");
        assert!(svg.contains("11 w?[31m (8 MiB)"), "the worker, its name without the escape");
        let (fell, rose) = (svg.find("12 x (4 MiB; at most 16 MiB)"), svg.find("11 w"));
        assert!(fell.is_some_and(|f| rose.is_some_and(|r| f < r)), "first: it copied most");
        assert!(!svg.contains('\x1b'));
        assert!(format_of(Path::new("x.jpg")).is_err());
    }
}
