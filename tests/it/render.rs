//! Rendering: golden scripts, PowerShell's own parser over every script and connection mode,
//! injection, PowerShell-7-only syntax, the BOM, and option errors.

use crate::common;

use common::calperm;
use serde::Deserialize;
use snapbox::data::DataFormat;
use snapbox::{Data, assert_data_eq};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPTS: [&str; 7] = [
    "execution-policy",
    "grant",
    "audit",
    "revoke",
    "app-registration",
    "ews-readiness",
    "setup",
];

/// Option sets every script is rendered with for the golden files.
const OPTION_SETS: &[(&str, &[&str])] = &[
    ("default", &[]),
    ("locale-de", &["--locale", "de"]),
    ("locale-ja", &["--locale", "ja"]),
    (
        "exo-app",
        &[
            "--connection",
            "exo-app",
            "--app-id",
            "6f1d2c4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
            "--organization",
            "contoso.onmicrosoft.com",
            "--certificate-path",
            "/etc/calperm/exchange-admin.pfx",
        ],
    ),
    (
        "onprem",
        &["--connection", "onprem", "--server", "mail01.contoso.local"],
    ),
    ("legacy-basic", &["--connection", "legacy-basic"]),
    // app-registration and setup become an Exchange script after the Graph one.
    (
        "restrict",
        &["--restrict-to-group", "calendarsync@contoso.com"],
    ),
];

fn render(args: &[&str]) -> Vec<u8> {
    let output = calperm()
        .arg("render")
        .args(args)
        .output()
        .expect("calperm runs");
    assert!(
        output.status.success(),
        "calperm render {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn golden_path(name: &str) -> PathBuf {
    golden_dir().join(format!("{name}.ps1"))
}

fn diff_path(name: &str) -> PathBuf {
    golden_dir().join(format!("{name}.diff"))
}

/// Compares `actual` with the golden file `name`: a readable diff (and `SNAPSHOTS=overwrite` to
/// accept a template change), then the exact bytes, BOM included.
fn assert_golden(actual: &[u8], name: &str) {
    let path = golden_path(name);
    assert_data_eq!(
        Data::text(String::from_utf8(actual.to_vec()).expect("UTF-8")).raw(),
        Data::read_from(&path, Some(DataFormat::Text)).raw()
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        actual,
        "{} differs in bytes",
        path.display()
    );
}

/// A variant kept as what it changes: `<name>.diff` is the unified diff from `base` (golden bytes,
/// named `base_label` in the diff's header) to `actual`. Checked twice: the file is the diff
/// calperm's output gives now (readable on failure, rewritten by `SNAPSHOTS=overwrite`), and
/// `base` with the stored diff applied is `actual`, byte for byte.
fn assert_golden_diff(base: &[u8], base_label: &str, actual: &[u8], name: &str) -> Vec<u8> {
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).expect("UTF-8");
    let (base, actual) = (text(base), text(actual));
    let diff = similar::TextDiff::from_lines(&base, &actual)
        .unified_diff()
        .context_radius(3)
        .header(base_label, &format!("{name}.ps1"))
        .to_string();
    let path = diff_path(name);
    assert_data_eq!(
        Data::text(diff).raw(),
        Data::read_from(&path, Some(DataFormat::Text)).raw()
    );
    let stored = std::fs::read_to_string(&path).unwrap();
    let patched =
        apply_unified_diff(&base, &stored).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        patched == actual,
        "{base_label} patched with {} is not the rendering",
        path.display()
    );
    patched.into_bytes()
}

