//! Model layer: follows a run's snapshots and keeps the one at the tree's peak footprint, and
//! each process's own peak. Pure: fed by whoever samples.

use std::collections::HashMap;

use super::accounting::{Peak, Totals};
use super::figures::Figures;
use super::snapshot::{Snapshot, Unreadable};

/// Samples whose footprint is within this fraction of the highest count as the peak; among
/// them the one with the highest Σ RSS wins (the moment a monitor looked worst), so a plateau
/// is reported when every process of it has mapped its data, not at its first sample. Sampled
/// footprints of a steady tree move by a few percent (allocator churn, pages being mapped).
/// The samples that lost no process mid-read ([`complete`]) make a plateau of their own, which
/// is preferred; on a plateau a sample read whole ([`consistent`]) is preferred, and a steady one
/// ([`STEADY`]) over one whose Σ RSS is barely higher ([`Rank::beats`]).
const PLATEAU: f64 = 0.05;

/// A sample is steady when the one before it had the same processes and a Σ RSS within this
/// share of its own: the tree was holding still, so what it maps has been written (a page is
/// present from its first write on: a sample taken while the data was being filled has its
/// pages but not yet their content, which `--dedup` reads).
const STEADY: f64 = 0.01;

/// A process whose present pages (pagemap) and rollup RSS differ by more than this share (and
/// more than [`TORN_BYTES`]) was mapping or freeing memory fast while it was read: the sample's
/// exact figures and its rollup are of different moments. Within the plateau a consistent
/// sample is preferred to such a torn one, whatever their Σ RSS.
const TORN: f64 = 0.10;
const TORN_BYTES: u64 = 1 << 20;

/// Whether every process whose rollup was read was still there for its pages and contents: a
/// sample in which one exited between its reads (the end of a run, when every worker exits at
/// once) has that process's rollup without its exact figures, and is not the run's picture
/// while a sample without such a loss is within the plateau.
fn complete(snapshot: &Snapshot) -> bool {
    snapshot.processes.iter().all(|p| {
        let vanished = |r: Option<&Unreadable>| matches!(r, Some(Unreadable::Vanished(_)));
        p.rollup.is_err()
            || !(vanished(p.pages.as_ref().and_then(|r| r.as_ref().err()))
                || vanished(p.content.as_ref().and_then(|r| r.as_ref().err())))
    })
}

/// Whether every process's pages, where read, agree with its rollup (see [`TORN`]). (A process
/// mapping much of the zero page, present in pagemap but not in Rss, looks torn in every
/// sample: then no sample is whole, and the rule falls back to Σ RSS, as without pages.)
fn consistent(snapshot: &Snapshot) -> bool {
    snapshot.processes.iter().all(|p| {
        let (Ok(rollup), Some(Ok(pages))) = (&p.rollup, &p.pages) else { return true };
        let Some(rss) = rollup.rss else { return true };
        let present: u64 = pages
            .entries()
            .iter()
            .filter(|e| e.pfn().is_some())
            .map(|e| e.bytes(snapshot.page_size))
            .sum();
        let gap = rss.abs_diff(present);
        gap <= TORN_BYTES || (gap as f64) <= TORN * rss.max(present) as f64
    })
}

/// How a plateau sample compares with another.
#[derive(Debug, Clone, Copy)]
struct Rank {
    whole: bool,
    steady: bool,
    rss: u64,
}

impl Rank {
    /// A sample read whole beats a torn one; between two, a steady one beats one whose Σ RSS is
    /// at most [`PLATEAU`] higher (the first sample at a plateau, its data still being written),
    /// and otherwise the higher Σ RSS wins (the moment a monitor looked worst: a tree that held
    /// still before its workers forked does not win over them).
    fn beats(&self, other: &Rank) -> bool {
        if self.whole != other.whole {
            return self.whole;
        }
        let close = |a: u64, b: u64| a as f64 >= b as f64 * (1.0 - PLATEAU);
        match (self.steady, other.steady) {
            (true, false) => close(self.rss, other.rss),
            (false, true) => !close(other.rss, self.rss),
            _ => self.rss > other.rss,
        }
    }
}

