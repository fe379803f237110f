//! ACL 2.0 on a broker (RocketMQ 5.3): users and their policies, created, changed, read and
//! deleted with AUTH_CREATE_USER (3001) to AUTH_LIST_ACL (3010). In a broker group a change
//! goes to the master, which replicates it; reads answer from any member. The admin's own
//! credentials sign them.

use remoting::body::auth::{self, AclInfo, UserInfo};
use remoting::code::request;
use remoting::command::RemotingCommand;

use super::Admin;
use crate::error::{ClientError, Result};

/// A get's answer: no body when the broker has nothing of that name.
fn optional<T: serde::de::DeserializeOwned>(addr: &str, body: &[u8]) -> Result<Option<T>> {
    if body.is_empty() {
        return Ok(None);
    }
    remoting::body::fastjson::decode(body)
        .map(Some)
        .map_err(|e| ClientError::malformed(addr, e))
}

impl Admin {
    async fn auth_call(
        &self,
        addr: &str,
        code: i32,
        fields: &[(&str, Option<&str>)],
        body: Option<Vec<u8>>,
    ) -> Result<RemotingCommand> {
        let mut command = RemotingCommand::request(code);
        for (key, value) in fields {
            if let Some(value) = value {
                command
                    .ext_fields
                    .insert((*key).into(), (*value).to_owned());
            }
        }
        if let Some(body) = body {
            command = command.with_body(body);
        }
        self.instance.invoke_ok(addr, command, self.timeout()).await
    }

    /// Creates `user` (its `username` is required).
    pub async fn create_user(&self, addr: &str, user: &UserInfo) -> Result<()> {
        let name = user.username.as_deref();
        self.auth_call(
            addr,
            request::AUTH_CREATE_USER,
            &[("username", name)],
            Some(user.encode()),
        )
        .await
        .map(drop)
    }

    /// Changes what `user` gives (password, type, status) of an existing user.
    pub async fn update_user(&self, addr: &str, user: &UserInfo) -> Result<()> {
        let name = user.username.as_deref();
        self.auth_call(
            addr,
            request::AUTH_UPDATE_USER,
            &[("username", name)],
            Some(user.encode()),
        )
        .await
        .map(drop)
    }

    pub async fn delete_user(&self, addr: &str, username: &str) -> Result<()> {
        self.auth_call(
            addr,
            request::AUTH_DELETE_USER,
            &[("username", Some(username))],
            None,
        )
        .await
        .map(drop)
    }

    /// The user, or `None` when the broker has no user of that name.
    pub async fn get_user(&self, addr: &str, username: &str) -> Result<Option<UserInfo>> {
        let response = self
            .auth_call(
                addr,
                request::AUTH_GET_USER,
                &[("username", Some(username))],
                None,
            )
            .await?;
        optional(addr, &response.body)
    }

    /// The users whose names contain `filter`.
    pub async fn list_users(&self, addr: &str, filter: Option<&str>) -> Result<Vec<UserInfo>> {
        let response = self
            .auth_call(addr, request::AUTH_LIST_USER, &[("filter", filter)], None)
            .await?;
        auth::decode_list(&response.body).map_err(|e| ClientError::malformed(addr, e))
    }

    /// Creates or merges `acl`'s policies into its subject's (AUTH_CREATE_ACL, or
    /// AUTH_UPDATE_ACL with `update`; the broker treats both alike, as RocketMQ does).
    pub async fn upsert_acl(&self, addr: &str, acl: &AclInfo, update: bool) -> Result<()> {
        let code = if update {
            request::AUTH_UPDATE_ACL
        } else {
            request::AUTH_CREATE_ACL
        };
        let subject = acl.subject.as_deref();
        self.auth_call(addr, code, &[("subject", subject)], Some(acl.encode()))
            .await
            .map(drop)
    }

    /// Deletes the subject's entry for `resource` of `policy_type` (Custom when `None`), or
    /// its whole ACL without `resource`.
    pub async fn delete_acl(
        &self,
        addr: &str,
        subject: &str,
        policy_type: Option<&str>,
        resource: Option<&str>,
    ) -> Result<()> {
        let fields = [
            ("subject", Some(subject)),
            ("policyType", policy_type),
            ("resource", resource),
        ];
        self.auth_call(addr, request::AUTH_DELETE_ACL, &fields, None)
            .await
            .map(drop)
    }

    /// The subject's ACL, or `None` when it has none.
    pub async fn get_acl(&self, addr: &str, subject: &str) -> Result<Option<AclInfo>> {
        let response = self
            .auth_call(
                addr,
                request::AUTH_GET_ACL,
                &[("subject", Some(subject))],
                None,
            )
            .await?;
        optional(addr, &response.body)
    }

    /// The ACLs whose subjects contain `subject_filter`, keeping the entries whose
    /// resources contain `resource_filter`.
    pub async fn list_acls(
        &self,
        addr: &str,
        subject_filter: Option<&str>,
        resource_filter: Option<&str>,
    ) -> Result<Vec<AclInfo>> {
        let fields = [
            ("subjectFilter", subject_filter),
            ("resourceFilter", resource_filter),
        ];
        let response = self
            .auth_call(addr, request::AUTH_LIST_ACL, &fields, None)
            .await?;
        auth::decode_list(&response.body).map_err(|e| ClientError::malformed(addr, e))
    }
}
