//! The command that picks up where an interrupted run stopped: the same command line, with its
//! `--resume`/`--journal` replaced by `--resume <journal>` (a resumed run appends to the journal it
//! resumes, and skips the mailboxes it shows as done).

use std::path::Path;

/// `calperm <args…> --resume <journal>` for a resumable script, else `calperm <args…>` without
/// `--journal` (a rerun starts a journal of its own). `args` excludes the program name.
pub(crate) fn command(args: &[String], journal: &Path, resume: bool) -> String {
    let mut words: Vec<String> = vec!["calperm".into()];
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match arg.as_str() {
            "--resume" | "--journal" => skip_value = true,
            a if a.starts_with("--resume=") || a.starts_with("--journal=") => {}
            _ => words.push(arg.clone()),
        }
    }
    if resume {
        words.push("--resume".into());
        words.push(journal.to_string_lossy().into_owned());
    }
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The current process's arguments, without the program name.
pub(crate) fn current_args() -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Quotes `word` for the user's shell when it needs it: POSIX single quotes on Unix,
/// PowerShell single quotes on Windows.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | ',' | '=' | '+')
        });
    if plain {
        word.to_string()
    } else if cfg!(windows) {
        // PowerShell also takes U+2018..U+201B for quotes: the one quoting function knows.
        crate::powershell::quote(word)
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn appends_resume_to_the_same_options() {
        let cmd = command(
            &args(&["run", "grant", "--monitor", "monitor@contoso.com"]),
            Path::new("/w/j.jsonl"),
            true,
        );
        assert_eq!(
            cmd,
            "calperm run grant --monitor monitor@contoso.com --resume /w/j.jsonl"
        );
    }

    #[test]
    fn drops_an_earlier_resume_and_journal_in_both_spellings() {
        let cmd = command(
            &args(&[
                "--templates",
                "t",
                "run",
                "grant",
                "--resume",
                "old.jsonl",
                "--journal=x.jsonl",
                "--what-if",
            ]),
            Path::new("new.jsonl"),
            true,
        );
        assert_eq!(
            cmd,
            "calperm --templates t run grant --what-if --resume new.jsonl"
        );
        let cmd = command(
            &args(&["run", "grant", "--journal", "x.jsonl", "--resume=old.jsonl"]),
            Path::new("x.jsonl"),
            true,
        );
        assert_eq!(cmd, "calperm run grant --resume x.jsonl");
    }

    #[test]
    fn keeps_from_journal() {
        let cmd = command(
            &args(&[
                "run",
                "revoke",
                "--from-journal",
                "g.jsonl",
                "--journal",
                "r.jsonl",
            ]),
            Path::new("r.jsonl"),
            false,
        );
        assert_eq!(cmd, "calperm run revoke --from-journal g.jsonl");
    }

    #[test]
    #[cfg(unix)]
    fn quotes_what_the_shell_would_split() {
        let cmd = command(
            &args(&["run", "grant", "--monitor", "O'Brien Monitor"]),
            Path::new("/my dir/j.jsonl"),
            true,
        );
        assert_eq!(
            cmd,
            r"calperm run grant --monitor 'O'\''Brien Monitor' --resume '/my dir/j.jsonl'"
        );
    }
}
