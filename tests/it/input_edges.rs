//! The edges a careless or hostile input reaches: names that are formulas or terminal escape
//! sequences, one very long address, a badly made mailbox CSV or tenant file, a `--pwsh` that is
//! not PowerShell, a report file that cannot be written. Each is caught before anything runs
//! (exit 2 or 3) or shown harmlessly. Real pwsh against the simulated tenant where a script runs.

use crate::common;

use common::tenant::{SimTenant, describe};
use serde_json::Value;

const MONITOR: &str = "monitor@contoso.com";

fn rename(tenant: &mut Value, address: &str, edit: impl FnOnce(&mut Value)) {
    let recipient = tenant["recipients"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["primarySmtpAddress"] == address)
        .unwrap();
    edit(recipient);
}

#[test]
fn csv_report_neutralises_formulas() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::edited(|tenant| {
        rename(tenant, "adele.vance@contoso.com", |r| {
            r["displayName"] = Value::from("=HYPERLINK(\"http://evil.example\",\"Adele\")")
        });
        rename(tenant, "alex.wilber@contoso.com", |r| {
            r["displayName"] = Value::from("@SUM(1+1)")
        });
        rename(tenant, "megan.bowen@contoso.com", |r| {
            r["displayName"] = Value::from("\t-2+3")
        });
    });
    let out = t.run(&[
        "grant",
        "--monitor",
        MONITOR,
        "--format",
        "csv",
        "--report",
        "r.csv",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for text in [
        common::stdout(&out),
        std::fs::read_to_string(t.file("r.csv")).unwrap(),
    ] {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        let name = header.iter().position(|h| h == "displayName").unwrap();
        let mailbox = header.iter().position(|h| h == "mailbox").unwrap();
        let mut seen = 0;
        for row in reader.records() {
            let row = row.unwrap();
            for cell in row.iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "a cell a spreadsheet runs as a formula: {cell:?}"
                );
            }
            match &row[mailbox] {
                "adele.vance@contoso.com" => {
                    assert_eq!(&row[name], "'=HYPERLINK(\"http://evil.example\",\"Adele\")");
                    seen += 1;
                }
                "alex.wilber@contoso.com" => {
                    assert_eq!(&row[name], "'@SUM(1+1)");
                    seen += 1;
                }
                "megan.bowen@contoso.com" => {
                    assert_eq!(&row[name], "'\t-2+3");
                    seen += 1;
                }
                _ => {}
            }
        }
        assert_eq!(seen, 3, "{text}");
    }
    // The journal keeps the name as Exchange gave it.
    let journal = std::fs::read_dir(t.file(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("calperm-journal-"))
        .unwrap();
    assert!(
        common::journal(&journal)
            .iter()
            .any(|r| r["displayName"] == "=HYPERLINK(\"http://evil.example\",\"Adele\")")
    );
}

#[test]
fn table_escapes_control_characters() {
    if common::pwsh().is_none() {
        return;
    }
    // Anna renamed her calendar: a terminal escape sequence (clear screen, red) and a
    // right-to-left override.
    let evil = "K\u{1b}[2Jal\u{202e}x";
    let t = SimTenant::edited(|tenant| {
        rename(tenant, "anna.schmidt@contoso.com", |r| {
            for f in r["folders"].as_array_mut().unwrap() {
                if f["folderType"] == "Calendar" {
                    f["name"] = Value::from(evil);
                    f["folderPath"] = Value::from(format!("/{evil}"));
                }
            }
        });
    });
    let out = t.run(&["grant", "--monitor", MONITOR]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = common::stdout(&out);
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{202e}'),
        "raw control characters in the table:\n{stdout:?}"
    );
    assert!(stdout.contains("K\\u{1b}[2Jal\\u{202e}x"), "{stdout}");
}

