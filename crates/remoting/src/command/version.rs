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

/// The first ordinal of RocketMQ 4.x (`V4_0_0_SNAPSHOT`); from there on every release
/// `X.Y.Z` has two ordinals, its snapshot and itself, up to `V5_9_9`.
const V4_0_0_SNAPSHOT: i32 = 212;
/// The ordinal after `V5_9_9`, RocketMQ's `HIGHER_VERSION`.
const HIGHER_VERSION: i32 = 612;

/// A version ordinal as RocketMQ's tools print it (`MQVersion.getVersionDesc`): `V5_3_3`,
/// `V4_9_4_SNAPSHOT`, `HIGHER_VERSION` past the last known one. The 3.x ordinals, whose
/// sequence has irregular alpha and beta steps, are printed as their number.
pub fn desc(ordinal: i32) -> String {
    if ordinal >= HIGHER_VERSION {
        return "HIGHER_VERSION".to_owned();
    }
    if ordinal < V4_0_0_SNAPSHOT {
        return ordinal.to_string();
    }
    let step = ordinal - V4_0_0_SNAPSHOT;
    let release = step / 2;
    let (major, minor, patch) = (4 + release / 100, release / 10 % 10, release % 10);
    let snapshot = if step % 2 == 0 { "_SNAPSHOT" } else { "" };
    format!("V{major}_{minor}_{patch}{snapshot}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_print_as_rocketmq_names() {
        assert_eq!(desc(CURRENT), "V5_3_3");
        assert_eq!(desc(V5_3_1_SNAPSHOT), "V5_3_1_SNAPSHOT");
        assert_eq!(desc(V4_9_4), "V4_9_4");
        assert_eq!(desc(V4_6_0), "V4_6_0");
        assert_eq!(desc(V5_0_0), "V5_0_0");
        assert_eq!(desc(9999), "HIGHER_VERSION");
        assert_eq!(desc(V3_4_9), "121");
    }
}
