//! Plain TCP fixtures on loopback: an open port, a closed port, a listener that accepts and never answers, one
//! whose accept queue is full (so that a connect to it times out), and small services for banner checks: one
//! that greets, one that echoes, one that closes at once. Every [`Listener`] records the peer address of each
//! connection it accepted ([`Listener::peers`]), to check a client's source address.
//!
//! The listeners run on their own thread with blocking std sockets, so they work from any test, sync or async,
//! whatever the tokio runtime flavour. Each returns its address and a [`Listener`] guard that stops the thread
//! and closes every socket when dropped.
//!
//! ```no_run
//! let (addr, listener) = gonogo_testkit::tcp::open_listener();
//! std::net::TcpStream::connect(addr).expect("connect");
//! drop(listener); // stops accepting; the port is closed again
//! ```

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A listener whose accept queue is full, from [`full_backlog_listener`]; dropping it closes the listener and the
/// connections that fill its queue.
#[derive(Debug)]
pub struct FullListener {
    addr: SocketAddr,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl FullListener {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A running loopback listener; dropping it stops the listener and closes the connections it holds.
#[derive(Debug)]
pub struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The peer (client) address of every connection accepted so far, in order.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Wait until at least `n` connections were accepted, for at most `limit`; returns the count reached.
    /// The kernel completes a handshake before the listener's `accept()` returns, so a client can be connected
    /// a moment before [`Listener::accepted`] counts it.
    pub fn wait_accepted(&self, n: usize, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let seen = self.accepted();
            if seen >= n || Instant::now() >= deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with one last connection. Join only if that worked, so a drop never hangs.
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// What a listener does with each accepted connection.
#[derive(Debug, Clone)]
enum Mode {
    /// Read and discard until the peer closes, then close: a well-behaved service that says nothing.
    Drain,
    /// Hold the connection open, never reading, never writing, never closing, until the listener stops.
    Hang,
    /// Send these bytes at once, then drain as [`Mode::Drain`]: a service that greets (SMTP, SSH, FTP).
    Greet(Arc<[u8]>),
    /// Send back whatever the peer sends, until it closes.
    Echo,
    /// Close the connection at once, without a byte.
    Close,
}

/// A listener on `127.0.0.1` that accepts every connection, reads and discards what the client sends and closes
/// when the client does. For "port open" checks: a TCP connect succeeds.
///
/// Panics if it cannot bind (tests only).
pub fn open_listener() -> (SocketAddr, Listener) {
    start(IpAddr::V4(Ipv4Addr::LOCALHOST), Mode::Drain).expect("bind an open listener on 127.0.0.1")
}

/// The same as [`open_listener`] on `[::1]`, or `None` when this machine has no IPv6 loopback.
pub fn open_listener_v6() -> Option<(SocketAddr, Listener)> {
    start(IpAddr::V6(Ipv6Addr::LOCALHOST), Mode::Drain).ok()
}

/// A listener on `127.0.0.1` that accepts every connection and then stays silent: it never reads, never writes
/// and never closes until dropped. A TCP connect to it succeeds; a TLS handshake or HTTP request to it gets no
/// answer, so it exercises the client's timeout.
///
/// Panics if it cannot bind (tests only).
pub fn hanging_listener() -> (SocketAddr, Listener) {
    start(IpAddr::V4(Ipv4Addr::LOCALHOST), Mode::Hang).expect("bind a hanging listener on 127.0.0.1")
}

/// The same as [`hanging_listener`] on `[::1]`, or `None` when this machine has no IPv6 loopback.
pub fn hanging_listener_v6() -> Option<(SocketAddr, Listener)> {
    start(IpAddr::V6(Ipv6Addr::LOCALHOST), Mode::Hang).ok()
}

/// A listener on `127.0.0.1` that sends `greeting` on every connection as soon as it accepts it, then reads and
/// discards until the client closes (an SMTP server's `220 smtp ready\r\n`, an SSH version line).
///
/// Panics if it cannot bind (tests only).
pub fn greeting_listener(greeting: &[u8]) -> (SocketAddr, Listener) {
    start(IpAddr::V4(Ipv4Addr::LOCALHOST), Mode::Greet(Arc::from(greeting))).expect("bind a greeting listener")
}

/// A listener on `127.0.0.1` that sends back every byte it receives, until the client closes.
///
/// Panics if it cannot bind (tests only).
pub fn echo_listener() -> (SocketAddr, Listener) {
    start(IpAddr::V4(Ipv4Addr::LOCALHOST), Mode::Echo).expect("bind an echo listener on 127.0.0.1")
}

/// A listener on `127.0.0.1` that accepts every connection and closes it at once, without sending anything.
///
/// Panics if it cannot bind (tests only).
pub fn closing_listener() -> (SocketAddr, Listener) {
    start(IpAddr::V4(Ipv4Addr::LOCALHOST), Mode::Close).expect("bind a closing listener on 127.0.0.1")
}

/// An address on `127.0.0.1` with nothing listening: a connect to it is refused (RST). The port was free a
/// moment ago (bound to port 0, then released); another process could take it in between, which on a test
/// machine is unlikely enough to ignore.
///
/// Panics if it cannot bind (tests only).
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address of a bound listener")
}

/// A listener on `127.0.0.1` that never accepts and whose accept queue is already full, so Linux drops every
/// further SYN to it unanswered (`sk_acceptq_is_full`): a TCP connect to it times out, and nothing leaves
/// loopback. For "connect timeout" checks.
///
/// It listens with a backlog of 0 (Linux then queues one connection) and is filled by connects of 200ms each,
/// until one completes (it stays queued, held open by the returned guard) and a later one times out, which shows
/// the queue is full. Panics if that does not happen within 8 connects (the queue never filled: not Linux?), or
/// if it cannot bind (tests only).
pub fn full_backlog_listener() -> (SocketAddr, FullListener) {
    const ATTEMPTS: usize = 8;
    const PATIENCE: Duration = Duration::from_millis(200);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
        .expect("create a TCP socket");
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into()).expect("bind 127.0.0.1:0");
    socket.listen(0).expect("listen with a backlog of 0");
    let listener = TcpListener::from(socket);
    let addr = listener.local_addr().expect("local address of a bound listener");
    let mut queued = Vec::new();
    for _ in 0..ATTEMPTS {
        match TcpStream::connect_timeout(&addr, PATIENCE) {
            Ok(stream) => queued.push(stream),
            // Timed out with a connection queued: the queue is full.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut && !queued.is_empty() => {
                return (addr, FullListener { addr, _listener: listener, _queued: queued });
            }
            // Timed out before any connection completed: too slow a moment, try again.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("filling the accept queue of {addr}: {e}"),
        }
    }
    panic!("the accept queue of {addr} never filled: {} of {ATTEMPTS} connects completed", queued.len());
}

