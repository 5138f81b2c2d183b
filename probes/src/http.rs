//! HTTP(S) with reqwest on rustls: status, final URL, redirects, response headers, body size (read capped),
//! time to response headers and total time; an explicit proxy, the proxy environment or none; optionally a
//! request body, a client certificate, a source address and a pinned server address.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HeaderMap, HeaderName, HeaderValue,
    LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio::time::{self, Instant};

use crate::tls::{check_source, io_failure};
use crate::tlsconf::{ClientOptions, ClientTls, OnInvalid, describe_error, failure_of};
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
    client: reqwest::Client,
    url: Url,
    method: Method,
    headers: HeaderMap,
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
        let mut obs = HttpObservations::empty();
        // Outside the timed future, so a timeout keeps the part of the body that was read.
        let mut body: Vec<u8> = Vec::new();
        let outcome = time::timeout(timeout, self.exchange(prepared, &mut obs, &mut body, start)).await;
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

    /// The request, its redirects and the body (into `body`), writing what it sees into `obs` as it goes so a
    /// timeout keeps what was seen.
    async fn exchange(
        &self,
        prepared: &Prepared,
        obs: &mut HttpObservations,
        body: &mut Vec<u8>,
        start: Instant,
    ) -> Result<(), (Failure, String)> {
        let mut url = prepared.url.clone();
        let mut method = prepared.method.clone();
        let mut headers = prepared.headers.clone();
        let mut request_body = self.params.body.clone();
        let max_redirects = self.params.max_redirects;
        let mut response = loop {
            // What is known of this hop: its URL. Status and headers are those of the response to it.
            obs.final_url = Some(url.to_string());
            obs.status = None;
            obs.headers.clear();
            obs.headers_truncated = false;
            let mut request = prepared.client.request(method.clone(), url.clone()).headers(headers.clone());
            if let Some(bytes) = &request_body {
                request = request.body(bytes.clone());
            }
            let response = request.send().await.map_err(|e| classify(e, &url, &prepared.url))?;
            let status = response.status();
            obs.status = Some(status.as_u16());
            obs.final_url = Some(response.url().to_string());
            (obs.headers, obs.headers_truncated) = kept_headers(response.headers());
            let location = response.headers().get(LOCATION);
            let Some(location) = location.filter(|_| self.params.follow_redirects && is_followed(status)) else {
                break response;
            };
            if obs.redirects >= max_redirects {
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
            obs.redirects += 1;
            url = next;
        };
        obs.time_to_headers = Some(start.elapsed());

        let truncated = read_capped(&mut response, self.params.body_limit, body).await;
        obs.body_truncated = truncated.map_err(|e| classify(e, &url, &prepared.url))?;
        Ok(())
    }
}

/// Read the body into `body` up to `limit` bytes; `Ok(true)` when there was more than that (left unread).
async fn read_capped(response: &mut reqwest::Response, limit: usize, body: &mut Vec<u8>) -> reqwest::Result<bool> {
    loop {
        if body.len() >= limit {
            // At the limit: the body is truncated if anything is left. Ask the declared length first, so a
            // body of exactly `limit` bytes is not waited on.
            if let Some(length) = response.content_length() {
                return Ok(length > body.len() as u64);
            }
            loop {
                match response.chunk().await? {
                    None => return Ok(false),
                    Some(chunk) if chunk.is_empty() => continue,
                    Some(_) => return Ok(true),
                }
            }
        }
        match response.chunk().await? {
            None => return Ok(false),
            Some(chunk) => {
                let room = limit - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return Ok(true);
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
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
    let url = Url::parse(&params.url).map_err(|e| ProbeError::Local(format!("invalid URL {:?}: {e}", params.url)))?;
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

    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        // One exchange per connection, bounded by the probe's own timeout: TCP keepalive and TCP_USER_TIMEOUT
        // (reqwest's defaults) would cost five setsockopt calls per probe for a connection that never idles.
        .tcp_keepalive(None)
        .tcp_keepalive_interval(None)
        .tcp_keepalive_retries(None)
        .tcp_user_timeout(None)
        .user_agent(concat!("gonogo/", env!("CARGO_PKG_VERSION")));
    builder = match &params.proxy {
        // An explicit proxy turns the environment off.
        Some(proxy) => builder.proxy(
            reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| ProbeError::Local(format!("invalid proxy URL {proxy:?}: {e}")))?,
        ),
        // reqwest reads the proxy environment when the client is built, unless told not to.
        None if params.proxy_from_env => builder,
        None => builder.no_proxy(),
    };
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
            (Some(_), _) => {}
            // Port 0: the URL's port (or the scheme's) is used.
            (None, Some(host)) => builder = builder.resolve(host, SocketAddr::new(pin, 0)),
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
        builder = builder.local_address(source).dns_resolver(FamilyResolver { ipv4: source.is_ipv4() });
    }
    let client = builder.build().map_err(|e| ProbeError::Local(format!("cannot build the HTTP client: {e}")))?;
    Ok(Prepared { client, url, method, headers })
}

/// The system resolver, keeping only the addresses of one family: those a bound source address can reach.
/// (hyper binds the source only to addresses of its family and would silently connect to the others from any
/// address.)
#[derive(Debug, Clone, Copy)]
struct FamilyResolver {
    ipv4: bool,
}

impl Resolve for FamilyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let ipv4 = self.ipv4;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found.iter().copied().filter(|a| a.is_ipv4() == ipv4).collect();
            if kept.is_empty() {
                let family = if ipv4 { "IPv4" } else { "IPv6" };
                let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "{host} has no {family} address, the family of the source address (it resolved to {})",
                    if shown.is_empty() { "nothing".to_owned() } else { shown.join(", ") }
                )
                .into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// A reqwest error as a failure kind and human text, from its chain of causes. `url` is the request that
/// failed; it is named in the text when a redirect took the check away from `original`.
fn classify(error: reqwest::Error, url: &Url, original: &Url) -> (Failure, String) {
    let timeout = error.is_timeout();
    let dns = error.is_dns();
    let connecting = error.is_connect();
    let phase = if connecting {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "reading the body"
    } else {
        "request"
    };
    let error = error.without_url();

    let mut failure: Option<Failure> = None;
    let mut parts: Vec<String> = Vec::new();
    // Skip reqwest's own "error sending request" and hyper-util's "client error (Connect)": the phase says it.
    let mut cause: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(e) = cause {
        if let Some(tls) = rustls_inside(e) {
            failure = Some(failure_of(tls));
            parts.push(describe_error(tls));
            break;
        }
        let text = e.to_string();
        if !text.starts_with("client error (") && !parts.iter().any(|p| p.contains(&text)) {
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
    let failure = if timeout {
        Failure::Timeout
    } else if dns {
        Failure::ResolveFailed
    } else {
        failure.unwrap_or(if connecting { Failure::Unreachable } else { Failure::Protocol })
    };
    let mut detail = format!("{phase}: {}", parts.join(": "));
    if url != original {
        detail.push_str(&format!(" (at {url})"));
    }
    (failure, detail)
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
