//! Ctrl-C, SIGTERM and SIGHUP while pwsh runs.
//!
//! The terminal sends SIGINT to pwsh as well as to calperm; a supervisor (`kill`, systemd, a
//! closed SSH session) signals calperm alone. Either way calperm does not die of it: it passes
//! SIGINT on to pwsh, stops acknowledging changes (the script then stops before its next one),
//! notes the interruption and keeps reading, so the records pwsh still writes while it stops
//! (its `finally` blocks disconnect from Exchange) reach the journal; then it removes the temp
//! files and exits 4 with the command that resumes the run. A second signal kills pwsh at once.
//!
//! pwsh itself exits 0 after Ctrl-C in a `-File` script (exchange.md §8.2), so the flag, not the
//! exit code, is what tells an interrupted run from a finished one.

use indicatif::ProgressBar;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

pub(crate) struct Interrupt {
    shared: Arc<Shared>,
}

/// What the handler (on its own thread) shares with the run.
struct Shared {
    presses: AtomicU32,
    /// The progress bar to move out of the way of the handler's message.
    bar: Mutex<Option<ProgressBar>>,
}

impl Interrupt {
    /// Installs the Ctrl-C handler (once per process; a later install only resets the count).
    pub(crate) fn install(bar: Option<ProgressBar>) -> Interrupt {
        static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
        let shared = SHARED
            .get_or_init(|| {
                let shared = Arc::new(Shared { presses: AtomicU32::new(0), bar: Mutex::new(None) });
                let handler_shared = Arc::clone(&shared);
                let handler = move || {
                    if handler_shared.presses.fetch_add(1, Ordering::SeqCst) == 0 {
                        let say = || {
                            eprintln!(
                                "calperm: interrupted; waiting for pwsh to stop (press Ctrl-C again to stop it at once)"
                            );
                        };
                        match handler_shared.bar.lock().ok().and_then(|bar| bar.clone()) {
                            Some(bar) => bar.suspend(say),
                            None => say(),
                        }
                    }
                };
                if let Err(err) = ctrlc::set_handler(handler) {
                    eprintln!(
                        "calperm: warning: cannot catch Ctrl-C, SIGTERM or SIGHUP ({err}); an interrupted run may leave its temp files"
                    );
                }
                shared
            })
            .clone();
        shared.presses.store(0, Ordering::SeqCst);
        if let Ok(mut slot) = shared.bar.lock() {
            *slot = bar;
        }
        Interrupt { shared }
    }

    pub(crate) fn interrupted(&self) -> bool {
        self.shared.presses.load(Ordering::SeqCst) > 0
    }

    /// A cheap handle that tells whether the run was interrupted, for the reading thread.
    pub(crate) fn flag(&self) -> Flag {
        Flag {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Passes the first signal on to `child` as SIGINT and kills it on the second, until the
    /// returned guard is stopped.
    pub(crate) fn watch(&self, child: Arc<Mutex<Child>>) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let (shared, stop) = (Arc::clone(&self.shared), Arc::clone(&done));
        let pid = child.lock().map(|c| c.id()).ok();
        let thread = std::thread::spawn(move || {
            let mut passed_on = false;
            while !stop.load(Ordering::SeqCst) {
                let presses = shared.presses.load(Ordering::SeqCst);
                if presses >= 1 && !passed_on {
                    passed_on = true;
                    if let Some(pid) = pid {
                        super::pwsh::interrupt(pid);
                    }
                }
                if presses >= 2 {
                    if let Ok(mut child) = child.lock() {
                        // An already-ended child makes this an error that means nothing.
                        let _ = child.kill();
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Watchdog {
            done,
            thread: Some(thread),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Flag {
    shared: Arc<Shared>,
}

impl Flag {
    pub(crate) fn is_set(&self) -> bool {
        self.shared.presses.load(Ordering::SeqCst) > 0
    }
}

pub(crate) struct Watchdog {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn stop(mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
