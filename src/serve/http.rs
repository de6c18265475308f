//! Serve layer: the HTTP/1.1 that `memtree serve` speaks, on std's sockets, request heads
//! parsed by httparse. All it has to do is answer `GET /metrics`, so it is small, and it is
//! written to stay up: an exporter that stops answering is an outage in somebody's monitoring.
//!
//! - Nothing ends the accept loop but [`Server::stop`]: a failed `accept` (out of file
//!   descriptors, a connection reset before it was taken) waits a moment and goes on.
//! - A connection has a thread of its own, at most [`MAX_CONNECTIONS`] at once (more are told
//!   503 and closed), and [`SOCKET_TIMEOUT`] to send each request head and as long to take
//!   each whole answer: a client that never sends, sends a byte at a time, never reads or
//!   reads a little at a time holds its thread that long at most (Prometheus gives up on a
//!   scrape after 10 s by default too).
//! - A head is at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers (431 beyond); a request
//!   with a body is answered and its connection closed (nothing here takes a body).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a connection may take to send a request head (or stay idle between requests),
/// and to take a whole answer.
pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections answered at once; more are refused with 503.
pub const MAX_CONNECTIONS: usize = 64;
/// The longest request head read.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most headers a request may have.
pub const MAX_HEADERS: usize = 64;

/// One request: what the answer depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, without the query (and without scheme and host for an absolute target).
    pub path: String,
    /// Every `Accept` header's value, in order.
    pub accept: Vec<String>,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// More headers (e.g. `Allow`).
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type, body: body.into(), headers: Vec::new() }
    }

    /// Plain text.
    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Response {
        self.headers.push((name, value));
        self
    }
}

/// What answers requests: called from the connections' threads.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A listening socket, not yet answering.
pub struct Listener(TcpListener);

/// Listens on `address` (so that a taken or unusable address is known before anything else).
pub fn listen(address: SocketAddr) -> std::io::Result<Listener> {
    let listener = TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    Ok(Listener(listener))
}

impl Listener {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// Answers every connection with `handler`, in the background, until [`Server::stop`].
    pub fn start(self, handler: Handler) -> Server {
        self.start_with_timeout(handler, SOCKET_TIMEOUT)
    }

    /// [`Listener::start`] with another time for a request head and for an answer.
    pub fn start_with_timeout(self, handler: Handler, timeout: Duration) -> Server {
        let quit = Arc::new(AtomicBool::new(false));
        let thread = {
            let quit = quit.clone();
            std::thread::Builder::new()
                .name("memtree-accept".into())
                .spawn(move || accept_loop(&self.0, &quit, &handler, timeout))
                .expect("a thread can be started")
        };
        Server { quit, thread: Some(thread) }
    }
}

/// Answering; stopped (no new connection taken) by [`Server::stop`] or on drop.
pub struct Server {
    quit: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Stops taking connections (within 100 ms) and closes the listening socket. Answers being
    /// written finish on their own threads, within their timeout.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.quit.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

fn accept_loop(listener: &TcpListener, quit: &AtomicBool, handler: &Handler, timeout: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let open = Arc::new(AtomicUsize::new(0));
    while !quit.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u8)).unwrap_or(0) == 0 {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                continue;
            }
            // Out of descriptors or memory, a connection aborted before it was taken: none of
            // it is the listener's end. Wait for connections to close, then go on.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            refuse(stream);
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        // The slot is given back however the connection's thread ends (a panicking handler
        // included), or at once when no thread could be started (the closure is dropped).
        let slot = Slot(open.clone());
        let handler = handler.clone();
        let _ = std::thread::Builder::new().name("memtree-http".into()).spawn(move || {
            let _slot = slot;
            connection(stream, &handler, timeout);
        });
    }
}

/// One of the [`MAX_CONNECTIONS`], taken while its value lives.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tells a connection beyond [`MAX_CONNECTIONS`] to come back later (a short write into an
/// empty socket buffer: it does not block), and closes it.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let busy = Response::text(503, "memtree: too many connections\n");
    let _ = stream.write_all(&encode(&busy, false, true));
}

