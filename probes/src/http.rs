//! HTTP(S) on rustls: status, final URL, redirects, response headers, body size (read capped), time to response
//! headers and total time; an explicit proxy, the proxy environment or none; optionally a request body, a client
//! certificate, a source address and a pinned server address.
//!
//! Two ways out, one exchange loop: a hop that goes straight to the server uses a hyper connection opened by the
//! probe and, for HTTP/1.1, driven in the probe's own task ([`Together`]); a hop through a proxy (http, https or
//! socks5, explicit or from the environment) uses reqwest, which speaks to all of them. Why not reqwest for
//! every hop: its client spawns each connection as a task of its own and re-parses each response's URL; going
//! direct costs 14 % less CPU per HTTP/1.1 probe (tests/bench/RESULTS.md, 2026-11-25), and a test agent should
//! not load the host it measures from.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Body;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, HeaderMap, HeaderName,
    HeaderValue, LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING, USER_AGENT, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode, Url};
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{self, Instant};
use tokio_rustls::TlsConnector;

use crate::tls::{Connect, check_source, connect, io_failure, same_family};
use crate::tlsconf::{ClientOptions, ClientTls, OnInvalid, describe_error, failure_of};
use crate::together::{Leftover, Together};
use crate::{Failure, Kind, Observations, Probe, ProbeError, ProbeFuture};

/// Parameters of one HTTP check.
#[derive(Debug, Clone, Default)]
pub struct HttpParams {
    pub url: String,
    /// Upper-case method name.
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// PEM file of trusted CA certificates; `None`: the system roots.
    pub ca_file: Option<PathBuf>,
    /// When false, certificate errors are ignored.
    pub verify: bool,
    /// Proxy URL, for every scheme; `None`: as `proxy_from_env` says.
    pub proxy: Option<String>,
    /// With no `proxy`: take the proxy from the environment, as curl does (`HTTPS_PROXY`/`https_proxy` for
    /// https URLs, `HTTP_PROXY`/`http_proxy` for http, `ALL_PROXY`/`all_proxy` for either, `NO_PROXY`/`no_proxy`
    /// for exceptions), read when the probe is built. `false`: connect directly.
    pub proxy_from_env: bool,
    pub follow_redirects: bool,
    /// Most redirects followed: one more is the failure [`Failure::Protocol`] "more than N redirects"; 0
    /// follows none (a redirect is then that failure when `follow_redirects` is set). The agent's default is
    /// [`MAX_REDIRECTS`] (the `Default` of this struct leaves it 0).
    pub max_redirects: u32,
    /// Most body bytes read; the rest is not downloaded and `body_truncated` is set.
    pub body_limit: usize,
    /// Bound on the whole exchange.
    pub timeout: Duration,
    /// Request body, sent as is with a `Content-Length`; `None`: no body. Sent again on a 307 or 308
    /// redirect, dropped (with the `Content-Type` header) when a redirect turns the request into a GET.
    pub body: Option<Vec<u8>>,
    /// PEM file with a client certificate chain (leaf first) for mutual TLS; it may hold the key too.
    pub client_cert: Option<PathBuf>,
    /// PEM file with the client certificate's private key (unencrypted PKCS#8, PKCS#1 or SEC1); `None`: read
    /// from `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Local address to connect from; only addresses in its family are used. An address this host does not
    /// have is a [`ProbeError::Local`].
    pub source: Option<IpAddr>,
    /// Connect to this address instead of resolving the URL's host name (the port stays the URL's); the
    /// `Host` header and TLS server name stay the URL's host. Applies to every request to that host (also
    /// after a redirect back to it), not to other hosts; with a proxy the proxy connects and the pin is not
    /// used. With a URL whose host is an IP address, the pin must be that address.
    pub pin: Option<IpAddr>,
}

/// What an HTTP check saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpObservations {
    pub status: Option<u16>,
    /// The URL of the last response (after redirects).
    pub final_url: Option<String>,
    pub redirects: u32,
    /// The response headers of the last response: names lowercased, the values of a repeated header joined by
    /// `", "`, lossily decoded as UTF-8; `set-cookie` values are redacted (a cookie is a credential, not
    /// evidence). At most [`MAX_KEPT_HEADERS`] names (the first received) and
    /// [`MAX_HEADER_VALUE`] bytes of each value are kept; `headers_truncated` says when something was left out.
    pub headers: BTreeMap<String, String>,
    /// Whether headers were dropped or values cut to fit the limits of `headers`.
    #[serde(default)]
    pub headers_truncated: bool,
    pub body_bytes: u64,
    pub body_truncated: bool,
    /// The body read (up to the limit), lossily decoded as UTF-8, for body expectations. Not serialised:
    /// application pages are not evidence.
    #[serde(skip)]
    pub body: String,
    #[serde(rename = "headers_ms", with = "crate::ms::opt")]
    pub time_to_headers: Option<Duration>,
    #[serde(rename = "total_ms", with = "crate::ms::opt")]
    pub total_time: Option<Duration>,
    pub failure: Option<Failure>,
    pub detail: Option<String>,
}

