//! The control socket's server.
//!
//! - **Where and who.** A Unix stream socket at `[switch] control_socket` (its
//!   directory created, mode 0755, if missing), mode 0600: only root can connect
//!   through the file system. Each connection is then checked with `SO_PEERCRED`:
//!   a peer that is neither root nor the user the switch runs as (the same thing for
//!   a daemon running as root; it lets an unprivileged test drive its own server) gets
//!   one `permission` error and is closed. The mode is set right after `bind`; the
//!   peer check covers the instant in between.
//! - **A crashed run.** A socket file that exists but where nobody listens
//!   (`ECONNREFUSED`) is left over by a run that died: it is removed. If a server
//!   answers on it, [`ControlServer::bind`] refuses to start rather than steal the
//!   path from a running switch. A file that is not a socket is never removed.
//! - **Never blocking the switch.** The accept thread and one thread per client (at
//!   most [`MAX_CLIENTS`]) read requests and put them on a bounded channel; the
//!   switch's owner takes them when it wants ([`RequestQueue::serve_pending`] never
//!   waits) and answers through a one-shot channel. A client waits at most
//!   [`REPLY_TIMEOUT`] for its answer; a full queue is a `busy` error, not a wait.
//! - **Limits.** A request line is at most [`MAX_REQUEST_LINE`] bytes; an idle client is
//!   dropped after [`IDLE_TIMEOUT`].
//! - **Captures.** A `capture` request gets the running session from the switch's
//!   owner; the connection's own thread then drains the workers' rings and streams the
//!   frames (see [`proto`](super::proto)) until the count is reached, the client
//!   shuts its side down or goes away, or the port is removed. The session is dropped
//!   with the thread's stream, which stops the capture on the workers.

use std::fs::{self, DirBuilder, Permissions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender, TryRecvError, TrySendError};

use super::proto::{
    capture_end_record, capture_frame_header, CaptureEnd, CaptureEndReason, ErrorKind, RemoteError,
    Reply, Request, Response, MAX_REQUEST_LINE,
};
use super::{answer, Answer, ControlTarget};
use crate::capture::CaptureSession;

/// Clients served at once.
pub const MAX_CLIENTS: usize = 16;
/// Requests waiting for the switch.
pub const QUEUE_LEN: usize = 64;
/// How long a client waits for the switch's answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may stay connected without sending a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a capture's thread sleeps when the workers' rings are empty.
const CAPTURE_POLL: Duration = Duration::from_millis(1);
/// How often a capture checks whether its client stopped it or left.
const CAPTURE_CHECK: Duration = Duration::from_millis(50);
/// Records a capture's thread takes from each ring at a time.
const CAPTURE_BATCH: usize = 256;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another server answers on the path.
    #[error("control socket {}: another vswitch is running and answers on it", .0.display())]
    InUse(PathBuf),
    /// The path exists and is not a socket.
    #[error("control socket {}: the path exists and is not a socket; remove it or set [switch] control_socket", .0.display())]
    NotASocket(PathBuf),
    /// A system call failed.
    #[error("control socket {}: {what}: {source}", .path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> ServerError + 'a {
    move |source| ServerError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// A bound control socket, not yet serving.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file we created, so that we remove only it.
    id: (u64, u64),
}

