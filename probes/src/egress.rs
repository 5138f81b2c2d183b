//! Egress: "what is my public address". One HTTP(S) GET to an address-echo service (ipify, httpbin, ip-api, a
//! Cloudflare trace, or the trust's own), through the [`http`](crate::http) probe, and the address the service
//! reports it saw the request come from.
//!
//! After a migration the traffic of a site should leave by the new path (the HSCN gateway, a proxy, a NAT pool);
//! the reported address shows which way it went. The agent judges it (an expected address or range); this module
//! only measures it.
//!
//! The body is read up to [`BODY_LIMIT`] and understood in one of these shapes, tried in this order:
//! - JSON (a body starting with `{`): the first of the string fields `ip`, `address`, `origin`, `query` that
//!   holds an address (ipify `?format=json`, httpbin `/ip` with `"origin": "a, b"`, ip-api `query`);
//! - plain text: the first word (`203.0.113.7\n`, icanhazip, ifconfig.me, ipify);
//! - `key=value` lines with an `ip=` line (Cloudflare `/cdn-cgi/trace`).
//!
//! An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is reported as the IPv4 address. A response that is not 2xx
//! is [`Failure::Protocol`] and no address is taken from it (an error page may quote any address); so is a 2xx
//! body with no address in it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::{HttpObservations, HttpParams, HttpProbe, MAX_REDIRECTS};
use crate::{Failure, Kind, Observations, Probe, ProbeError, ProbeFuture};

/// Parameters of one egress check.
#[derive(Debug, Clone, Default)]
pub struct EgressParams {
    /// The address-echo service, `http://` or `https://`.
    pub url: String,
    /// PEM file of trusted CA certificates; `None`: the system roots.
    pub ca_file: Option<PathBuf>,
    /// When false, certificate errors are ignored.
    pub verify: bool,
    /// Proxy URL; `None`: no explicit proxy (see `proxy_from_env`).
    pub proxy: Option<String>,
    /// Without an explicit `proxy`, use the proxy environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), as the
    /// HTTP probe does; false: connect directly.
    pub proxy_from_env: bool,
    /// Local address to connect from; `None`: the kernel chooses. It must be an address of this host.
    pub source: Option<IpAddr>,
    /// Connect to this address instead of resolving the URL's host (the host name is still sent in the
    /// `Host` header and used for TLS).
    pub pin: Option<IpAddr>,
    /// Bound on the whole exchange.
    pub timeout: Duration,
}

/// What an egress check saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EgressObservations {
    /// The HTTP status of the service's answer.
    pub status: Option<u16>,
    /// The address the service reported seeing the request come from: this site's public (egress) address.
    pub address: Option<IpAddr>,
    /// The first [`RAW_CHARS`] characters of the body, as evidence of what the service said.
    pub raw: Option<String>,
    /// Time from starting the request to the end of the body.
    #[serde(rename = "time_ms", with = "crate::ms::opt")]
    pub time: Option<Duration>,
    /// Set when the service could not be reached, answered with an error status, or named no address.
    pub failure: Option<Failure>,
    /// Human text: where the address was found (`JSON field "ip"`, `plain text`, `ip= line`), or what went
    /// wrong.
    pub detail: Option<String>,
}

/// Most body bytes read: address-echo answers are tiny (a Cloudflare trace is about 300 bytes).
pub const BODY_LIMIT: usize = 16 * 1024;

/// Characters of the body kept in [`EgressObservations::raw`].
pub const RAW_CHARS: usize = 200;

/// JSON fields that hold the reported address, in the order they are tried.
const JSON_FIELDS: [&str; 4] = ["ip", "address", "origin", "query"];

/// What the request asks for: plain text first, so services that negotiate answer with just the address.
const ACCEPT: &str = "text/plain, application/json;q=0.9, */*;q=0.1";

/// An egress check: GET the address-echo service (following up to [`MAX_REDIRECTS`] redirects) and read the
/// address it reports.
#[derive(Debug)]
pub struct EgressProbe {
    params: EgressParams,
    http: HttpProbe,
}

impl EgressProbe {
    /// Prepare the check (the HTTP client is built here; a bad URL, CA file or proxy is returned by `run` as
    /// [`ProbeError::Local`]).
    pub fn new(params: EgressParams) -> EgressProbe {
        let http = HttpProbe::new(HttpParams {
            url: params.url.clone(),
            method: "GET".to_string(),
            headers: vec![("accept".to_string(), ACCEPT.to_string())],
            ca_file: params.ca_file.clone(),
            verify: params.verify,
            proxy: params.proxy.clone(),
            proxy_from_env: params.proxy_from_env,
            source: params.source,
            pin: params.pin,
            follow_redirects: true,
            max_redirects: MAX_REDIRECTS,
            body_limit: BODY_LIMIT,
            timeout: params.timeout,
            ..Default::default()
        });
        EgressProbe { params, http }
    }

    /// The parameters the probe was built with.
    pub fn params(&self) -> &EgressParams {
        &self.params
    }

    async fn measure(&self) -> Result<EgressObservations, ProbeError> {
        match self.http.run().await? {
            Observations::Http(o) => Ok(observe(o)),
            other => Err(ProbeError::Local(format!("the HTTP probe returned {} observations", kind_name(&other)))),
        }
    }
}

