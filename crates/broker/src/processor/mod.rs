//! Request processors, one file per request family, each with the same shape: decode the
//! header, validate in RocketMQ's order (so clients get the codes they act on), act,
//! respond.
//!
//! - [`send`]: SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE.
//! - [`reply`]: SEND_REPLY_MESSAGE, SEND_REPLY_MESSAGE_V2 (request-reply: store the reply
//!   and push it to the requester).
//! - [`send_back`]: CONSUMER_SEND_MSG_BACK (retry and dead-letter queues).
//! - [`end_transaction`]: END_TRANSACTION (commit or roll back a half message).
//! - [`recall`]: RECALL_MESSAGE (cancel a waiting timer message).
//! - [`pull`]: PULL_MESSAGE, LITE_PULL_MESSAGE, with long polling.
//! - [`pop`]: POP_MESSAGE (RocketMQ 5's POP consumption), with long polling.
//! - [`pop_ack`]: ACK_MESSAGE, BATCH_ACK_MESSAGE, CHANGE_MESSAGE_INVISIBLETIME.
//! - [`lite`]: POP_LITE_MESSAGE and LITE_SUBSCRIPTION_CTL (RocketMQ 5.5's lite topics).
//! - [`notification`]: NOTIFICATION (would a pop find something, long polling) and
//!   POLLING_INFO (pops waiting).
//! - [`assignment`]: QUERY_ASSIGNMENT and the request modes (PULL or POP per group).
//! - [`consumer_manage`]: consumer offsets and consumer lists.
//! - [`client_manage`]: HEART_BEAT, UNREGISTER_CLIENT, CHECK_CLIENT_CONFIG.
//! - [`queue_offset`]: max/min offsets, offset by time, earliest store time.
//! - [`query`]: QUERY_MESSAGE, VIEW_MESSAGE_BY_ID.
//! - [`rebalance`]: LOCK_BATCH_MQ, UNLOCK_BATCH_MQ.
//! - [`admin`]: topics, subscription groups, broker config, system topics.
//! - [`consumer_calls`]: requests relayed to online consumers (running info, consume a
//!   message directly, consumer status, offset reset) and cloning a group's offsets.
//! - [`stats`]: runtime info, topic and consume stats, connection lists.
//! - [`group`]: a broker group's raft status and leadership transfer (DLedger codes).
//! - [`acl`]: ACL 1.0's admin requests (accounts, global whitelist, file versions).
//! - [`auth`]: ACL 2.0's admin requests (users and their policies).

pub mod acl;
pub mod admin;
pub mod assignment;
pub mod auth;
pub mod client_manage;
pub mod consumer_calls;
pub mod consumer_manage;
pub mod end_transaction;
pub mod group;
pub mod lite;
pub mod notification;
pub mod pop;
pub mod pop_ack;
pub mod pull;
pub mod query;
pub mod queue_offset;
pub mod rebalance;
pub mod recall;
pub mod reply;
pub mod send;
pub mod send_back;
pub mod stats;

use std::sync::Arc;

use remoting::code::{request as code, response};
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};
use remoting::header::{CommandHeader, HeaderError};

use crate::client_groups::consumer::notify_ids_changed;
use crate::context::BrokerContext;

/// The broker's [`RequestProcessor`]: routes each request code to its processor.
pub struct BrokerProcessor {
    ctx: Arc<BrokerContext>,
}

impl BrokerProcessor {
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        BrokerProcessor { ctx }
    }
}