impl ControlServer {
    /// Binds `path` (see the module documentation for the stale-socket rules).
    pub fn bind(path: impl AsRef<Path>) -> Result<ControlServer, ServerError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir)
                    .map_err(io_err(path, "creating its directory"))?;
            }
        }
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
                Ok(_) => return Err(ServerError::InUse(path.to_path_buf())),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    fs::remove_file(path).map_err(io_err(path, "removing a stale socket"))?;
                }
                Err(e) => return Err(io_err(path, "probing the existing socket")(e)),
            },
            Ok(_) => return Err(ServerError::NotASocket(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path, "checking the path")(e)),
        }
        let listener = UnixListener::bind(path).map_err(io_err(path, "bind"))?;
        fs::set_permissions(path, Permissions::from_mode(0o600))
            .map_err(io_err(path, "setting mode 0600"))?;
        let m = fs::symlink_metadata(path).map_err(io_err(path, "checking the socket"))?;
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            id: (m.dev(), m.ino()),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the socket without serving, and removes its file if it is still ours
    /// (start-up failed after the bind).
    pub fn close(self) {
        let ControlServer { listener, path, id } = self;
        drop(listener);
        if let Ok(m) = fs::symlink_metadata(&path) {
            if (m.dev(), m.ino()) == id {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// Starts the accept thread. Requests arrive on the returned queue; the socket
    /// is closed and removed when the handle is shut down or dropped.
    pub fn start(self) -> Result<(ServerHandle, RequestQueue), ServerError> {
        let (tx, rx) = channel::bounded(QUEUE_LEN);
        let stop = Arc::new(AtomicBool::new(false));
        let server_uid = nix::unistd::geteuid().as_raw();
        let ControlServer { listener, path, id } = self;
        let local = tx.clone();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("vswitch-ctl".into())
                .spawn(move || accept_loop(&listener, &stop, &tx, server_uid))
                .map_err(io_err(&path, "starting the control thread"))?
        };
        Ok((
            ServerHandle {
                stop,
                path,
                id,
                thread: Some(thread),
                local,
            },
            RequestQueue { rx },
        ))
    }
}

/// The running server; shut down (socket closed and removed) on drop.
#[derive(Debug)]
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    path: PathBuf,
    id: (u64, u64),
    thread: Option<JoinHandle<()>>,
    /// For [`LocalClient`]s: the same queue the socket's clients use.
    local: Sender<Call>,
}

impl ServerHandle {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A client in this process (the metrics listener): its requests wait in the same
    /// queue as the socket's, and are answered by the switch's owner the same way.
    pub fn local_client(&self) -> LocalClient {
        LocalClient {
            tx: self.local.clone(),
        }
    }

