//! TUI layer: the dashboard's state. `App` holds what the screen shows; [`App::apply`] turns an
//! [`Action`] into a state change; [`App::on_update`] takes a round of figures. No I/O.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::event::Action;
use crate::model::accounting::ProcessRow;
use crate::model::{Accounting, Unreadable};
use crate::sampler::Round;

/// Samples kept for the timeline.
const HISTORY: usize = 600;
/// Rows a page key moves.
const PAGE: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Processes,
    Mappings,
    Sharing,
}

impl View {
    pub fn title(self) -> &'static str {
        match self {
            View::Processes => "Processes",
            View::Mappings => "Mappings by name",
            View::Sharing => "Who shares with whom",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Rss,
    Pss,
    Uss,
    Shared,
    Swap,
    Pid,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Rss => "RSS",
            Sort::Pss => "PSS",
            Sort::Uss => "USS",
            Sort::Shared => "shared",
            Sort::Swap => "swap",
            Sort::Pid => "pid",
        }
    }

    fn next(self) -> Sort {
        match self {
            Sort::Rss => Sort::Pss,
            Sort::Pss => Sort::Uss,
            Sort::Uss => Sort::Shared,
            Sort::Shared => Sort::Swap,
            Sort::Swap => Sort::Pid,
            Sort::Pid => Sort::Rss,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Explain,
}

/// One point of the timeline: seconds since start, Σ RSS, footprint, Σ PSS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: f64,
    pub rss_sum: u64,
    pub footprint: u64,
    pub pss_sum: u64,
}

/// One sample of a replayed recording, as the dashboard steps through it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayPoint {
    pub seconds: f64,
    /// Where its figures are in the file.
    pub offset: u64,
    pub taken_at_unix: f64,
}

/// A recording shown instead of live figures (`top --replay`).
#[derive(Debug, Clone, Default)]
pub struct Replay {
    pub points: Vec<ReplayPoint>,
    /// The sample shown.
    pub at: usize,
    /// The timeline's points of every sample, and each worker's copies over the recording.
    pub history: Vec<Point>,
    pub copies: HashMap<u32, Vec<(f64, u64)>>,
}

#[derive(Debug)]
pub struct App {
    /// What is watched, in words ("workload fork (64 MiB × 3 workers)").
    pub target: String,
    pub interval: Duration,
    pub started: Instant,
    /// The time the frame is drawn at (set by the loop before each draw): the views read it,
    /// never the clock, so a frame is a function of the state.
    pub now: Instant,
    pub accounting: Option<Arc<Accounting>>,
    /// How Python started each process of `accounting` (worked out once per accounting, not
    /// at every frame: a whole machine is thousands of rows, a frame shows fifty).
    pub roles: HashMap<u32, crate::model::python::PythonRole>,
    pub updated_at: Option<Instant>,
    pub exact_at: Option<Instant>,
    /// Whether exact figures were asked for and why they are missing (e.g. not root).
    pub exact_note: Option<String>,
    pub history: VecDeque<Point>,
    /// Each forked worker's copied-from-parent bytes over time, `(seconds since start,
    /// bytes)`, from the rounds that read pages (for its chart and its growth).
    pub copies: HashMap<u32, VecDeque<(f64, u64)>>,
    pub selected: usize,
    pub view: View,
    pub sort: Sort,
    pub flat: bool,
    pub paused: bool,
    pub overlay: Overlay,
    pub detail: bool,
    /// Set when the target exited: the screen says so and keeps the last figures.
    pub target_gone: Option<String>,
    pub quit: bool,
    pub last_cost: Option<Duration>,
    pub color: bool,
    /// The built-in workloads watched, by root pid (the explanation gives each its verdict).
    pub workloads: Vec<(u32, crate::runner::spec::Spec)>,
    /// Lines the explain overlay is scrolled by (↑ ↓ PgUp PgDn Home while it is open).
    pub explain_scroll: u16,
    /// How far the explain overlay can scroll, as it was last drawn.
    pub explain_max: std::cell::Cell<u16>,
    pub replay: Option<Replay>,
}

