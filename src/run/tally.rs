//! What a run's records add up to: counts per outcome, failures, the few non-mailbox records
//! (steps, items, settings, fatals) and the `start`/`end` records. This is all the summary and
//! the exit code need; mailbox records themselves are not kept here.

use crate::records::{
    DeltaReason, End, Fatal, Item, MailboxKind, Monitor, Outcome, Part, Record, Setting, Start,
    Step, Warning,
};
use std::collections::BTreeMap;

/// Steps, items, settings, warnings and fatals kept for the summary; a script that emits more than this
/// still has every one of them in the journal.
pub(crate) const KEEP: usize = 200;

#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) records: u64,
    pub(crate) start: Option<Start>,
    pub(crate) monitor: Option<Monitor>,
    /// Per outcome, in the declaration order of `Outcome` (the summary's fixed order).
    pub(crate) outcomes: BTreeMap<Outcome, u64>,
    pub(crate) mailboxes: u64,
    pub(crate) retries: u64,
    pub(crate) calls: u64,
    /// A delta run's mailboxes: created in the window, retried from the `--since` journal, and
    /// skipped as not usable yet (the next `--since` run retries them).
    pub(crate) delta_new: u64,
    pub(crate) delta_retried: u64,
    pub(crate) not_yet_usable: u64,
    pub(crate) failed_mailboxes: u64,
    pub(crate) failed_steps: u64,
    pub(crate) failed_items: u64,
    pub(crate) steps: Vec<Step>,
    pub(crate) items: Vec<Item>,
    pub(crate) settings: Vec<Setting>,
    pub(crate) fatals: Vec<Fatal>,
    /// The values the script reported for the next part of a workflow (the last of each name).
    pub(crate) outputs: BTreeMap<String, String>,
    /// How each part of a workflow ended (written by calperm).
    pub(crate) parts: Vec<Part>,
    pub(crate) failed_parts: u64,
    /// Calls retried while Entra ID replicated a new object (item records).
    pub(crate) replication_retries: u64,
    pub(crate) warnings: Vec<Warning>,
    /// Steps, items, settings or fatals beyond `KEEP`.
    pub(crate) not_kept: u64,
    pub(crate) end: Option<End>,
    /// Marked lines that were not records.
    pub(crate) unreadable: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, record: &Record) {
        self.records += 1;
        match record {
            Record::Start(start) => self.start = Some(start.clone()),
            Record::Monitor(monitor) => self.monitor = Some(monitor.clone()),
            Record::Mailbox(m) => {
                self.mailboxes += 1;
                *self.outcomes.entry(m.outcome).or_default() += 1;
                self.retries += u64::from(m.retries);
                self.calls += u64::from(m.calls);
                match m.delta {
                    Some(DeltaReason::New) => self.delta_new += 1,
                    Some(DeltaReason::Retried) => self.delta_retried += 1,
                    _ => {}
                }
                if m.kind == Some(MailboxKind::NotYetUsable) {
                    self.not_yet_usable += 1;
                }
                if m.outcome.is_failure() {
                    self.failed_mailboxes += 1;
                }
            }
            Record::Step(step) => {
                if step.is_failure() {
                    self.failed_steps += 1;
                }
                keep(&mut self.steps, step, &mut self.not_kept);
            }
            Record::Item(item) => {
                if item.is_failure() {
                    self.failed_items += 1;
                }
                self.replication_retries += u64::from(item.retries);
                keep(&mut self.items, item, &mut self.not_kept);
            }
            Record::Setting(setting) => keep(&mut self.settings, setting, &mut self.not_kept),
            Record::Fatal(fatal) => keep(&mut self.fatals, fatal, &mut self.not_kept),
            Record::Output(output) => {
                self.outputs
                    .insert(output.name.clone(), output.value.clone());
            }
            Record::Part(part) => {
                if part.is_failure() {
                    self.failed_parts += 1;
                }
                self.parts.push(part.clone());
            }
            Record::Warning(warning) => keep(&mut self.warnings, warning, &mut self.not_kept),
            Record::End(end) => self.end = Some(end.clone()),
            // Journal-only: the mailbox record that follows says what happened.
            Record::Intent(_) => {}
        }
    }

    /// The first fatal record, which is the reason the script stopped.
    pub(crate) fn fatal(&self) -> Option<&Fatal> {
        self.fatals.first()
    }

    pub(crate) fn what_if(&self) -> bool {
        self.start.as_ref().is_some_and(|s| s.what_if)
    }
}

fn keep<T: Clone>(list: &mut Vec<T>, value: &T, not_kept: &mut u64) {
    if list.len() < KEEP {
        list.push(value.clone());
    } else {
        *not_kept += 1;
    }
}