/// Reads requests from one connection and answers each, until the client closes, breaks the
/// protocol, asks to close or runs out of time.
fn connection(mut stream: TcpStream, handler: &Handler, timeout: Duration) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let mut buffer: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let (request, keep_alive) = match read_head(&mut stream, &mut buffer, timeout) {
            Head::Request(request, keep_alive) => (request, keep_alive),
            Head::Closed => return,
            Head::Refused(status, why) => {
                let answer = encode(&Response::text(status, why), false, true);
                let _ = write_within(&mut stream, &answer, timeout);
                return;
            }
        };
        let response = handler(&request);
        let head_only = request.method == "HEAD";
        let answer = encode(&response, head_only, !keep_alive);
        if !write_within(&mut stream, &answer, timeout) {
            // Reset, not closed: what the kernel still holds of the answer would otherwise go on
            // to the client as slowly as it likes, up to megabytes of socket buffers each.
            let abort = nix::libc::linger { l_onoff: 1, l_linger: 0 };
            let _ =
                nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::Linger, &abort);
            return;
        }
        if !keep_alive {
            return;
        }
    }
}

/// Writes all of `bytes` within `timeout` (one deadline for the whole answer, not one per
/// write: a client that takes a few bytes at a time would otherwise hold the connection for as
/// long as it liked). False when it could not: the connection is then reset.
fn write_within(stream: &mut TcpStream, mut bytes: &[u8], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_write_timeout(Some(left)).is_err() {
            return false;
        }
        match stream.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

enum Head {
    /// A request, and whether the connection stays open after its answer.
    Request(Request, bool),
    /// The client closed (or timed out) between requests, or the socket failed.
    Closed,
    /// A request that is answered with this status and the connection closed.
    Refused(u16, &'static str),
}

/// Reads one request head from `stream`, after what `buffer` holds already (pipelined
/// requests); leaves in `buffer` what follows it.
fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>, timeout: Duration) -> Head {
    let deadline = Instant::now() + timeout;
    loop {
        if !buffer.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(buffer) {
                Ok(httparse::Status::Complete(length)) => {
                    let (request, keep_alive) = request(&parsed);
                    buffer.drain(..length);
                    return Head::Request(request, keep_alive);
                }
                Ok(httparse::Status::Partial) if buffer.len() >= MAX_HEAD => {
                    return Head::Refused(431, "request head too large\n");
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return Head::Refused(431, "too many headers\n");
                }
                Err(_) => return Head::Refused(400, "malformed request\n"),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Head::Closed;
        }
        let mut chunk = [0u8; 4096];
        let room = (MAX_HEAD - buffer.len().min(MAX_HEAD)).clamp(1, chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) | Err(_) => return Head::Closed,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The request of a complete head, and whether its connection may stay open.
fn request(parsed: &httparse::Request) -> (Request, bool) {
    let header = |name: &'static str| {
        parsed
            .headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let target = parsed.path.unwrap_or("");
    // An absolute target (`http://host/metrics`) names the path after its authority.
    let target = match target.split_once("://").filter(|_| !target.starts_with('/')) {
        Some((_, rest)) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => target,
    };
    let path = target.split(['?', '#']).next().unwrap_or("").to_string();
    let connection: Vec<String> = header("Connection").map(|v| v.to_ascii_lowercase()).collect();
    let asks = |token: &str| connection.iter().any(|v| v.split(',').any(|t| t.trim() == token));
    let has_body = header("Transfer-Encoding").next().is_some()
        || header("Content-Length").any(|v| v.trim() != "0");
    let keep_alive = !has_body
        && match parsed.version {
            Some(1) => !asks("close"),
            _ => asks("keep-alive"),
        };
    let request = Request {
        method: parsed.method.unwrap_or("").to_string(),
        path,
        accept: header("Accept").collect(),
    };
    (request, keep_alive)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The bytes of an answer (its head only for HEAD).
fn encode(response: &Response, head_only: bool, close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(response.body.len() + 256);
    let status = response.status;
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    out.extend_from_slice(format!("Content-Type: {}\r\n", response.content_type).as_bytes());
    out.extend_from_slice(format!("Content-Length: {}\r\n", response.body.len()).as_bytes());
    for (name, value) in &response.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on loopback answering with `handler`, `timeout` for each head and answer.
    fn serving(handler: Handler, timeout: Duration) -> (Server, SocketAddr) {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = listener.local_addr().unwrap();
        (listener.start_with_timeout(handler, timeout), address)
    }

    /// One that says what it was asked.
    fn started() -> (Server, SocketAddr) {
        let handler: Handler = Arc::new(|request: &Request| {
            let body = format!("{} {} {:?}", request.method, request.path, request.accept);
            Response::text(200, &body)
        });
        serving(handler, SOCKET_TIMEOUT)
    }

    /// One whose every answer is `body`.
    fn answering(body: Vec<u8>, timeout: Duration) -> (Server, SocketAddr) {
        serving(Arc::new(move |_: &Request| Response::new(200, "x", body.clone())), timeout)
    }

    fn exchange(address: SocketAddr, bytes: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        stream.write_all(bytes).unwrap();
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_and_close_is_honoured() {
        let (_server, address) = started();
        let answer = exchange(
            address,
            b"GET /metrics?x=1 HTTP/1.1\r\nAccept: a\r\naccept: b\r\n\r\n\
              HEAD http://host:1/other HTTP/1.1\r\nConnection: close\r\n\r\n\
              GET /never HTTP/1.1\r\n\r\n",
        );
        let first = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
                     Content-Length: 23\r\n\r\nGET /metrics [\"a\", \"b\"]";
        assert!(answer.starts_with(first), "{answer}");
        // HEAD: the length of the body it would have, no body; then closed.
        let second = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
                      Content-Length: 14\r\nConnection: close\r\n\r\n";
        assert!(answer.ends_with(second), "{answer}");
        assert!(!answer.contains("/never"), "{answer}");
    }

    #[test]
    fn http_1_0_closes_and_a_body_closes() {
        let (_server, address) = started();
        let answer = exchange(address, b"GET / HTTP/1.0\r\n\r\n");
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
        let answer = exchange(address, b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
    }

    #[test]
    fn broken_or_oversized_heads_get_one_answer_and_a_close() {
        let (_server, address) = started();
        let answer = exchange(address, b"NOT HTTP\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(MAX_HEAD));
        let answer = exchange(address, huge.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: y\r\n")).collect();
        let answer = exchange(address, format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    }

    #[test]
    fn connections_beyond_the_limit_are_told_503_and_the_rest_still_answered() {
        let (_server, address) = started();
        let idle: Vec<TcpStream> =
            (0..MAX_CONNECTIONS).map(|_| TcpStream::connect(address).unwrap()).collect();
        // Wait until the accept loop has taken them all.
        let mut busy = String::new();
        for _ in 0..100 {
            busy = exchange(address, b"GET / HTTP/1.1\r\n\r\n");
            if busy.starts_with("HTTP/1.1 503 ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(busy.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{busy}");
        drop(idle);
        let mut answer = String::new();
        for _ in 0..100 {
            answer = exchange(address, b"GET /after HTTP/1.1\r\nConnection: close\r\n\r\n");
            if answer.starts_with("HTTP/1.1 200 ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(answer.ends_with("GET /after []"), "{answer}");
    }

    #[test]
    fn a_client_that_takes_an_answer_a_little_at_a_time_is_cut_off_at_the_deadline() {
        // 16 MiB taken 16 KiB every 50 ms would hold the connection for ~50 s; each write
        // progresses well within the timeout, so only a deadline for the whole answer ends it.
        let (_server, address) = answering(vec![b'x'; 16 << 20], Duration::from_millis(500));
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let started = Instant::now();
        let mut taken = 0usize;
        let mut chunk = vec![0u8; 16 << 10];
        let ended = loop {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break true,
                Ok(n) => taken += n,
            }
            if started.elapsed() > Duration::from_secs(10) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(ended, "still answering after 10 s ({taken} bytes taken)");
        assert!(taken < 16 << 20, "the whole answer was taken ({taken} bytes)");
    }

    #[test]
    fn a_client_that_reads_at_once_gets_a_large_answer_whole() {
        let (_server, address) = answering(vec![b'y'; 16 << 20], SOCKET_TIMEOUT);
        let answer = exchange(address, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(body.len() == 16 << 20 && body.bytes().all(|b| b == b'y'), "{} bytes", body.len());
    }

    #[test]
    fn a_url_in_the_query_is_not_the_target() {
        let (_server, address) = started();
        let answer = exchange(address, b"GET /x?u=http://h/metrics HTTP/1.0\r\n\r\n");
        assert!(answer.ends_with("GET /x []"), "{answer}");
    }

    #[test]
    fn a_stopped_server_takes_no_connection() {
        let (server, address) = started();
        server.stop();
        assert!(TcpStream::connect(address).is_err());
    }
}
