//! In-process HTTP and HTTPS servers with scripted routes, and a tiny forward proxy, all on `127.0.0.1:0`.
//!
//! ```no_run
//! # async fn demo() {
//! use gonogo_testkit::http::HttpServer;
//!
//! let server = HttpServer::builder()
//!     .status("/health", 200, "ok")
//!     .redirect("/old", "/health")
//!     .hang("/slow")
//!     .large_body("/big", 1_000_000)
//!     .echo("/echo")
//!     .start();
//! let url = server.url("/health"); // http://127.0.0.1:PORT/health
//! # let _ = url;
//! # }
//! ```
//!
//! [`HttpServerBuilder::start_https`] serves the same routes over TLS with a [`Leaf`] certificate, requiring a
//! client certificate after [`HttpServerBuilder::require_client_cert`]; [`HttpServerBuilder::start_https_h2`]
//! offers HTTP/2 too (ALPN `h2`, then `http/1.1`). An unknown path answers 404. Each
//! server records the peer address of every connection it accepts ([`HttpServer::peers`]). [`HttpProxy`] forwards absolute-form requests for `http://` URLs and tunnels `CONNECT`
//! for `https://`, to loopback addresses only, and counts what it handled.
//!
//! Servers need a tokio runtime (start them inside `#[tokio::test]`); each stops, with its connections, when
//! dropped. Everything panics on setup failure: it is test code.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::certs::{Leaf, TestCa};

/// What a route answers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Route {
    /// A fixed status, body and extra headers.
    Fixed { status: u16, body: Bytes, headers: Vec<(String, String)> },
    /// `302 Found` with `Location: <to>`.
    Redirect { to: String },
    /// Read the request and never answer (the connection stays open until the client or the server goes).
    Hang,
    /// `200` with a body of `n` bytes of `x`, with a `Content-Length`.
    Large(usize),
    /// `200`, `text/plain`, echoing the request: first line `METHOD /path?query` (the whole URL over HTTP/2),
    /// then one line per header, `name: value`, names lowercase, in the order received; then, if the request had
    /// a body, an empty line and the body (up to [`ECHO_BODY_LIMIT`] bytes, lossily decoded as UTF-8). The
    /// response header `x-http-version` tells the request's HTTP version (`HTTP/1.1`, `HTTP/2.0`).
    Echo,
}

/// Most request body bytes an [`Route::Echo`] reads; a longer body is answered `413`.
pub const ECHO_BODY_LIMIT: usize = 1 << 20;

/// Builds an [`HttpServer`] route by route.
#[derive(Debug, Clone, Default)]
pub struct HttpServerBuilder {
    routes: HashMap<String, Route>,
    /// The CA whose client certificates [`HttpServerBuilder::start_https`] requires, if any.
    client_ca: Option<CertificateDer<'static>>,
}

impl HttpServerBuilder {
    /// Answer `path` (exact match, without the query) with `route`.
    pub fn route(mut self, path: &str, route: Route) -> Self {
        self.routes.insert(path.to_owned(), route);
        self
    }

    /// Answer `path` with `status` and `body` (`text/plain`).
    pub fn status(self, path: &str, status: u16, body: &str) -> Self {
        self.respond(path, status, body, &[("content-type", "text/plain")])
    }

    /// Answer `path` with `status`, `body` and `headers`.
    pub fn respond(self, path: &str, status: u16, body: &str, headers: &[(&str, &str)]) -> Self {
        let headers = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        self.route(path, Route::Fixed { status, body: Bytes::copy_from_slice(body.as_bytes()), headers })
    }

    /// Answer `path` with `302 Found` to `to` (a path or a URL).
    pub fn redirect(self, path: &str, to: &str) -> Self {
        self.route(path, Route::Redirect { to: to.to_owned() })
    }

    /// Read requests to `path` and never answer.
    pub fn hang(self, path: &str) -> Self {
        self.route(path, Route::Hang)
    }

    /// Answer `path` with `n` bytes.
    pub fn large_body(self, path: &str, n: usize) -> Self {
        self.route(path, Route::Large(n))
    }

    /// Echo requests to `path` (method, path and headers) in the body.
    pub fn echo(self, path: &str) -> Self {
        self.route(path, Route::Echo)
    }

    /// Require a client certificate issued by `client_ca` for HTTPS ([`HttpServerBuilder::start_https`]): a
    /// client without one gets the TLS alert `certificate_required`, one from another CA `unknown_ca`. Does
    /// not apply to [`HttpServerBuilder::start_tls`], whose configuration is given whole.
    pub fn require_client_cert(mut self, client_ca: &TestCa) -> Self {
        self.client_ca = Some(client_ca.cert_der().clone());
        self
    }

    /// Serve plain HTTP/1.1 on `127.0.0.1:0`.
    pub fn start(self) -> HttpServer {
        self.start_inner(None)
    }

    /// Serve HTTPS (HTTP/1.1 over TLS 1.2 and 1.3, ALPN `http/1.1`) presenting `leaf`.
    pub fn start_https(self, leaf: &Leaf) -> HttpServer {
        let config = leaf.server_config_for(rustls::ALL_VERSIONS, self.client_ca.as_ref());
        self.start_tls(config)
    }