#[test]
fn table_truncates_long_cells() {
    if common::pwsh().is_none() {
        return;
    }
    let long = format!("{}@contoso.com", "a".repeat(150));
    let t = SimTenant::edited(|tenant| {
        rename(tenant, "adele.vance@contoso.com", |r| {
            r["primarySmtpAddress"] = Value::from(long.clone());
            r["userPrincipalName"] = Value::from(long.clone());
        });
    });
    let out = t.run(&["grant", "--monitor", MONITOR, "--journal", "j.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = common::stdout(&out);
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("MAILBOX"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(table.len() > 10, "{stdout}");
    let header = table[0];
    let rights_at = header.find("RIGHTS").unwrap();
    assert!(
        rights_at < 100,
        "one long address widened every row: {header:?}"
    );
    assert!(
        stdout.contains(&format!("{}…", "a".repeat(20))) && !stdout.contains(&long),
        "{stdout}"
    );
    // The journal has the whole address.
    assert!(
        common::journal(&t.file("j.jsonl"))
            .iter()
            .any(|r| r["mailbox"] == long.as_str())
    );
}

#[test]
fn csv_header_with_spaces_is_exit_2_before_connecting() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    std::fs::write(
        t.file("list.csv"),
        " PrimarySmtpAddress ,Note\nadele.vance@contoso.com,x\n",
    )
    .unwrap();
    let out = t.run(&["grant", "--monitor", MONITOR, "--mailboxes-csv", "list.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = common::stderr(&out);
    assert!(stderr.contains("has spaces around its name"), "{stderr}");
    assert!(
        !t.file("state.json").exists(),
        "the script ran and connected"
    );
}

#[test]
fn semicolon_csv_gets_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("list.csv");
    std::fs::write(
        &csv,
        "PrimarySmtpAddress;DisplayName\nadele.vance@contoso.com;Adele\n",
    )
    .unwrap();
    let out = common::calperm()
        .args(["render", "grant", "--mailboxes-csv"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains("separated by ';'") && stderr.contains("Save it with commas"),
        "{stderr}"
    );
}

#[test]
fn invalid_tenant_file_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (content, says) in [
        ("{\"recipients\": 5}", "\"recipients\" is not a list"),
        ("[]", "not a JSON object"),
        (
            "{\"recipients\": [{\"displayName\": \"x\"}]}",
            "recipients[0]",
        ),
        ("not json", "not JSON"),
    ] {
        let tenant = dir.path().join("tenant.json");
        std::fs::write(&tenant, content).unwrap();
        let out = common::calperm()
            .current_dir(dir.path())
            .args(["run", "grant", "--simulate", "tenant.json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{content}: {}", describe(&out));
        let stderr = common::stderr(&out);
        assert!(stderr.contains(says), "{content}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "nothing but the tenant file: {left:?}");
    }
}

#[test]
#[cfg(unix)]
fn pwsh_that_is_not_powershell_is_exit_3() {
    let t = SimTenant::demo();
    let out = common::calperm()
        .current_dir(t.file(""))
        .env("TMPDIR", t.root().join("tmp"))
        .args([
            "run",
            "grant",
            "--simulate",
            "tenant.json",
            "--pwsh",
            "/bin/sh",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = common::stderr(&out);
    assert!(stderr.contains("/bin/sh is not PowerShell"), "{stderr}");
    assert!(!stderr.contains("resume"), "{stderr}");
    let journals: Vec<_> = std::fs::read_dir(t.file(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("calperm-journal-"))
        .collect();
    assert!(journals.is_empty(), "{journals:?}");
}

#[test]
#[cfg(target_os = "linux")]
fn unwritable_report_is_exit_2() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    // A file that opens but refuses writes (root may open /proc/version; others get EACCES).
    let out = t.run(&["grant", "--monitor", MONITOR, "--report", "/proc/version"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("cannot write the report file /proc/version"),
        "{}",
        describe(&out)
    );
    assert!(!t.file("state.json").exists(), "the script ran");

    // A device that fails every write is not probed, but the run does not end as a success.
    let out = t.run(&["grant", "--monitor", MONITOR, "--report", "/dev/full"]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("the report file /dev/full could not be written"),
        "{}",
        describe(&out)
    );
}