/// `base` with the hunks of a unified diff applied; every context and removed line must match.
fn apply_unified_diff(base: &str, diff: &str) -> Result<String, String> {
    let old: Vec<&str> = base.split_inclusive('\n').collect();
    let mut out = String::new();
    let mut at = 0; // lines of `old` used so far
    let mut last_added = false;
    let hunk = regex::Regex::new(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@").unwrap();
    let take = |at: &mut usize, expected: &str| -> Result<&str, String> {
        let line = old
            .get(*at)
            .ok_or_else(|| format!("the diff goes past the base's end: {expected:?}"))?;
        if line.trim_end_matches('\n') != expected.trim_end_matches('\n') {
            return Err(format!(
                "base line {} is {line:?}, the diff expects {expected:?}",
                *at + 1
            ));
        }
        *at += 1;
        Ok(line)
    };
    for line in diff.split_inclusive('\n') {
        if line.starts_with("--- ") || line.starts_with("+++ ") {
            continue;
        }
        let added = line.starts_with('+');
        if let Some(caps) = hunk.captures(line) {
            let start: usize = caps[1].parse().unwrap();
            // An empty old range names the line after which the hunk goes.
            let first = if caps.get(2).is_some_and(|c| c.as_str() == "0") {
                start
            } else {
                start - 1
            };
            if first < at || first > old.len() {
                return Err(format!("hunk {line:?} out of order"));
            }
            out.extend(old[at..first].iter().copied());
            at = first;
        } else if let Some(context) = line.strip_prefix(' ') {
            out.push_str(take(&mut at, context)?);
        } else if let Some(removed) = line.strip_prefix('-') {
            take(&mut at, removed)?;
        } else if let Some(added) = line.strip_prefix('+') {
            out.push_str(added);
        } else if line.starts_with('\\') {
            // "\ No newline at end of file" after an added line: that line has none.
            if last_added && out.ends_with('\n') {
                out.pop();
            }
        } else {
            return Err(format!("not a unified diff line: {line:?}"));
        }
        last_added = added;
    }
    out.extend(old[at..].iter().copied());
    Ok(out)
}

/// Every script's default rendering is a full golden file; each option set that changes it is
/// the diff from it. setup, which runs the others' work as three scripts, is the diff from the
/// grant, app-registration and ews-readiness goldens one after the other, so the goldens repeat
/// no script whole.
#[test]
fn golden_scripts_match_byte_for_byte() {
    let mut expected: BTreeSet<PathBuf> = BTreeSet::new();
    let mut defaults: std::collections::BTreeMap<&str, Vec<u8>> = Default::default();
    for script in SCRIPTS {
        let default = render(&[script]);
        let golden_default = if script == "setup" {
            let parts = ["grant", "app-registration", "ews-readiness"];
            let base: Vec<u8> = parts.iter().flat_map(|p| defaults[p].clone()).collect();
            let label = parts.map(|p| format!("{p}.default.ps1")).join(" + ");
            expected.insert(diff_path("setup.default"));
            assert_golden_diff(&base, &label, &default, "setup.default")
        } else {
            assert_golden(&default, &format!("{script}.default"));
            expected.insert(golden_path(&format!("{script}.default")));
            default.clone()
        };
        for (set, options) in &OPTION_SETS[1..] {
            let mut args = vec![script];
            args.extend_from_slice(options);
            let actual = render(&args);
            let name = format!("{script}.{set}");
            if actual == default {
                // The options do not touch this script: the default golden file covers it, and an
                // empty diff would only hide that.
                assert!(
                    !diff_path(&name).exists(),
                    "{name}.diff is empty: remove it"
                );
            } else {
                let label = format!("{script}.default.ps1");
                assert_golden_diff(&golden_default, &label, &actual, &name);
                expected.insert(diff_path(&name));
            }
        }
        defaults.insert(script, golden_default);
    }
    expected.insert(diff_path("revoke.from-journal"));
    let present: BTreeSet<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let stray: Vec<&PathBuf> = present.difference(&expected).collect();
    assert!(stray.is_empty(), "golden files no test checks: {stray:?}");
}

#[test]
fn revoke_from_journal_golden() {
    let journal = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grant-journal.jsonl");
    let actual = render(&[
        "revoke",
        "--monitor",
        "monitor@contoso.com",
        "--from-journal",
        journal.to_str().unwrap(),
    ]);
    let base = std::fs::read(golden_path("revoke.default")).unwrap();
    assert_golden_diff(&base, "revoke.default.ps1", &actual, "revoke.from-journal");
}

#[test]
fn rendering_is_deterministic() {
    for script in SCRIPTS {
        assert_eq!(
            render(&[script, "--locale", "ru"]),
            render(&[script, "--locale", "ru"]),
            "{script}"
        );
    }
}

#[test]
fn render_grant_for_the_manuals_monitor_in_german() {
    let out =
        String::from_utf8(render(&["grant", "--monitor", "Monitor", "--locale", "de"])).unwrap();
    assert!(out.starts_with('\u{FEFF}'));
    assert!(out.contains("[string] $Monitor = 'Monitor'"));
    assert!(out.contains("[string] $Locale = 'de'"));
    assert!(out.contains("'de' = 'Kalender'"));
}

#[test]
fn output_file_gets_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grant.ps1");
    calperm()
        .args(["render", "grant", "-o"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(std::fs::read(&file).unwrap(), render(&["grant"]));
}

/// What `tests/ps/Inspect-Script.ps1` reports for one file.
#[derive(Debug, Deserialize)]
struct Inspection {
    file: String,
    errors: Vec<String>,
    commands: Vec<String>,
    strings: Vec<String>,
    ps7: Vec<String>,
    bom: bool,
}

fn inspect(dir: &Path) -> Option<Vec<Inspection>> {
    let pwsh = common::pwsh()?;
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ps/Inspect-Script.ps1");
    let output = Command::new(pwsh)
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
        .arg(&checker)
        .arg("-Directory")
        .arg(dir)
        .output()
        .expect("pwsh runs");
    assert!(
        output.status.success(),
        "Inspect-Script.ps1 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    Some(
        text.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect(),
    )
}

const CONNECTIONS: &[&[&str]] = &[
    &[],
    &[
        "--connection",
        "exo",
        "--user-principal-name",
        "admin@contoso.onmicrosoft.com",
    ],
    &[
        "--connection",
        "exo-app",
        "--app-id",
        "a",
        "--organization",
        "contoso.onmicrosoft.com",
        "--certificate-thumbprint",
        "ABC",
    ],
    &[
        "--connection",
        "exo-app",
        "--app-id",
        "a",
        "--organization",
        "contoso.onmicrosoft.com",
        "--certificate-path",
        "c.pfx",
    ],
    &["--connection", "onprem", "--server", "mail01.contoso.local"],
    &["--connection", "legacy-basic"],
];

const LOCALES: &[&str] = &["auto", "de", "ja", "pt-BR", "ar-SA"];

#[test]
fn every_script_parses_in_powershell_for_every_connection_and_locale() {
    let dir = tempfile::tempdir().unwrap();
    let mut count = 0;
    for script in SCRIPTS {
        for (c, connection) in CONNECTIONS.iter().enumerate() {
            for locale in LOCALES {
                let mut args = vec![script, "--locale", locale];
                args.extend_from_slice(connection);
                count +=
                    common::write_scripts(&args, dir.path(), &format!("{script}.c{c}.{locale}"));
                if script == "setup" || script == "app-registration" {
                    args.extend(["--restrict-to-group", "calendarsync@contoso.com"]);
                    count += common::write_scripts(
                        &args,
                        dir.path(),
                        &format!("{script}.r.c{c}.{locale}"),
                    );
                }
            }
        }
    }
    let Some(reports) = inspect(dir.path()) else {
        return;
    };
    assert_eq!(reports.len(), count, "every rendered file was inspected");
    for report in &reports {
        assert!(
            report.errors.is_empty(),
            "{}: parse errors {:?}",
            report.file,
            report.errors
        );
        assert!(
            report.ps7.is_empty(),
            "{}: PowerShell-7-only syntax {:?}",
            report.file,
            report.ps7
        );
        assert!(report.bom, "{}: no UTF-8 BOM", report.file);
    }
}

#[test]
fn the_ps7_syntax_check_finds_what_it_looks_for() {
    // A check that cannot fail proves nothing: feed it each construct it must reject.
    let dir = tempfile::tempdir().unwrap();
    let samples = [
        ("ternary", "$a = $true ? 1 : 2"),
        ("coalesce", "$a = $null ?? 1"),
        ("coalesce-assign", "$a ??= 1"),
        ("chain", "Get-Date && Get-Date"),
        ("parallel", "1..2 | ForEach-Object -Parallel { $_ }"),
        ("null-conditional", "$a = ${b}?.Length"),
        ("clean", "$a = if ($true) { 1 } else { 2 }"),
    ];
    for (name, code) in samples {
        std::fs::write(
            dir.path().join(format!("{name}.ps1")),
            format!("\u{FEFF}{code}\n"),
        )
        .unwrap();
    }
    let Some(reports) = inspect(dir.path()) else {
        return;
    };
    for report in reports {
        if report.file == "clean.ps1" {
            assert!(report.ps7.is_empty(), "{report:?}");
        } else {
            assert_eq!(report.ps7.len(), 1, "{report:?}");
        }
    }
}

/// Values that would break out of a naive quoting: every single-quote kind, double quotes,
/// `$`, backtick, `;`, newlines, the end of a comment block, subexpressions.
const NASTY: &[&str] = &[
    "o'brien@contoso.com",
    "o\u{2018}b\u{2019}r\u{201A}i\u{201B}en",
    "a\"b$c`d;e",
    "x'; Remove-Item -Recurse C:\\ ; '",
    "x\u{2019}; Stop-Computer; \u{2019}",
    "line1\nStop-Computer\nline3",
    "#> Stop-Computer <#",
    "$(Stop-Computer)",
    "@(Stop-Computer)",
    "'@\nStop-Computer\n@'",
];

#[test]
fn user_values_stay_constant_strings_and_add_no_commands() {
    let dir = tempfile::tempdir().unwrap();
    for (i, nasty) in NASTY.iter().enumerate() {
        for script in SCRIPTS {
            let nasty_args = vec![
                "--include",
                nasty,
                "--exclude",
                nasty,
                "--app-name",
                nasty,
                "--secret-name",
                nasty,
                "--restrict-to-group",
                nasty,
                "--user-principal-name",
                nasty,
            ];
            let mut args = vec![script];
            args.extend_from_slice(&nasty_args);
            // Commas would split the list options, so those get the value without them.
            common::write_scripts(&args, dir.path(), &format!("{script}.nasty{i}"));
            let benign = [
                script,
                "--include",
                "x",
                "--exclude",
                "x",
                "--app-name",
                "x",
                "--secret-name",
                "x",
                "--restrict-to-group",
                "x",
                "--user-principal-name",
                "x",
            ];
            common::write_scripts(&benign, dir.path(), &format!("{script}.benign{i}"));
        }
        // The monitor goes through config's control-character check: newlines are refused there.
        if !nasty.contains('\n') {
            let out = render(&[
                "grant",
                "--monitor",
                nasty,
                "--connection",
                "onprem",
                "--server",
                nasty,
            ]);
            std::fs::write(dir.path().join(format!("grant.monitor{i}.ps1")), out).unwrap();
            std::fs::write(
                dir.path().join(format!("grant.monitorbenign{i}.ps1")),
                render(&[
                    "grant",
                    "--monitor",
                    "x",
                    "--connection",
                    "onprem",
                    "--server",
                    "x",
                ]),
            )
            .unwrap();
        }
    }
    let Some(reports) = inspect(dir.path()) else {
        return;
    };
    let by_name = |name: &str| {
        reports
            .iter()
            .find(|r| r.file == name)
            .unwrap_or_else(|| panic!("{name} inspected"))
    };
    for (i, nasty) in NASTY.iter().enumerate() {
        // Every script file, or every part of a workflow, against its benign twin.
        let mut pairs = reports
            .iter()
            .filter(|r| {
                SCRIPTS.iter().any(|s| {
                    r.file == format!("{s}.nasty{i}.ps1")
                        || r.file.starts_with(&format!("{s}.nasty{i}."))
                })
            })
            .map(|r| (r.file.clone(), r.file.replacen(".nasty", ".benign", 1)))
            .collect::<Vec<_>>();
        assert!(
            pairs.len() > SCRIPTS.len(),
            "the parts of workflows are checked too"
        );
        if !nasty.contains('\n') {
            pairs.push((
                format!("grant.monitor{i}.ps1"),
                format!("grant.monitorbenign{i}.ps1"),
            ));
        }
        for (nasty_file, benign_file) in pairs {
            let bad = by_name(&nasty_file);
            let good = by_name(&benign_file);
            assert!(bad.errors.is_empty(), "{nasty_file}: {:?}", bad.errors);
            let bad_commands: BTreeSet<_> = bad.commands.iter().collect();
            let good_commands: BTreeSet<_> = good.commands.iter().collect();
            assert_eq!(
                bad_commands, good_commands,
                "{nasty_file}: the value {nasty:?} changed the commands"
            );
            assert!(
                !bad.commands.iter().any(|c| c.contains("Stop-Computer")),
                "{nasty_file}: injected command"
            );
            if nasty_file.starts_with("execution-policy") {
                continue; // takes none of these options
            }
            assert!(
                bad.strings.iter().any(|s| s == nasty),
                "{nasty_file}: {nasty:?} is not one constant string"
            );
        }
    }
}

#[test]
fn bad_options_fail_before_rendering_with_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["grant", "--locale", "dee"], "nearest known codes: de"),
        (
            &["grant", "--connection", "exo-app"],
            "--connection exo-app needs --app-id",
        ),
        (
            &[
                "grant",
                "--connection",
                "exo-app",
                "--app-id",
                "x",
                "--organization",
                "o",
            ],
            "needs a certificate",
        ),
        (&["grant", "--connection", "onprem"], "needs --server"),
        (
            &["grant", "--server", "x"],
            "--server does not apply to --connection exo",
        ),
        (&["grant", "--monitor", " "], "--monitor is empty"),
        (&["grant", "--monitor", "a\nb"], "control character"),
        (
            &["grant", "--access-rights", "Boss"],
            "invalid value 'Boss'",
        ),
        (
            &["grant", "--mailboxes-csv", "/nonexistent.csv"],
            "cannot read --mailboxes-csv",
        ),
        (
            &["audit", "--resume", "j.jsonl"],
            "--resume applies to grant, setup and app-registration --restrict-to-group only",
        ),
        (
            &["grant", "--from-journal", "j.jsonl"],
            "--from-journal applies to revoke only",
        ),
        (
            &["revoke", "--from-journal", "/nonexistent.jsonl"],
            "cannot open the journal",
        ),
    ];
    for (args, message) in cases {
        let output = calperm().arg("render").args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: expected {message:?} in {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}: nothing renders");
        assert!(!stderr.contains("panicked"), "{args:?}");
    }
}