impl HttpObservations {
    /// Nothing seen yet.
    fn empty() -> HttpObservations {
        HttpObservations {
            status: None,
            final_url: None,
            redirects: 0,
            headers: BTreeMap::new(),
            headers_truncated: false,
            body_bytes: 0,
            body_truncated: false,
            body: String::new(),
            time_to_headers: None,
            total_time: None,
            failure: None,
            detail: None,
        }
    }
}

/// The default for [`HttpParams::max_redirects`]: most redirects followed before the check fails with
/// [`Failure::Protocol`].
pub const MAX_REDIRECTS: u32 = 10;

/// Most response header names kept in [`HttpObservations::headers`].
pub const MAX_KEPT_HEADERS: usize = 64;

/// Most bytes of one header value (repeated values joined) kept in [`HttpObservations::headers`].
pub const MAX_HEADER_VALUE: usize = 4096;

/// Request headers about the body, dropped with it when a redirect turns the request into a GET.
const BODY_HEADERS: [HeaderName; 4] = [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING, TRANSFER_ENCODING];

/// Request headers dropped when a redirect leaves the origin, as browsers and reqwest do.
const CREDENTIAL_HEADERS: [HeaderName; 4] = [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, WWW_AUTHENTICATE];

/// Added to the timeout to give the probe's budget: time to build the result after the deadline.
const BUDGET_MARGIN: Duration = Duration::from_millis(250);

/// An HTTP(S) check of one URL: one request (plus redirects when asked), status, headers and a capped body.
///
/// A status of any value is an observation, not a failure: judging it is the agent's job. Each run opens a
/// fresh connection (no pooling between runs), so connect and TLS time are part of every measurement.
#[derive(Debug)]
pub struct HttpProbe {
    params: HttpParams,
    /// The client and the parsed request, built once; a problem with them is returned by every run.
    prepared: Result<Prepared, ProbeError>,
}

#[derive(Debug)]
struct Prepared {
    /// The URL without its credentials (they are in `headers` as basic authorization, as browsers do).
    url: Url,
    method: Method,
    /// The check's headers, then `Authorization` from the URL's credentials, `User-Agent` and `Accept`.
    headers: HeaderMap,
    /// TLS for direct hops (ALPN h2 and http/1.1).
    tls: std::sync::Arc<rustls::ClientConfig>,
    /// How hops reach a proxy; `None`: every hop is direct.
    proxy: Option<ProxyRoute>,
}

/// The hops that go through a proxy, and the client that takes them there.
#[derive(Debug)]
struct ProxyRoute {
    client: reqwest::Client,
    /// `None`: every hop (an explicit `proxy`); otherwise the hops the proxy environment sends to a proxy.
    only: Option<Matcher>,
}

impl Prepared {
    /// The client for a hop to `url` when a proxy takes it; `None` for a direct hop.
    fn proxy_for(&self, url: &Url) -> Option<&reqwest::Client> {
        let route = self.proxy.as_ref()?;
        match &route.only {
            None => Some(&route.client),
            Some(matcher) => {
                let uri = hyper::Uri::try_from(url.as_str()).ok()?;
                matcher.intercept(&uri).map(|_| &route.client)
            }
        }
    }
}

/// What an exchange has seen so far, kept when the timeout cuts it short.
struct Seen {
    obs: HttpObservations,
    /// The body read so far (up to the limit).
    body: Vec<u8>,
    /// When the exchange started: time to headers counts from here.
    start: Instant,
}

/// One request of the exchange: the check's, or one after a redirect.
struct Hop<'a> {
    url: &'a Url,
    method: &'a Method,
    headers: &'a HeaderMap,
    body: Option<&'a Vec<u8>>,
}

/// How a hop ended: the response was the last (its body read), or it redirects to `Location`.
enum End {
    Done,
    Redirect(StatusCode, HeaderValue),
}

/// The part of the exchange an error came from, for the failure it stands for and the words of its detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Resolving, TCP connect, the TLS handshake (as reqwest counts them: getting a connection).
    Connect,
    /// Sending the request and reading the response head.
    Request,
    /// Reading the body.
    Body,
}