impl App {
    pub fn new(target: String, interval: Duration, color: bool) -> App {
        App {
            target,
            interval,
            started: Instant::now(),
            now: Instant::now(),
            accounting: None,
            roles: HashMap::new(),
            updated_at: None,
            exact_at: None,
            exact_note: None,
            history: VecDeque::new(),
            copies: HashMap::new(),
            selected: 0,
            view: View::Processes,
            sort: Sort::Rss,
            flat: false,
            paused: false,
            overlay: Overlay::None,
            detail: false,
            target_gone: None,
            quit: false,
            last_cost: None,
            color,
            workloads: Vec::new(),
            explain_scroll: 0,
            explain_max: std::cell::Cell::new(0),
            replay: None,
        }
    }

    pub fn on_update(&mut self, update: Round) {
        // Every process vanished (a command that exited and is not reaped yet is still listed,
        // without memory): the target is gone as surely as when nothing is listed.
        let all_vanished = update.accounting.totals.processes > 0
            && update
                .accounting
                .processes()
                .all(|p| matches!(p.figures, Err(Unreadable::Vanished(_))));
        if update.target_gone || (all_vanished && self.accounting.is_some()) {
            self.target_gone.get_or_insert_with(|| "the target exited".to_string());
            // Keep the last figures: a round with nothing readable replaces nothing.
            if update.accounting.totals.processes == 0 || all_vanished {
                return;
            }
        }
        let t = &update.accounting.totals;
        if let (Some(rss_sum), Some(footprint), Some(pss_sum)) = (t.rss_sum, t.footprint, t.pss_sum)
        {
            self.history.push_back(Point {
                t: update.at.duration_since(self.started).as_secs_f64(),
                rss_sum,
                footprint,
                pss_sum,
            });
            if self.history.len() > HISTORY {
                self.history.pop_front();
            }
        }
        if update.exact_fresh {
            let t = update.at.duration_since(self.started).as_secs_f64();
            self.record_copies(&update.accounting, t);
        }
        self.updated_at = Some(update.at);
        self.exact_at = update.exact_at;
        self.last_cost = Some(update.cost);
        self.set_accounting(update.accounting);
        self.selected = self.selected.min(self.row_count().saturating_sub(1));
    }

    /// Shows `accounting`, the replay's sample [`Replay::at`]: the timeline and the workers'
    /// copies up to that moment.
    pub fn show_replayed(&mut self, accounting: Arc<Accounting>) {
        let Some(replay) = &self.replay else { return };
        let t = replay.points.get(replay.at).map_or(0.0, |p| p.seconds);
        self.history = replay.history.iter().filter(|p| p.t <= t).copied().collect();
        self.copies = replay
            .copies
            .iter()
            .map(|(pid, s)| (*pid, s.iter().filter(|p| p.0 <= t).copied().collect()))
            .filter(|(_, s): &(u32, VecDeque<(f64, u64)>)| !s.is_empty())
            .collect();
        self.set_accounting(accounting);
        self.selected = self.selected.min(self.row_count().saturating_sub(1));
    }

    fn set_accounting(&mut self, accounting: Arc<Accounting>) {
        if !self.accounting.as_ref().is_some_and(|a| Arc::ptr_eq(a, &accounting)) {
            self.roles = crate::model::python::all_roles(&accounting);
        }
        self.accounting = Some(accounting);
    }

    /// Adds each worker's copied bytes at `t` to its series; forgets the processes gone.
    pub fn record_copies(&mut self, accounting: &Accounting, t: f64) {
        let mut seen = HashSet::new();
        for row in accounting.processes() {
            if let Some(Ok(e)) = &row.erosion {
                let series = self.copies.entry(row.pid).or_default();
                series.push_back((t, e.copied_from_parent));
                if series.len() > HISTORY {
                    series.pop_front();
                }
                seen.insert(row.pid);
            }
        }
        self.copies.retain(|pid, _| seen.contains(pid));
    }