    /// Serve HTTPS with a given rustls configuration (its ALPN list is replaced by `http/1.1`).
    pub fn start_tls(self, config: Arc<ServerConfig>) -> HttpServer {
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        self.start_inner(Some(TlsAcceptor::from(Arc::new(config))))
    }

    /// Serve HTTPS presenting `leaf`, offering HTTP/2 by ALPN (`h2`, then `http/1.1`) and serving either.
    pub fn start_https_h2(self, leaf: &Leaf) -> HttpServer {
        let mut config = (*leaf.server_config_for(rustls::ALL_VERSIONS, self.client_ca.as_ref())).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        self.start_inner(Some(TlsAcceptor::from(Arc::new(config))))
    }

    fn start_inner(self, tls: Option<TlsAcceptor>) -> HttpServer {
        let listener = bind();
        let addr = listener.local_addr().expect("local address of a bound listener");
        let requests = Arc::new(AtomicUsize::new(0));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State { routes: self.routes, requests: requests.clone(), peers: peers.clone() });
        let https = tls.is_some();
        let task = tokio::spawn(serve(listener, state, tls));
        HttpServer { addr, https, requests, peers, task }
    }
}

/// A running HTTP(S) server; stops, with its connections, when dropped.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    https: bool,
    requests: Arc<AtomicUsize>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// A builder with no routes (every path answers 404).
    pub fn builder() -> HttpServerBuilder {
        HttpServerBuilder::default()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT<path>` (or `https://`).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// The same URL with `host` instead of the address (for example `localhost`), for certificate name tests.
    pub fn url_with_host(&self, host: &str, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{host}:{}{path}", self.addr.port())
    }

    /// Requests received so far (any route, including 404s and hanging ones).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The peer address of every connection accepted so far, in order (also those whose TLS handshake
    /// failed): the client's source address and port.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    routes: HashMap<String, Route>,
    requests: Arc<AtomicUsize>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
}

fn bind() -> TcpListener {
    let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    std_listener.set_nonblocking(true).expect("make the listener non-blocking");
    TcpListener::from_std(std_listener).expect("register the listener with tokio")
}

/// Accept connections until aborted; the connections live in a [`JoinSet`] so aborting stops them too.
async fn serve(listener: TcpListener, state: Arc<State>, tls: Option<TlsAcceptor>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, peer)) => {
                state.peers.lock().unwrap_or_else(|p| p.into_inner()).push(peer);
                stream
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let state = state.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, state).await;
                    }
                }
                None => serve_connection(stream, state).await,
            }
        });
    }
}

async fn serve_connection<S>(stream: S, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(answer(request, &state).await) }
    });
    // HTTP/1.1, or HTTP/2 when the client starts with its preface (after ALPN `h2`).
    let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
}

async fn answer(request: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    match state.routes.get(request.uri().path()) {
        None => reply(StatusCode::NOT_FOUND, Bytes::from_static(b"not found"), &[]),
        Some(Route::Fixed { status, body, headers }) => {
            let status = StatusCode::from_u16(*status).expect("route status is a valid HTTP status");
            reply(status, body.clone(), headers)
        }
        Some(Route::Redirect { to }) => {
            reply(StatusCode::FOUND, Bytes::from_static(b"moved"), &[("location".to_owned(), to.clone())])
        }
        Some(Route::Hang) => std::future::pending().await,
        Some(Route::Large(n)) => reply(StatusCode::OK, Bytes::from(vec![b'x'; *n]), &[]),
        Some(Route::Echo) => {
            let version = format!("{:?}", request.version());
            let mut text = format!("{} {}\n", request.method(), request.uri());
            for (name, value) in request.headers() {
                let _ = writeln!(text, "{name}: {}", String::from_utf8_lossy(value.as_bytes()));
            }
            let Ok(body) = Limited::new(request.into_body(), ECHO_BODY_LIMIT).collect().await else {
                return reply(StatusCode::PAYLOAD_TOO_LARGE, Bytes::from_static(b"body too large or broken"), &[]);
            };
            let body = body.to_bytes();
            if !body.is_empty() {
                text.push('\n');
                text.push_str(&String::from_utf8_lossy(&body));
            }
            let headers =
                [("content-type".to_owned(), "text/plain".to_owned()), ("x-http-version".to_owned(), version)];
            reply(StatusCode::OK, Bytes::from(text), &headers)
        }
    }
}

fn reply(status: StatusCode, body: Bytes, headers: &[(String, String)]) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status).header("server", "gonogo-testkit");
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Full::new(body)).expect("route headers are valid")
}