#[derive(Debug, Default)]
pub struct PeakTracker {
    /// The samples that lost no process mid-read ([`complete`]), and the others: the peak is
    /// the first's when there is one. Apart, because a sample that lost a process mid-read
    /// can have a footprint no moment had (the worker read before it exited still holds its
    /// share of the PSS its parent, read after, no longer shares) and must not set the
    /// plateau the complete ones are judged against.
    complete: Plateau,
    incomplete: Plateau,
    /// The pids and Σ RSS of the last sample.
    last: Option<(Vec<u32>, u64)>,
    /// The last sample, while none had a footprint (every process unreadable, or none yet).
    fallback: Option<Snapshot>,
    per_pid: HashMap<u32, Peak>,
    samples: usize,
}

impl PeakTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one sample of the whole run's tree. Returns the sample's footprint, if any process
    /// could be read.
    pub fn observe(&mut self, snapshot: Snapshot) -> Option<u64> {
        self.samples += 1;
        let figures: Vec<_> = snapshot
            .processes
            .iter()
            .map(|p| p.rollup.as_ref().map(Figures::from_fields).map_err(Clone::clone))
            .collect();
        for (process, figures) in snapshot.processes.iter().zip(&figures) {
            if let Ok(f) = figures {
                let peak = self.per_pid.entry(process.pid).or_default();
                peak.rss = peak.rss.max(f.rss.unwrap_or(0));
                peak.pss = peak.pss.max(f.pss.unwrap_or(0));
                peak.uss = peak.uss.max(f.uss.unwrap_or(0));
            }
        }
        let totals = Totals::of(&figures);
        let Some(footprint) = totals.footprint else {
            if self.complete.best.is_none() && self.incomplete.best.is_none() {
                self.fallback = Some(snapshot);
            }
            return None;
        };
        let rss_sum = totals.rss_sum.unwrap_or(0);
        let (complete, whole) = (complete(&snapshot), consistent(&snapshot));
        let pids: Vec<u32> = snapshot.processes.iter().map(|p| p.pid).collect();
        let steady = self.last.as_ref().is_some_and(|(last_pids, last_rss)| {
            *last_pids == pids && (last_rss.abs_diff(rss_sum) as f64) <= STEADY * rss_sum as f64
        });
        self.last = Some((pids, rss_sum));
        let rank = Rank { whole, steady, rss: rss_sum };
        let plateau = if complete { &mut self.complete } else { &mut self.incomplete };
        plateau.offer(footprint, rank, snapshot);
        Some(footprint)
    }

    /// The plateau the peak is taken from: the complete samples', if any.
    fn chosen(&self) -> &Plateau {
        if self.complete.best.is_some() { &self.complete } else { &self.incomplete }
    }

    /// The highest footprint seen (the reported sample's is within `PLATEAU` of it), among the
    /// complete samples when there are some.
    pub fn max_footprint(&self) -> Option<u64> {
        let plateau = self.chosen();
        plateau.best.as_ref().map(|_| plateau.max_footprint)
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The snapshot at the peak footprint (or, if no sample could be read, the last one), and
    /// every process's own peak, including processes that had exited by then.
    pub fn finish(self) -> (Option<Snapshot>, HashMap<u32, Peak>) {
        let best = self.complete.best.or(self.incomplete.best);
        (best.map(|(_, _, snapshot)| snapshot).or(self.fallback), self.per_pid)
    }
}

/// The highest footprint among some samples, and the one chosen on its plateau.
#[derive(Debug, Default)]
struct Plateau {
    /// (footprint, rank, snapshot) of the chosen sample.
    best: Option<(u64, Rank, Snapshot)>,
    max_footprint: u64,
}

