//! The metrics listener: just enough HTTP/1.x for `GET /metrics`.
//!
//! One thread accepts and serves one connection at a time, then closes it
//! (`Connection: close`): a Prometheus server scrapes every few seconds, so there is
//! no need for more, and one thread bounds what a misbehaving client can take. A
//! request head is at most [`MAX_REQUEST_HEAD`] bytes and must arrive within
//! [`REQUEST_DEADLINE`]; the answer must be taken within [`WRITE_TIMEOUT`]. Then:
//!
//! - `GET` or `HEAD /metrics` (any query string): `200` with the scrape, or `503`
//!   when the switch did not answer;
//! - another method on `/metrics`: `405` with `Allow: GET, HEAD`;
//! - another path: `404`; a head that is not HTTP: `400`; too long: `431`.
//!
//! The scrape itself is a closure ([`MetricsServer::start`]): the daemon's asks the
//! switch's owner for `ctl stats` through the control queue, so this thread never
//! touches a worker and a worker never waits for it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::expo::CONTENT_TYPE;
use super::MetricsError;

/// Longest request head read (request line and headers).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// How long a client has to take the answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept loop looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// What a scrape returns: the exposition text, or why there is none (sent as `503`).
pub type ScrapeResult = Result<String, String>;

/// A bound listener, not yet serving.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` (port 0: any free port, see [`MetricsServer::local_addr`]).
    pub fn bind(addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        let io = |what| move |source| MetricsError::Io { addr, what, source };
        let listener = TcpListener::bind(addr).map_err(io("bind"))?;
        // Non-blocking accept, so that the thread sees the stop flag.
        listener
            .set_nonblocking(true)
            .map_err(io("setting O_NONBLOCK"))?;
        let addr = listener.local_addr().map_err(io("reading the address"))?;
        Ok(MetricsServer { listener, addr })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts the listener's thread; each `GET /metrics` calls `scrape` on it.
    pub fn start<F>(self, scrape: F) -> Result<MetricsHandle, MetricsError>
    where
        F: FnMut() -> ScrapeResult + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let MetricsServer { listener, addr } = self;
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("vswitch-metrics".into())
                .spawn(move || accept_loop(&listener, &stop, scrape))
                .map_err(|source| MetricsError::Io {
                    addr,
                    what: "starting the metrics thread",
                    source,
                })?
        };
        Ok(MetricsHandle {
            stop,
            addr,
            thread: Some(thread),
        })
    }
}

/// The running listener; stopped (port closed) on drop.
#[derive(Debug)]
pub struct MetricsHandle {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl MetricsHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the thread (at most one request being served).
    pub fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
    }
}

impl Drop for MetricsHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop<F: FnMut() -> ScrapeResult>(
    listener: &TcpListener,
    stop: &AtomicBool,
    mut scrape: F,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => serve(stream, &mut scrape),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            // Out of descriptors or similar: do not spin.
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

/// An answer.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    allow: bool,
    body: String,
}

impl Answer {
    fn text(status: u16, reason: &'static str, body: impl Into<String>) -> Answer {
        Answer {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            allow: false,
            body: body.into(),
        }
    }
}

/// The request head as far as we care: method and target.
#[derive(Debug, PartialEq, Eq)]
enum Head<'a> {
    Request { method: &'a str, target: &'a str },
    Malformed,
}

fn parse_head(head: &[u8]) -> Head<'_> {
    let Ok(text) = std::str::from_utf8(head) else {
        return Head::Malformed;
    };
    let line = text.split("\r\n").next().unwrap_or_default();
    let line = line.split('\n').next().unwrap_or_default();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version), None)
            if !method.is_empty() && target.starts_with('/') && version.starts_with("HTTP/1.") =>
        {
            Head::Request { method, target }
        }
        _ => Head::Malformed,
    }
}

/// What to answer to `head` (`None`: the head was too long).
fn route(head: Option<&[u8]>, scrape: &mut dyn FnMut() -> ScrapeResult) -> (Answer, bool) {
    let Some(head) = head else {
        return (
            Answer::text(
                431,
                "Request Header Fields Too Large",
                "request head too long\n",
            ),
            false,
        );
    };
    let (method, target) = match parse_head(head) {
        Head::Request { method, target } => (method, target),
        Head::Malformed => return (Answer::text(400, "Bad Request", "bad request\n"), false),
    };
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return (
            Answer::text(404, "Not Found", "not found: metrics are at /metrics\n"),
            false,
        );
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        let mut a = Answer::text(405, "Method Not Allowed", "method not allowed: use GET\n");
        a.allow = true;
        return (a, false);
    }
    let answer = match scrape() {
        Ok(body) => Answer {
            status: 200,
            reason: "OK",
            content_type: CONTENT_TYPE,
            allow: false,
            body,
        },
        Err(why) => Answer::text(503, "Service Unavailable", format!("{why}\n")),
    };
    (answer, head_only)
}

