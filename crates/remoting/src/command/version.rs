//! RocketMQ version ordinals (`MQVersion.Version`) that peers compare against.
//!
//! A command's `version` is the ordinal of the sender's release. Clients gate features on
//! the version a broker reports (the Java client refuses SQL92 subscriptions below
//! [`V4_1_0_SNAPSHOT`], taken from HEART_BEAT responses), and servers gate behaviour on the
//! request's version, so we always send a realistic one.

/// Brokers older than this send REGISTER_BROKER bodies in the old form.
pub const V3_0_11: i32 = 37;
/// The broker honours `maxReconsumeTimes` in send/send-back only from this request version.
pub const V3_4_9: i32 = 121;
/// The Java client allows SQL92 subscriptions only with brokers at or above this.
pub const V4_1_0_SNAPSHOT: i32 = 232;
/// What the C++ client 2.x sends.
pub const V4_6_0: i32 = 333;
/// From this request version on, the name server quotes numeric keys in route JSON.
pub const V4_9_4: i32 = 401;
/// The Java 4.9.7 client.
pub const V4_9_7: i32 = 407;
/// The name server expects a topic-queue-mapping section in compressed registrations.
pub const V5_0_0: i32 = 413;
/// What the Rust client (v0.9.0) sends.
pub const V5_3_1_SNAPSHOT: i32 = 474;
/// Java 5.x servers send GO_AWAY only to clients newer than this.
pub const V5_3_1: i32 = 475;
/// Java 5.3.3.
pub const V5_3_3: i32 = 479;

/// The version we put in every command we create: a current Java release, so every client
/// enables the features it would enable against a Java broker.
pub const CURRENT: i32 = V5_3_3;
