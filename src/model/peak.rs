//! Model layer: follows a run's snapshots and keeps the one at the tree's peak footprint, and
//! each process's own peak. Pure: fed by whoever samples.

use std::collections::HashMap;

use super::accounting::{Peak, Totals};
use super::figures::Figures;
use super::snapshot::Snapshot;

/// Samples whose footprint is within this fraction of the highest count as the peak; among
/// them the one with the highest Σ RSS wins (the moment a monitor looked worst), so a plateau
/// is reported when every process of it has mapped its data, not at its first sample. Sampled
/// footprints of a steady tree move by a few percent (allocator churn, pages being mapped).
const PLATEAU: f64 = 0.05;

#[derive(Debug, Default)]
pub struct PeakTracker {
    /// (footprint, rss_sum, snapshot) of the chosen sample.
    best: Option<(u64, u64, Snapshot)>,
    /// The last sample, while none had a footprint (every process unreadable, or none yet).
    fallback: Option<Snapshot>,
    max_footprint: u64,
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
            if self.best.is_none() {
                self.fallback = Some(snapshot);
            }
            return None;
        };
        let rss_sum = totals.rss_sum.unwrap_or(0);
        self.max_footprint = self.max_footprint.max(footprint);
        let floor = self.max_footprint as f64 * (1.0 - PLATEAU);
        let replace = match &self.best {
            None => true,
            Some((best_footprint, best_rss, _)) => {
                (*best_footprint as f64) < floor
                    || (footprint as f64 >= floor && rss_sum > *best_rss)
            }
        };
        if replace {
            self.best = Some((footprint, rss_sum, snapshot));
        }
        Some(footprint)
    }

    /// The highest footprint seen (the reported sample's is within `PLATEAU` of it).
    pub fn max_footprint(&self) -> Option<u64> {
        self.best.as_ref().map(|_| self.max_footprint)
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The snapshot at the peak footprint (or, if no sample could be read, the last one), and
    /// every process's own peak, including processes that had exited by then.
    pub fn finish(self) -> (Option<Snapshot>, HashMap<u32, Peak>) {
        (self.best.map(|(_, _, snapshot)| snapshot).or(self.fallback), self.per_pid)
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
}
