//! gonogo-config integration tests: one binary. Index, in file order:
//!
//! - helpers: `dedent`, `parse`, `ok`, `problems`, `one`, check builders (`icmp`, `tcp`, `dns`, `tls`, `http`)
//! - example configs (loopback.toml, site.toml, hscn-site.toml): `examples_parse`,
//!   `examples_reject_unknown_key_in_every_table` (every table: phases, gates, [evidence], each check's expect
//!   and compare, …)
//! - collecting: `many_problems_at_once`, `syntax_error_has_position`, `wrong_type_names_key_and_line`,
//!   `problem_display_format`, `unreadable_file_is_one_problem_without_position`
//! - structure: `top_level_unknown_key`, `check_must_be_array_of_tables`, `inline_check_array`,
//!   `site_rules`, `defaults_rules`, `defaults_applied`
//! - names and phases: `check_names`, `phase_rules`
//! - kinds: `kind_missing_or_unknown`, `keys_must_apply_to_kind`, `expect_keys_must_apply_to_kind`,
//!   `unknown_key_lists_keys_and_suggests`, `required_keys_reported_at_header`
//! - values: `durations`, `timeouts`, `icmp_rules`, `tcp_and_tls_targets`, `dns_rules`, `tls_rules`,
//!   `http_rules`, `http_expect_rules`
//! - gonogo serve: `serve_tables_optional`, `api_listen_rules`, `api_plain_http_rules`, `api_tls_rules`,
//!   `api_relative_paths`, `token_rules`, `token_sha256_rules`, `token_roles_rules`, `storage_rules`,
//!   `metrics_rules`, `phase_every_rules`, `serve_problems_all_reported`
//! - probe depth (helpers `mtu`, `egress`, `place`, `col`, `last_col`, `dep_check`):
//!   `every_kind_takes_the_common_keys`, `retries_rules`, `depends_on_rules`, `ip_rules`, `source_rules`,
//!   `phase_settle_rules`, `icmp_depth_rules`, `tcp_send_and_banner_rules`, `mtu_rules`, `dns_servers_rules`,
//!   `dns_answer_rules`, `tls_depth_rules`, `http_depth_rules`, `http_status_ranges`,
//!   `http_header_and_body_expectations`, `egress_rules`, `probe_depth_problems_all_reported`
//! - migration workflow (helpers `in_phases`, `compared`): `phase_baseline_defaults`, `phase_baseline_rules`,
//!   `compare_values`, `compare_value_rules`, `compare_keys_must_apply_to_kind`, `compare_needs_a_baseline`,
//!   `block_preexisting_rules`, `gate_rules`, `gate_requires_rules`, `gate_max_age_rules`, `evidence_rules`,
//!   `increase_display_and_ceiling`, `workflow_problems_all_reported`
//! - JSON Schema (helpers `schema_errors`, a validator for the keywords the schema emits, and `as_json`):
//!   `schema_file_is_generated` (`GONOGO_WRITE_SCHEMA=1 cargo test -p gonogo-config schema` rewrites
//!   deploy/schema/gonogo.schema.json), `schema_describes_every_key_with_a_type`, `schema_accepts_the_examples`,
//!   `schema_accepts_what_the_code_accepts`, `schema_refuses_what_the_code_refuses`

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use gonogo_config::{
    CheckSpec, Compare, Config, DEFAULT_GATE_MAX_AGE, Increase, IpMode, Problem, Problems, Proxy, Role,
};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

// ---------------------------------------------------------------------------------------------------------
// Helpers

/// Strip the leading newline and the common indentation of a literal.
fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    text.lines().map(|l| l.get(indent..).unwrap_or("").to_owned() + "\n").collect()
}

fn parse(text: &str) -> Result<Config, Problems> {
    gonogo_config::parse(text, Path::new("test.toml"))
}

#[track_caller]
fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(config) => config,
        Err(problems) => panic!("expected no problems, got:\n{problems}\n--- in:\n{text}"),
    }
}

#[track_caller]
fn problems(text: &str) -> Vec<Problem> {
    match parse(text) {
        Ok(_) => panic!("expected problems, got none in:\n{text}"),
        Err(problems) => problems.into_iter().collect(),
    }
}

/// Exactly one problem, whose message contains every fragment.
#[track_caller]
fn one(text: &str, fragments: &[&str]) -> Problem {
    let all = problems(text);
    assert_eq!(all.len(), 1, "expected one problem, got:\n{}", Problems::from(all.clone()));
    let p = all.into_iter().next().expect("one problem");
    for f in fragments {
        assert!(p.message.contains(f), "message {:?} lacks {f:?}", p.message);
    }
    p
}

/// A check named "c" of `kind` in phase commissioning with `lines` appended (one key per line).
fn check(kind: &str, required: &str, lines: &str) -> String {
    let mut text = format!("[[check]]\nname = \"c\"\nkind = \"{kind}\"\nphases = [\"commissioning\"]\n{required}\n");
    for line in lines.lines() {
        text.push_str(line.trim());
        text.push('\n');
    }
    text
}
fn icmp(lines: &str) -> String {
    check("icmp", "target = \"10.0.0.1\"", lines)
}
fn tcp(lines: &str) -> String {
    check("tcp", "target = \"10.0.0.1:22\"", lines)
}
fn dns(lines: &str) -> String {
    check("dns", "query = \"nww.nhs.uk\"", lines)
}
fn tls(lines: &str) -> String {
    check("tls", "target = \"app.example:443\"", lines)
}
fn http(lines: &str) -> String {
    check("http", "url = \"https://app.example/health\"", lines)
}

fn spec(config: &Config) -> &CheckSpec {
    &config.checks[0].spec
}

// ---------------------------------------------------------------------------------------------------------
// Example configs

fn example_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no example configs in {}", dir.display());
    files
}

#[test]
fn examples_parse() {
    for file in example_files() {
        let config = gonogo_config::load(&file).unwrap_or_else(|p| panic!("{}:\n{p}", file.display()));
        assert!(!config.checks.is_empty(), "{}: no checks", file.display());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let loopback = gonogo_config::load(&dir.join("loopback.toml")).expect("loopback.toml");
    let required: Vec<_> = loopback.checks.iter().filter(|c| c.required).map(|c| c.name.as_str()).collect();
    assert_eq!(required, ["loopback-v4"], "the loopback plan must need nothing beyond 127.0.0.1");
    assert!(loopback.api.is_none() && loopback.tokens.is_empty() && loopback.metrics.is_none());
    assert_eq!(loopback.storage.state_dir, Path::new("/var/lib/gonogo"), "loopback.toml keeps the default");
    let site = gonogo_config::load(&dir.join("site.toml")).expect("site.toml");
    assert!(site.checks_in("post-migration").count() >= 5);
    assert!(site.checks.iter().any(|c| !c.required), "site.toml shows an advisory check");
    // site.toml shows every table of gonogo serve.
    let api = site.api.as_ref().expect("site.toml has [api]");
    assert_eq!(api.listen, "0.0.0.0:9443".parse().expect("addr"));
    let tls = api.tls.as_ref().expect("site.toml serves HTTPS");
    assert!(tls.client_ca.is_some(), "site.toml shows mutual TLS");
    assert!(!api.insecure);
    let tokens: Vec<_> = site.tokens.iter().map(|t| (t.name.as_str(), t.roles.clone())).collect();
    assert_eq!(
        tokens,
        [("cnsp-noc", vec![Role::Read, Role::Trigger]), ("site-change-lead", vec![Role::Read, Role::Signoff])]
    );
    // The comments say which example text each hash is of: printf %s example-noc-token | sha256sum.
    assert_eq!(site.tokens[0].sha256[..4], [0xd7, 0xed, 0xd0, 0x8e]);
    assert_eq!(site.tokens[1].sha256[..4], [0xfd, 0xdf, 0x60, 0x0c]);
    assert_eq!((site.storage.state_dir.as_path(), site.storage.keep_runs), (Path::new("/var/lib/gonogo"), 500));
    assert_eq!(site.metrics.as_ref().map(|m| m.listen), Some("127.0.0.1:9144".parse().expect("addr")));
    assert_eq!(site.phases["pre-migration"].every, Some(Duration::from_secs(15 * 60)));
    // site.toml keeps the v1 form `server = "…"` of a dns check: it still reads, as one server.
    let CheckSpec::Dns(d) = &site.checks.iter().find(|c| c.name == "hscn-dns-1-udp").expect("check").spec else {
        panic!("dns")
    };
    assert_eq!(d.servers, ["155.231.231.1:53".parse().expect("addr")]);

    // hscn-site.toml shows the probe-depth keys.
    let hscn = gonogo_config::load(&dir.join("hscn-site.toml")).expect("hscn-site.toml");
    let find = |name: &str| {
        hscn.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("hscn-site.toml has no check {name}"))
    };
    assert_eq!(hscn.phases["post-migration"].settle, Some(Duration::from_secs(120)));
    let resolvers: Vec<std::net::SocketAddr> =
        ["155.231.231.1:53", "155.231.231.2:53"].iter().map(|a| a.parse().expect("addr")).collect();
    for (name, transport) in
        [("hscn-dns-udp", "udp"), ("hscn-dns-tcp", "tcp"), ("test-port-dns-udp", "udp"), ("test-port-dns-tcp", "tcp")]
    {
        let CheckSpec::Dns(d) = &find(name).spec else { panic!("{name}: dns") };
        assert_eq!((d.servers.as_slice(), d.transport.as_str()), (resolvers.as_slice(), transport), "{name}");
    }
    let test_port: std::net::IpAddr = "10.120.4.2".parse().expect("ip");
    let sourced: Vec<&str> =
        hscn.checks.iter().filter(|c| c.source == Some(test_port)).map(|c| c.name.as_str()).collect();
    assert_eq!(sourced, ["test-port-router", "test-port-dns-udp", "test-port-dns-tcp"]);
    assert!(hscn.checks.iter().filter(|c| c.source.is_some()).all(|c| c.phases == ["commissioning"]));
    let CheckSpec::Icmp(router) = &find("test-port-router").spec else { panic!("icmp") };
    assert!(router.dont_fragment && router.ttl == Some(1) && router.size == 1472);
    let CheckSpec::Dns(split) = &find("nww-split-horizon").spec else { panic!("dns") };
    assert_eq!((split.query.as_str(), split.record.as_str()), ("nww.nhs.uk", "A"));
    assert!(split.expect.answers_in.contains(&"155.231.0.0/16".parse().expect("net")));
    for name in ["hscn-resolver-1-ping", "hscn-resolver-2-ping"] {
        let CheckSpec::Icmp(i) = &find(name).spec else { panic!("icmp") };
        assert_eq!(i.fallback_tcp.as_ref().map(|(h, p)| (h.as_str(), *p)), Some((i.target.as_str(), 53)), "{name}");
    }
    for name in ["app-dns", "app-tcp", "app-tls", "app-health"] {
        let check = find(name);
        assert!(!check.depends_on.is_empty(), "{name} depends on DNS");
        assert!(check.phases.iter().all(|p| p != "commissioning"), "{name}");
    }
    assert_eq!(find("app-dns").depends_on, ["hscn-dns-udp"]);
    assert_eq!(find("hscn-dns-udp").retries, 2);
    let CheckSpec::Http(health) = &find("app-health").spec else { panic!("http") };
    assert_eq!(health.expect.status, [(200, 299)]);
    let CheckSpec::Egress(egress) = &find("site-egress").spec else { panic!("egress") };
    assert_eq!(egress.expect.egress_in, ["192.0.2.0/28".parse::<ipnet::IpNet>().expect("net")]);
    let CheckSpec::Mtu(mtu) = &find("hscn-path-mtu").spec else { panic!("mtu") };
    assert_eq!((mtu.min, mtu.max, mtu.expect.path_mtu_min), (576, Some(1500), Some(1500)));
    let gone = find("legacy-tn-gateway-gone");
    assert!(gone.expect_failure && gone.phases == ["post-migration"]);

    // hscn-site.toml shows the migration workflow: baselines (default and set), compare, gates, [evidence].
    let baselines: Vec<(&str, Option<&str>)> =
        hscn.phases.values().map(|p| (p.name.as_str(), p.baseline.as_deref())).collect();
    assert_eq!(
        baselines,
        [
            ("commissioning", None),
            ("post-migration", Some("pre-migration")),
            ("pre-migration", None),
            ("regression", Some("post-migration")),
            ("rollback-verify", Some("pre-migration")),
        ]
    );
    let gates: Vec<(&str, Vec<&str>, Duration)> = hscn
        .gates
        .values()
        .map(|g| (g.name.as_str(), g.requires.iter().map(String::as_str).collect(), g.max_age))
        .collect();
    let four_hours = Duration::from_secs(4 * 3600);
    assert_eq!(
        gates,
        [
            ("go-live", vec!["commissioning", "pre-migration"], four_hours),
            ("migration-complete", vec!["post-migration", "regression"], four_hours),
        ]
    );
    assert!(hscn.gates.values().all(|g| g.description.is_some()));
    assert_eq!(hscn.evidence.signing_key, None, "the signing key is commented out");
    let c = &find("hscn-dns-udp").compare;
    assert!(c.answers_unchanged && c.rtt_p95_max_increase.is_none());
    let c = &find("hscn-resolver-1-ping").compare;
    assert_eq!(
        (c.rtt_p95_max_increase, c.loss_max_increase),
        (Some(Increase::Absolute(Duration::from_millis(20))), Some(0.2))
    );
    assert_eq!(find("app-tcp").compare.rtt_p95_max_increase, Some(Increase::Percent(25.0)));
    assert!(find("app-tls").compare.cert_unchanged);
    assert!(find("app-health").compare.status_unchanged);
    let blocking: Vec<&str> = hscn.checks.iter().filter(|c| c.block_preexisting).map(|c| c.name.as_str()).collect();
    assert_eq!(blocking, ["app-health"]);
    // Every compared check also runs in pre-migration, the baseline of post-migration.
    let compared: Vec<&str> = hscn.checks.iter().filter(|c| !c.compare.is_empty()).map(|c| c.name.as_str()).collect();
    assert_eq!(compared, ["hscn-dns-udp", "hscn-resolver-1-ping", "app-tcp", "app-tls", "app-health"]);
    for name in compared {
        assert!(find(name).phases.iter().any(|p| p == "pre-migration"), "{name}");
    }

    // site.toml, lightly: the default baseline, a gate, two checks with compare.
    assert_eq!(site.phases["post-migration"].baseline.as_deref(), Some("pre-migration"));
    assert_eq!(site.gates["go-live"].requires, ["commissioning", "pre-migration"]);
    let gateway = site.checks.iter().find(|c| c.name == "gateway-ping").expect("gateway-ping");
    assert_eq!(
        (gateway.compare.rtt_p95_max_increase, gateway.compare.loss_max_increase),
        (Some(Increase::Percent(25.0)), Some(0.05))
    );
    assert!(site.checks.iter().find(|c| c.name == "app-health").expect("app-health").compare.status_unchanged);
    assert!(loopback.gates.is_empty() && loopback.evidence.signing_key.is_none());
}

/// Where to insert `bogus_key = 1` into one table of a document, and the key path expected in the problem.
struct Injection {
    offset: usize,
    text: &'static str,
    key: String,
}

/// Every table of an example config, at every depth, with the key path the loader uses for it.
fn injections(text: &str) -> Vec<Injection> {
    let root = DeTable::parse(text).expect("example parses");
    let mut out = vec![Injection { offset: 0, text: "bogus_key = 1\n", key: "bogus_key".to_owned() }];
    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "site" | "defaults" | "api" | "storage" | "metrics" | "evidence" => {
                out.push(injection(text, value, key.get_ref()))
            }
            "token" => {
                for token in value.get_ref().as_array().expect("token array").iter() {
                    let table = token.get_ref().as_table().expect("token table");
                    let name = table.get("name").and_then(|n| n.get_ref().as_str()).expect("token name");
                    out.push(injection(text, token, &format!("token \"{name}\"")));
                }
            }
            "phase" | "gate" => {
                let tables = value.get_ref().as_table().expect("phase or gate table");
                for (name, table) in tables.iter() {
                    out.push(injection(text, table, &format!("{}.{}", key.get_ref(), name.get_ref())));
                }
            }
            "check" => {
                for check in value.get_ref().as_array().expect("check array").iter() {
                    let table = check.get_ref().as_table().expect("check table");
                    let name = table.get("name").and_then(|n| n.get_ref().as_str()).expect("check name");
                    let path = format!("check \"{name}\"");
                    out.push(injection(text, check, &path));
                    for sub in ["expect", "compare"] {
                        if let Some(table) = table.get(sub) {
                            out.push(injection(text, table, &format!("{path}.{sub}")));
                        }
                    }
                }
            }
            other => panic!("example has an unexpected top-level key {other}"),
        }
    }
    out
}

fn injection(text: &str, table: &Spanned<DeValue<'_>>, path: &str) -> Injection {
    let span: Range<usize> = table.span();
    let key = format!("{path}.bogus_key");
    match &text[span.start..span.start + 1] {
        // A [header] or [[header]]: a new line right after it.
        "[" => Injection { offset: span.end, text: "\nbogus_key = 1", key },
        // An inline table: first entry.
        "{" => {
            let empty = table.get_ref().as_table().is_some_and(|t| t.is_empty());
            Injection { offset: span.start + 1, text: if empty { " bogus_key = 1 " } else { " bogus_key = 1," }, key }
        }
        other => panic!("{path}: table starting with {other:?} (dotted keys?) is not handled by this test"),
    }
}