    /// The process rows in display order: the trees depth-first, or one flat list sorted.
    pub fn rows(&self) -> Vec<&ProcessRow> {
        let Some(acc) = &self.accounting else { return Vec::new() };
        let mut rows: Vec<&ProcessRow> = acc
            .processes()
            .filter(|p| !matches!(p.figures, Err(crate::model::Unreadable::NoAddressSpace)))
            .collect();
        if self.flat {
            let key = |p: &ProcessRow| -> u64 {
                let f = p.figures.as_ref().ok();
                match self.sort {
                    Sort::Rss => f.and_then(|f| f.rss).unwrap_or(0),
                    Sort::Pss => f.and_then(|f| f.pss).unwrap_or(0),
                    Sort::Uss => f.and_then(|f| f.uss).unwrap_or(0),
                    Sort::Shared => f.and_then(|f| f.shared).unwrap_or(0),
                    Sort::Swap => f.and_then(|f| f.swap).unwrap_or(0),
                    Sort::Pid => u64::MAX - u64::from(p.pid),
                }
            };
            rows.sort_by(|a, b| key(b).cmp(&key(a)).then(a.pid.cmp(&b.pid)));
        }
        rows
    }

    /// Rows of the current view (for moving the selection).
    pub fn row_count(&self) -> usize {
        let Some(acc) = &self.accounting else { return 0 };
        match self.view {
            View::Processes => self.rows().len(),
            View::Mappings => acc.mappings_by_name.as_ref().map_or(0, Vec::len),
            View::Sharing => {
                acc.trees.iter().filter_map(|t| t.totals.exact_ok()).map(|e| e.groups.len()).sum()
            }
        }
    }

    pub fn selected_row(&self) -> Option<&ProcessRow> {
        (self.view == View::Processes).then(|| self.rows().get(self.selected).copied()).flatten()
    }

    pub fn apply(&mut self, action: Action) {
        let last = self.row_count().saturating_sub(1);
        // The explain overlay scrolls (the view drawing it keeps the scroll within its text).
        if self.overlay == Overlay::Explain {
            let page = PAGE as u16;
            let max = self.explain_max.get();
            let scroll = &mut self.explain_scroll;
            *scroll = (*scroll).min(max);
            match action {
                Action::Up => return *scroll = scroll.saturating_sub(1),
                Action::Down => return *scroll = scroll.saturating_add(1).min(max),
                Action::PageUp => return *scroll = scroll.saturating_sub(page),
                Action::PageDown => return *scroll = scroll.saturating_add(page).min(max),
                Action::Home => return *scroll = 0,
                Action::End => return *scroll = max,
                _ => {}
            }
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Back => {
                if self.overlay != Overlay::None {
                    self.overlay = Overlay::None;
                } else if self.detail {
                    self.detail = false;
                } else {
                    self.quit = true;
                }
            }
            Action::Help => self.overlay = toggle(self.overlay, Overlay::Help),
            Action::Explain => {
                self.overlay = toggle(self.overlay, Overlay::Explain);
                self.explain_scroll = 0;
            }
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(PAGE),
            Action::PageDown => self.selected = (self.selected + PAGE).min(last),
            Action::Home => self.selected = 0,
            Action::End => self.selected = last,
            Action::Detail => self.detail = !self.detail && self.view == View::Processes,
            Action::NextView => {
                self.view = match self.view {
                    View::Processes => View::Mappings,
                    View::Mappings => View::Sharing,
                    View::Sharing => View::Processes,
                };
                self.selected = 0;
                self.detail = false;
            }
            Action::Sort => {
                if self.flat {
                    self.sort = self.sort.next();
                } else {
                    self.flat = true;
                }
                self.selected = 0;
            }
            Action::TreeFlat => {
                self.flat = !self.flat;
                self.selected = 0;
            }
            Action::Pause => self.paused = !self.paused,
            Action::Earlier(n) => {
                if let Some(r) = &mut self.replay {
                    r.at = r.at.saturating_sub(n);
                }
            }
            Action::Later(n) => {
                if let Some(r) = &mut self.replay {
                    r.at = (r.at + n).min(r.points.len().saturating_sub(1));
                }
            }
        }
    }
}

