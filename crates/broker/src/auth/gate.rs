//! ACL 2.0's check of one request, as RocketMQ 5.3's pipeline makes it: authentication (a
//! known, enabled user whose password verifies the signature), then authorization (a super
//! user passes; otherwise every resource the request touches needs a matching policy entry
//! that allows it: custom entries first, default ones when no custom entry matches, the
//! most specific entry deciding, Deny before Allow among equals).

use std::net::IpAddr;
use std::sync::Arc;

use remoting::acl::{self, ACCESS_KEY};
use remoting::command::RemotingCommand;

use super::config::AuthConfig;
use super::model::{Acl, Decision, PolicyEntry, PolicyType, User, UserStatus, UserType};
use super::needs::{self, Need};
use crate::metadata::auth::AuthTable;

/// Why a request was refused, in RocketMQ's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthRefusal(pub String);

pub struct AuthGate {
    config: AuthConfig,
    cluster_name: String,
    table: Arc<AuthTable>,
}

impl AuthGate {
    pub fn new(config: AuthConfig, cluster_name: String, table: Arc<AuthTable>) -> AuthGate {
        AuthGate {
            config,
            cluster_name,
            table,
        }
    }

    /// Checks a remoting request from `ip`.
    pub fn check_request(&self, request: &RemotingCommand, ip: IpAddr) -> Result<(), AuthRefusal> {
        let code = request.code.to_string();
        let username = request.ext_field(ACCESS_KEY);
        if self.config.authentication_enabled
            && !self.config.authentication_whitelist.contains(&code)
        {
            self.authenticate(username, &|secret| acl::verify(secret, request))?;
        }
        // RocketMQ builds no authorization context for a request without ext fields.
        if self.config.authorization_enabled
            && !self.config.authorization_whitelist.contains(&code)
            && !request.ext_fields.is_empty()
        {
            let needs = needs::of_request(request, &self.cluster_name)
                .map_err(|e| AuthRefusal(format!("parse authorization context error. {e}")))?;
            self.authorize(username, &needs, ip)?;
        }
        Ok(())
    }

    /// Checks a gRPC call named `rpc_name` (its request's full protobuf name), whose
    /// credentials name `username` and prove a password through `proves`.
    pub fn check_call(
        &self,
        rpc_name: &str,
        username: Option<&str>,
        proves: &dyn Fn(&str) -> bool,
        needs: &[Need],
        ip: IpAddr,
    ) -> Result<(), AuthRefusal> {
        if self.config.authentication_enabled
            && !self.config.authentication_whitelist.contains(rpc_name)
        {
            self.authenticate(username, proves)?;
        }
        if self.config.authorization_enabled
            && !self.config.authorization_whitelist.contains(rpc_name)
        {
            self.authorize(username, needs, ip)?;
        }
        Ok(())
    }

    fn authenticate(
        &self,
        username: Option<&str>,
        proves: &dyn Fn(&str) -> bool,
    ) -> Result<(), AuthRefusal> {
        let Some(username) = username.filter(|u| !u.is_empty()) else {
            return Err(AuthRefusal("username cannot be null.".into()));
        };
        // Checked under the table's read lock: no copy of the user (and its password) per
        // request.
        self.table.with_user(username, |user, _| {
            let Some(user) = user else {
                return Err(AuthRefusal(format!("User:{username} is not found.")));
            };
            if user.user_status == UserStatus::Disable {
                return Err(AuthRefusal(format!("User:{username} is disabled.")));
            }
            if !proves(user.password.expose()) {
                return Err(AuthRefusal("check signature failed.".into()));
            }
            Ok(())
        })
    }

    fn authorize(
        &self,
        username: Option<&str>,
        needs: &[Need],
        ip: IpAddr,
    ) -> Result<(), AuthRefusal> {
        if needs.is_empty() {
            return Ok(());
        }
        let Some(username) = username.filter(|u| !u.is_empty()) else {
            return Err(AuthRefusal(
                "Authorization failed. Please verify your access rights and try again.".into(),
            ));
        };
        self.table.with_user(username, |user, acl| {
            let Some(user) = user else {
                return Err(AuthRefusal(format!("User:{username} not found.")));
            };
            if user.user_type == UserType::Super {
                return Ok(());
            }
            for need in needs {
                if let Err(detail) = decide(acl, need, ip) {
                    return Err(refusal(user, need, ip, detail));
                }
            }
            Ok(())
        })
    }
}

/// ACL 2.0 answers NO_PERMISSION with its reason, as RocketMQ 5.3's pipeline does.
impl access::guard::RequestCheck for AuthGate {
    fn check(&self, request: &RemotingCommand, ip: IpAddr) -> Result<(), access::guard::Refused> {
        self.check_request(request, ip)
            .map_err(|refusal| access::guard::Refused {
                code: remoting::code::response::NO_PERMISSION,
                remark: refusal.0,
            })
    }
}

fn refusal(user: &User, need: &Need, ip: IpAddr, detail: &str) -> AuthRefusal {
    AuthRefusal(format!(
        "User:{} has no permission to access {} from {ip}, {detail}",
        user.username,
        need.resource_key()
    ))
}

