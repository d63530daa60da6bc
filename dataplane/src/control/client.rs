//! One request, one reply: what `vswitch ctl` does; and a capture's stream
//! ([`CaptureStream`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::proto::{decode_capture_item, CaptureItem, Request, Response};

/// How long the client waits for an answer (the server's own limit is shorter).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why no reply came.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing at the path.
    #[error("cannot connect to {}: no such socket (is vswitch running? --socket PATH names another one)", .0.display())]
    NoSocket(PathBuf),
    /// Not allowed to connect.
    #[error("cannot connect to {}: permission denied (the control socket is for root)", .0.display())]
    Permission(PathBuf),
    /// A socket file nobody listens on.
    #[error("cannot connect to {}: connection refused (no vswitch listens there: a stale socket?)", .0.display())]
    Refused(PathBuf),
    /// Another I/O error.
    #[error("{}: {what}: {source}", .path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The server closed the connection without a reply.
    #[error("{}: the switch closed the connection without answering", .0.display())]
    Closed(PathBuf),
    /// The reply is not a [`Response`].
    #[error("{}: unreadable reply: {why}", .path.display())]
    BadReply {
        /// The socket.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// Connects to the server at `path`.
fn connect(path: &Path) -> Result<UnixStream, ClientError> {
    let p = || path.to_path_buf();
    UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ClientError::NoSocket(p()),
        io::ErrorKind::PermissionDenied => ClientError::Permission(p()),
        io::ErrorKind::ConnectionRefused => ClientError::Refused(p()),
        _ => ClientError::Io {
            path: p(),
            what: "connect",
            source: e,
        },
    })
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> ClientError + 'a {
    move |source| ClientError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Writes `request` as one line.
fn send(path: &Path, stream: &UnixStream, request: &Request) -> Result<(), ClientError> {
    let line = request_line(path, request)?;
    let mut s = stream;
    s.write_all(line.as_bytes()).map_err(io_err(path, "send"))
}

fn request_line(path: &Path, request: &Request) -> Result<String, ClientError> {
    let mut line = serde_json::to_string(request).map_err(|e| ClientError::Io {
        path: path.to_path_buf(),
        what: "encoding the request",
        source: io::Error::other(e),
    })?;
    line.push('\n');
    Ok(line)
}

/// Sends `request` to the server at `path` and reads its response.
pub fn call(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let p = || path.to_path_buf();
    let stream = connect(path)?;
    let io = |what| io_err(path, what);
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .map_err(io("set timeout"))?;
    let line = request_line(path, request)?;
    // A refused client may see its write fail after the server's answer: read anyway.
    let written = (&stream).write_all(line.as_bytes());
    let mut reply = String::new();
    let read = BufReader::new(&stream).read_line(&mut reply);
    match read {
        Ok(0) => {
            written.map_err(io("send"))?;
            Err(ClientError::Closed(p()))
        }
        Ok(_) => serde_json::from_str(&reply).map_err(|e| ClientError::BadReply {
            path: p(),
            why: e.to_string(),
        }),
        Err(e) => {
            written.map_err(io("send"))?;
            Err(io("receive")(e))
        }
    }
}

/// How long [`CaptureStream::recv`] waits for a record before it returns `None`, so
/// that the caller can look at its stop flag.
pub const CAPTURE_WAIT: Duration = Duration::from_millis(200);

/// A capture being received: `vswitch ctl capture`.
#[derive(Debug)]
pub struct CaptureStream {
    stream: UnixStream,
    path: PathBuf,
    /// Bytes received and not yet parsed.
    buf: Vec<u8>,
    /// Where the unparsed bytes start in `buf`.
    at: usize,
    stopped: bool,
}

impl CaptureStream {
    /// Sends `request` (a [`Request::Capture`]) to the server at `path`. Returns the
    /// stream and the server's answer: a `capture` reply, the stream follows; an
    /// error, nothing follows.
    pub fn open(path: &Path, request: &Request) -> Result<(CaptureStream, Response), ClientError> {
        let stream = connect(path)?;
        let io = |what| io_err(path, what);
        stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .map_err(io("set timeout"))?;
        send(path, &stream, request)?;
        // The reply line, read byte-wise up to its newline so that no record after it
        // is swallowed by a buffer.
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        loop {
            match (&stream).read(&mut b) {
                Ok(0) => return Err(ClientError::Closed(path.to_path_buf())),
                Ok(_) if b[0] == b'\n' => break,
                Ok(_) => line.push(b[0]),
                Err(e) => return Err(io("receive")(e)),
            }
            if line.len() > super::proto::MAX_REQUEST_LINE * 16 {
                return Err(ClientError::BadReply {
                    path: path.to_path_buf(),
                    why: "reply line too long".into(),
                });
            }
        }
        let response = serde_json::from_slice(&line).map_err(|e| ClientError::BadReply {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        stream
            .set_read_timeout(Some(CAPTURE_WAIT))
            .map_err(io("set timeout"))?;
        Ok((
            CaptureStream {
                stream,
                path: path.to_path_buf(),
                buf: Vec::with_capacity(256 * 1024),
                at: 0,
                stopped: false,
            },
            response,
        ))
    }

    /// The next record: `Ok(None)` when none came within [`CAPTURE_WAIT`]. After the
    /// end record the server closes; reading on is an error.
    pub fn recv(&mut self) -> Result<Option<CaptureItem>, ClientError> {
        loop {
            match decode_capture_item(&self.buf[self.at..]) {
                Ok(Some((item, used))) => {
                    self.at += used;
                    return Ok(Some(item));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(ClientError::BadReply {
                        path: self.path.clone(),
                        why: e.to_string(),
                    })
                }
            }
            // Keep the unparsed tail at the front.
            self.buf.drain(..self.at);
            self.at = 0;
            let len = self.buf.len();
            self.buf.resize(len + 64 * 1024, 0);
            let r = (&self.stream).read(&mut self.buf[len..]);
            match r {
                Ok(0) => {
                    self.buf.truncate(len);
                    return Err(ClientError::Closed(self.path.clone()));
                }
                Ok(n) => self.buf.truncate(len + n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    self.buf.truncate(len);
                    return Ok(None);
                }
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(io_err(&self.path, "receive")(e));
                }
            }
        }
    }

    /// Asks the switch to stop: the frames already taken and then the end record
    /// still come.
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
        }
    }
}