fn start(ip: IpAddr, mode: Mode) -> std::io::Result<(SocketAddr, Listener)> {
    let listener = TcpListener::bind((ip, 0))?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let peers = Arc::new(Mutex::new(Vec::new()));
    let thread = {
        let stop = Arc::clone(&stop);
        let accepted = Arc::clone(&accepted);
        let peers = Arc::clone(&peers);
        std::thread::Builder::new()
            .name(format!("testkit-tcp-{addr}"))
            .spawn(move || serve(listener, mode, &stop, &accepted, &peers))?
    };
    Ok((addr, Listener { addr, stop, accepted, peers, thread: Some(thread) }))
}

fn serve(listener: TcpListener, mode: Mode, stop: &AtomicBool, accepted: &AtomicUsize, peers: &Mutex<Vec<SocketAddr>>) {
    let mut held = Vec::new();
    let mut drains = Vec::new();
    loop {
        let conn = listener.accept();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok((mut stream, peer)) = conn else {
            // EMFILE and the like: back off rather than spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        peers.lock().unwrap_or_else(|p| p.into_inner()).push(peer);
        accepted.fetch_add(1, Ordering::SeqCst);
        match &mode {
            Mode::Hang => held.push(stream),
            Mode::Close => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            Mode::Echo => {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                if let Ok(handle) = stream.try_clone() {
                    held.push(handle);
                }
                drains.push(std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                }));
            }
            Mode::Drain | Mode::Greet(_) => {
                if let Mode::Greet(greeting) = &mode {
                    let _ = stream.write_all(greeting);
                }
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                if let Ok(handle) = stream.try_clone() {
                    held.push(handle);
                }
                drains.push(std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                    // The listener still holds a clone of this socket; shut it down so the client sees it closed.
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                }));
            }
        }
    }
    // Shutting the held handles down ends the drain threads' reads at once.
    for stream in &held {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    for drain in drains {
        let _ = drain.join();
    }
}
