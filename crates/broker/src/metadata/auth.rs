//! ACL 2.0's users and ACLs (`config/auth.json`, readable by the broker's user only, since
//! the passwords are the users' signing keys). Changed only by [`AuthOp`]s, so that in a
//! broker group they travel through the raft log and every member holds the same users and
//! policies; each op's outcome depends only on the table it meets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::persist;
use super::MetaError;
use crate::auth::model::{Acl, Policy, PolicyType, Resource, User, UserStatus, UserType};

pub const AUTH_FILE: &str = "auth.json";

/// A change to the users and ACLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AuthOp {
    /// Adds the user unless one of that name exists.
    CreateUser(User),
    /// Changes what is given of an existing user.
    UpdateUser {
        username: String,
        password: Option<crate::auth::model::Password>,
        user_type: Option<UserType>,
        user_status: Option<UserStatus>,
    },
    /// Removes the user and its ACL.
    DeleteUser { username: String },
    /// Merges `Acl` into the subject's: each policy joins the one of its type, each entry
    /// replacing the entry for the same resource or joining the policy.
    UpsertAcl(Acl),
    /// Removes the entry for `resource` from the subject's policy of `policy_type` (a
    /// policy left empty goes, an ACL left empty goes), or the whole ACL without `resource`.
    DeleteAcl {
        subject: String,
        policy_type: PolicyType,
        resource: Option<Resource>,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct AuthFile {
    users: Vec<User>,
    acls: Vec<Acl>,
}

#[derive(Default, Clone)]
struct Tables {
    users: BTreeMap<String, User>,
    acls: BTreeMap<String, Acl>,
}

pub struct AuthTable {
    tables: RwLock<Tables>,
    apply_lock: Mutex<()>,
    path: PathBuf,
    max_users: usize,
    max_entries: usize,
}

impl AuthTable {
    pub fn open(
        config_dir: &Path,
        max_users: usize,
        max_entries: usize,
    ) -> Result<Self, MetaError> {
        let path = config_dir.join(AUTH_FILE);
        let file = match persist::read_optional(&path)? {
            Some(bytes) => persist::decode::<AuthFile>(&path, &bytes)?,
            None => AuthFile::default(),
        };
        Ok(AuthTable {
            tables: RwLock::new(Tables {
                users: file
                    .users
                    .into_iter()
                    .map(|u| (u.username.clone(), u))
                    .collect(),
                acls: file
                    .acls
                    .into_iter()
                    .map(|a| (a.subject.clone(), a))
                    .collect(),
            }),
            apply_lock: Mutex::new(()),
            path,
            max_users,
            max_entries,
        })
    }

    pub fn user(&self, username: &str) -> Option<User> {
        self.tables.read().users.get(username).cloned()
    }

    pub fn users(&self) -> Vec<User> {
        self.tables.read().users.values().cloned().collect()
    }

    pub fn acl(&self, subject: &str) -> Option<Acl> {
        self.tables.read().acls.get(subject).cloned()
    }

    pub fn acls(&self) -> Vec<Acl> {
        self.tables.read().acls.values().cloned().collect()
    }

    /// Runs `f` over the user and its ACL under one read lock (the check of every request).
    pub fn with_user<R>(
        &self,
        username: &str,
        f: impl FnOnce(Option<&User>, Option<&Acl>) -> R,
    ) -> R {
        let tables = self.tables.read();
        let user = tables.users.get(username);
        let acl = user.and_then(|u| {
            tables
                .acls
                .get(&crate::auth::model::subject_of(&u.username))
        });
        f(user, acl)
    }

    /// Applies one change, persisting before publishing.
    pub fn apply(&self, op: AuthOp) -> Result<(), MetaError> {
        let _serial = self.apply_lock.lock();
        let mut tables = self.tables.read().clone();
        match op {
            AuthOp::CreateUser(user) => {
                if tables.users.contains_key(&user.username) {
                    return Ok(());
                }
                if tables.users.len() >= self.max_users {
                    return Err(MetaError::LimitReached {
                        what: "users",
                        limit: self.max_users,
                    });
                }
                tables.users.insert(user.username.clone(), user);
            }
            AuthOp::UpdateUser {
                username,
                password,
                user_type,
                user_status,
            } => {
                let Some(user) = tables.users.get_mut(&username) else {
                    return Ok(());
                };
                if let Some(password) = password {
                    user.password = password;
                }
                if let Some(user_type) = user_type {
                    user.user_type = user_type;
                }
                if let Some(user_status) = user_status {
                    user.user_status = user_status;
                }
            }
            AuthOp::DeleteUser { username } => {
                tables.users.remove(&username);
                tables
                    .acls
                    .remove(&crate::auth::model::subject_of(&username));
            }
            AuthOp::UpsertAcl(incoming) => {
                let acl = tables
                    .acls
                    .entry(incoming.subject.clone())
                    .or_insert_with(|| Acl {
                        subject: incoming.subject.clone(),
                        policies: Vec::new(),
                    });
                for policy in incoming.policies {
                    merge(&mut acl.policies, policy);
                }
                let entries: usize = acl.policies.iter().map(|p| p.entries.len()).sum();
                if entries > self.max_entries {
                    return Err(MetaError::LimitReached {
                        what: "policy entries of one subject",
                        limit: self.max_entries,
                    });
                }
            }
            AuthOp::DeleteAcl {
                subject,
                policy_type,
                resource,
            } => match resource {
                None => {
                    tables.acls.remove(&subject);
                }
                Some(resource) => {
                    if let Some(acl) = tables.acls.get_mut(&subject) {
                        for policy in &mut acl.policies {
                            if policy.policy_type == policy_type {
                                policy.entries.retain(|e| e.resource != resource);
                            }
                        }
                        acl.policies.retain(|p| !p.entries.is_empty());
                        if acl.policies.is_empty() {
                            tables.acls.remove(&subject);
                        }
                    }
                }
            },
        }
        self.persist(&tables)?;
        *self.tables.write() = tables;
        Ok(())
    }

    /// Replaces everything (a group member's copy from another member).
    pub fn replace_all(&self, users: Vec<User>, acls: Vec<Acl>) -> Result<(), MetaError> {
        let _serial = self.apply_lock.lock();
        let tables = Tables {
            users: users.into_iter().map(|u| (u.username.clone(), u)).collect(),
            acls: acls.into_iter().map(|a| (a.subject.clone(), a)).collect(),
        };
        self.persist(&tables)?;
        *self.tables.write() = tables;
        Ok(())
    }

    fn persist(&self, tables: &Tables) -> Result<(), MetaError> {
        let file = AuthFile {
            users: tables.users.values().cloned().collect(),
            acls: tables.acls.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| MetaError::Invalid(format!("users cannot be encoded: {e}")))?;
        persist::write_private(&self.path, &bytes)
    }
}

fn merge(policies: &mut Vec<Policy>, incoming: Policy) {
    let Some(existing) = policies
        .iter_mut()
        .find(|p| p.policy_type == incoming.policy_type)
    else {
        policies.push(incoming);
        return;
    };
    for entry in incoming.entries {
        match existing
            .entries
            .iter_mut()
            .find(|e| e.resource == entry.resource)
        {
            Some(old) => *old = entry,
            None => existing.entries.push(entry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::model::{Action, Decision, Password, PolicyEntry};

    fn entry(resource: &str, decision: Decision) -> PolicyEntry {
        PolicyEntry {
            resource: Resource::parse(resource).unwrap(),
            actions: vec![Action::Pub],
            source_ips: vec![],
            decision,
        }
    }

    fn custom(entries: Vec<PolicyEntry>) -> Acl {
        Acl {
            subject: "User:u".into(),
            policies: vec![Policy {
                policy_type: PolicyType::Custom,
                entries,
            }],
        }
    }

    #[test]
    fn ops_merge_remove_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let table = AuthTable::open(dir.path(), 10, 10).unwrap();
        let user = User {
            username: "u".into(),
            password: Password::new("first-password"),
            user_type: UserType::Normal,
            user_status: UserStatus::Enable,
        };
        table.apply(AuthOp::CreateUser(user.clone())).unwrap();
        let mut again = user.clone();
        again.password = Password::new("other");
        table.apply(AuthOp::CreateUser(again)).unwrap();
        assert_eq!(table.user("u").unwrap().password, user.password);
        table
            .apply(AuthOp::UpsertAcl(custom(vec![entry(
                "Topic:a",
                Decision::Allow,
            )])))
            .unwrap();
        table
            .apply(AuthOp::UpsertAcl(custom(vec![
                entry("Topic:a", Decision::Deny),
                entry("Topic:b", Decision::Allow),
            ])))
            .unwrap();
        let entries = &table.acl("User:u").unwrap().policies[0].entries;
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].decision, Decision::Deny);

        let reopened = AuthTable::open(dir.path(), 10, 10).unwrap();
        assert_eq!(reopened.acl("User:u"), table.acl("User:u"));
        assert_eq!(reopened.users(), table.users());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(AUTH_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }

        for resource in ["Topic:a", "Topic:b"] {
            table
                .apply(AuthOp::DeleteAcl {
                    subject: "User:u".into(),
                    policy_type: PolicyType::Custom,
                    resource: Resource::parse(resource),
                })
                .unwrap();
        }
        assert!(table.acl("User:u").is_none());
        table
            .apply(AuthOp::UpsertAcl(custom(vec![entry(
                "Topic:a",
                Decision::Allow,
            )])))
            .unwrap();
        table
            .apply(AuthOp::DeleteUser {
                username: "u".into(),
            })
            .unwrap();
        assert!(table.user("u").is_none() && table.acl("User:u").is_none());
    }
}
