//! Serve layer, a face: `memtree serve`, an HTTP exporter of `/metrics` for Prometheus. One
//! thread samples the target on the shared sampler's cadence (a round every interval; the
//! costly passes on their own budget, see [`crate::sampler::Cadence`]) and keeps the last
//! round; a scrape only encodes that round ([`crate::report::openmetrics`]): however often
//! Prometheus scrapes, and however many scrapers there are, no process is read more often than
//! the cadence allows. The figures' ages are exported with them.
//!
//! It reads nothing from /proc itself: the [`Session`] does. The HTTP server is tiny_http
//! (one thread accepts, this one answers: a scrape is an encode of at most a few hundred
//! series, well under a millisecond).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::report::openmetrics::{self, Exposition};
use crate::sampler::{Round, Session};

/// How long a connection may take to send a request or to take an answer: a client that
/// stops reading (or never sends) holds a thread that long at most.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// Listens on `address`, with [`SOCKET_TIMEOUT`] on every connection (set on the listening
/// socket, whose timeouts Linux gives each socket it accepts; tiny_http sets none).
pub fn listen(address: std::net::SocketAddr) -> std::io::Result<tiny_http::Server> {
    use nix::sys::socket::{setsockopt, sockopt};
    let listener = std::net::TcpListener::bind(address)?;
    let timeout = nix::sys::time::TimeVal::new(SOCKET_TIMEOUT.as_secs() as _, 0);
    setsockopt(&listener, sockopt::SendTimeout, &timeout)?;
    setsockopt(&listener, sockopt::ReceiveTimeout, &timeout)?;
    tiny_http::Server::from_listener(listener, None).map_err(std::io::Error::other)
}

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
    server: &tiny_http::Server,
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
    let ended = loop {
        if stop() {
            break Ended::Stopped;
        }
        if gone.load(Ordering::SeqCst) {
            break Ended::TargetGone;
        }
        let request = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => request,
            Ok(None) => continue,
            Err(_) => break Ended::Stopped,
        };
        // Each answer is written by a thread of its own, so a client that does not read
        // cannot stall the loop; its socket's write timeout ([`listen`]) ends that thread.
        // The round is taken out (an Arc) and encoded without holding the lock.
        let round = latest.lock().expect("the sampler thread does not panic holding it").clone();
        let options = options.clone();
        let _ = std::thread::Builder::new().name("memtree-scrape".into()).spawn(move || {
            let page = answer(&request, &round, exact_asked, dedup_asked, &options);
            let _ = request.respond(page);
        });
    };
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

type Page = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn text(status: u16, body: &str) -> Page {
    tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

/// The answer to one request: `/metrics` (OpenMetrics when the scraper accepts it, else the
/// Prometheus text format), a pointer to it at `/`, 404 elsewhere, 405 for a method other than
/// GET or HEAD.
fn answer(
    request: &tiny_http::Request,
    round: &Round,
    exact_asked: bool,
    dedup_asked: bool,
    options: &Options,
) -> Page {
    use tiny_http::Method;
    if !matches!(request.method(), Method::Get | Method::Head) {
        return text(405, "memtree serves GET /metrics\n")
            .with_header(header("Allow", "GET, HEAD"));
    }
    let path = request.url().split('?').next().unwrap_or("");
    match path {
        "/metrics" => {}
        "/" => {
            return tiny_http::Response::from_string(
                "<html><head><title>memtree</title></head><body><h1>memtree</h1>\
                 <p><a href=\"/metrics\">Metrics</a></p></body></html>\n",
            )
            .with_header(header("Content-Type", "text/html; charset=utf-8"));
        }
        _ => return text(404, "not found: memtree serves /metrics\n"),
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
    let wants_openmetrics = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Accept"))
        .any(|h| accepts_openmetrics(h.value.as_str()));
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
    tiny_http::Response::from_string(body).with_header(header("Content-Type", content_type))
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
