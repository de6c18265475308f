//! TUI layer, background side: the thread that takes the dashboard's rounds from the shared
//! sampler ([`Session`], paced by its [`crate::sampler::Cadence`]) and sends them over a
//! channel, so the screen never waits on /proc. It follows the screen's wishes (pause, the
//! mappings view, the detail pane's process) through [`Controls`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crate::sampler::{Round, Session};

/// Wishes of the screen the collector follows.
#[derive(Debug, Default)]
pub struct Controls {
    pub quit: AtomicBool,
    pub paused: AtomicBool,
    /// Read the per-mapping smaps of every process (the mappings view).
    pub mappings: AtomicBool,
    /// Read the per-mapping smaps of this pid (the detail pane); 0 for none.
    pub focus: AtomicU32,
}

/// Runs until `controls.quit` is set, the receiver goes away or the target is gone.
pub fn run(mut session: Session, interval: Duration, controls: Arc<Controls>, tx: Sender<Round>) {
    loop {
        if controls.quit.load(Ordering::Relaxed) {
            return;
        }
        let start = Instant::now();
        if controls.paused.load(Ordering::Relaxed) {
            if !sleep_until(start + interval, &controls) {
                return;
            }
            continue;
        }
        let focus = controls.focus.load(Ordering::Relaxed);
        session
            .set_mappings(controls.mappings.load(Ordering::Relaxed), (focus != 0).then_some(focus));
        // A round fails only when the target's roots cannot be listed: the next one says
        // whether they are gone.
        if let Ok(round) = session.round() {
            let gone = round.target_gone;
            if tx.send(round).is_err() || gone {
                return;
            }
        }
        if !sleep_until(start + interval.max(start.elapsed()), &controls) {
            return;
        }
    }
}

/// Sleeps until `deadline` in short steps; `false` when asked to quit.
fn sleep_until(deadline: Instant, controls: &Controls) -> bool {
    loop {
        if controls.quit.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}
