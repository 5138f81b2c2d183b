//! The HTTPS API of `gonogo serve` (DESIGN.md §4): trigger runs, read them, long-poll, cancel, reload, metrics.
//!
//! Every route but `/healthz` needs a bearer token whose role allows it: `read` for GETs, `trigger` to start
//! or cancel runs and reload. Tokens are kept as SHA-256 hashes and compared in constant time. Errors are JSON
//! `{"error": "…"}` with a 4xx that fits. Request bodies are capped and unknown fields refused. No request
//! carries a target: only configured checks ever run.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gonogo_config::Role;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::manager::{Manager, TriggerError};
use crate::report::{ReportFormat, StatusView};
use crate::run::{RunRecord, Trigger};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 16 * 1024;
/// Longest `?wait=` honoured.
pub const MAX_WAIT: Duration = Duration::from_secs(120);
/// Longest Idempotency-Key accepted.
const MAX_KEY_LEN: usize = 200;

/// An API error: status and message, rendered as `{"error": message}` (plus extra fields).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), extra: serde_json::Map::new() }
    }

    fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> ApiError {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("error".to_owned(), self.message.into());
        let mut resp = (self.status, Json(serde_json::Value::Object(body))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gonogo\""));
        }
        resp
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError::new(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, r.body_text())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Equal-length byte strings compared without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// Check the bearer token and that one of its roles is `role`; returns the token's name.
pub fn authorize(manager: &Manager, headers: &HeaderMap, role: Role) -> ApiResult<String> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing bearer token (Authorization: Bearer …)"))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, presented.as_bytes());
    let config = manager.config();
    // Compare against every token, without stopping at the first match, so timing says nothing of which matched.
    let mut found = None;
    for token in &config.tokens {
        if constant_time_eq(digest.as_ref(), &token.sha256) && found.is_none() {
            found = Some(token);
        }
    }
    let token = found.ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown bearer token"))?;
    if token.roles.contains(&role) {
        Ok(token.name.clone())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("token {:?} lacks the {:?} role needed here", token.name, role.as_str()),
        ))
    }
}

/// The API router.
pub fn router(manager: Manager) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/probe", get(crate::probe_endpoint::probe))
        .route("/api/v1/plan", get(plan))
        .route("/api/v1/runs", post(trigger).get(list_runs))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/runs/{id}/cancel", post(cancel))
        .route("/api/v1/runs/{id}/report", get(report))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/gates", get(gates))
        .route("/api/v1/gates/{name}", get(gate))
        .route("/api/v1/decisions", post(decision))
        .route("/api/v1/journal", get(journal))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see /api/v1/plan") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(manager)
}

/// The router of the optional plain `[metrics]` listener: `/metrics` only, no token.
pub fn metrics_router(manager: Manager) -> Router {
    Router::new()
        .route("/metrics", get(|State(m): State<Manager>| async move { metrics_response(&m) }))
        .route("/healthz", get(healthz))
        .with_state(manager)
}

async fn healthz() -> &'static str {
    "ok\n"
}

fn metrics_response(manager: &Manager) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))],
        manager.metrics().encode(),
    )
        .into_response()
}

async fn metrics(State(m): State<Manager>, headers: HeaderMap) -> ApiResult<Response> {
    authorize(&m, &headers, Role::Read)?;
    Ok(metrics_response(&m))
}

async fn plan(State(m): State<Manager>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    authorize(&m, &headers, Role::Read)?;
    let (config, probes) = m.loaded();
    let phases: Vec<serde_json::Value> = config
        .phases
        .values()
        .map(|p| {
            let checks: Vec<serde_json::Value> = config
                .checks_in(&p.name)
                .map(|c| {
                    json!({
                        "name": c.name,
                        "kind": c.spec.kind(),
                        "target": probes.target(c),
                        "required": c.required,
                        "timeout_ms": c.timeout.as_millis() as u64,
                    })
                })
                .collect();
            json!({
                "name": p.name,
                "description": p.description,
                "every_s": p.every.map(|d| d.as_secs()),
                "checks": checks,
            })
        })
        .collect();
    Ok(Json(json!({
        "site": config.site.name,
        "ods_code": config.site.ods_code,
        "phases": phases,
        "active": m.active().into_iter().map(|(phase, id)| json!({"phase": phase, "id": id})).collect::<Vec<_>>(),
    })))
}

/// `POST /api/v1/runs` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    pub phase: String,
    pub change_ref: Option<String>,
    /// Compare with this run instead of the latest finished run of the phase's baseline phase.
    pub baseline_run: Option<String>,
}

