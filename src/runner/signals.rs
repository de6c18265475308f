//! Runner layer: catching SIGINT/SIGTERM/SIGHUP/SIGQUIT as a flag instead of dying, so memtree
//! can forward them, clean up and exit with the conventional status (128 + signal).
//!
//! Handlers (unlike ignored signals) are reset to the default by `exec`, so the commands
//! memtree starts get the ordinary behaviour.

use std::sync::atomic::{AtomicI32, Ordering};

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