impl Stage {
    fn words(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Request => "request",
            Stage::Body => "reading the body",
        }
    }
}

impl HttpProbe {
    /// Prepare the check: parse URL, method and headers, read the CA file, build the client. A problem with any
    /// of them is returned by `run` as [`ProbeError::Local`].
    pub fn new(params: HttpParams) -> HttpProbe {
        let prepared = prepare(&params);
        HttpProbe { params, prepared }
    }

    async fn measure(&self) -> Result<Observations, ProbeError> {
        let prepared = self.prepared.as_ref().map_err(Clone::clone)?;
        // Checked on each run: an address can come and go while the agent runs.
        if let Some(source) = self.params.source {
            check_source(source)?;
        }
        let timeout = self.params.timeout;
        let start = Instant::now();
        // Outside the timed future, so a timeout keeps what was seen, the part of the body read included.
        let mut seen = Seen { obs: HttpObservations::empty(), body: Vec::new(), start };
        let outcome = time::timeout(timeout, self.exchange(prepared, &mut seen)).await;
        let Seen { mut obs, body, .. } = seen;
        obs.total_time = Some(start.elapsed());
        obs.body_bytes = body.len() as u64;
        obs.body = String::from_utf8_lossy(&body).into_owned();
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(failure)) => Some(failure),
            Err(_) => {
                let stage =
                    if obs.time_to_headers.is_none() { "waiting for the response headers" } else { "reading the body" };
                Some((Failure::Timeout, format!("no complete response within {timeout:?} ({stage})")))
            }
        };
        if let Some((failure, detail)) = failure {
            obs.failure = Some(failure);
            obs.detail = Some(detail);
        }
        Ok(Observations::Http(obs))
    }

    /// The request, its redirects and the body, writing what it sees into `seen` as it goes so a timeout keeps
    /// what was seen.
    async fn exchange(&self, prepared: &Prepared, seen: &mut Seen) -> Result<(), (Failure, String)> {
        let mut url = prepared.url.clone();
        let mut method = prepared.method.clone();
        let mut headers = prepared.headers.clone();
        let mut request_body = self.params.body.clone();
        let max_redirects = self.params.max_redirects;
        loop {
            // What is known of this hop: its URL. Status and headers are those of the response to it.
            seen.obs.final_url = Some(url.to_string());
            seen.obs.status = None;
            seen.obs.headers.clear();
            seen.obs.headers_truncated = false;
            let hop = Hop { url: &url, method: &method, headers: &headers, body: request_body.as_ref() };
            let end = match prepared.proxy_for(&url) {
                Some(client) => self.via_proxy(client, &hop, seen).await,
                None => self.direct(prepared, &hop, seen).await,
            };
            let (status, location) = match end {
                Ok(End::Done) => return Ok(()),
                Ok(End::Redirect(status, location)) => (status, location),
                Err((failure, mut detail)) => {
                    if url != prepared.url {
                        detail.push_str(&format!(" (at {url})"));
                    }
                    return Err((failure, detail));
                }
            };
            if seen.obs.redirects >= max_redirects {
                return Err((Failure::Protocol, format!("more than {max_redirects} redirects (last at {url})")));
            }
            let next = location
                .to_str()
                .ok()
                .and_then(|l| url.join(l).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    let shown = String::from_utf8_lossy(location.as_bytes());
                    (Failure::Protocol, format!("{status} from {url} with an unusable Location {shown:?}"))
                })?;
            if status == StatusCode::SEE_OTHER && method != Method::HEAD
                || matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND) && method == Method::POST
            {
                method = Method::GET;
                request_body = None;
                for name in &BODY_HEADERS {
                    headers.remove(name);
                }
            }
            if next.origin() != url.origin() {
                for name in &CREDENTIAL_HEADERS {
                    headers.remove(name);
                }
            }
            seen.obs.redirects += 1;
            url = next;
            if let Some(credentials) = take_credentials(&mut url) {
                headers.entry(AUTHORIZATION).or_insert(credentials);
            }
        }
    }

    /// A hop straight to the server: resolve (or take the pin), connect (from the source address), TLS with
    /// ALPN, then HTTP/1.1 or HTTP/2 on a connection this task drives.
    async fn direct(&self, prepared: &Prepared, hop: &Hop<'_>, seen: &mut Seen) -> Result<End, (Failure, String)> {
        let url = hop.url;
        let host = url.host_str().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(80);
        let tcp = self.connect(prepared, url, bare, port).await?;
        // One write per request here, but an exchange should not wait on Nagle's algorithm either way.
        let _ = tcp.set_nodelay(true);
        if url.scheme() != "https" {
            return self.on_connection(TokioIo::new(tcp), false, hop, seen).await;
        }
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|e| (Failure::Protocol, format!("connect: {host:?} is not a valid TLS server name: {e}")))?;
        let tls = TlsConnector::from(prepared.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| described(Stage::Connect, &e))?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        self.on_connection(TokioIo::new(tls), h2, hop, seen).await
    }

    /// A TCP connection to the hop's server: the pin, the address in the URL, or the addresses the system
    /// resolver gives (of the source address's family when there is one), tried in order.
    async fn connect(
        &self,
        prepared: &Prepared,
        url: &Url,
        host: &str,
        port: u16,
    ) -> Result<tokio::net::TcpStream, (Failure, String)> {
        let source = self.params.source;
        // The pin is for the check's own host (also after a redirect back to it), not for others.
        let pin = self.params.pin.filter(|_| url.host_str() == prepared.url.host_str());
        let addrs: Vec<SocketAddr> = match (pin, host.parse::<IpAddr>()) {
            (Some(pin), _) => vec![SocketAddr::new(pin, port)],
            (None, Ok(ip)) => vec![SocketAddr::new(ip, port)],
            (None, Err(_)) => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| (Failure::ResolveFailed, format!("connect: cannot resolve {host}: {e}")))?
                    .collect();
                let found = match source {
                    Some(source) => same_family(host, found, source)
                        .map_err(|e| (Failure::ResolveFailed, format!("connect: {e}")))?,
                    None => found,
                };
                if found.is_empty() {
                    return Err((Failure::ResolveFailed, format!("connect: {host} resolved to no address")));
                }
                found
            }
        };
        happy_eyeballs(&addrs, source).await.map_err(|(addr, e)| match e {
            Connect::Bind(e) => (Failure::Unreachable, format!("connect: {e}")),
            Connect::Io(e) => (io_failure(&e, true), format!("connect: {addr}: {e}")),
        })
    }

    /// The request of `hop` on a connection, HTTP/2 when the server chose it by ALPN; the connection is driven
    /// in this task alongside the exchange. When the exchange fails because the connection did (a TLS alert
    /// after the handshake, a reset), the connection's own error is the one reported.
    async fn on_connection<T>(
        &self,
        io: TokioIo<T>,
        h2: bool,
        hop: &Hop<'_>,
        seen: &mut Seen,
    ) -> Result<End, (Failure, String)>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let request = direct_request(hop, h2)?;
        let request_failed = |e: hyper::Error| described(Stage::Request, &e);
        if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.map_err(request_failed)?;
            let work = async {
                let response = sender.send_request(request).await.map_err(request_failed)?;
                self.on_response(response, seen).await
            };
            let mut both = Together::new(conn, work);
            let result = (&mut both).await;
            let conn = both.into_conn();
            // hyper runs an HTTP/2 connection as a task of its own; dropping the handle ends it.
            return connection_error(result, conn, &seen.obs);
        }
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(request_failed)?;
        let work = async {
            let response = sender.send_request(request).await.map_err(request_failed)?;
            self.on_response(response, seen).await
        };
        let mut both = Together::new(conn, work);
        let result = (&mut both).await;
        match both.into_conn() {
            Leftover::Open(conn) => {
                // Say goodbye (TLS close_notify, then FIN) as hyper does at the end of a connection, if that can
                // be done without waiting: a server should not log a broken connection for every probe.
                let mut io = Pin::into_inner(conn).into_parts().io.into_inner();
                let _ = Pin::new(&mut io).poll_shutdown(&mut Context::from_waker(Waker::noop()));
                result
            }
            finished => connection_error(result, finished, &seen.obs),
        }
    }

    /// A hop through a proxy, with reqwest.
    async fn via_proxy(
        &self,
        client: &reqwest::Client,
        hop: &Hop<'_>,
        seen: &mut Seen,
    ) -> Result<End, (Failure, String)> {
        let mut request = client.request(hop.method.clone(), hop.url.clone()).headers(hop.headers.clone());
        if let Some(bytes) = hop.body {
            request = request.body(bytes.clone());
        }
        let response = request.send().await.map_err(classify)?;
        self.on_response(http::Response::from(response), seen).await
    }

    /// Record a response's status and headers; a redirect to follow ends the hop, any other response has its
    /// body read into `seen.body` up to the limit.
    async fn on_response<B>(&self, response: http::Response<B>, seen: &mut Seen) -> Result<End, (Failure, String)>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: StdError + 'static,
    {
        let status = response.status();
        seen.obs.status = Some(status.as_u16());
        (seen.obs.headers, seen.obs.headers_truncated) = kept_headers(response.headers());
        if self.params.follow_redirects
            && is_followed(status)
            && let Some(location) = response.headers().get(LOCATION)
        {
            return Ok(End::Redirect(status, location.clone()));
        }
        seen.obs.time_to_headers = Some(seen.start.elapsed());
        let truncated = read_capped(response.into_body(), self.params.body_limit, &mut seen.body).await;
        seen.obs.body_truncated = truncated.map_err(|e| described(Stage::Body, &e))?;
        Ok(End::Done)
    }
}

