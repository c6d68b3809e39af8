//! A simulated tenant for end-to-end tests: a copy of a tenant file in its own temp dir, runs of
//! `calperm run … --simulate` against it, and readers for the saved state and the JSON report.

use super::calperm;
use calperm::records::{Mailbox, Record};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The mailbox types every script covers by default.
pub const DEFAULT_TYPES: [&str; 4] = [
    "UserMailbox",
    "SharedMailbox",
    "RoomMailbox",
    "EquipmentMailbox",
];

/// A tenant copy in `<temp>/work/` (the current directory of its runs; TMPDIR is `<temp>/tmp/`).
pub struct SimTenant {
    dir: tempfile::TempDir,
}

impl SimTenant {
    pub fn demo() -> SimTenant {
        SimTenant::edited(|_| {})
    }

    /// The demo tenant, changed by `edit` (e.g. to inject faults).
    pub fn edited(edit: impl FnOnce(&mut Value)) -> SimTenant {
        SimTenant::from_file(&super::fixture("tenants/demo.json"), edit)
    }

    /// The tenant in `source`, changed by `edit`.
    pub fn from_file(source: &Path, edit: impl FnOnce(&mut Value)) -> SimTenant {
        let dir = tempfile::Builder::new()
            .prefix("calperm-sim-test-")
            .tempdir()
            .unwrap();
        for sub in ["work", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let mut json: Value =
            serde_json::from_str(&std::fs::read_to_string(source).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(
            dir.path().join("work/tenant.json"),
            serde_json::to_string_pretty(&json).unwrap(),
        )
        .unwrap();
        SimTenant { dir }
    }

    /// Everything the tests and their runs wrote lives below here.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the working directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("work").join(name)
    }

    /// `calperm run <args> --simulate tenant.json --sim-state state.json --retry-delay-ms 1`.
    pub fn run(&self, args: &[&str]) -> Output {
        calperm()
            .current_dir(self.dir.path().join("work"))
            .env("TMPDIR", self.dir.path().join("tmp"))
            .arg("run")
            .args(args)
            .args([
                "--simulate",
                "tenant.json",
                "--sim-state",
                "state.json",
                "--retry-delay-ms",
                "1",
            ])
            .output()
            .unwrap()
    }

    /// The same with `--format json`.
    pub fn run_json(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        self.run(&all)
    }

    /// The tenant as it is now: the saved state, or the initial tenant before any run.
    pub fn now(&self) -> Value {
        let state = self.file("state.json");
        let path = if state.exists() {
            state
        } else {
            self.file("tenant.json")
        };
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }
}

/// Exit code, stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        super::stdout(out),
        super::stderr(out)
    )
}

