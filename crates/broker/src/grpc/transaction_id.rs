//! The transaction id a 5.x producer gets for a transactional message (in its send result,
//! and in each check-back) and hands back in EndTransaction. It names the half message's
//! place in the CommitLog and in the half queue, which END_TRANSACTION needs: RocketMQ's
//! proxy keeps that in memory for 30 s under the message's id instead, so its ends fail on
//! another proxy, after a restart, or later. Places are the same on every member of a
//! group, so any member can end the transaction, before or after a failover.

/// Separates the parts of a transaction id (message ids are hexadecimal).
const SEPARATOR: char = '.';

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionPlace {
    /// The message's id (`UNIQ_KEY`), which RocketMQ uses as its transaction id.
    pub uniq_key: String,
    pub commit_log_offset: i64,
    /// Its queue offset in the half topic (`tranStateTableOffset`).
    pub queue_offset: i64,
}

impl TransactionPlace {
    pub fn encode(&self) -> String {
        format!(
            "{}{SEPARATOR}{}{SEPARATOR}{}",
            self.uniq_key, self.commit_log_offset, self.queue_offset
        )
    }

    /// `None` for an id this broker did not hand out.
    pub fn decode(id: &str) -> Option<TransactionPlace> {
        let mut parts = id.trim().rsplitn(3, SEPARATOR);
        let queue_offset = parts.next()?.parse().ok().filter(|o: &i64| *o >= 0)?;
        let commit_log_offset = parts.next()?.parse().ok().filter(|o: &i64| *o >= 0)?;
        let uniq_key = parts.next().filter(|k| !k.is_empty())?.to_owned();
        Some(TransactionPlace {
            uniq_key,
            commit_log_offset,
            queue_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_survives_its_round_trip_and_foreign_ids_are_refused() {
        let place = TransactionPlace {
            uniq_key: "7F0000010D2A18B4AAC2716A5A8B0000".into(),
            commit_log_offset: 1_234_567,
            queue_offset: 42,
        };
        assert_eq!(TransactionPlace::decode(&place.encode()), Some(place));
        for foreign in [
            "",
            "7F0000010D2A18B4AAC2716A5A8B0000",
            "a.b.c",
            ".1.2",
            "x.-1.2",
            "x.1",
        ] {
            assert_eq!(TransactionPlace::decode(foreign), None, "{foreign}");
        }
    }
}
