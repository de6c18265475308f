//! Report layer, a face: one [`Accounting`] as metrics for Prometheus — OpenMetrics text (what
//! `report --format openmetrics` writes for node_exporter's textfile collector, and what
//! `serve` answers a scraper that asks for it) or the Prometheus text format 0.0.4, both
//! encoded by the official client (`prometheus-client`). docs/metrics-export.md names every
//! series.
//!
//! A figure that could not be read is an absent series, never 0. Cardinality is bounded: one
//! set of series per group (a tree, or a process name), at most `max_groups` of them, largest
//! first; per-process series only when asked, at most `per_process` of them. Names and
//! command lines are hostile: a label value is made visible ([`units::visible`]), so a name
//! cannot carry a control sequence to whoever reads the exposition in a terminal, and two
//! names stay two label values.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::model::accounting::ProcessRow;
use crate::model::{Accounting, Totals, Tree};
use crate::units::visible;

/// The content type of OpenMetrics text, as Prometheus negotiates it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the Prometheus text format, for a scraper that does not ask for
/// OpenMetrics (curl, an old Prometheus).
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How many groups are exported unless told otherwise.
pub const DEFAULT_MAX_GROUPS: usize = 100;

/// What the exposition says besides the accounting: its bounds and the exporter's own state.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposition {
    /// Groups exported at most (the largest by footprint, then by the sum of RSS).
    pub max_groups: usize,
    /// Per-process series for at most this many processes (the largest by RSS); `None`: none.
    pub per_process: Option<usize>,
    /// Wall time of the sampling round whose figures are served.
    pub round_seconds: Option<f64>,
    /// Age of each pass's figures when encoded: `rollup`, `exact`, `dedup` (a pass that was not
    /// asked for, or has not run yet, is absent).
    pub ages: Vec<(&'static str, f64)>,
}

impl Default for Exposition {
    fn default() -> Self {
        Exposition {
            max_groups: DEFAULT_MAX_GROUPS,
            per_process: None,
            round_seconds: None,
            ages: Vec::new(),
        }
    }
}

/// The ages of a one-shot report's figures at `now`: a live report's passes all ran in its one
/// round; a recording's sample may carry exact figures and duplicated content from an earlier
/// pass. A format-1 recording did not keep when: their age is then left out, not guessed.
pub fn ages(accounting: &Accounting, now: f64) -> Vec<(&'static str, f64)> {
    let age = (now - accounting.taken_at_unix).max(0.0);
    let mut ages = vec![("rollup", age)];
    if let Some(at) = accounting.exact_taken_at_unix {
        let costly = (now - at).max(0.0);
        if accounting.totals.exact_ok().is_some() {
            ages.push(("exact", costly));
        }
        if accounting.totals.dedup_ok().is_some() {
            ages.push(("dedup", costly));
        }
    }
    ages
}

type Labels = Vec<(&'static str, String)>;
/// Bytes and counts.
type Int = Family<Labels, Gauge<u64, AtomicU64>>;
type Value = Family<Labels, Gauge<f64, AtomicU64>>;

/// The accounting as OpenMetrics text (ending in `# EOF`).
pub fn openmetrics(accounting: &Accounting, exposition: &Exposition) -> String {
    let mut out = String::new();
    text::encode(&mut out, &registry(accounting, exposition)).expect("a String takes any text");
    out
}

/// The accounting in the Prometheus text format 0.0.4.
pub fn prometheus_text(accounting: &Accounting, exposition: &Exposition) -> String {
    use prometheus_client::encoding::prometheus_text;
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry(accounting, exposition))
        .expect("a String takes any text");
    out
}

/// The figure families of one level (a group, the whole target, a process), registered under
/// `prefix` (`group_`, `target_`, `process_`).
struct Level {
    processes: Int,
    rss_sum: Int,
    pss_sum: Int,
    uss_sum: Int,
    swap_sum: Int,
    footprint: Int,
    exclusive: Int,
    duplicated: Int,
    overcount: Value,
}

