//! Runs many scenarios against servers a test started once, and reports every one of them:
//! a failing scenario does not stop the others, and the test fails at the end listing each
//! failure (client, set-up, scenario and what differed).
//!
//! A [`Suite`] is shared by threads (`std::thread::scope`); each [`Suite::step`] takes one of
//! its permits while it runs, so no more than a set number of client processes start at once
//! on a small machine. A step is a closure returning `anyhow::Result`; a panic inside it
//! counts as its failure.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

/// What became of one step.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    /// `None` when it passed.
    pub error: Option<String>,
    pub elapsed: Duration,
}

/// The scenarios of one test: a label naming the clients and set-up, the outcomes so far,
/// and the permits.
pub struct Suite {
    label: String,
    started: Instant,
    outcomes: Mutex<Vec<Outcome>>,
    free_permits: Mutex<usize>,
    permit_returned: Condvar,
}

impl Suite {
    /// A suite whose steps run at most `at_once` at a time.
    pub fn new(label: &str, at_once: usize) -> Suite {
        assert!(at_once > 0);
        Suite {
            label: label.to_owned(),
            started: Instant::now(),
            outcomes: Mutex::new(Vec::new()),
            free_permits: Mutex::new(at_once),
            permit_returned: Condvar::new(),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `step` (once a permit is free), records its outcome under `name` and returns its
    /// value, or `None` when it failed: steps that need it should not run.
    pub fn step<T>(&self, name: &str, step: impl FnOnce() -> Result<T>) -> Option<T> {
        self.acquire();
        let outcome = self.unlimited_step(name, step);
        self.release();
        outcome
    }

    /// [`Suite::step`] without a permit: for a step whose timing matters more than the
    /// machine's load (it acts on processes already running, e.g. kills a broker after so
    /// many sends), and which starts no more than a client or two itself.
    pub fn unlimited_step<T>(&self, name: &str, step: impl FnOnce() -> Result<T>) -> Option<T> {
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(step));
        let (value, error) = match result {
            Ok(Ok(value)) => (Some(value), None),
            Ok(Err(error)) => (None, Some(format!("{error:#}"))),
            Err(panic) => (None, Some(panic_text(panic.as_ref()))),
        };
        self.record(name, error, started.elapsed());
        value
    }

    /// Records that `name` did not run because `because` failed.
    pub fn not_run(&self, name: &str, because: &str) {
        self.record(
            name,
            Some(format!("not run: it needs `{because}`, which failed")),
            Duration::ZERO,
        );
    }

    fn record(&self, name: &str, error: Option<String>, elapsed: Duration) {
        let line = match &error {
            None => format!("ok ({:.1} s)", elapsed.as_secs_f64()),
            Some(error) => format!(
                "FAILED ({:.1} s): {}",
                elapsed.as_secs_f64(),
                error.lines().next().unwrap_or_default()
            ),
        };
        eprintln!(
            "[{} +{:.0} s] {name}: {line}",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
        self.outcomes.lock().unwrap().push(Outcome {
            name: name.to_owned(),
            error,
            elapsed,
        });
    }

    fn acquire(&self) {
        let mut free = self.free_permits.lock().unwrap();
        while *free == 0 {
            free = self.permit_returned.wait(free).unwrap();
        }
        *free -= 1;
    }

    fn release(&self) {
        *self.free_permits.lock().unwrap() += 1;
        self.permit_returned.notify_one();
    }

    /// Every outcome so far, in the order they ended.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes.lock().unwrap().clone()
    }

    /// Prints a table of every step and fails (panics) listing each failed one in full.
    pub fn finish(self) {
        let outcomes = self.outcomes();
        let mut table = format!(
            "{}: {} scenarios in {:.0} s\n",
            self.label,
            outcomes.len(),
            self.started.elapsed().as_secs_f64()
        );
        let mut sorted = outcomes.clone();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for outcome in &sorted {
            let verdict = if outcome.error.is_none() {
                "pass"
            } else {
                "FAIL"
            };
            let _ = writeln!(
                table,
                "  {verdict}  {:>5.1} s  {}",
                outcome.elapsed.as_secs_f64(),
                outcome.name
            );
        }
        eprintln!("{table}");
        let failures: Vec<&Outcome> = sorted.iter().filter(|o| o.error.is_some()).collect();
        if !failures.is_empty() {
            let mut report = format!(
                "{}: {} of {} scenarios failed\n",
                self.label,
                failures.len(),
                outcomes.len()
            );
            for failure in failures {
                let _ = writeln!(
                    report,
                    "\n=== {} / {}:\n{}",
                    self.label,
                    failure.name,
                    failure.error.as_deref().unwrap_or_default()
                );
            }
            // The processes' drops print their logs' tails after this panic; they repeat the
            // one-line summary so a truncated CI log still ends with what failed.
            let summary: Vec<String> = sorted
                .iter()
                .filter_map(|o| {
                    let error = o.error.as_deref()?;
                    let first = error.lines().next().unwrap_or_default();
                    Some(format!("{} / {}: {first}", self.label, o.name))
                })
                .collect();
            crate::set_failure_summary(summary.join("\n"));
            panic!("{report}");
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else {
        "panicked".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::bail;

    #[test]
    fn failures_and_panics_are_recorded_and_others_still_run() {
        let suite = Suite::new("unit", 2);
        std::thread::scope(|s| {
            s.spawn(|| suite.step("fails", || -> Result<()> { bail!("differed") }));
            s.spawn(|| suite.step("panics", || -> Result<()> { panic!("boom") }));
            s.spawn(|| suite.step("passes", || Ok(7)));
        });
        let outcomes = suite.outcomes();
        assert_eq!(outcomes.len(), 3);
        let error_of = |name: &str| {
            outcomes
                .iter()
                .find(|o| o.name == name)
                .unwrap()
                .error
                .clone()
        };
        assert_eq!(error_of("fails").as_deref(), Some("differed"));
        assert_eq!(error_of("panics").as_deref(), Some("boom"));
        assert_eq!(error_of("passes"), None);
        let report = catch_unwind(AssertUnwindSafe(|| suite.finish())).unwrap_err();
        let report = panic_text(report.as_ref());
        assert!(
            report.contains("unit / fails") && report.contains("differed"),
            "{report}"
        );
        assert!(!report.contains("unit / passes"), "{report}");
    }

    #[test]
    fn at_most_the_permitted_steps_run_at_once() {
        let suite = Suite::new("unit", 2);
        let running = Mutex::new((0usize, 0usize));
        std::thread::scope(|s| {
            for i in 0..6 {
                let (suite, running) = (&suite, &running);
                s.spawn(move || {
                    suite.step(&format!("s{i}"), || {
                        {
                            let mut r = running.lock().unwrap();
                            r.0 += 1;
                            r.1 = r.1.max(r.0);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                        running.lock().unwrap().0 -= 1;
                        Ok(())
                    })
                });
            }
        });
        assert_eq!(running.lock().unwrap().1, 2);
        suite.finish();
    }
}