    /// Stops accepting, waits for the accept thread and removes the socket file (if
    /// it is still ours). Clients being served finish on their own threads.
    pub fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = UnixStream::connect(&self.path);
        let _ = thread.join();
        if let Ok(m) = fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.id {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A request from a client, waiting for the switch's answer.
#[derive(Debug)]
pub struct Call {
    /// The request.
    pub request: Request,
    reply: Sender<Answer>,
}

impl Call {
    /// Sends the answer (ignored if the client has gone).
    pub fn answer(self, response: Response) {
        self.answer_with(Answer::Response(response));
    }

    /// Sends the answer, a capture session included (dropped, which stops the
    /// capture, if the client has gone).
    pub fn answer_with(self, a: Answer) {
        let _ = self.reply.try_send(a);
    }
}

/// Asks the switch from inside the process, as a socket client would, without the
/// socket (see [`ServerHandle::local_client`]).
#[derive(Debug, Clone)]
pub struct LocalClient {
    tx: Sender<Call>,
}

impl LocalClient {
    /// Hands `request` to the switch and waits up to `timeout` for its answer; a full
    /// queue or no answer in time is a `busy` error, a stopped switch a `failed` one.
    pub fn call(&self, request: Request, timeout: Duration) -> Response {
        match ask(&self.tx, request, timeout) {
            Answer::Response(r) => r,
            // Its session ends (the workers let go of their rings) when dropped here.
            Answer::Capture(..) => error(
                ErrorKind::BadRequest,
                "a capture streams frames: ask for it over the control socket".into(),
            ),
        }
    }
}

/// Where requests wait for the switch.
#[derive(Debug)]
pub struct RequestQueue {
    rx: Receiver<Call>,
}

impl RequestQueue {
    /// Answers every request waiting, without waiting for more. Returns how many.
    pub fn serve_pending(&self, target: &mut dyn ControlTarget) -> usize {
        let mut n = 0;
        loop {
            match self.rx.try_recv() {
                Ok(call) => {
                    let a = answer(target, call.request.clone());
                    call.answer_with(a);
                    n += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return n,
            }
        }
    }

    /// Waits up to `timeout` for a request, then answers every request waiting.
    /// Returns how many; 0 on timeout or once the server has stopped.
    pub fn serve_timeout(&self, target: &mut dyn ControlTarget, timeout: Duration) -> usize {
        match self.rx.recv_timeout(timeout) {
            Ok(call) => {
                let a = answer(target, call.request.clone());
                call.answer_with(a);
                1 + self.serve_pending(target)
            }
            Err(_) => 0,
        }
    }

    /// The channel itself, for a switch that selects over several.
    pub fn receiver(&self) -> &Receiver<Call> {
        &self.rx
    }
}

/// Whether a client with user id `peer` may use a server running as `server`: root,
/// or the server's own user.
pub fn peer_allowed(peer: u32, server: u32) -> bool {
    peer == 0 || peer == server
}

/// The user id of the process at the other end of `stream` (`SO_PEERCRED`).
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(stream, PeerCredentials)
        .map(|c| c.uid())
        .map_err(io::Error::from)
}

fn accept_loop(listener: &UnixListener, stop: &AtomicBool, tx: &Sender<Call>, server_uid: u32) {
    let clients = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors or similar: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
        let _ = stream.set_write_timeout(Some(REPLY_TIMEOUT));
        let refuse = match peer_uid(&stream) {
            Ok(uid) if peer_allowed(uid, server_uid) => None,
            Ok(uid) => Some(format!(
                "permission denied: uid {uid} is not root; the control socket is for root only"
            )),
            Err(e) => Some(format!(
                "permission denied: cannot identify the client ({e})"
            )),
        };
        if let Some(message) = refuse {
            refuse_client(stream, ErrorKind::Permission, message);
            continue;
        }
        if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::SeqCst);
            let message = format!("busy: {MAX_CLIENTS} clients are connected; retry");
            refuse_client(stream, ErrorKind::Busy, message);
            continue;
        }
        let (tx, clients2) = (tx.clone(), Arc::clone(&clients));
        let spawned = std::thread::Builder::new()
            .name("vswitch-ctl-client".into())
            .spawn(move || {
                serve_client(&stream, &tx);
                clients2.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            clients.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Reads the client's first request (so that closing does not reset the connection
/// before it reads), then answers it with an error and closes.
fn refuse_client(stream: UnixStream, kind: ErrorKind, message: String) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut line = String::new();
    let _ = BufReader::new(&stream)
        .take(MAX_REQUEST_LINE as u64)
        .read_line(&mut line);
    write_response(&stream, &error(kind, message));
}

fn error(kind: ErrorKind, message: String) -> Response {
    Response::Error {
        error: RemoteError { kind, message },
    }
}

fn write_response(mut stream: &UnixStream, r: &Response) -> bool {
    let mut line = match serde_json::to_string(r) {
        Ok(s) => s,
        Err(e) => format!(
            r#"{{"status":"error","error":{{"kind":"failed","message":"encoding the reply: {}"}}}}"#,
            e.to_string().replace(['"', '\\'], "'")
        ),
    };
    line.push('\n');
    stream.write_all(line.as_bytes()).is_ok()
}

fn serve_client(stream: &UnixStream, tx: &Sender<Call>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        let limit = MAX_REQUEST_LINE as u64;
        match reader.by_ref().take(limit).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with('\n') && line.len() as u64 >= limit {
            let message = format!("request longer than {MAX_REQUEST_LINE} bytes");
            write_response(stream, &error(ErrorKind::BadRequest, message));
            return;
        }
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Err(e) => error(ErrorKind::BadRequest, format!("bad request: {e}")),
            Ok(request) => match ask(tx, request, REPLY_TIMEOUT) {
                Answer::Response(r) => r,
                Answer::Capture(session, reply) => {
                    let ok = Response::Ok {
                        reply: Reply::Capture(reply),
                    };
                    if write_response(stream, &ok) {
                        stream_capture(stream, &session);
                    }
                    // The capture is the connection's last request.
                    return;
                }
            },
        };
        if !write_response(stream, &response) {
            return;
        }
    }
}