#[test]
fn a_csv_without_an_identity_column_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("m.csv");
    std::fs::write(&csv, "Name,Office\nAnna,Berlin\n").unwrap();
    let output = calperm()
        .args(["render", "grant", "--mailboxes-csv"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no identity column"));
}

#[test]
fn legacy_basic_warns_on_stderr_and_in_the_script() {
    let output = calperm()
        .args(["render", "grant", "--connection", "legacy-basic"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Basic authentication") && stderr.contains("1 Oct 2023"),
        "{stderr}"
    );
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(script.contains("New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri https://outlook.office365.com/powershell-liveid/ -Credential $UserCredential -Authentication Basic -AllowRedirection"));
    assert!(
        script.contains("Write-Warning 'Basic authentication and Remote PowerShell were retired")
    );
}

#[test]
fn templates_can_be_overridden_per_file_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("exported");
    calperm()
        .args(["templates", "export"])
        .arg(&exported)
        .assert()
        .success();
    assert!(exported.join("grant.ps1.hbs").is_file());
    assert!(exported.join("_prelude.ps1.hbs").is_file());
    // Exported defaults render the same bytes as the built-ins.
    let via_export = calperm()
        .arg("--templates")
        .arg(&exported)
        .args(["render", "grant"])
        .output()
        .unwrap();
    assert_eq!(via_export.stdout, render(&["grant"]));
    // One overridden file wins; the rest stay built-in.
    let custom = dir.path().join("custom");
    std::fs::create_dir(&custom).unwrap();
    std::fs::write(
        custom.join("execution-policy.ps1.hbs"),
        "# custom {{monitor}}\n",
    )
    .unwrap();
    let out = calperm()
        .arg("--templates")
        .arg(&custom)
        .args(["render", "execution-policy", "--monitor", "m'x"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "\u{FEFF}# custom 'm''x'\n"
    );
    assert_eq!(
        calperm()
            .arg("--templates")
            .arg(&custom)
            .args(["render", "grant"])
            .output()
            .unwrap()
            .stdout,
        render(&["grant"])
    );
    // A second export into the same directory keeps the files and says so.
    let again = calperm()
        .args(["templates", "export"])
        .arg(&exported)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn a_template_referring_to_a_missing_value_fails_at_render_time() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("grant.ps1.hbs"), "$x = {{no_such_value}}\n").unwrap();
    let output = calperm()
        .arg("--templates")
        .arg(dir.path())
        .args(["render", "grant"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no_such_value"));
}

#[test]
fn scripts_and_locales_list() {
    let scripts = calperm().arg("scripts").output().unwrap();
    let text = String::from_utf8(scripts.stdout).unwrap();
    for script in SCRIPTS {
        assert!(
            text.lines().any(|l| l.starts_with(script)),
            "{script} listed"
        );
    }
    let json = calperm()
        .args(["locales", "--format", "json"])
        .output()
        .unwrap();
    let locales: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(locales.len(), 91);
    let table = String::from_utf8(calperm().arg("locales").output().unwrap().stdout).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("nl ") && l.contains("Agenda") && l.contains("Kalender"))
    );
}

#[test]
fn render_setup_shows_every_script_in_run_order_under_a_carry_over_header() {
    let text = String::from_utf8(render(&[
        "setup",
        "--restrict-to-group",
        "calendarsync@contoso.com",
    ]))
    .unwrap();
    let header: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with('#') || l.starts_with('\u{feff}'))
        .collect();
    let header = header.join("\n");
    assert!(header.contains("3 scripts"), "{header}");
    assert!(header.contains("Start with 01-setup.ps1"), "{header}");
    assert!(
        header.contains("-ClientId <ClientId of 02-app-registration.ps1> -ServicePrincipalId <ServicePrincipalId of 02-app-registration.ps1>"),
        "which values to carry over: {header}"
    );
    // Every script, complete (its help, param block and end), in run order.
    let starts: Vec<usize> = [
        "01-setup.ps1",
        "02-app-registration.ps1",
        "03-app-exchange.ps1",
    ]
    .iter()
    .map(|name| {
        let begin = text
            .find(&format!("# ===== {name} (script"))
            .unwrap_or_else(|| panic!("{name}"));
        let end = text
            .find(&format!("# ===== end of {name} ====="))
            .unwrap_or_else(|| panic!("end of {name}"));
        let body = &text[begin..end];
        assert!(
            body.contains("param(")
                && body.contains(".SYNOPSIS")
                && body.contains("Complete-CalpermRun"),
            "{name} is complete"
        );
        begin
    })
    .collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "in run order");
}

