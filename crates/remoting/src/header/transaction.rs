//! END_TRANSACTION (37, producer to broker) and CHECK_TRANSACTION_STATE (39, broker to
//! producer).

command_header! {
    pub struct EndTransactionRequestHeader {
        topic: Option<String> = "topic",
        producer_group: String = "producerGroup",
        /// Queue offset of the half message (the send response's `queueOffset`).
        tran_state_table_offset: i64 = "tranStateTableOffset",
        /// CommitLog offset of the half message (decoded from its offset msgId).
        commit_log_offset: i64 = "commitLogOffset",
        /// 0 unknown, 8 commit, 12 rollback (the SYSFLAG transaction values).
        commit_or_rollback: i32 = "commitOrRollback",
        from_transaction_check: bool = "fromTransactionCheck" => false,
        /// The half message's UNIQ_KEY.
        msg_id: String = "msgId",
        transaction_id: Option<String> = "transactionId",
    }
}

command_header! {
    pub struct CheckTransactionStateRequestHeader {
        topic: Option<String> = "topic",
        tran_state_table_offset: i64 = "tranStateTableOffset",
        commit_log_offset: i64 = "commitLogOffset",
        msg_id: Option<String> = "msgId",
        transaction_id: Option<String> = "transactionId",
        offset_msg_id: Option<String> = "offsetMsgId",
        /// The checking broker's name (RocketMQ 5's `RpcRequestHeader` base field); a
        /// 5.x producer copies it into the END_TRANSACTION it answers with.
        broker_name: Option<String> = "bname",
    }
}
