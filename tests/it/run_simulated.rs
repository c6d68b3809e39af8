//! Smoke test: the real grant template against the simulated demo tenant, through the whole
//! runner. (The templates' behaviour on the tenant is tested elsewhere; this only shows the
//! pieces fit: render, embedded sim modules, records, journal, summary, state between runs.)

use crate::common;

use common::pwsh;

#[test]
fn grant_runs_on_the_simulated_demo_tenant() {
    let Some(_) = pwsh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tenant = common::copy_tenant("demo.json", dir.path());
    let state = dir.path().join("demo.state.json");
    let journal = dir.path().join("grant.jsonl");
    let run = |journal: &std::path::Path| {
        common::calperm()
            .current_dir(dir.path())
            .env("TMPDIR", dir.path())
            .args([
                "run",
                "grant",
                "--monitor",
                "monitor@contoso.com",
                "--simulate",
            ])
            .arg(&tenant)
            .arg("--sim-state")
            .arg(&state)
            .arg("--journal")
            .arg(journal)
            .output()
            .unwrap()
    };

    let output = run(&journal);
    let out = common::stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{out}\nstderr:\n{}",
        common::stderr(&output)
    );
    let records = common::journal(&journal);
    assert_eq!(records.first().unwrap()["type"], "start");
    assert_eq!(records.last().unwrap()["type"], "end");
    let mailboxes = records.iter().filter(|r| r["type"] == "mailbox").count();
    assert!(mailboxes > 0);
    let total = regex::Regex::new(&format!(r"(?m)^\s+mailboxes\s+{mailboxes}$")).unwrap();
    assert!(total.is_match(&out), "{out}");
    assert!(out.contains("monitor: "), "{out}");
    assert!(
        records.iter().any(|r| r["outcome"] == "added"),
        "{records:?}"
    );
    assert!(state.is_file(), "the simulation saved its state");

    // The state carries over: a second grant changes nothing.
    let again = dir.path().join("again.jsonl");
    let output = run(&again);
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    let records = common::journal(&again);
    assert!(
        !records
            .iter()
            .any(|r| r["outcome"] == "added" || r["outcome"] == "updated"),
        "{records:?}"
    );
}

/// pwsh installed only as a .NET global tool (`~/.dotnet/tools/pwsh`) and not on PATH: the
/// newcomer's first command still finds it.
#[test]
#[cfg(unix)]
fn pwsh_only_under_dotnet_tools_is_found() {
    let Some(real) = pwsh() else { return };
    let home = tempfile::tempdir().unwrap();
    let tools = home.path().join(".dotnet/tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::os::unix::fs::symlink(&real, tools.join("pwsh")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("fixtures/tenants");
    std::fs::create_dir_all(&tenants).unwrap();
    common::copy_tenant("demo.json", &tenants);
    // The system tools the launcher needs, and no pwsh.
    let path = "/usr/bin:/bin";
    assert!(which::which_in("pwsh", Some(path), dir.path()).is_err());

    let output = common::calperm()
        .current_dir(dir.path())
        .env("HOME", home.path())
        .env("PATH", path)
        .env("TMPDIR", dir.path())
        .args(["run", "grant", "--simulate", "fixtures/tenants/demo.json"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(common::stdout(&output).contains("added"));
}

/// -WhatIf shows what the script would change, and nothing of how the simulated modules set
/// themselves up (as with the real modules).
#[test]
fn what_if_prints_only_the_scripts_own_what_if_lines() {
    let Some(_) = pwsh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tenant = common::copy_tenant("demo.json", dir.path());
    let output = common::calperm()
        .current_dir(dir.path())
        .env("TMPDIR", dir.path())
        .args(["run", "grant", "--what-if", "--simulate"])
        .arg(&tenant)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let err = String::from_utf8_lossy(&output.stderr);
    let what_if: Vec<&str> = err.lines().filter(|l| l.starts_with("What if:")).collect();
    assert!(!what_if.is_empty(), "{err}");
    assert!(
        what_if
            .iter()
            .all(|l| l.contains("monitor@contoso.com") && !l.contains("TypeData")),
        "{}",
        what_if.join("\n")
    );
}
