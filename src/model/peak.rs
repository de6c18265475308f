//! Model layer: follows a run's snapshots and keeps the one at the tree's peak footprint, and
//! each process's own peak. Pure: fed by whoever samples.

use std::collections::HashMap;

use super::accounting::Figures;
use super::snapshot::Snapshot;
use super::tree::{Peak, Totals};

#[derive(Debug, Default)]
pub struct PeakTracker {
    best: Option<(u64, Snapshot)>,
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
            }
        }
        let footprint = Totals::of(&figures).footprint?;
        if self.best.as_ref().is_none_or(|(best, _)| footprint > *best) {
            self.best = Some((footprint, snapshot));
        }
        Some(footprint)
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The snapshot at the peak footprint (if any sample could be read), and every process's own
    /// peak, including processes that had exited by then.
    pub fn finish(self) -> (Option<Snapshot>, HashMap<u32, Peak>) {
        (self.best.map(|(_, snapshot)| snapshot), self.per_pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::{ProcessSample, SmapsFields};

    fn snap(entries: &[(u32, u64, u64)]) -> Snapshot {
        Snapshot {
            taken_at_unix: 0.0,
            privileged: true,
            processes: entries
                .iter()
                .map(|&(pid, rss, pss)| ProcessSample {
                    pid,
                    ppid: 1,
                    name: "x".into(),
                    uid: None,
                    cmdline: None,
                    rollup: Ok(SmapsFields {
                        rss: Some(rss),
                        pss: Some(pss),
                        swap_pss: Some(0),
                        ..SmapsFields::default()
                    }),
                    mappings: None,
                })
                .collect(),
        }
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
        assert_eq!(peaks[&1], Peak { rss: 300, pss: 300 });
        assert_eq!(peaks[&2], Peak { rss: 900, pss: 860 });
    }
}
