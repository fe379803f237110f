//! ACL 2.0's sub-commands, with RocketMQ 5.3's flags and output: `createUser`,
//! `updateUser`, `deleteUser`, `getUser`, `listUser`, `createAcl`, `updateAcl`,
//! `deleteAcl`, `getAcl`, `listAcl`. `-b` names one broker; `-c` a cluster, whose masters
//! take the changes (each replicates to its group's other members) and answer the reads.

use anyhow::Result;
use clap::Args;
use client::Admin;
use remoting::body::auth::{AclInfo, PolicyEntryInfo, PolicyInfo, UserInfo};

use super::acl::{brokers, list, Target};
use super::print_json;

#[derive(Args)]
pub struct CreateUser {
    #[command(flatten)]
    target: Target,
    /// the username of user
    #[arg(short = 'u', long = "username")]
    username: String,
    /// the password of user
    #[arg(short = 'p', long = "password")]
    password: String,
    /// the type of user: Super or Normal (default)
    #[arg(short = 't', long = "userType")]
    user_type: Option<String>,
}

#[derive(Args)]
pub struct UpdateUser {
    #[command(flatten)]
    target: Target,
    /// the username of user
    #[arg(short = 'u', long = "username")]
    username: String,
    /// the new password of user
    #[arg(short = 'p', long = "password")]
    password: Option<String>,
    /// the new type of user: Super or Normal
    #[arg(short = 't', long = "userType")]
    user_type: Option<String>,
    /// the new status of user: enable or disable
    #[arg(short = 's', long = "userStatus")]
    user_status: Option<String>,
}

#[derive(Args)]
pub struct Username {
    #[command(flatten)]
    target: Target,
    /// the username of user
    #[arg(short = 'u', long = "username")]
    username: String,
}

#[derive(Args)]
pub struct ListUser {
    #[command(flatten)]
    target: Target,
    /// only the users whose names contain this
    #[arg(short = 'f', long = "filter")]
    filter: Option<String>,
}

#[derive(Args)]
pub struct UpsertAcl {
    #[command(flatten)]
    target: Target,
    /// the subject of acl, eg: User:alice
    #[arg(short = 's', long = "subject")]
    subject: String,
    /// the resources of acl, eg: Topic:orders,Group:billing*,Cluster:DefaultCluster,*
    #[arg(short = 'r', long = "resources")]
    resources: String,
    /// the actions of acl, eg: Pub,Sub,Create,Update,Delete,Get,List,All
    #[arg(short = 'a', long = "actions")]
    actions: String,
    /// the decision of acl: Allow or Deny
    #[arg(short = 'd', long = "decision")]
    decision: String,
    /// the source ips of acl, eg: 10.0.0.1,192.168.0.0/24
    #[arg(short = 'i', long = "sourceIp")]
    source_ips: Option<String>,
}

#[derive(Args)]
pub struct DeleteAcl {
    #[command(flatten)]
    target: Target,
    /// the subject of acl, eg: User:alice
    #[arg(short = 's', long = "subject")]
    subject: String,
    /// one resource whose entry goes (the whole acl when absent)
    #[arg(short = 'r', long = "resources")]
    resource: Option<String>,
}

#[derive(Args)]
pub struct GetAcl {
    #[command(flatten)]
    target: Target,
    /// the subject of acl, eg: User:alice
    #[arg(short = 's', long = "subject")]
    subject: String,
}

#[derive(Args)]
pub struct ListAcl {
    #[command(flatten)]
    target: Target,
    /// only the subjects containing this
    #[arg(short = 's', long = "subject")]
    subject: Option<String>,
    /// only the entries whose resources contain this
    #[arg(short = 'r', long = "resource")]
    resource: Option<String>,
}

/// Runs `change` on each target broker (masters only: a group's master replicates).
async fn on_each<F, Fut>(
    admin: &Admin,
    target: &Target,
    done: &str,
    json: bool,
    change: F,
) -> Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = client::Result<()>>,
{
    let mut brokers_done = Vec::new();
    for addr in brokers(admin, target, true).await? {
        change(addr.clone()).await?;
        if !json {
            println!("{done} to {addr} success.");
        }
        brokers_done.push(addr);
    }
    if json {
        print_json(&serde_json::json!({ "brokers": brokers_done }))?;
    }
    Ok(())
}

pub async fn create_user(admin: &Admin, args: CreateUser, json: bool) -> Result<()> {
    let user = UserInfo {
        username: Some(args.username),
        password: Some(args.password),
        user_type: args.user_type,
        user_status: None,
    };
    on_each(admin, &args.target, "create user", json, |addr| {
        let user = &user;
        async move { admin.create_user(&addr, user).await }
    })
    .await
}

pub async fn update_user(admin: &Admin, args: UpdateUser, json: bool) -> Result<()> {
    if args.password.is_none() && args.user_type.is_none() && args.user_status.is_none() {
        anyhow::bail!("give at least one of -p password, -t userType, -s userStatus");
    }
    let user = UserInfo {
        username: Some(args.username),
        password: args.password,
        user_type: args.user_type,
        user_status: args.user_status,
    };
    on_each(admin, &args.target, "update user", json, |addr| {
        let user = &user;
        async move { admin.update_user(&addr, user).await }
    })
    .await
}