#[test]
fn render_setup_to_a_directory_writes_numbered_files_that_run_gets_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("setup");
    calperm()
        .args(["render", "setup", "-o"])
        .arg(&out)
        .assert()
        .success();
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "00-run-order.txt",
            "01-setup.ps1",
            "02-app-registration.ps1",
            "03-app-exchange.ps1"
        ]
    );
    // Each file holds exactly the bytes between its markers in the listing, with its BOM.
    let listing = String::from_utf8(render(&["setup"])).unwrap();
    for name in &names[1..] {
        let file = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(file.starts_with('\u{feff}'), "{name}: BOM");
        let begin = listing.find(&format!("# ===== {name} (script")).unwrap();
        let begin = begin + listing[begin..].find('\n').unwrap() + 1;
        let end = listing
            .find(&format!("# ===== end of {name} ====="))
            .unwrap();
        assert_eq!(
            &listing[begin..end],
            file.trim_start_matches('\u{feff}'),
            "{name}"
        );
    }
    let order = std::fs::read_to_string(out.join("00-run-order.txt")).unwrap();
    assert!(
        order.contains("-ClientId <ClientId of 02-app-registration.ps1>"),
        "{order}"
    );
    // A file where a directory is needed is refused with exit 2.
    let file = dir.path().join("file.ps1");
    std::fs::write(&file, "x").unwrap();
    calperm()
        .args(["render", "setup", "-o"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("pass -o DIR"));
}
