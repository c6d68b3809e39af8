//! Workflows of several scripts ("parts"), each run in its own pwsh.
//!
//! Exchange Online PowerShell and Microsoft Graph PowerShell cannot sign in within one process
//! with current module versions (field-notes §1: `Connect-MgGraph` after `Connect-ExchangeOnline`
//! fails, and so does the other order). So no part signs in to both: a workflow that needs both
//! is a list of parts, each a complete script with its own `param()` block, run one after another
//! in new pwsh processes. A part that needs values of an earlier one (the app's client ID, its
//! service principal's object ID) gets them as parameters, taken from the `output` records the
//! earlier part reported — IDs, never a secret. Which parts a command has is config's typed
//! plan (config/plan.rs); a `Workflow` is that plan with each part's rendered text.
//!
//! One run keeps one journal and one report: the parts' records in order, and after each part a
//! `part` record written by calperm (how it ended, the values it reported). `--resume` takes a
//! part the journal shows as completed as done, with its values, and does not run it again. A
//! part that did not complete skips only the parts that depend on it.

use super::Options;
use super::{Run, conclude, verdict};
use crate::config::{Carry, Input, PartScript, Plan};
use crate::error::Failure;
use crate::journal;
use crate::records::{Part as PartRecord, Record};
use crate::render;
use crate::script::{Connection, Script, Target};
use anyhow::{Context as _, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use verdict::Verdict;

/// One script of a workflow: its place in the plan and its text.
#[derive(Debug)]
pub struct Part {
    pub script: PartScript,
    /// Parts (indexes) that must have completed before this one runs.
    pub depends_on: Vec<usize>,
    pub inputs: Vec<Input>,
    /// What it reports for later parts.
    pub outputs: Vec<Carry>,
    /// The script, exactly as it runs (starts with the UTF-8 BOM).
    pub text: String,
}

impl Part {
    /// The template, and the part's name in records and file names.
    pub fn name(&self) -> &'static str {
        self.script.template()
    }

    /// Whether the part can do without interactive sign-in, so pwsh gets `-NonInteractive`
    /// (prompts then fail instead of hanging). Interactive sign-in is needed by the exo, onprem
    /// and legacy-basic connections, and by every Microsoft Graph sign-in.
    pub(crate) fn non_interactive(&self, connection: Connection) -> bool {
        !self.script.needs_graph() && (!self.script.needs_exchange() || connection.is_unattended())
    }

    fn service(&self) -> &'static str {
        match (self.script.needs_exchange(), self.script.needs_graph()) {
            (true, false) => "Exchange",
            (false, true) => "Microsoft Graph",
            (false, false) => "neither",
            (true, true) => "Exchange and Graph (not allowed)",
        }
    }
}

/// The scripts of one `calperm render`/`run` command, in run order. Most commands are one part.
#[derive(Debug)]
pub struct Workflow {
    pub script: Script,
    pub parts: Vec<Part>,
}

impl Workflow {
    /// The plan's parts with their rendered texts, in the plan's order.
    pub fn new(plan: Plan, texts: Vec<String>) -> Workflow {
        assert_eq!(plan.parts.len(), texts.len(), "one text per part");
        let parts = plan
            .parts
            .into_iter()
            .zip(texts)
            .map(|(planned, text)| Part {
                script: planned.script,
                depends_on: planned.depends_on,
                inputs: planned.inputs,
                outputs: planned.outputs,
                text,
            })
            .collect();
        Workflow {
            script: plan.script,
            parts,
        }
    }

    pub fn is_single(&self) -> bool {
        self.parts.len() == 1
    }

    /// `01-setup.ps1`: the part's file name in `render -o DIR`, numbered in run order.
    pub fn file_name(&self, index: usize) -> String {
        format!("{:02}-{}.ps1", index + 1, self.parts[index].name())
    }