/// A forward HTTP proxy on `127.0.0.1:0`: absolute-form requests (`GET http://127.0.0.1:8080/x HTTP/1.1`) are
/// forwarded with `Connection: close`; `CONNECT host:port` is tunnelled. The same port speaks SOCKS5 to a
/// client that greets in it (no authentication, `CONNECT` only; see [`HttpProxy::socks5_url`]). Only loopback
/// destinations are allowed (anything else gets `403`, or SOCKS5 reply 2). Stops when dropped.
#[derive(Debug)]
pub struct HttpProxy {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Seen {
    handled: AtomicUsize,
    targets: Mutex<Vec<String>>,
}

impl HttpProxy {
    /// Start the proxy.
    pub fn start() -> HttpProxy {
        let listener = bind();
        let addr = listener.local_addr().expect("local address of a bound listener");
        let seen = Arc::new(Seen::default());
        let task = tokio::spawn(proxy_loop(listener, seen.clone()));
        HttpProxy { addr, seen, task }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for a client's proxy setting.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `socks5://127.0.0.1:PORT`, for a client's proxy setting.
    pub fn socks5_url(&self) -> String {
        format!("socks5://{}", self.addr)
    }

    /// Requests forwarded and tunnels opened so far.
    pub fn handled(&self) -> usize {
        self.seen.handled.load(Ordering::SeqCst)
    }

    /// What each handled request asked for: `CONNECT 127.0.0.1:443`, `GET http://127.0.0.1:80/x`, or
    /// `SOCKS5 127.0.0.1:443`.
    pub fn targets(&self) -> Vec<String> {
        self.seen.targets.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn proxy_loop(listener: TcpListener, seen: Arc<Seen>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(proxy_connection(stream, seen.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Longest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

async fn proxy_connection(mut client: TcpStream, seen: Arc<Seen>) {
    let mut first = [0u8; 1];
    match client.peek(&mut first).await {
        Ok(1) if first[0] == SOCKS5 => return socks5_connection(client, seen).await,
        Ok(1) => {}
        _ => return,
    }
    // Read the request head.
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return;
        }
        let mut chunk = [0u8; 4096];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let rest = buf[head_end..].to_vec();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };

    let (authority, forwarded_head) = if method.eq_ignore_ascii_case("CONNECT") {
        (target.to_owned(), None)
    } else if let Some(after) = target.strip_prefix("http://") {
        let (authority, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, "/"),
        };
        let mut forwarded = format!("{method} {path} {version}\r\n");
        for line in lines.filter(|l| !l.is_empty()) {
            let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
            if !matches!(name.as_str(), "connection" | "proxy-connection" | "keep-alive" | "proxy-authorization") {
                forwarded.push_str(line);
                forwarded.push_str("\r\n");
            }
        }
        forwarded.push_str("connection: close\r\n\r\n");
        let authority = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
        (authority, Some(forwarded))
    } else {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };

    let Some(mut upstream) = connect_loopback(&authority).await else {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };
    seen.handled.fetch_add(1, Ordering::SeqCst);
    seen.targets.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{method} {target}"));

    match forwarded_head {
        None => {
            if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
                return;
            }
        }
        Some(head) => {
            if upstream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
        }
    }
    if !rest.is_empty() && upstream.write_all(&rest).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// The version byte that starts every SOCKS5 message (RFC 1928).
const SOCKS5: u8 = 5;

/// A SOCKS5 session (RFC 1928): greeting with "no authentication", one `CONNECT`, then a tunnel. Any I/O error
/// ends it.
async fn socks5_connection(mut client: TcpStream, seen: Arc<Seen>) {
    let _ = socks5_session(&mut client, &seen).await;
}

async fn socks5_session(client: &mut TcpStream, seen: &Seen) -> std::io::Result<()> {
    let mut greeting = [0u8; 2];
    client.read_exact(&mut greeting).await?;
    let mut methods = vec![0u8; usize::from(greeting[1])];
    client.read_exact(&mut methods).await?;
    if !methods.contains(&0) {
        return client.write_all(&[SOCKS5, 0xff]).await;
    }
    client.write_all(&[SOCKS5, 0]).await?;
    // VER CMD RSV ATYP, then the address and the port.
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            Ipv4Addr::from(ip).to_string()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let authority = format!("{host}:{}", u16::from_be_bytes(port));
    // Replies: VER REP RSV, then a bound address (0.0.0.0:0 here).
    let reply = |code: u8| [SOCKS5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    if request[1] != 1 {
        return client.write_all(&reply(7)).await; // command not supported
    }
    let Some(mut upstream) = connect_loopback(&authority).await else {
        return client.write_all(&reply(2)).await; // not allowed by the ruleset
    };
    seen.handled.fetch_add(1, Ordering::SeqCst);
    seen.targets.lock().unwrap_or_else(|p| p.into_inner()).push(format!("SOCKS5 {authority}"));
    client.write_all(&reply(0)).await?;
    tokio::io::copy_bidirectional(client, &mut upstream).await.map(drop)
}

/// Connect to `authority` (`ip:port`, `[ip6]:port` or `localhost:port`) if it is a loopback address. No name is
/// looked up, so the proxy can never reach beyond the host.
async fn connect_loopback(authority: &str) -> Option<TcpStream> {
    let addr: SocketAddr = match authority.strip_prefix("localhost:") {
        Some(port) => SocketAddr::from((Ipv4Addr::LOCALHOST, port.parse::<u16>().ok()?)),
        None => authority.parse().ok()?,
    };
    if !addr.ip().is_loopback() {
        return None;
    }
    TcpStream::connect(addr).await.ok()
}
