//! TUI layer: `memtree top`. `collector` samples on a thread of its own and sends rounds of
//! figures over a channel; the main thread only handles keys and draws (`app` holds state,
//! `event` maps keys to actions, `ui` renders). The terminal is restored on every way out: q,
//! Ctrl-C, SIGTERM/SIGHUP, a panic (ratatui's hook), the target exiting.

pub mod app;
pub mod collector;
pub mod event;
pub mod ui;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self as term, Event};

use self::app::{App, View};
use self::collector::{Config, Controls};
use crate::runner::signals;
use crate::sampler::Sampler;

/// Redraw at least this often (the ages in the header move).
const TICK: Duration = Duration::from_millis(500);

/// Runs the dashboard until the user quits; returns the exit status (0, or 128 + the signal
/// that ended it). `child_done` says whether a command started for `-- CMD` has exited
/// (polled each tick).
pub fn run(
    sampler: Sampler,
    config: Config,
    mut app: App,
    mut child_done: impl FnMut() -> bool,
) -> std::io::Result<i32> {
    signals::catch().map_err(std::io::Error::from)?;
    let controls = Arc::new(Controls::default());
    let (tx, rx) = mpsc::channel();
    let collector = {
        let controls = controls.clone();
        std::thread::spawn(move || collector::run(sampler, config, controls, tx))
    };
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> std::io::Result<i32> {
        let mut dirty = true;
        let mut status = 0;
        let mut last_draw = Instant::now();
        loop {
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
            if dirty || last_draw.elapsed() >= TICK {
                terminal.draw(|f| ui::render(f, &app))?;
                dirty = false;
                last_draw = Instant::now();
                // A fault the tests inject to prove a panic restores the terminal.
                if app.accounting.is_some()
                    && std::env::var_os("MEMTREE_TEST_PANIC_IN_TOP").is_some()
                {
                    panic!("MEMTREE_TEST_PANIC_IN_TOP is set");
                }
            }
            if term::poll(Duration::from_millis(100))? {
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
            controls.paused.store(app.paused, Ordering::Relaxed);
            controls.mappings.store(app.view == View::Mappings, Ordering::Relaxed);
            let focus = if app.detail { app.selected_row().map_or(0, |r| r.pid) } else { 0 };
            controls.focus.store(focus, Ordering::Relaxed);
            if app.quit {
                return Ok(status);
            }
        }
    })();
    ratatui::restore();
    controls.quit.store(true, Ordering::Relaxed);
    let _ = collector.join();
    result
}
