//! JSON Schema (draft 2020-12) of the config file, for editors (Taplo / Even Better TOML, VS Code).
//!
//! [`json_schema`] builds it from the [`KeyInfo`] tables of [`crate::raw`], so a key added there appears here
//! with its "expected …" text as its description: each table is closed (`additionalProperties: false`, as
//! `deny_unknown_fields`), and a check key, `expect` key or `compare` key that does not apply to the check's
//! kind is forbidden by an `if kind = … then` rule per kind. The value's JSON type is read from the key's
//! "expected …" text; enums, patterns and numeric ranges come from [`crate::validate`]'s constants.
//!
//! The schema is a convenience for editors, not the authority: it accepts a superset of what the agent accepts
//! (cross-key rules, duration bounds and address syntax are `gonogo check-config`'s job), and never rejects a
//! value the agent accepts. The committed copy, deploy/schema/gonogo.schema.json, is kept equal to this by a
//! test (`GONOGO_WRITE_SCHEMA=1 cargo test -p gonogo-config schema` rewrites it).

use serde_json::{Map, Value, json};

use crate::model::Role;
use crate::raw::{
    API_KEYS, CHECK_KEYS, COMPARE_KEYS, DEFAULTS_KEYS, EVIDENCE_KEYS, EXPECT_KEYS, GATE_KEYS, KINDS, KeyInfo,
    METRICS_KEYS, PHASE_KEYS, SITE_KEYS, STORAGE_KEYS, TOKEN_KEYS, TOP_KEYS,
};
use crate::validate::{
    MAX_BODY_LIMIT, MAX_CONCURRENCY, MAX_COUNT, MAX_ICMP_SIZE, MAX_KEEP_RUNS, MAX_MTU, MAX_REDIRECTS, MAX_RETRIES,
    MIN_MTU, RCODES, RECORD_TYPES,
};

/// The `$schema` of the document: JSON Schema draft 2020-12.
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Units humantime accepts, longest first within each family (so the pattern reads naturally).
const UNITS: &str = "nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|\
                     hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y";

/// A check, phase, gate or token name: `^[a-z0-9][a-z0-9_-]*$` (as [`crate::validate::is_valid_name`]).
const NAME: &str = "^[a-z0-9][a-z0-9_-]*$";

/// The JSON Schema of gonogo.toml (as TOML read into JSON), generated from the key tables.
pub fn json_schema() -> Value {
    let mut root = table("gonogo configuration", TOP_KEYS, &[], |key| match key.name {
        "site" => table("[site]", SITE_KEYS, &[], |k| value("site", k)),
        "defaults" => table("[defaults]", DEFAULTS_KEYS, &[], |k| value("defaults", k)),
        "phase" => {
            named("[phase.NAME] tables, by phase name", table("[phase.NAME]", PHASE_KEYS, &[], |k| value("phase", k)))
        }
        "check" => array(check()),
        "api" => table("[api]", API_KEYS, &["listen"], |k| value("api", k)),
        "token" => array(table("[[token]]", TOKEN_KEYS, &["name", "sha256", "roles"], |k| value("token", k))),
        "storage" => table("[storage]", STORAGE_KEYS, &[], |k| value("storage", k)),
        "metrics" => table("[metrics]", METRICS_KEYS, &["listen"], |k| value("metrics", k)),
        "gate" => named(
            "[gate.NAME] tables, by gate name",
            table("[gate.NAME]", GATE_KEYS, &["requires"], |k| value("gate", k)),
        ),
        "evidence" => table("[evidence]", EVIDENCE_KEYS, &[], |k| value("evidence", k)),
        _ => json!({}),
    });
    if let Value::Object(root) = &mut root {
        let mut head = Map::new();
        head.insert("$schema".into(), json!(DRAFT));
        head.insert("title".into(), json!("gonogo.toml"));
        head.insert(
            "description".into(),
            json!(
                "gonogo configuration: [site], [defaults], [phase.NAME], [[check]], [api], [[token]], [storage], \
                 [metrics], [gate.NAME], [evidence]. Generated from the config crate's key tables; \
                 `gonogo check-config` is the authority."
            ),
        );
        head.extend(std::mem::take(root).into_iter().filter(|(k, _)| k != "description"));
        *root = head;
    }
    root
}

