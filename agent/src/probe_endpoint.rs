//! `GET /probe?check=NAME`: run one configured check now and answer in the Prometheus text format with
//! blackbox_exporter's metric names, so multi-target scrape configs (`params: {check: [...]}`, relabelling
//! `__param_check`) and dashboards made for blackbox_exporter work unchanged.
//!
//! Only configured checks run: the request names a check (of any phase), never a target; `target=` is refused.
//! The check runs through the same code as a run ([`crate::engine`]: its units, the verdict engine), once,
//! without dependencies, retries or a settle window. What the agent could not measure (no ICMP privilege) is
//! `probe_success 0` with `gonogo_probe_outcome{outcome="error"} 1`, as blackbox_exporter answers 200 with
//! `probe_success 0`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gonogo_config::Role;
use gonogo_probes::Observations;
use serde::Deserialize;

use crate::api::{ApiError, authorize};
use crate::manager::Manager;
use crate::run::CheckResult;
use crate::verdict::Outcome;

/// Content type of the answer: the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The query of `GET /probe`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeQuery {
    /// The name of a configured check.
    pub check: Option<String>,
    /// Accepted only to be refused with a message that says why: targets come from the config.
    pub target: Option<String>,
}

/// The handler of `GET /probe?check=NAME` (read role).
pub async fn probe(
    State(m): State<Manager>,
    headers: HeaderMap,
    query: Result<Query<ProbeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&m, &headers, Role::Read)?;
    let Query(q) = query?;
    if q.target.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "targets come from the config; name a configured check (/probe?check=NAME)",
        ));
    }
    let Some(name) = q.check.filter(|c| !c.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing check: name a configured check (/probe?check=NAME; see /api/v1/plan)",
        ));
    };
    let (config, probes) = m.loaded();
    let Some(check) = config.checks.iter().find(|c| c.name == name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no check named {name:?} in {}; see /api/v1/plan", config.path.display()),
        ));
    };
    let check = Arc::new(check.clone());
    drop(config);
    let result = crate::engine::run_single(&check, &probes).await;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], encode(&result)).into_response())
}

/// Write `# HELP` and `# TYPE … gauge` for `name`.
fn head(out: &mut String, name: &str, help: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
}

/// Write one sample; `labels` is empty or `{k="v",…}` (values here are fixed strings that need no escaping).
/// Non-finite values are left out: nothing here should produce one.
fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    if value.is_finite() {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// One gauge with a single unlabelled sample.
fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    head(out, name, help);
    sample(out, name, "", value);
}

fn ip_protocol(out: &mut String, ip: Option<std::net::IpAddr>) {
    if let Some(ip) = ip {
        gauge(
            out,
            "probe_ip_protocol",
            "Specifies whether probe ip protocol is IP4 or IP6",
            if ip.is_ipv4() { 4.0 } else { 6.0 },
        );
    }
}

