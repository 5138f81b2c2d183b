//! ICMP without privilege: the check is an `error` that says what to grant, and the rest of the phase runs.
//!
//! Runs the real binary in a fresh network namespace (where net.ipv4.ping_group_range is at its kernel
//! default "1 0", whatever the host has) with CAP_NET_RAW removed from its capability sets. Needs root,
//! `unshare`, `setpriv` and `ip`; skipped with a message otherwise.

use crate::support::run_in_fresh_netns;

#[test]
fn icmp_without_cap_net_raw_is_an_error_with_the_fix_and_the_phase_still_runs() {
    let Some(doc) = run_in_fresh_netns(
        r#"
[[check]]
name = "ping"
kind = "icmp"
target = "127.0.0.1"
count = 2
interval = "10ms"
timeout = "1s"
phases = ["commissioning"]

[[check]]
name = "port"
kind = "tcp"
target = "127.0.0.1:9"
required = false
timeout = "1s"
phases = ["commissioning"]
"#,
        "commissioning",
        // Bring lo up, then exec gonogo without CAP_NET_RAW (dropped from the bounding and inheritable sets,
        // so the exec'd root process does not regain it).
        "ip link set lo up && exec setpriv --bounding-set -net_raw --inh-caps -net_raw",
    ) else {
        return;
    };
    assert_eq!(doc["exit_code"], 2, "required check in error → INCONCLUSIVE");
    assert_eq!(doc["verdict"], "INCONCLUSIVE");
    let ping = &doc["checks"][0];
    assert_eq!(ping["outcome"], "error", "{ping}");
    let reason = ping["reasons"][0].as_str().unwrap_or_default();
    assert!(reason.contains("CAP_NET_RAW") && reason.contains("ping_group_range"), "{reason}");
    // The rest of the phase ran: the TCP check measured (refused: nothing listens on port 9 there).
    assert_eq!(doc["checks"][1]["outcome"], "fail", "{}", doc["checks"][1]);
    assert_eq!(doc["checks"][1]["observations"]["failure"], "connection_refused");
}
