//! The check in front of every request on the client ports (and the VIP channel), by ACL
//! 1.0 and ACL 2.0 ([`crate::auth`]), whichever are on. A refused request never reaches its
//! processor, so it changes nothing. ACL 1.0 answers SYSTEM_ERROR with RocketMQ's
//! AclException text; ACL 2.0 answers NO_PERMISSION with its reason, as RocketMQ 5.3's
//! pipeline does.

use std::sync::Arc;

use remoting::acl::ACCESS_KEY;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};

use super::files::AclFiles;
use crate::auth::gate::AuthGate;

pub struct AclGuard<P> {
    inner: Arc<P>,
    plain: Option<Arc<AclFiles>>,
    users: Option<Arc<AuthGate>>,
}

impl<P> AclGuard<P> {
    pub fn new(inner: Arc<P>, plain: Option<Arc<AclFiles>>, users: Option<Arc<AuthGate>>) -> Self {
        AclGuard {
            inner,
            plain,
            users,
        }
    }

    fn refusal(&self, conn: &ConnectionHandle, request: &RemotingCommand) -> Option<(i32, String)> {
        let ip = conn.remote_addr().ip();
        if let Some(files) = &self.plain {
            if let Err(refusal) = files.tables().check(request, ip) {
                return Some((
                    response::SYSTEM_ERROR,
                    format!("org.apache.rocketmq.acl.common.AclException: {refusal}"),
                ));
            }
        }
        if let Some(users) = &self.users {
            if let Err(refusal) = users.check(request, ip) {
                return Some((response::NO_PERMISSION, refusal.0));
            }
        }
        None
    }
}

impl<P: RequestProcessor> RequestProcessor for AclGuard<P> {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let Some((code, remark)) = self.refusal(conn, &request) else {
            return self.inner.process(conn, request).await;
        };
        tracing::warn!(code = request.code, peer = %conn.remote_addr(),
            access_key = request.ext_field(ACCESS_KEY).unwrap_or(""),
            reason = %remark, "request refused by ACL");
        if request.is_oneway() {
            return None;
        }
        Some(RemotingCommand::response_to(&request, code).with_remark(remark))
    }

    fn connection_opened(&self, conn: &ConnectionHandle) {
        self.inner.connection_opened(conn)
    }

    fn connection_closed(&self, conn: &ConnectionHandle) {
        self.inner.connection_closed(conn)
    }
}