fn toggle(current: Overlay, wanted: Overlay) -> Overlay {
    if current == wanted { Overlay::None } else { wanted }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::snapshot::Snapshot;
    use crate::model::testing::{self, MIB};
    use crate::model::{Grouping, account};

    pub(crate) fn sample_accounting() -> Accounting {
        let process = |pid, ppid, name: &str, rss: u64, pss: u64, uss: u64| {
            testing::process(pid, ppid).name(name).figures(rss * MIB, pss * MIB, uss * MIB).build()
        };
        let snapshot = Snapshot {
            privileged: false,
            ..testing::snapshot(vec![
                process(100, 1, "fork_cow", 258, 66, 2),
                process(101, 100, "fork_cow-w0", 257, 64, 1),
                process(102, 100, "fork_cow-w1", 257, 64, 1),
                process(103, 100, "fork_cow-w2", 257, 64, 1),
            ])
        };
        account(&snapshot, &Grouping::Roots(vec![100]))
    }

    pub(crate) fn app_with_data() -> App {
        let mut app = App::new("workload fork".into(), Duration::from_secs(1), false);
        let now = Instant::now();
        app.on_update(Round {
            accounting: Arc::new(sample_accounting()),
            at: now,
            exact_at: None,
            exact_fresh: false,
            read: 4,
            reused: 0,
            cost: Duration::from_millis(3),
            target_gone: false,
        });
        app
    }

    #[test]
    fn selection_stays_in_bounds() {
        let mut app = app_with_data();
        app.apply(Action::Up);
        assert_eq!(app.selected, 0);
        app.apply(Action::PageDown);
        assert_eq!(app.selected, 3, "four processes");
        app.apply(Action::Down);
        assert_eq!(app.selected, 3);
        app.apply(Action::Home);
        assert_eq!(app.selected, 0);
        app.apply(Action::End);
        assert_eq!(app.selected, 3);
    }

    #[test]
    fn sort_and_tree_flat() {
        let mut app = app_with_data();
        assert!(!app.flat);
        assert_eq!(app.rows()[0].pid, 100, "tree order: the root first");
        app.apply(Action::Sort);
        assert!(app.flat, "sorting shows the flat list");
        assert_eq!(app.sort, Sort::Rss);
        app.apply(Action::Sort);
        assert_eq!(app.sort, Sort::Pss);
        app.apply(Action::Sort);
        app.apply(Action::Sort);
        app.apply(Action::Sort);
        app.apply(Action::Sort);
        assert_eq!(app.sort, Sort::Pid);
        let pids: Vec<u32> = app.rows().iter().map(|r| r.pid).collect();
        assert_eq!(pids, [100, 101, 102, 103]);
        app.apply(Action::TreeFlat);
        assert!(!app.flat);
    }

    #[test]
    fn overlays_detail_views_and_quitting() {
        let mut app = app_with_data();
        app.apply(Action::Help);
        assert_eq!(app.overlay, Overlay::Help);
        app.apply(Action::Explain);
        assert_eq!(app.overlay, Overlay::Explain);
        app.apply(Action::Back);
        assert_eq!(app.overlay, Overlay::None);
        app.apply(Action::Detail);
        assert!(app.detail);
        app.apply(Action::Back);
        assert!(!app.detail);
        assert!(!app.quit);
        app.apply(Action::NextView);
        assert_eq!(app.view, View::Mappings);
        app.apply(Action::NextView);
        app.apply(Action::NextView);
        assert_eq!(app.view, View::Processes);
        app.apply(Action::Pause);
        assert!(app.paused);
        app.apply(Action::Back);
        assert!(app.quit, "Esc with nothing open quits");
    }

    #[test]
    fn a_gone_target_keeps_the_last_figures() {
        let mut app = app_with_data();
        let mut empty = sample_accounting();
        empty.trees.clear();
        empty.totals.processes = 0;
        app.on_update(Round {
            accounting: Arc::new(empty),
            at: Instant::now(),
            exact_at: None,
            exact_fresh: false,
            read: 0,
            reused: 0,
            cost: Duration::ZERO,
            target_gone: true,
        });
        assert!(app.target_gone.is_some());
        assert_eq!(app.rows().len(), 4);
    }
}