pub async fn delete_user(admin: &Admin, args: Username, json: bool) -> Result<()> {
    on_each(admin, &args.target, "delete user", json, |addr| {
        let username = &args.username;
        async move { admin.delete_user(&addr, username).await }
    })
    .await
}

fn user_row(name: &str, password: &str, user_type: &str, status: &str) -> String {
    format!("{name:<16}  {password:<22}  {user_type:<22}  {status:<22}")
}

fn print_users(users: &[UserInfo]) {
    println!(
        "{}",
        user_row("#UserName", "#Password", "#UserType", "#UserStatus")
    );
    for user in users {
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        println!(
            "{}",
            user_row(
                &field(&user.username),
                &field(&user.password),
                &field(&user.user_type),
                &field(&user.user_status)
            )
        );
    }
}

/// The first answer of the target brokers that has something (`-c` asks masters in turn).
async fn first_found<T, F, Fut>(admin: &Admin, target: &Target, read: F) -> Result<Option<T>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = client::Result<Option<T>>>,
{
    for addr in brokers(admin, target, true).await? {
        if let Some(found) = read(addr).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

pub async fn get_user(admin: &Admin, args: Username, json: bool) -> Result<()> {
    let user = first_found(admin, &args.target, |addr| {
        let username = &args.username;
        async move { admin.get_user(&addr, username).await }
    })
    .await?;
    if json {
        return print_json(&user);
    }
    if let Some(user) = user {
        print_users(&[user]);
    }
    Ok(())
}

pub async fn list_users(admin: &Admin, args: ListUser, json: bool) -> Result<()> {
    let users = first_found(admin, &args.target, |addr| {
        let filter = args.filter.as_deref();
        async move {
            let users = admin.list_users(&addr, filter).await?;
            Ok((!users.is_empty()).then_some(users))
        }
    })
    .await?
    .unwrap_or_default();
    if json {
        return print_json(&users);
    }
    print_users(&users);
    Ok(())
}

pub async fn upsert_acl(admin: &Admin, args: UpsertAcl, update: bool, json: bool) -> Result<()> {
    let actions = list(Some(&args.actions)).unwrap_or_default();
    let source_ips = list(args.source_ips.as_deref());
    let entries = list(Some(&args.resources))
        .unwrap_or_default()
        .into_iter()
        .map(|resource| PolicyEntryInfo {
            resource: Some(resource),
            actions: Some(actions.clone()),
            source_ips: source_ips.clone(),
            decision: Some(args.decision.trim().to_owned()),
        })
        .collect();
    let acl = AclInfo {
        subject: Some(args.subject.trim().to_owned()),
        policies: Some(vec![PolicyInfo {
            policy_type: None,
            entries: Some(entries),
        }]),
    };
    let done = if update { "update acl" } else { "create acl" };
    on_each(admin, &args.target, done, json, |addr| {
        let acl = &acl;
        async move { admin.upsert_acl(&addr, acl, update).await }
    })
    .await
}

pub async fn delete_acl(admin: &Admin, args: DeleteAcl, json: bool) -> Result<()> {
    on_each(admin, &args.target, "delete acl", json, |addr| {
        let (subject, resource) = (args.subject.trim(), args.resource.as_deref());
        async move { admin.delete_acl(&addr, subject, None, resource).await }
    })
    .await
}

fn acl_row(columns: [&str; 6]) -> String {
    let [subject, policy_type, resource, actions, source_ips, decision] = columns;
    format!("{subject:<16}  {policy_type:<10}  {resource:<22}  {actions:<20}  {source_ips:<24}  {decision:<10}")
}

fn print_acls(acls: &[AclInfo]) {
    println!(
        "{}",
        acl_row([
            "#Subject",
            "#PolicyType",
            "#Resource",
            "#Actions",
            "#SourceIp",
            "#Decision"
        ])
    );
    let listed = |v: &Option<Vec<String>>| match v {
        Some(items) => format!("[{}]", items.join(", ")),
        None => "null".to_owned(),
    };
    for acl in acls {
        let subject = acl.subject.clone().unwrap_or_default();
        for policy in acl.policies.iter().flatten() {
            for entry in policy.entries.iter().flatten() {
                println!(
                    "{}",
                    acl_row([
                        &subject,
                        policy.policy_type.as_deref().unwrap_or_default(),
                        entry.resource.as_deref().unwrap_or_default(),
                        &listed(&entry.actions),
                        &listed(&entry.source_ips),
                        entry.decision.as_deref().unwrap_or_default(),
                    ])
                );
            }
        }
    }
}

pub async fn get_acl(admin: &Admin, args: GetAcl, json: bool) -> Result<()> {
    let acl = first_found(admin, &args.target, |addr| {
        let subject = args.subject.trim();
        async move { admin.get_acl(&addr, subject).await }
    })
    .await?;
    if json {
        return print_json(&acl);
    }
    print_acls(acl.as_slice());
    Ok(())
}

pub async fn list_acls(admin: &Admin, args: ListAcl, json: bool) -> Result<()> {
    let acls = first_found(admin, &args.target, |addr| {
        let (subject, resource) = (args.subject.as_deref(), args.resource.as_deref());
        async move {
            let acls = admin.list_acls(&addr, subject, resource).await?;
            Ok((!acls.is_empty()).then_some(acls))
        }
    })
    .await?
    .unwrap_or_default();
    if json {
        return print_json(&acls);
    }
    print_acls(&acls);
    Ok(())
}
