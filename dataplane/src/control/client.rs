//! One request, one reply: what `vswitch ctl` does.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::proto::{Request, Response};

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

/// Sends `request` to the server at `path` and reads its response.
pub fn call(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let p = || path.to_path_buf();
    let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ClientError::NoSocket(p()),
        io::ErrorKind::PermissionDenied => ClientError::Permission(p()),
        io::ErrorKind::ConnectionRefused => ClientError::Refused(p()),
        _ => ClientError::Io {
            path: p(),
            what: "connect",
            source: e,
        },
    })?;
    let io = |what| {
        move |source| ClientError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .map_err(io("set timeout"))?;
    let mut line = serde_json::to_string(request).map_err(|e| ClientError::Io {
        path: p(),
        what: "encoding the request",
        source: io::Error::other(e),
    })?;
    line.push('\n');
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
