//! The client secret under a careless admin and a hostile local user: the `--secret-file` is
//! private from the moment it exists (even under umask 000), never replaces a file or link that
//! is already there, is refused in a directory others can write to; the secret reaches stderr
//! only when it is a terminal or `--show-secret` says so. Real pwsh against the simulated tenant.

use crate::common;

use common::tenant::{SimTenant, describe, records};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn item<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["type"] == "item" && r["item"] == name)
        .unwrap_or_else(|| panic!("no {name} item in {records:?}"))
}

fn secrets_in_state(t: &SimTenant) -> usize {
    t.now()["graph"]["applications"]
        .as_array()
        .map(|apps| {
            apps.iter()
                .map(|a| a["passwordCredentials"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What an observer in the secret file's directory saw while the run went on.
#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
struct Seen {
    /// The file's mode at the first moment it could be opened.
    first_mode: Option<u32>,
    /// An attribute change (chmod, chown) on the file: it was created with other permissions.
    attrib_events: u32,
    created: bool,
}

/// Runs `calperm run …` under umask 000, watching `dir` with inotify for `name`.
#[cfg(target_os = "linux")]
fn run_watched(t: &SimTenant, args: &[&str], dir: &Path, name: &str) -> (Output, Seen) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;

    // SAFETY: plain libc calls on a descriptor this function owns.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(fd >= 0, "inotify_init1");
    let dir_c = CString::new(dir.as_os_str().as_bytes()).unwrap();
    let mask = libc::IN_CREATE | libc::IN_ATTRIB | libc::IN_MODIFY | libc::IN_CLOSE_WRITE;
    let wd = unsafe { libc::inotify_add_watch(fd, dir_c.as_ptr(), mask) };
    assert!(wd >= 0, "inotify_add_watch");

    let mut command = common::calperm_std();
    command
        .current_dir(t.file(""))
        .env("TMPDIR", t.root().join("tmp"))
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
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // SAFETY: umask is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    let file_c = CString::new(dir.join(name).as_os_str().as_bytes()).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_watch = std::sync::Arc::clone(&stop);
    let watcher = std::thread::spawn(move || {
        let mut seen = Seen::default();
        let mut buf = [0u8; 4096];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::time::Instant::now() < deadline
            && !stop_watch.load(std::sync::atomic::Ordering::Relaxed)
        {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd, owned here.
            let ready = unsafe { libc::poll(&mut pfd, 1, 50) };
            if ready <= 0 {
                continue;
            }
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            let mut offset = 0usize;
            while n > 0 && offset < n as usize {
                // SAFETY: the kernel wrote whole inotify_event structs into buf.
                let event = unsafe { &*(buf.as_ptr().add(offset) as *const libc::inotify_event) };
                let name_len = event.len as usize;
                let name_bytes =
                    &buf[offset + std::mem::size_of::<libc::inotify_event>()..][..name_len];
                let event_name: Vec<u8> =
                    name_bytes.iter().copied().take_while(|&b| b != 0).collect();
                if event_name == file_c.as_bytes().rsplit(|&b| b == b'/').next().unwrap() {
                    if event.mask & libc::IN_CREATE != 0 && !seen.created {
                        seen.created = true;
                        // Open it as another process would, at once, and look at the mode.
                        let ffd = unsafe {
                            libc::open(
                                file_c.as_ptr(),
                                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                            )
                        };
                        if ffd >= 0 {
                            let mut st: libc::stat = unsafe { std::mem::zeroed() };
                            if unsafe { libc::fstat(ffd, &mut st) } == 0 {
                                seen.first_mode = Some(st.st_mode & 0o7777);
                            }
                            unsafe { libc::close(ffd) };
                        }
                    }
                    if event.mask & libc::IN_ATTRIB != 0 {
                        seen.attrib_events += 1;
                    }
                }
                offset += std::mem::size_of::<libc::inotify_event>() + name_len;
            }
        }
        seen
    });
    let out = child.wait_with_output().unwrap();
    // Give the watcher the events of the last moments, then stop it.
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    // SAFETY: the watcher has ended; nobody uses the descriptor any more.
    unsafe { libc::close(fd) };
    (out, seen)
}

#[test]
#[cfg(target_os = "linux")]
fn secret_file_is_never_readable_by_others() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let work = t.file("");
    chmod(&work, 0o700);
    let (out, seen) = run_watched(
        &t,
        &[
            "app-registration",
            "--format",
            "json",
            "--secret-file",
            "secret.txt",
        ],
        &work,
        "secret.txt",
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        seen.created,
        "the secret file was never seen being created: {seen:?}"
    );
    assert_eq!(
        seen.first_mode,
        Some(0o600),
        "under umask 000 the file must be 0600 from the moment it exists: {seen:?}"
    );
    assert_eq!(
        seen.attrib_events, 0,
        "the file's permissions were changed after it was created (so it was created open to others): {seen:?}"
    );
    let secret = std::fs::read_to_string(work.join("secret.txt")).unwrap();
    assert!(secret.len() >= 30, "{secret:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.join("secret.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A link or a file that is already there is never replaced or followed, and then no secret is
    // made at all.
    let target = t.root().join("attacker-owned.txt");
    std::os::unix::fs::symlink(&target, work.join("link.txt")).unwrap();
    let out = t.run_json(&[
        "app-registration",
        "--secret-name",
        "second",
        "--secret-file",
        "link.txt",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(item(&records(&out), "secret")["outcome"], "failed");
    assert!(!target.exists(), "the link was followed");
    assert!(
        std::fs::symlink_metadata(work.join("link.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(secrets_in_state(&t), 1, "no second secret was made");
}

#[test]
#[cfg(unix)]
fn secret_file_in_a_directory_others_can_write_is_refused() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let shared = t.file("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let out = t.run_json(&["app-registration", "--secret-file", "shared/secret.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains("every user can write to its directory"),
        "{stderr}"
    );
    assert!(!t.file("state.json").exists(), "the script ran");
    assert!(!shared.join("secret.txt").exists());
}

#[test]
fn secret_not_on_stderr_when_not_a_terminal() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    #[cfg(unix)]
    chmod(&t.file(""), 0o700);
    // stderr is a pipe here, as in CI: the secret goes to the file only.
    let out = t.run_json(&["app-registration", "--secret-file", "secret.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let secret = std::fs::read_to_string(t.file("secret.txt")).unwrap();
    assert!(secret.len() >= 30, "{secret:?}");
    assert!(
        !contains(&out.stderr, secret.as_bytes()),
        "the secret is on stderr: {}",
        describe(&out)
    );
    assert!(!contains(&out.stdout, secret.as_bytes()));
    assert!(
        item(&records(&out), "secret")["message"]
            .as_str()
            .unwrap()
            .contains("written to the SecretFile only"),
        "{}",
        describe(&out)
    );

    // Neither a terminal nor a file nor --show-secret: refused before anything runs.
    let t = SimTenant::demo();
    let out = t.run_json(&["app-registration"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("would be shown nowhere"),
        "{}",
        describe(&out)
    );
    assert!(!t.file("state.json").exists(), "the script ran");

    // --show-secret: on stderr although it is not a terminal.
    let out = t.run_json(&["app-registration", "--show-secret"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        common::stderr(&out).contains("copy it now"),
        "{}",
        describe(&out)
    );
}

/// The rendered script run by hand (`pwsh -File`, as an admin would), with the simulated modules.
fn run_script_by_hand(t: &SimTenant, render_args: &[&str], script_args: &[&str]) -> Vec<Value> {
    let script = t.file("app.ps1");
    let out = common::calperm()
        .current_dir(t.file(""))
        .args(["render", "app-registration", "-o", "app.ps1"])
        .args(render_args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let modules = common::fixture("sim/modules");
    let marker = "##test-marker## ";
    let out = std::process::Command::new("pwsh")
        .current_dir(t.file(""))
        .env("PSModulePath", &modules)
        .env("CALPERM_SIM_TENANT", t.file("tenant.json"))
        .env("CALPERM_SIM_STATE", t.file("state.json"))
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
        .arg(&script)
        .args(["-RecordMarker", marker])
        .args(script_args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(marker))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
#[cfg(unix)]
fn the_script_itself_refuses_a_shared_folder_and_a_secret_shown_nowhere() {
    if common::pwsh().is_none() {
        return;
    }
    let t = SimTenant::demo();
    let shared = t.file("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let records = run_script_by_hand(&t, &["--secret-file", "shared/s.txt"], &[]);
    let secret = item(&records, "secret");
    assert_eq!(secret["outcome"], "failed", "{records:?}");
    assert!(
        secret["message"]
            .as_str()
            .unwrap()
            .contains("other users can write to the folder"),
        "{secret}"
    );
    assert!(!shared.join("s.txt").exists());
    assert!(
        t.file("state.json").exists(),
        "the simulated tenant saved no state"
    );
    assert_eq!(item(&records, "application")["outcome"], "created");
    assert_eq!(secrets_in_state(&t), 0);

    // Output redirected (ShowSecret auto) and no SecretFile: no secret is made.
    let records = run_script_by_hand(&t, &[], &[]);
    let secret = item(&records, "secret");
    assert_eq!(secret["outcome"], "failed", "{records:?}");
    assert!(
        secret["message"]
            .as_str()
            .unwrap()
            .contains("shown nowhere"),
        "{secret}"
    );
    assert_eq!(secrets_in_state(&t), 0);
}
