//! TUI layer, a face: `memtree top`. It may use the model, the sampler's session and the
//! runner's signal handling, and `report::explain` for words; never the cli. `collector` takes
//! rounds from the shared sampler on a thread of its own and sends them over a channel; the
//! main thread only handles keys and draws (`app` holds state and the clock, `event` maps keys
//! to actions, `ui` lays out the frame, `view` holds one file per pane). The terminal is restored on every way out: q,
//! Ctrl-C, SIGTERM/SIGHUP, a panic (ratatui's hook), the target exiting. A terminal that hangs
//! up (its window closed, tmux killed) ends memtree with status 129; a caught signal the main
//! loop does not take within 3 s (a terminal that blocks output) ends it from a watchdog.

pub mod app;
pub mod collector;
pub mod event;
pub mod ui;
pub mod view;

use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use ratatui::crossterm::event::{self as term, Event};

use self::app::{App, View};
use self::collector::Controls;
use crate::runner::signals;
use crate::sampler::Session;

/// Redraw at least this often (the ages in the header move).
const TICK: Duration = Duration::from_millis(500);

/// Runs the dashboard until the user quits; returns the exit status (0, or 128 + the signal
/// that ended it). `child_done` says whether a command started for `-- CMD` has exited
/// (polled each tick).
pub fn run(
    session: Session,
    mut app: App,
    mut child_done: impl FnMut() -> bool,
) -> std::io::Result<i32> {
    signals::catch().map_err(std::io::Error::from)?;
    let controls = Arc::new(Controls::default());
    let (tx, rx) = mpsc::channel();
    let collector = {
        let controls = controls.clone();
        let interval = app.interval;
        std::thread::spawn(move || collector::run(session, interval, controls, tx))
    };
    let result = event_loop(&mut app, |app| {
        controls.paused.store(app.paused, Ordering::Relaxed);
        controls.mappings.store(app.view == View::Mappings, Ordering::Relaxed);
        let focus = if app.detail { app.selected_row().map_or(0, |r| r.pid) } else { 0 };
        controls.focus.store(focus, Ordering::Relaxed);
        let mut dirty = false;
        while let Ok(update) = rx.try_recv() {
            if !app.paused {
                app.on_update(update);
                dirty = true;
            }
        }
        if app.target_gone.is_none() && child_done() {
            app.target_gone = Some("the command exited".to_string());
            dirty = true;
        }
        dirty
    });
    controls.quit.store(true, Ordering::Relaxed);
    let _ = collector.join();
    result
}

/// The dashboard over a recording (`top --replay`): `load` gives the figures of the replay's
/// sample `i` ([`app::Replay`]), read when ← or → moves to it.
pub fn replay(
    mut app: App,
    mut load: impl FnMut(usize) -> Option<Arc<crate::model::Accounting>>,
) -> std::io::Result<i32> {
    signals::catch().map_err(std::io::Error::from)?;
    let mut shown = usize::MAX;
    event_loop(&mut app, |app| {
        let Some(at) = app.replay.as_ref().map(|r| r.at) else { return false };
        if at == shown {
            return false;
        }
        shown = at;
        if let Some(accounting) = load(at) {
            app.show_replayed(accounting);
        }
        true
    })
}

/// Draws `app` and turns keys into actions until it quits; `step` runs every turn (before a
/// draw) and says whether the state changed. The terminal is restored however it ends.
fn event_loop(app: &mut App, mut step: impl FnMut(&mut App) -> bool) -> std::io::Result<i32> {
    // The terminal crossterm reads keys from: standard input, or /dev/tty when it is not one.
    let input = if std::io::stdin().is_terminal() { None } else { File::open("/dev/tty").ok() };
    let watchdog = signals::Watchdog::start(WATCHDOG_GRACE);
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> std::io::Result<i32> {
        let mut dirty = true;
        let mut status = 0;
        let mut last_draw = Instant::now();
        loop {
            dirty |= step(app);
            if dirty || last_draw.elapsed() >= TICK {
                app.now = Instant::now();
                terminal.draw(|f| ui::render(f, app))?;
                dirty = false;
                last_draw = Instant::now();
                // A fault the tests inject to prove a panic restores the terminal.
                if app.accounting.is_some()
                    && std::env::var_os("MEMTREE_TEST_PANIC_IN_TOP").is_some()
                {
                    panic!("MEMTREE_TEST_PANIC_IN_TOP is set");
                }
            }
            // crossterm spins forever reading a terminal that has hung up (its reader retries
            // on EOF and EIO), so memtree waits for input itself and sees the hang-up first.
            if terminal_input(&input, Duration::from_millis(100))? == Input::HungUp {
                return Ok(128 + Signal::SIGHUP as i32);
            }
            while term::poll(Duration::ZERO)? {
                match term::read()? {
                    Event::Key(key) => {
                        if let Some(action) = event::action(key) {
                            app.apply(action);
                            dirty = true;
                        }
                    }
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            }
            if let Some(signal) = signals::take() {
                status = 128 + signal as i32;
                app.quit = true;
            }
            if app.quit {
                return Ok(status);
            }
        }
    })();
    ratatui::restore();
    drop(watchdog);
    result
}

/// How long a caught signal may wait for the main loop before the watchdog ends memtree.
const WATCHDOG_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, PartialEq, Eq)]
enum Input {
    Ready,
    Idle,
    HungUp,
}

/// Waits up to `timeout` for input on the terminal (`tty`, or standard input).
fn terminal_input(tty: &Option<File>, timeout: Duration) -> std::io::Result<Input> {
    let stdin = std::io::stdin();
    let fd = match tty {
        Some(file) => file.as_fd(),
        None => stdin.as_fd(),
    };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(millis)) {
        Ok(0) => return Ok(Input::Idle),
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok(Input::Idle),
        Err(e) => return Err(e.into()),
    }
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
        Ok(Input::HungUp)
    } else {
        Ok(Input::Ready)
    }
}
