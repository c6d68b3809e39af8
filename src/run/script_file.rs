//! The temporary `.ps1` file pwsh runs: `calperm-XXXXXX.ps1` in the temp directory, readable only
//! by the user, removed when the run ends (also after Ctrl-C, which calperm catches).
//!
//! The `.ps1` suffix matters: `pwsh -File` on Windows rejects other extensions, and
//! `$PSScriptRoot` is empty without it. The text already starts with the UTF-8 BOM (`render`).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use tempfile::NamedTempFile;

pub(crate) struct ScriptFile {
    file: NamedTempFile,
}

impl ScriptFile {
    /// Writes `text` to a new private temp file.
    pub(crate) fn write(text: &str) -> Result<ScriptFile> {
        let mut file = tempfile::Builder::new()
            .prefix("calperm-")
            .suffix(".ps1")
            .tempfile()
            .context("creating the temporary script file")?;
        ensure_private(file.path())?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.flush())
            .with_context(|| format!("writing the script to {}", file.path().display()))?;
        Ok(ScriptFile { file })
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// Deletes the file now, reporting a failure (dropping it deletes it too, silently).
    pub(crate) fn remove(self) -> Result<()> {
        let path = self.file.path().to_path_buf();
        self.file
            .close()
            .with_context(|| format!("removing the temporary script {}", path.display()))
    }
}

/// The script is not secret (principle 4 keeps secrets out of it), but it names the tenant's
/// mailboxes and nobody else needs to read it. tempfile creates files 0600 on Unix; this makes
/// sure of it before anything is written.
#[cfg(unix)]
fn ensure_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading the permissions of {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    anyhow::ensure!(
        mode == 0o600,
        "the temporary script {} has mode {mode:o}, not 600",
        path.display()
    );
    Ok(())
}

#[cfg(not(unix))]
fn ensure_private(_: &Path) -> Result<()> {
    // Windows: the file is created in the user's own %TEMP%, which only the user can read.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_private_ps1_that_holds_the_text_and_goes_away() {
        let script = ScriptFile::write("\u{FEFF}'café'\n").unwrap();
        let path = script.path().to_path_buf();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("calperm-") && name.ends_with(".ps1"),
            "{name}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), "\u{FEFF}'café'\n".as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        script.remove().unwrap();
        assert!(!path.exists());
    }
}