/// The exchange's result; but when it failed and the connection had failed first, the connection's error (the
/// request only hears "canceled" or "closed").
fn connection_error<C>(
    result: Result<End, (Failure, String)>,
    conn: Leftover<C>,
    obs: &HttpObservations,
) -> Result<End, (Failure, String)>
where
    C: std::future::Future<Output = Result<(), hyper::Error>>,
{
    match (result, conn) {
        (Err(_), Leftover::Finished(Err(e))) => {
            let stage = if obs.time_to_headers.is_some() { Stage::Body } else { Stage::Request };
            Err(described(stage, &e))
        }
        (result, _) => result,
    }
}

/// Connect to the first of `addrs` that accepts, as hyper-util's connector (reqwest's) does (RFC 8305 in
/// short): the addresses of the first address's family one after another; when the other family has addresses
/// too and the first has not connected within [`FALLBACK_DELAY`], its addresses race alongside. The error is the
/// preferred family's (its last address's), unless only the other family was tried.
async fn happy_eyeballs(
    addrs: &[SocketAddr],
    source: Option<IpAddr>,
) -> Result<tokio::net::TcpStream, (SocketAddr, Connect)> {
    let v4_first = addrs.first().is_some_and(SocketAddr::is_ipv4);
    let (preferred, fallback): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs.iter().partition(|a| a.is_ipv4() == v4_first);
    let primary = in_turn(&preferred, source);
    if fallback.is_empty() {
        return primary.await;
    }
    tokio::pin!(primary);
    tokio::select! {
        result = &mut primary => return match result {
            Ok(tcp) => Ok(tcp),
            Err(bind @ (_, Connect::Bind(_))) => Err(bind),
            Err(first_error) => in_turn(&fallback, source).await.map_err(|_| first_error),
        },
        () = time::sleep(FALLBACK_DELAY) => {}
    }
    let second = in_turn(&fallback, source);
    tokio::pin!(second);
    tokio::select! {
        result = &mut primary => match result {
            Ok(tcp) => Ok(tcp),
            Err(first_error) => second.await.map_err(|_| first_error),
        },
        result = &mut second => match result {
            Ok(tcp) => Ok(tcp),
            Err(_) => primary.await,
        },
    }
}

