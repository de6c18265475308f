//! Runner layer: catching SIGINT/SIGTERM/SIGHUP/SIGQUIT as a flag instead of dying, so memtree
//! can forward them, clean up and exit with the conventional status (128 + signal).
//!
//! Handlers (unlike ignored signals) are reset to the default by `exec`, so the commands
//! memtree starts get the ordinary behaviour.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static LAST_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: i32) {
    LAST_SIGNAL.store(signal, Ordering::SeqCst);
}

/// The signals memtree turns into a flag.
pub const CAUGHT: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

/// Installs the recording handler for [`CAUGHT`].
pub fn catch() -> nix::Result<()> {
    let action = SigAction::new(SigHandler::Handler(record), SaFlags::SA_RESTART, SigSet::empty());
    for signal in CAUGHT {
        // SAFETY: `record` only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// The most recent caught signal since the last call, if any.
pub fn take() -> Option<Signal> {
    match LAST_SIGNAL.swap(0, Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// Ends the process if a caught signal waits longer than `grace` for [`take`]: the safety net
/// for a main loop stuck in a write to a terminal that no longer drains. The process dies of
/// the signal itself (default action), so children started with `PR_SET_PDEATHSIG` follow.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(grace: Duration) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut pending_since: Option<(i32, Instant)> = None;
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                let signal = LAST_SIGNAL.load(Ordering::SeqCst);
                pending_since = match pending_since {
                    _ if signal == 0 => None,
                    Some((s, at)) if s == signal => {
                        if at.elapsed() >= grace {
                            die_of(signal);
                        }
                        Some((s, at))
                    }
                    _ => Some((signal, Instant::now())),
                };
            }
        });
        Watchdog { stop, thread: Some(thread) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Restores the default action of `signal` and raises it.
fn die_of(signal: i32) -> ! {
    if let Ok(signal) = Signal::try_from(signal) {
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing the default action has no handler to be unsafe about.
        let _ = unsafe { sigaction(signal, &default) };
        let _ = nix::sys::signal::raise(signal);
    }
    std::process::exit(128 + signal)
}