/// `202` body.
#[derive(Debug, Serialize)]
pub struct TriggerResponse {
    pub id: String,
    pub status: String,
    pub url: String,
    /// False when an Idempotency-Key returned an earlier run.
    pub created: bool,
}

async fn trigger(
    State(m): State<Manager>,
    headers: HeaderMap,
    body: Result<Json<TriggerRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<TriggerResponse>)> {
    let who = authorize(&m, &headers, Role::Trigger)?;
    let Json(req) = body?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => Some(format!("{who}\u{0}{k}")),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
                ));
            }
        },
    };
    if req.change_ref.as_ref().is_some_and(|c| c.len() > 200 || c.chars().any(char::is_control)) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "change_ref: at most 200 printable characters"));
    }
    let trigger = Trigger { source: "api".to_owned(), by: Some(who) };
    match m.trigger(&req.phase, req.change_ref, key, trigger, req.baseline_run) {
        Ok(t) => Ok((
            StatusCode::ACCEPTED,
            Json(TriggerResponse {
                url: format!("/api/v1/runs/{}", t.id),
                id: t.id,
                status: "queued".into(),
                created: t.created,
            }),
        )),
        Err(TriggerError::Conflict { phase, running }) => {
            Err(ApiError::new(StatusCode::CONFLICT, format!("a run of phase {phase:?} is already in progress"))
                .with("running", running))
        }
        Err(e @ (TriggerError::Plan(_) | TriggerError::Baseline(_))) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
        }
        Err(e @ TriggerError::ShuttingDown) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        Err(e @ TriggerError::Store(_)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    phase: Option<String>,
    limit: Option<usize>,
}

/// One line of `GET /api/v1/runs`.
#[derive(Debug, Serialize)]
struct RunSummary<'a> {
    id: &'a str,
    phase: &'a str,
    status: &'a str,
    verdict: Option<&'a str>,
    created_at: &'a str,
    finished_at: Option<&'a str>,
    trigger: &'a Trigger,
    change_ref: Option<&'a str>,
    url: String,
}

fn summary(r: &RunRecord) -> RunSummary<'_> {
    RunSummary {
        id: &r.id,
        phase: &r.phase,
        status: r.status.as_str(),
        verdict: r.verdict.map(|v| v.as_str()),
        created_at: &r.created_at,
        finished_at: r.finished_at.as_deref(),
        trigger: &r.trigger,
        change_ref: r.change_ref.as_deref(),
        url: format!("/api/v1/runs/{}", r.id),
    }
}

async fn list_runs(
    State(m): State<Manager>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize(&m, &headers, Role::Read)?;
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(20).clamp(1, 1000);
    let runs = m
        .store()
        .list(q.phase.as_deref(), limit)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "runs": runs.iter().map(summary).collect::<Vec<_>>() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetQuery {
    wait: Option<String>,
}

async fn get_run(
    State(m): State<Manager>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<GetQuery>, QueryRejection>,
) -> ApiResult<Json<RunRecord>> {
    authorize(&m, &headers, Role::Read)?;
    let Query(q) = query?;
    if let Some(wait) = q.wait.as_deref() {
        let d = humantime::parse_duration(wait).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("wait={wait:?}: {e} (use a duration such as 30s)"))
        })?;
        m.wait(&id, d.min(MAX_WAIT)).await;
    }
    load(&m, &id).map(Json)
}

fn load(m: &Manager, id: &str) -> ApiResult<RunRecord> {
    match m.store().load(id) {
        Ok(Some(run)) => Ok(run),
        Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no run {id:?}"))),
        Err(crate::store::StoreError::BadId(_)) => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no run {id:?}"))),
        Err(e) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    format: Option<String>,
}

/// Headers of a server-rendered page or report: its type, no sniffing, and for HTML a policy that allows
/// nothing but its own inline styles and images (no script, no fetch, no frames), whatever a name holds.
fn document_headers(content_type: &'static str) -> [(header::HeaderName, HeaderValue); 3] {
    let csp = if content_type.starts_with("text/html") {
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    } else {
        "default-src 'none'; sandbox"
    };
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp)),
    ]
}

