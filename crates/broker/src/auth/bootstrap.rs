//! The super users broker.conf names (`initAuthenticationUser`,
//! `innerClientAuthenticationCredentials`), created when missing, as RocketMQ creates them
//! at start-up. In a broker group only the master can write, and its write reaches every
//! member: each member tries while it is master until the users exist.

use std::sync::Arc;
use std::time::Duration;

use super::model::{User, UserStatus, UserType};
use crate::context::BrokerContext;
use crate::metadata::{AuthOp, MetadataOp};

const RETRY_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(ctx: Arc<BrokerContext>) {
    let config = &ctx.config.auth;
    let wanted: Vec<User> = [&config.init_user, &config.inner_credentials]
        .into_iter()
        .flatten()
        .map(|(username, password)| User {
            username: username.clone(),
            password: password.clone(),
            user_type: UserType::Super,
            user_status: UserStatus::Enable,
        })
        .collect();
    loop {
        let missing: Vec<&User> = wanted
            .iter()
            .filter(|u| ctx.auth.user(&u.username).is_none())
            .collect();
        if missing.is_empty() {
            return;
        }
        if ctx.role.is_master() {
            for user in missing {
                let op = MetadataOp::Auth(AuthOp::CreateUser(user.clone()));
                match ctx.write_metadata(op).await {
                    Ok(()) => tracing::info!(username = %user.username,
                        "ACL 2.0 super user from broker.conf created"),
                    Err(e) => tracing::debug!(username = %user.username, error = %e,
                        "ACL 2.0 super user not created yet"),
                }
            }
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY_INTERVAL) => {}
        }
    }
}
