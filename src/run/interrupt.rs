//! Ctrl-C while pwsh runs.
//!
//! The terminal sends SIGINT to pwsh as well as to calperm. calperm does not die of it: it notes
//! the interruption and keeps reading, so the records pwsh still writes while it stops (its
//! `finally` blocks disconnect from Exchange) reach the journal; then it removes the temp files
//! and exits 4 with the command that resumes the run. A second Ctrl-C kills pwsh at once.
//!
//! pwsh itself exits 0 after Ctrl-C in a `-File` script (exchange.md §8.2), so the flag, not the
//! exit code, is what tells an interrupted run from a finished one.

use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub(crate) struct Interrupt {
    presses: Arc<AtomicU32>,
}

impl Interrupt {
    /// Installs the Ctrl-C handler (once per process; a second install only shares the flag).
    pub(crate) fn install() -> Interrupt {
        static PRESSES: std::sync::OnceLock<Arc<AtomicU32>> = std::sync::OnceLock::new();
        let presses = PRESSES
            .get_or_init(|| {
                let presses = Arc::new(AtomicU32::new(0));
                let counter = Arc::clone(&presses);
                let handler = move || {
                    if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                        eprintln!(
                            "calperm: interrupted; waiting for pwsh to stop (press Ctrl-C again to stop it at once)"
                        );
                    }
                };
                if let Err(err) = ctrlc::set_handler(handler) {
                    eprintln!("calperm: warning: cannot catch Ctrl-C ({err}); an interrupted run may leave its temp files");
                }
                presses
            })
            .clone();
        presses.store(0, Ordering::SeqCst);
        Interrupt { presses }
    }

    pub(crate) fn interrupted(&self) -> bool {
        self.presses.load(Ordering::SeqCst) > 0
    }

    /// Watches for a second Ctrl-C and then kills `child`, until the returned guard is stopped.
    pub(crate) fn watch(&self, child: Arc<Mutex<Child>>) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let (presses, stop) = (Arc::clone(&self.presses), Arc::clone(&done));
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if presses.load(Ordering::SeqCst) >= 2 {
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
