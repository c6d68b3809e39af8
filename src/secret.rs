//! The client secret's way out, checked before anything runs: a `--secret-file` only in a
//! directory no one else can write to (another user could otherwise put a file or link of theirs
//! in its place), and no run that would create a secret nobody sees.

use crate::cli::{RunOptions, ScriptOptions};
use crate::error::Failure;
use crate::script::Target;
use anyhow::Result;
use std::path::Path;

/// The checks of `calperm run`. `terminal`: calperm's standard error, where the script's console
/// output goes, is a terminal.
pub fn check_run(
    target: &Target,
    options: &ScriptOptions,
    run: &RunOptions,
    terminal: bool,
) -> Result<()> {
    if !target.creates_secret {
        return Ok(());
    }
    if let Some(path) = &options.secret_file {
        check_folder(path)?;
    } else if !options.show_secret && !terminal && !run.what_if {
        return Err(Failure::usage(
            "the client secret would be shown nowhere: standard error is not a terminal and no --secret-file was given",
            "add --secret-file FILE (in a directory only you can write to), or --show-secret to print it on standard error anyway",
        )
        .into());
    }
    Ok(())
}

/// Refuses a secret file whose directory is missing, or that others may write to.
pub fn check_folder(file: &Path) -> Result<()> {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let folder = absolute.parent().unwrap_or(Path::new("/"));
    let metadata = std::fs::metadata(folder).map_err(|e| {
        Failure::usage(
            format!(
                "--secret-file {}: its directory {} cannot be read ({e})",
                file.display(),
                folder.display()
            ),
            "create the directory first, or choose another --secret-file",
        )
    })?;
    if let Some(why) = writable_by_others(&metadata) {
        return Err(Failure::usage(
            format!(
                "--secret-file {}: {why} ({}), so they could put a file of their own in its place",
                file.display(),
                folder.display()
            ),
            "choose a directory only you can write to, e.g. one in your home directory, or remove the others' write permission (chmod go-w)",
        )
        .into());
    }
    Ok(())
}

#[cfg(unix)]
fn writable_by_others(metadata: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mode = metadata.mode();
    if metadata.uid() != me && metadata.uid() != 0 {
        Some(format!(
            "its directory belongs to another user (uid {})",
            metadata.uid()
        ))
    } else if mode & 0o002 != 0 {
        Some(format!(
            "every user can write to its directory (mode {:o})",
            mode & 0o7777
        ))
    } else if mode & 0o020 != 0 {
        Some(format!(
            "the directory's group can write to it (mode {:o})",
            mode & 0o7777
        ))
    } else {
        None
    }
}

/// On Windows the directory's ACL is not inspected here; the script creates the file with an
/// owner-only ACL and never replaces one.
#[cfg(not(unix))]
fn writable_by_others(_metadata: &std::fs::Metadata) -> Option<String> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_folder_others_can_write_to_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_folder(&dir.path().join("s.txt")).is_ok());
        for mode in [0o777, 0o1777, 0o770] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            let err = check_folder(&dir.path().join("s.txt")).unwrap_err();
            assert_eq!(
                err.downcast_ref::<Failure>().unwrap().code,
                crate::error::code::USAGE,
                "{mode:o}"
            );
        }
        assert!(check_folder(Path::new("/nonexistent-dir/s.txt")).is_err());
    }
}