    /// What to run in which order and which values to carry over, as PowerShell comment lines.
    pub fn header(&self) -> String {
        let names: Vec<String> = (0..self.parts.len()).map(|i| self.file_name(i)).collect();
        let width = names.iter().map(String::len).max().unwrap_or(0);
        let mut out = format!(
            "# calperm render {}: {} scripts. Exchange Online PowerShell and Microsoft Graph PowerShell\n\
             # cannot sign in within one PowerShell process (current module versions), so run each script\n\
             # in a new PowerShell (pwsh -File <script>, or powershell.exe -File), in this order:\n",
            self.script.name(),
            self.parts.len()
        );
        for (i, part) in self.parts.iter().enumerate() {
            out.push_str(&format!(
                "#   {:<width$}  {:<15}  {}\n",
                names[i],
                part.service(),
                part.script.does()
            ));
            if !part.outputs.is_empty() {
                let list: Vec<&str> = part.outputs.iter().map(|c| c.param()).collect();
                out.push_str(&format!(
                    "#   {:<width$}  reports: {}\n",
                    "",
                    list.join(", ")
                ));
            }
            if !part.inputs.is_empty() {
                let args: Vec<String> = part
                    .inputs
                    .iter()
                    .map(|input| {
                        format!(
                            "-{} <{} of {}>",
                            input.value.param(),
                            input.value.param(),
                            names[input.from]
                        )
                    })
                    .collect();
                out.push_str(&format!(
                    "#   {:<width$}  run it with: {}\n",
                    "",
                    args.join(" ")
                ));
            }
        }
        let independent: Vec<&str> = self
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.depends_on.is_empty())
            .map(|(i, _)| names[i].as_str())
            .collect();
        out.push_str(&format!(
            "# Start with {}. A script that fails stops only the scripts that need its values\n\
             # ({} need none). `calperm run {}` runs exactly these scripts and passes the values on.\n",
            names[0],
            independent.join(", "),
            self.script.name()
        ));
        out
    }

    /// `calperm render` to stdout: the header, then every part between marker lines. The bytes
    /// between a part's markers are exactly the part's script (without its BOM).
    pub fn listing(&self) -> String {
        let mut out = String::from(render::BOM);
        out.push_str(&self.header());
        for (i, part) in self.parts.iter().enumerate() {
            let name = self.file_name(i);
            out.push_str(&format!(
                "\n# ===== {name} (script {} of {}) =====\n",
                i + 1,
                self.parts.len()
            ));
            out.push_str(part.text.trim_start_matches(render::BOM));
            if !part.text.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("# ===== end of {name} =====\n"));
        }
        out
    }

    /// `calperm render -o DIR`: `00-run-order.txt` (the header) and one numbered file per part.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        if dir.is_file() {
            return Err(Failure::usage(
                format!(
                    "`calperm render {}` writes {} scripts, and -o {} is a file",
                    self.script.name(),
                    self.parts.len(),
                    dir.display()
                ),
                "pass -o DIR, a directory (created if missing)",
            )
            .into());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let header: String = self
            .header()
            .lines()
            .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
            .collect();
        let order = dir.join("00-run-order.txt");
        std::fs::write(&order, header).with_context(|| format!("writing {}", order.display()))?;
        for (i, part) in self.parts.iter().enumerate() {
            let path = dir.join(self.file_name(i));
            std::fs::write(&path, part.text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// How a part ended, for the parts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Done(BTreeMap<String, String>),
    NotDone(String),
}

/// Runs every part in order and reports them as one run.
pub fn execute(workflow: &Workflow, target: &Target, options: &Options) -> Result<ExitCode> {
    let journal_records = match &target.resume_journal {
        Some(path) => journal::read(path)?,
        None => Vec::new(),
    };
    let resumed = completed_parts(&journal_records);
    let mut run = Run::open(target, options)?;
    let mut status: Vec<Status> = Vec::new();
    let mut verdicts: Vec<(String, Verdict)> = Vec::new();
    for (index, part) in workflow.parts.iter().enumerate() {
        let number = index as u32 + 1;
        let label = format!("{} ({})", workflow.file_name(index), part.name());
        if let Some(values) = resumed.get(part.name()) {
            run.record(part_record(
                part,
                number,
                "resumed",
                "completed in the resumed journal; not run again",
                values.clone(),
            ));
            status.push(Status::Done(values.clone()));
            continue;
        }
        if run.interrupted() {
            let reason = "not run: the run was interrupted".to_string();
            status.push(skip(&mut run, part, number, reason));
            continue;
        }
        match arguments(workflow, part, &status, options.what_if) {
            Err(reason) => {
                verdicts.push((label, Verdict::Failures(reason.clone())));
                status.push(skip(&mut run, part, number, reason));
            }
            Ok(params) => {
                let non_interactive =
                    options.simulate.is_some() || part.non_interactive(target.connection);
                let end = match run.script(&part.text, non_interactive, &params) {
                    Ok(end) => end,
                    Err(err) => {
                        // pwsh could not be started (exit 3): the scripts before still get
                        // their report.
                        run.close();
                        return Err(err);
                    }
                };
                let verdict =
                    verdict::decide(&run.session.part, end.child, end.interrupted, &end.trouble);
                let values = run.session.part.outputs.clone();
                let (outcome, message) = match &verdict {
                    Verdict::Success => ("completed", String::new()),
                    Verdict::Failures(m) | Verdict::Configuration(_, m) => ("failed", m.clone()),
                    Verdict::Abnormal(m) => ("stopped", m.clone()),
                };
                run.record(part_record(part, number, outcome, &message, values.clone()));
                status.push(match verdict {
                    Verdict::Success => Status::Done(values),
                    _ => Status::NotDone(format!("it {outcome}")),
                });
                verdicts.push((label, verdict));
            }
        }
    }
    let closed = run.close();
    if let Some(trouble) = closed.report_trouble {
        verdicts.push(("the report".to_string(), Verdict::Abnormal(trouble)));
    }
    conclude(
        combine(verdicts),
        &closed.tally,
        target,
        options,
        &closed.journal_path,
        closed.journal_count,
    )
}

/// A part that does not run: its `skipped` record, and its status for the parts after it.
fn skip(run: &mut Run<'_>, part: &Part, number: u32, reason: String) -> Status {
    run.record(part_record(
        part,
        number,
        "skipped",
        &reason,
        BTreeMap::new(),
    ));
    Status::NotDone(reason)
}

fn part_record(
    part: &Part,
    number: u32,
    outcome: &str,
    message: &str,
    values: BTreeMap<String, String>,
) -> Record {
    Record::Part(PartRecord {
        part: part.name().to_string(),
        number,
        outcome: outcome.to_string(),
        message: (!message.is_empty()).then(|| message.to_string()),
        values,
    })
}

/// The parameters of `part` from the parts it depends on, or why it cannot run. With -WhatIf, an
/// app that would only be created has no IDs yet: the part runs without them and reports what
/// it would do.
fn arguments(
    workflow: &Workflow,
    part: &Part,
    status: &[Status],
    what_if: bool,
) -> std::result::Result<Vec<(String, String)>, String> {
    for &dep in &part.depends_on {
        if let Status::NotDone(why) = &status[dep] {
            return Err(format!(
                "needs {} ({}), which did not complete: {why}",
                workflow.file_name(dep),
                workflow.parts[dep].name()
            ));
        }
    }
    let mut params = Vec::new();
    for input in &part.inputs {
        let Status::Done(values) = &status[input.from] else {
            unreachable!("inputs come from parts in depends_on");
        };
        match values.get(input.value.param()) {
            Some(value) => params.push((input.value.param().to_string(), value.clone())),
            None if what_if => {}
            None => {
                return Err(format!(
                    "needs {} from {}, which did not report it",
                    input.value.param(),
                    workflow.file_name(input.from)
                ));
            }
        }
    }
    Ok(params)
}

/// The parts a journal shows as completed, with the values they reported (the last record of
/// each part wins: a later run may have rerun it).
pub(crate) fn completed_parts(records: &[Record]) -> BTreeMap<&str, BTreeMap<String, String>> {
    let mut last: BTreeMap<&str, &PartRecord> = BTreeMap::new();
    for record in records {
        if let Record::Part(part) = record {
            last.insert(part.part.as_str(), part);
        }
    }
    last.into_iter()
        .filter(|(_, p)| p.is_done())
        .map(|(name, p)| (name, p.values.clone()))
        .collect()
}

/// The run's verdict from its parts': the worst wins (abnormal, then configuration, then
/// failures), each message naming its part.
fn combine(verdicts: Vec<(String, Verdict)>) -> Verdict {
    let mut abnormal = Vec::new();
    let mut configuration = Vec::new();
    let mut failures = Vec::new();
    for (label, verdict) in verdicts {
        match verdict {
            Verdict::Success => {}
            Verdict::Abnormal(m) => abnormal.push(format!("{label}: {m}")),
            Verdict::Configuration(kind, m) => configuration.push((kind, format!("{label}: {m}"))),
            Verdict::Failures(m) => failures.push(format!("{label}: {m}")),
        }
    }
    if !abnormal.is_empty() {
        abnormal.extend(failures);
        return Verdict::Abnormal(abnormal.join("; "));
    }
    let mut configuration = configuration.into_iter();
    if let Some((kind, first)) = configuration.next() {
        // The first part's stop names what to fix first.
        let messages: Vec<String> = std::iter::once(first)
            .chain(configuration.map(|(_, m)| m))
            .collect();
        return Verdict::Configuration(kind, messages.join("; "));
    }
    if !failures.is_empty() {
        return Verdict::Failures(failures.join("; "));
    }
    Verdict::Success
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Connection;

    /// The workflow of `script`, its parts unrendered (the runner reads their typed facts).
    fn workflow(script: Script, restricted: bool) -> Workflow {
        let plan = crate::config::plan(&Target::of(script, restricted));
        let texts = vec![String::new(); plan.parts.len()];
        Workflow::new(plan, texts)
    }

    #[test]
    fn non_interactive_only_when_nobody_signs_in() {
        let single = |script: Script| workflow(script, false).parts.remove(0);
        assert!(single(Script::Grant).non_interactive(Connection::ExoApp));
        assert!(
            !single(Script::Grant).non_interactive(Connection::Exo),
            "exo signs in interactively"
        );
        assert!(!single(Script::Grant).non_interactive(Connection::Onprem));
        assert!(!single(Script::AppRegistration).non_interactive(Connection::ExoApp));
        assert!(single(Script::ExecutionPolicy).non_interactive(Connection::Exo));
        let setup = workflow(Script::Setup, false);
        let app_only: Vec<bool> = setup
            .parts
            .iter()
            .map(|p| p.non_interactive(Connection::ExoApp))
            .collect();
        assert_eq!(
            app_only,
            [true, false, true],
            "only the Graph part signs in interactively"
        );
    }

    #[test]
    fn a_part_without_its_input_is_skipped_with_the_reason() {
        let w = workflow(Script::AppRegistration, true);
        let mut values = BTreeMap::new();
        values.insert("ClientId".to_string(), "c".to_string());
        let reason =
            arguments(&w, &w.parts[1], &[Status::Done(values.clone())], false).unwrap_err();
        assert!(
            reason.contains("ServicePrincipalId") && reason.contains("01-app-registration.ps1"),
            "{reason}"
        );
        // With -WhatIf the part runs without the IDs a new app does not have yet.
        assert_eq!(
            arguments(&w, &w.parts[1], &[Status::Done(values)], true).unwrap(),
            [("ClientId".to_string(), "c".to_string())]
        );
        let reason = arguments(
            &w,
            &w.parts[1],
            &[Status::NotDone("it failed".into())],
            false,
        )
        .unwrap_err();
        assert!(reason.contains("did not complete: it failed"), "{reason}");
    }

    #[test]
    fn the_worst_part_decides_the_verdict() {
        let v = |m: &str| (m.to_string(), Verdict::Failures(m.into()));
        assert_eq!(
            combine(vec![("a".into(), Verdict::Success)]),
            Verdict::Success
        );
        assert!(
            matches!(combine(vec![v("x"), ("b".into(), Verdict::Abnormal("k".into()))]), Verdict::Abnormal(m) if m.contains("b: k") && m.contains("x: x"))
        );
        assert!(
            matches!(combine(vec![("a".into(), Verdict::Success), v("y")]), Verdict::Failures(m) if m == "y: y")
        );
    }

    #[test]
    fn the_last_part_record_decides_what_a_resume_skips() {
        let rec = |outcome: &str, id: &str| {
            let mut values = BTreeMap::new();
            values.insert("ClientId".to_string(), id.to_string());
            Record::Part(PartRecord {
                part: "app-registration".into(),
                number: 2,
                outcome: outcome.into(),
                message: None,
                values,
            })
        };
        let records = [rec("failed", "a"), rec("completed", "b")];
        let done = completed_parts(&records);
        assert_eq!(done["app-registration"]["ClientId"], "b");
        assert!(completed_parts(&[rec("completed", "b"), rec("stopped", "c")]).is_empty());
    }
}