/// The Prometheus text for one check result, blackbox_exporter's names where one exists.
pub fn encode(result: &CheckResult) -> String {
    let mut out = String::with_capacity(1024);
    gauge(
        &mut out,
        "probe_success",
        "Displays whether or not the probe was a success",
        if result.outcome == Outcome::Pass { 1.0 } else { 0.0 },
    );
    gauge(
        &mut out,
        "probe_duration_seconds",
        "Returns how long the probe took to complete in seconds",
        result.duration.as_secs_f64(),
    );
    head(&mut out, "gonogo_probe_outcome", "The check's outcome as the verdict engine judged it (always 1)");
    let _ = writeln!(out, "gonogo_probe_outcome{{outcome=\"{}\"}} 1", result.outcome.as_str());
    match result.main_observations() {
        Some(Observations::Icmp(o)) => {
            if let Some(rtt) = &o.rtt {
                head(&mut out, "probe_icmp_duration_seconds", "Duration of icmp request by phase");
                sample(&mut out, "probe_icmp_duration_seconds", "{phase=\"rtt\"}", rtt.mean.as_secs_f64());
            }
            gauge(&mut out, "gonogo_probe_icmp_loss_ratio", "Echo requests lost, 0 to 1", o.loss);
            ip_protocol(&mut out, o.address);
        }
        Some(Observations::Tcp(o)) => ip_protocol(&mut out, o.address.map(|a| a.ip())),
        Some(Observations::Dns(o)) => {
            gauge(
                &mut out,
                "probe_dns_lookup_time_seconds",
                "Returns the time taken for probe dns lookup in seconds",
                o.lookup_time.as_secs_f64(),
            );
            if o.rcode.is_some() {
                gauge(
                    &mut out,
                    "probe_dns_answer_rrs",
                    "Returns number of entries in the answer resource record list",
                    o.answers.len() as f64,
                );
            }
        }
        Some(Observations::Tls(o)) => {
            if let Some(earliest) = o.chain.iter().map(|c| c.not_after).min() {
                gauge(
                    &mut out,
                    "probe_ssl_earliest_cert_expiry",
                    "Returns last SSL chain expiry in unixtime",
                    earliest as f64,
                );
                if o.chain_verified == Some(true) {
                    gauge(
                        &mut out,
                        "probe_ssl_last_chain_expiry_timestamp_seconds",
                        "Returns last SSL chain expiry in timestamp",
                        earliest as f64,
                    );
                }
            }
            if let Some(version) = &o.version {
                head(&mut out, "probe_tls_version_info", "Returns the TLS version used or NaN when unknown");
                let _ = writeln!(out, "probe_tls_version_info{{version=\"TLS {}\"}} 1", tls_version(version));
            }
            ip_protocol(&mut out, o.address.map(|a| a.ip()));
        }
        Some(Observations::Http(o)) => {
            gauge(&mut out, "probe_http_status_code", "Response HTTP status code", f64::from(o.status.unwrap_or(0)));
            if let Some(headers) = o.time_to_headers {
                head(
                    &mut out,
                    "probe_http_duration_seconds",
                    "Duration of http request by phase, summed over all redirects",
                );
                sample(&mut out, "probe_http_duration_seconds", "{phase=\"processing\"}", headers.as_secs_f64());
                if let Some(total) = o.total_time {
                    let transfer = total.saturating_sub(headers).as_secs_f64();
                    sample(&mut out, "probe_http_duration_seconds", "{phase=\"transfer\"}", transfer);
                }
            }
            gauge(&mut out, "probe_http_redirects", "The number of redirects", f64::from(o.redirects));
            gauge(&mut out, "probe_http_content_length", "Length of http content response", o.body_bytes as f64);
            let https = o.final_url.as_deref().unwrap_or(&result.target).starts_with("https://");
            gauge(
                &mut out,
                "probe_http_ssl",
                "Indicates if SSL was used for the final redirect",
                if https { 1.0 } else { 0.0 },
            );
        }
        Some(Observations::Egress(_) | Observations::Mtu(_)) | None => {}
    }
    out
}

/// `1.3` → `1.3`; anything unexpected is passed through as the probe named it, without characters that would
/// need escaping in a label value.
fn tls_version(v: &str) -> &str {
    if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') { v } else { "unknown" }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gonogo_probes::http::HttpObservations;

    use super::*;

    fn result(outcome: Outcome, observations: Option<Observations>) -> CheckResult {
        CheckResult {
            name: "app".into(),
            kind: "http".into(),
            target: "https://app.example/".into(),
            required: true,
            outcome,
            reasons: Vec::new(),
            expectations: Vec::new(),
            observations,
            duration: Duration::from_millis(25),
            attempts: 1,
            time_to_pass: None,
            parts: Vec::new(),
        }
    }

    #[test]
    fn http_result_has_blackbox_names_with_help_and_type_once() {
        let obs = HttpObservations {
            status: Some(200),
            final_url: Some("https://app.example/".into()),
            redirects: 0,
            headers: Default::default(),
            headers_truncated: false,
            body_bytes: 42,
            body_truncated: false,
            body: String::new(),
            time_to_headers: Some(Duration::from_millis(10)),
            total_time: Some(Duration::from_millis(15)),
            failure: None,
            detail: None,
        };
        let text = encode(&result(Outcome::Pass, Some(Observations::Http(obs))));
        assert!(text.contains("probe_success 1\n"), "{text}");
        assert!(text.contains("probe_duration_seconds 0.025\n"), "{text}");
        assert!(text.contains("gonogo_probe_outcome{outcome=\"pass\"} 1\n"), "{text}");
        assert!(text.contains("probe_http_status_code 200\n"), "{text}");
        assert!(text.contains("probe_http_duration_seconds{phase=\"processing\"} 0.01\n"), "{text}");
        assert!(text.contains("probe_http_duration_seconds{phase=\"transfer\"} 0.005\n"), "{text}");
        assert!(text.contains("probe_http_content_length 42\n"), "{text}");
        assert!(text.contains("probe_http_ssl 1\n"), "{text}");
        assert_eq!(text.matches("# TYPE probe_http_duration_seconds gauge").count(), 1, "{text}");
    }

    #[test]
    fn a_result_without_observations_still_says_success_and_outcome() {
        let text = encode(&result(Outcome::Error, None));
        assert!(text.contains("probe_success 0\n"), "{text}");
        assert!(text.contains("gonogo_probe_outcome{outcome=\"error\"} 1\n"), "{text}");
        assert!(!text.contains("probe_http"), "{text}");
    }
}