/// How long the preferred address family has before the other one races it.
const FALLBACK_DELAY: Duration = Duration::from_millis(300);

/// Connect to `addrs` one after another; the last error when none accepts (a bind error at once).
async fn in_turn(addrs: &[SocketAddr], source: Option<IpAddr>) -> Result<tokio::net::TcpStream, (SocketAddr, Connect)> {
    let mut last = None;
    for &addr in addrs {
        match connect(addr, source).await {
            Ok(tcp) => return Ok(tcp),
            Err(Connect::Bind(e)) => return Err((addr, Connect::Bind(e))),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        let none = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to connect to");
        (SocketAddr::from(([0, 0, 0, 0], 0)), Connect::Io(none))
    }))
}

/// The request of a direct hop: origin-form with `Host` for HTTP/1.1, the absolute URL for HTTP/2 (hyper takes
/// `:scheme` and `:authority` from it). Without a fragment, as no client sends one.
fn direct_request(hop: &Hop<'_>, h2: bool) -> Result<http::Request<Full<Bytes>>, (Failure, String)> {
    let url = hop.url;
    let mut target = String::with_capacity(url.as_str().len());
    if h2 {
        target.push_str(&url[..url::Position::BeforePath]);
    }
    target.push_str(&url[url::Position::BeforePath..url::Position::AfterQuery]);
    let body = hop.body.map_or_else(Bytes::new, |b| Bytes::from(b.clone()));
    let mut request = http::Request::builder()
        .method(hop.method.clone())
        .uri(target)
        .body(Full::new(body))
        .map_err(|e| (Failure::Protocol, format!("request: cannot send to {url}: {e}")))?;
    *request.headers_mut() = hop.headers.clone();
    if !h2 {
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let host = HeaderValue::from_str(authority)
            .map_err(|_| (Failure::Protocol, format!("request: {authority:?} is not a usable Host header")))?;
        // A check's own `Host` (a virtual host behind an address) wins, as with any client.
        request.headers_mut().entry(HOST).or_insert(host);
    }
    Ok(request)
}

