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
        let root = &engine.config.store_path_root_dir;
        let spawn = |name: &str, service: fn(&Engine)| {
            let engine = Arc::clone(engine);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || service(&engine))
                .map_err(|e| StoreError::io(root, e))
        };
        let mut threads = vec![
            spawn("store-flush", crate::flush::run_flusher)?,
            spawn("store-maintain", crate::retention::run_cleaner)?,
        ];
        if engine.config.prefault_ahead_bytes > 0 {
            threads.push(spawn("store-prefault", crate::prefault::run_prefaulter)?);
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