/// (line, column) of byte `offset`, both 1-based, column in characters.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[test]
fn examples_reject_unknown_key_in_every_table() {
    for file in example_files() {
        let text = std::fs::read_to_string(&file).expect("read example");
        let injections = injections(&text);
        assert!(injections.len() >= 5, "{}: too few tables found", file.display());
        if file.ends_with("hscn-site.toml") {
            let keys: Vec<&str> = injections.iter().map(|i| i.key.as_str()).collect();
            for key in [
                "site.bogus_key",
                "phase.post-migration.bogus_key",
                "check \"test-port-router\".expect.bogus_key",
                "check \"nww-split-horizon\".expect.bogus_key",
                "check \"app-health\".expect.bogus_key",
                "check \"site-egress\".bogus_key",
                "check \"site-egress\".expect.bogus_key",
                "check \"hscn-path-mtu\".expect.bogus_key",
                "check \"legacy-tn-gateway-gone\".bogus_key",
                "phase.regression.bogus_key",
                "gate.go-live.bogus_key",
                "gate.migration-complete.bogus_key",
                "evidence.bogus_key",
                "check \"hscn-dns-udp\".compare.bogus_key",
                "check \"hscn-resolver-1-ping\".compare.bogus_key",
                "check \"app-tcp\".compare.bogus_key",
                "check \"app-tls\".compare.bogus_key",
                "check \"app-health\".compare.bogus_key",
            ] {
                assert!(keys.contains(&key), "hscn-site.toml: no injection into {key}: {keys:?}");
            }
        } else if file.ends_with("site.toml") {
            let keys: Vec<&str> = injections.iter().map(|i| i.key.as_str()).collect();
            for key in [
                "api.bogus_key",
                "token \"cnsp-noc\".bogus_key",
                "token \"site-change-lead\".bogus_key",
                "storage.bogus_key",
                "metrics.bogus_key",
                "phase.pre-migration.bogus_key",
                "gate.go-live.bogus_key",
                "check \"gateway-ping\".compare.bogus_key",
                "check \"app-health\".compare.bogus_key",
            ] {
                assert!(keys.contains(&key), "site.toml: no injection into {key}: {keys:?}");
            }
        }
        for inj in injections {
            let mut modified = text.clone();
            modified.insert_str(inj.offset, inj.text);
            let at = modified[inj.offset..].find("bogus_key").expect("inserted") + inj.offset;
            let (line, column) = position(&modified, at);
            let result = gonogo_config::parse(&modified, &file);
            let problems: Vec<Problem> = match result {
                Ok(_) => panic!("{}: bogus key in {} accepted", file.display(), inj.key),
                Err(p) => p.into_iter().collect(),
            };
            assert_eq!(problems.len(), 1, "{}: {}:\n{}", file.display(), inj.key, Problems::from(problems.clone()));
            let p = &problems[0];
            assert_eq!(p.key, inj.key, "{}", p);
            assert_eq!((p.line, p.column), (line, column), "{}: {}", file.display(), p);
            assert!(p.message.contains("unknown key `bogus_key`"), "{p}");
            assert_eq!(p.file, file);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Collecting problems

#[test]
fn many_problems_at_once() {
    let text = dedent(
        r#"
        [site]
        name = "Many"

        [[check]]
        name = "a"
        kind = "icmp"
        phases = ["commissioning"]
        target = "10.0.0.1"
        bogus = 1

        [[check]]
        name = "b"
        kind = "icmp"
        phases = ["commissioning"]
        target = "10.0.0.2"
        interval = "fast"

        [[check]]
        name = "a"
        kind = "tcp"
        phases = ["nowhere"]
        target = "host.example"

        [[check]]
        name = "web"
        kind = "http"
        phases = ["commissioning"]
        url = "not a url"
        timeout = 5
        expect = { body_matches = "(" }
        "#,
    );
    let got: Vec<(usize, usize, String)> = problems(&text).into_iter().map(|p| (p.line, p.column, p.key)).collect();
    let want = [
        (9, 1, r#"check "a".bogus"#),
        (16, 12, r#"check "b".interval"#),
        (19, 8, r#"check "a".name"#),
        (21, 11, r#"check "a".phases"#),
        (22, 10, r#"check "a".target"#),
        (28, 7, r#"check "web".url"#),
        (29, 11, r#"check "web".timeout"#),
        (30, 27, r#"check "web".expect.body_matches"#),
    ];
    let want: Vec<(usize, usize, String)> = want.iter().map(|(l, c, k)| (*l, *c, (*k).to_owned())).collect();
    assert_eq!(got, want);
    let messages: Vec<String> = problems(&text).into_iter().map(|p| p.message).collect();
    for (message, fragment) in messages.iter().zip([
        "unknown key `bogus`",
        "\"fast\" is not a duration",
        "duplicate check name \"a\", first used by the check at line 4",
        "unknown phase \"nowhere\"",
        "\"host.example\" has no port",
        "\"not a url\" is not a URL",
        "expected a duration string such as \"2s\"",
        "not a valid regular expression: unclosed group",
    ]) {
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
}

#[test]
fn syntax_error_has_position() {
    let text = "[site]\nname = \"x\"\n[[check]]\nname = = 3\n";
    let p = one(text, &["TOML syntax error"]);
    assert_eq!((p.line, p.key.as_str()), (4, ""));
    assert!(p.column > 0);
    // Duplicate keys are syntax errors too, at the second one.
    let p = one("[site]\nname = \"x\"\nname = \"y\"\n", &["duplicate key"]);
    assert_eq!((p.line, p.column), (3, 1));
}

#[test]
fn wrong_type_names_key_and_line() {
    let text = icmp("count = \"five\"");
    let p = one(&text, &["expected a whole number", "found string \"five\""]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".count"#, 6, 9));
    let p = one(&icmp("expect = { loss_max = \"none\" }"), &["expected a number from 0.0 to 1.0"]);
    assert_eq!(p.key, r#"check "c".expect.loss_max"#);
    let p = one(&icmp("required = \"yes\""), &["expected true or false"]);
    assert_eq!(p.key, r#"check "c".required"#);
    let p = one(&dns("expect = { answers_include = [\"a\", 3] }"), &["found integer `3`"]);
    assert_eq!((p.key.as_str(), p.column), (r#"check "c".expect.answers_include"#, 36));
    // A rejected required key is not also reported missing.
    let p = one(&check("icmp", "target = 10", ""), &["expected a string such as \"10.0.0.1\""]);
    assert_eq!(p.key, r#"check "c".target"#);
    // Several bad types in one table are all reported.
    assert_eq!(problems(&icmp("count = \"x\"\nsize = \"y\"\ninterval = 3")).len(), 3);
}

#[test]
fn problem_display_format() {
    let p = one(&icmp("count = 0"), &[]);
    assert_eq!(p.to_string(), "test.toml:6:9: check \"c\".count: 0 is out of range; must be from 1 to 10000");
    let all = parse(&format!("{}{}", icmp("count = 0"), icmp("size = -1").replace("\"c\"", "\"d\""))).expect_err("bad");
    assert_eq!(all.len(), 2);
    assert_eq!(all.to_string().lines().count(), 2);
}

#[test]
fn unreadable_file_is_one_problem_without_position() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("does-not-exist.toml");
    let problems = gonogo_config::load(&path).expect_err("missing file");
    assert_eq!(problems.len(), 1);
    let p = problems.iter().next().expect("one");
    assert_eq!((p.line, p.column, p.key.as_str()), (0, 0, ""));
    assert!(p.to_string().starts_with(&format!("{}: cannot read config file", path.display())), "{p}");
}

// ---------------------------------------------------------------------------------------------------------
// Structure

#[test]
fn top_level_unknown_key() {
    let p = one(
        "[apis]\nlisten = \"x\"\n",
        &[
            "unknown key `apis`; did you mean `api`?",
            "top-level keys: site, defaults, phase, check, api, token, storage, metrics, gate, evidence",
        ],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), ("apis", 1, 2));
    one(
        "[gates.go-live]
requires = [\"commissioning\"]\n",
        &["did you mean `gate`?"],
    );
    one("[sites]\nname = \"x\"\n", &["did you mean `site`?"]);
    one("[[tokens]]\nname = \"x\"\n", &["did you mean `token`?"]);
}

#[test]
fn check_must_be_array_of_tables() {
    let p = one("[check]\nname = \"c\"\n", &["[[check]]"]);
    assert_eq!((p.key.as_str(), p.line), ("check", 1));
    let p = one("check = [\"c\"]\n", &["expected a table"]);
    assert_eq!(p.key, "check[0]");
    one("site = 3\n", &["expected a table: [site], found integer `3`"]);
    let p = one(&icmp("expect = 3"), &["expected a table: [check.expect] or expect = { … }, found integer `3`"]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".expect"#, 6, 10));
}

#[test]
fn inline_check_array() {
    let text = "\ncheck = [\n  { name = \"a\", kind = \"icmp\", phases = [\"regression\"], target = \"::1\" },\n]\n";
    let config = ok(text);
    assert_eq!(config.checks[0].line, 3);
    let text = "check = [\n  { name = \"a\", kind = \"icmp\", phases = [\"regression\"] },\n]\n";
    let p = one(text, &["missing `target`"]);
    assert_eq!((p.line, p.column, p.key.as_str()), (2, 3, r#"check "a""#));
}

#[test]
fn site_rules() {
    let config = ok("[site]\nname = \"Main\"\nods_code = \"rxx\"\n");
    assert_eq!(config.site.name.as_deref(), Some("Main"));
    assert_eq!(config.site.ods_code.as_deref(), Some("RXX"));
    assert!(ok("").site.name.is_none());
    let p = one("[site]\nods_code = \"R-X\"\n", &["not an ODS code"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("site.ods_code", 2, 12));
    one("[site]\nname = \" \"\n", &["must not be empty"]);
    let p =
        one("[site]\nnmae = \"x\"\n", &["unknown key `nmae`", "did you mean `name`?", "[site] keys: name, ods_code"]);
    assert_eq!(p.key, "site.nmae");
}

#[test]
fn defaults_rules() {
    let config = ok("[defaults]\ntimeout = \"1m30s\"\nconcurrency = 4096\n");
    assert_eq!(config.defaults.timeout, Duration::from_secs(90));
    assert_eq!(config.defaults.concurrency, 4096);
    ok("[defaults]\nconcurrency = 1\n");
    let p = one("[defaults]\nconcurrency = 0\n", &["must be from 1 to 4096"]);
    assert_eq!(p.key, "defaults.concurrency");
    one("[defaults]\nconcurrency = 4097\n", &["must be from 1 to 4096"]);
    one("[defaults]\ntimeout = \"2h\"\n", &["at most 1h"]);
    one("[defaults]\ntimeout = \"0s\"\n", &["more than zero"]);
}

#[test]
fn defaults_applied() {
    let config = ok("");
    assert_eq!(config.defaults.timeout, Duration::from_secs(5));
    assert_eq!(config.defaults.concurrency, 64);
    assert_eq!(config.phases.len(), 5);
    assert!(config.phases.values().all(|p| p.standard && p.description.is_none()));
    assert_eq!(config.path, Path::new("test.toml"));

    let c = ok(&icmp(""));
    let check = &c.checks[0];
    assert!(check.required);
    assert_eq!(check.timeout, Duration::from_secs(5));
    assert_eq!(check.line, 1);
    let CheckSpec::Icmp(i) = spec(&c) else { panic!("icmp") };
    assert_eq!((i.target.as_str(), i.count, i.interval, i.size), ("10.0.0.1", 5, Duration::from_millis(200), 56));
    assert!(i.expect.loss_max.is_none() && i.expect.rtt_p95_max.is_none());

    let c = ok(&format!("[defaults]\ntimeout = \"3s\"\n{}", tcp("")));
    assert_eq!(c.checks[0].timeout, Duration::from_secs(3));
    let CheckSpec::Tcp(t) = spec(&c) else { panic!("tcp") };
    assert_eq!((t.host.as_str(), t.port, t.count, t.expect.connect_max), ("10.0.0.1", 22, 1, None));

    let c = ok(&dns(""));
    let CheckSpec::Dns(d) = spec(&c) else { panic!("dns") };
    assert_eq!((d.record.as_str(), d.servers.as_slice(), d.transport.as_str()), ("A", &[][..], "udp"));
    assert_eq!((d.expect.rcode.as_str(), d.expect.min_answers), ("NOERROR", 1));
    assert!(d.expect.answers_include.is_empty());

    let c = ok(&tls(""));
    let CheckSpec::Tls(t) = spec(&c) else { panic!("tls") };
    assert_eq!((t.host.as_str(), t.port, t.server_name.as_str()), ("app.example", 443, "app.example"));
    assert!(t.verify && t.ca_file.is_none() && t.expect.valid_days_min.is_none() && t.expect.min_version.is_none());

    let c = ok(&http(""));
    let CheckSpec::Http(h) = spec(&c) else { panic!("http") };
    assert_eq!((h.method.as_str(), h.verify, h.follow_redirects, h.body_limit), ("GET", true, true, 1024 * 1024));
    assert!(h.headers.is_empty() && h.proxy == Proxy::None && h.ca_file.is_none());
    assert!(h.expect.status.is_empty() && h.expect.body_matches.is_none() && h.expect.latency_max.is_none());

    let c = ok(&icmp("required = false\ntimeout = \"250ms\""));
    assert!(!c.checks[0].required);
    assert_eq!(c.checks[0].timeout, Duration::from_millis(250));
}

// ---------------------------------------------------------------------------------------------------------
// Names and phases

#[test]
fn check_names() {
    for good in ["a", "gw-ping", "dns_1", "0day"] {
        ok(&icmp("").replace("name = \"c\"", &format!("name = \"{good}\"")));
    }
    for bad in ["", "GW", "-a", "a b", "a.b", "_a"] {
        let p = one(&icmp("").replace("name = \"c\"", &format!("name = \"{bad}\"")), &["not a valid check name"]);
        assert_eq!((p.key.as_str(), p.line, p.column), ("check[0].name", 2, 8));
    }
    let p = one(&icmp("").replace("name = \"c\"\n", ""), &["missing `name`"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("check[0]", 1, 1));
    let text = format!("{}\n{}", icmp(""), icmp(""));
    let p = one(&text, &["duplicate check name \"c\", first used by the check at line 1"]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".name"#, 8, 8));
}

#[test]
fn phase_rules() {
    let with = |phases: &str| icmp("").replace("phases = [\"commissioning\"]", &format!("phases = {phases}"));
    // Standard phases need no table.
    let c = ok(&with(r#"["commissioning", "pre-migration", "post-migration", "regression", "rollback-verify"]"#));
    assert_eq!(c.checks[0].phases.len(), 5);
    assert_eq!(c.checks_in("regression").count(), 1);
    // A declared phase; a declared but unused phase; a description on a standard phase.
    let text = format!(
        "[phase.cutover]\ndescription = \"During the window\"\n[phase.spare]\n[phase.regression]\ndescription = \"r\"\n{}",
        with(r#"["cutover"]"#)
    );
    let c = ok(&text);
    assert_eq!(c.phases.len(), 7);
    assert!(!c.phases["cutover"].standard);
    assert_eq!(c.phases["cutover"].description.as_deref(), Some("During the window"));
    assert!(c.phases["regression"].standard);
    assert_eq!(c.phases["regression"].description.as_deref(), Some("r"));

    let p = one(&with(r#"["cutover"]"#), &["unknown phase \"cutover\"", "declared: none", "[phase.cutover]"]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".phases"#, 4, 11));
    one(&with("[]"), &["at least one phase"]);
    one(&with(r#"["regression", "regression"]"#), &["listed twice"]);
    let p = one(&icmp("").replace("phases = [\"commissioning\"]\n", ""), &["missing `phases`"]);
    assert_eq!((p.line, p.column), (1, 1));
    let p = one("[phase.Bad]\n", &["phase names use lowercase"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("phase.Bad", 1, 8));
    let p = one("[phase.x]\ndescripton = \"d\"\n", &["unknown key `descripton`", "did you mean `description`?"]);
    assert_eq!(p.key, "phase.x.descripton");
    one("phase = 1\n", &["expected a table of phases"]);
}

// ---------------------------------------------------------------------------------------------------------
// Kinds

#[test]
fn kind_missing_or_unknown() {
    let p = one(
        &icmp("").replace("kind = \"icmp\"\n", ""),
        &["missing `kind`", "\"icmp\", \"tcp\", \"dns\", \"tls\", \"http\""],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c""#, 1, 1));
    let p = one(
        &icmp("").replace("kind = \"icmp\"", "kind = \"ping\""),
        &["unknown kind \"ping\"; kinds: icmp, tcp, dns, tls, http"],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".kind"#, 3, 8));
}

#[test]
fn keys_must_apply_to_kind() {
    let p = one(
        &dns("count = 3"),
        &["`count` does not apply to kind \"dns\"; keys for dns: query, record, server, transport"],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".count"#, 6, 1));
    one(
        &icmp("url = \"https://x.example/\""),
        &["`url` does not apply to kind \"icmp\"", "target, count, interval, size"],
    );
    one(&tcp("verify = false"), &["`verify` does not apply to kind \"tcp\"; keys for tcp: target, count"]);
    one(&http("target = \"a:1\""), &["`target` does not apply to kind \"http\""]);
    one(&tls("headers = { A = \"b\" }"), &["`headers` does not apply to kind \"tls\""]);
    // Shared keys are fine where they apply.
    ok(&tls("ca_file = \"/etc/ca.pem\"\nverify = false"));
    ok(&http("ca_file = \"/etc/ca.pem\"\nverify = false"));
    ok(&tcp("count = 3"));
}

#[test]
fn expect_keys_must_apply_to_kind() {
    let p = one(
        &dns("expect = { loss_max = 0.0 }"),
        &["`expect.loss_max` does not apply to kind \"dns\"; expect keys for dns: rcode, min_answers, answers_include"],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".expect.loss_max"#, 6, 12));
    let text = format!("{}[check.expect]\nstatus = [200]\n", icmp(""));
    let p = one(&text, &["`expect.status` does not apply to kind \"icmp\""]);
    assert_eq!((p.line, p.column), (7, 1));
    one(&tcp("expect = { latency_max = \"1s\" }"), &["expect keys for tcp: connect_max"]);
}

#[test]
fn unknown_key_lists_keys_and_suggests() {
    let p = one(
        &icmp("intervall = \"1s\""),
        &[
            "unknown key `intervall`; did you mean `interval`?",
            "keys for kind \"icmp\": name, kind, phases, required, timeout, expect_failure, retries, retry_interval, \
             depends_on, block_preexisting, expect, target, count, interval, size, dont_fragment, ttl, fallback_tcp, \
             ip, source, compare",
        ],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".intervall"#, 6, 1));
    let p = one(
        &icmp("expect = { loss = 0.0 }"),
        &["unknown key `loss`", "expect keys for kind \"icmp\": loss_max, rtt_mean_max, rtt_p95_max, jitter_max"],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".expect.loss"#, 6, 12));
    // Without a usable kind, every key is listed.
    let text = icmp("zzz = 1").replace("kind = \"icmp\"", "kind = \"nope\"");
    let all = problems(&text);
    assert_eq!(all.len(), 2);
    assert!(all[1].message.contains("check keys: name, kind"), "{}", all[1]);
    // Two unknown keys in one table, and one in its expect, all reported.
    assert_eq!(problems(&icmp("a = 1\nb = 2\nexpect = { c = 3 }")).len(), 3);
}

#[test]
fn required_keys_reported_at_header() {
    for (kind, key, a) in [
        ("icmp", "target", "an"),
        ("tcp", "target", "a"),
        ("dns", "query", "a"),
        ("tls", "target", "a"),
        ("http", "url", "a"),
        ("mtu", "target", "an"),
        ("egress", "url", "an"),
    ] {
        // An egress check also needs expect.egress_in (tested in `egress_rules`).
        let expect = if kind == "egress" { "expect = { egress_in = [\"192.0.2.0/28\"] }" } else { "" };
        let text = format!("\n\n{}", check(kind, "", expect));
        let p = one(&text, &[&format!("missing `{key}`, which {a} {kind} check needs; add {key} = ")]);
        assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c""#, 3, 1), "{kind}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Values

#[test]
fn durations() {
    for (text, want) in [("200ms", 200), ("2s", 2000), ("1m30s", 90_000), ("1ms", 1), ("1h", 3_600_000)] {
        let c = ok(&icmp(&format!("timeout = \"{text}\"")));
        assert_eq!(c.checks[0].timeout, Duration::from_millis(want), "{text}");
    }
    let p = one(&icmp("expect = { rtt_p95_max = \"20 parsecs\" }"), &["is not a duration", "write a duration such as"]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".expect.rtt_p95_max"#, 6, 26));
    one(&icmp("expect = { jitter_max = \"0ms\" }"), &["must be more than zero"]);
    one(&icmp("expect = { rtt_mean_max = \"5\" }"), &["is not a duration"]);
    one(&tcp("expect = { connect_max = \"\" }"), &["is not a duration"]);
    one(&http("expect = { latency_max = \"-1s\" }"), &["is not a duration"]);
    let c =
        ok(&icmp("expect = { rtt_mean_max = \"5ms\", rtt_p95_max = \"20ms\", jitter_max = \"1ms\", loss_max = 0.5 }"));
    let CheckSpec::Icmp(i) = spec(&c) else { panic!("icmp") };
    assert_eq!(i.expect.rtt_mean_max, Some(Duration::from_millis(5)));
    assert_eq!(i.expect.rtt_p95_max, Some(Duration::from_millis(20)));
    assert_eq!(i.expect.jitter_max, Some(Duration::from_millis(1)));
    assert_eq!(i.expect.loss_max, Some(0.5));
}

#[test]
fn timeouts() {
    ok(&icmp("timeout = \"60m\""));
    let p = one(&icmp("timeout = \"61m\""), &["too long", "at most 1h"]);
    assert_eq!(p.key, r#"check "c".timeout"#);
    one(&icmp("timeout = \"0s\""), &["more than zero"]);
}

#[test]
fn icmp_rules() {
    let c = ok(&icmp("count = 10000\ninterval = \"1ms\"\nsize = 65000"));
    let CheckSpec::Icmp(i) = spec(&c) else { panic!("icmp") };
    assert_eq!((i.count, i.interval, i.size), (10_000, Duration::from_millis(1), 65_000));
    ok(&icmp("count = 1\nsize = 0"));
    one(&icmp("count = 10001"), &["must be from 1 to 10000"]);
    one(&icmp("count = 0"), &["must be from 1 to 10000"]);
    let p = one(&icmp("interval = \"500us\""), &["at least 1ms"]);
    assert_eq!(p.key, r#"check "c".interval"#);
    one(&icmp("size = 65001"), &["must be from 0 to 65000 bytes"]);
    one(&icmp("size = -1"), &["must be from 0 to 65000 bytes"]);
    for good in ["0.0", "1.0", "0", "1", "0.05"] {
        ok(&icmp(&format!("expect = {{ loss_max = {good} }}")));
    }
    for bad in ["1.01", "-0.1", "nan", "inf"] {
        one(&icmp(&format!("expect = {{ loss_max = {bad} }}")), &["a loss ratio is from 0.0"]);
    }
    for target in ["::1", "[::1]", "gw.example.nhs.uk", "localhost", "192.0.2.1"] {
        let c = ok(&check("icmp", &format!("target = \"{target}\""), ""));
        let CheckSpec::Icmp(i) = spec(&c) else { panic!("icmp") };
        assert_eq!(i.target, target.trim_matches(['[', ']']));
    }
    one(&check("icmp", "target = \"10.0.0.1:80\"", ""), &["has a port"]);
    one(&check("icmp", "target = \"bad host\"", ""), &["not an IP address or host name"]);
    one(&check("icmp", "target = \"10.0.0.300\"", ""), &["not an IP address or host name"]);
}

#[test]
fn tcp_and_tls_targets() {
    for kind in ["tcp", "tls"] {
        for (target, host, port) in [
            ("app.example:443", "app.example", 443),
            ("10.0.0.1:1", "10.0.0.1", 1),
            ("[2001:db8::1]:65535", "2001:db8::1", 65535),
        ] {
            let c = ok(&check(kind, &format!("target = \"{target}\""), ""));
            let (h, p) = match spec(&c) {
                CheckSpec::Tcp(t) => (t.host.clone(), t.port),
                CheckSpec::Tls(t) => (t.host.clone(), t.port),
                _ => panic!("kind"),
            };
            assert_eq!((h.as_str(), p), (host, port));
        }
        for (target, fragment) in [
            ("app.example", "has no port"),
            ("app.example:0", "ports are 1 to 65535"),
            ("app.example:65536", "ports are 1 to 65535"),
            ("app.example:https", "is not a port"),
            ("2001:db8::1:443", "put an IPv6 address in brackets"),
            ("[2001:db8::1]", "has no port"),
            ("[app.example]:443", "is not an IPv6 address"),
            ("bad host:443", "not an IP address or host name"),
        ] {
            let p = one(&check(kind, &format!("target = \"{target}\""), ""), &[fragment, "write \"host:port\""]);
            assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".target"#, 5, 10), "{target}");
        }
    }
    let c = ok(&tcp("count = 4\nexpect = { connect_max = \"150ms\" }"));
    let CheckSpec::Tcp(t) = spec(&c) else { panic!("tcp") };
    assert_eq!((t.count, t.expect.connect_max), (4, Some(Duration::from_millis(150))));
    one(&tcp("count = 0"), &["must be from 1 to 10000"]);
}

#[test]
fn dns_rules() {
    let c = ok(&dns("record = \"aaaa\"\nserver = \"155.231.231.1\"\ntransport = \"TCP\""));
    let CheckSpec::Dns(d) = spec(&c) else { panic!("dns") };
    assert_eq!((d.record.as_str(), d.transport.as_str()), ("AAAA", "tcp"));
    assert_eq!(d.servers, ["155.231.231.1:53".parse().expect("addr")]);
    for (server, want) in [
        ("155.231.231.2:5353", "155.231.231.2:5353"),
        ("2001:db8::53", "[2001:db8::53]:53"),
        ("[2001:db8::53]:54", "[2001:db8::53]:54"),
    ] {
        let c = ok(&dns(&format!("server = \"{server}\"")));
        let CheckSpec::Dns(d) = spec(&c) else { panic!("dns") };
        assert_eq!(d.servers, [want.parse().expect("addr")], "the v1 key `server` gives one server");
    }
    let p = one(&dns("server = \"dns.example.nhs.uk\""), &["is a name; a DNS server must be given by IP address"]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".server"#, 6, 10));
    one(&dns("server = \"dns.example.nhs.uk:53\""), &["is a name"]);
    one(&dns("server = \"155.231.231.1:0\""), &["ports are 1 to 65535"]);
    one(&dns("server = \"155.231.231\""), &["not an IP address"]);
    for record in ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "PTR", "SRV", "srv"] {
        ok(&dns(&format!("record = \"{record}\"")));
    }
    one(&dns("record = \"ANY\""), &["unknown record type \"ANY\"", "A AAAA CNAME MX TXT NS SOA PTR SRV"]);
    one(&dns("transport = \"doh\""), &["write \"udp\" or \"tcp\""]);
    one(&check("dns", "query = \"not a name\"", ""), &["is not a domain name"]);
    ok(&check("dns", "query = \"_ldap._tcp.example.nhs.uk.\"", "record = \"SRV\""));

    let c = ok(&dns("expect = { rcode = \"nxdomain\" }"));
    let CheckSpec::Dns(d) = spec(&c) else { panic!("dns") };
    assert_eq!((d.expect.rcode.as_str(), d.expect.min_answers), ("NXDOMAIN", 0));
    let c =
        ok(&dns("expect = { rcode = \"NOERROR\", min_answers = 0, answers_include = [\"10.0.0.1\", \"b.example.\"] }"));
    let CheckSpec::Dns(d) = spec(&c) else { panic!("dns") };
    assert_eq!(d.expect.min_answers, 0);
    assert_eq!(d.expect.answers_include, ["10.0.0.1", "b.example."]);
    for rcode in [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
        "NOTZONE",
    ] {
        ok(&dns(&format!("expect = {{ rcode = \"{rcode}\" }}")));
    }
    let p = one(&dns("expect = { rcode = \"BADVERS\" }"), &["unknown response code \"BADVERS\"", "NOERROR FORMERR"]);
    assert_eq!(p.key, r#"check "c".expect.rcode"#);
    one(&dns("expect = { min_answers = -1 }"), &["must be from 0 to"]);
    one(&dns("expect = { answers_include = [\"\"] }"), &["an empty string is not allowed"]);
}

#[test]
fn tls_rules() {
    let c = ok(&tls(
        "server_name = \"other.example\"\nca_file = \"/etc/gonogo/ca.pem\"\nverify = false\nexpect = { valid_days_min = 0, names_include = [\"*.example\"], min_version = \"1.3\" }",
    ));
    let CheckSpec::Tls(t) = spec(&c) else { panic!("tls") };
    assert_eq!(t.server_name, "other.example");
    assert_eq!(t.ca_file.as_deref(), Some(Path::new("/etc/gonogo/ca.pem")));
    assert!(!t.verify);
    assert_eq!(t.expect.valid_days_min, Some(0));
    assert_eq!(t.expect.names_include, ["*.example"]);
    assert_eq!(t.expect.min_version.as_deref(), Some("1.3"));
    ok(&tls("expect = { min_version = \"1.2\", valid_days_min = 30 }"));
    let p = one(&tls("expect = { min_version = \"1.1\" }"), &["write \"1.2\" or \"1.3\""]);
    assert_eq!(p.key, r#"check "c".expect.min_version"#);
    one(&tls("expect = { min_version = 1.2 }"), &["expected the string \"1.2\" or \"1.3\", found float `1.2`"]);
    one(&tls("expect = { valid_days_min = -1 }"), &["must be from 0 to"]);
    one(&tls("server_name = \"bad name\""), &["is not a host name"]);
    one(&tls("ca_file = \"\""), &["must not be empty"]);
    // server_name defaults to the target's host, IPs included.
    let c = ok(&check("tls", "target = \"[2001:db8::1]:8443\"", ""));
    let CheckSpec::Tls(t) = spec(&c) else { panic!("tls") };
    assert_eq!(t.server_name, "2001:db8::1");
}

#[test]
fn http_rules() {
    let c = ok(&http(
        "method = \"head\"\nheaders = { Zeta = \"1\", Accept = \"application/json\", X-Trace = \"a b\" }\nproxy = \"socks5://127.0.0.1:1080\"\nfollow_redirects = false\nbody_limit = 1",
    ));
    let CheckSpec::Http(h) = spec(&c) else { panic!("http") };
    assert_eq!(h.method, "HEAD");
    let headers: Vec<(&str, &str)> = h.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(headers, [("Zeta", "1"), ("Accept", "application/json"), ("X-Trace", "a b")], "file order");
    assert_eq!(h.proxy, Proxy::Url("socks5://127.0.0.1:1080".to_owned()));
    assert!(!h.follow_redirects);
    assert_eq!(h.body_limit, 1);
    // Header-style headers table.
    let c = ok(&format!("{}[check.headers]\nAccept = \"text/html\"\n", http("")));
    let CheckSpec::Http(h) = spec(&c) else { panic!("http") };
    assert_eq!(h.headers, [("Accept".to_owned(), "text/html".to_owned())]);

    for url in ["http://10.0.0.1/", "https://app.example.nhs.uk:8443/health?x=1", "http://[::1]:8080/"] {
        ok(&check("http", &format!("url = \"{url}\""), ""));
    }
    for (url, fragment) in [
        ("app.example/health", "is not a URL"),
        ("ftp://app.example/", "has scheme \"ftp\""),
        ("https://", "is not a URL"),
        ("file:///etc/passwd", "has scheme \"file\""),
    ] {
        let p = one(&check("http", &format!("url = \"{url}\""), ""), &[fragment]);
        assert_eq!((p.key.as_str(), p.line, p.column), (r#"check "c".url"#, 5, 7), "{url}");
    }
    one(&http("method = \"GE T\""), &["is not an HTTP method"]);
    one(&http("method = \"\""), &["is not an HTTP method"]);
    let p = one(&http("headers = { \"Bad Name\" = \"x\" }"), &["is not a header name"]);
    assert_eq!(p.key, r#"check "c".headers.Bad Name"#);
    one(&http("headers = { X = \"a\\nb\" }"), &["printable ASCII"]);
    one(&http("headers = { X = 1 }"), &["expected a table of strings"]);
    for proxy in ["http://proxy.example:8080", "https://proxy.example", "socks5://10.0.0.1:1080"] {
        ok(&http(&format!("proxy = \"{proxy}\"")));
    }
    one(&http("proxy = \"ftp://proxy.example\""), &["has scheme \"ftp\"", "http://, https:// or socks5://"]);
    one(&http("proxy = \"proxy.example:8080\""), &["a proxy URL starts with"]);
    one(&http("proxy = \"not a url\""), &["is not a URL"]);
    one(&http("body_limit = 0"), &["must be from 1 to 1073741824 bytes"]);
}

#[test]
fn http_expect_rules() {
    let c = ok(&http(
        "expect = { status = [200, 204, 599, 100], body_matches = '^\\{\"ok\":\\s*true', latency_max = \"1s\" }",
    ));
    let CheckSpec::Http(h) = spec(&c) else { panic!("http") };
    assert_eq!(h.expect.status, [(200, 200), (204, 204), (599, 599), (100, 100)]);
    assert!(h.expect.body_matches.as_ref().is_some_and(|r| r.is_match("{\"ok\": true}")));
    assert_eq!(h.expect.latency_max, Some(Duration::from_secs(1)));
    let p = one(&http("expect = { status = [200, 99] }"), &[]);
    assert_eq!(p.message, "99 is out of range; must be from 100 to 599");
    assert_eq!(problems(&http("expect = { status = [99, 600] }")).len(), 2);
    one(&http("expect = { status = [] }"), &["leave the key out to accept any 2xx"]);
    one(
        &http("expect = { status = 200 }"),
        &[
            "expected an array of status codes and ranges such as [200, 204], [\"2xx\"] or [\"300-399\"], found integer `200`",
        ],
    );
    let p = one(&http("expect = { body_matches = \"a{2,1}\" }"), &["not a valid regular expression"]);
    assert!(!p.message.contains('\n'), "{p}");
}

// ---------------------------------------------------------------------------------------------------------
// gonogo serve: [api], [[token]], [storage], [metrics], phase every

/// `header` on line 1, then `lines` (one key per line).
fn table(header: &str, lines: &str) -> String {
    let mut text = format!("{header}\n");
    for line in lines.lines() {
        text.push_str(line.trim());
        text.push('\n');
    }
    text
}
fn api(lines: &str) -> String {
    table("[api]", lines)
}

const TLS_FILES: &str = "tls_cert = \"/etc/gonogo/tls/agent.crt\"\ntls_key = \"/etc/gonogo/tls/agent.key\"";
/// `printf %s example-noc-token | sha256sum`.
const NOC_SHA256: &str = "d7edd08e97bafa5961e2334dd38b7e27063ba303b0d5019a44d0f6339ab1455c";
/// `printf %s example-signoff-token | sha256sum`.
const LEAD_SHA256: &str = "fddf600ca0ce63ccb5dcbff81ae250bcf7227d8b74b4237bba82216013a48ea3";

/// A `[[token]]` of four lines: header, name, sha256, roles.
fn token(name: &str, sha256: &str, roles: &str) -> String {
    format!("[[token]]\nname = \"{name}\"\nsha256 = \"{sha256}\"\nroles = {roles}\n")
}

#[test]
fn serve_tables_optional() {
    let c = ok("");
    assert!(c.api.is_none() && c.tokens.is_empty() && c.metrics.is_none());
    assert_eq!((c.storage.state_dir.as_path(), c.storage.keep_runs), (Path::new("/var/lib/gonogo"), 500));
    assert!(c.phases.values().all(|p| p.every.is_none()));
    // Empty tables: [storage] has only defaults; [api] and [metrics] need `listen`.
    let c = ok("[storage]\n");
    assert_eq!(c.storage.keep_runs, gonogo_config::DEFAULT_KEEP_RUNS);
    // Tokens without [api] are fine (serve refuses to start for want of [api], not for the tokens).
    let c = ok(&token("noc", NOC_SHA256, "[\"read\"]"));
    assert!(c.api.is_none());
    assert_eq!(c.tokens.len(), 1);
    // Each table must be a table.
    for (text, key, fragment) in [
        ("api = 3\n", "api", "expected a table: [api], found integer `3`"),
        ("storage = \"/var\"\n", "storage", "expected a table: [storage], found string \"/var\""),
        ("metrics = true\n", "metrics", "expected a table: [metrics], found boolean `true`"),
        ("[token]\nname = \"a\"\n", "token", "write each token under its own [[token]] header"),
        ("token = [1]\n", "token[0]", "expected a table; write each token under its own [[token]] header"),
    ] {
        let p = one(text, &[fragment]);
        assert_eq!((p.key.as_str(), p.line), (key, 1), "{text}");
    }
}

#[test]
fn api_listen_rules() {
    let c = ok(&api("listen = \"127.0.0.1:9443\""));
    let a = c.api.as_ref().expect("api");
    assert_eq!(a.listen, "127.0.0.1:9443".parse().expect("addr"));
    assert!(a.tls.is_none() && !a.insecure);
    for listen in ["127.0.0.1:0", "127.8.9.10:1", "[::1]:9443", " [::1]:65535 "] {
        let c = ok(&api(&format!("listen = \"{listen}\"")));
        assert_eq!(c.api.expect("api").listen, listen.trim().parse().expect("addr"), "{listen}");
    }
    for (listen, fragment) in [
        ("localhost:9443", "\"localhost:9443\" is a host name; listen on an IP address"),
        ("127.0.0.1", "\"127.0.0.1\" has no port"),
        ("::1", "put an IPv6 address in brackets"),
        ("127.0.0.1:65536", "\"65536\" is not a port; ports are 0 to 65535 (0 picks a free port)"),
        ("", "\"\" is not an address:port"),
    ] {
        let p = one(&api(&format!("listen = \"{listen}\"")), &[fragment, "write \"address:port\" such as"]);
        assert_eq!((p.key.as_str(), p.line, p.column), ("api.listen", 2, 10), "{listen}");
    }
    // Missing: at the header. Rejected: once, at the value.
    let p = one("\n[api]\ninsecure = true\n", &["missing `listen`; add listen = \"127.0.0.1:9443\""]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("api", 2, 1));
    let p = one(&api("listen = 9443"), &["expected an address:port string such as \"127.0.0.1:9443\", found integer"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("api.listen", 2, 10));
    // Unknown keys, with a suggestion and the list.
    let p = one(
        &api("listen = \"127.0.0.1:9443\"\ntls_crt = \"a.pem\""),
        &[
            "unknown key `tls_crt`; did you mean `tls_cert`?",
            "[api] keys: listen, tls_cert, tls_key, client_ca, insecure",
        ],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), ("api.tls_crt", 3, 1));
    // Inline table.
    let c = ok("api = { listen = \"[::1]:0\" }\n");
    assert_eq!(c.api.expect("api").listen.port(), 0);
}

#[test]
fn api_plain_http_rules() {
    for (listen, address) in [
        ("0.0.0.0:9443", "0.0.0.0"),
        ("[::]:9443", "::"),
        ("10.1.2.3:0", "10.1.2.3"),
        ("[2001:db8::1]:80", "2001:db8::1"),
    ] {
        let p = one(&api(&format!("listen = \"{listen}\"")), &[]);
        assert_eq!(
            p.message,
            format!(
                "plain HTTP on non-loopback address {address} would expose the API unencrypted: set tls_cert and \
                 tls_key, or insecure = true to accept that"
            )
        );
        assert_eq!((p.key.as_str(), p.line, p.column), ("api.listen", 2, 10), "{listen}");
        // insecure = false is the default, said explicitly.
        let p = one(&api(&format!("listen = \"{listen}\"\ninsecure = false")), &["plain HTTP on non-loopback"]);
        assert_eq!((p.key.as_str(), p.line, p.column), ("api.listen", 2, 10), "{listen}");
        // Accepted with insecure = true …
        let c = ok(&api(&format!("listen = \"{listen}\"\ninsecure = true")));
        let a = c.api.expect("api");
        assert!(a.insecure && a.tls.is_none());
        // … or with TLS (insecure = true then changes nothing, and is allowed).
        let c = ok(&api(&format!("listen = \"{listen}\"\n{TLS_FILES}")));
        assert!(c.api.expect("api").tls.is_some());
        ok(&api(&format!("listen = \"{listen}\"\n{TLS_FILES}\ninsecure = true")));
    }
    // Loopback: 127.0.0.0/8, ::1 (also as an IPv4-mapped address).
    for listen in ["127.0.0.1:9443", "127.255.0.1:9443", "[::1]:9443", "[::ffff:127.0.0.1]:9443"] {
        ok(&api(&format!("listen = \"{listen}\"")));
    }
    // A rejected `insecure` is not taken as false (one problem, about its type).
    let p =
        one(&api("listen = \"0.0.0.0:9443\"\ninsecure = \"yes\""), &["expected true or false, found string \"yes\""]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("api.insecure", 3, 12));
}

#[test]
fn api_tls_rules() {
    let c = ok(&api(&format!("listen = \"0.0.0.0:9443\"\n{TLS_FILES}\nclient_ca = \"/etc/gonogo/tls/cnsp-ca.crt\"")));
    let tls = c.api.expect("api").tls.expect("tls");
    assert_eq!(tls.cert, Path::new("/etc/gonogo/tls/agent.crt"));
    assert_eq!(tls.key, Path::new("/etc/gonogo/tls/agent.key"));
    assert_eq!(tls.client_ca.as_deref(), Some(Path::new("/etc/gonogo/tls/cnsp-ca.crt")));
    let c = ok(&api(&format!("listen = \"0.0.0.0:9443\"\n{TLS_FILES}")));
    assert!(c.api.expect("api").tls.expect("tls").client_ca.is_none());

    // One without the other: at the header, naming the missing key, and no plain-HTTP problem on top.
    let p = one(
        &api("listen = \"0.0.0.0:9443\"\ntls_cert = \"agent.crt\""),
        &["missing `tls_key`, which tls_cert needs; add tls_key = \"/etc/gonogo/tls/agent.key\""],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), ("api", 1, 1));
    let p = one(
        &format!("\n{}", api("listen = \"127.0.0.1:9443\"\ntls_key = \"agent.key\"")),
        &["missing `tls_cert`, which tls_key needs; add tls_cert = \"/etc/gonogo/tls/agent.crt\""],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), ("api", 2, 1));
    // A rejected tls_key counts as given: one problem, about its type.
    let p = one(&api("listen = \"0.0.0.0:9443\"\ntls_cert = \"a.crt\"\ntls_key = 1"), &["expected a file path string"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("api.tls_key", 4, 11));

    // client_ca needs TLS: at the key.
    let p = one(
        &api("listen = \"127.0.0.1:9443\"\nclient_ca = \"ca.pem\""),
        &["client certificates need TLS: set tls_cert and tls_key too, or remove client_ca"],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), ("api.client_ca", 3, 1));

    // Paths must not be empty (whitespace counts as empty).
    for (key, column) in [("tls_cert", 12), ("tls_key", 11), ("client_ca", 13)] {
        let text = api(&format!("listen = \"127.0.0.1:9443\"\n{TLS_FILES}\nclient_ca = \"ca.pem\""))
            .lines()
            .map(|l| if l.starts_with(&format!("{key} = ")) { format!("{key} = \" \"") } else { l.to_owned() })
            .collect::<Vec<_>>()
            .join("\n");
        let p = one(&text, &["must not be empty; give the path of"]);
        assert_eq!((p.key.as_str(), p.column), (format!("api.{key}").as_str(), column), "{key}");
    }
}

#[test]
fn api_relative_paths() {
    let text = api(
        "listen = \"127.0.0.1:9443\"\ntls_cert = \"tls/agent.crt\"\ntls_key = \"/srv/agent.key\"\nclient_ca = \"../ca.pem\"",
    );
    // None of these files exists: they are not opened here (`gonogo serve` reports an unreadable one).
    let c = gonogo_config::parse(&text, Path::new("/etc/gonogo/gonogo.toml")).expect("valid");
    let tls = c.api.expect("api").tls.expect("tls");
    assert_eq!(tls.cert, Path::new("/etc/gonogo/tls/agent.crt"), "relative to the config file's directory");
    assert_eq!(tls.key, Path::new("/srv/agent.key"), "absolute paths are kept");
    assert_eq!(tls.client_ca.as_deref(), Some(Path::new("/etc/gonogo/../ca.pem")));
    // A config file named without a directory: the paths stay relative (to the working directory, as the file).
    let tls = ok(&text).api.expect("api").tls.expect("tls");
    assert_eq!(tls.cert, Path::new("tls/agent.crt"));
}

#[test]
fn token_rules() {
    let c = ok(&format!(
        "{}{}",
        token("cnsp-noc", NOC_SHA256, "[\"read\", \"trigger\"]"),
        token("lead_2", LEAD_SHA256, "[\"signoff\"]")
    ));
    let names: Vec<&str> = c.tokens.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["cnsp-noc", "lead_2"]);
    assert_eq!(c.tokens[0].roles, [Role::Read, Role::Trigger]);
    assert_eq!(c.tokens[1].roles, [Role::Signoff]);
    // Names: the check-name charset, unique.
    for bad in ["NOC", "-noc", "a b", ""] {
        let p = one(&token(bad, NOC_SHA256, "[\"read\"]"), &["is not a valid token name", "such as \"cnsp-noc\""]);
        assert_eq!((p.key.as_str(), p.line, p.column), ("token[0].name", 2, 8), "{bad}");
    }
    let p = one(
        &format!("{}{}", token("noc", NOC_SHA256, "[\"read\"]"), token("noc", LEAD_SHA256, "[\"read\"]")),
        &["duplicate token name \"noc\", first used by the token at line 1; names must be unique"],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"token "noc".name"#, 6, 8));
    // Missing keys: at the header, all of them.
    let all = problems("[[token]]\nname = \"noc\"\n");
    let got: Vec<(&str, usize, usize)> = all.iter().map(|p| (p.key.as_str(), p.line, p.column)).collect();
    assert_eq!(got, [(r#"token "noc""#, 1, 1), (r#"token "noc""#, 1, 1)]);
    assert!(
        all[0].message.starts_with("missing `sha256`; add sha256 = \"…\", the SHA-256 of the token in hex: printf %s"),
        "{}",
        all[0]
    );
    assert!(all[1].message.starts_with("missing `roles`; add roles = [\"read\"]"), "{}", all[1]);
    let p = one(&format!("[[token]]\nsha256 = \"{NOC_SHA256}\"\nroles = [\"read\"]\n"), &["missing `name`"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("token[0]", 1, 1));
    // Unknown keys, wrong types.
    let text = format!("{}rol = [\"read\"]\n", token("noc", NOC_SHA256, "[\"read\"]"));
    let p = one(&text, &["unknown key `rol`; did you mean `roles`?", "token keys: name, sha256, roles"]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"token "noc".rol"#, 5, 1));
    let p = one(
        &token("noc", NOC_SHA256, "\"read\""),
        &["expected an array of roles such as [\"read\", \"trigger\"], found string \"read\""],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"token "noc".roles"#, 4, 9));
    let p = one(
        "[[token]]\nname = \"noc\"\nsha256 = 1\nroles = [\"read\"]\n",
        &["expected a string of 64 hex characters, found integer `1`"],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"token "noc".sha256"#, 3, 10));
    // Inline array of tokens.
    let c = ok(&format!("token = [ {{ name = \"a\", sha256 = \"{NOC_SHA256}\", roles = [\"read\"] }} ]\n"));
    assert_eq!(c.tokens[0].name, "a");
}

#[test]
fn token_sha256_rules() {
    let c = ok(&token("noc", NOC_SHA256, "[\"read\"]"));
    let lower = c.tokens[0].sha256;
    assert_eq!((lower[0], lower[1], lower[31]), (0xd7, 0xed, 0x5c));
    let c = ok(&token("noc", &NOC_SHA256.to_ascii_uppercase(), "[\"read\"]"));
    assert_eq!(c.tokens[0].sha256, lower, "upper case accepted");
    let hint = "store the SHA-256 of the token, not the token: printf %s \"$TOKEN\" | sha256sum";
    for (value, fragment) in [
        ("example-noc-token", "expected 64 hex characters, found 17 characters"),
        (&NOC_SHA256[1..], "found 63 characters"),
        (&format!("{NOC_SHA256}  -"), "found 67 characters"),
        (&NOC_SHA256.replace('d', "x"), "64 characters, but not all hex digits"),
        ("", "found 0 characters"),
    ] {
        let p = one(&token("noc", value, "[\"read\"]"), &[fragment, hint]);
        assert_eq!((p.key.as_str(), p.line, p.column), (r#"token "noc".sha256"#, 3, 10), "{value}");
        assert!(value.is_empty() || !p.message.contains(value), "the value (perhaps a secret) is quoted: {p}");
    }
    // The same hash twice: one secret, two role sets.
    let text = format!(
        "{}{}",
        token("a", NOC_SHA256, "[\"read\"]"),
        token("b", &NOC_SHA256.to_ascii_uppercase(), "[\"signoff\"]")
    );
    let p = one(&text, &["same hash as the token at line 1; give each token its own secret"]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"token "b".sha256"#, 7, 10));
    // Reported even when the first token has another problem.
    let text = format!("{}{}", token("A", NOC_SHA256, "[\"read\"]"), token("b", NOC_SHA256, "[\"read\"]"));
    let got: Vec<(String, usize)> = problems(&text).into_iter().map(|p| (p.key, p.line)).collect();
    assert_eq!(got, [("token[0].name".to_owned(), 2), (r#"token "b".sha256"#.to_owned(), 7)]);
}

#[test]
fn token_roles_rules() {
    let c = ok(&token("noc", NOC_SHA256, "[\"signoff\", \"read\", \"trigger\"]"));
    assert_eq!(c.tokens[0].roles, [Role::Signoff, Role::Read, Role::Trigger], "file order");
    let p = one(&token("noc", NOC_SHA256, "[]"), &["must name at least one role: read, trigger, signoff"]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"token "noc".roles"#, 4, 9));
    for bad in ["admin", "Read", ""] {
        let p = one(
            &token("noc", NOC_SHA256, &format!("[\"{bad}\"]")),
            &[&format!("unknown role {bad:?}; roles: read, trigger, signoff")],
        );
        assert_eq!((p.key.as_str(), p.line, p.column), (r#"token "noc".roles"#, 4, 10), "{bad}");
    }
    let p = one(&token("noc", NOC_SHA256, "[\"read\", \"read\"]"), &["role \"read\" is listed twice"]);
    assert_eq!((p.key.as_str(), p.line, p.column), (r#"token "noc".roles"#, 4, 18));
    assert_eq!(problems(&token("noc", NOC_SHA256, "[\"x\", \"read\", \"y\", \"read\"]")).len(), 3);
}

#[test]
fn storage_rules() {
    let c = ok("[storage]\nstate_dir = \"/srv/gonogo\"\nkeep_runs = 100000\n");
    assert_eq!((c.storage.state_dir.as_path(), c.storage.keep_runs), (Path::new("/srv/gonogo"), 100_000));
    let c = ok("[storage]\nkeep_runs = 1\n");
    assert_eq!((c.storage.state_dir.as_path(), c.storage.keep_runs), (Path::new("/var/lib/gonogo"), 1));
    for dir in ["var/lib/gonogo", "", "~/gonogo", "./state"] {
        let p = one(
            &format!("[storage]\nstate_dir = \"{dir}\"\n"),
            &[&format!(
                "{dir:?} is not an absolute path; write the state directory's full path, such as \"/var/lib/gonogo\""
            )],
        );
        assert_eq!((p.key.as_str(), p.line, p.column), ("storage.state_dir", 2, 13), "{dir}");
    }
    for runs in ["0", "100001", "-1"] {
        let p = one(&format!("[storage]\nkeep_runs = {runs}\n"), &[]);
        assert_eq!(p.message, format!("{runs} is out of range; must be from 1 to 100000 runs"));
        assert_eq!((p.key.as_str(), p.line, p.column), ("storage.keep_runs", 2, 13));
    }
    let p = one("[storage]\nkeep_runs = \"500\"\n", &["expected a whole number such as 5, found string \"500\""]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("storage.keep_runs", 2, 13));
    let p = one(
        "[storage]\nkeep_run = 5\n",
        &["unknown key `keep_run`; did you mean `keep_runs`?", "[storage] keys: state_dir, keep_runs"],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), ("storage.keep_run", 2, 1));
}

#[test]
fn metrics_rules() {
    let c = ok("[metrics]\nlisten = \"127.0.0.1:9144\"\n");
    assert_eq!(c.metrics.expect("metrics").listen, "127.0.0.1:9144".parse().expect("addr"));
    // Plain HTTP by design, on any address.
    ok("[metrics]\nlisten = \"0.0.0.0:9144\"\n");
    // Next to [api]: a different port, a different address, or both port 0.
    for (api_listen, metrics_listen) in [
        ("127.0.0.1:9443", "127.0.0.1:9144"),
        ("127.0.0.1:9443", "127.0.0.2:9443"),
        ("[::1]:9443", "127.0.0.1:9443"),
        ("127.0.0.1:0", "127.0.0.1:0"),
    ] {
        ok(&format!("[api]\nlisten = \"{api_listen}\"\n[metrics]\nlisten = \"{metrics_listen}\"\n"));
    }
    // The same address and port as [api], whichever table comes first.
    let p = one("[api]\nlisten = \"127.0.0.1:9443\"\n[metrics]\nlisten = \"127.0.0.1:9443\"\n", &[]);
    assert_eq!(
        p.message,
        "127.0.0.1:9443 is the [api] listen address too; give the metrics listener a port of its own, such as \
         127.0.0.1:9144"
    );
    assert_eq!((p.key.as_str(), p.line, p.column), ("metrics.listen", 4, 10));
    let p = one("[metrics]\nlisten = \"[::1]:9443\"\n[api]\nlisten = \"[::1]:9443\"\n", &["such as [::1]:9144"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("metrics.listen", 2, 10));
    // Addresses as for [api]; `listen` required in the table.
    let p = one("[metrics]\nlisten = \"localhost:9144\"\n", &["is a host name; listen on an IP address"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("metrics.listen", 2, 10));
    let p = one("\n[metrics]\n", &["missing `listen`; add listen = \"127.0.0.1:9144\"", "or remove [metrics]"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("metrics", 2, 1));
    let p = one("[metrics]\nlisten = 9144\n", &["expected an address:port string"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("metrics.listen", 2, 10));
    let p =
        one("[metrics]\nlisten = \"127.0.0.1:9144\"\nport = 1\n", &["unknown key `port`", "[metrics] keys: listen"]);
    assert_eq!((p.key.as_str(), p.line, p.column), ("metrics.port", 3, 1));
}

#[test]
fn phase_every_rules() {
    let c = ok("[phase.pre-migration]\nevery = \"15m\"\n[phase.soak]\nevery = \"1h 30m\"\n");
    assert_eq!(c.phases["pre-migration"].every, Some(Duration::from_secs(900)));
    assert_eq!(c.phases["soak"].every, Some(Duration::from_secs(5400)));
    assert!(c.phases["post-migration"].every.is_none());
    ok("[phase.regression]\nevery = \"10s\"\n");
    ok("[phase.regression]\nevery = \"7d\"\n");
    for (every, fragment) in [
        ("9s", "\"9s\" is too short; a phase may run at most every 10s"),
        ("9999ms", "is too short"),
        ("7d 1s", "\"7d 1s\" is too long; every may be at most 7d"),
        ("0s", "must be more than zero"),
        ("soon", "\"soon\" is not a duration"),
    ] {
        let p = one(&format!("[phase.regression]\nevery = \"{every}\"\n"), &[fragment]);
        assert_eq!((p.key.as_str(), p.line, p.column), ("phase.regression.every", 2, 9), "{every}");
    }
    let p = one(
        "[phase.regression]\nevery = 15\n",
        &["expected a duration string such as \"15m\" or \"1h\", found integer `15`"],
    );
    assert_eq!((p.key.as_str(), p.line, p.column), ("phase.regression.every", 2, 9));
    let p = one("[phase.regression]\nevry = \"1h\"\n", &["did you mean `every`?", "phase keys: description, every"]);
    assert_eq!(p.key, "phase.regression.evry");
}

#[test]
fn serve_problems_all_reported() {
    let text = dedent(
        r#"
        [api]
        listen = "0.0.0.0:9443"
        client_ca = ""

        [[token]]
        name = "noc"
        sha256 = "s3cret"
        roles = ["read", "admin"]

        [storage]
        state_dir = "relative"
        keep = 3

        [metrics]
        listen = "0.0.0.0:9443"

        [phase.pre-migration]
        every = "1s"
        "#,
    );
    let got: Vec<(usize, usize, String)> = problems(&text).into_iter().map(|p| (p.line, p.column, p.key)).collect();
    let want = [
        (2, 10, "api.listen"),
        (3, 1, "api.client_ca"),
        (3, 13, "api.client_ca"),
        (7, 10, r#"token "noc".sha256"#),
        (8, 18, r#"token "noc".roles"#),
        (11, 13, "storage.state_dir"),
        (12, 1, "storage.keep"),
        (15, 10, "metrics.listen"),
        (18, 9, "phase.pre-migration.every"),
    ];
    let want: Vec<(usize, usize, String)> = want.iter().map(|(l, c, k)| (*l, *c, (*k).to_owned())).collect();
    assert_eq!(got, want, "{}", parse(&text).expect_err("bad"));
}

// ---------------------------------------------------------------------------------------------------------
// Probe depth: keys of every kind, new keys per kind, the kinds mtu and egress

fn mtu(lines: &str) -> String {
    check("mtu", "target = \"155.231.231.1\"", lines)
}
/// An egress check: `url` on line 5, `lines` from line 6, then its required `expect`.
fn egress(lines: &str) -> String {
    let lines = format!("{lines}\nexpect = {{ egress_in = [\"192.0.2.0/28\"] }}");
    check("egress", "url = \"https://egress.example/ip\"", lines.trim_start())
}

/// (key, line, column) of a problem.
fn place(p: &Problem) -> (&str, usize, usize) {
    (p.key.as_str(), p.line, p.column)
}

/// 1-based column, in characters, of the first `needle` on 1-based `line` of `text` (the last with `last`).
#[track_caller]
fn col(text: &str, line: usize, needle: &str) -> usize {
    let l = text.lines().nth(line - 1).unwrap_or_else(|| panic!("no line {line} in:\n{text}"));
    let at = l.find(needle).unwrap_or_else(|| panic!("{needle:?} not on line {line}: {l}"));
    l[..at].chars().count() + 1
}
#[track_caller]
fn last_col(text: &str, line: usize, needle: &str) -> usize {
    let l = text.lines().nth(line - 1).unwrap_or_else(|| panic!("no line {line} in:\n{text}"));
    let at = l.rfind(needle).unwrap_or_else(|| panic!("{needle:?} not on line {line}: {l}"));
    l[..at].chars().count() + 1
}

#[test]
fn every_kind_takes_the_common_keys() {
    let common = "expect_failure = true\nretries = 2\nretry_interval = \"500ms\"";
    for text in [icmp(common), tcp(common), dns(common), tls(common), http(common), mtu(common), egress(common)] {
        let c = ok(&text);
        let check = &c.checks[0];
        assert!(check.expect_failure, "{text}");
        assert_eq!((check.retries, check.retry_interval), (2, Duration::from_millis(500)), "{text}");
    }
    // Defaults.
    let c = ok(&mtu(""));
    let check = &c.checks[0];
    assert!(!check.expect_failure && check.depends_on.is_empty());
    assert_eq!((check.retries, check.retry_interval), (0, Duration::from_secs(1)));
    assert_eq!((check.ip, check.source), (IpMode::Any, None));
    // The kinds are listed where a kind is asked for.
    one(
        &icmp("").replace("kind = \"icmp\"", "kind = \"pmtu\""),
        &["unknown kind \"pmtu\"; kinds: icmp, tcp, dns, tls, http, mtu, egress"],
    );
    assert_eq!(spec(&ok(&mtu(""))).kind(), "mtu");
    assert_eq!(spec(&ok(&egress(""))).kind(), "egress");
}

#[test]
fn retries_rules() {
    let c = ok(&tcp("retries = 100\nretry_interval = \"10m\""));
    assert_eq!((c.checks[0].retries, c.checks[0].retry_interval), (100, Duration::from_secs(600)));
    let c = ok(&tcp("retries = 0"));
    assert_eq!(c.checks[0].retries, 0);
    ok(&tcp("retries = 1\nretry_interval = \"10ms\""));
    for bad in ["101", "-1"] {
        let p = one(&tcp(&format!("retries = {bad}")), &[]);
        assert_eq!(p.message, format!("{bad} is out of range; must be from 0 to 100 further attempts"));
        assert_eq!(place(&p), (r#"check "c".retries"#, 6, 11));
    }
    let p =
        one(&tcp("retries = \"2\""), &["expected a whole number of further attempts such as 2, found string \"2\""]);
    assert_eq!(place(&p), (r#"check "c".retries"#, 6, 11));
    for (interval, fragment) in [
        ("9ms", "must be at least 10ms"),
        ("10m 1s", "must be at most 10m"),
        ("soon", "\"soon\" is not a duration"),
        ("0s", "must be more than zero"),
    ] {
        let p = one(&tcp(&format!("retries = 1\nretry_interval = \"{interval}\"")), &[fragment]);
        assert_eq!(place(&p), (r#"check "c".retry_interval"#, 7, 18), "{interval}");
    }
    // Without retries the interval means nothing: at the key, whether retries is left out or 0.
    let p = one(&tcp("retry_interval = \"2s\""), &[]);
    assert_eq!(
        p.message,
        "retry_interval has no effect without retries; add retries = 2 (further attempts after a failure), or \
         remove retry_interval"
    );
    assert_eq!(place(&p), (r#"check "c".retry_interval"#, 6, 1));
    let p = one(&tcp("retries = 0\nretry_interval = \"2s\""), &["has no effect without retries"]);
    assert_eq!(place(&p), (r#"check "c".retry_interval"#, 7, 1));
    // A rejected retries is not taken as 0.
    let p = one(&tcp("retries = \"x\"\nretry_interval = \"2s\""), &["found string \"x\""]);
    assert_eq!(place(&p), (r#"check "c".retries"#, 6, 11));
    let p = one(&tcp("expect_failure = \"yes\""), &["expected true or false, found string \"yes\""]);
    assert_eq!(place(&p), (r#"check "c".expect_failure"#, 6, 18));
}

/// A check named `name` (icmp) in `phases` (a TOML array), `lines` from line 6; five lines plus `lines`.
fn dep_check(name: &str, phases: &str, lines: &str) -> String {
    icmp(lines).replacen("name = \"c\"", &format!("name = \"{name}\""), 1).replacen(
        "phases = [\"commissioning\"]",
        &format!("phases = {phases}"),
        1,
    )
}

#[test]
fn depends_on_rules() {
    const COM: &str = r#"["commissioning"]"#;
    const BOTH: &str = r#"["commissioning", "post-migration"]"#;
    // Works: names in file order, a dependency declared later, one that runs in more phases.
    let text = format!(
        "{}{}{}",
        dep_check("app", COM, r#"depends_on = ["dns-2", "dns-1"]"#),
        dep_check("dns-1", BOTH, ""),
        dep_check("dns-2", COM, r#"depends_on = ["dns-1"]"#)
    );
    let c = ok(&text);
    assert_eq!(c.checks[0].depends_on, ["dns-2", "dns-1"]);
    assert_eq!(c.checks[2].depends_on, ["dns-1"]);
    ok(&dep_check("a", COM, "depends_on = []"));

    // Itself, twice, unknown (with a suggestion and the list): each at its entry.
    let text = format!(
        "{}{}{}",
        dep_check("a", COM, r#"depends_on = ["a", "b", "b", "dsn"]"#),
        dep_check("b", COM, ""),
        dep_check("dns", COM, "")
    );
    let all = problems(&text);
    let got: Vec<_> = all.iter().map(place).collect();
    let key = r#"check "a".depends_on"#;
    assert_eq!(
        got,
        [(key, 6, col(&text, 6, "\"a\"")), (key, 6, last_col(&text, 6, "\"b\"")), (key, 6, col(&text, 6, "\"dsn\""))]
    );
    assert_eq!(all[0].message, "a check cannot depend on itself; remove \"a\" from depends_on");
    assert_eq!(all[1].message, "check \"b\" is listed twice");
    assert_eq!(all[2].message, "no check named \"dsn\"; did you mean \"dns\"?; checks: a, b, dns");

    // The dependency must run in every phase of the dependant.
    let text = format!("{}{}", dep_check("app", BOTH, r#"depends_on = ["dns"]"#), dep_check("dns", COM, ""));
    let p = one(&text, &[]);
    assert_eq!(
        p.message,
        "check \"app\" runs in phase \"post-migration\" but its dependency \"dns\" does not; add \"post-migration\" to \
         the phases of \"dns\", or remove \"dns\" from depends_on"
    );
    assert_eq!(place(&p), (r#"check "app".depends_on"#, 6, 15));

    // Cycles: reported once, at the entry that closes them, naming every check of the cycle.
    let text = format!(
        "{}{}{}",
        dep_check("a", COM, r#"depends_on = ["b"]"#),
        dep_check("b", COM, r#"depends_on = ["c"]"#),
        dep_check("c", COM, r#"depends_on = ["a"]"#)
    );
    let p = one(&text, &["dependency cycle: \"a\" → \"b\" → \"c\" → \"a\"", "remove one of these depends_on entries"]);
    assert_eq!(place(&p), (r#"check "c".depends_on"#, 18, 15));
    let text =
        format!("{}{}", dep_check("a", COM, r#"depends_on = ["b"]"#), dep_check("b", COM, r#"depends_on = ["a"]"#));
    let p = one(&text, &["dependency cycle: \"a\" → \"b\" → \"a\""]);
    assert_eq!(place(&p), (r#"check "b".depends_on"#, 12, 15));

    // A dependency with problems of its own still exists: only its own problem is reported.
    let text = format!("{}{}", dep_check("a", COM, r#"depends_on = ["b"]"#), dep_check("b", COM, "count = 0"));
    let p = one(&text, &["must be from 1 to 10000"]);
    assert_eq!(place(&p), (r#"check "b".count"#, 12, 9));
    // Names are exact.
    let text = format!("{}{}", dep_check("a", COM, r#"depends_on = ["B"]"#), dep_check("b", COM, ""));
    one(&text, &["no check named \"B\"; did you mean \"b\"?"]);
    let p = one(
        &dep_check("a", COM, "depends_on = \"b\""),
        &["expected an array of check names such as [\"hscn-dns-1-udp\"], found string \"b\""],
    );
    assert_eq!(place(&p), (r#"check "a".depends_on"#, 6, 14));
}

#[test]
fn ip_rules() {
    for (value, mode) in
        [("any", IpMode::Any), ("4", IpMode::V4), ("6", IpMode::V6), ("both", IpMode::Both), ("ALL", IpMode::All)]
    {
        for text in
            [icmp(&format!("ip = \"{value}\"")), http(&format!("ip = \"{value}\"")), mtu(&format!("ip = \"{value}\""))]
        {
            assert_eq!(ok(&text).checks[0].ip, mode, "{text}");
        }
    }
    ok(&tcp("ip = \"6\""));
    ok(&tls("ip = \"both\""));
    ok(&egress("ip = \"4\""));
    let p = one(&tcp("ip = \"5\""), &["unknown ip \"5\"; write \"any\" (default: the first address found), \"4\""]);
    assert_eq!(place(&p), (r#"check "c".ip"#, 6, 6));
    let p = one(
        &tcp("ip = 4"),
        &["expected one of \"any\", \"4\", \"6\", \"both\", \"all\" (a string), found integer `4`"],
    );
    assert_eq!(place(&p), (r#"check "c".ip"#, 6, 6));
    // DNS asks its servers by address: no `ip`.
    let p = one(
        &dns("ip = \"4\""),
        &["`ip` does not apply to kind \"dns\"; keys for dns: query, record, server, transport, servers, source"],
    );
    assert_eq!(place(&p), (r#"check "c".ip"#, 6, 1));
}

#[test]
fn source_rules() {
    for (value, want) in
        [("10.120.4.2", "10.120.4.2"), ("2001:db8::2", "2001:db8::2"), ("[2001:db8::2]", "2001:db8::2")]
    {
        for text in [
            icmp(&format!("source = \"{value}\"")),
            tcp(&format!("source = \"{value}\"")),
            dns(&format!("source = \"{value}\"")),
            tls(&format!("source = \"{value}\"")),
            http(&format!("source = \"{value}\"")),
            mtu(&format!("source = \"{value}\"")),
            egress(&format!("source = \"{value}\"")),
        ] {
            assert_eq!(ok(&text).checks[0].source, Some(want.parse().expect("ip")), "{text}");
        }
    }
    for (value, fragment) in [
        ("gw.example.nhs.uk", "\"gw.example.nhs.uk\" is a name; a source must be an IP address"),
        ("10.120.4.2:53", "\"10.120.4.2:53\" has a port; give the address alone"),
        ("0.0.0.0", "\"0.0.0.0\" is the unspecified address"),
        ("::", "\"::\" is the unspecified address"),
        ("224.0.0.1", "\"224.0.0.1\" is a multicast address"),
        ("10.120.4", "\"10.120.4\" is not an IP address"),
    ] {
        let p = one(&tcp(&format!("source = \"{value}\"")), &[fragment, "such as \"10.120.4.2\""]);
        assert_eq!(place(&p), (r#"check "c".source"#, 6, 10), "{value}");
    }
    // The family must match `ip`; one address cannot serve both families.
    for (ip, source) in [("4", "10.120.4.2"), ("6", "2001:db8::2"), ("any", "10.120.4.2"), ("any", "2001:db8::2")] {
        let c = ok(&tcp(&format!("ip = \"{ip}\"\nsource = \"{source}\"")));
        assert_eq!(c.checks[0].source, Some(source.parse().expect("ip")));
    }
    for (ip, source, message) in [
        (
            "4",
            "2001:db8::2",
            "2001:db8::2 is an IPv6 address but ip = \"4\" sends over IPv4; give an IPv4 source address, or set ip = \"6\"",
        ),
        (
            "6",
            "10.120.4.2",
            "10.120.4.2 is an IPv4 address but ip = \"6\" sends over IPv6; give an IPv6 source address, or set ip = \"4\"",
        ),
        (
            "both",
            "10.120.4.2",
            "one source address cannot send over both IPv4 and IPv6 (ip = \"both\"); remove source, or set ip = \"4\" \
             to match 10.120.4.2",
        ),
        (
            "all",
            "2001:db8::2",
            "one source address cannot send over both IPv4 and IPv6 (ip = \"all\"); remove source, or set ip = \"6\" \
             to match 2001:db8::2",
        ),
    ] {
        let p = one(&tcp(&format!("ip = \"{ip}\"\nsource = \"{source}\"")), &[]);
        assert_eq!(p.message, message);
        assert_eq!(place(&p), (r#"check "c".source"#, 7, 10));
    }
}

#[test]
fn phase_settle_rules() {
    let c = ok("[phase.post-migration]\nsettle = \"2m\"\n[phase.soak]\nsettle = \"1s\"\nevery = \"1h\"\n");
    assert_eq!(c.phases["post-migration"].settle, Some(Duration::from_secs(120)));
    assert_eq!(c.phases["soak"].settle, Some(Duration::from_secs(1)));
    assert!(c.phases["commissioning"].settle.is_none());
    ok("[phase.regression]\nsettle = \"1h\"\n");
    for (settle, fragment) in [
        ("999ms", "\"999ms\" is too short; settle is at least 1s (leave it out to start at once)"),
        ("1h 1s", "\"1h 1s\" is too long; settle may be at most 1h"),
        ("0s", "must be more than zero"),
        ("later", "\"later\" is not a duration"),
    ] {
        let p = one(&format!("[phase.post-migration]\nsettle = \"{settle}\"\n"), &[fragment]);
        assert_eq!(place(&p), ("phase.post-migration.settle", 2, 10), "{settle}");
    }
    let p =
        one("[phase.post-migration]\nsettle = 5\n", &["expected a duration string such as \"2m\", found integer `5`"]);
    assert_eq!(place(&p), ("phase.post-migration.settle", 2, 10));
    let p = one(
        "[phase.post-migration]\nsetle = \"2m\"\n",
        &["unknown key `setle`; did you mean `settle`?", "phase keys: description, every, settle"],
    );
    assert_eq!(place(&p), ("phase.post-migration.setle", 2, 1));
}

#[test]
fn icmp_depth_rules() {
    let c = ok(&icmp(""));
    let CheckSpec::Icmp(i) = spec(&c) else { panic!("icmp") };
    assert_eq!((i.dont_fragment, i.ttl, i.fallback_tcp.clone()), (false, None, None));
    let c = ok(&icmp("dont_fragment = true\nttl = 1\nfallback_tcp = \"155.231.231.1:53\""));
    let CheckSpec::Icmp(i) = spec(&c) else { panic!("icmp") };
    assert_eq!((i.dont_fragment, i.ttl), (true, Some(1)));
    assert_eq!(i.fallback_tcp, Some(("155.231.231.1".to_owned(), 53)));
    let c = ok(&icmp("ttl = 255\nfallback_tcp = \"[2001:db8::53]:53\""));
    let CheckSpec::Icmp(i) = spec(&c) else { panic!("icmp") };
    assert_eq!((i.ttl, i.fallback_tcp.clone()), (Some(255), Some(("2001:db8::53".to_owned(), 53))));
    for bad in ["0", "256", "-1"] {
        let p = one(&icmp(&format!("ttl = {bad}")), &[]);
        assert_eq!(p.message, format!("{bad} is out of range; must be from 1 to 255 hops"));
        assert_eq!(place(&p), (r#"check "c".ttl"#, 6, 7));
    }
    let p = one(
        &icmp("fallback_tcp = \"155.231.231.1\""),
        &["\"155.231.231.1\" has no port", "fallback_tcp is connected to when no echo is answered"],
    );
    assert_eq!(place(&p), (r#"check "c".fallback_tcp"#, 6, 16));
    let p = one(&icmp("dont_fragment = 1"), &["expected true or false, found integer `1`"]);
    assert_eq!(place(&p), (r#"check "c".dont_fragment"#, 6, 17));
    // ICMP-only keys elsewhere.
    let p = one(
        &tcp("dont_fragment = true"),
        &[
            "`dont_fragment` does not apply to kind \"tcp\"; keys for tcp: target, count, send, expect_banner, ip, source",
        ],
    );
    assert_eq!(place(&p), (r#"check "c".dont_fragment"#, 6, 1));
    one(&http("ttl = 3"), &["`ttl` does not apply to kind \"http\""]);
    one(
        &mtu("fallback_tcp = \"a:1\""),
        &["`fallback_tcp` does not apply to kind \"mtu\"; keys for mtu: target, min, max, ip, source"],
    );
}

#[test]
fn tcp_send_and_banner_rules() {
    let c = ok(&tcp(""));
    let CheckSpec::Tcp(t) = spec(&c) else { panic!("tcp") };
    assert!(t.send.is_none() && t.expect_banner.is_none());
    let c = ok(&tcp("send = \"HEAD / HTTP/1.0\\r\\n\\r\\n\"\nexpect_banner = '^SSH-2\\.0-'"));
    let CheckSpec::Tcp(t) = spec(&c) else { panic!("tcp") };
    assert_eq!(t.send.as_deref(), Some("HEAD / HTTP/1.0\r\n\r\n"), "TOML escapes are honoured");
    let banner = t.expect_banner.as_ref().expect("banner regex");
    assert!(banner.is_match("SSH-2.0-OpenSSH_9.6") && !banner.is_match("SSH-2x0-"));
    let p = one(&tcp("send = \"\""), &["must not be empty; give the text to write after connecting"]);
    assert_eq!(place(&p), (r#"check "c".send"#, 6, 8));
    let p = one(&tcp("expect_banner = \"(\""), &["not a valid regular expression: unclosed group"]);
    assert_eq!(place(&p), (r#"check "c".expect_banner"#, 6, 17));
    // A check-level key, not an expectation.
    let p = one(
        &tcp("expect = { expect_banner = \"x\" }"),
        &["unknown key `expect_banner`", "expect keys for kind \"tcp\": connect_max"],
    );
    assert_eq!(place(&p), (r#"check "c".expect.expect_banner"#, 6, 12));
    one(&icmp("send = \"x\""), &["`send` does not apply to kind \"icmp\""]);
    one(&http("expect_banner = \"x\""), &["`expect_banner` does not apply to kind \"http\""]);
}

#[test]
fn mtu_rules() {
    for (target, host, min) in [
        ("155.231.231.1", "155.231.231.1", 576),
        ("hscn-gw.example.nhs.uk", "hscn-gw.example.nhs.uk", 576),
        ("2001:db8::1", "2001:db8::1", 1280),
        ("[2001:db8::1]", "2001:db8::1", 1280),
    ] {
        let c = ok(&check("mtu", &format!("target = \"{target}\""), ""));
        let CheckSpec::Mtu(m) = spec(&c) else { panic!("mtu") };
        assert_eq!((m.target.as_str(), m.min, m.max, m.expect.path_mtu_min), (host, min, None, None), "{target}");
    }
    let c = ok(&mtu("min = 68\nmax = 65535"));
    let CheckSpec::Mtu(m) = spec(&c) else { panic!("mtu") };
    assert_eq!((m.min, m.max), (68, Some(65535)));
    let c = ok(&mtu("min = 1280\nmax = 1500\nexpect = { path_mtu_min = 1500 }"));
    let CheckSpec::Mtu(m) = spec(&c) else { panic!("mtu") };
    assert_eq!((m.min, m.max, m.expect.path_mtu_min), (1280, Some(1500), Some(1500)));
    ok(&mtu("expect = { path_mtu_min = 9000 }"));
    for (line, fragment) in [
        ("min = 67", "67 is out of range; must be from 68 to 65535 bytes"),
        ("max = 65536", "65536 is out of range; must be from 68 to 65535 bytes"),
    ] {
        let p = one(&mtu(line), &[fragment]);
        assert_eq!(place(&p), (format!("check \"c\".{}", &line[..3]).as_str(), 6, 7), "{line}");
    }
    let p = one(&mtu("expect = { path_mtu_min = 67 }"), &["must be from 68 to 65535 bytes"]);
    assert_eq!(place(&p), (r#"check "c".expect.path_mtu_min"#, 6, 27));
    // max above min, whether min is given or defaulted.
    let p = one(&mtu("min = 1400\nmax = 1400"), &[]);
    assert_eq!(
        p.message,
        "1400 must be greater than min (1400): the search runs from min up to max; raise max or lower min"
    );
    assert_eq!(place(&p), (r#"check "c".max"#, 7, 7));
    let p = one(&mtu("max = 500"), &["500 must be greater than min (576 by default for an IPv4 or named target)"]);
    assert_eq!(place(&p), (r#"check "c".max"#, 6, 7));
    let p = one(
        &check("mtu", "target = \"2001:db8::1\"", "max = 1280"),
        &["1280 must be greater than min (1280 by default for an IPv6 target)"],
    );
    assert_eq!(place(&p), (r#"check "c".max"#, 6, 7));
    ok(&mtu("max = 577"));
    // An expectation the search cannot reach.
    let p = one(&mtu("max = 1400\nexpect = { path_mtu_min = 1500 }"), &[]);
    assert_eq!(p.message, "1500 can never be met: the search stops at max = 1400; raise max or lower path_mtu_min");
    assert_eq!(place(&p), (r#"check "c".expect.path_mtu_min"#, 7, 27));
    ok(&mtu("max = 1500\nexpect = { path_mtu_min = 1500 }"));
    // Target: a host, no port.
    let p = one(
        &check("mtu", "target = \"10.0.0.1:80\"", ""),
        &["has a port", "an mtu target is an IP address or host name"],
    );
    assert_eq!(place(&p), (r#"check "c".target"#, 5, 10));
    // Keys and expectations of other kinds.
    let p =
        one(&mtu("count = 3"), &["`count` does not apply to kind \"mtu\"; keys for mtu: target, min, max, ip, source"]);
    assert_eq!(place(&p), (r#"check "c".count"#, 6, 1));
    one(&mtu("expect = { loss_max = 0.0 }"), &["expect keys for mtu: path_mtu_min"]);
    one(&icmp("expect = { path_mtu_min = 1500 }"), &["`expect.path_mtu_min` does not apply to kind \"icmp\""]);
    one(&icmp("min = 1"), &["`min` does not apply to kind \"icmp\""]);
}

#[test]
fn dns_servers_rules() {
    let c = ok(&dns(r#"servers = ["155.231.231.1", "[2001:db8::53]:5353", "155.231.231.2:53"]"#));
    let CheckSpec::Dns(d) = spec(&c) else { panic!("dns") };
    let want: Vec<std::net::SocketAddr> = ["155.231.231.1:53", "[2001:db8::53]:5353", "155.231.231.2:53"]
        .iter()
        .map(|a| a.parse().expect("addr"))
        .collect();
    assert_eq!(d.servers, want, "file order");
    // Not both keys: at `servers`.
    let p = one(&dns("server = \"155.231.231.1\"\nservers = [\"155.231.231.2\"]"), &[]);
    assert_eq!(
        p.message,
        "give either `server` (one resolver, the v1 key) or `servers` (a list), not both; move \"155.231.231.1\" into \
         servers = [...] and remove server"
    );
    assert_eq!(place(&p), (r#"check "c".servers"#, 7, 1));
    let p =
        one(&dns("servers = []"), &["must name at least one resolver", "leave the key out to use the system resolver"]);
    assert_eq!(place(&p), (r#"check "c".servers"#, 6, 11));
    let text = dns(r#"servers = ["155.231.231.1", "155.231.231.1:53"]"#);
    let p = one(&text, &[]);
    assert_eq!(p.message, "\"155.231.231.1:53\" is listed twice (as 155.231.231.1:53); remove one");
    assert_eq!(place(&p), (r#"check "c".servers"#, 6, col(&text, 6, "\"155.231.231.1:53\"")));
    let text = dns(r#"servers = ["155.231.231.1", "dns.example.nhs.uk"]"#);
    let p = one(&text, &["\"dns.example.nhs.uk\" is a name; a DNS server must be given by IP address"]);
    assert_eq!(place(&p), (r#"check "c".servers"#, 6, col(&text, 6, "\"dns.")));
    assert_eq!(problems(&dns(r#"servers = ["x", "1.2.3.4:0"]"#)).len(), 2);
    let p = one(&dns("servers = \"155.231.231.1\""), &["expected an array of strings such as [\"155.231.231.1:53\""]);
    assert_eq!(place(&p), (r#"check "c".servers"#, 6, 11));
    one(&icmp("servers = [\"155.231.231.1\"]"), &["`servers` does not apply to kind \"icmp\""]);
}

#[test]
fn dns_answer_rules() {
    let c = ok(&dns(
        r#"expect = { answers_exactly = ["10.0.0.1", "10.0.0.2"], answers_match = '^10\.', answers_exclude = ["192.0.2.1"], answers_in = ["10.0.0.0/8", "155.231.0.0/16"] }"#,
    ));
    let CheckSpec::Dns(d) = spec(&c) else { panic!("dns") };
    assert_eq!(d.expect.answers_exactly, ["10.0.0.1", "10.0.0.2"]);
    assert!(d.expect.answers_match.as_ref().is_some_and(|r| r.is_match("10.1.2.3") && !r.is_match("110.0.0.1")));
    assert_eq!(d.expect.answers_exclude, ["192.0.2.1"]);
    let nets: Vec<ipnet::IpNet> = ["10.0.0.0/8", "155.231.0.0/16"].iter().map(|n| n.parse().expect("net")).collect();
    assert_eq!(d.expect.answers_in, nets);
    assert_eq!(d.expect.min_answers, 1, "min_answers keeps its default");
    let c = ok(&dns("record = \"AAAA\"\nexpect = { answers_in = [\"2001:db8::/32\", \"::1/128\"] }"));
    let CheckSpec::Dns(d) = spec(&c) else { panic!("dns") };
    assert_eq!(d.expect.answers_in.len(), 2);
    let c = ok(&dns(""));
    let CheckSpec::Dns(d) = spec(&c) else { panic!("dns") };
    assert!(d.expect.answers_exactly.is_empty() && d.expect.answers_match.is_none());
    assert!(d.expect.answers_exclude.is_empty() && d.expect.answers_in.is_empty());

    // Networks: a prefix length, no host bits, the record's family.
    for (net, fragment) in [
        ("10.0.0.1", "\"10.0.0.1\" has no prefix length (for this one address write \"10.0.0.1/32\")"),
        ("155.231.1.0/16", "\"155.231.1.0/16\" has host bits set; did you mean \"155.231.0.0/16\"?"),
        ("ten/8", "\"ten/8\" is not a network; write a network with its prefix length, such as \"155.231.0.0/16\""),
        ("10.0.0.0/33", "is not a network"),
    ] {
        let text = dns(&format!("expect = {{ answers_in = [\"{net}\"] }}"));
        let p = one(&text, &[fragment]);
        assert_eq!(place(&p), (r#"check "c".expect.answers_in"#, 6, col(&text, 6, "[\"") + 1), "{net}");
    }
    let text = dns("expect = { answers_in = [\"10.0.0.0/8\", \"2001:db8::/32\"] }");
    let p = one(&text, &["2001:db8::/32 is an IPv6 network, but record = \"A\" answers IPv4 addresses"]);
    assert_eq!(place(&p), (r#"check "c".expect.answers_in"#, 6, col(&text, 6, "\"2001")));
    let text = dns("record = \"AAAA\"\nexpect = { answers_in = [\"10.0.0.0/8\"] }");
    one(&text, &["10.0.0.0/8 is an IPv4 network, but record = \"AAAA\" answers IPv6 addresses"]);
    let text = dns("record = \"MX\"\nexpect = { answers_in = [\"10.0.0.0/8\"] }");
    let p = one(&text, &["answers_in checks addresses, so it needs record = \"A\" or \"AAAA\", not \"MX\""]);
    assert_eq!(place(&p), (r#"check "c".expect.answers_in"#, 7, col(&text, 7, "[")));
    let text = dns("expect = { answers_in = [] }");
    let p = one(&text, &["must list at least one network, such as [\"10.0.0.0/8\"]; leave answers_in out instead"]);
    assert_eq!(place(&p), (r#"check "c".expect.answers_in"#, 6, col(&text, 6, "[")));

    // Answer sets: not empty, no duplicates (case and trailing dot ignored), no contradiction.
    let text = dns("expect = { answers_exactly = [] }");
    let p = one(&text, &["must list at least one answer"]);
    assert_eq!(place(&p), (r#"check "c".expect.answers_exactly"#, 6, col(&text, 6, "[")));
    let text = dns("record = \"CNAME\"\nexpect = { answers_exactly = [\"a.example.\", \"A.example\"] }");
    let p = one(&text, &["\"A.example\" is listed twice"]);
    assert_eq!(place(&p), (r#"check "c".expect.answers_exactly"#, 7, col(&text, 7, "\"A.ex")));
    let text = dns("expect = { answers_exclude = [\"10.0.0.1\", \"10.0.0.1\"] }");
    let p = one(&text, &["\"10.0.0.1\" is listed twice"]);
    assert_eq!(p.column, last_col(&text, 6, "\"10.0.0.1\""));
    let text = dns("expect = { answers_include = [\"10.0.0.1\"], answers_exclude = [\"10.0.0.1\"] }");
    let p = one(&text, &[]);
    assert_eq!(
        p.message,
        "\"10.0.0.1\" is also in answers_include: the check could never pass; remove it from one of the two"
    );
    assert_eq!(place(&p), (r#"check "c".expect.answers_exclude"#, 6, last_col(&text, 6, "\"10.0.0.1\"")));
    let text =
        dns("record = \"NS\"\nexpect = { answers_exactly = [\"ns1.example.\"], answers_exclude = [\"NS1.example\"] }");
    one(&text, &["\"NS1.example\" is also in answers_exactly"]);
    let p = one(&dns("expect = { answers_match = \"[\" }"), &["not a valid regular expression"]);
    assert_eq!(place(&p), (r#"check "c".expect.answers_match"#, 6, 28));
    one(&dns("expect = { answers_exclude = [\" \"] }"), &["an empty string is not allowed here"]);
    one(&tcp("expect = { answers_in = [\"10.0.0.0/8\"] }"), &["`expect.answers_in` does not apply to kind \"tcp\""]);
}

#[test]
fn tls_depth_rules() {
    let c = ok(&tls(""));
    let CheckSpec::Tls(t) = spec(&c) else { panic!("tls") };
    assert!(t.client_cert.is_none() && t.client_key.is_none() && t.min_version.is_none() && t.max_version.is_none());
    assert!(t.expect.issuer_matches.is_none() && t.expect.chain_valid_days_min.is_none());
    assert!(t.expect.fingerprint_sha256.is_none());

    // Client certificate: both or neither; relative to the config file's directory.
    let text = tls("client_cert = \"tls/client.crt\"\nclient_key = \"/srv/client.key\"");
    let c = gonogo_config::parse(&text, Path::new("/etc/gonogo/gonogo.toml")).expect("valid");
    let CheckSpec::Tls(t) = spec(&c) else { panic!("tls") };
    assert_eq!(t.client_cert.as_deref(), Some(Path::new("/etc/gonogo/tls/client.crt")));
    assert_eq!(t.client_key.as_deref(), Some(Path::new("/srv/client.key")));
    let p = one(
        &tls("client_cert = \"c.crt\""),
        &["client_cert needs client_key: add client_key = \"/etc/gonogo/tls/client.key\"", "or remove client_cert"],
    );
    assert_eq!(place(&p), (r#"check "c".client_cert"#, 6, 1));
    let p = one(&tls("client_key = \"c.key\""), &["client_key needs client_cert: add client_cert = "]);
    assert_eq!(place(&p), (r#"check "c".client_key"#, 6, 1));
    let p = one(&tls("client_cert = \"c.crt\"\nclient_key = 1"), &["expected a file path string, found integer `1`"]);
    assert_eq!(place(&p), (r#"check "c".client_key"#, 7, 14));
    let p = one(
        &tls("client_cert = \" \"\nclient_key = \"c.key\""),
        &["must not be empty; give the path of the PEM client certificate (chain)"],
    );
    assert_eq!(place(&p), (r#"check "c".client_cert"#, 6, 15));

    // Offered versions.
    let c = ok(&tls("min_version = \"1.2\"\nmax_version = \"1.3\""));
    let CheckSpec::Tls(t) = spec(&c) else { panic!("tls") };
    assert_eq!((t.min_version.as_deref(), t.max_version.as_deref()), (Some("1.2"), Some("1.3")));
    ok(&tls("min_version = \"1.3\"\nmax_version = \"1.3\"\nexpect = { min_version = \"1.3\" }"));
    let p = one(&tls("min_version = \"1.3\"\nmax_version = \"1.2\""), &[]);
    assert_eq!(
        p.message,
        "max_version \"1.2\" is below min_version \"1.3\"; offer at least min_version, such as max_version = \"1.3\""
    );
    assert_eq!(place(&p), (r#"check "c".max_version"#, 7, 15));
    let p = one(
        &tls("min_version = \"1.1\""),
        &["unknown TLS version \"1.1\"; write \"1.2\" or \"1.3\" (the offered version"],
    );
    assert_eq!(place(&p), (r#"check "c".min_version"#, 6, 15));
    let p = one(&tls("max_version = \"1.2\"\nexpect = { min_version = \"1.3\" }"), &[]);
    assert_eq!(
        p.message,
        "can never be met: max_version = \"1.2\" offers nothing above 1.2; lower expect.min_version or raise max_version"
    );
    assert_eq!(place(&p), (r#"check "c".expect.min_version"#, 7, 26));
    one(&http("min_version = \"1.2\""), &["`min_version` does not apply to kind \"http\""]);

    // Expectations.
    let fp = "AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89";
    let c = ok(&tls(&format!(
        "expect = {{ issuer_matches = \"O=Example CA\", chain_valid_days_min = 14, fingerprint_sha256 = \"{fp}\" }}"
    )));
    let CheckSpec::Tls(t) = spec(&c) else { panic!("tls") };
    assert!(t.expect.issuer_matches.as_ref().is_some_and(|r| r.is_match("CN=Example Issuing, O=Example CA")));
    assert_eq!(t.expect.chain_valid_days_min, Some(14));
    assert_eq!(t.expect.fingerprint_sha256.as_deref(), Some(&*fp.replace(':', "").to_ascii_lowercase()));
    ok(&tls(&format!("expect = {{ fingerprint_sha256 = \"{}\" }}", "0".repeat(64))));
    for (value, fragment) in [
        ("AB:CD", "expected 64 hex digits (':' separators allowed), found 4"),
        (&"0".repeat(65), "found 65"),
        (&"g".repeat(64), "64 characters, but not all hex digits"),
    ] {
        let text = tls(&format!("expect = {{ fingerprint_sha256 = \"{value}\" }}"));
        let p = one(&text, &[fragment, "openssl x509 -in cert.pem -noout -fingerprint -sha256"]);
        assert_eq!(place(&p), (r#"check "c".expect.fingerprint_sha256"#, 6, 33), "{value}");
    }
    let p = one(&tls("expect = { issuer_matches = \"(\" }"), &["not a valid regular expression"]);
    assert_eq!(place(&p), (r#"check "c".expect.issuer_matches"#, 6, 29));
    let p = one(&tls("expect = { chain_valid_days_min = -1 }"), &["-1 is out of range; must be from 0 to 4294967295"]);
    assert_eq!(place(&p), (r#"check "c".expect.chain_valid_days_min"#, 6, 35));
    one(&dns("client_cert = \"c.crt\""), &["`client_cert` does not apply to kind \"dns\""]);
    one(&http("expect = { issuer_matches = \"x\" }"), &["`expect.issuer_matches` does not apply to kind \"http\""]);
}

#[test]
fn http_depth_rules() {
    let c = ok(&http(""));
    let CheckSpec::Http(h) = spec(&c) else { panic!("http") };
    assert_eq!((h.max_redirects, h.body.as_deref(), h.client_cert.as_deref()), (10, None, None));
    let c = ok(&http(
        "method = \"POST\"\nbody = '{\"ping\": true}'\nmax_redirects = 0\nproxy = \"env\"\nclient_cert = \"c.crt\"\nclient_key = \"c.key\"",
    ));
    let CheckSpec::Http(h) = spec(&c) else { panic!("http") };
    assert_eq!((h.body.as_deref(), h.max_redirects, &h.proxy), (Some("{\"ping\": true}"), 0, &Proxy::Env));
    assert_eq!(h.client_cert.as_deref(), Some(Path::new("c.crt")));
    ok(&http("method = \"put\"\nbody = \"\"\nmax_redirects = 50"));
    // A body needs a method that carries one.
    let p = one(&http("body = \"x\""), &[]);
    assert_eq!(
        p.message,
        "a request body needs a method other than GET or HEAD, not method GET (the default); set method = \"POST\" \
         (or PUT, PATCH, …), or remove body"
    );
    assert_eq!(place(&p), (r#"check "c".body"#, 6, 1));
    let p = one(&http("method = \"head\"\nbody = \"x\""), &["not method = \"HEAD\""]);
    assert_eq!(place(&p), (r#"check "c".body"#, 7, 1));
    // max_redirects: 0 to 50, only when redirects are followed.
    let p = one(&http("max_redirects = 51"), &[]);
    assert_eq!(p.message, "51 is out of range; must be from 0 to 50 redirects");
    assert_eq!(place(&p), (r#"check "c".max_redirects"#, 6, 17));
    let p = one(&http("follow_redirects = false\nmax_redirects = 3"), &[]);
    assert_eq!(
        p.message,
        "max_redirects has no effect with follow_redirects = false; remove it, or set follow_redirects = true"
    );
    assert_eq!(place(&p), (r#"check "c".max_redirects"#, 7, 1));
    ok(&http("follow_redirects = true\nmax_redirects = 3"));
    // proxy = "env", or a URL whose message says so.
    let p = one(
        &http("proxy = \"ftp://proxy.example\""),
        &["or write \"env\" to use the HTTPS_PROXY, HTTP_PROXY and NO_PROXY"],
    );
    assert_eq!(place(&p), (r#"check "c".proxy"#, 6, 9));
    one(&http("proxy = \"environment\""), &["is not a URL", "or write \"env\""]);
    one(&http("client_key = \"c.key\""), &["client_key needs client_cert"]);
    one(&tcp("body = \"x\""), &["`body` does not apply to kind \"tcp\""]);
}

#[test]
fn http_status_ranges() {
    let c = ok(&http(r#"expect = { status = [200, "2xx", "300-399", "404", "5XX", " 301 - 302 "] }"#));
    let CheckSpec::Http(h) = spec(&c) else { panic!("http") };
    assert_eq!(h.expect.status, [(200, 200), (200, 299), (300, 399), (404, 404), (500, 599), (301, 302)]);
    for (value, message) in [
        (
            "\"6xx\"",
            "\"6xx\" is not a status code or range; write a code such as 200, a class such as \"2xx\", or a range such \
             as \"300-399\"",
        ),
        ("\"0xx\"", "\"0xx\" is not a status code or range"),
        ("\"abc\"", "\"abc\" is not a status code or range"),
        ("\"399-300\"", "\"399-300\" is backwards; write the lower code first, such as \"300-399\""),
        ("\"100-600\"", "600 is out of range; must be from 100 to 599"),
        ("\"99\"", "99 is out of range; must be from 100 to 599"),
        ("600", "600 is out of range; must be from 100 to 599"),
    ] {
        let text = http(&format!("expect = {{ status = [200, {value}] }}"));
        let p = one(&text, &[message]);
        assert_eq!(place(&p), (r#"check "c".expect.status"#, 6, col(&text, 6, value)), "{value}");
    }
    let text = http("expect = { status = [200, true] }");
    let p = one(
        &text,
        &[
            "expected an array of status codes and ranges such as [200, 204], [\"2xx\"] or [\"300-399\"], found boolean `true`",
        ],
    );
    assert_eq!(place(&p), (r#"check "c".expect.status"#, 6, col(&text, 6, "true")));
}

#[test]
fn http_header_and_body_expectations() {
    let c = ok(&http(
        r#"expect = { header_matches = { "Content-Type" = "json", x-cache = "^HIT$" }, body_not_matches = "(?i)maintenance" }"#,
    ));
    let CheckSpec::Http(h) = spec(&c) else { panic!("http") };
    let names: Vec<&str> = h.expect.header_matches.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["content-type", "x-cache"], "lowercased, file order");
    assert!(h.expect.header_matches[0].1.is_match("application/json"));
    let not = h.expect.body_not_matches.as_ref().expect("body_not_matches");
    assert!(not.is_match("Down for MAINTENANCE") && !not.is_match("ok"));
    let c = ok(&format!("{}[check.expect.header_matches]\nServer = \"nginx\"\n", http("")));
    let CheckSpec::Http(h) = spec(&c) else { panic!("http") };
    assert_eq!(h.expect.header_matches[0].0, "server");

    let text = http(r#"expect = { header_matches = { "bad name" = "x" } }"#);
    let p = one(&text, &["\"bad name\" is not a header name; use letters, digits and -, such as \"content-type\""]);
    assert_eq!(place(&p), (r#"check "c".expect.header_matches.bad name"#, 6, col(&text, 6, "\"bad")));
    let text = http(r#"expect = { header_matches = { "Content-Type" = "a", "content-type" = "b" } }"#);
    let p = one(&text, &["\"content-type\" is listed twice (header names are compared without case)"]);
    assert_eq!(place(&p), (r#"check "c".expect.header_matches.content-type"#, 6, col(&text, 6, "\"content-type")));
    let text = http(r#"expect = { header_matches = { server = "(" } }"#);
    let p = one(&text, &["not a valid regular expression"]);
    assert_eq!(place(&p), (r#"check "c".expect.header_matches.server"#, 6, col(&text, 6, "\"(\"")));
    let p = one(&http("expect = { header_matches = { server = 1 } }"), &["expected a table of regular expressions"]);
    assert_eq!(p.key, r#"check "c".expect.header_matches"#);
    let p = one(&http("expect = { body_not_matches = \"a{2,1}\" }"), &["not a valid regular expression"]);
    assert_eq!(place(&p), (r#"check "c".expect.body_not_matches"#, 6, 31));
    one(
        &tls("expect = { header_matches = { a = \"b\" } }"),
        &["`expect.header_matches` does not apply to kind \"tls\""],
    );
}

#[test]
fn egress_rules() {
    let text = check(
        "egress",
        "url = \"https://egress.example.nhs.uk/ip\"",
        "ca_file = \"/etc/gonogo/ca.pem\"\nverify = false\nproxy = \"http://proxy.example:3128\"\nexpect = { egress_in = [\"192.0.2.0/28\", \"2001:db8:1::/48\"] }",
    );
    let c = ok(&text);
    let CheckSpec::Egress(e) = spec(&c) else { panic!("egress") };
    assert_eq!(e.url, "https://egress.example.nhs.uk/ip");
    assert_eq!(e.ca_file.as_deref(), Some(Path::new("/etc/gonogo/ca.pem")));
    assert!(!e.verify);
    assert_eq!(e.proxy, Proxy::Url("http://proxy.example:3128".to_owned()));
    let nets: Vec<ipnet::IpNet> = ["192.0.2.0/28", "2001:db8:1::/48"].iter().map(|n| n.parse().expect("net")).collect();
    assert_eq!(e.expect.egress_in, nets);
    let c = ok(&egress("proxy = \"env\""));
    let CheckSpec::Egress(e) = spec(&c) else { panic!("egress") };
    assert!(e.verify && e.ca_file.is_none() && e.proxy == Proxy::Env);

    // egress_in is required: at the header without an expect table, at the table without the key.
    let text = format!("\n{}", check("egress", "url = \"https://egress.example/ip\"", ""));
    let p = one(&text, &[]);
    assert_eq!(
        p.message,
        "missing `expect.egress_in`, which an egress check needs; add expect = { egress_in = [\"192.0.2.0/28\"] }, \
         the site's NAT (egress) range(s) its traffic must leave from"
    );
    assert_eq!(place(&p), (r#"check "c""#, 2, 1));
    let text = check("egress", "url = \"https://egress.example/ip\"", "expect = { }");
    let p = one(&text, &["missing `egress_in`, which an egress check needs; add egress_in = [\"192.0.2.0/28\"]"]);
    assert_eq!(place(&p), (r#"check "c".expect"#, 6, 10));
    let text = format!("{}\n[check.expect]\n", check("egress", "url = \"https://egress.example/ip\"", ""));
    let p = one(&text, &["missing `egress_in`"]);
    assert_eq!(place(&p), (r#"check "c".expect"#, 7, 1));
    // A rejected expect or egress_in is reported once.
    one(&check("egress", "url = \"https://egress.example/ip\"", "expect = 3"), &["expected a table"]);
    let text = check("egress", "url = \"https://egress.example/ip\"", "expect = { egress_in = \"192.0.2.0/28\" }");
    let p = one(&text, &["expected an array of networks such as [\"10.0.0.0/8\", \"155.231.0.0/16\"], found string"]);
    assert_eq!(place(&p), (r#"check "c".expect.egress_in"#, 6, 24));
    let text = check("egress", "url = \"https://egress.example/ip\"", "expect = { egress_in = [] }");
    let p = one(&text, &["must list at least one network", "an egress check needs the site's NAT (egress) range(s)"]);
    assert_eq!(place(&p), (r#"check "c".expect.egress_in"#, 6, 24));
    let text = check("egress", "url = \"https://egress.example/ip\"", "expect = { egress_in = [\"192.0.2.1/28\"] }");
    let p = one(&text, &["has host bits set; did you mean \"192.0.2.0/28\"?"]);
    assert_eq!(place(&p), (r#"check "c".expect.egress_in"#, 6, 25));

    // The URL is an http(s) URL.
    let p = one(
        &check("egress", "url = \"ftp://egress.example/\"", "expect = { egress_in = [\"192.0.2.0/28\"] }"),
        &["has scheme \"ftp\"; an egress check needs an http:// or https:// URL with a host"],
    );
    assert_eq!(place(&p), (r#"check "c".url"#, 5, 7));
    one(
        &check("egress", "url = \"egress.example\"", "expect = { egress_in = [\"192.0.2.0/28\"] }"),
        &["is not a URL", "such as \"https://whatismyip.example.nhs.uk/\""],
    );
    // Keys of other kinds.
    let p = one(
        &egress("method = \"GET\""),
        &["`method` does not apply to kind \"egress\"; keys for egress: ca_file, verify, url, proxy, ip, source"],
    );
    assert_eq!(place(&p), (r#"check "c".method"#, 6, 1));
    one(&egress("client_cert = \"c.crt\""), &["`client_cert` does not apply to kind \"egress\""]);
    let text = check(
        "egress",
        "url = \"https://egress.example/ip\"",
        "expect = { egress_in = [\"192.0.2.0/28\"], status = [200] }",
    );
    one(&text, &["`expect.status` does not apply to kind \"egress\"; expect keys for egress: egress_in"]);
    one(&http("expect = { egress_in = [\"192.0.2.0/28\"] }"), &["`expect.egress_in` does not apply to kind \"http\""]);
}

/// Problems of the new keys in several checks and tables are all reported together, in file order.
#[test]
fn probe_depth_problems_all_reported() {
    let text = dedent(
        r#"
        [phase.post-migration]
        settle = "1h 1m"

        [[check]]
        name = "dns"
        kind = "dns"
        phases = ["post-migration"]
        query = "nww.nhs.uk"
        server = "155.231.231.1"
        servers = ["155.231.231.2"]
        expect = { answers_in = ["10.0.0.1"] }

        [[check]]
        name = "app"
        kind = "http"
        phases = ["post-migration", "regression"]
        url = "https://app.example.nhs.uk/"
        depends_on = ["dns", "nope"]
        ip = "4"
        source = "2001:db8::2"
        body = "x"
        retries = 101

        [[check]]
        name = "gone"
        kind = "icmp"
        phases = ["post-migration"]
        target = "10.0.0.1"
        ttl = 0
        dont_fragmnet = true
        "#,
    );
    let got: Vec<(usize, usize, String)> = problems(&text).into_iter().map(|p| (p.line, p.column, p.key)).collect();
    let want = [
        (2, 10, "phase.post-migration.settle"),
        (10, 1, r#"check "dns".servers"#),
        (11, 26, r#"check "dns".expect.answers_in"#),
        (18, 15, r#"check "app".depends_on"#),
        (18, 22, r#"check "app".depends_on"#),
        (20, 10, r#"check "app".source"#),
        (21, 1, r#"check "app".body"#),
        (22, 11, r#"check "app".retries"#),
        (29, 7, r#"check "gone".ttl"#),
        (30, 1, r#"check "gone".dont_fragmnet"#),
    ];
    let want: Vec<(usize, usize, String)> = want.iter().map(|(l, c, k)| (*l, *c, (*k).to_owned())).collect();
    assert_eq!(got, want, "{}", parse(&text).expect_err("bad"));
    let messages: Vec<String> = problems(&text).into_iter().map(|p| p.message).collect();
    assert!(
        messages[3].contains("runs in phase \"regression\" but its dependency \"dns\" does not"),
        "{}",
        messages[3]
    );
    assert!(messages[4].starts_with("no check named \"nope\""), "{}", messages[4]);
    assert!(messages[9].contains("did you mean `dont_fragment`?"), "{}", messages[9]);
}

// ---------------------------------------------------------------------------------------------------------
// Migration workflow: phase baselines, compare tolerances, block_preexisting, gates, [evidence]

/// `text` (built by a check helper) with its check in `phases` (a TOML array) instead of commissioning.
fn in_phases(text: &str, phases: &str) -> String {
    text.replacen("phases = [\"commissioning\"]", &format!("phases = {phases}"), 1)
}
/// `text` with its check in post-migration, whose baseline is pre-migration by default.
fn compared(text: &str) -> String {
    in_phases(text, r#"["post-migration"]"#)
}

#[test]
fn phase_baseline_defaults() {
    // Without any table: post-migration, regression and rollback-verify against pre-migration; no others.
    let c = ok(&icmp(""));
    let baselines: Vec<(&str, Option<&str>)> =
        c.phases.values().map(|p| (p.name.as_str(), p.baseline.as_deref())).collect();
    assert_eq!(
        baselines,
        [
            ("commissioning", None),
            ("post-migration", Some("pre-migration")),
            ("pre-migration", None),
            ("regression", Some("pre-migration")),
            ("rollback-verify", Some("pre-migration")),
        ]
    );
    // A table without `baseline` keeps the default; a declared phase has none unless it sets one; a baseline may
    // name a phase declared further down; cycles through baselines are fine.
    let text = format!(
        "[phase.post-migration]\ndescription = \"d\"\n[phase.cutover]\n[phase.regression]\nbaseline = \
         \"post-migration\"\n[phase.commissioning]\nbaseline = \"verify\"\n[phase.verify]\nbaseline = \
         \"commissioning\"\n[phase.pre-migration]\nbaseline = \"post-migration\"\n{}",
        icmp("")
    );
    let c = ok(&text);
    let baseline = |phase: &str| c.phases[phase].baseline.as_deref();
    assert_eq!(baseline("post-migration"), Some("pre-migration"));
    assert_eq!(baseline("cutover"), None);
    assert_eq!(baseline("regression"), Some("post-migration"));
    assert_eq!(baseline("commissioning"), Some("verify"));
    assert_eq!(baseline("verify"), Some("commissioning"));
    assert_eq!(baseline("pre-migration"), Some("post-migration"));
    assert_eq!(baseline("rollback-verify"), Some("pre-migration"));
}

#[test]
fn phase_baseline_rules() {
    // A phase is not its own baseline: the suggestion is another phase.
    let p = one("[phase.post-migration]\nbaseline = \"post-migration\"\n", &[]);
    assert_eq!(
        p.message,
        "a phase cannot be its own baseline; name the phase whose runs \"post-migration\" is compared with, such as \
         \"pre-migration\", or remove baseline"
    );
    assert_eq!(place(&p), ("phase.post-migration.baseline", 2, 12));
    let p = one("\n[phase.pre-migration]\nbaseline = \"pre-migration\"\n", &["such as \"commissioning\""]);
    assert_eq!(place(&p), ("phase.pre-migration.baseline", 3, 12));
    // Unknown, with a suggestion.
    let p = one("[phase.regression]\nbaseline = \"pre-migraton\"\n", &[]);
    assert_eq!(
        p.message,
        "unknown phase \"pre-migraton\"; did you mean \"pre-migration\"?; standard phases: commissioning, \
         pre-migration, post-migration, regression, rollback-verify; declared: none; declare new phases as \
         [phase.pre-migraton]"
    );
    assert_eq!(place(&p), ("phase.regression.baseline", 2, 12));
    let p = one(
        "[phase.cutover]\nbaseline = \"soak\"\n[phase.spare]\n",
        &["unknown phase \"soak\"", "declared: cutover, spare"],
    );
    assert_eq!(place(&p), ("phase.cutover.baseline", 2, 12));
    // Types and typos.
    let p = one("[phase.cutover]\nbaseline = 1\n", &[]);
    assert_eq!(p.message, "expected a phase name string such as \"pre-migration\", found integer `1`");
    assert_eq!(place(&p), ("phase.cutover.baseline", 2, 12));
    let p = one("[phase.cutover]\nbaselin = \"pre-migration\"\n", &["unknown key `baselin`; did you mean `baseline`?"]);
    assert!(p.message.ends_with("phase keys: description, every, settle, baseline"), "{}", p.message);
    assert_eq!(place(&p), ("phase.cutover.baselin", 2, 1));
    // Each phase's problem is reported, in file order.
    let text = "[phase.a]\nbaseline = \"a\"\n[phase.b]\nbaseline = \"c\"\n";
    let got: Vec<_> = problems(text).iter().map(|p| (p.line, p.column, p.key.clone())).collect();
    assert_eq!(got, [(2, 12, "phase.a.baseline".to_owned()), (4, 12, "phase.b.baseline".to_owned())]);
}

#[test]
fn compare_values() {
    // Defaults: nothing to compare beyond the pass/fail transition; pre-existing failures only warn.
    let c = ok(&compared(&icmp("")));
    assert!(c.checks[0].compare.is_empty() && !c.checks[0].block_preexisting);
    // icmp, inline.
    let c = ok(&compared(&icmp(r#"compare = { rtt_p95_max_increase = "20ms", loss_max_increase = 0.25 }"#)));
    let compare = &c.checks[0].compare;
    assert_eq!(compare.rtt_p95_max_increase, Some(Increase::Absolute(Duration::from_millis(20))));
    assert_eq!(compare.loss_max_increase, Some(0.25));
    assert!(!compare.answers_unchanged && !compare.cert_unchanged && !compare.status_unchanged);
    // As a [check.compare] table, with the check's expect table before it.
    let text = format!(
        "{}[check.expect]\nloss_max = 0.0\n[check.compare]\nrtt_p95_max_increase = \"25%\"\nloss_max_increase = 1\n",
        compared(&icmp(""))
    );
    let c = ok(&text);
    assert_eq!(c.checks[0].compare.rtt_p95_max_increase, Some(Increase::Percent(25.0)));
    assert_eq!(c.checks[0].compare.loss_max_increase, Some(1.0));
    for (value, want) in [
        ("12.5%", Increase::Percent(12.5)),
        (" 1000% ", Increase::Percent(1000.0)),
        ("0.01%", Increase::Percent(0.01)),
        ("1m30s", Increase::Absolute(Duration::from_secs(90))),
        ("1ms", Increase::Absolute(Duration::from_millis(1))),
    ] {
        for text in [icmp(""), tcp("")] {
            let text = compared(&format!("{text}compare = {{ rtt_p95_max_increase = \"{value}\" }}\n"));
            assert_eq!(ok(&text).checks[0].compare.rtt_p95_max_increase, Some(want), "{value}");
        }
    }
    ok(&compared(&icmp("compare = { loss_max_increase = 0.0 }")));
    // The flags of dns, tls and http.
    let c = ok(&compared(&dns("compare = { answers_unchanged = true }")));
    assert!(c.checks[0].compare.answers_unchanged && !c.checks[0].compare.is_empty());
    let c = ok(&compared(&tls("compare = { cert_unchanged = true }")));
    assert!(c.checks[0].compare.cert_unchanged);
    let c = ok(&compared(&http("compare = { status_unchanged = true }")));
    assert!(c.checks[0].compare.status_unchanged);
    let c = ok(&compared(&http("compare = { status_unchanged = false }")));
    assert!(c.checks[0].compare.is_empty());
    // An empty table is accepted, with or without a baseline.
    assert!(ok(&icmp("compare = {}")).checks[0].compare.is_empty());
}

#[test]
fn compare_value_rules() {
    const FORM: &str = "write a duration such as \"20ms\" or a percentage of the baseline such as \"25%\"";
    for (value, message) in [
        ("0%", "\"0%\" is out of range; a percentage is more than 0% and at most 1000%".to_owned()),
        ("-5%", "\"-5%\" is out of range; a percentage is more than 0% and at most 1000%".to_owned()),
        ("1000.5%", "\"1000.5%\" is out of range; a percentage is more than 0% and at most 1000%".to_owned()),
        ("abc%", format!("\"abc%\" is not a percentage; {FORM}")),
        ("NaN%", format!("\"NaN%\" is not a percentage; {FORM}")),
        ("inf%", format!("\"inf%\" is not a percentage; {FORM}")),
        ("0s", format!("must be more than zero; {FORM}")),
    ] {
        let text = compared(&icmp(&format!("compare = {{ rtt_p95_max_increase = \"{value}\" }}")));
        let p = one(&text, &[]);
        assert_eq!(p.message, message, "{value}");
        assert_eq!(place(&p), (r#"check "c".compare.rtt_p95_max_increase"#, 6, 36), "{value}");
    }
    let p = one(&compared(&tcp("compare = { rtt_p95_max_increase = \"soon\" }")), &[]);
    assert!(p.message.starts_with("\"soon\" is neither a duration ("), "{}", p.message);
    assert!(p.message.ends_with(&format!(") nor a percentage; {FORM}")), "{}", p.message);
    let p = one(&compared(&icmp("compare = { rtt_p95_max_increase = 20 }")), &[]);
    assert_eq!(
        p.message,
        "expected a duration such as \"20ms\" or a percentage such as \"25%\" (a string), found integer `20`"
    );
    assert_eq!(place(&p), (r#"check "c".compare.rtt_p95_max_increase"#, 6, 36));
    for bad in ["1.5", "-0.1"] {
        let p = one(&compared(&icmp(&format!("compare = {{ loss_max_increase = {bad} }}"))), &[]);
        assert_eq!(
            p.message,
            format!(
                "{bad} is out of range; a rise of the loss ratio is from 0.0 (no more loss than the baseline) to 1.0"
            )
        );
        assert_eq!(place(&p), (r#"check "c".compare.loss_max_increase"#, 6, 33));
    }
    let p = one(&compared(&icmp("compare = { loss_max_increase = \"x\" }")), &[]);
    assert_eq!(p.message, "expected a number from 0.0 to 1.0, found string \"x\"");
    let text = compared(&dns("[check.compare]\nanswers_unchanged = \"yes\""));
    let p = one(&text, &["expected true or false, found string \"yes\""]);
    assert_eq!(place(&p), (r#"check "c".compare.answers_unchanged"#, 7, 21));
    // Not a table.
    let p = one(&compared(&icmp("compare = 5")), &[]);
    assert_eq!(p.message, "expected a table: [check.compare] or compare = { … }, found integer `5`");
    assert_eq!(place(&p), (r#"check "c".compare"#, 6, 11));
    // Problems in compare, expect and the check itself are all reported.
    let text = compared(&icmp("count = 0\nexpect = { loss_max = 2.0 }\ncompare = { loss_max_increase = 2.0 }"));
    let got: Vec<_> = problems(&text).iter().map(|p| (p.line, p.column, p.key.clone())).collect();
    assert_eq!(
        got,
        [
            (6, 9, r#"check "c".count"#.to_owned()),
            (7, 23, r#"check "c".expect.loss_max"#.to_owned()),
            (8, 33, r#"check "c".compare.loss_max_increase"#.to_owned()),
        ]
    );
}

#[test]
fn compare_keys_must_apply_to_kind() {
    for (text, key, message) in [
        (
            tcp("compare = { loss_max_increase = 0.1 }"),
            "loss_max_increase",
            "`compare.loss_max_increase` does not apply to kind \"tcp\"; compare keys for tcp: rtt_p95_max_increase",
        ),
        (
            dns("compare = { rtt_p95_max_increase = \"1ms\" }"),
            "rtt_p95_max_increase",
            "`compare.rtt_p95_max_increase` does not apply to kind \"dns\"; compare keys for dns: answers_unchanged",
        ),
        (
            icmp("compare = { status_unchanged = true }"),
            "status_unchanged",
            "`compare.status_unchanged` does not apply to kind \"icmp\"; compare keys for icmp: \
             rtt_p95_max_increase, loss_max_increase",
        ),
        (
            tls("compare = { answers_unchanged = true }"),
            "answers_unchanged",
            "`compare.answers_unchanged` does not apply to kind \"tls\"; compare keys for tls: cert_unchanged",
        ),
        (
            http("compare = { cert_unchanged = true }"),
            "cert_unchanged",
            "`compare.cert_unchanged` does not apply to kind \"http\"; compare keys for http: status_unchanged",
        ),
    ] {
        // With a baseline or without: one problem, the key's (no second one about the baseline).
        for text in [compared(&text), text.clone()] {
            let p = one(&text, &[]);
            assert_eq!(p.message, message);
            assert_eq!(place(&p), (format!("check \"c\".compare.{key}").as_str(), 6, 13));
        }
    }
    // A key of another kind with a bad value: still one problem, about the kind.
    one(&compared(&tcp("compare = { loss_max_increase = 7.0 }")), &["does not apply to kind \"tcp\""]);
    // In a [check.compare] table: at the key.
    let text = compared(&tcp("[check.compare]\nrtt_p95_max_increase = \"10ms\"\nloss_max_increase = 0.1"));
    let p = one(&text, &["`compare.loss_max_increase` does not apply to kind \"tcp\""]);
    assert_eq!(place(&p), (r#"check "c".compare.loss_max_increase"#, 8, 1));
    // mtu and egress take no compare table at all.
    let p = one(&compared(&mtu("compare = { loss_max_increase = 0.1 }")), &[]);
    assert_eq!(p.message, "`compare` does not apply to kind \"mtu\"; keys for mtu: target, min, max, ip, source");
    assert_eq!(place(&p), (r#"check "c".compare"#, 6, 1));
    let p = one(&compared(&egress("compare = { status_unchanged = true }")), &[]);
    assert_eq!(
        p.message,
        "`compare` does not apply to kind \"egress\"; keys for egress: ca_file, verify, url, proxy, ip, source"
    );
    // Unknown keys: a suggestion and the keys of the kind; for a kind without compare keys, all of them.
    let p = one(&compared(&icmp("compare = { rtt_p95_increase = \"1ms\" }")), &[]);
    assert_eq!(
        p.message,
        "unknown key `rtt_p95_increase`; did you mean `rtt_p95_max_increase`?; compare keys for kind \"icmp\": \
         rtt_p95_max_increase, loss_max_increase"
    );
    assert_eq!(place(&p), (r#"check "c".compare.rtt_p95_increase"#, 6, 13));
    let all = problems(&compared(&mtu("compare = { x = 1 }")));
    let messages: Vec<&str> = all.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`compare` does not apply to kind \"mtu\"; keys for mtu: target, min, max, ip, source",
            "unknown key `x`; compare keys: rtt_p95_max_increase, loss_max_increase, answers_unchanged, \
             cert_unchanged, status_unchanged",
        ]
    );
}

#[test]
fn compare_needs_a_baseline() {
    // Without a baseline in any of the check's phases: at the compare key, naming the phases.
    let text = icmp("compare = { rtt_p95_max_increase = \"20ms\" }");
    let p = one(&text, &[]);
    assert_eq!(
        p.message,
        "check \"c\" has compare tolerances but none of its phases (commissioning) is compared with a baseline; set \
         baseline under [phase.commissioning] to the phase to compare with, such as baseline = \"pre-migration\", \
         or remove compare"
    );
    assert_eq!(place(&p), (r#"check "c".compare"#, 6, 1));
    let text = in_phases(&dns("[check.compare]\nanswers_unchanged = true"), r#"["pre-migration", "commissioning"]"#);
    let p = one(
        &text,
        &[
            "none of its phases (pre-migration, commissioning) is compared",
            "under [phase.pre-migration]",
            "such as baseline = \"commissioning\"",
        ],
    );
    assert_eq!(place(&p), (r#"check "c".compare"#, 6, 8));
    // A flag set to false is still a tolerance written where nothing is compared.
    one(&http("compare = { status_unchanged = false }"), &["has compare tolerances but"]);
    // Works: one phase of several has a baseline (default or set), in a standard or a declared phase.
    let with = icmp("compare = { loss_max_increase = 0.1 }");
    for phases in [r#"["commissioning", "post-migration"]"#, r#"["regression"]"#, r#"["rollback-verify"]"#] {
        ok(&in_phases(&with, phases));
    }
    ok(&format!("[phase.cutover]\nbaseline = \"pre-migration\"\n{}", in_phases(&with, r#"["cutover"]"#)));
    ok(&format!("[phase.commissioning]\nbaseline = \"cutover\"\n[phase.cutover]\n{with}"));
    // Not when the baseline itself is wrong, or a phase is unknown: those problems only.
    for (phase, fragment) in [
        ("[phase.cutover]\nbaseline = 1\n", "found integer `1`"),
        ("[phase.cutover]\nbaseline = \"nope\"\n", "unknown phase \"nope\""),
        ("[phase.cutover]\nbaseline = \"cutover\"\n", "cannot be its own baseline"),
    ] {
        let p = one(&format!("{phase}{}", in_phases(&with, r#"["cutover"]"#)), &[fragment]);
        assert_eq!(place(&p), ("phase.cutover.baseline", 2, 12));
    }
    one(&in_phases(&with, r#"["commissioning", "cutover"]"#), &["unknown phase \"cutover\""]);
    // A bad value and a missing baseline are two mistakes, both reported.
    let all = problems(&icmp("compare = { loss_max_increase = 3.0 }"));
    let got: Vec<_> = all.iter().map(place).collect();
    assert_eq!(got, [(r#"check "c".compare"#, 6, 1), (r#"check "c".compare.loss_max_increase"#, 6, 33)]);
}

#[test]
fn block_preexisting_rules() {
    // Works on every kind, in a phase with a baseline.
    for text in [icmp(""), tcp(""), dns(""), tls(""), http(""), mtu(""), egress("")] {
        let c = ok(&compared(&format!("{text}block_preexisting = true\n")));
        assert!(c.checks[0].block_preexisting, "{text}");
    }
    assert!(!ok(&compared(&icmp("block_preexisting = false"))).checks[0].block_preexisting);
    ok(&icmp("block_preexisting = false"));
    // Without a baseline it has no effect: at the key.
    let p = one(&icmp("block_preexisting = true"), &[]);
    assert_eq!(
        p.message,
        "check \"c\" has block_preexisting = true but none of its phases (commissioning) is compared with a \
         baseline; set baseline under [phase.commissioning] to the phase to compare with, such as baseline = \
         \"pre-migration\", or remove block_preexisting"
    );
    assert_eq!(place(&p), (r#"check "c".block_preexisting"#, 6, 1));
    let p = one(&compared(&icmp("block_preexisting = \"yes\"")), &["expected true or false, found string \"yes\""]);
    assert_eq!(place(&p), (r#"check "c".block_preexisting"#, 6, 21));
}

/// A `[gate.NAME]` table with `lines`, then a check (so the file has one).
fn gate(name: &str, lines: &str) -> String {
    format!("[gate.{name}]\n{lines}\n{}", icmp(""))
}

#[test]
fn gate_rules() {
    assert!(ok(&icmp("")).gates.is_empty());
    let text = format!(
        "[gate.go-live]\nrequires = [\"commissioning\", \"pre-migration\"]\nmax_age = \"90m\"\n[gate.done_2]\n\
         description = \"Accepted\"\nrequires = [\"cutover\", \"post-migration\"]\n[phase.cutover]\n{}",
        icmp("")
    );
    let c = ok(&text);
    assert_eq!(c.gates.keys().collect::<Vec<_>>(), ["done_2", "go-live"]);
    let live = &c.gates["go-live"];
    assert_eq!(live.name, "go-live");
    assert_eq!(live.requires, ["commissioning", "pre-migration"]);
    assert_eq!((live.max_age, live.description.as_deref()), (Duration::from_secs(5400), None));
    let done = &c.gates["done_2"];
    assert_eq!(done.requires, ["cutover", "post-migration"], "file order, declared phases too");
    assert_eq!((done.max_age, done.description.as_deref()), (DEFAULT_GATE_MAX_AGE, Some("Accepted")));
    assert_eq!(DEFAULT_GATE_MAX_AGE, Duration::from_secs(4 * 3600));

    // Names as check names.
    let p = one(&gate("Go-Live", "requires = [\"commissioning\"]"), &[]);
    assert_eq!(
        p.message,
        "\"Go-Live\" is not a valid gate name; use lowercase letters, digits, '-' and '_', starting with a letter or \
         digit, such as \"go-live\""
    );
    assert_eq!(place(&p), ("gate.Go-Live", 1, 7));
    // Unknown keys, wrong shapes.
    let p = one(&gate("g", "requires = [\"commissioning\"]\nmaxage = \"1h\""), &[]);
    assert_eq!(p.message, "unknown key `maxage`; did you mean `max_age`?; gate keys: description, requires, max_age");
    assert_eq!(place(&p), ("gate.g.maxage", 3, 1));
    let p = one(&format!("gate = 1\n{}", icmp("")), &[]);
    assert_eq!(
        p.message,
        "expected a table of gates; declare each as [gate.NAME] with requires = [\"pre-migration\", …]"
    );
    assert_eq!(place(&p), ("gate", 1, 8));
    let p = one(&format!("gate.g = 1\n{}", icmp("")), &["expected a table: [gate.NAME], found integer `1`"]);
    assert_eq!(place(&p), ("gate.g", 1, 10));
    let p =
        one(&gate("g", "requires = [\"commissioning\"]\ndescription = 5"), &["expected a string, found integer `5`"]);
    assert_eq!(place(&p), ("gate.g.description", 3, 15));
}

#[test]
fn gate_requires_rules() {
    // Missing: at the header; a rejected value is not also missing.
    let p = one(&format!("\n{}", gate("g", "max_age = \"1h\"")), &[]);
    assert_eq!(
        p.message,
        "missing `requires`; add requires = [\"pre-migration\"] naming the phases whose latest runs must be GO"
    );
    assert_eq!(place(&p), ("gate.g", 2, 1));
    let p = one(&gate("g", "requires = \"pre-migration\""), &[]);
    assert_eq!(
        p.message,
        "expected an array of phase names such as [\"commissioning\", \"pre-migration\"], found string \
         \"pre-migration\""
    );
    assert_eq!(place(&p), ("gate.g.requires", 2, 12));
    // Empty, repeated, unknown: at the list or the entry.
    let p = one(&gate("g", "requires = []"), &[]);
    assert_eq!(p.message, "must name at least one phase, such as [\"commissioning\", \"pre-migration\"]");
    assert_eq!(place(&p), ("gate.g.requires", 2, 12));
    let text = gate("g", r#"requires = ["pre-migration", "commissioning", "pre-migration", "post-migraton"]"#);
    let all = problems(&text);
    let got: Vec<_> = all.iter().map(place).collect();
    assert_eq!(
        got,
        [
            ("gate.g.requires", 2, last_col(&text, 2, "\"pre-migration\"")),
            ("gate.g.requires", 2, col(&text, 2, "\"post-migraton\"")),
        ]
    );
    assert_eq!(all[0].message, "phase \"pre-migration\" is listed twice");
    assert!(
        all[1]
            .message
            .starts_with("unknown phase \"post-migraton\"; did you mean \"post-migration\"?; standard phases"),
        "{}",
        all[1].message
    );
}

#[test]
fn gate_max_age_rules() {
    for (value, secs) in [("1m", 60), ("30d", 30 * 24 * 3600), ("4h", 4 * 3600), ("2h 30m", 9000)] {
        let c = ok(&gate("g", &format!("requires = [\"commissioning\"]\nmax_age = \"{value}\"")));
        assert_eq!(c.gates["g"].max_age, Duration::from_secs(secs), "{value}");
    }
    for (value, message) in [
        ("59s", "\"59s\" is too short; max_age is at least 1m".to_owned()),
        ("30d 1s", "\"30d 1s\" is too long; max_age may be at most 30d".to_owned()),
        ("0s", "must be more than zero".to_owned()),
    ] {
        let p = one(&gate("g", &format!("requires = [\"commissioning\"]\nmax_age = \"{value}\"")), &[]);
        assert_eq!(p.message, message, "{value}");
        assert_eq!(place(&p), ("gate.g.max_age", 3, 11), "{value}");
    }
    let p = one(&gate("g", "requires = [\"commissioning\"]\nmax_age = \"soon\""), &["\"soon\" is not a duration"]);
    assert_eq!(place(&p), ("gate.g.max_age", 3, 11));
    let p = one(&gate("g", "requires = [\"commissioning\"]\nmax_age = 4"), &[]);
    assert_eq!(p.message, "expected a duration string such as \"4h\", found integer `4`");
    assert_eq!(place(&p), ("gate.g.max_age", 3, 11));
}

#[test]
fn evidence_rules() {
    let at = |text: &str| gonogo_config::parse(text, Path::new("/etc/gonogo/gonogo.toml"));
    assert_eq!(ok(&icmp("")).evidence.signing_key, None);
    assert_eq!(ok(&format!("[evidence]\n{}", icmp(""))).evidence.signing_key, None);
    // Relative to the config file's directory; absolute as written.
    let c = at(&format!("[evidence]\nsigning_key = \"keys/journal.key\"\n{}", icmp(""))).expect("valid");
    assert_eq!(c.evidence.signing_key.as_deref(), Some(Path::new("/etc/gonogo/keys/journal.key")));
    let c = at(&format!("[evidence]\nsigning_key = \"/srv/journal.key\"\n{}", icmp(""))).expect("valid");
    assert_eq!(c.evidence.signing_key.as_deref(), Some(Path::new("/srv/journal.key")));
    // Mistakes.
    let p = one(&format!("[evidence]\nsigning_key = \"\"\n{}", icmp("")), &[]);
    assert_eq!(
        p.message,
        "must not be empty; give the path of the PEM (PKCS#8) Ed25519 private key that signs the journal, made by \
         `gonogo keygen`"
    );
    assert_eq!(place(&p), ("evidence.signing_key", 2, 15));
    let p = one(&format!("[evidence]\nsigning_key = 1\n{}", icmp("")), &[]);
    assert_eq!(p.message, "expected a file path string such as \"/etc/gonogo/journal.key\", found integer `1`");
    assert_eq!(place(&p), ("evidence.signing_key", 2, 15));
    let p = one(&format!("[evidence]\nsigning_kye = \"k\"\n{}", icmp("")), &[]);
    assert_eq!(p.message, "unknown key `signing_kye`; did you mean `signing_key`?; [evidence] keys: signing_key");
    assert_eq!(place(&p), ("evidence.signing_kye", 2, 1));
    let p = one(&format!("evidence = 1\n{}", icmp("")), &["expected a table: [evidence], found integer `1`"]);
    assert_eq!(place(&p), ("evidence", 1, 12));
}

#[test]
fn increase_display_and_ceiling() {
    let ms = Duration::from_millis;
    assert_eq!(Increase::Absolute(ms(20)).to_string(), "20ms");
    assert_eq!(Increase::Absolute(ms(90_000)).to_string(), "1m 30s");
    assert_eq!(Increase::Percent(25.0).to_string(), "25%");
    assert_eq!(Increase::Percent(12.5).to_string(), "12.5%");
    assert_eq!(Increase::Absolute(ms(20)).ceiling(ms(10)), ms(30));
    assert_eq!(Increase::Percent(25.0).ceiling(ms(100)), ms(125));
    assert_eq!(Increase::Percent(1000.0).ceiling(ms(2)), ms(22));
    assert_eq!(Increase::Percent(50.0).ceiling(Duration::ZERO), Duration::ZERO);
    assert_eq!(Increase::Percent(1000.0).ceiling(Duration::MAX), Duration::MAX);
    assert_eq!(Increase::Absolute(ms(1)).ceiling(Duration::MAX), Duration::MAX);
    assert!(Compare::default().is_empty());
    assert!(!Compare { loss_max_increase: Some(0.0), ..Compare::default() }.is_empty());
    assert!(!Compare { cert_unchanged: true, ..Compare::default() }.is_empty());
}

/// Problems of the workflow tables and keys, across phases, checks, gates and [evidence], all reported together
/// in file order.
#[test]
fn workflow_problems_all_reported() {
    let text = dedent(
        r#"
        [phase.regression]
        baseline = "regression"

        [phase.cutover]
        baseline = "pre-migratoin"

        [[check]]
        name = "ping"
        kind = "icmp"
        phases = ["commissioning"]
        target = "10.0.0.1"
        block_preexisting = true
        compare = { rtt_p95_max_increase = "5%" }

        [[check]]
        name = "app"
        kind = "tcp"
        phases = ["post-migration"]
        target = "10.0.0.1:443"
        compare = { rtt_p95_max_increase = "0%", loss_max_increase = 0.1 }

        [gate.go-live]
        requires = ["commissioning", "comissioning"]
        max_age = "31d"

        [gate.done]
        description = "d"

        [evidence]
        signing_key = ""
        "#,
    );
    let got: Vec<(usize, usize, String)> = problems(&text).into_iter().map(|p| (p.line, p.column, p.key)).collect();
    let want = [
        (2, 12, "phase.regression.baseline"),
        (5, 12, "phase.cutover.baseline"),
        (12, 1, r#"check "ping".block_preexisting"#),
        (13, 1, r#"check "ping".compare"#),
        (20, 36, r#"check "app".compare.rtt_p95_max_increase"#),
        (20, 42, r#"check "app".compare.loss_max_increase"#),
        (23, 30, "gate.go-live.requires"),
        (24, 11, "gate.go-live.max_age"),
        (26, 1, "gate.done"),
        (30, 15, "evidence.signing_key"),
    ];
    let want: Vec<(usize, usize, String)> = want.iter().map(|(l, c, k)| (*l, *c, (*k).to_owned())).collect();
    assert_eq!(got, want, "{}", parse(&text).expect_err("bad"));
}

// ---------------------------------------------------------------------------------------------------------
// JSON Schema (deploy/schema/gonogo.schema.json)
//
// Validated by `schema_errors`, a small validator for exactly the keywords `gonogo_config::schema` emits (it
// panics on any other keyword, so the schema cannot grow a rule these tests silently ignore). The `jsonschema`
// crate was not used: it is heavy, and this subset is some sixty lines.

fn schema_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/schema/gonogo.schema.json")
}

/// Why `value` (at JSON pointer `at`) does not satisfy `schema`; empty when it does.
fn schema_errors(schema: &serde_json::Value, value: &serde_json::Value, at: &str) -> Vec<String> {
    use serde_json::Value;
    let mut errors = Vec::new();
    let rules = match schema {
        Value::Bool(true) => return errors,
        Value::Bool(false) => return vec![format!("{at}: not allowed here")],
        Value::Object(rules) => rules,
        other => panic!("not a schema: {other}"),
    };
    let type_is = |t: &str| match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        other => panic!("unknown type {other}"),
    };
    for (keyword, rule) in rules {
        match keyword.as_str() {
            "$schema" | "title" | "description" => {}
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::Array(types) => types.iter().filter_map(Value::as_str).collect(),
                    other => vec![other.as_str().expect("type name")],
                };
                if !types.iter().any(|t| type_is(t)) {
                    errors.push(format!("{at}: {value} is not of type {types:?}"));
                }
            }
            "properties" | "additionalProperties" | "propertyNames" | "required" => {
                let Some(object) = value.as_object() else { continue };
                let properties = rules.get("properties").and_then(Value::as_object);
                for (key, item) in object {
                    let path = format!("{at}/{key}");
                    match keyword.as_str() {
                        "properties" => {
                            if let Some(sub) = properties.and_then(|p| p.get(key)) {
                                errors.extend(schema_errors(sub, item, &path));
                            }
                        }
                        "additionalProperties" if !properties.is_some_and(|p| p.contains_key(key)) => {
                            errors.extend(schema_errors(rule, item, &path));
                        }
                        "propertyNames" => errors.extend(schema_errors(rule, &Value::String(key.clone()), &path)),
                        _ => {}
                    }
                }
                if keyword == "required" {
                    for key in rule.as_array().expect("required list").iter().filter_map(Value::as_str) {
                        if !object.contains_key(key) {
                            errors.push(format!("{at}: missing `{key}`"));
                        }
                    }
                }
            }
            "enum" => {
                if !rule.as_array().expect("enum list").contains(value) {
                    errors.push(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "const" => {
                if value != rule {
                    errors.push(format!("{at}: {value} is not {rule}"));
                }
            }
            "pattern" => {
                let pattern = regex::Regex::new(rule.as_str().expect("pattern text")).expect("pattern compiles");
                if let Some(text) = value.as_str().filter(|t| !pattern.is_match(t)) {
                    errors.push(format!("{at}: {text:?} does not match {pattern}"));
                }
            }
            "minimum" | "maximum" => {
                let (Some(v), Some(bound)) = (value.as_f64(), rule.as_f64()) else { continue };
                if (keyword == "minimum" && v < bound) || (keyword == "maximum" && v > bound) {
                    errors.push(format!("{at}: {value} is beyond the {keyword} {rule}"));
                }
            }
            "items" | "minItems" | "uniqueItems" => {
                let Some(items) = value.as_array() else { continue };
                match keyword.as_str() {
                    "items" => {
                        for (i, item) in items.iter().enumerate() {
                            errors.extend(schema_errors(rule, item, &format!("{at}/{i}")));
                        }
                    }
                    "minItems" if (items.len() as u64) < rule.as_u64().expect("count") => {
                        errors.push(format!("{at}: fewer than {rule} items"));
                    }
                    "uniqueItems"
                        if rule == &Value::Bool(true)
                            && items.iter().enumerate().any(|(i, a)| items[..i].contains(a)) =>
                    {
                        errors.push(format!("{at}: items repeat"));
                    }
                    _ => {}
                }
            }
            "allOf" => {
                for sub in rule.as_array().expect("allOf list") {
                    errors.extend(schema_errors(sub, value, at));
                }
            }
            "if" => {
                if schema_errors(rule, value, at).is_empty()
                    && let Some(then) = rules.get("then")
                {
                    errors.extend(schema_errors(then, value, at));
                }
            }
            "then" => {}
            other => panic!("the test validator does not know the keyword {other:?}: teach it, or do not emit it"),
        }
    }
    errors
}

/// `text` (TOML) as JSON, as an editor sees it.
fn as_json(text: &str) -> serde_json::Value {
    toml::from_str(text).unwrap_or_else(|e| panic!("TOML to JSON: {e}\n{text}"))
}

#[test]
fn schema_file_is_generated() {
    let generated = serde_json::to_string_pretty(&gonogo_config::schema::json_schema()).expect("schema serializes");
    let generated = format!("{generated}\n");
    let path = schema_path();
    if std::env::var_os("GONOGO_WRITE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create deploy/schema");
        std::fs::write(&path, &generated).expect("write schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is not the schema the code generates (a key table in config/src/raw.rs or a rule in \
         config/src/schema.rs changed); regenerate it with: GONOGO_WRITE_SCHEMA=1 cargo test -p gonogo-config schema",
        path.display()
    );
}

#[test]
fn schema_describes_every_key_with_a_type() {
    let schema = gonogo_config::schema::json_schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    fn walk(schema: &serde_json::Value, at: &str, tables: &mut usize) {
        let Some(rules) = schema.as_object() else { return };
        if rules.get("type").is_some_and(|t| t == "object") && rules.contains_key("properties") {
            *tables += 1;
            assert_eq!(rules.get("additionalProperties"), Some(&serde_json::Value::Bool(false)), "{at} is open");
            for (key, sub) in rules["properties"].as_object().expect("properties") {
                assert!(sub.get("type").is_some(), "{at}/{key} has no type: teach config/src/schema.rs its value");
                assert!(sub.get("description").is_some(), "{at}/{key} has no description");
                walk(sub, &format!("{at}/{key}"), tables);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = rules.get(key) {
                walk(sub, &format!("{at}/{key}"), tables);
            }
        }
    }
    let mut tables = 0;
    walk(&schema, "", &mut tables);
    // The root, site, defaults, phase, check, expect, compare, api, token, storage, metrics, gate, evidence.
    assert_eq!(tables, 13);
    // Every check key is offered, and those of other kinds are refused, kind by kind.
    let check = &schema["properties"]["check"]["items"];
    for key in gonogo_config::raw::CHECK_KEYS {
        assert!(check["properties"].get(key.name).is_some(), "{}", key.name);
    }
    assert_eq!(check["allOf"].as_array().expect("rules").len(), gonogo_config::raw::KINDS.len());
}

#[test]
fn schema_accepts_the_examples() {
    let schema = gonogo_config::schema::json_schema();
    for file in example_files() {
        let text = std::fs::read_to_string(&file).expect("read example");
        gonogo_config::parse(&text, &file).unwrap_or_else(|p| panic!("{}:\n{p}", file.display()));
        let errors = schema_errors(&schema, &as_json(&text), "");
        assert!(errors.is_empty(), "{} is valid but the schema refuses it:\n{}", file.display(), errors.join("\n"));
    }
}

#[test]
fn schema_accepts_what_the_code_accepts() {
    let schema = gonogo_config::schema::json_schema();
    // Values the agent reads case-insensitively, humantime spellings, status forms and ranges at their ends.
    let text = dedent(
        r#"
        [defaults]
        timeout = "1m 30s"
        concurrency = 4096
        [phase.commissioning]
        every = "1.5h"
        settle = " 2 min "
        [[check]]
        name = "d"
        kind = "dns"
        phases = ["commissioning"]
        query = "nww.nhs.uk"
        record = "aaaa"
        transport = "TCP"
        retries = 0
        [check.expect]
        rcode = "nxdomain"
        min_answers = 0
        [[check]]
        name = "h"
        kind = "http"
        phases = ["commissioning"]
        url = "https://app.example/health"
        method = "get"
        ip = "BOTH"
        body_limit = 1
        [check.expect]
        status = [200, "2xx", "3XX", "300-399", "404"]
        latency_max = "500ms"
        [[check]]
        name = "p"
        kind = "icmp"
        phases = ["commissioning"]
        target = "10.0.0.1"
        ttl = 255
        size = 0
        interval = "1ms"
        [check.expect]
        loss_max = 0
        rtt_p95_max = "20ms"
        [[check]]
        name = "t"
        kind = "tls"
        phases = ["commissioning"]
        target = "app.example:443"
        min_version = "1.2"
        [check.expect]
        fingerprint_sha256 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
        "#,
    );
    ok(&text);
    let errors = schema_errors(&schema, &as_json(&text), "");
    assert!(errors.is_empty(), "the schema refuses what the code accepts:\n{}", errors.join("\n"));
}

#[test]
fn schema_refuses_what_the_code_refuses() {
    let schema = gonogo_config::schema::json_schema();
    let refused = |text: &str, why: &str| {
        assert!(parse(text).is_err(), "the code accepts ({why}):\n{text}");
        let errors = schema_errors(&schema, &as_json(text), "");
        assert!(!errors.is_empty(), "the schema accepts ({why}):\n{text}");
        errors
    };
    // An unknown key in every table of every example, as `examples_reject_unknown_key_in_every_table` does.
    for file in example_files() {
        let text = std::fs::read_to_string(&file).expect("read example");
        for inj in injections(&text) {
            let mut modified = text.clone();
            modified.insert_str(inj.offset, inj.text);
            let errors = refused(&modified, &format!("{}: {}", file.display(), inj.key));
            assert!(errors.iter().any(|e| e.ends_with("/bogus_key: not allowed here")), "{errors:?}");
        }
    }
    // A key of another kind, in a check, its expect and its compare.
    let errors = refused(&dns("count = 5"), "count on a dns check");
    assert_eq!(errors, ["/check/0/count: not allowed here"]);
    let errors = refused(&icmp("query = \"nww.nhs.uk\""), "query on an icmp check");
    assert_eq!(errors, ["/check/0/query: not allowed here"]);
    let errors = refused(&tcp("[check.expect]\nloss_max = 0.1"), "expect.loss_max on a tcp check");
    assert_eq!(errors, ["/check/0/expect/loss_max: not allowed here"]);
    let text = format!(
        "[phase.commissioning]\nbaseline = \"pre-migration\"\n{}",
        tls("[check.compare]\nloss_max_increase = 0.1")
    );
    let errors = refused(&text, "compare.loss_max_increase on a tls check");
    assert_eq!(errors, ["/check/0/compare/loss_max_increase: not allowed here"]);
    // Every key that does not apply to a kind is refused by both, kind by kind.
    for kind in gonogo_config::raw::KINDS {
        for key in gonogo_config::raw::CHECK_KEYS.iter().filter(|k| !k.applies_to(kind)) {
            let text = check(kind, "target = \"10.0.0.1\"\nquery = \"x\"\nurl = \"https://a.example/\"", "");
            let mut value = as_json(&text);
            value["check"][0][key.name] = serde_json::json!("x");
            let errors = schema_errors(&schema, &value, "");
            assert!(
                errors.iter().any(|e| e == &format!("/check/0/{}: not allowed here", key.name)),
                "{kind} {}",
                key.name
            );
        }
    }
    // Values: enums, ranges, patterns, required keys.
    refused(&dns("record = \"AXFR\""), "an unknown record type");
    refused(&icmp("ttl = 256"), "ttl beyond 255");
    refused(&icmp("timeout = \"soon\""), "a timeout that is not a duration");
    refused(&http("[check.expect]\nstatus = [600]"), "a status beyond 599");
    refused(&tls("min_version = \"1.1\""), "TLS 1.1");
    refused("[[check]]\nname = \"c\"\nkind = \"dns\"\nphases = [\"commissioning\"]\n", "a dns check without query");
    refused("[[token]]\nname = \"t\"\nsha256 = \"00\"\nroles = [\"admin\"]\n", "an unknown role and a short hash");
    refused("[phase.Bad]\ndescription = \"x\"\n", "a phase name in capitals");
}