/// The records of a `--format json` report.
pub fn records(out: &Output) -> Vec<Value> {
    super::stdout(out)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The mailboxes of the default types, except `monitor`'s own, lowercased.
pub fn in_scope(tenant: &Value, monitor: &str) -> Vec<String> {
    tenant["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| DEFAULT_TYPES.contains(&r["recipientTypeDetails"].as_str().unwrap_or("")))
        .map(|r| r["primarySmtpAddress"].as_str().unwrap().to_lowercase())
        .filter(|m| !m.eq_ignore_ascii_case(monitor))
        .collect()
}

/// Every mailbox in `scope_from`'s scope for `monitor` has an entry for `monitor` on its
/// default calendar in `tenant`; a miss fails with the mailbox followed by `what`.
pub fn assert_granted_in_scope(tenant: &Value, scope_from: &Value, monitor: &str, what: &str) {
    let granted = monitor_on_default_calendars(tenant, monitor);
    for mailbox in in_scope(scope_from, monitor) {
        assert!(
            granted.get(&mailbox).cloned().flatten().is_some(),
            "{mailbox}{what}"
        );
    }
}

/// `monitor`'s rights on every mailbox's default calendar (the root folder of type Calendar),
/// as "Role" or "Right,Right"; `None` where it has no entry.
pub fn monitor_on_default_calendars(
    tenant: &Value,
    monitor: &str,
) -> BTreeMap<String, Option<String>> {
    let mut map = BTreeMap::new();
    for recipient in tenant["recipients"].as_array().unwrap() {
        let Some(folders) = recipient["folders"].as_array() else {
            continue;
        };
        let default = folders
            .iter()
            .filter(|f| f["folderType"] == "Calendar")
            .min_by_key(|f| f["folderPath"].as_str().unwrap().matches('/').count());
        let Some(default) = default else { continue };
        let rights = default["permissions"].as_array().and_then(|ps| {
            ps.iter()
                .find(|p| p["user"].as_str().unwrap().eq_ignore_ascii_case(monitor))
                .map(|p| {
                    p["accessRights"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap())
                        .collect::<Vec<_>>()
                        .join(",")
                })
        });
        map.insert(
            recipient["primarySmtpAddress"]
                .as_str()
                .unwrap()
                .to_lowercase(),
            rights,
        );
    }
    map
}

/// The Entra applications with this display name in the tenant's state.
pub fn apps_named<'a>(state: &'a Value, name: &str) -> Vec<&'a Value> {
    state["graph"]["applications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["displayName"] == name)
        .collect()
}

/// Every folder's permission entries: (mailbox, folder path) → sorted "user=rights" strings.
pub fn permissions(tenant: &Value) -> BTreeMap<(String, String), Vec<String>> {
    let mut map = BTreeMap::new();
    for recipient in tenant["recipients"].as_array().unwrap() {
        let Some(folders) = recipient["folders"].as_array() else {
            continue;
        };
        for folder in folders {
            let mut entries: Vec<String> = folder["permissions"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let rights: Vec<String> = p["accessRights"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|r| r.as_str().unwrap().to_string())
                                .collect();
                            format!(
                                "{}={}",
                                p["user"].as_str().unwrap().to_lowercase(),
                                rights.join(",")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            entries.sort();
            map.insert(
                (
                    recipient["primarySmtpAddress"]
                        .as_str()
                        .unwrap()
                        .to_lowercase(),
                    folder["folderPath"].as_str().unwrap().to_string(),
                ),
                entries,
            );
        }
    }
    map
}

/// The mailbox records of a `--format json` report.
pub fn mailbox_records(output: &Output) -> Vec<Value> {
    records(output)
        .into_iter()
        .filter(|r| r["type"] == "mailbox")
        .collect()
}

/// The mailbox records of a `--format json` report, parsed as calperm's own records.
pub fn mailboxes(output: &Output) -> Vec<Mailbox> {
    records(output)
        .into_iter()
        .filter_map(|r| match serde_json::from_value(r.clone()) {
            Ok(Record::Mailbox(m)) => Some(m),
            Ok(_) => None,
            Err(e) => panic!("{e}: {r}"),
        })
        .collect()
}

/// How many mailboxes ended with each outcome.
pub fn typed_outcome_counts(mailboxes: &[Mailbox]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for m in mailboxes {
        *counts.entry(m.outcome.as_str()).or_default() += 1;
    }
    counts
}

pub fn outcome_counts(records: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        *counts
            .entry(r["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

/// A self-signed certificate's public part in `path`; returns its thumbprint.
pub fn certificate(path: &Path, subject: &str) -> String {
    let pwsh = super::pwsh().unwrap();
    let made = std::process::Command::new(pwsh)
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-Command"])
        .arg(format!(
            "$rsa = [System.Security.Cryptography.RSA]::Create(2048); \
             $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN={subject}', $rsa, 'SHA256', [System.Security.Cryptography.RSASignaturePadding]::Pkcs1); \
             $cert = $request.CreateSelfSigned([DateTimeOffset]::UtcNow.AddDays(-1), [DateTimeOffset]::UtcNow.AddYears(1)); \
             [System.IO.File]::WriteAllBytes('{}', $cert.Export('Cert')); $cert.Thumbprint",
            path.display()
        ))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    String::from_utf8(made.stdout).unwrap().trim().to_string()
}