impl RequestProcessor for BrokerProcessor {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let ctx = &self.ctx;
        let response = match request.code {
            code::SEND_MESSAGE | code::SEND_MESSAGE_V2 | code::SEND_BATCH_MESSAGE => {
                send::process(ctx, conn.remote_addr(), &request).await
            }
            code::SEND_REPLY_MESSAGE | code::SEND_REPLY_MESSAGE_V2 => {
                reply::process(ctx, conn, &request).await
            }
            code::END_TRANSACTION => end_transaction::process(ctx, &request).await,
            code::RECALL_MESSAGE => recall::process(ctx, conn.remote_addr(), &request).await,
            code::CONSUMER_SEND_MSG_BACK => send_back::process(ctx, &request).await,
            code::PULL_MESSAGE | code::LITE_PULL_MESSAGE => pull::process(ctx, &request).await,
            code::POP_MESSAGE => pop::process(ctx, &request, conn.closed()).await,
            code::POP_LITE_MESSAGE => lite::pop(ctx, &request, conn.closed()).await,
            code::LITE_SUBSCRIPTION_CTL => lite::subscription_ctl(ctx, &request).await,
            code::ACK_MESSAGE => pop_ack::ack(ctx, &request).await,
            code::BATCH_ACK_MESSAGE => pop_ack::batch_ack(ctx, &request).await,
            code::CHANGE_MESSAGE_INVISIBLETIME => {
                pop_ack::change_invisible_time(ctx, &request).await
            }
            code::NOTIFICATION => notification::notification(ctx, &request, conn.closed()).await,
            code::POLLING_INFO => notification::polling_info(ctx, &request).await,
            code::QUERY_ASSIGNMENT => assignment::query(ctx, &request).await,
            code::SET_MESSAGE_REQUEST_MODE => assignment::set_mode(ctx, &request).await,
            code::GET_ALL_MESSAGE_REQUEST_MODE => assignment::all_modes(ctx, &request),
            code::QUERY_CONSUMER_OFFSET => consumer_manage::query_offset(ctx, &request),
            code::UPDATE_CONSUMER_OFFSET => consumer_manage::update_offset(ctx, &request).await,
            code::GET_CONSUMER_LIST_BY_GROUP => consumer_manage::consumer_list(ctx, &request),
            code::HEART_BEAT => client_manage::heartbeat(ctx, conn, &request).await,
            code::UNREGISTER_CLIENT => client_manage::unregister(ctx, conn, &request),
            code::CHECK_CLIENT_CONFIG => client_manage::check_client_config(ctx, &request),
            code::GET_MAX_OFFSET => queue_offset::max_offset(ctx, &request),
            code::GET_MIN_OFFSET => queue_offset::min_offset(ctx, &request),
            code::SEARCH_OFFSET_BY_TIMESTAMP => queue_offset::search_by_timestamp(ctx, &request),
            code::GET_EARLIEST_MSG_STORETIME => queue_offset::earliest_store_time(ctx, &request),
            code::QUERY_MESSAGE => query::query_message(ctx, &request),
            code::VIEW_MESSAGE_BY_ID => query::view_message(ctx, &request),
            code::LOCK_BATCH_MQ => rebalance::lock(ctx, &request),
            code::UNLOCK_BATCH_MQ => rebalance::unlock(ctx, &request),
            code::UPDATE_AND_CREATE_TOPIC => admin::create_topic(ctx, &request).await,
            code::DELETE_TOPIC_IN_BROKER => admin::delete_topic(ctx, &request).await,
            code::GET_ALL_TOPIC_CONFIG => admin::all_topic_config(ctx, &request),
            code::GET_TOPIC_CONFIG => admin::topic_config(ctx, &request),
            code::GET_TOPIC_NAME_LIST => admin::topic_names(ctx, &request),
            code::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => admin::create_group(ctx, &request).await,
            code::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => admin::all_group_config(ctx, &request),
            code::GET_SUBSCRIPTIONGROUP_CONFIG => admin::group_config(ctx, &request),
            code::DELETE_SUBSCRIPTIONGROUP => admin::delete_group(ctx, &request).await,
            code::GET_BROKER_CONFIG => admin::broker_config(ctx, &request),
            code::UPDATE_BROKER_CONFIG => admin::update_broker_config(ctx, &request),
            code::GET_ALL_CONSUMER_OFFSET => admin::all_consumer_offsets(ctx, &request),
            code::GET_BROKER_RUNTIME_INFO => stats::runtime_info(ctx, &request),
            code::GET_TOPIC_STATS_INFO => stats::topic_stats(ctx, &request),
            code::GET_CONSUME_STATS => stats::consume_stats(ctx, &request),
            code::GET_CONSUMER_CONNECTION_LIST => stats::consumer_connections(ctx, &request),
            code::GET_PRODUCER_CONNECTION_LIST => stats::producer_connections(ctx, &request),
            code::QUERY_TOPIC_CONSUME_BY_WHO => stats::consumed_by_whom(ctx, &request),
            code::GET_SYSTEM_TOPIC_LIST_FROM_BROKER => admin::system_topics(&request),
            code::VIEW_BROKER_STATS_DATA => admin::broker_stats_data(ctx, &request),
            code::GET_CONSUMER_RUNNING_INFO => {
                consumer_calls::consumer_running_info(ctx, &request).await
            }
            code::CONSUME_MESSAGE_DIRECTLY => {
                consumer_calls::consume_message_directly(ctx, &request).await
            }
            code::INVOKE_BROKER_TO_GET_CONSUMER_STATUS => {
                consumer_calls::consumer_status(ctx, &request).await
            }
            code::INVOKE_BROKER_TO_RESET_OFFSET => {
                consumer_calls::reset_offset(ctx, &request).await
            }
            code::CLONE_GROUP_OFFSET => consumer_calls::clone_group_offset(ctx, &request).await,
            code::DLEDGER_METADATA => group::group_status(ctx, &request).await,
            code::UPDATE_AND_CREATE_ACL_CONFIG => acl::update_account(ctx, &request),
            code::DELETE_ACL_CONFIG => acl::delete_account(ctx, &request),
            code::GET_BROKER_CLUSTER_ACL_INFO => acl::versions(ctx, &request),
            code::UPDATE_GLOBAL_WHITE_ADDRS_CONFIG => acl::update_global_white(ctx, &request),
            code::DLEDGER_LEADERSHIP_TRANSFER => group::transfer_leadership(ctx, &request).await,
            code::DLEDGER_ADD_MEMBER => group::add_member(ctx, &request).await,
            code::DLEDGER_REMOVE_MEMBER => group::remove_member(ctx, &request).await,
            code::AUTH_CREATE_USER => auth::create_user(ctx, &request).await,
            code::AUTH_UPDATE_USER => auth::update_user(ctx, &request).await,
            code::AUTH_DELETE_USER => auth::delete_user(ctx, &request).await,
            code::AUTH_GET_USER => auth::get_user(ctx, &request),
            code::AUTH_LIST_USER => auth::list_users(ctx, &request),
            code::AUTH_CREATE_ACL | code::AUTH_UPDATE_ACL => auth::upsert_acl(ctx, &request).await,
            code::AUTH_DELETE_ACL => auth::delete_acl(ctx, &request).await,
            code::AUTH_GET_ACL => auth::get_acl(ctx, &request),
            code::AUTH_LIST_ACL => auth::list_acls(ctx, &request),
            _ => RemotingCommand::not_supported_to(&request),
        };
        Some(response)
    }

    fn connection_closed(&self, conn: &ConnectionHandle) {
        self.ctx.producers.connection_closed(conn.id());
        for change in self.ctx.consumers.connection_closed(conn.id()) {
            notify_if_enabled(&self.ctx, change);
        }
    }
}

