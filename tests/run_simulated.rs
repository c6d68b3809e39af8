//! Smoke test: the real grant template against the simulated demo tenant, through the whole
//! runner. (The templates' behaviour on the tenant is tested elsewhere; this only shows the
//! pieces fit: render, embedded sim modules, records, journal, summary, state between runs.)

mod common;

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
