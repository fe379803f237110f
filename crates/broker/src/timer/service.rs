//! The timer loop.
//!
//! On every member, each round: the wheel follows the message queue (an entry whose slot
//! is not yet delivered is chained into its slot) and recall markers are loaded, so a
//! member that becomes master holds an up-to-date wheel.
//!
//! On a master (a standalone broker, a group's writable leader), from the recorded
//! [`Progress`]: first the *catch-up pass* over the message queue from `caught_up_below`
//! to what the wheel has taken in, delivering every entry whose slot is already before
//! `slot_ms` (it arrived late, or after a failover the old master had not reached it);
//! then, slot by slot while slots are due, the chain of `slot_ms` from its
//! `delivered_in_slot`-th entry. Recalled messages are passed over. Deliveries are stored
//! in puts of at most [`DELIVERIES_PER_PUT`], each carrying the progress record that
//! covers it, so what was stored and what the progress says never differ (in a group a
//! put is one raft entry): a failover neither loses nor repeats a delivery. Progress that
//! only stepped over empty slots is recorded at most every [`IDLE_RECORD_INTERVAL_MS`].
//!
//! Why nothing is lost: an entry below `caught_up_below` with a slot before `slot_ms` was
//! delivered by the pass that moved either past it; every other entry is either at or above
//! `caught_up_below` (the next catch-up pass looks at it) or in a slot not yet wholly
//! delivered, whose chain the wheel holds in the same order on every member once it has
//! taken in everything below `caught_up_below` — which a new master waits for.

use std::sync::Arc;
use std::time::Duration;

use message::properties::{self, keys};
use message::MessageView;
use store::AcceptAll;
use tracing::{error, info, warn};

use super::progress::{self, Progress};
use super::request::recall_key;
use super::wheel::{Added, ChainCursor, Wheel};
use super::{TimerSettings, MESSAGE_QUEUE, RECALL_QUEUE, SNAPSHOT_BOUNDS_S, TIMER_TOPIC};
use crate::clock::now_ms;
use crate::context::BrokerContext;
use crate::schedule::divert;
use crate::store_facade::{PutError, RecordBatch};

/// Longest sleep between two rounds.
pub const ROUND_MAX_WAIT: Duration = Duration::from_millis(100);
/// Queue entries the wheel takes in per round.
const ENQUEUE_PER_ROUND: usize = 20_000;
/// Messages stored by one put, with one progress record after it.
pub const DELIVERIES_PER_PUT: usize = 32;
/// Puts per round, so a backlog cannot keep the loop from taking in new entries.
const PUTS_PER_ROUND: usize = 64;
/// Empty slots stepped over per round (a master that was down for a day has 86,400).
const EMPTY_SLOTS_PER_ROUND: usize = 100_000;
/// Recall markers are kept this long after their slot was delivered: a message that
/// arrived after its slot (the catch-up pass delivers it) can still be recalled.
const RECALLS_KEPT_AFTER_SLOT_MS: i64 = 10 * 60 * 1000;
/// Progress with no delivery to carry it (empty slots stepped over) is recorded at most this
/// often: a new master steps over those slots again, which costs nothing.
pub const IDLE_RECORD_INTERVAL_MS: i64 = 60_000;
/// The progress is recorded again this often even when unchanged, so the latest record
/// lies in a segment younger than the shortest `fileReservedTime` (one hour) and holding it
/// back from retention (under disk pressure) holds little.
const PROGRESS_REFRESH_INTERVAL_MS: i64 = 30 * 60 * 1000;
/// Who holds CommitLog retention back for the timer's waiting messages.
const RETENTION_HOLDER: &str = "timer";
/// Due slots whose messages a round counts for the scrape at most.
const DUE_SLOTS_COUNTED: usize = 3600;
/// After a failed put, how long the master waits before trying again.
const RETRY_AFTER_FAILED_PUT: Duration = Duration::from_secs(1);

