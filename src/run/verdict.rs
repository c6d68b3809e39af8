//! The exit-code decision (design.md "Exit codes"), from how pwsh ended and what the records said.
//!
//! | calperm | when |
//! |---|---|
//! | 4 | interrupted; pwsh killed by a signal or exited with a code other than 0, 1, 2; marked lines that were not records; no `end` record; the journal could not be written |
//! | 2 | a `fatal` record of kind `monitor-not-found`, `monitor-ambiguous`, `monitor-invalid` or `journal-mismatch` (nothing was changed) |
//! | 1 | any other `fatal` record; a failed mailbox, step or item; or the script itself said it failed |
//! | 0 | otherwise |

use super::tally::Tally;
use crate::records::{FatalKind, Outcome};

/// How the pwsh process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildEnd {
    Exited(i32),
    /// Killed by this signal (Unix).
    Signal(i32),
    /// Neither (should not happen).
    Unknown,
}

impl ChildEnd {
    pub(crate) fn from_status(status: std::process::ExitStatus) -> ChildEnd {
        if let Some(code) = status.code() {
            return ChildEnd::Exited(code);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(signal) = status.signal() {
                return ChildEnd::Signal(signal);
            }
        }
        ChildEnd::Unknown
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Exit 0.
    Success,
    /// Exit 1: what failed.
    Failures(String),
    /// Exit 2: the fatal record's message (it quotes Exchange).
    Configuration(String),
    /// Exit 4: why the run cannot be trusted to be complete.
    Abnormal(String),
}

/// The hint of a `journal-mismatch` stop: the --resume / --from-journal journal is of another run.
const JOURNAL_MISMATCH_HINT: &str = "pass the journal of a run for this monitor in this tenant, or drop --resume / --from-journal; nothing was changed";

/// What to fix after a configuration stop (`Verdict::Configuration`).
pub(crate) fn configuration_hint(tally: &Tally) -> &'static str {
    if tally
        .fatal()
        .is_some_and(|f| f.kind == FatalKind::JournalMismatch)
    {
        JOURNAL_MISMATCH_HINT
    } else {
        "check --monitor: it must name exactly one mailbox, mail user or mail-enabled security group (its UPN or SMTP address is safest); nothing was changed"
    }
}

/// Decides the outcome. `trouble` names a problem on calperm's side (reading pwsh's output,
/// writing the journal) that makes the run's record incomplete.
pub(crate) fn decide(
    tally: &Tally,
    child: ChildEnd,
    interrupted: bool,
    trouble: &[String],
) -> Verdict {
    let mut abnormal: Vec<String> = Vec::new();
    if interrupted {
        abnormal.push("interrupted".into());
    }
    match child {
        ChildEnd::Exited(0..=2) => {}
        ChildEnd::Exited(code) => abnormal.push(format!("pwsh exited with code {code}")),
        ChildEnd::Signal(signal) => {
            abnormal.push(format!("pwsh was killed by {}", signal_name(signal)))
        }
        ChildEnd::Unknown => abnormal.push("pwsh ended without an exit code".into()),
    }
    if tally.unreadable > 0 {
        let lines = if tally.unreadable == 1 {
            "line"
        } else {
            "lines"
        };
        abnormal.push(format!(
            "{} output {lines} could not be parsed",
            tally.unreadable
        ));
    }
    abnormal.extend(trouble.iter().cloned());
    if !abnormal.is_empty() {
        return Verdict::Abnormal(abnormal.join("; "));
    }

    if let Some(fatal) = tally.fatal()
        && fatal.kind.is_configuration()
    {
        return Verdict::Configuration(fatal.message.clone());
    }
    let Some(end) = &tally.end else {
        let code = match child {
            ChildEnd::Exited(code) => code,
            _ => -1,
        };
        return Verdict::Abnormal(format!(
            "the script ended without its end record (pwsh exit code {code}; see its messages above)"
        ));
    };
    if let Some(fatal) = tally.fatal() {
        return Verdict::Failures(format!(
            "the script stopped ({}): {}",
            fatal.kind, fatal.message
        ));
    }
    // audit's below and missing mailboxes make the run exit 1 too, but nothing failed there:
    // they are named for what they are.
    let outcome = |o: Outcome| tally.outcomes.get(&o).copied().unwrap_or(0);
    let mut failed = Vec::new();
    for (count, what) in [
        (outcome(Outcome::Failed), "mailbox"),
        (tally.failed_steps, "step"),
        (tally.failed_items, "item"),
    ] {
        if count > 0 {
            failed.push(count_of(count, what));
        }
    }
    let mut problems = Vec::new();
    if !failed.is_empty() {
        problems.push(format!("{} failed", failed.join(", ")));
    }
    for (count, what) in [
        (outcome(Outcome::Below), "below the target rights"),
        (outcome(Outcome::Missing), "without the monitor's entry"),
    ] {
        if count > 0 {
            problems.push(format!("{} {what}", count_of(count, "mailbox")));
        }
    }
    if !problems.is_empty() {
        return Verdict::Failures(problems.join("; "));
    }
    let script_code = match child {
        ChildEnd::Exited(code) if code != 0 => code,
        _ => end.exit_code,
    };
    if script_code != 0 {
        return Verdict::Failures(format!(
            "the script reported failure (exit code {script_code})"
        ));
    }
    Verdict::Success
}