/// Notifies a group's members of a membership change unless the group opted out.
pub(crate) fn notify_if_enabled(
    ctx: &BrokerContext,
    change: crate::client_groups::consumer::GroupChange,
) {
    let enabled = ctx
        .groups
        .get(&change.group)
        .is_none_or(|group| group.notify_consumer_ids_changed_enable);
    if enabled {
        notify_ids_changed(change);
    }
}

/// Why a request is answered with an error code instead of being carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i32,
    pub remark: String,
}

impl Refusal {
    pub fn new(code: i32, remark: impl Into<String>) -> Self {
        Refusal {
            code,
            remark: remark.into(),
        }
    }

    pub fn into_response(self, request: &RemotingCommand) -> RemotingCommand {
        RemotingCommand::error_to(request, self.code, self.remark)
    }
}

impl From<HeaderError> for Refusal {
    /// Java's header decoder throws on a missing or unparsable required field and the
    /// request fails with SYSTEM_ERROR.
    fn from(error: HeaderError) -> Self {
        Refusal::new(response::SYSTEM_ERROR, error.to_string())
    }
}

/// Parses a request's typed header.
pub(crate) fn decode_header<H: CommandHeader>(request: &RemotingCommand) -> Result<H, Refusal> {
    request.decode_header::<H>().map_err(Refusal::from)
}

/// A success answer whose body is `value` as JSON; SYSTEM_ERROR when it cannot be encoded
/// (an empty body would read as an empty table to the client).
pub(crate) fn json_success(
    request: &RemotingCommand,
    value: &impl serde::Serialize,
) -> RemotingCommand {
    match serde_json::to_vec(value) {
        Ok(body) => RemotingCommand::success_to(request).with_body(body),
        Err(e) => error(
            request,
            response::SYSTEM_ERROR,
            format!("the answer cannot be encoded: {e}"),
        ),
    }
}

/// `code` with `remark`.
pub(crate) fn error(
    request: &RemotingCommand,
    code: i32,
    remark: impl Into<String>,
) -> RemotingCommand {
    RemotingCommand::error_to(request, code, remark)
}
