//! ACL 1.0's admin requests, on the broker whose files they change (`mqadmin
//! updateAclConfig`, `deleteAclConfig`, `clusterAclConfigVersion`, `updateGlobalWhiteAddr`):
//! UPDATE_AND_CREATE_ACL_CONFIG (50), DELETE_ACL_CONFIG (51), GET_BROKER_CLUSTER_ACL_INFO
//! (52) and UPDATE_GLOBAL_WHITE_ADDRS_CONFIG (53), with RocketMQ's headers and failure
//! codes. Only admin accounts get here (the ACL guard checks codes 50 to 52).

use remoting::code::response;
use remoting::command::RemotingCommand;
use serde::Serialize;

use super::error;
use crate::acl::files::AccountUpdate;
use crate::acl::plain::DataVersion;
use crate::context::BrokerContext;

const NOT_ENABLED: &str = "The broker does not enable acl.";

fn list(value: Option<&str>) -> Option<Vec<String>> {
    value.map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

pub fn update_account(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let failure = response::UPDATE_AND_CREATE_ACL_CONFIG_FAILED;
    let Some(files) = ctx.acl.as_deref() else {
        return error(request, failure, NOT_ENABLED);
    };
    let field = |name: &str| request.ext_field(name).map(str::to_owned);
    let Some(access_key) = field("accessKey").filter(|k| !k.is_empty()) else {
        return error(request, failure, "the custom field <accessKey> is null");
    };
    let update = AccountUpdate {
        access_key: access_key.clone(),
        secret_key: field("secretKey"),
        white_remote_address: field("whiteRemoteAddress"),
        admin: request
            .ext_field("admin")
            .map(|a| a.trim().eq_ignore_ascii_case("true")),
        default_topic_perm: field("defaultTopicPerm"),
        default_group_perm: field("defaultGroupPerm"),
        topic_perms: list(request.ext_field("topicPerms")),
        group_perms: list(request.ext_field("groupPerms")),
    };
    match files.update_account(update) {
        Ok(()) => {
            tracing::info!(%access_key, "ACL account created or updated");
            RemotingCommand::success_to(request)
        }
        Err(reason) => error(
            request,
            failure,
            format!(
                "The accesskey[{access_key}] corresponding to accessConfig has been updated failed: {reason}"
            ),
        ),
    }
}

pub fn delete_account(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let failure = response::DELETE_ACL_CONFIG_FAILED;
    let Some(files) = ctx.acl.as_deref() else {
        return error(request, failure, NOT_ENABLED);
    };
    let access_key = request
        .ext_field("accessKey")
        .unwrap_or_default()
        .to_owned();
    match files.delete_account(&access_key) {
        Ok(()) => {
            tracing::info!(%access_key, "ACL account deleted");
            RemotingCommand::success_to(request)
        }
        Err(reason) => error(
            request,
            failure,
            format!(
                "The accesskey[{access_key}] corresponding to accessConfig has been deleted failed: {reason}"
            ),
        ),
    }
}

pub fn update_global_white(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let failure = response::UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED;
    let Some(files) = ctx.acl.as_deref() else {
        return error(request, failure, NOT_ENABLED);
    };
    let addresses = list(request.ext_field("globalWhiteAddrs")).unwrap_or_default();
    match files.update_global_white(addresses.clone(), request.ext_field("aclFileFullPath")) {
        Ok(()) => RemotingCommand::success_to(request),
        Err(reason) => error(
            request,
            failure,
            format!(
                "The globalWhiteAddresses[{}] has been updated failed: {reason}",
                addresses.join(",")
            ),
        ),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionBody {
    counter: i64,
    timestamp: i64,
}

impl From<DataVersion> for VersionBody {
    fn from(v: DataVersion) -> Self {
        VersionBody {
            counter: v.counter,
            timestamp: v.timestamp,
        }
    }
}

/// The versions of the broker's ACL files, in the response header RocketMQ 4.9.3+ sends
/// (`version`, `allAclFileVersion`, `brokerName`, `brokerAddr`, `clusterName`).
pub fn versions(ctx: &BrokerContext, request: &RemotingCommand) -> RemotingCommand {
    let Some(files) = ctx.acl.as_deref() else {
        return error(request, response::SYSTEM_ERROR, NOT_ENABLED);
    };
    let (default, all) = files.versions();
    let all: std::collections::BTreeMap<String, VersionBody> = all
        .into_iter()
        .map(|(path, version)| (path, version.into()))
        .collect();
    let (Ok(version), Ok(all)) = (
        serde_json::to_string(&VersionBody::from(default)),
        serde_json::to_string(&all),
    ) else {
        return error(
            request,
            response::SYSTEM_ERROR,
            "cannot encode ACL versions",
        );
    };
    let mut answer = RemotingCommand::success_to(request);
    let fields = &mut answer.ext_fields;
    fields.insert("version".into(), version);
    fields.insert("allAclFileVersion".into(), all);
    fields.insert("brokerName".into(), ctx.config.broker_name.clone());
    fields.insert("brokerAddr".into(), ctx.broker_addr.clone());
    fields.insert("clusterName".into(), ctx.config.broker_cluster_name.clone());
    answer
}
