//! `--include` / `--exclude` as a careless admin types them: a display name with a comma is one
//! value, and a value that matches no mailbox is reported, not silently ignored. Real pwsh
//! against the simulated tenant.

use crate::common;

use common::tenant::{SimTenant, describe, monitor_on_default_calendars, records};
use serde_json::Value;

const MONITOR: &str = "monitor@contoso.com";

fn outcome_of(records: &[Value], mailbox: &str) -> (String, String) {
    let r = records
        .iter()
        .find(|r| r["type"] == "mailbox" && r["mailbox"] == mailbox)
        .unwrap_or_else(|| panic!("no record for {mailbox}"));
    (
        r["outcome"].as_str().unwrap_or_default().to_string(),
        r["kind"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn exclude_value_with_comma() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|tenant| {
        for r in tenant["recipients"].as_array_mut().unwrap() {
            if r["primarySmtpAddress"] == "anna.schmidt@contoso.com" {
                r["displayName"] = Value::from("Schmidt, Anna");
            }
        }
    });
    let out = t.run_json(&["grant", "--monitor", MONITOR, "--exclude", "Schmidt, Anna"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let records = records(&out);
    assert_eq!(
        outcome_of(&records, "anna.schmidt@contoso.com"),
        ("skipped".to_string(), "excluded".to_string())
    );
    assert_eq!(outcome_of(&records, "adele.vance@contoso.com").0, "added");
    assert_eq!(
        monitor_on_default_calendars(&t.now(), MONITOR)["anna.schmidt@contoso.com"],
        None,
        "the excluded mailbox was granted"
    );
    assert!(
        !records.iter().any(|r| r["type"] == "warning"),
        "{records:?}"
    );

    // An address list still splits; a list of bare names is ambiguous and refused up front.
    let out = t.run_json(&[
        "grant",
        "--monitor",
        MONITOR,
        "--what-if",
        "--include",
        "adele.vance@contoso.com,alex.wilber@contoso.com",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(records_of_type(&out, "mailbox"), 2);
    let out = t.run_json(&["grant", "--monitor", MONITOR, "--exclude", "anna,bert"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("is ambiguous"),
        "{}",
        describe(&out)
    );
}

fn records_of_type(out: &std::process::Output, kind: &str) -> usize {
    records(out).iter().filter(|r| r["type"] == kind).count()
}

#[test]
fn unmatched_include_exclude_warns() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let out = t.run_json(&[
        "grant",
        "--monitor",
        MONITOR,
        "--exclude",
        "adele.vance@contoso.com",
        "--exclude",
        "Schmidt, Ana",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let warnings: Vec<Value> = records(&out)
        .into_iter()
        .filter(|r| r["type"] == "warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{}", describe(&out));
    assert_eq!(warnings[0]["kind"], "unmatched-filter");
    assert_eq!(
        warnings[0]["values"],
        serde_json::json!(["Exclude Schmidt, Ana"])
    );
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains("warning (unmatched-filter): 1 value(s) matched no mailbox in scope: Exclude Schmidt, Ana."),
        "the summary does not show it: {stderr}"
    );

    let out = t.run_json(&[
        "grant",
        "--monitor",
        MONITOR,
        "--include",
        "adele.vance@contoso.com",
        "--include",
        "ghost@contoso.com",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let warning = records(&out)
        .into_iter()
        .find(|r| r["type"] == "warning")
        .unwrap_or_else(|| panic!("no warning: {}", describe(&out)));
    assert_eq!(
        warning["values"],
        serde_json::json!(["Include ghost@contoso.com"])
    );
}
