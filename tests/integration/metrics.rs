//! The Prometheus exporter and the OpenMetrics report: scraped by a real Prometheus (Debian's
//! `prometheus`, installed by `.ci/run`), checked by its `promtool`, and ended as a service
//! manager ends it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::support::{ForkTree, memtree, report_json, skip_unless_root, text};

/// Whether `program` is installed; in CI (which installs it) a missing one fails the test.
fn have(program: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "CI installs {program}, but it is not found");
        eprintln!("skipped: {program} is not installed");
    }
    found
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child killed with its process group when dropped (a failed assertion leaves nothing).
struct Running(Child);

impl Running {
    fn start(mut cmd: Command) -> Running {
        cmd.process_group(0);
        Running(cmd.spawn().unwrap())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` and waits up to 10 s for the exit status.
    fn stop(&mut self, signal: Signal) -> std::process::ExitStatus {
        let _ = kill(Pid::from_raw(self.pid() as i32), signal);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "pid {} did not exit on {signal}", self.pid());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(-(self.pid() as i32)), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// `memtree serve ARGS` on a free loopback port, once it says it serves: the child and port.
fn serve(args: &[&str]) -> (Running, u16) {
    let port = free_port();
    let mut cmd = memtree();
    cmd.arg("serve").args(["--listen", &format!("127.0.0.1:{port}")]).args(args);
    cmd.stderr(Stdio::piped());
    let mut running = Running::start(cmd);
    let mut line = String::new();
    BufReader::new(running.0.stderr.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("serving http://127.0.0.1"), "serve said {line:?}");
    (running, port)
}

fn get(port: u16, path: &str, accept: Option<&str>) -> (String, String) {
    let mut request = ureq::get(format!("http://127.0.0.1:{port}{path}"));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let mut response = request.call().unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    (response.body_mut().read_to_string().unwrap(), content_type)
}

/// The value of the one series `name{labels}` in an exposition.
fn value(exposition: &str, series: &str) -> f64 {
    let line = exposition
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{exposition}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn promtool_check(exposition: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{exposition}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// One instant query to Prometheus's HTTP API: each result's labels and value.
fn query(port: u16, promql: &str) -> Vec<(serde_json::Value, f64)> {
    let body = ureq::get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query("query", promql)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["status"], "success", "{body}");
    answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"].clone(), r["value"][1].as_str().unwrap().parse().unwrap()))
        .collect()
}

fn within(a: f64, b: f64, share: f64) -> bool {
    (a - b).abs() <= share * b.abs()
}

#[test]
fn a_real_prometheus_scrapes_what_report_says() {
    if !have("prometheus") {
        return;
    }
    let root = !skip_unless_root("exact footprints in the exporter");
    let tree = ForkTree::spawn(64, 3, "read");
    let parent = tree.parent.to_string();
    let (mut served, port) = serve(&["--pid", &parent, "--interval", "1s"]);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - \
             job_name: memtree\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let web = free_port();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe: Prometheus dies with this test.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(Into::into));
    }
    let mut prometheus = Running::start(cmd);

    // At least 3 successful scrapes.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ready = ureq::get(format!("http://127.0.0.1:{web}/-/ready")).call().is_ok();
        let scrapes = if ready {
            query(web, "sum_over_time(up{job=\"memtree\"}[5m])").first().map_or(0.0, |r| r.1)
        } else {
            0.0
        };
        if scrapes >= 3.0 {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus did not scrape memtree 3 times in 90 s");
        std::thread::sleep(Duration::from_millis(500));
    }

    let args: &[&str] = if root { &["--exact", "--pid", &parent] } else { &["--pid", &parent] };
    let report = report_json(args);
    let group = format!("{{group=\"python3\",root_pid=\"{parent}\"}}");
    let footprint = query(web, &format!("memtree_group_footprint_bytes{group}"));
    assert_eq!(footprint.len(), 1, "{footprint:?}");
    let method = if root { "pagemap" } else { "pss_estimate" };
    assert_eq!(footprint[0].0["method"], method);
    let truth = report.totals.footprint_bytes.unwrap() as f64;
    assert!(within(footprint[0].1, truth, 0.02), "footprint {} vs report {truth}", footprint[0].1);
    let rss = query(web, &format!("memtree_group_rss_sum_bytes{group}"));
    let truth = report.totals.rss_sum_bytes.unwrap() as f64;
    assert!(within(rss[0].1, truth, 0.02), "Σ RSS {} vs report {truth}", rss[0].1);
    // A monitor sees ~4 copies of 64 MiB where there is one.
    let overcount = query(web, &format!("memtree_group_overcount_ratio{group}"));
    let truth = report.totals.overcount.unwrap();
    assert!(within(overcount[0].1, truth, 0.02), "overcount {} vs report {truth}", overcount[0].1);
    assert!(overcount[0].1 > (if root { 3.0 } else { 1.5 }), "{overcount:?}");
    // Prometheus negotiated OpenMetrics, which carries the units.
    let metadata: serde_json::Value = serde_json::from_str(
        &ureq::get(format!("http://127.0.0.1:{web}/api/v1/metadata"))
            .query("metric", "memtree_group_footprint_bytes")
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    let meta = &metadata["data"]["memtree_group_footprint_bytes"][0];
    assert_eq!(meta["type"], "gauge", "{metadata}");
    assert_eq!(meta["unit"], "bytes", "{metadata}");

    let status = prometheus.stop(Signal::SIGTERM);
    assert!(status.success(), "Prometheus ended with {status}");
    let status = served.stop(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "serve ends cleanly on SIGTERM");
    drop(dir);
}

#[test]
fn promtool_accepts_the_served_and_the_textfile_output() {
    if !have("promtool") {
        return;
    }
    let tree = ForkTree::spawn(16, 2, "read");
    let parent = tree.parent.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("memtree.prom");
    let out = memtree()
        .args(["report", "--format", "openmetrics", "--dedup", "--pid", &parent, "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let textfile = std::fs::read_to_string(&file).unwrap();
    promtool_check(&textfile);
    // No timestamps (the textfile collector refuses them): a name, maybe labels, a value.
    for line in textfile.lines().filter(|l| !l.starts_with('#')) {
        let after_name = match line.rfind('}') {
            Some(end) => &line[end + 1..],
            None => line.split_once(' ').unwrap().1,
        };
        assert_eq!(after_name.split_whitespace().count(), 1, "{line}");
    }
    // The file was written whole, nothing beside it.
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["memtree.prom"]);
    // Written again, the file keeps the mode it was given (0640 for node_exporter's group).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = memtree()
        .args(["report", "--format", "openmetrics", "--pid", &parent, "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o640);
    let textfile = std::fs::read_to_string(&file).unwrap();
    // A failed report leaves the last good file as it was.
    let out = memtree()
        .args(["report", "--format", "openmetrics", "--pid", "999999999", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), textfile);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let (mut served, port) =
        serve(&["--pid", &parent, "--per-process", "10", "--group-by", "name"]);
    let (openmetrics, content_type) =
        get(port, "/metrics", Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(openmetrics.ends_with("# EOF\n"));
    promtool_check(&openmetrics);
    let (plain, content_type) = get(port, "/metrics", None);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    promtool_check(&plain);
    // Grouped by name, the three processes are one group; each has its own series.
    assert_eq!(value(&plain, "memtree_group_processes{group=\"python3\"}"), 3.0);
    assert_eq!(plain.lines().filter(|l| l.starts_with("memtree_process_rss_bytes{")).count(), 3);
    let status = served.stop(Signal::SIGINT);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn serve_refuses_a_taken_or_malformed_address_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    for (listen, says) in [
        (address.as_str(), "Address already in use"),
        ("localhost", "is not an address and port"),
        ("127.0.0.1:99999", "is not an address and port"),
    ] {
        let out = memtree()
            .args(["serve", "--listen", listen, "--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{listen}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        // The address is checked before anything starts: the command never ran.
        assert!(!marker.exists(), "{listen}: the command ran");
    }
}

#[test]
fn serve_stops_what_it_started_and_exits_with_its_command() {
    // A workload: SIGTERM ends serve with status 0, and its workers with it.
    let (mut served, port) = serve(&["--workload", "fork", "--size", "8MiB", "--workers", "2"]);
    let (metrics, _) = get(port, "/metrics", None);
    assert_eq!(value(&metrics, "memtree_target_processes"), 3.0, "{metrics}");
    let children = descendants(served.pid());
    assert_eq!(children.len(), 3, "{children:?}");
    assert_eq!(served.stop(Signal::SIGTERM).code(), Some(0));
    std::thread::sleep(Duration::from_millis(200));
    for pid in children {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{pid} was left behind");
    }

    // A command: serve exits with its status once it has exited, its orphan stopped.
    let port = free_port();
    let mut cmd = memtree();
    cmd.args(["serve", "--interval", "100ms", "--listen", &format!("127.0.0.1:{port}"), "--"])
        .args(["sh", "-c", "sleep 313 & sleep 1; exit 7"])
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut running = Running::start(cmd);
    let mut stderr = String::new();
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "serve did not end with its command");
        std::thread::sleep(Duration::from_millis(50));
    };
    running.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(7), "{stderr}");
    let orphans = Command::new("pgrep").args(["-f", "^sleep 313$"]).output().unwrap();
    assert!(orphans.stdout.is_empty(), "the command's orphan was left: {}", text(&orphans.stdout));
}

/// The descendants of `pid` (children first), from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let path = format!("/proc/{p}/task/{p}/children");
        let children = std::fs::read_to_string(path).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

#[test]
fn unprivileged_serve_exports_estimates_and_no_exact_series() {
    if skip_unless_root("dropping to uid 65534") {
        return;
    }
    let tree = ForkTree::spawn_with(16, 2, "read", |cmd| {
        cmd.uid(65534).gid(65534);
    });
    let port = free_port();
    let mut cmd = memtree();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--pid"])
        .arg(tree.parent.to_string())
        .stderr(Stdio::piped())
        .uid(65534)
        .gid(65534);
    let mut served = Running::start(cmd);
    let mut line = String::new();
    BufReader::new(served.0.stderr.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("serving"), "{line}");
    let (metrics, _) = get(port, "/metrics", None);
    let group = format!("group=\"python3\",root_pid=\"{}\"", tree.parent);
    assert!(
        metrics
            .contains(&format!("memtree_group_footprint_bytes{{{group},method=\"pss_estimate\"}}")),
        "{metrics}"
    );
    // No exact pass without root: no exclusive series, no exact age; never a 0 in their place.
    assert!(!metrics.contains("memtree_group_exclusive_bytes{"), "{metrics}");
    assert!(!metrics.contains("pass=\"exact\""), "{metrics}");
    // Duplicated content from the pages each process alone maps: forked readers hold none.
    let duplicated = value(
        &metrics,
        &format!("memtree_group_duplicated_bytes{{{group},method=\"exclusive_pages\"}}"),
    );
    assert!(duplicated < 2.0 * 1024.0 * 1024.0, "{duplicated}");
    assert_eq!(served.stop(Signal::SIGTERM).code(), Some(0));
}

#[test]
fn a_client_that_never_reads_stalls_neither_scrapes_nor_the_exit() {
    let (mut served, port) = serve(&["--workload", "fork", "--size", "8MiB", "--workers", "1"]);
    // Thousands of pipelined scrapes on one connection, never read: megabytes of answers
    // that the socket cannot take.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let requests = "GET /metrics HTTP/1.1\r\nHost: memtree\r\n\r\n".repeat(3000);
    let _ = slow.write_all(requests.as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    // Another scraper is still answered…
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(get(port, "/metrics", None).0);
    });
    let metrics = rx.recv_timeout(Duration::from_secs(15)).expect("a scrape was answered");
    assert_eq!(value(&metrics, "memtree_target_processes"), 2.0);
    // …and SIGTERM still ends the exporter, with its workload.
    assert_eq!(served.stop(Signal::SIGTERM).code(), Some(0));
    drop(slow);
}

#[test]
fn serve_outlives_idle_time_and_running_out_of_descriptors() {
    use nix::sys::resource::{Resource, setrlimit};
    let mut sleeper = Running::start({
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        cmd
    });
    let port = free_port();
    let mut cmd = memtree();
    cmd.args(["serve", "--interval", "1s", "--listen", &format!("127.0.0.1:{port}")]);
    cmd.args(["--pid", &sleeper.pid().to_string()]).stderr(Stdio::piped());
    // Few descriptors: a few dozen connections exhaust them.
    unsafe {
        cmd.pre_exec(|| {
            setrlimit(Resource::RLIMIT_NOFILE, 32, 32)?;
            Ok(())
        });
    }
    let mut served = Running::start(cmd);
    let mut stderr = BufReader::new(served.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("serving"), "{line}");
    // Longer than any socket timeout with no connection at all.
    std::thread::sleep(Duration::from_secs(11));
    let (metrics, _) = get(port, "/metrics", None);
    assert_eq!(value(&metrics, "memtree_target_processes"), 1.0);
    // Connections that send nothing, more than memtree has descriptors for; a few seconds of
    // sampling rounds without descriptors.
    let idle: Vec<std::net::TcpStream> =
        (0..48).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    std::thread::sleep(Duration::from_secs(3));
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let answer = ureq::get(format!("http://127.0.0.1:{port}/metrics")).call();
        if let Ok(mut answer) = answer {
            break answer.body_mut().read_to_string().unwrap();
        }
        assert!(Instant::now() < deadline, "no answer after the descriptors came back");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Still the same target, still sampled: the rounds without descriptors did not end it.
    assert_eq!(value(&metrics, "memtree_target_processes"), 1.0);
    assert!(served.0.try_wait().unwrap().is_none(), "serve ended");
    assert_eq!(served.stop(Signal::SIGTERM).code(), Some(0));
    let mut said = String::new();
    stderr.read_to_string(&mut said).unwrap();
    assert!(said.is_empty(), "serve said {said:?}");
    sleeper.stop(Signal::SIGKILL);
}