/// Runs until the broker shuts down.
pub async fn run(ctx: Arc<BrokerContext>) {
    let settings = ctx.timer;
    let links_dir = ctx
        .config
        .store
        .store_path_root_dir
        .join("timer")
        .join("links");
    let wheel = match Wheel::open(&links_dir, settings.precision_ms, settings.max_delay_ms) {
        Ok(wheel) => wheel,
        Err(e) => {
            error!(dir = %links_dir.display(), error = %e, "timer wheel cannot open its files; timer messages will not be delivered by this broker");
            return;
        }
    };
    let mut timer = Timer::new(Arc::clone(&ctx), settings, wheel);
    loop {
        let pause = timer.round().await;
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

struct Timer {
    ctx: Arc<BrokerContext>,
    settings: TimerSettings,
    wheel: Wheel,
    /// Message-queue entries below this were offered to the wheel.
    enqueued_below: i64,
    recalls_loaded_below: i64,
    /// This master's progress; `None` when not delivering.
    delivering: Option<Progress>,
    /// Where the delivery of the current slot's chain stands (walking a chain of a
    /// million entries from its start for every put would cost a million squared).
    cursor: Option<ChainCursor>,
    /// The progress this master last stored, and when.
    stored: Option<Progress>,
    stored_at_ms: i64,
    retry_at_ms: Option<i64>,
    /// When the wheel's due-time snapshot is next published.
    snapshot_due_ms: i64,
}

/// What a delivery attempt came to.
enum Stored {
    Yes,
    /// Not stored (not the leader any more, disk full...): try again later.
    No,
}

impl Timer {
    fn new(ctx: Arc<BrokerContext>, settings: TimerSettings, wheel: Wheel) -> Timer {
        Timer {
            ctx,
            settings,
            wheel,
            enqueued_below: 0,
            recalls_loaded_below: 0,
            delivering: None,
            cursor: None,
            stored: None,
            stored_at_ms: 0,
            retry_at_ms: None,
            snapshot_due_ms: 0,
        }
    }

    /// Slots before this are wholly delivered (as far as this member knows).
    fn delivered_below_ms(&self) -> i64 {
        self.delivering
            .or_else(|| progress::recorded(self.ctx.store.as_ref()))
            .map_or(i64::MIN, |p| p.slot_ms)
    }

    async fn round(&mut self) -> Duration {
        let pause = self.round_of_work().await;
        self.publish_status();
        pause
    }

    async fn round_of_work(&mut self) -> Duration {
        if let Err(e) = self.take_in() {
            error!(error = %e, "timer wheel files failed; retrying");
            return RETRY_AFTER_FAILED_PUT;
        }
        self.load_recalls();
        let master = self.ctx.role.is_master() && self.ctx.is_writeable();
        if !master {
            if self.delivering.take().is_some() {
                info!("timer service idle (not the master)");
            }
            return ROUND_MAX_WAIT;
        }
        if self.ctx.live.timer_stop_dequeue() {
            // Held back by the operator: messages keep arriving and wait in their slots
            // (the progress is taken up so the scrape can count the due ones).
            self.start_delivering();
            return ROUND_MAX_WAIT;
        }
        if let Some(retry_at) = self.retry_at_ms {
            let now = now_ms();
            if now < retry_at {
                return Duration::from_millis((retry_at - now) as u64);
            }
            self.retry_at_ms = None;
        }
        match self.deliver().await {
            Ok(pause) => pause,
            Err(e) => {
                error!(error = %e, "timer wheel files failed; retrying");
                RETRY_AFTER_FAILED_PUT
            }
        }
    }

    /// Tells the scrape where the wheel and, on the master, the delivery stand.
    fn publish_status(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.publish_snapshot();
        let status = &self.ctx.timer_status;
        status.enqueued_below.store(self.enqueued_below, Relaxed);
        let master = self.ctx.role.is_master() && self.ctx.is_writeable();
        if !master {
            status.undelivered_slot_ms.store(i64::MIN, Relaxed);
            status.due_undelivered.store(0, Relaxed);
            return;
        }
        let Some(progress) = self.delivering else {
            // A master that never had a timer message: nothing due.
            status.undelivered_slot_ms.store(now_ms(), Relaxed);
            status.due_undelivered.store(0, Relaxed);
            return;
        };
        // The due slots' counts, from the oldest not wholly delivered (bounded: a master
        // far behind reports the first hour's).
        let now = now_ms();
        let mut due: u64 = 0;
        let mut slot = progress.slot_ms;
        for _ in 0..DUE_SLOTS_COUNTED {
            if slot > now {
                break;
            }
            let chained = self.wheel.count(slot);
            due += if slot == progress.slot_ms {
                chained.saturating_sub(progress.delivered_in_slot)
            } else {
                chained
            };
            slot += self.settings.precision_ms;
        }
        status.undelivered_slot_ms.store(progress.slot_ms, Relaxed);
        status
            .due_undelivered
            .store(i64::try_from(due).unwrap_or(i64::MAX), Relaxed);
    }

    /// The wheel's waiting messages by how soon they are due (RocketMQ's
    /// `rocketmq_timer_message_snapshot`). A day of slots is read each time: once a second
    /// at the default precision (86,400 slots), less often at a finer one, so the reads
    /// stay near 100,000 slots a second.
    fn publish_snapshot(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = now_ms();
        if now < self.snapshot_due_ms {
            return;
        }
        let precision = self.settings.precision_ms;
        let day_of_slots = 86_400_000 / precision;
        self.snapshot_due_ms = now + (day_of_slots / 100).max(1000);
        let first_slot = now / precision * precision;
        // The current slot may be delivered already: its messages wait no more.
        let delivered_below = self.ctx.timer_status.delivered_below_ms.load(Relaxed);
        let mut from_step = 0;
        for (bound_s, gauge) in SNAPSHOT_BOUNDS_S
            .iter()
            .zip(&self.ctx.timer_status.snapshot)
        {
            let to_step = bound_s * 1000 / precision;
            let count: u64 = (from_step..to_step)
                .map(|step| first_slot + step * precision)
                .filter(|slot| *slot >= delivered_below)
                .map(|slot| self.wheel.count(slot))
                .sum();
            gauge.store(i64::try_from(count).unwrap_or(i64::MAX), Relaxed);
            from_step = to_step;
        }
    }

    /// Offers the message queue's new entries to the wheel.
    fn take_in(&mut self) -> std::io::Result<()> {
        let reader = self.ctx.store.reader();
        self.enqueued_below = self
            .enqueued_below
            .max(reader.min_offset(TIMER_TOPIC, MESSAGE_QUEUE));
        let delivered_below = self.delivered_below_ms();
        let entries = reader.queue_tags_codes(
            TIMER_TOPIC,
            MESSAGE_QUEUE,
            self.enqueued_below,
            ENQUEUE_PER_ROUND,
        );
        for (offset, slot_ms) in entries {
            if let Some(slot_ms) = slot_ms.filter(|slot| *slot >= delivered_below) {
                if self.wheel.add(offset, slot_ms, delivered_below)? == Added::Occupied {
                    break;
                }
            }
            self.enqueued_below = offset + 1;
        }
        self.wheel.release(delivered_below, self.enqueued_below)?;
        self.hold_waiting_messages();
        Ok(())
    }

    /// Keeps retention off the CommitLog from the oldest timer message that may still be
    /// delivered, and off the latest progress record (without it a new master would
    /// deliver again what was delivered long ago): a message waits up to
    /// `timerMaxDelaySec`, longer than `fileReservedTime` may keep its segment. Below the
    /// queue offset held every entry lies in a slot already delivered: the wheel knows
    /// which of its files still hold others, and the catch-up pass has yet to look at what
    /// is above `caught_up_below`. Every member holds, as any may become master.
    fn hold_waiting_messages(&self) {
        let store = self.ctx.store.as_ref();
        let progress = self.delivering.or_else(|| progress::recorded(store));
        let mut waiting_from = self.enqueued_below;
        if let Some(progress) = progress {
            waiting_from = waiting_from.min(progress.caught_up_below);
        }
        let delivered_below = progress.map_or(i64::MIN, |p| self.wholly_delivered_below(&p));
        if let Some(held) = self.wheel.lowest_waiting_offset(delivered_below) {
            waiting_from = waiting_from.min(held);
        }
        let status = &self.ctx.timer_status;
        status
            .waiting_from
            .store(waiting_from, std::sync::atomic::Ordering::Relaxed);
        status
            .delivered_below_ms
            .store(delivered_below, std::sync::atomic::Ordering::Relaxed);
        let reader = store.reader();
        let waiting = if waiting_from >= reader.max_offset(TIMER_TOPIC, MESSAGE_QUEUE) {
            None
        } else {
            match reader.queue_entry_position(TIMER_TOPIC, MESSAGE_QUEUE, waiting_from) {
                Some(position) => Some(position),
                // Only holes where messages wait: keep the last hold.
                None => return,
            }
        };
        let held = match (waiting, progress::last_record_position(store)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        reader.hold_retention(RETENTION_HOLDER, held);
    }

    /// Slots before this are wholly delivered: the progress's slot too once every entry
    /// the wheel chained into it is (the progress is recorded before it moves on).
    fn wholly_delivered_below(&self, progress: &Progress) -> i64 {
        if progress.delivered_in_slot >= self.wheel.count(progress.slot_ms) {
            progress.slot_ms + self.settings.precision_ms
        } else {
            progress.slot_ms
        }
    }

    /// Loads the recall queue's new markers.
    fn load_recalls(&mut self) {
        let kept_from = self
            .delivered_below_ms()
            .saturating_sub(RECALLS_KEPT_AFTER_SLOT_MS);
        let reader = self.ctx.store.reader();
        let mut recalls = self.ctx.timer_recalls.lock();
        recalls.forget_before(kept_from);
        let max = reader.max_offset(TIMER_TOPIC, RECALL_QUEUE);
        // Bounded: each pass moves forward or stops.
        while self.recalls_loaded_below < max && !recalls.is_full() {
            let read = reader.get_messages(
                TIMER_TOPIC,
                RECALL_QUEUE,
                self.recalls_loaded_below,
                DELIVERIES_PER_PUT,
                None,
                &AcceptAll,
            );
            for record in &read.messages {
                let Ok(view) = MessageView::parse(record) else {
                    continue;
                };
                let props = view.properties();
                let key = properties::find(props, keys::TIMER_DEL_UNIQKEY);
                let slot = properties::find(props, keys::TIMER_OUT_MS)
                    .and_then(|v| v.trim().parse::<i64>().ok());
                if let (Some(key), Some(slot)) = (key, slot) {
                    if slot >= kept_from {
                        recalls.insert(slot, key.to_owned());
                    }
                }
            }
            if read.next_begin_offset <= self.recalls_loaded_below {
                break;
            }
            self.recalls_loaded_below = read.next_begin_offset;
        }
    }

    fn recalls_loaded(&self) -> bool {
        self.recalls_loaded_below
            >= self
                .ctx
                .store
                .reader()
                .max_offset(TIMER_TOPIC, RECALL_QUEUE)
            || self.ctx.timer_recalls.lock().is_full()
    }

    /// The master's work for one round; returns how long to sleep.
    /// This master's progress: the recorded one, or from now when none was ever recorded;
    /// `None` while no timer message ever arrived (nothing to deliver, nothing to record).
    fn start_delivering(&mut self) -> Option<Progress> {
        if let Some(progress) = self.delivering {
            return Some(progress);
        }
        let recorded = progress::recorded(self.ctx.store.as_ref());
        let reader = self.ctx.store.reader();
        if recorded.is_none() && reader.max_offset(TIMER_TOPIC, MESSAGE_QUEUE) == 0 {
            return None;
        }
        let start = recorded.unwrap_or_else(|| Progress {
            caught_up_below: reader.min_offset(TIMER_TOPIC, MESSAGE_QUEUE),
            slot_ms: self.settings.slot_of(now_ms()),
            delivered_in_slot: 0,
        });
        info!(
            caught_up_below = start.caught_up_below,
            slot_ms = start.slot_ms,
            delivered_in_slot = start.delivered_in_slot,
            "timer service delivering"
        );
        self.delivering = Some(start);
        self.stored = recorded;
        self.stored_at_ms = now_ms();
        Some(start)
    }

    async fn deliver(&mut self) -> std::io::Result<Duration> {
        let Some(mut progress) = self.start_delivering() else {
            return Ok(ROUND_MAX_WAIT);
        };
        // A slot's chain is only complete once the wheel holds every entry the previous
        // master had looked at, and a recall only counts once its marker is loaded.
        if self.enqueued_below < progress.caught_up_below || !self.recalls_loaded() {
            return Ok(Duration::from_millis(10));
        }
        let mut puts = 0;
        // The catch-up pass.
        while progress.caught_up_below < self.enqueued_below && puts < PUTS_PER_ROUND {
            let entries = self.ctx.store.reader().queue_tags_codes(
                TIMER_TOPIC,
                MESSAGE_QUEUE,
                progress.caught_up_below,
                4 * DELIVERIES_PER_PUT,
            );
            if entries.is_empty() {
                break;
            }
            let mut overdue = Vec::new();
            let mut covered = progress.caught_up_below;
            for (offset, slot_ms) in entries {
                if offset >= self.enqueued_below || overdue.len() == DELIVERIES_PER_PUT {
                    break;
                }
                if let Some(slot_ms) = slot_ms.filter(|slot| *slot < progress.slot_ms) {
                    overdue.push((offset, slot_ms));
                }
                covered = offset + 1;
            }
            let next = Progress {
                caught_up_below: covered,
                ..progress
            };
            if !overdue.is_empty() {
                puts += 1;
                if let Stored::No = self.store_deliveries(&overdue, &next).await {
                    return Ok(self.retry_later());
                }
            }
            progress = next;
            self.delivering = Some(progress);
        }
        if progress.caught_up_below < self.enqueued_below {
            return Ok(Duration::ZERO);
        }
        // Due slots, in order.
        let mut empty_slots = 0;
        while self.settings.due_ms(progress.slot_ms) <= now_ms()
            && puts < PUTS_PER_ROUND
            && empty_slots < EMPTY_SLOTS_PER_ROUND
        {
            let cursor = match self.cursor {
                Some(cursor)
                    if cursor.slot_ms == progress.slot_ms
                        && cursor.position == progress.delivered_in_slot =>
                {
                    cursor
                }
                _ => self
                    .wheel
                    .cursor(progress.slot_ms, progress.delivered_in_slot)?,
            };
            let (chain, after) = self.wheel.chain_from(cursor, DELIVERIES_PER_PUT)?;
            if chain.is_empty() {
                progress.slot_ms += self.settings.precision_ms;
                progress.delivered_in_slot = 0;
                empty_slots += 1;
                self.delivering = Some(progress);
                continue;
            }
            let items: Vec<(i64, i64)> = chain.iter().map(|o| (*o, progress.slot_ms)).collect();
            let next = Progress {
                delivered_in_slot: progress.delivered_in_slot + chain.len() as u64,
                ..progress
            };
            puts += 1;
            if let Stored::No = self.store_deliveries(&items, &next).await {
                return Ok(self.retry_later());
            }
            progress = next;
            self.delivering = Some(progress);
            self.cursor = Some(after);
        }
        let since_stored_ms = now_ms() - self.stored_at_ms;
        if ((self.stored != Some(progress) && since_stored_ms >= IDLE_RECORD_INTERVAL_MS)
            || since_stored_ms >= PROGRESS_REFRESH_INTERVAL_MS)
            && matches!(self.store_deliveries(&[], &progress).await, Stored::No)
        {
            return Ok(self.retry_later());
        }
        let now = now_ms();
        let next_due = self.settings.due_ms(progress.slot_ms);
        Ok(if next_due <= now {
            Duration::ZERO
        } else {
            Duration::from_millis((next_due - now) as u64).min(ROUND_MAX_WAIT)
        })
    }

    fn retry_later(&mut self) -> Duration {
        // Start again from the stored progress: what the failed put held is delivered then.
        self.delivering = None;
        self.cursor = None;
        self.retry_at_ms = Some(now_ms() + RETRY_AFTER_FAILED_PUT.as_millis() as i64);
        RETRY_AFTER_FAILED_PUT
    }

    fn note_stored(&mut self, progress: &Progress) {
        self.stored = Some(*progress);
        self.stored_at_ms = now_ms();
    }

    fn count_delivered(&self, view: &MessageView<'_>) {
        if let Some(topic) = view.property(keys::REAL_TOPIC) {
            self.ctx.metrics.timer_dequeued(topic);
        }
    }

    /// Stores the messages at these (queue offset, slot) entries under their real topics,
    /// passing over recalled and unreadable ones, and `next` (the progress once they are
    /// delivered) with them in one put.
    async fn store_deliveries(&mut self, items: &[(i64, i64)], next: &Progress) -> Stored {
        let reader = self.ctx.store.reader();
        let mut records = Vec::with_capacity(items.len());
        {
            let recalls = self.ctx.timer_recalls.lock();
            for &(offset, slot_ms) in items {
                let read =
                    reader.get_messages(TIMER_TOPIC, MESSAGE_QUEUE, offset, 1, None, &AcceptAll);
                let record = match (read.messages.first(), read.queue_offsets.first()) {
                    (Some(record), Some(&at)) if at == offset => record.clone(),
                    _ => {
                        error!(
                            offset,
                            "timer message unreadable (removed by retention?); passed over"
                        );
                        continue;
                    }
                };
                let Ok(view) = MessageView::parse(&record) else {
                    error!(offset, "timer message unparsable; passed over");
                    continue;
                };
                let props = view.properties();
                if let (Some(topic), Some(uniq)) = (
                    properties::find(props, keys::REAL_TOPIC),
                    properties::find(props, keys::UNIQ_KEY),
                ) {
                    if recalls.contains(slot_ms, &recall_key(topic, uniq)) {
                        info!(
                            offset,
                            topic,
                            uniq_key = uniq,
                            "timer message recalled; not delivered"
                        );
                        continue;
                    }
                }
                records.push(record);
            }
        }
        let mut batch =
            RecordBatch::with_capacity(records.iter().map(|r| r.len() + 64).sum(), records.len());
        let mut views = Vec::with_capacity(records.len());
        for record in &records {
            if let Ok(view) = MessageView::parse(record) {
                views.push(view);
            }
        }
        for view in &views {
            if let Err(reason) = divert::append_delivery(&mut batch, view, self.ctx.store_host) {
                error!(%reason, "timer message cannot be delivered; passed over");
            }
        }
        let count = batch.len();
        if let Err(e) = progress::append(&mut batch, next, self.ctx.store_host) {
            error!(error = %e, "timer progress record cannot be built");
            return Stored::No;
        }
        match self.ctx.store.put(batch).await {
            Ok(_) => {
                self.ctx.stats.add_put(count as u64);
                for view in &views {
                    self.count_delivered(view);
                }
                self.note_stored(next);
                Stored::Yes
            }
            Err(PutError::MessageIllegal(reason)) if count > 1 => {
                warn!(count, %reason, "a batch of due timer messages was refused; storing them one at a time");
                for view in &views {
                    let mut single = RecordBatch::with_capacity(view.properties().len() + 256, 1);
                    if divert::append_delivery(&mut single, view, self.ctx.store_host).is_err() {
                        continue;
                    }
                    match self.ctx.store.put(single).await {
                        Ok(_) => {
                            self.ctx.stats.add_put(1);
                            self.count_delivered(view);
                        }
                        Err(PutError::MessageIllegal(reason)) => {
                            error!(%reason, "timer message refused by the store; passed over");
                        }
                        Err(e) => {
                            warn!(error = %e, "due timer messages not stored yet; will retry");
                            return Stored::No;
                        }
                    }
                }
                // The deliveries went one by one: the progress goes after them.
                Box::pin(self.store_deliveries(&[], next)).await
            }
            Err(PutError::MessageIllegal(reason)) => {
                error!(%reason, "timer progress or delivery refused by the store");
                Stored::No
            }
            Err(e) => {
                warn!(error = %e, "due timer messages not stored yet; will retry");
                Stored::No
            }
        }
    }
}
