//! Bounds on the tables clients can grow: one place to see how much any client may make
//! the broker hold.

/// REGISTER_BROKER and GET_ALL_TOPIC_CONFIG carry the whole table in one frame of at
/// most 16 MiB; 30 000 topics of the longest names (~400 bytes of JSON each) fit.
pub const MAX_TOPICS: usize = 30_000;
pub const MAX_SUBSCRIPTION_GROUPS: usize = 100_000;
pub const MAX_OFFSET_KEYS: usize = 1_000_000;
/// Topic-and-group pairs with a request mode (`mqadmin setConsumeMode`).
pub const MAX_REQUEST_MODES: usize = 100_000;
/// ACL 2.0 users, and policy entries of one user.
pub const MAX_AUTH_USERS: usize = 100_000;
pub const MAX_POLICY_ENTRIES_PER_SUBJECT: usize = 10_000;
pub const MAX_CONSUMER_GROUPS: usize = 100_000;
pub const MAX_PRODUCER_GROUPS: usize = 100_000;
pub const MAX_CHANNELS_PER_GROUP: usize = 10_000;
pub const MAX_LOCK_ENTRIES: usize = 1_000_000;
/// Queues of orderly consumer groups whose last pop is remembered (each a few hundred
/// bytes).
pub const MAX_ORDERLY_QUEUES: usize = 200_000;
/// Pulls held open at once, across all connections.
pub const MAX_PARKED_PULLS: usize = 100_000;
/// Messages in one batch send.
pub const MAX_BATCH_MESSAGES: usize = 1024;
/// Compiled SQL92 subscriptions kept, and the bytes of their expression text (the compiled
/// trees are proportional to it): real brokers hold a few per consumer group.
pub const MAX_CACHED_FILTERS: usize = 10_000;
pub const MAX_CACHED_FILTER_TEXT_BYTES: usize = 32 * 1024 * 1024;