/// A closed table (`additionalProperties: false`) of `keys`, each described by its "expected …" text, its value
/// schema given by `schema_of`.
fn table(what: &str, keys: &[KeyInfo], required: &[&str], schema_of: impl Fn(&KeyInfo) -> Value) -> Value {
    let mut properties = Map::new();
    for key in keys {
        let mut schema = schema_of(key);
        if let Value::Object(map) = &mut schema {
            let mut described = Map::new();
            described.insert("description".into(), json!(describe(key)));
            described.extend(std::mem::take(map));
            *map = described;
        }
        properties.insert(key.name.to_owned(), schema);
    }
    let mut out = Map::new();
    out.insert("description".into(), json!(what));
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), Value::Object(properties));
    out.insert("additionalProperties".into(), json!(false));
    if !required.is_empty() {
        out.insert("required".into(), json!(required));
    }
    Value::Object(out)
}

/// "Expected …" text of a key, with the kinds it applies to.
fn describe(key: &KeyInfo) -> String {
    let mut text = format!("{}{}", upper_first(key.expected), if key.expected.ends_with('.') { "" } else { "." });
    if !key.kinds.is_empty() {
        text.push_str(&format!(" Kinds: {}.", key.kinds.join(", ")));
    }
    text
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A table of `item` tables keyed by name (`[phase.NAME]`, `[gate.NAME]`).
fn named(what: &str, item: Value) -> Value {
    json!({ "description": what, "type": "object", "propertyNames": { "pattern": NAME }, "additionalProperties": item })
}

/// An array of tables (`[[check]]`, `[[token]]`).
fn array(item: Value) -> Value {
    json!({ "type": "array", "items": item })
}

/// `[[check]]`: every key of every kind, then one `if kind = K then …` per kind forbidding the keys (and the
/// `expect` and `compare` keys) that do not apply to K and requiring the ones K needs.
fn check() -> Value {
    let mut check = table("[[check]]", CHECK_KEYS, &["name", "kind", "phases"], |key| match key.name {
        "expect" => table("expect: the check's expectations", EXPECT_KEYS, &[], |k| value("expect", k)),
        "compare" => table("compare: tolerances against the baseline run", COMPARE_KEYS, &[], |k| value("compare", k)),
        _ => value("check", key),
    });
    let rules: Vec<Value> = KINDS.iter().map(|kind| kind_rule(kind)).collect();
    if let Value::Object(map) = &mut check {
        map.insert("allOf".into(), Value::Array(rules));
    }
    check
}

/// The keys a check of `kind` must have besides name, kind and phases.
fn required_for(kind: &str) -> &'static [&'static str] {
    match kind {
        "icmp" | "tcp" | "tls" | "mtu" => &["target"],
        "dns" => &["query"],
        "http" | "egress" => &["url"],
        _ => &[],
    }
}

fn kind_rule(kind: &str) -> Value {
    let forbidden = |keys: &[KeyInfo]| -> Map<String, Value> {
        keys.iter().filter(|k| !k.applies_to(kind)).map(|k| (k.name.to_owned(), json!(false))).collect()
    };
    let mut properties = forbidden(CHECK_KEYS);
    if !properties.contains_key("expect") {
        properties.insert("expect".into(), json!({ "properties": forbidden(EXPECT_KEYS) }));
    }
    if !properties.contains_key("compare") {
        properties.insert("compare".into(), json!({ "properties": forbidden(COMPARE_KEYS) }));
    }
    let mut then = Map::new();
    then.insert("properties".into(), Value::Object(properties));
    let required = required_for(kind);
    if !required.is_empty() {
        then.insert("required".into(), json!(required));
    }
    json!({
        "if": { "properties": { "kind": { "const": kind } }, "required": ["kind"] },
        "then": Value::Object(then),
    })
}

/// `^…$` of one humantime duration, such as "2s", "1m30s", "1.5h" or "2 min 5 s".
fn duration_pattern() -> String {
    format!("^\\s*(\\d+(\\.\\d+)?\\s*({UNITS})\\s*)+$")
}

fn duration() -> Value {
    json!({ "type": "string", "pattern": duration_pattern() })
}

/// Both cases of each of `items` (for values the agent reads case-insensitively), `items`' own case first.
fn any_case(items: &[&str]) -> Value {
    let mut out: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    for item in items {
        for other in [item.to_ascii_lowercase(), item.to_ascii_uppercase()] {
            if !out.contains(&other) {
                out.push(other);
            }
        }
    }
    json!(out)
}

fn int(min: i64, max: i64) -> Value {
    json!({ "type": "integer", "minimum": min, "maximum": max })
}