impl Level {
    fn register(registry: &mut Registry, prefix: &str, of: &str) -> Level {
        let mut bytes = |name: &str, help: String| {
            let family = Int::default();
            registry.register_with_unit(
                format!("{prefix}{name}"),
                help,
                Unit::Bytes,
                family.clone(),
            );
            family
        };
        let level = Level {
            processes: Int::default(),
            rss_sum: bytes(
                "rss_sum",
                format!(
                    "Sum of RSS of {of}: what a system monitor adds up (shared pages once per process)"
                ),
            ),
            pss_sum: bytes(
                "pss_sum",
                format!("Sum of PSS of {of} (shared pages split between their mappers)"),
            ),
            uss_sum: bytes("uss_sum", format!("Sum of USS of {of} (pages only one process maps)")),
            swap_sum: bytes("swap_sum", format!("Sum of swap of {of}")),
            footprint: bytes(
                "footprint",
                format!(
                    "What {of} really uses: distinct physical pages and swap entries (method \
                     pagemap, needs root) or the sum of PSS and SwapPss (method pss_estimate)"
                ),
            ),
            exclusive: bytes(
                "exclusive",
                format!(
                    "Bytes of {of} that no process outside it maps: what stopping it frees (needs root)"
                ),
            ),
            duplicated: bytes(
                "duplicated",
                format!(
                    "Bytes of {of} whose content another page of it holds too: identical copies \
                     (method frames as root, exclusive_pages without)"
                ),
            ),
            overcount: Value::default(),
        };
        registry.register(
            format!("{prefix}processes"),
            format!("Processes in {of}, readable or not"),
            level.processes.clone(),
        );
        registry.register(
            format!("{prefix}overcount_ratio"),
            format!("Sum of RSS / footprint of {of}: how many times a monitor overstates it"),
            level.overcount.clone(),
        );
        level
    }

    /// The series of one set of totals, under `labels`; an absent figure is an absent series.
    fn totals(&self, labels: &Labels, totals: &Totals) {
        self.processes.get_or_create(labels).set(totals.processes as u64);
        let set = |family: &Int, value: Option<u64>| {
            if let Some(v) = value {
                family.get_or_create(labels).set(v);
            }
        };
        set(&self.rss_sum, totals.rss_sum);
        set(&self.pss_sum, totals.pss_sum);
        set(&self.uss_sum, totals.uss_sum);
        set(&self.swap_sum, totals.swap_sum);
        if let Some(footprint) = totals.footprint {
            let labels = with(labels, "method", totals.footprint_method.as_str());
            self.footprint.get_or_create(&labels).set(footprint);
        }
        set(&self.exclusive, totals.exact_ok().map(|e| e.exclusive));
        if let Some(dedup) = totals.dedup_ok() {
            let labels = with(labels, "method", dedup.method.as_str());
            self.duplicated.get_or_create(&labels).set(dedup.total.duplicated);
        }
        if let Some(ratio) = totals.overcount {
            self.overcount.get_or_create(labels).set(ratio);
        }
    }
}

fn with(labels: &Labels, key: &'static str, value: &str) -> Labels {
    let mut labels = labels.clone();
    labels.push((key, value.to_string()));
    labels
}

/// A group's labels: its name, and for a tree its root's pid (two trees may share a name).
fn group_labels(accounting: &Accounting, tree: &Tree) -> Labels {
    let mut labels = vec![("group", visible(&tree.name).into_owned())];
    if !accounting.by_name {
        labels.push(("root_pid", tree.root_pid.to_string()));
    }
    labels
}

/// Only kernel threads: nothing to count (`--all --group-by name` has a group for each of
/// their names).
fn kernel_threads_only(tree: &Tree) -> bool {
    tree.totals.processes > 0 && tree.totals.kernel_threads == tree.totals.processes
}