/// What a capture's client did.
enum ClientState {
    /// Still reading.
    Reading,
    /// Shut down its side (or sent something): stop, send the end record.
    Stopped,
    /// Gone.
    Gone,
}

/// Whether the client of a capture stopped it or left, without waiting.
fn client_state(stream: &UnixStream) -> ClientState {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsRawFd;
    let mut b = [0u8; 1];
    match recv(
        stream.as_raw_fd(),
        &mut b,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(_) => ClientState::Stopped,
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => ClientState::Reading,
        Err(_) => ClientState::Gone,
    }
}

/// Streams `session`'s frames to the client until the count is reached, the client
/// stops or leaves, or the workers let go of the rings; then the end record.
fn stream_capture(stream: &UnixStream, session: &CaptureSession) {
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    let mut batch = Vec::with_capacity(CAPTURE_BATCH * session.workers().max(1));
    let mut sent = 0u64;
    let mut checked = Instant::now();
    let reason = loop {
        let gone = session.producers_gone();
        session.drain(&mut batch, CAPTURE_BATCH);
        let idle = batch.is_empty();
        if idle {
            if gone {
                break CaptureEndReason::Closed;
            }
            if out.flush().is_err() {
                return;
            }
        }
        if !send_frames(&mut out, session, &mut batch, &mut sent) {
            return;
        }
        if session.options().count.is_some_and(|c| sent >= c) {
            break CaptureEndReason::Count;
        }
        if checked.elapsed() >= CAPTURE_CHECK {
            checked = Instant::now();
            match client_state(stream) {
                ClientState::Reading => {}
                ClientState::Stopped => {
                    // What the workers took before the stop still goes.
                    session.drain(&mut batch, CAPTURE_BATCH);
                    if !send_frames(&mut out, session, &mut batch, &mut sent) {
                        return;
                    }
                    break CaptureEndReason::Stopped;
                }
                ClientState::Gone => return,
            }
        }
        if idle {
            std::thread::sleep(CAPTURE_POLL);
        }
    };
    let end = CaptureEnd {
        captured: sent,
        capture_dropped: session.dropped(),
        reason,
    };
    let _ = out
        .write_all(&capture_end_record(&end))
        .and_then(|()| out.flush());
}

/// Writes the frames of `batch` (up to the session's count) and gives their records
/// back; false when the client is gone.
fn send_frames(
    out: &mut impl Write,
    session: &CaptureSession,
    batch: &mut Vec<(usize, crate::capture::Record)>,
    sent: &mut u64,
) -> bool {
    let count = session.options().count;
    let mut ok = true;
    for (w, r) in batch.drain(..) {
        if ok && count.is_none_or(|c| *sent < c) {
            let data = r.data();
            let h = capture_frame_header(
                r.direction(),
                session.unix_ns(&r),
                r.orig_len(),
                data.len() as u32,
            );
            match out.write_all(&h).and_then(|()| out.write_all(data)) {
                Ok(()) => *sent += 1,
                Err(_) => ok = false,
            }
        }
        session.recycle(w, r);
    }
    ok
}

/// Hands `request` to the switch and waits up to `timeout` for its answer.
fn ask(tx: &Sender<Call>, request: Request, timeout: Duration) -> Answer {
    let (reply, answer) = channel::bounded(1);
    let error = |kind, message| Answer::Response(error(kind, message));
    match tx.try_send(Call { request, reply }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return error(
                ErrorKind::Busy,
                "busy: too many requests waiting for the switch; retry".into(),
            )
        }
        Err(TrySendError::Disconnected(_)) => {
            return error(ErrorKind::Failed, "the switch is shutting down".into())
        }
    }
    match answer.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => error(
            ErrorKind::Busy,
            format!(
                "busy: the switch did not answer within {} s",
                timeout.as_secs_f64()
            ),
        ),
    }
}
