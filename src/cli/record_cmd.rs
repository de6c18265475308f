//! CLI layer: `memtree record` (a paced shared-sampler session written to a recording until
//! --duration, the target's end, the command's exit or a signal), `report --from` (one moment
//! of a recording, as the live report prints it) and `plot` (a recording drawn).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::target::{self, root_error};
use super::{At, Output, PlotArgs, RecordArgs, ReportArgs, usage};
use crate::model::Accounting;
use crate::model::accounting::Peak;
use crate::record::{self, Frame, Header, Reader, Samples, Writer};
use crate::report::{self, Meta, Recorded, plot};
use crate::runner::command::{self, RunOutcome};
use crate::runner::signals;
use crate::sampler::{Cadence, SampleOptions, Sampler, Session};
use crate::units::{human_bytes, visible};

/// The shortest interval `record` takes.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How long a signal may wait for the loop before it ends memtree anyway.
const WATCHDOG_GRACE: Duration = Duration::from_secs(3);

fn shown(path: &Path) -> String {
    visible(&path.display().to_string()).into_owned()
}

fn hostname() -> String {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| u.nodename().to_str().map(str::to_string))
        .unwrap_or_default()
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| u.release().to_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn record(args: RecordArgs) -> Result<i32> {
    let sampler = Sampler::live();
    let interval = args.interval.max(MIN_INTERVAL);
    let header = |target: report::Target| Header {
        writer: format!("memtree {}", env!("CARGO_PKG_VERSION")),
        started_at_unix: crate::units::unix_now(),
        interval_seconds: interval.as_secs_f64(),
        target,
        source: sampler.root().display().to_string(),
        privileged: sampler.privileged(),
        hostname: hostname(),
        kernel: kernel(),
    };
    // The file first: a path that cannot be created is bad input, before anything starts.
    if args.output.is_dir() {
        return Err(usage(format!("cannot record to {}: it is a directory", shown(&args.output))));
    }
    let file = std::fs::File::create(&args.output)
        .map_err(|e| usage(format!("cannot record to {}: {e}", shown(&args.output))))?;
    // Until it is finished, a recording that cannot go on is removed: bad input leaves no file
    // behind. (Only a regular file: `-o /dev/stdout` is written to, never removed.)
    let regular = file.metadata().is_ok_and(|m| m.is_file());
    let mut unfinished = Unfinished(regular.then(|| args.output.clone()));
    signals::catch().context("cannot catch signals")?;
    let _watchdog = signals::Watchdog::start(WATCHDOG_GRACE);
    let mut resolved = target::resolve(&args.target, &args.workload, &sampler, None)?;
    let roots = resolved.roots();
    let child = resolved.spawn_watched()?;
    let pid = child.as_ref().map(std::process::Child::id);
    let described = resolved.described.clone();
    let watch = resolved.watch.clone();
    // Whatever ends the loop — the target, a signal, a write that fails — what memtree started
    // is stopped: the command's whole tree, the workloads.
    let result = (|| -> Result<(Writer, Ended)> {
        let writer = Writer::start(file, &args.output, &header(described))
            .with_context(|| format!("cannot record to {}", shown(&args.output)))?;
        let privileged = sampler.privileged();
        let options = SampleOptions {
            mappings: false,
            exact: privileged && !args.no_exact,
            dedup: !args.no_exact && !args.no_dedup,
        };
        let session =
            Session::new(sampler.clone(), watch, options).with_cadence(Cadence::every(interval));
        let mut ended = sample_until_done(writer, session, pid, interval, args.duration)?;
        let end = Frame::End {
            seconds: ended.1.seconds,
            exit_code: ended.1.status.and_then(|s| s.0),
            signal: ended.1.status.and_then(|s| s.1),
        };
        ended.0.append(&end).with_context(|| format!("cannot write to {}", shown(&args.output)))?;
        Ok(ended)
    })();
    drop(child);
    if pid.is_some() {
        let exited = matches!(&result, Ok((_, e)) if e.status.is_some());
        if !exited {
            command::forward(nix::sys::signal::Signal::SIGTERM, &sampler);
        }
        command::stop_leftovers(&sampler);
    }
    resolved.stop()?;
    let (writer, ended) = match result {
        Ok(done) => done,
        Err(e) => {
            return Err(match e.downcast::<crate::sampler::ReadError>() {
                Ok(read) => root_error(read, &roots),
                Err(other) => other,
            });
        }
    };
    unfinished.0 = None;
    let bytes = writer.finish().context("cannot finish the recording")?;
    eprintln!(
        "memtree: recorded {} over {:.1} s ({}) into {}, {}",
        crate::units::count(ended.samples, "sample", "samples"),
        ended.seconds,
        ended.why,
        shown(&args.output),
        human_bytes(bytes)
    );
    if let Some(error) = &ended.error {
        return Err(anyhow::anyhow!("the target could not be read any more: {error}"));
    }
    Ok(match ended.status {
        Some((Some(code), _)) => code,
        Some((None, Some(signal))) => 128 + signal,
        _ => 0,
    })
}