fn registry(accounting: &Accounting, exposition: &Exposition) -> Registry {
    let mut registry = Registry::with_prefix("memtree");
    let by = if accounting.by_name { "the processes of one name" } else { "one process tree" };
    let group = Level::register(&mut registry, "group_", by);
    let target = Level::register(&mut registry, "target_", "every process memtree watches");

    let mut groups: Vec<&Tree> =
        accounting.trees.iter().filter(|t| !kernel_threads_only(t)).collect();
    groups.sort_by_key(|t| std::cmp::Reverse((t.totals.footprint, t.totals.rss_sum)));
    let omitted = groups.len().saturating_sub(exposition.max_groups);
    groups.truncate(exposition.max_groups);
    for tree in &groups {
        group.totals(&group_labels(accounting, tree), &tree.totals);
    }
    target.totals(&Vec::new(), &accounting.totals);
    let groups_omitted = Gauge::<u64, AtomicU64>::default();
    groups_omitted.set(omitted as u64);
    registry.register(
        "groups_omitted",
        "Groups left out of the group series (beyond --max-groups, smallest first)",
        groups_omitted,
    );

    // Copy-on-write erosion: what each group's forked workers copied from their parents.
    let copied = Int::default();
    for tree in &groups {
        // A sum over some of the workers is not the group's: none when one could not be read.
        let unread = tree.processes.iter().any(|p| {
            matches!(&p.erosion, Some(Err(e)) if !matches!(e, crate::model::Unreadable::NotApplicable(_)))
        });
        let workers: Vec<_> =
            tree.processes.iter().filter_map(|p| p.erosion.as_ref()?.as_ref().ok()).collect();
        if workers.is_empty() || unread {
            continue;
        }
        let method = if workers.iter().any(|e| e.estimated) { "exclusive_bit" } else { "frames" };
        let labels = with(&group_labels(accounting, tree), "method", method);
        copied.get_or_create(&labels).set(workers.iter().map(|e| e.copied_from_parent).sum());
    }
    registry.register_with_unit(
        "group_copied_from_parent",
        "Bytes the forked workers of one group copied from their parents since the fork \
         (copy-on-write erosion; method frames as root, exclusive_bit estimated without)",
        Unit::Bytes,
        copied,
    );

    if let Some(cap) = exposition.per_process {
        per_process(&mut registry, accounting, cap);
    }

    let unreadable = Family::<Labels, Gauge<u64, AtomicU64>>::default();
    for kind in ["vanished", "permission denied", "failed"] {
        let count = accounting.totals.unreadable.get(kind).copied().unwrap_or(0);
        unreadable.get_or_create(&vec![("reason", kind.replace(' ', "_"))]).set(count as u64);
    }
    registry.register(
        "processes_unreadable",
        "Processes of the target whose memory could not be read, left out of every sum, by reason",
        unreadable,
    );
    let age = Value::default();
    for (pass, seconds) in &exposition.ages {
        age.get_or_create(&vec![("pass", (*pass).to_string())]).set(seconds.max(0.0));
    }
    registry.register_with_unit(
        "figures_age",
        "How old the figures of each pass are (rollup: smaps_rollup; exact: pagemap and \
         kpagecount; dedup: page contents); the costly passes run less often than the cheap one",
        Unit::Seconds,
        age,
    );
    if let Some(seconds) = exposition.round_seconds {
        let duration = Gauge::<f64, AtomicU64>::default();
        duration.set(seconds);
        registry.register_with_unit(
            "scrape_duration",
            "Wall time memtree took to collect the figures served (the sampling round behind this scrape; a scrape itself only encodes them)",
            Unit::Seconds,
            duration,
        );
    }
    // A gauge of 1, as Prometheus's own exporters do: the info type is OpenMetrics only, and
    // node_exporter's textfile collector (the Prometheus text parser) refuses it.
    let build = Family::<Labels, Gauge<u64, AtomicU64>>::default();
    build.get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_string())]).set(1);
    registry.register("build_info", "memtree's version", build);
    registry
}

