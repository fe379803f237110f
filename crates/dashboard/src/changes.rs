//! What the dashboard changes (create a topic, reset a group's offsets, move a broker
//! group's leadership) and who may: anyone with ACL off; with ACL on, a signed-in account
//! the brokers take as admin, whose own keys sign the change.

use client::{Admin, ClientError, ClientOptions};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::sessions::Account;

/// Queues a created topic may have at most (RocketMQ's dashboard offers no more).
const MAX_QUEUES: i32 = 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedIn {
    pub user: String,
    pub admin: bool,
}

/// Checks `credentials` against the brokers: an admin-only request they answer makes the
/// account an admin; a plain one a read-only account; neither, no account.
pub async fn sign_in(namesrv: &str, credentials: Credentials) -> Result<Account, ApiError> {
    if credentials.access_key.trim().is_empty() || credentials.secret_key.is_empty() {
        return Err(ApiError::BadRequest(
            "give an access key and a secret key".into(),
        ));
    }
    let admin = signed_admin(namesrv, &credentials.access_key, &credentials.secret_key)?;
    let checked = probe(&admin, &credentials.access_key).await;
    admin.shutdown();
    let is_admin = match checked {
        Probe::Admin => true,
        Probe::ReadOnly => false,
        Probe::Refused(reason) => {
            return Err(ApiError::SignInNeeded(format!(
                "the brokers refused these keys: {reason}"
            )))
        }
    };
    Ok(Account {
        access_key: credentials.access_key,
        secret_key: credentials.secret_key,
        admin: is_admin,
    })
}

enum Probe {
    Admin,
    ReadOnly,
    Refused(String),
}

async fn probe(admin: &Admin, access_key: &str) -> Probe {
    let info = match admin.cluster_info().await {
        Ok(info) => info,
        Err(e) => return Probe::Refused(e.to_string()),
    };
    let Some(master) = info
        .broker_addr_table
        .values()
        .find_map(|b| b.master_addr().map(str::to_owned))
    else {
        return Probe::Refused("no broker master is online to check them".into());
    };
    // GET_BROKER_CLUSTER_ACL_INFO is admin-only; GET_BROKER_RUNTIME_INFO any valid account
    // may ask.
    if admin.acl_versions(&master).await.is_ok() {
        return Probe::Admin;
    }
    // ACL 2.0: a super user may change anything (reading a user needs the cluster's Get,
    // which super users hold).
    if let Ok(Some(user)) = admin.get_user(&master, access_key).await {
        if user
            .user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Super"))
        {
            return Probe::Admin;
        }
    }
    match admin.broker_runtime_info(&master).await {
        Ok(_) => Probe::ReadOnly,
        Err(e) => Probe::Refused(e.to_string()),
    }
}

fn signed_admin(namesrv: &str, access_key: &str, secret_key: &str) -> Result<Admin, ApiError> {
    Admin::start(ClientOptions::new(namesrv).with_credentials(access_key, secret_key))
        .map_err(ApiError::from)
}

/// The admin client a change is made with: the dashboard's own with ACL off, else one
/// signed with the signed-in admin account's keys.
pub enum Changer {
    Shared(Admin),
    Own(Admin),
}

impl Changer {
    pub fn for_account(
        reader: &Admin,
        namesrv: &str,
        acl_enabled: bool,
        account: Option<Account>,
    ) -> Result<Changer, ApiError> {
        if !acl_enabled {
            return Ok(Changer::Shared(reader.clone()));
        }
        let account = account.ok_or_else(|| {
            ApiError::SignInNeeded("sign in with an admin account to make changes".into())
        })?;
        if !account.admin {
            return Err(ApiError::Forbidden(format!(
                "{} is not an admin account: changes need one",
                account.access_key
            )));
        }
        Ok(Changer::Own(signed_admin(
            namesrv,
            &account.access_key,
            &account.secret_key,
        )?))
    }

    fn admin(&self) -> &Admin {
        match self {
            Changer::Shared(admin) | Changer::Own(admin) => admin,
        }
    }
}

impl Drop for Changer {
    fn drop(&mut self) {
        if let Changer::Own(admin) = self {
            admin.shutdown();
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTopic {
    pub topic: String,
    pub queues: i32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    pub ok: bool,
    /// Queues the change touched, where it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<usize>,
}

/// Creates the topic on every master of every cluster.
pub async fn create_topic(changer: &Changer, new: NewTopic) -> Result<Done, ApiError> {
    message::validate::validate_topic(&new.topic)
        .map_err(|e| ApiError::BadRequest(format!("topic name: {e}")))?;
    if message::topic::is_system_topic(&new.topic) {
        return Err(ApiError::BadRequest(
            message::topic::system_topic_conflict_remark(&new.topic),
        ));
    }
    if !(1..=MAX_QUEUES).contains(&new.queues) {
        return Err(ApiError::BadRequest(format!(
            "queues: from 1 to {MAX_QUEUES}"
        )));
    }
    let admin = changer.admin();
    let config = Admin::topic_config(&new.topic, new.queues, new.queues);
    let clusters = admin.cluster_info().await?.cluster_addr_table;
    if clusters.is_empty() {
        return Err(ApiError::Cluster(ClientError::NotFound(
            "no cluster is registered with the name servers".into(),
        )));
    }
    for cluster in clusters.keys() {
        admin.create_topic_in_cluster(cluster, &config).await?;
    }
    Ok(Done {
        ok: true,
        queues: None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reset {
    pub topic: String,
    /// Epoch milliseconds: each queue goes to the first message stored at or after it.
    pub timestamp: i64,
}

/// Moves the group's offsets of the topic to a time, forwards or back (as `mqadmin
/// resetOffsetByTime` does by default).
pub async fn reset_offsets(changer: &Changer, group: &str, reset: Reset) -> Result<Done, ApiError> {
    message::validate::validate_group(group)
        .map_err(|e| ApiError::BadRequest(format!("group name: {e}")))?;
    message::validate::validate_topic(&reset.topic)
        .map_err(|e| ApiError::BadRequest(format!("topic name: {e}")))?;
    let offsets = changer
        .admin()
        .reset_offset_by_time(group, &reset.topic, reset.timestamp, true)
        .await?;
    Ok(Done {
        ok: true,
        queues: Some(offsets.len()),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leader {
    pub node_id: String,
}

/// Hands the broker group's leadership to a member (`mqadmin transferLeader`'s request).
pub async fn transfer_leader(
    changer: &Changer,
    broker_name: &str,
    leader: Leader,
) -> Result<Done, ApiError> {
    if leader.node_id.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "name the member's raft node id".into(),
        ));
    }
    changer
        .admin()
        .transfer_leader(broker_name, leader.node_id.trim())
        .await?;
    Ok(Done {
        ok: true,
        queues: None,
    })
}