/// The decision of `acl` on `need`, or the refusal's detail.
fn decide(acl: Option<&Acl>, need: &Need, ip: IpAddr) -> Result<(), &'static str> {
    const NO_MATCH: &str = "no matched policies.";
    let Some(acl) = acl else {
        return Err(NO_MATCH);
    };
    let matching = |policy_type: PolicyType| -> Vec<&PolicyEntry> {
        acl.policies
            .iter()
            .filter(|p| p.policy_type == policy_type)
            .flat_map(|p| &p.entries)
            .filter(|e| e.matches(need.kind, &need.name, need.actions, ip))
            .collect()
    };
    let mut entries = matching(PolicyType::Custom);
    if entries.is_empty() {
        entries = matching(PolicyType::Default);
    }
    let deciding = entries
        .into_iter()
        .min_by_key(|e| (e.resource.rank(), e.decision != Decision::Deny))
        .ok_or(NO_MATCH)?;
    match deciding.decision {
        Decision::Allow => Ok(()),
        Decision::Deny => Err("the decision is deny."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::model::{Action, Password, Policy, Resource, ResourceType};
    use crate::metadata::auth::AuthOp;

    fn entry(resource: &str, actions: &[Action], decision: Decision) -> PolicyEntry {
        PolicyEntry {
            resource: Resource::parse(resource).unwrap(),
            actions: actions.to_vec(),
            source_ips: vec![],
            decision,
        }
    }

    fn need(kind: ResourceType, name: &str, actions: &'static [Action]) -> Need {
        Need {
            kind,
            name: name.into(),
            actions,
        }
    }

    #[test]
    fn the_most_specific_entry_decides_and_custom_comes_first() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let acl = Acl {
            subject: "User:u".into(),
            policies: vec![
                Policy {
                    policy_type: PolicyType::Custom,
                    entries: vec![
                        entry("Topic:*", &[Action::Pub], Decision::Allow),
                        entry("Topic:secret*", &[Action::Pub], Decision::Deny),
                        entry("Topic:secret-ok", &[Action::All], Decision::Allow),
                        entry("Topic:order*", &[Action::Sub], Decision::Allow),
                        entry("Topic:orders-x*", &[Action::Sub], Decision::Deny),
                    ],
                },
                Policy {
                    policy_type: PolicyType::Default,
                    entries: vec![entry("Group:*", &[Action::Sub], Decision::Allow)],
                },
            ],
        };
        let pub_ = &[Action::Pub][..];
        let sub = &[Action::Sub][..];
        let verdict = |kind, name, actions| decide(Some(&acl), &need(kind, name, actions), ip);
        assert_eq!(verdict(ResourceType::Topic, "plain", pub_), Ok(()));
        assert_eq!(
            verdict(ResourceType::Topic, "secret-1", pub_),
            Err("the decision is deny.")
        );
        assert_eq!(verdict(ResourceType::Topic, "secret-ok", pub_), Ok(()));
        assert_eq!(verdict(ResourceType::Topic, "orders", sub), Ok(()));
        assert_eq!(
            verdict(ResourceType::Topic, "orders-x1", sub),
            Err("the decision is deny.")
        );
        assert_eq!(
            verdict(ResourceType::Topic, "plain", sub),
            Err("no matched policies.")
        );
        assert_eq!(verdict(ResourceType::Group, "g", sub), Ok(()));
        assert_eq!(
            decide(None, &need(ResourceType::Group, "g", sub), ip),
            Err("no matched policies.")
        );
    }

    #[test]
    fn requests_are_authenticated_then_authorized() {
        let dir = tempfile::tempdir().unwrap();
        let table = Arc::new(AuthTable::open(dir.path(), 10, 10).unwrap());
        for (name, user_type) in [("admin", UserType::Super), ("alice", UserType::Normal)] {
            table
                .apply(AuthOp::CreateUser(User {
                    username: name.into(),
                    password: Password::new(format!("{name}-password")),
                    user_type,
                    user_status: UserStatus::Enable,
                }))
                .unwrap();
        }
        table
            .apply(AuthOp::UpsertAcl(Acl {
                subject: "User:alice".into(),
                policies: vec![Policy {
                    policy_type: PolicyType::Custom,
                    entries: vec![entry("Topic:T", &[Action::Pub], Decision::Allow)],
                }],
            }))
            .unwrap();
        let config = AuthConfig {
            authentication_enabled: true,
            authorization_enabled: true,
            ..Default::default()
        };
        let gate = AuthGate::new(config, "C".into(), Arc::clone(&table));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let send = |topic: &str, key: &str, secret: &str| {
            let mut request = RemotingCommand::request(remoting::code::request::SEND_MESSAGE_V2);
            request.ext_fields.insert("a".into(), "pg".into());
            request.ext_fields.insert("b".into(), topic.into());
            acl::Credentials::new(key, secret).sign(&mut request);
            gate.check_request(&request, ip)
        };
        assert_eq!(send("T", "alice", "alice-password"), Ok(()));
        assert_eq!(
            send("T", "alice", "wrong").unwrap_err().0,
            "check signature failed."
        );
        assert_eq!(
            send("T", "bob", "x").unwrap_err().0,
            "User:bob is not found."
        );
        assert_eq!(
            send("U", "alice", "alice-password").unwrap_err().0,
            "User:alice has no permission to access Topic:U from 127.0.0.1, no matched policies."
        );
        assert_eq!(send("U", "admin", "admin-password"), Ok(()));
        let unsigned = RemotingCommand::request(remoting::code::request::GET_BROKER_CLUSTER_INFO);
        assert_eq!(
            gate.check_request(&unsigned, ip).unwrap_err().0,
            "username cannot be null."
        );
        table
            .apply(AuthOp::UpdateUser {
                username: "alice".into(),
                password: None,
                user_type: None,
                user_status: Some(UserStatus::Disable),
            })
            .unwrap();
        assert_eq!(
            send("T", "alice", "alice-password").unwrap_err().0,
            "User:alice is disabled."
        );
    }
}
