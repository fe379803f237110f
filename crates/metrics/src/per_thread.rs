//! Series recorded on the request path without threads contending: each thread adds to its
//! own table, and a scrape sums the tables. A shared counter or histogram (an atomic, a
//! mutex, a family's read lock) moves one cache line between the cores on every request;
//! here a thread touches only lines it owns, its table's lock is never contended except
//! for the moment a scrape reads it, and a series is found by a fast hash of its key.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crossbeam_utils::CachePadded;
use hashbrown::Equivalent;
use parking_lot::Mutex;
use thread_local::ThreadLocal;

/// hashbrown's map, for its fast default hash (foldhash) and for lookups by a borrowed form
/// of a key made of several strings.
type Table<K, const W: usize> = hashbrown::HashMap<K, [u64; W]>;

/// `W` values per series, keyed by `K`, recorded per thread and summed when read. Tables of
/// threads that ended are kept (and reused by later threads), so nothing recorded is lost.
pub struct PerThread<K: Send, const W: usize> {
    // Padded: the thread-local slots sit side by side, and two threads' locks on one cache
    // line would contend as a shared lock does.
    threads: ThreadLocal<CachePadded<Mutex<Table<K, W>>>>,
}

impl<K: Send, const W: usize> Default for PerThread<K, W> {
    fn default() -> Self {
        PerThread {
            threads: ThreadLocal::new(),
        }
    }
}

impl<K: Hash + Eq + Clone + Send, const W: usize> PerThread<K, W> {
    /// Changes the values of `key`'s series on this thread (all zero the first time).
    /// `owned` makes the key to keep, only when this thread meets it for the first time.
    pub fn update<Q>(
        &self,
        key: &Q,
        owned: impl FnOnce(&Q) -> K,
        change: impl FnOnce(&mut [u64; W]),
    ) where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let mut table = self.threads.get_or(CachePadded::default).lock();
        match table.get_mut(key) {
            Some(values) => change(values),
            None => change(table.entry(owned(key)).or_insert([0; W])),
        }
    }

    /// Every series, its values summed over all threads.
    pub fn sum(&self) -> HashMap<K, [u64; W]> {
        let mut total: HashMap<K, [u64; W]> = HashMap::new();
        for table in self.threads.iter() {
            for (key, values) in table.lock().iter() {
                let sum = total.entry(key.clone()).or_insert([0; W]);
                for (sum, value) in sum.iter_mut().zip(values) {
                    *sum += value;
                }
            }
        }
        total
    }
}

/// A key of two names (a topic and a group, a stats name and its key), kept owned in a
/// table and found by its borrowed form [`StrPair`] without copying the names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StringPair(pub String, pub String);

/// [`StringPair`]'s borrowed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrPair<'a>(pub &'a str, pub &'a str);

impl StrPair<'_> {
    pub fn to_owned_pair(&self) -> StringPair {
        StringPair(self.0.to_owned(), self.1.to_owned())
    }
}

impl<'a> From<&'a StringPair> for StrPair<'a> {
    fn from(pair: &'a StringPair) -> Self {
        StrPair(&pair.0, &pair.1)
    }
}

// Both forms hash alike, so the borrowed one finds the owned one.
impl Hash for StringPair {
    fn hash<H: Hasher>(&self, state: &mut H) {
        StrPair::from(self).hash(state)
    }
}

impl Hash for StrPair<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl Equivalent<StringPair> for StrPair<'_> {
    fn equivalent(&self, pair: &StringPair) -> bool {
        *self == StrPair::from(pair)
    }
}

/// A histogram's slots in a [`PerThread`] series: one count per bucket (not cumulative),
/// then the count of all observations, then their sum scaled by `sum_scale` (an integer, so
/// it adds up exactly across threads).
pub struct Buckets<const N: usize> {
    pub upper_bounds: [f64; N],
    /// Observed values are multiplied by this before they are summed as integers.
    pub sum_scale: f64,
}

impl<const N: usize> Buckets<N> {
    /// Slots a series needs for this histogram: the buckets, the count and the sum.
    pub const SLOTS: usize = N + 2;

    /// Adds `value` to the histogram held in `slots[at..at + N + 2]`.
    pub fn observe(&self, slots: &mut [u64], at: usize, value: f64) {
        let bucket = self
            .upper_bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(N);
        if bucket < N {
            slots[at + bucket] += 1;
        }
        slots[at + N] += 1;
        slots[at + N + 1] += (value * self.sum_scale).round() as u64;
    }

    /// The histogram held in `slots[at..at + N + 2]`: its sum, its count and each bucket's
    /// own count (`+Inf` last), as the Prometheus encoder takes them.
    pub fn read(&self, slots: &[u64], at: usize) -> HistogramValues {
        let mut buckets: Vec<(f64, u64)> = self
            .upper_bounds
            .iter()
            .enumerate()
            .map(|(i, bound)| (*bound, slots[at + i]))
            .collect();
        let count = slots[at + N];
        let bounded: u64 = buckets.iter().map(|(_, n)| n).sum();
        buckets.push((f64::INFINITY, count.saturating_sub(bounded)));
        HistogramValues {
            sum: slots[at + N + 1] as f64 / self.sum_scale,
            count,
            buckets,
        }
    }
}

/// A histogram's values at a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramValues {
    pub sum: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn what_threads_record_is_summed() {
        let series: Arc<PerThread<String, 2>> = Arc::default();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let series = Arc::clone(&series);
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        let topic = if i % 2 == 0 { "a" } else { "b" };
                        series.update(topic, str::to_owned, |v| {
                            v[0] += 1;
                            v[1] += i;
                        });
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let sum = series.sum();
        assert_eq!(sum["a"], [2000, 4 * (0..1000).step_by(2).sum::<u64>()]);
        assert_eq!(sum["b"], [2000, 4 * (1..1000).step_by(2).sum::<u64>()]);
    }

    #[test]
    fn a_histogram_counts_each_value_in_its_bucket() {
        let buckets = Buckets {
            upper_bounds: [1.0, 5.0],
            sum_scale: 1000.0,
        };
        let mut slots = [0u64; 5];
        for value in [0.5, 1.0, 3.25, 7.0] {
            buckets.observe(&mut slots, 1, value);
        }
        assert_eq!(
            buckets.read(&slots, 1),
            HistogramValues {
                sum: 11.75,
                count: 4,
                buckets: vec![(1.0, 2), (5.0, 1), (f64::INFINITY, 1)],
            }
        );
    }
}