/// The kind of an observation, for the (impossible) case of the HTTP probe returning another kind.
fn kind_name(o: &Observations) -> &'static str {
    match o {
        Observations::Http(_) => "http",
        _ => "other",
    }
}

impl Probe for EgressProbe {
    fn kind(&self) -> Kind {
        Kind::Egress
    }

    fn target(&self) -> String {
        self.http.target()
    }

    fn budget(&self) -> Duration {
        self.http.budget()
    }

    fn run(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.measure().await.map(Observations::Egress) })
    }
}

/// Turn what the HTTP probe saw into the egress observation.
fn observe(http: HttpObservations) -> EgressObservations {
    let raw = (!http.body.is_empty()).then(|| http.body.chars().take(RAW_CHARS).collect::<String>());
    let mut obs = EgressObservations {
        status: http.status,
        address: None,
        raw,
        time: http.total_time,
        failure: http.failure,
        detail: http.detail,
    };
    if obs.failure.is_some() {
        return obs;
    }
    let shown = snippet(&http.body);
    match http.status {
        Some(status) if !(200..300).contains(&status) => {
            obs.failure = Some(Failure::Protocol);
            obs.detail = Some(format!("the service answered HTTP {status}, not 2xx, so no address is taken: {shown}"));
        }
        _ => match reported_address(&http.body) {
            Some((address, shape)) => {
                obs.address = Some(address);
                obs.detail = Some(format!("the service reported {address} ({shape})"));
            }
            None => {
                obs.failure = Some(Failure::Protocol);
                obs.detail = Some(format!("the service's answer holds no IP address: {shown}"));
            }
        },
    }
    obs
}

/// The start of a body for a detail text, quoted with control characters escaped.
fn snippet(body: &str) -> String {
    let mut shown: String = body.chars().take(RAW_CHARS).collect();
    if shown.len() < body.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// The address an address-echo service reported in `body`, with the shape it was found in (see the module
/// documentation); `None` when the body names none.
pub fn reported_address(body: &str) -> Option<(IpAddr, String)> {
    let text = body.trim_start_matches('\u{feff}').trim();
    if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        return JSON_FIELDS.iter().find_map(|field| {
            let ip = value.get(field)?.as_str()?.split([',', ' ']).find_map(ip_word)?;
            Some((ip, format!("JSON field {field:?}")))
        });
    }
    if let Some(ip) = text.split_whitespace().next().and_then(ip_word) {
        return Some((ip, "plain text".to_string()));
    }
    text.lines().find_map(|line| line.trim().strip_prefix("ip=").and_then(ip_word)).map(|ip| (ip, "ip= line".into()))
}

/// An IP address spelled by `word` (trimmed, brackets allowed), IPv4-mapped IPv6 as IPv4.
fn ip_word(word: &str) -> Option<IpAddr> {
    let word = word.trim();
    let bare = word.strip_prefix('[').and_then(|w| w.strip_suffix(']')).unwrap_or(word);
    bare.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_answers() {
        let found = |body: &str| reported_address(body).map(|(ip, shape)| (ip.to_string(), shape));
        let some = |ip: &str, shape: &str| Some((ip.to_string(), shape.to_string()));
        assert_eq!(found("203.0.113.7\n"), some("203.0.113.7", "plain text"));
        assert_eq!(found("\u{feff}  2001:db8::7 \r\n"), some("2001:db8::7", "plain text"));
        assert_eq!(found("[2001:db8::8]"), some("2001:db8::8", "plain text"));
        assert_eq!(found("::ffff:192.0.2.1"), some("192.0.2.1", "plain text"));
        assert_eq!(found(r#"{"ip": "2001:db8::7"}"#), some("2001:db8::7", "JSON field \"ip\""));
        assert_eq!(found(r#"{"origin": "192.0.2.44, 10.0.0.1"}"#), some("192.0.2.44", "JSON field \"origin\""));
        assert_eq!(
            found(r#"{"status":"success","country":"United Kingdom","query":"198.51.100.23"}"#),
            some("198.51.100.23", "JSON field \"query\"")
        );
        assert_eq!(found(r#"{"ip": 7, "address": "192.0.2.9"}"#), some("192.0.2.9", "JSON field \"address\""));
        let trace = "fl=12f34\nh=egress.test\nip=198.51.100.9\nts=1700000000.1\nvisit_scheme=https\n";
        assert_eq!(found(trace), some("198.51.100.9", "ip= line"));
        assert_eq!(found("fl=1\r\nip=2001:db8::9\r\n"), some("2001:db8::9", "ip= line"));
    }

    #[test]
    fn answers_without_an_address() {
        for body in [
            "",
            "   \n",
            "<html><body>hello</body></html>",
            "not.an.ip.address",
            "999.1.1.1",
            r#"{"ip": "nope"}"#,
            r#"{"ip": "203.0.113.7""#,
            r#"{"other": "203.0.113.7"}"#,
            "[]",
            "fl=1\nip=\n",
            "\u{0}\u{1}\u{fffd}",
        ] {
            assert_eq!(reported_address(body), None, "{body:?}");
        }
    }
}