fn names() -> Value {
    json!({ "type": "array", "items": { "type": "string", "pattern": NAME } })
}

/// The value schema of `key` in `table` (`check`, `expect`, `compare`, `site`, …): the type from its "expected
/// …" text, then the rules of [`crate::validate`] that JSON Schema can say.
fn value(table: &str, key: &KeyInfo) -> Value {
    match (table, key.name) {
        // Names and references to names.
        ("check" | "token", "name") => json!({ "type": "string", "pattern": NAME }),
        ("check", "phases" | "depends_on") | ("gate", "requires") => names(),
        ("phase", "baseline") => json!({ "type": "string", "pattern": NAME }),
        ("check", "kind") => json!({ "type": "string", "enum": KINDS }),
        // Enums.
        ("check", "record") => json!({ "type": "string", "enum": any_case(&RECORD_TYPES) }),
        ("check", "transport") => json!({ "type": "string", "enum": any_case(&["udp", "tcp"]) }),
        ("check", "ip") => json!({ "type": "string", "enum": any_case(&["any", "4", "6", "both", "all"]) }),
        ("check", "min_version" | "max_version") | ("expect", "min_version") => {
            json!({ "type": "string", "enum": ["1.2", "1.3"] })
        }
        ("expect", "rcode") => json!({ "type": "string", "enum": any_case(&RCODES) }),
        ("token", "roles") => {
            let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            json!({ "type": "array", "minItems": 1, "uniqueItems": true, "items": { "type": "string", "enum": roles } })
        }
        // Patterns.
        ("site", "ods_code") => json!({ "type": "string", "pattern": "^[A-Za-z0-9]{1,12}$" }),
        ("token", "sha256") => json!({ "type": "string", "pattern": "^[0-9A-Fa-f]{64}$" }),
        ("expect", "fingerprint_sha256") => {
            json!({ "type": "string", "pattern": "^\\s*:*([0-9A-Fa-f]:*){64}\\s*$" })
        }
        ("check", "method") => json!({ "type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }),
        ("compare", "rtt_p95_max_increase") => json!({
            "type": "string",
            "pattern": format!("{}|^\\s*\\d+(\\.\\d+)?\\s*%\\s*$", duration_pattern()),
        }),
        ("expect", "status") => json!({
            "type": "array",
            "items": {
                "type": ["integer", "string"],
                "minimum": 100,
                "maximum": 599,
                "pattern": "^\\s*([1-5][xX][xX]|\\d{3}|\\d{3}\\s*-\\s*\\d{3})\\s*$",
            },
        }),
        // Ranges.
        ("defaults", "concurrency") => int(1, MAX_CONCURRENCY),
        ("storage", "keep_runs") => int(1, MAX_KEEP_RUNS),
        ("check", "retries") => int(0, MAX_RETRIES),
        ("check", "count") => int(1, MAX_COUNT),
        ("check", "size") => int(0, MAX_ICMP_SIZE),
        ("check", "ttl") => int(1, 255),
        ("check", "min" | "max") | ("expect", "path_mtu_min") => int(MIN_MTU, MAX_MTU),
        ("check", "max_redirects") => int(0, MAX_REDIRECTS),
        ("check", "body_limit") => int(1, MAX_BODY_LIMIT),
        ("expect", "min_answers") => int(0, 10_000),
        ("expect", "valid_days_min" | "chain_valid_days_min") => int(0, i64::from(u32::MAX)),
        ("expect", "loss_max") | ("compare", "loss_max_increase") => {
            json!({ "type": "number", "minimum": 0.0, "maximum": 1.0 })
        }
        _ => from_expected(key.expected),
    }
}

/// The value schema read from a key's "expected …" text; `{}` (anything) when the text says nothing known, which
/// a test rejects.
fn from_expected(expected: &str) -> Value {
    if expected.starts_with("a duration") {
        duration()
    } else if expected == "true or false" {
        json!({ "type": "boolean" })
    } else if expected.starts_with("a whole number") {
        json!({ "type": "integer" })
    } else if expected.starts_with("a number") {
        json!({ "type": "number" })
    } else if expected.starts_with("an array") {
        json!({ "type": "array", "items": { "type": "string" } })
    } else if expected.starts_with("a table of") {
        json!({ "type": "object", "additionalProperties": { "type": "string" } })
    } else if expected.contains("string") {
        json!({ "type": "string" })
    } else {
        json!({})
    }
}