/// How a recording's loop ended.
struct Ended {
    samples: usize,
    seconds: f64,
    why: &'static str,
    /// The command's `(exit code, signal)`, once it has exited.
    status: Option<(Option<i32>, Option<i32>)>,
    /// A round that failed after the first sample (the first one's error is returned).
    error: Option<String>,
}

/// Takes a round every `interval` into `writer` until the command exits, the target is gone,
/// `duration` is reached or a signal comes.
fn sample_until_done(
    mut writer: Writer,
    mut session: Session,
    pid: Option<u32>,
    interval: Duration,
    duration: Option<Duration>,
) -> Result<(Writer, Ended)> {
    let started = Instant::now();
    let mut last: Option<Arc<Accounting>> = None;
    let mut ended =
        Ended { samples: 0, seconds: 0.0, why: "the target ended", status: None, error: None };
    loop {
        let round_start = Instant::now();
        // Before the round: a round after the command's exit would find nothing alive.
        if let Some(status) = pid.and_then(command::ended) {
            ended.status = Some(status);
            ended.why = "the command exited";
            break;
        }
        let round = match session.round() {
            Ok(round) => round,
            Err(e) if ended.samples == 0 => return Err(e.into()),
            Err(e) => {
                ended.error = Some(visible(&e.to_string()).into_owned());
                ended.why = "the target could not be read";
                break;
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let same = last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &round.accounting));
        let frame = if same {
            Frame::Same { seconds, taken_at_unix: crate::units::unix_now() }
        } else {
            Frame::Sample { seconds, accounting: Box::new(Accounting::clone(&round.accounting)) }
        };
        writer
            .append(&frame)
            .with_context(|| format!("cannot write to {}", shown(writer.path())))?;
        ended.samples += 1;
        last = Some(round.accounting.clone());
        if round.target_gone {
            break;
        }
        if signals::take().is_some() {
            ended.why = "interrupted";
            break;
        }
        if duration.is_some_and(|d| started.elapsed() + interval > d + interval / 2) {
            ended.why = "its duration was reached";
            break;
        }
        // Never more than half of one core: wait at least as long as the round took.
        let wait = interval.saturating_sub(round_start.elapsed()).max(round_start.elapsed());
        if sleep_unless_signalled(wait) {
            ended.why = "interrupted";
            break;
        }
    }
    ended.seconds = started.elapsed().as_secs_f64();
    Ok((writer, ended))
}