/// Reads the request head: up to the blank line, at most [`MAX_REQUEST_HEAD`] bytes,
/// within [`REQUEST_DEADLINE`]. `Ok(None)`: too long; `Err`: the client went away or
/// was too slow.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        let tail = &head[from..];
        if tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n") {
            return Ok((head.len() <= MAX_REQUEST_HEAD).then_some(head));
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Ok(None);
        }
    }
}

fn serve(mut stream: TcpStream, scrape: &mut dyn FnMut() -> ScrapeResult) {
    // An accepted socket does not inherit O_NONBLOCK on Linux; make sure.
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let head = match read_head(&mut stream) {
        Ok(h) => h,
        Err(_) => return,
    };
    let (answer, head_only) = route(head.as_deref(), scrape);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.reason,
        answer.content_type,
        answer.body.len()
    );
    if answer.allow {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let body = if head_only { "" } else { answer.body.as_str() };
    if stream.write_all(out.as_bytes()).is_err() || stream.write_all(body.as_bytes()).is_err() {
        return;
    }
    // Close gently: whatever the client sent beyond the head (a body) is read, briefly,
    // so that closing does not reset the connection before it reads the answer.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = io::copy(&mut (&stream).take(64 * 1024), &mut io::sink());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(req: &[u8]) -> (Answer, bool) {
        let mut scrape = || Ok::<_, String>("m 1\n".to_owned());
        route(Some(req), &mut scrape)
    }

    #[test]
    fn routes() {
        let (a, head) = answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((a.status, a.body.as_str(), head), (200, "m 1\n", false));
        assert_eq!(a.content_type, CONTENT_TYPE);
        let (a, _) = answer(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert_eq!(a.status, 200);
        let (a, head) = answer(b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert_eq!((a.status, head), (200, true));
        let (a, _) = answer(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(a.status, 404);
        let (a, _) = answer(b"GET /metricsx HTTP/1.1\r\n\r\n");
        assert_eq!(a.status, 404);
        let (a, _) = answer(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((a.status, a.allow), (405, true));
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2 x\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(answer(bad).0.status, 400, "{bad:?}");
        }
        let mut scrape = || Ok::<_, String>(String::new());
        assert_eq!(route(None, &mut scrape).0.status, 431);
        let mut failing = || Err::<String, _>("busy: the switch did not answer".to_owned());
        let (a, _) = route(Some(b"GET /metrics HTTP/1.1\r\n\r\n"), &mut failing);
        assert_eq!(a.status, 503);
    }

    /// Sends `req` to `addr` and reads the whole answer.
    fn exchange(addr: SocketAddr, req: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(req).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_over_tcp_and_stops() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.local_addr();
        let mut n = 0u64;
        let mut handle = server
            .start(move || {
                n += 1;
                Ok(format!("# TYPE x_total counter\nx_total {n}\n"))
            })
            .unwrap();
        let a = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(a.contains("Content-Type: text/plain; version=0.0.4"), "{a}");
        assert!(
            a.ends_with("\r\n\r\n# TYPE x_total counter\nx_total 1\n"),
            "{a}"
        );
        let a = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            a.starts_with("HTTP/1.1 200 OK\r\n") && a.ends_with("\r\n\r\n"),
            "{a}"
        );
        let a = exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n");
        assert!(
            a.starts_with("HTTP/1.1 405 ") && a.contains("Allow: GET, HEAD"),
            "{a}"
        );
        let a = exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n");
        assert!(a.starts_with("HTTP/1.1 404 "), "{a}");
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_REQUEST_HEAD));
        long.extend_from_slice(b"\r\n\r\n");
        let a = exchange(addr, &long);
        assert!(a.starts_with("HTTP/1.1 431 "), "{a}");
        // A client that connects and says nothing does not stop the next one for
        // longer than the deadline.
        let idle = TcpStream::connect(addr).unwrap();
        let a = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        drop(idle);
        handle.shutdown();
        assert!(TcpStream::connect(addr).is_err(), "still listening");
    }
}
