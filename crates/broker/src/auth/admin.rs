//! The auth admin requests' bodies (`UserInfo`, `AclInfo`) read into checked users and
//! ACLs, refused with RocketMQ's remarks; and the other way for get and list.

use remoting::body::auth::{AclInfo, PolicyEntryInfo, PolicyInfo, UserInfo};

use super::model::{
    subject_of, subject_user, Acl, Action, Decision, Password, Policy, PolicyEntry, PolicyType,
    Resource, SourceIp, User, UserStatus, UserType,
};

/// A new user from `createUser`: a password is required; type Normal and status enable
/// unless given.
pub fn new_user(username: &str, info: &UserInfo) -> Result<User, String> {
    let password = info
        .password
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .ok_or("password can not be blank")?;
    Ok(User {
        username: username.to_owned(),
        password: Password::new(password),
        user_type: user_type(info).unwrap_or(UserType::Normal),
        user_status: user_status(info).unwrap_or(UserStatus::Enable),
    })
}

/// The changes `updateUser` asks for: a non-blank password, a known type or status.
pub fn user_changes(info: &UserInfo) -> (Option<Password>, Option<UserType>, Option<UserStatus>) {
    (
        info.password
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .map(Password::new),
        user_type(info),
        user_status(info),
    )
}

pub fn user_type(info: &UserInfo) -> Option<UserType> {
    info.user_type.as_deref().and_then(UserType::parse)
}

fn user_status(info: &UserInfo) -> Option<UserStatus> {
    info.user_status.as_deref().and_then(UserStatus::parse)
}

pub fn user_info(user: &User) -> UserInfo {
    UserInfo {
        username: Some(user.username.clone()),
        password: Some(user.password.expose().to_owned()),
        user_type: Some(user.user_type.name().to_owned()),
        user_status: Some(user.user_status.name().to_owned()),
    }
}

/// The ACL `createAcl` / `updateAcl` give, for the subject of the body (else the header's).
pub fn acl(header_subject: Option<&str>, info: &AclInfo) -> Result<Acl, String> {
    let subject = info
        .subject
        .as_deref()
        .filter(|s| subject_user(s).is_some())
        .or(header_subject)
        .and_then(subject_user)
        .map(subject_of)
        .ok_or("The subject type is null.")?;
    let policies = info
        .policies
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or("The policies is empty.")?;
    let mut checked: Vec<Policy> = Vec::new();
    for policy in policies {
        let policy_type = policy
            .policy_type
            .as_deref()
            .and_then(PolicyType::parse)
            .unwrap_or(PolicyType::Custom);
        let entries = policy
            .entries
            .as_deref()
            .filter(|e| !e.is_empty())
            .ok_or("The policy entries is empty.")?;
        let entries = entries.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
        // Two policies of one type in a body merge, as they would in two requests.
        match checked.iter_mut().find(|p| p.policy_type == policy_type) {
            Some(existing) => existing.entries.extend(entries),
            None => checked.push(Policy {
                policy_type,
                entries,
            }),
        }
    }
    Ok(Acl {
        subject,
        policies: checked,
    })
}

fn entry(info: &PolicyEntryInfo) -> Result<PolicyEntry, String> {
    let resource = info
        .resource
        .as_deref()
        .and_then(Resource::parse)
        .ok_or("The resource is null.")?;
    // Unknown action names are left out, as RocketMQ leaves them.
    let actions: Vec<Action> = info
        .actions
        .iter()
        .flatten()
        .filter_map(|a| Action::parse(a))
        .collect();
    if actions.is_empty() {
        return Err("The actions is empty.".into());
    }
    if actions.contains(&Action::Any) {
        return Err("The actions can not be Any.".into());
    }
    let mut source_ips = Vec::new();
    for ip in info.source_ips.iter().flatten() {
        if ip.trim().is_empty() {
            return Err("The source ip is empty.".into());
        }
        source_ips.push(SourceIp::parse(ip).ok_or("The source ip is invalid.")?);
    }
    let decision = info
        .decision
        .as_deref()
        .and_then(Decision::parse)
        .ok_or("The decision is null or illegal.")?;
    Ok(PolicyEntry {
        resource,
        actions,
        source_ips,
        decision,
    })
}

pub fn acl_info(acl: &Acl) -> AclInfo {
    AclInfo {
        subject: Some(acl.subject.clone()),
        policies: Some(
            acl.policies
                .iter()
                .map(|policy| PolicyInfo {
                    policy_type: Some(policy.policy_type.name().to_owned()),
                    entries: Some(
                        policy
                            .entries
                            .iter()
                            .map(|e| PolicyEntryInfo {
                                resource: Some(e.resource.to_string()),
                                actions: Some(
                                    e.actions.iter().map(|a| a.name().to_owned()).collect(),
                                ),
                                source_ips: (!e.source_ips.is_empty()).then(|| {
                                    e.source_ips.iter().cloned().map(String::from).collect()
                                }),
                                decision: Some(e.decision.name().to_owned()),
                            })
                            .collect(),
                    ),
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_with_rocketmqs_remarks() {
        let body = |entry: &str| {
            AclInfo::decode(
                format!(r#"{{"subject":"User:u","policies":[{{"entries":[{entry}]}}]}}"#)
                    .as_bytes(),
            )
            .unwrap()
        };
        let ok = acl(
            None,
            &body(r#"{"resource":"Topic:t*","actions":["pub","Nope"],"decision":"allow","sourceIps":["10.0.0.0/8"]}"#),
        )
        .unwrap();
        assert_eq!(ok.policies[0].policy_type, PolicyType::Custom);
        let written = acl_info(&ok);
        let entry0 = &written.policies.unwrap()[0].entries.clone().unwrap()[0];
        assert_eq!(entry0.actions.as_deref(), Some(&["Pub".to_owned()][..]));
        assert_eq!(entry0.resource.as_deref(), Some("Topic:t*"));
        for (entry, remark) in [
            (
                r#"{"actions":["Pub"],"decision":"Allow"}"#,
                "The resource is null.",
            ),
            (
                r#"{"resource":"Topic:t","actions":["Nope"],"decision":"Allow"}"#,
                "The actions is empty.",
            ),
            (
                r#"{"resource":"Topic:t","actions":["Any"],"decision":"Allow"}"#,
                "The actions can not be Any.",
            ),
            (
                r#"{"resource":"Topic:t","actions":["Pub"],"decision":"Maybe"}"#,
                "The decision is null or illegal.",
            ),
            (
                r#"{"resource":"Topic:t","actions":["Pub"],"decision":"Allow","sourceIps":["x"]}"#,
                "The source ip is invalid.",
            ),
        ] {
            assert_eq!(acl(None, &body(entry)).unwrap_err(), remark);
        }
        let no_subject = AclInfo::decode(br#"{"policies":[]}"#).unwrap();
        assert_eq!(
            acl(None, &no_subject).unwrap_err(),
            "The subject type is null."
        );
        assert_eq!(
            acl(Some("User:u"), &no_subject).unwrap_err(),
            "The policies is empty."
        );
        let user = new_user("u", &UserInfo::default());
        assert_eq!(user.unwrap_err(), "password can not be blank");
    }
}