/// A recording not finished yet: removed when dropped.
struct Unfinished(Option<std::path::PathBuf>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Sleeps `wait`, waking early for a signal; whether one came.
fn sleep_unless_signalled(wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if signals::take().is_some() {
            return true;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    false
}

/// Opens a recording, or says in one line why it is not one.
pub fn open(file: &Path) -> Result<Samples> {
    let reader = Reader::open(file).map_err(|e| usage(visible(&e.to_string()).into_owned()))?;
    Ok(Samples::new(reader))
}

/// Says on stderr that a recording ends in a cut-short frame, once its samples are read; a
/// recording without one whole sample is an error, in one line that says where it stops.
fn check_read(file: &Path, samples: &Samples, read: usize) -> Result<()> {
    match (samples.damaged(), read) {
        (Some(what), 0) => {
            Err(usage(format!("{}: it holds no whole sample ({})", shown(file), visible(what))))
        }
        (None, 0) => Err(usage(format!("{}: it holds no whole sample", shown(file)))),
        (Some(what), _) => {
            eprintln!(
                "memtree: {} (a recording cut short: read up to its last whole sample)",
                visible(what)
            );
            Ok(())
        }
        (None, _) => Ok(()),
    }
}

/// Raises each process's own peak in `peaks` to its figures in `accounting`.
fn raise_peaks(peaks: &mut HashMap<u32, Peak>, accounting: &Accounting) {
    for row in accounting.processes() {
        if let Ok(f) = &row.figures {
            let p = peaks.entry(row.pid).or_default();
            p.rss = p.rss.max(f.rss.unwrap_or(0));
            p.pss = p.pss.max(f.pss.unwrap_or(0));
            p.uss = p.uss.max(f.uss.unwrap_or(0));
        }
    }
}

pub fn report_from(file: &Path, args: &ReportArgs) -> Result<i32> {
    let mut out = Output::open(args.output.as_ref())?;
    let mut samples = open(file)?;
    let header = samples.header().clone();
    // One pass, keeping only the chosen sample (a long recording of a whole machine does not
    // fit in memory whole) and each process's peak. A repeat changes no figure: only its time.
    let mut chosen: Option<(usize, record::Sample)> = None;
    let mut peaks: HashMap<u32, Peak> = HashMap::new();
    let (mut count, mut max_footprint, mut last_seconds) = (0usize, None::<u64>, 0.0f64);
    for sample in samples.by_ref() {
        count += 1;
        last_seconds = sample.seconds;
        if !sample.repeated {
            raise_peaks(&mut peaks, &sample.accounting);
        }
        let footprint = sample.accounting.totals.footprint;
        let take = match args.at {
            At::End => true,
            At::Seconds(s) => sample.seconds <= s || chosen.is_none(),
            At::Peak => {
                let key = |a: &Accounting| (a.totals.footprint, a.totals.rss_sum);
                chosen.as_ref().is_none_or(|(_, c)| key(&sample.accounting) > key(&c.accounting))
            }
        };
        max_footprint = max_footprint.max(footprint);
        if take {
            chosen = Some((count, sample));
        }
    }
    check_read(file, &samples, count)?;
    let (index, chosen) = chosen.expect("a sample was read");
    let recorded = Recorded {
        at: match args.at {
            At::Peak => "peak",
            At::End => "end",
            At::Seconds(_) => "seconds",
        },
        sample: index,
        samples: count,
        seconds: chosen.seconds,
    };
    let mut accounting = chosen.owned();
    let run = (args.at == At::Peak).then(|| {
        accounting.set_peaks(&peaks);
        let (exit_code, signal) = samples.end.map_or((None, None), |(_, c, s)| (c, s));
        RunOutcome {
            exit_code,
            signal,
            duration_seconds: samples.end.map_or(last_seconds, |e| e.0),
            samples: count,
            peak_footprint: max_footprint,
        }
    });
    let source = format!("{} (recorded in {})", header.source, shown(file));
    let meta = Meta { target: header.target, run, source, live: false, recorded: Some(recorded) };
    report::write_report(&mut out.writer, args.format, &accounting, &meta, out.style)
        .with_context(|| format!("cannot write the report to {}", out.name()))?;
    out.finish()?;
    Ok(0)
}

pub fn plot(args: PlotArgs) -> Result<i32> {
    let format = plot::format_of(&args.output).map_err(usage)?;
    let folder = args.output.parent().filter(|p| !p.as_os_str().is_empty());
    if folder.is_some_and(|f| !f.is_dir()) {
        return Err(usage(format!(
            "cannot draw {}: its folder does not exist",
            shown(&args.output)
        )));
    }
    let mut samples = open(&args.file)?;
    let mut series = plot::Series::default();
    for sample in samples.by_ref() {
        if sample.repeated {
            series.repeat(sample.seconds);
        } else {
            series.add(sample.seconds, &sample.accounting);
        }
    }
    check_read(&args.file, &samples, series.len())?;
    let title = format!("memtree: {}", plot::describe(&samples.header().target));
    plot::draw(&series, &title, &args.output, format)
        .map_err(|e| usage(format!("cannot draw {}: {e}", shown(&args.output))))?;
    eprintln!(
        "memtree: drew {} into {}",
        crate::units::count(series.len(), "sample", "samples"),
        shown(&args.output)
    );
    Ok(0)
}

/// `top --replay FILE`: the recording's samples indexed (their times, where each is, the
/// timeline's totals and the workers' copies), then the dashboard, each sample read from the
/// file when shown.
pub fn replay(file: &Path) -> Result<i32> {
    use crate::tui::app::{App, Point, Replay, ReplayPoint};
    let mut samples = open(file)?;
    let mut replay = Replay::default();
    let (mut peak, mut best) = (0usize, None);
    for sample in samples.by_ref() {
        let a = &sample.accounting;
        let key = (a.totals.footprint, a.totals.rss_sum);
        if best.is_none_or(|b| key > b) {
            (peak, best) = (replay.points.len(), Some(key));
        }
        replay.points.push(ReplayPoint {
            seconds: sample.seconds,
            offset: sample.offset,
            taken_at_unix: sample.taken_at_unix,
        });
        let t = &a.totals;
        if let (Some(rss_sum), Some(footprint), Some(pss_sum)) = (t.rss_sum, t.footprint, t.pss_sum)
        {
            replay.history.push(Point { t: sample.seconds, rss_sum, footprint, pss_sum });
        }
        // A repeat's copies are the last sample's: its workers' lines need no point of it.
        if sample.repeated {
            continue;
        }
        for row in a.processes() {
            if let Some(Ok(e)) = &row.erosion {
                replay
                    .copies
                    .entry(row.pid)
                    .or_default()
                    .push((sample.seconds, e.copied_from_parent));
            }
        }
    }
    check_read(file, &samples, replay.points.len())?;
    let header = samples.header().clone();
    // (A header's interval is a day at most: the reader refuses any other.)
    let interval = Duration::try_from_secs_f64(header.interval_seconds.clamp(0.1, 86_400.0))
        .unwrap_or(Duration::from_secs(1));
    let what = format!("{} ({})", report::plot::describe(&header.target), shown(file));
    let mut app = App::new(what, interval, super::colored(true));
    // It opens at the peak footprint (as `report --from` does), the moment worth looking at.
    replay.at = peak;
    let points = replay.points.clone();
    app.replay = Some(replay);
    let status = crate::tui::replay(app, |i| {
        let point = points.get(i)?;
        let accounting = samples.at(point.offset)?;
        if accounting.taken_at_unix == point.taken_at_unix {
            return Some(accounting);
        }
        // A sample that repeated an earlier one: its figures, at its own time.
        let mut again = Accounting::clone(&accounting);
        again.taken_at_unix = point.taken_at_unix;
        Some(Arc::new(again))
    })
    .context("the dashboard failed")?;
    Ok(status)
}
