//! Pops waiting for messages, counted by topic, group and the queue id they asked for:
//! what POLLING_INFO answers. Bounded by the parked pops the long-poll hub admits.

use std::collections::HashMap;

use parking_lot::Mutex;

type Key = (String, String, i32);

#[derive(Default)]
pub struct WaitingPops {
    counts: Mutex<HashMap<Key, usize>>,
}

/// One waiting pop; dropping it counts it out.
pub struct WaitingPop<'a> {
    pops: &'a WaitingPops,
    key: Key,
}

impl WaitingPops {
    pub fn enter(&self, topic: &str, group: &str, queue_id: i32) -> WaitingPop<'_> {
        let key = (topic.to_owned(), group.to_owned(), queue_id);
        *self.counts.lock().entry(key.clone()).or_insert(0) += 1;
        WaitingPop { pops: self, key }
    }

    pub fn count(&self, topic: &str, group: &str, queue_id: i32) -> usize {
        let key = (topic.to_owned(), group.to_owned(), queue_id);
        self.counts.lock().get(&key).copied().unwrap_or(0)
    }
}

impl Drop for WaitingPop<'_> {
    fn drop(&mut self) {
        let mut counts = self.pops.counts.lock();
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pop_counts_while_it_waits() {
        let pops = WaitingPops::default();
        let first = pops.enter("T", "G", -1);
        let second = pops.enter("T", "G", -1);
        let _other = pops.enter("T", "G", 2);
        assert_eq!(pops.count("T", "G", -1), 2);
        drop(first);
        assert_eq!(pops.count("T", "G", -1), 1);
        drop(second);
        assert_eq!(pops.count("T", "G", -1), 0);
        assert_eq!(pops.count("T", "G", 2), 1);
    }
}