/// Read the body into `body` up to `limit` bytes; `Ok(true)` when there was more than that (left unread).
async fn read_capped<B>(mut response: B, limit: usize, body: &mut Vec<u8>) -> Result<bool, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    loop {
        if body.len() >= limit {
            // At the limit: the body is truncated if anything is left. Ask the declared length first, so a
            // body of exactly `limit` bytes is not waited on.
            if let Some(left) = response.size_hint().exact() {
                return Ok(left > 0);
            }
            loop {
                match response.frame().await.transpose()? {
                    None => return Ok(false),
                    Some(frame) => match frame.into_data() {
                        Ok(chunk) if !chunk.is_empty() => return Ok(true),
                        _ => continue,
                    },
                }
            }
        }
        let Some(frame) = response.frame().await.transpose()? else { return Ok(false) };
        let Ok(chunk) = frame.into_data() else { continue };
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(true);
        }
        body.extend_from_slice(&chunk);
    }
}

/// Take the credentials out of `url` (`https://user:secret@host/`) as a basic `Authorization` value, as
/// browsers and reqwest do: the URL that is requested and reported has none.
fn take_credentials(url: &mut Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let pair = format!("{}:{}", decode(url.username()), url.password().map(decode).unwrap_or_default());
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let mut value =
        HeaderValue::from_str(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Redirect statuses that are followed (not 300 Multiple Choices, not 304 Not Modified).
fn is_followed(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

/// The response headers as [`HttpObservations::headers`] keeps them, and whether anything was left out.
fn kept_headers(headers: &HeaderMap) -> (BTreeMap<String, String>, bool) {
    let mut kept = BTreeMap::new();
    let mut truncated = false;
    for name in headers.keys() {
        if kept.len() >= MAX_KEPT_HEADERS {
            truncated = true;
            break;
        }
        // Session cookies are credentials, not evidence: keep that they were set, not their values.
        let secret = *name == reqwest::header::SET_COOKIE;
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| match secret {
                true => format!("<redacted, {} bytes>", v.len()),
                false => String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })
            .collect();
        let mut value = values.join(", ");
        if value.len() > MAX_HEADER_VALUE {
            let mut end = MAX_HEADER_VALUE;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
            truncated = true;
        }
        kept.insert(name.as_str().to_owned(), value);
    }
    (kept, truncated)
}

impl Probe for HttpProbe {
    fn kind(&self) -> Kind {
        Kind::Http
    }

    /// The URL, with ` via proxy` for an explicit proxy and ` (@ADDRESS)` for a pinned address:
    /// `https://app.example/health (@192.0.2.10)`.
    fn target(&self) -> String {
        let mut target = self.params.url.clone();
        if self.params.proxy.is_some() {
            target.push_str(" via proxy");
        }
        if let Some(pin) = self.params.pin {
            target.push_str(&format!(" (@{pin})"));
        }
        target
    }

    fn budget(&self) -> Duration {
        self.params.timeout + BUDGET_MARGIN
    }

    fn run(&self) -> ProbeFuture<'_> {
        Box::pin(self.measure())
    }
}

fn prepare(params: &HttpParams) -> Result<Prepared, ProbeError> {
    let mut url =
        Url::parse(&params.url).map_err(|e| ProbeError::Local(format!("invalid URL {:?}: {e}", params.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProbeError::Local(format!("URL {url} is not http:// or https://")));
    }
    let method = Method::from_bytes(params.method.as_bytes())
        .map_err(|_| ProbeError::Local(format!("invalid HTTP method {:?}", params.method)))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &params.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ProbeError::Local(format!("invalid HTTP header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| ProbeError::Local(format!("invalid value for HTTP header {name}: {value:?}")))?;
        headers.append(header, value);
    }
    if let Some(credentials) = take_credentials(&mut url) {
        headers.entry(AUTHORIZATION).or_insert(credentials);
    }
    // What reqwest sends unless told otherwise; the check's own headers win.
    headers.entry(USER_AGENT).or_insert(HeaderValue::from_static(concat!("gonogo/", env!("CARGO_PKG_VERSION"))));
    headers.entry(ACCEPT).or_insert(HeaderValue::from_static("*/*"));

    let options = ClientOptions {
        client_cert: params.client_cert.clone(),
        client_key: params.client_key.clone(),
        ..ClientOptions::default()
    };
    let tls = ClientTls::with_options(params.ca_file.as_deref(), &options)?;
    if params.verify
        && url.scheme() == "https"
        && let Some(e) = tls.roots_error()
    {
        return Err(e.clone());
    }
    let on_invalid = if params.verify { OnInvalid::Abort } else { OnInvalid::Continue };
    // One configuration for every run of the probe: its verifier keeps nothing (no run reads a chain back).
    let config = tls.client_config(tls.shared_verifier(on_invalid))?;
    let direct_tls = std::sync::Arc::new(config);

    // The URL's host as an address, if it is one (`host_str` keeps the brackets of IPv6).
    let literal = url.host_str().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok());
    if let Some(pin) = params.pin {
        match (literal, url.host_str()) {
            (Some(ip), _) if ip != pin => {
                return Err(ProbeError::Local(format!(
                    "pin {pin} differs from the address in the URL {url}: pin applies to a host name; remove it or \
                     put the host name in the URL"
                )));
            }
            (Some(_), _) | (None, Some(_)) => {}
            (None, None) => return Err(ProbeError::Local(format!("URL {url} has no host to pin"))),
        }
    }
    if let Some(source) = params.source {
        for (what, ip) in [("pin", params.pin), ("the address in the URL", literal)] {
            if let Some(ip) = ip.filter(|ip| ip.is_ipv4() != source.is_ipv4()) {
                return Err(ProbeError::Local(format!(
                    "source address {source} and {what} {ip} are of different address families: use a source \
                     address of the same family"
                )));
            }
        }
    }
    let only = match (&params.proxy, params.proxy_from_env) {
        (Some(_), _) => None,
        // reqwest reads the same environment with the same rules when its client is built, just below.
        (None, true) => Some(Matcher::from_system()),
        (None, false) => return Ok(Prepared { url, method, headers, tls: direct_tls, proxy: None }),
    };

    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured((*direct_tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        // One exchange per connection, bounded by the probe's own timeout: TCP keepalive and TCP_USER_TIMEOUT
        // (reqwest's defaults) would cost five setsockopt calls per probe for a connection that never idles.
        .tcp_keepalive(None)
        .tcp_keepalive_interval(None)
        .tcp_keepalive_retries(None)
        .tcp_user_timeout(None);
    builder = match &params.proxy {
        // An explicit proxy turns the environment off.
        Some(proxy) => builder.proxy(
            reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| ProbeError::Local(format!("invalid proxy URL {proxy:?}: {e}")))?,
        ),
        // reqwest reads the proxy environment when the client is built.
        None => builder,
    };
    // Through a proxy the pin is not used (the proxy connects); the source address is, to reach the proxy.
    if let Some(source) = params.source {
        builder = builder.local_address(source).dns_resolver(FamilyResolver { source });
    }
    let client = builder.build().map_err(|e| ProbeError::Local(format!("cannot build the HTTP client: {e}")))?;
    Ok(Prepared { url, method, headers, tls: direct_tls, proxy: Some(ProxyRoute { client, only }) })
}

/// The system resolver, keeping only the addresses of the source address's family, as direct hops do
/// ([`same_family`]). (hyper binds the source only to addresses of its family and would silently connect to the
/// others from any address.)
#[derive(Debug, Clone, Copy)]
struct FamilyResolver {
    source: IpAddr,
}

impl Resolve for FamilyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let source = self.source;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = same_family(&host, found, source)?;
            if kept.is_empty() {
                return Err(format!("{host} resolved to no address").into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// A reqwest error (a hop through a proxy) as a failure kind and human text, from its chain of causes.
fn classify(error: reqwest::Error) -> (Failure, String) {
    let stage = if error.is_connect() {
        Stage::Connect
    } else if error.is_body() || error.is_decode() {
        Stage::Body
    } else {
        Stage::Request
    };
    let timeout = error.is_timeout();
    let dns = error.is_dns();
    let error = error.without_url();
    // Skip reqwest's own "error sending request": the stage says it.
    let (failure, detail) = match error.source() {
        Some(cause) => described(stage, cause),
        None => described(stage, &error),
    };
    let failure = if timeout {
        Failure::Timeout
    } else if dns {
        Failure::ResolveFailed
    } else {
        failure
    };
    (failure, detail)
}

/// An error of `stage` as a failure kind and human text (`"connect: …"`), from `error` and its causes: the
/// rustls error inside names the TLS failure, else the first I/O or hyper error that tells.
fn described(stage: Stage, error: &(dyn StdError + 'static)) -> (Failure, String) {
    let connecting = stage == Stage::Connect;
    let mut failure: Option<Failure> = None;
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(tls) = rustls_inside(e) {
            failure = Some(failure_of(tls));
            parts.push(describe_error(tls));
            break;
        }
        let text = e.to_string();
        // reqwest's own words ("error sending request", "error reading a body from connection") and
        // hyper-util's "client error (Connect)" say what the stage says.
        let generic = e.is::<reqwest::Error>() || text.starts_with("client error (");
        if !generic && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        // An io::Error's `source()` skips the error it wraps; step into it instead.
        let io_error = e.downcast_ref::<io::Error>();
        let wrapped = io_error.and_then(|io| io.get_ref()).map(|inner| inner as &(dyn StdError + 'static));
        if failure.is_none() {
            if let Some(io_error) = io_error.filter(|io| io.kind() != io::ErrorKind::Other || wrapped.is_none()) {
                failure = Some(io_failure(io_error, connecting));
            } else if let Some(hyper_error) = e.downcast_ref::<hyper::Error>() {
                failure = hyper_failure(hyper_error);
            }
        }
        cause = wrapped.or_else(|| e.source());
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    let failure = failure.unwrap_or(if connecting { Failure::Unreachable } else { Failure::Protocol });
    (failure, format!("{}: {}", stage.words(), parts.join(": ")))
}

/// The rustls error in `e`, looking through the io::Errors that carry it (TLS errors arrive as
/// `io::Error(Other, io::Error(InvalidData, rustls::Error))`, and an io::Error's `source()` skips what it wraps).
fn rustls_inside<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<io::Error>()?.get_ref()?;
    rustls_inside(inner as &(dyn StdError + 'static))
}

/// The failure a hyper error stands for, when it tells.
fn hyper_failure(e: &hyper::Error) -> Option<Failure> {
    if e.is_timeout() {
        Some(Failure::Timeout)
    } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        Some(Failure::ConnectionReset)
    } else if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        Some(Failure::Protocol)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gonogo_testkit::tcp;
    use std::net::{Ipv6Addr, TcpListener};

    /// A port on `[::1]` nobody listens on, or `None` without IPv6 loopback.
    fn closed_v6() -> Option<SocketAddr> {
        let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).ok()?;
        listener.local_addr().ok()
    }

    /// A listener on 127.0.0.1 whose accept queue is full: a connect to it gets no SYN-ACK and hangs.
    fn full_listener() -> (SocketAddr, socket2::Socket, Vec<std::net::TcpStream>) {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
        socket.listen(0).expect("listen");
        let addr = socket.local_addr().expect("address").as_socket().expect("an IP address");
        let mut held = Vec::new();
        for _ in 0..8 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => held.push(stream),
                Err(_) => return (addr, socket, held),
            }
        }
        panic!("the accept queue of {addr} did not fill");
    }

    #[tokio::test]
    async fn the_other_family_is_tried_when_the_first_refuses() {
        let (Some(closed), (open, _listener)) = (closed_v6(), tcp::open_listener()) else { return };
        let tcp = happy_eyeballs(&[closed, open], None).await.expect("the IPv4 address accepts");
        assert_eq!(tcp.peer_addr().ok(), Some(open));
    }

    #[tokio::test]
    async fn the_other_family_races_a_first_that_hangs() {
        let Some((open_v6, _listener)) = tcp::open_listener_v6() else { return };
        let (hanging, _socket, _held) = full_listener();
        let tcp = time::timeout(Duration::from_secs(10), happy_eyeballs(&[hanging, open_v6], None))
            .await
            .expect("the IPv6 address answered before the IPv4 connect gave up")
            .expect("the IPv6 address accepts");
        assert_eq!(tcp.peer_addr().ok(), Some(open_v6));
    }

    #[tokio::test]
    async fn when_all_refuse_the_error_names_the_preferred_family() {
        let Some(closed_v6) = closed_v6() else { return };
        let closed_v4 = tcp::closed_port();
        let Err((addr, Connect::Io(e))) = happy_eyeballs(&[closed_v4, closed_v6], None).await else {
            panic!("two closed ports accepted a connection or failed to bind");
        };
        assert_eq!((addr, e.kind()), (closed_v4, io::ErrorKind::ConnectionRefused));
    }
}
