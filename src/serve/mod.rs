//! Serve layer, a face: `memtree serve`, an HTTP exporter of `/metrics` for Prometheus. One
//! thread samples the target on the shared sampler's cadence (a round every interval; the
//! costly passes on their own budget, see [`crate::sampler::Cadence`]) and keeps the last
//! round; a scrape only encodes that round ([`crate::report::openmetrics`]): however often
//! Prometheus scrapes, and however many scrapers there are, no process is read more often than
//! the cadence allows. The figures' ages are exported with them.
//!
//! It reads nothing from /proc itself: the [`Session`] does. HTTP is [`http`]'s: a thread per
//! connection, bounded in number and in time; a scrape is an encode of at most a few hundred
//! series, well under a millisecond.

pub mod http;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::report::openmetrics::{self, Exposition};
use crate::sampler::{Round, Session};
pub use http::listen;
use http::{Listener, Request, Response};

/// What `serve` exports, besides the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// A sampling round every this.
    pub interval: Duration,
    pub max_groups: usize,
    pub per_process: Option<usize>,
}

/// Why serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `stop` said so (a signal, the command exited).
    Stopped,
    /// Every root of the target is gone.
    TargetGone,
}

/// Serves `/metrics` on `server` from rounds of `session`, the first of which is `first`,
/// until `stop` returns true (asked every 100 ms) or the target is gone.
pub fn serve(
    listener: Listener,
    mut session: Session,
    first: Round,
    options: &Options,
    mut stop: impl FnMut() -> bool,
) -> Ended {
    let exact_asked = session.options().exact || session.options().dedup;
    let dedup_asked = session.options().dedup;
    let latest = Arc::new(Mutex::new(first));
    let quit = Arc::new(AtomicBool::new(false));
    let gone = Arc::new(AtomicBool::new(false));
    let sampler_thread = {
        let (latest, quit, gone) = (latest.clone(), quit.clone(), gone.clone());
        let interval = options.interval;
        std::thread::Builder::new()
            .name("memtree-sampler".into())
            .spawn(move || {
                let mut next = Instant::now() + interval;
                loop {
                    if !sleep_until(next, &quit) {
                        return;
                    }
                    let start = Instant::now();
                    // A round fails only when the target's roots cannot be listed: the next
                    // one says whether they are gone.
                    if let Ok(round) = session.round() {
                        let target_gone = round.target_gone;
                        if let Ok(mut l) = latest.lock() {
                            *l = round;
                        }
                        if target_gone {
                            gone.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                    // Never more than half of a core, however slow a round is.
                    next = start + interval.max(start.elapsed() * 2);
                }
            })
            .expect("a thread can be started")
    };
    let handler = {
        let (latest, options) = (latest.clone(), options.clone());
        Arc::new(move |request: &Request| {
            // The round is taken out (an Arc) and encoded without holding the lock.
            let round =
                latest.lock().expect("the sampler thread does not panic holding it").clone();
            answer(request, &round, exact_asked, dedup_asked, &options)
        })
    };
    let server = listener.start(handler);
    let ended = loop {
        if stop() {
            break Ended::Stopped;
        }
        if gone.load(Ordering::SeqCst) {
            break Ended::TargetGone;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    server.stop();
    // The sampling thread is not waited for: a round of the whole machine's pages can take
    // seconds, and nothing it holds outlives memtree.
    quit.store(true, Ordering::SeqCst);
    drop(sampler_thread);
    ended
}

/// Sleeps until `deadline` in short steps; `false` when asked to quit.
fn sleep_until(deadline: Instant, quit: &AtomicBool) -> bool {
    loop {
        if quit.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// Whether an `Accept` header asks for OpenMetrics text 1.0.0 (or any version): a media range
/// `application/openmetrics-text` whose `q` is not 0.
fn accepts_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !media.eq_ignore_ascii_case("application/openmetrics-text") {
            return false;
        }
        let mut q = 1.0;
        let mut version_ok = true;
        for param in parts {
            match param.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some((k, v)) if k.eq_ignore_ascii_case("q") => q = v.parse().unwrap_or(0.0),
                Some((k, v)) if k.eq_ignore_ascii_case("version") => version_ok = v == "1.0.0",
                _ => {}
            }
        }
        q > 0.0 && version_ok
    })
}

/// The answer to one request: `/metrics` (OpenMetrics when the scraper accepts it, else the
/// Prometheus text format), a pointer to it at `/`, 404 elsewhere, 405 for a method other than
/// GET or HEAD.
fn answer(
    request: &Request,
    round: &Round,
    exact_asked: bool,
    dedup_asked: bool,
    options: &Options,
) -> Response {
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return Response::text(405, "memtree serves GET /metrics\n")
            .with_header("Allow", "GET, HEAD");
    }
    match request.path.as_str() {
        "/metrics" => {}
        "/" => {
            return Response::new(
                200,
                "text/html; charset=utf-8",
                "<html><head><title>memtree</title></head><body><h1>memtree</h1>\
                 <p><a href=\"/metrics\">Metrics</a></p></body></html>\n",
            );
        }
        _ => return Response::text(404, "not found: memtree serves /metrics\n"),
    }
    let now = Instant::now();
    let mut ages = vec![("rollup", now.duration_since(round.at).as_secs_f64())];
    if let Some(at) = round.exact_at.filter(|_| exact_asked) {
        let age = now.duration_since(at).as_secs_f64();
        if round.accounting.totals.exact_ok().is_some() {
            ages.push(("exact", age));
        }
        if dedup_asked && round.accounting.totals.dedup_ok().is_some() {
            ages.push(("dedup", age));
        }
    }
    let exposition = Exposition {
        max_groups: options.max_groups,
        per_process: options.per_process,
        round_seconds: Some(round.cost.as_secs_f64()),
        ages,
    };
    let wants_openmetrics = request.accept.iter().any(|accept| accepts_openmetrics(accept));
    let (body, content_type) = if wants_openmetrics {
        (
            openmetrics::openmetrics(&round.accounting, &exposition),
            openmetrics::OPENMETRICS_CONTENT_TYPE,
        )
    } else {
        (
            openmetrics::prometheus_text(&round.accounting, &exposition),
            openmetrics::PROMETHEUS_TEXT_CONTENT_TYPE,
        )
    };
    Response::new(200, content_type, body)
}

#[cfg(test)]
mod tests {
    use super::accepts_openmetrics;

    #[test]
    fn openmetrics_is_served_only_to_who_asks_for_it() {
        // What Prometheus 2.42 sends.
        assert!(accepts_openmetrics(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
             version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(accepts_openmetrics("application/openmetrics-text"));
        assert!(!accepts_openmetrics("*/*"));
        assert!(!accepts_openmetrics("text/plain;version=0.0.4"));
        assert!(!accepts_openmetrics("application/openmetrics-text; q=0"));
        assert!(!accepts_openmetrics("application/openmetrics-text;version=0.0.1"));
    }
}