/// `1 mailbox`, `2 mailboxes`, `3 steps`.
fn count_of(count: u64, word: &str) -> String {
    match (count, word) {
        (1, _) => format!("1 {word}"),
        (_, "mailbox") => format!("{count} mailboxes"),
        _ => format!("{count} {word}s"),
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal} ({name})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{End, Fatal, FatalKind, Mailbox, Outcome, Record, Start, Step};

    fn start() -> Record {
        Record::Start(Start {
            script: "grant".into(),
            monitor: None,
            access_rights: None,
            what_if: false,
            total: None,
            calperm_version: None,
            simulated_tenant: None,
            started_at: None,
            created_after: None,
            since: None,
        })
    }
    fn end(code: i32) -> Record {
        Record::End(End { exit_code: code })
    }
    fn mailbox(outcome: Outcome) -> Record {
        Record::Mailbox(Mailbox {
            mailbox: "a@x".into(),
            outcome,
            display_name: None,
            recipient_type: None,
            folder: None,
            folder_identity: None,
            previous: None,
            rights: None,
            kind: None,
            message: None,
            retries: 0,
            calls: 1,
            delta: None,
        })
    }
    fn fatal(kind: &str) -> Record {
        Record::Fatal(Fatal {
            kind: FatalKind::from_name(kind),
            message: format!("{kind} happened"),
        })
    }
    fn tally(records: &[Record]) -> Tally {
        let mut t = Tally::default();
        for r in records {
            t.add(r);
        }
        t
    }
    fn ok(records: &[Record]) -> Verdict {
        decide(&tally(records), ChildEnd::Exited(0), false, &[])
    }

    #[test]
    fn all_good_is_success() {
        assert_eq!(
            ok(&[
                start(),
                mailbox(Outcome::Added),
                mailbox(Outcome::KeptHigher),
                end(0)
            ]),
            Verdict::Success
        );
        assert_eq!(ok(&[start(), end(0)]), Verdict::Success);
    }

    #[test]
    fn failed_mailboxes_and_steps_are_exit_1() {
        let v = ok(&[
            start(),
            mailbox(Outcome::Failed),
            mailbox(Outcome::Failed),
            mailbox(Outcome::Added),
            end(1),
        ]);
        assert_eq!(v, Verdict::Failures("2 mailboxes failed".into()));
        let step = Record::Step(Step {
            step: "policy".into(),
            outcome: "failed".into(),
            message: None,
        });
        assert_eq!(
            ok(&[start(), step, end(1)]),
            Verdict::Failures("1 step failed".into())
        );
        // audit: a monitor without rights is a failure too, named for what it is.
        assert_eq!(
            ok(&[
                start(),
                mailbox(Outcome::Missing),
                mailbox(Outcome::Below),
                mailbox(Outcome::Below),
                end(1)
            ]),
            Verdict::Failures(
                "2 mailboxes below the target rights; 1 mailbox without the monitor's entry".into()
            )
        );
        assert_eq!(
            ok(&[
                start(),
                mailbox(Outcome::Failed),
                mailbox(Outcome::Missing),
                end(1)
            ]),
            Verdict::Failures("1 mailbox failed; 1 mailbox without the monitor's entry".into())
        );
    }

    #[test]
    fn script_exit_code_1_without_failed_records_is_still_a_failure() {
        let v = decide(&tally(&[start(), end(1)]), ChildEnd::Exited(1), false, &[]);
        assert!(matches!(v, Verdict::Failures(m) if m.contains("exit code 1")));
    }

    #[test]
    fn monitor_fatals_are_configuration_errors() {
        for kind in ["monitor-not-found", "monitor-ambiguous", "monitor-invalid"] {
            let v = decide(
                &tally(&[start(), fatal(kind), end(2)]),
                ChildEnd::Exited(2),
                false,
                &[],
            );
            assert_eq!(v, Verdict::Configuration(format!("{kind} happened")));
        }
    }

    #[test]
    fn other_fatals_are_exit_1() {
        for kind in ["connect", "module-missing", "other"] {
            let v = decide(
                &tally(&[start(), fatal(kind), end(2)]),
                ChildEnd::Exited(2),
                false,
                &[],
            );
            assert!(
                matches!(&v, Verdict::Failures(m) if m.contains(kind)),
                "{v:?}"
            );
        }
    }

    #[test]
    fn abnormal_endings_are_exit_4() {
        let good = [start(), mailbox(Outcome::Added), end(0)];
        assert!(
            matches!(decide(&tally(&good), ChildEnd::Signal(9), false, &[]), Verdict::Abnormal(m) if m.contains("SIGKILL"))
        );
        assert!(
            matches!(decide(&tally(&good), ChildEnd::Exited(3), false, &[]), Verdict::Abnormal(m) if m.contains("code 3"))
        );
        assert!(matches!(
            decide(&tally(&good), ChildEnd::Exited(-1), false, &[]),
            Verdict::Abnormal(_)
        ));
        assert!(matches!(
            decide(&tally(&good), ChildEnd::Unknown, false, &[]),
            Verdict::Abnormal(_)
        ));
        assert!(
            matches!(decide(&tally(&good), ChildEnd::Exited(0), true, &[]), Verdict::Abnormal(m) if m == "interrupted")
        );
        let trouble = ["writing the journal failed".to_string()];
        assert!(matches!(
            decide(&tally(&good), ChildEnd::Exited(0), false, &trouble),
            Verdict::Abnormal(_)
        ));
    }

    #[test]
    fn a_missing_end_record_is_exit_4() {
        let v = ok(&[start(), mailbox(Outcome::Added)]);
        assert!(matches!(v, Verdict::Abnormal(m) if m.contains("end record")));
        // Even when a mailbox failed: the run did not finish.
        assert!(matches!(
            ok(&[start(), mailbox(Outcome::Failed)]),
            Verdict::Abnormal(_)
        ));
    }

    #[test]
    fn unreadable_lines_are_exit_4_even_for_an_otherwise_good_run() {
        let mut t = tally(&[start(), mailbox(Outcome::Added), end(0)]);
        t.unreadable = 2;
        let v = decide(&t, ChildEnd::Exited(0), false, &[]);
        assert_eq!(
            v,
            Verdict::Abnormal("2 output lines could not be parsed".into())
        );
        // ... and they outrank a configuration fatal: the output cannot be trusted.
        let mut t = tally(&[start(), fatal("monitor-not-found"), end(2)]);
        t.unreadable = 1;
        assert!(matches!(
            decide(&t, ChildEnd::Exited(2), false, &[]),
            Verdict::Abnormal(_)
        ));
    }

    #[test]
    fn abnormal_reasons_add_up() {
        let mut t = tally(&[start()]);
        t.unreadable = 1;
        let v = decide(&t, ChildEnd::Signal(9), true, &[]);
        assert_eq!(
            v,
            Verdict::Abnormal("interrupted; pwsh was killed by signal 9 (SIGKILL); 1 output line could not be parsed".into())
        );
    }
}
