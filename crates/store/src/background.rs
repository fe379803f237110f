//! The background services of a store: the CommitLog flusher ([`crate::flush`]), the
//! maintenance thread (checkpoints and [`crate::retention`]) and the CommitLog prefaulter
//! ([`crate::prefault`]), started and stopped together.

use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::engine::Engine;
use crate::error::{Result, StoreError};

/// The running service threads of one store; empty once stopped.
#[derive(Default)]
pub(crate) struct BackgroundThreads {
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl BackgroundThreads {
    /// Starts the CommitLog flusher, the maintenance thread and the prefaulter.
    pub(crate) fn start(engine: &Arc<Engine>) -> Result<BackgroundThreads> {
        let root = engine.config.store_path_root_dir.clone();
        let mut threads = Vec::new();
        let flusher = Arc::clone(engine);
        threads.push(
            std::thread::Builder::new()
                .name("store-flush".into())
                .spawn(move || crate::flush::run_flusher(&flusher))
                .map_err(|e| StoreError::io(&root, e))?,
        );
        let cleaner = Arc::clone(engine);
        threads.push(
            std::thread::Builder::new()
                .name("store-maintain".into())
                .spawn(move || crate::retention::run_cleaner(&cleaner))
                .map_err(|e| StoreError::io(&root, e))?,
        );
        if engine.config.prefault_ahead_bytes > 0 {
            let prefaulter = Arc::clone(engine);
            threads.push(
                std::thread::Builder::new()
                    .name("store-prefault".into())
                    .spawn(move || crate::prefault::run_prefaulter(&prefaulter))
                    .map_err(|e| StoreError::io(&root, e))?,
            );
        }
        Ok(BackgroundThreads {
            threads: Mutex::new(threads),
        })
    }

    /// Stops the threads (they finish their current step first). Returns whether any were
    /// running, so a second stop knows there is nothing left to flush after.
    pub(crate) fn stop(&self, engine: &Engine) -> bool {
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        if threads.is_empty() {
            return false;
        }
        {
            let mut state = engine.flush_signal.state.lock();
            state.shutdown = true;
        }
        engine.flush_signal.wake.notify_all();
        engine.flush_signal.clean_wake.notify_all();
        for thread in threads {
            let _ = thread.join();
        }
        true
    }
}