impl Plateau {
    fn offer(&mut self, footprint: u64, rank: Rank, snapshot: Snapshot) {
        self.max_footprint = self.max_footprint.max(footprint);
        let floor = self.max_footprint as f64 * (1.0 - PLATEAU);
        let replace = match &self.best {
            None => true,
            Some((best_footprint, best, _)) => {
                (*best_footprint as f64) < floor || (footprint as f64 >= floor && rank.beats(best))
            }
        };
        if replace {
            self.best = Some((footprint, rank, snapshot));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{process, snapshot};

    fn snap(entries: &[(u32, u64, u64)]) -> Snapshot {
        snapshot(
            entries
                .iter()
                .map(|&(pid, rss, pss)| process(pid, 1).figures(rss, pss, 0).build())
                .collect(),
        )
    }

    #[test]
    fn keeps_the_peak_snapshot_and_per_process_peaks() {
        let mut tracker = PeakTracker::new();
        tracker.observe(snap(&[(1, 100, 100)]));
        tracker.observe(snap(&[(1, 100, 60), (2, 900, 860)]));
        tracker.observe(snap(&[(1, 300, 300)]));
        assert_eq!(tracker.samples(), 3);
        let (best, peaks) = tracker.finish();
        let best = best.unwrap();
        assert_eq!(best.processes.len(), 2);
        assert_eq!(peaks[&1], Peak { rss: 300, pss: 300, uss: 0 });
        assert_eq!(peaks[&2], Peak { rss: 900, pss: 860, uss: 0 });
    }

    #[test]
    fn on_a_plateau_the_sample_where_rss_looked_worst_wins() {
        let mut tracker = PeakTracker::new();
        tracker.observe(snap(&[(1, 100, 100), (2, 10, 1000)]));
        // Same footprint (±1 %), but both processes now map the shared data: Σ RSS is higher.
        tracker.observe(snap(&[(1, 1000, 550), (2, 1000, 545)]));
        // Lower footprint: not the peak, however high its RSS.
        tracker.observe(snap(&[(1, 5000, 500), (2, 5000, 400)]));
        let (best, _) = tracker.finish();
        let rss: Vec<u64> = best
            .unwrap()
            .processes
            .iter()
            .map(|p| p.rollup.as_ref().unwrap().rss.unwrap())
            .collect();
        assert_eq!(rss, [1000, 1000]);
        // A new, higher peak replaces a plateau sample.
        let mut tracker = PeakTracker::new();
        tracker.observe(snap(&[(1, 9000, 100)]));
        tracker.observe(snap(&[(1, 10, 200)]));
        let (best, _) = tracker.finish();
        assert_eq!(best.unwrap().processes[0].rollup.as_ref().unwrap().pss, Some(200));
    }

    #[test]
    fn on_a_plateau_a_sample_whose_pages_and_rollup_agree_wins_over_a_torn_one() {
        use crate::model::snapshot::{PageEntry, PagesRaw, pagemap_bits::PRESENT};
        // `rss` by the rollup, `present` 4 KiB pages by pagemap: of another moment when the
        // process was mapping fast.
        let sample = |rss: u64, present: u64| {
            let mut s = snap(&[(1, rss, rss)]);
            s.page_size = 4096;
            let entries = (0..present).map(|i| (i * 4096, PageEntry::new(PRESENT | (i + 1))));
            s.processes[0].pages = Some(Ok(PagesRaw::from_entries(Vec::new(), entries, 4096)));
            s
        };
        let mib = 1 << 20;
        let mut tracker = PeakTracker::new();
        // 100 MiB by both.
        tracker.observe(sample(100 * mib, 100 * 256));
        // 102 MiB by the rollup, read after pagemap saw 40 MiB: torn, though RSS is higher.
        tracker.observe(sample(102 * mib, 40 * 256));
        let (best, _) = tracker.finish();
        assert_eq!(best.unwrap().processes[0].rollup.as_ref().unwrap().rss, Some(100 * mib));
        // A torn sample is still the peak when it is the only one there.
        let mut tracker = PeakTracker::new();
        tracker.observe(sample(10 * mib, 10 * 256));
        tracker.observe(sample(100 * mib, 40 * 256));
        let (best, _) = tracker.finish();
        assert_eq!(best.unwrap().processes[0].rollup.as_ref().unwrap().rss, Some(100 * mib));
    }

    #[test]
    fn a_sample_that_lost_a_process_mid_read_loses_even_to_a_torn_one() {
        use crate::model::snapshot::{PageEntry, PagesRaw, pagemap_bits::PRESENT};
        let mib = 1 << 20;
        let pages = |present: u64| {
            let entries = (0..present).map(|i| (i * 4096, PageEntry::new(PRESENT | (i + 1))));
            Some(Ok(PagesRaw::from_entries(Vec::new(), entries, 4096)))
        };
        // Both processes read whole, but the first torn (40 MiB of pages for 100 of rollup),
        // as a process that maps the zero page looks in every sample.
        let mut torn = snap(&[(1, 100 * mib, 50 * mib), (2, 100 * mib, 50 * mib)]);
        torn.page_size = 4096;
        torn.processes[0].pages = pages(40 * 256);
        torn.processes[1].pages = pages(100 * 256);
        // More RSS and a footprint 20 % higher (torn PSS: the second was read before the
        // first exited), but the second process exited after its rollup, before its pages.
        let mut lost = snap(&[(1, 100 * mib, 60 * mib), (2, 104 * mib, 60 * mib)]);
        lost.page_size = 4096;
        lost.processes[0].pages = pages(40 * 256);
        lost.processes[1].pages = Some(Err(Unreadable::Vanished("exited".into())));
        let mut tracker = PeakTracker::new();
        tracker.observe(torn);
        tracker.observe(lost);
        assert_eq!(tracker.max_footprint(), Some(100 * mib), "the complete samples' highest");
        let best = tracker.finish().0.unwrap();
        assert!(best.processes[1].pages.as_ref().unwrap().is_ok(), "the complete one");
        // Without a complete sample, the incomplete one is the peak.
        let mut lost = snap(&[(1, 100 * mib, 60 * mib)]);
        lost.processes[0].pages = Some(Err(Unreadable::Vanished("exited".into())));
        let mut tracker = PeakTracker::new();
        tracker.observe(lost);
        assert!(tracker.finish().0.is_some());
    }

    #[test]
    fn on_a_plateau_a_steady_sample_wins_over_the_first_one_there() {
        let rss_of =
            |best: Option<Snapshot>| best.unwrap().processes[0].rollup.as_ref().unwrap().rss;
        let mut tracker = PeakTracker::new();
        tracker.observe(snap(&[(1, 50, 50)]));
        // The first sample at the plateau: its pages are there, not yet all of their content.
        tracker.observe(snap(&[(1, 101, 101)]));
        // Holding still (within 1 % of the sample before): steady.
        tracker.observe(snap(&[(1, 100, 100)]));
        tracker.observe(snap(&[(1, 99, 99)]));
        assert_eq!(rss_of(tracker.finish().0), Some(100));
        // A process that appeared or left makes the sample after it not steady.
        let mut tracker = PeakTracker::new();
        tracker.observe(snap(&[(1, 100, 100)]));
        tracker.observe(snap(&[(1, 100, 100), (2, 1, 1)]));
        tracker.observe(snap(&[(1, 100, 100), (2, 1, 1)]));
        assert_eq!(tracker.finish().0.unwrap().processes.len(), 2);
    }

    #[test]
    fn a_tree_that_held_still_before_forking_does_not_win_over_its_busy_workers() {
        let mut tracker = PeakTracker::new();
        tracker.observe(snap(&[(1, 100, 100)]));
        tracker.observe(snap(&[(1, 100, 100)]));
        // Forked: the same footprint, four times the RSS, moving by more than 1 % a sample.
        tracker.observe(snap(&[(1, 100, 25), (2, 100, 25), (3, 100, 25), (4, 100, 25)]));
        tracker.observe(snap(&[(1, 110, 26), (2, 100, 25), (3, 100, 25), (4, 100, 25)]));
        assert_eq!(tracker.finish().0.unwrap().processes.len(), 4);
    }
}