/// `GET /api/v1/runs/{id}/report?format=html|md|json|junit|csv` (default html).
async fn report(
    State(m): State<Manager>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> ApiResult<Response> {
    authorize(&m, &headers, Role::Read)?;
    let Query(q) = query?;
    let format = match q.format.as_deref() {
        None => ReportFormat::Html,
        Some(name) => ReportFormat::parse(name).ok_or_else(|| {
            let known: Vec<&str> = ReportFormat::ALL.iter().map(|f| f.as_str()).collect();
            ApiError::new(StatusCode::BAD_REQUEST, format!("format={name:?}: use one of {}", known.join(", ")))
        })?,
    };
    let run = load(&m, &id)?;
    let decisions = crate::gates::decisions_for_phase(&m.config(), &run.phase);
    let body = crate::report::render(&run, format, &decisions, crate::engine::unix_now());
    // The id passed the store's check (letters, digits, '-', '_', '.'), so it is safe in a header.
    let disposition = if format == ReportFormat::Csv { "attachment" } else { "inline" };
    let disposition = HeaderValue::from_str(&format!("{disposition}; filename=\"{id}.{}\"", format.extension()))
        .unwrap_or_else(|_| HeaderValue::from_static("inline"));
    let mut resp = (document_headers(format.content_type()), body).into_response();
    resp.headers_mut().insert(header::CONTENT_DISPOSITION, disposition);
    Ok(resp)
}

/// `GET /`: the status page (read role), server-rendered HTML without JavaScript.
async fn status_page(State(m): State<Manager>, headers: HeaderMap) -> ApiResult<Response> {
    authorize(&m, &headers, Role::Read)?;
    let config = m.config();
    let view = StatusView::collect(&config, m.store(), &m.active(), 20)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let now = crate::engine::unix_now();
    let gates = crate::gates::evaluate_all(&m.config(), m.store(), now);
    let body = crate::report::status_page(&view, &gates, now);
    Ok((document_headers(ReportFormat::Html.content_type()), body).into_response())
}

async fn cancel(
    State(m): State<Manager>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    authorize(&m, &headers, Role::Trigger)?;
    if m.cancel(&id) {
        return Ok((StatusCode::ACCEPTED, Json(json!({ "id": id, "status": "cancelling" }))));
    }
    let run = load(&m, &id)?;
    Err(ApiError::new(StatusCode::CONFLICT, format!("run {id} is {} and cannot be cancelled", run.status))
        .with("status", run.status.as_str()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/v1/journal?after=SEQ&limit=N` (read role): entries with seq > SEQ, oldest first, at most N
/// (default 100, at most 1000); without `after`, the newest N. `more` is true when entries follow the last one.
async fn journal(
    State(m): State<Manager>,
    headers: HeaderMap,
    query: Result<Query<JournalQuery>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    authorize(&m, &headers, Role::Read)?;
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let journal =
        m.journal().cloned().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "this agent keeps no journal"))?;
    let read = tokio::task::spawn_blocking(move || journal.entries(q.after, limit))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the journal: {e}")))?;
    let (entries, more) = read.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "entries": entries, "more": more })))
}

async fn reload(State(m): State<Manager>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    authorize(&m, &headers, Role::Trigger)?;
    match m.reload() {
        Ok(()) => Ok(Json(json!({ "reloaded": true }))),
        Err(problems) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the new config is invalid; the previous config stays in force",
        )
        .with("problems", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())),
    }
}

async fn gates(State(m): State<Manager>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    authorize(&m, &headers, Role::Read)?;
    let config = m.config();
    let now = crate::engine::unix_now();
    let all: Vec<crate::gates::GateEvaluation> =
        config.gates.keys().filter_map(|g| crate::gates::evaluate_in(&config, m.store(), g, now).ok()).collect();
    Ok(Json(json!({ "gates": all })))
}

async fn gate(
    State(m): State<Manager>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<crate::gates::GateEvaluation>> {
    authorize(&m, &headers, Role::Read)?;
    crate::gates::evaluate_in(&m.config(), m.store(), &name, crate::engine::unix_now())
        .map(Json)
        .map_err(|msg| ApiError::new(StatusCode::NOT_FOUND, msg))
}

async fn decision(
    State(m): State<Manager>,
    headers: HeaderMap,
    body: Result<Json<crate::gates::DecisionRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    use crate::gates::DecisionError;
    let who = authorize(&m, &headers, Role::Signoff)?;
    let Json(req) = body?;
    let eval = crate::gates::evaluate_in(&m.config(), m.store(), &req.gate, crate::engine::unix_now())
        .map_err(|msg| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg))?;
    let at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let decision = crate::gates::decide(&req, &eval, at, format!("api (token {who})")).map_err(|e| match e {
        DecisionError::Invalid(msg) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg),
        e @ DecisionError::Stale(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()).with("gate", json!(eval)),
        e @ DecisionError::NotGo { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()).with("gate", json!(eval)),
    })?;
    let journal = m.journal().ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the evidence journal is not available; see the agent's log")
    })?;
    let value =
        serde_json::to_value(&decision).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let entry = journal
        .append(crate::journal::Kind::Decision, value)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the decision was not recorded: {e}")))?;
    Ok((StatusCode::CREATED, Json(json!({ "decision": decision, "journal_seq": entry.seq }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