/// Per-process series for the `cap` processes of largest RSS.
fn per_process(registry: &mut Registry, accounting: &Accounting, cap: usize) {
    let mut bytes = |name: &str, help: &str| {
        let family = Int::default();
        registry.register_with_unit(format!("process_{name}"), help, Unit::Bytes, family.clone());
        family
    };
    let rss_family = bytes("rss", "RSS of one process (its shared pages included)");
    let pss_family =
        bytes("pss", "PSS of one process (its shared pages split between their mappers)");
    let uss_family = bytes("uss", "USS of one process (the pages it alone maps)");
    let swap_family = bytes("swap", "Swap of one process");
    let duplicated_family = bytes(
        "duplicated",
        "Bytes of one process whose content an earlier process of its group holds too",
    );
    let copied_family = bytes(
        "copied_from_parent",
        "Bytes one forked worker copied from its parent since the fork (its own frames at \
         addresses where its parent has a page)",
    );
    let shared_family =
        bytes("shared_with_parent", "Bytes of one forked worker in frames its parent maps too");
    let mut rows: Vec<(&Tree, &ProcessRow)> =
        accounting.trees.iter().flat_map(|t| t.processes.iter().map(move |p| (t, p))).collect();
    let rss = |row: &ProcessRow| row.figures.as_ref().ok().and_then(|f| f.rss);
    rows.retain(|(_, row)| rss(row).is_some());
    rows.sort_by_key(|(_, row)| std::cmp::Reverse(rss(row)));
    rows.truncate(cap);
    for (tree, row) in rows {
        let mut labels = group_labels(accounting, tree);
        labels.push(("pid", row.pid.to_string()));
        labels.push(("name", visible(&row.name).into_owned()));
        let Ok(f) = &row.figures else { continue };
        let set = |family: &Int, value: Option<u64>| {
            if let Some(v) = value {
                family.get_or_create(&labels).set(v);
            }
        };
        set(&rss_family, f.rss);
        set(&pss_family, f.pss);
        set(&uss_family, f.uss);
        set(&swap_family, f.swap);
        if let Some(Ok(d)) = &row.dedup {
            duplicated_family.get_or_create(&labels).set(d.duplicated);
        }
        if let Some(Ok(e)) = &row.erosion {
            copied_family.get_or_create(&labels).set(e.copied_from_parent);
            shared_family.get_or_create(&labels).set(e.shared_with_parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{self, MIB};
    use crate::model::{Grouping, Unreadable, account};

    /// The samples of `name`, sorted (a family keeps no order).
    fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let mut lines: Vec<&str> =
            text.lines().filter(|l| !l.starts_with('#') && l.starts_with(name)).collect();
        lines.sort_unstable();
        lines
    }

    fn machine() -> Accounting {
        let p = |pid, ppid, name: &str, rss: u64, uss: u64| {
            testing::process(pid, ppid).name(name).figures(rss * MIB, rss * MIB / 2, uss * MIB)
        };
        let snapshot = testing::snapshot(vec![
            p(10, 1, "web", 100, 10).build(),
            p(11, 10, "web", 90, 5).build(),
            p(12, 10, "evil\n\x1b[31m\"x", 80, 5).build(),
            p(20, 1, "db", 300, 200).build(),
            testing::process(21, 20)
                .name("db")
                .unreadable(Unreadable::PermissionDenied("ptrace".into()))
                .build(),
            p(30, 1, "web", 50, 50).build(),
        ]);
        account(&snapshot, &Grouping::Roots(vec![10, 20, 30]))
    }

    #[test]
    fn groups_have_their_figures_and_absent_ones_no_series() {
        let text = openmetrics(&machine(), &Exposition::default());
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(
            series(&text, "memtree_group_rss_sum_bytes"),
            [
                // The db tree has an unreadable process: its sums are over what was read, and
                // say so in processes_unreadable.
                "memtree_group_rss_sum_bytes{group=\"db\",root_pid=\"20\"} 314572800",
                "memtree_group_rss_sum_bytes{group=\"web\",root_pid=\"10\"} 283115520",
                "memtree_group_rss_sum_bytes{group=\"web\",root_pid=\"30\"} 52428800",
            ]
        );
        assert!(text.contains("memtree_processes_unreadable{reason=\"permission_denied\"} 1\n"));
        assert!(text.contains("memtree_group_processes{group=\"db\",root_pid=\"20\"} 2\n"));
        // No exact pass, no dedup pass: no exclusive, no duplicated series, an estimate.
        assert!(series(&text, "memtree_group_exclusive_bytes").is_empty());
        assert!(series(&text, "memtree_group_duplicated_bytes").is_empty());
        assert!(text.contains(
            "memtree_group_footprint_bytes{group=\"web\",root_pid=\"10\",method=\"pss_estimate\"} \
             141557760\n"
        ));
        // 270 MiB of RSS over 135 MiB of PSS.
        assert!(
            text.contains("memtree_group_overcount_ratio{group=\"web\",root_pid=\"10\"} 2.0\n")
        );
        assert!(text.contains("memtree_target_rss_sum_bytes 650117120\n"));
    }

    #[test]
    fn forked_workers_erosion_is_a_series_per_group_and_per_worker() {
        let snapshot = testing::workloads_snapshot();
        let acc = account(&snapshot, &Grouping::Roots(vec![100, 200, 300]));
        let all = Exposition { per_process: Some(20), ..Default::default() };
        let text = openmetrics(&acc, &all);
        // Each worker's own page sits where its parent's own page is: one page copied each.
        assert!(text.contains(
            "memtree_group_copied_from_parent_bytes{group=\"fork_cow\",root_pid=\"100\",method=\"frames\"} 12288\n"
        ), "{text}");
        let copied = series(&text, "memtree_process_copied_from_parent_bytes");
        assert_eq!(copied.len(), 9, "the nine workers, not their roots: {copied:?}");
        assert!(text.contains(
            "memtree_process_shared_with_parent_bytes{group=\"fork_cow\",root_pid=\"100\",pid=\"101\",name=\"fork_cow-w0\"} 65536\n"
        ));
        // Without pages: no erosion series at all.
        assert!(series(&openmetrics(&machine(), &all), "memtree_group_copied").is_empty());
    }

    #[test]
    fn groups_are_capped_and_a_hostile_name_stays_one_visible_label() {
        let exposition = Exposition { max_groups: 2, per_process: Some(2), ..Default::default() };
        let text = prometheus_text(&machine(), &exposition);
        assert_eq!(series(&text, "memtree_group_rss_sum_bytes").len(), 2);
        assert!(text.contains("memtree_groups_omitted 1\n"));
        // The two largest processes only, with their names.
        assert_eq!(
            series(&text, "memtree_process_rss_bytes"),
            [
                "memtree_process_rss_bytes{group=\"db\",root_pid=\"20\",pid=\"20\",name=\"db\"} \
                 314572800",
                "memtree_process_rss_bytes{group=\"web\",root_pid=\"10\",pid=\"10\",name=\"web\"} \
                 104857600",
            ]
        );
        let all = Exposition { per_process: Some(10), ..Default::default() };
        let text = openmetrics(&machine(), &all);
        // The newline and the escape are written visibly (then escaped by the encoder), the
        // quote escaped: one line, no control byte.
        assert!(text.contains(r#"name="evil\\n\\x1b[31m\"x"} 83886080"#), "{text}");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn groups_by_name_gather_processes_whatever_their_parents() {
        let p =
            |pid, ppid, name: &str| testing::process(pid, ppid).name(name).figures(MIB, MIB, MIB);
        let snapshot = testing::snapshot(vec![
            p(10, 1, "web").build(),
            p(11, 10, "web").build(),
            p(12, 10, "worker").build(),
            p(30, 1, "web").build(),
        ]);
        let accounting = account(&snapshot, &Grouping::Names);
        let text = openmetrics(&accounting, &Exposition::default());
        assert_eq!(
            series(&text, "memtree_group_processes"),
            [
                "memtree_group_processes{group=\"web\"} 3",
                "memtree_group_processes{group=\"worker\"} 1"
            ]
        );
        let web = &accounting.trees[0];
        assert_eq!(web.processes.iter().map(|p| p.pid).collect::<Vec<_>>(), [10, 11, 30]);
    }

    #[test]
    fn a_one_shot_report_says_how_old_its_passes_are() {
        let accounting = machine();
        assert_eq!(ages(&accounting, 5.0), [("rollup", 5.0)]);
        // Exact figures carried from a pass 3 s before the sample (a recording's).
        let exact = crate::model::Snapshot { taken_at_unix: 10.0, ..testing::workloads_snapshot() };
        let mut carried = account(&exact, &Grouping::Roots(vec![100, 200, 300]));
        carried.exact_taken_at_unix = Some(7.0);
        assert_eq!(ages(&carried, 12.0), [("rollup", 2.0), ("exact", 5.0)]);
        // A format-1 recording's: when is not known, so no age.
        carried.exact_taken_at_unix = None;
        assert_eq!(ages(&carried, 12.0), [("rollup", 2.0)]);
    }
}
