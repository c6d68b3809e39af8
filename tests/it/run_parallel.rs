//! `calperm run grant|audit|revoke --parallel N` end to end: the rendered script, unchanged, in N real
//! pwsh workers against the simulated tenant, compared with the same run done serially.

use crate::common;

use common::tenant::{SimTenant, assert_granted_in_scope, describe, mailbox_records, permissions};
use serde_json::Value;
use std::collections::BTreeMap;

const MONITOR: &str = "monitor@contoso.com";

/// Mailbox -> (outcome, rights), the per-mailbox result of a run.
fn outcomes(records: &[Value]) -> BTreeMap<String, (String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["mailbox"].as_str().unwrap().to_lowercase(),
                (r["outcome"].to_string(), r["rights"].to_string()),
            )
        })
        .collect()
}

fn grant(t: &SimTenant, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["grant", "--monitor", MONITOR];
    args.extend_from_slice(extra);
    t.run_json(&args)
}

#[test]
fn parallel_grant_and_audit_match_serial_ones() {
    if common::pwsh().is_none() {
        return;
    }
    let serial = SimTenant::demo();
    let parallel = SimTenant::demo();
    for script in ["grant", "audit"] {
        let a = serial.run_json(&[script, "--monitor", MONITOR]);
        let b = parallel.run_json(&[script, "--monitor", MONITOR, "--parallel", "3"]);
        assert_eq!(a.status.code(), b.status.code(), "{}", describe(&b));
        let (ra, rb) = (mailbox_records(&a), mailbox_records(&b));
        assert_eq!(ra.len(), rb.len(), "{}", describe(&b));
        assert_eq!(outcomes(&ra), outcomes(&rb), "{script}: {}", describe(&b));
        assert_eq!(
            permissions(&serial.now()),
            permissions(&parallel.now()),
            "{script}: the tenant states differ"
        );
        let err = String::from_utf8_lossy(&b.stderr);
        assert!(
            err.contains("--parallel 3: concurrency min"),
            "the summary names the concurrency: {err}"
        );
    }
    // The grant reached every mailbox in scope.
    assert_granted_in_scope(&parallel.now(), &parallel.now(), MONITOR, "");
}

#[test]
fn a_concurrency_limit_below_the_workers_is_absorbed() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|json| {
        json["faults"]["concurrencyLimit"] = 2.into();
        // Long enough calls that the six workers overlap even when a loaded machine starts their
        // pwsh seconds apart (at 40 ms the first ones could finish the demo tenant alone).
        json["faults"]["latencyMs"] = 150.into();
    });
    let out = grant(&t, &["--parallel", "6", "--max-retries", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let records = mailbox_records(&out);
    assert!(
        records.iter().all(|r| r["outcome"] != "failed"),
        "{records:?}"
    );
    let state = t.now();
    let refused = state["stats"]["concurrencyRefused"].as_u64().unwrap_or(0);
    assert!(
        refused > 0,
        "the limit was never hit: the test proves nothing"
    );
    let retries: u64 = records.iter().map(|r| r["retries"].as_u64().unwrap()).sum();
    assert!(retries > 0, "refused calls are retried");
    assert_granted_in_scope(&state, &state, MONITOR, "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("concurrency min 6 "),
        "it never adapted: {err}"
    );
}

#[test]
fn a_worker_crash_is_exit_4_and_resume_grants_every_mailbox_once() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|json| json["faults"]["crashAtMailbox"] = 4.into());
    let journal = t.file("crash.jsonl");
    let journal_arg = journal.to_str().unwrap();
    let crashed = grant(&t, &["--parallel", "3", "--journal", journal_arg]);
    assert_eq!(crashed.status.code(), Some(4), "{}", describe(&crashed));
    let err = String::from_utf8_lossy(&crashed.stderr);
    assert!(
        err.contains("--resume") && err.contains("crash.jsonl"),
        "{err}"
    );
    assert!(err.contains("ended (signal 9)"), "{err}");
    let first = common::journal(&journal);
    assert!(
        first.iter().any(|r| r["type"] == "mailbox"),
        "some were done"
    );

    // Each worker's crash fires once; the state disarms it. Resume in parallel.
    let resumed = grant(&t, &["--parallel", "3", "--resume", journal_arg]);
    assert_eq!(resumed.status.code(), Some(0), "{}", describe(&resumed));
    let all = common::journal(&journal);
    let mut grants: BTreeMap<String, usize> = BTreeMap::new();
    for r in all.iter().filter(|r| r["type"] == "mailbox") {
        if r["outcome"] == "added" || r["outcome"] == "updated" {
            *grants
                .entry(r["mailbox"].as_str().unwrap().to_lowercase())
                .or_default() += 1;
        }
    }
    assert!(grants.values().all(|n| *n == 1), "{grants:?}");
    let state = t.now();
    assert_granted_in_scope(&state, &state, MONITOR, "");
}

#[test]
fn parallel_with_interactive_sign_in_is_refused() {
    let out = common::calperm()
        .args(["run", "grant", "--monitor", MONITOR, "--parallel", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unattended sign-in") && err.contains("exo-app"),
        "{err}"
    );
    // Other scripts have no mailbox queue.
    let out = common::calperm()
        .args(["run", "ews-readiness", "--parallel", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

#[test]
fn parallel_revoke_from_journal_matches_a_serial_one() {
    if common::pwsh().is_none() {
        return;
    }
    let serial = SimTenant::demo();
    let parallel = SimTenant::demo();
    let mut results = Vec::new();
    for (t, extra) in [(&serial, &[][..]), (&parallel, &["--parallel", "3"][..])] {
        let journal = t.file("grant.jsonl");
        let journal_arg = journal.to_str().unwrap();
        let granted = grant(t, &["--journal", journal_arg]);
        assert_eq!(granted.status.code(), Some(0), "{}", describe(&granted));
        let mut args = vec![
            "revoke",
            "--monitor",
            MONITOR,
            "--from-journal",
            journal_arg,
        ];
        args.extend_from_slice(extra);
        let out = t.run_json(&args);
        results.push(out);
    }
    let (a, b) = (&results[0], &results[1]);
    assert_eq!(a.status.code(), b.status.code(), "{}", describe(b));
    let (ra, rb) = (mailbox_records(a), mailbox_records(b));
    assert!(
        ra.iter().any(|r| r["outcome"] == "removed"),
        "the serial revoke removed nothing: the comparison proves nothing: {}",
        describe(a)
    );
    assert_eq!(ra.len(), rb.len(), "{}", describe(b));
    assert_eq!(outcomes(&ra), outcomes(&rb), "{}", describe(b));
    assert_eq!(
        permissions(&serial.now()),
        permissions(&parallel.now()),
        "the tenant states differ"
    );
    assert!(
        String::from_utf8_lossy(&b.stderr).contains("--parallel 3: concurrency min"),
        "{}",
        describe(b)
    );
}
