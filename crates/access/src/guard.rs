//! The check in front of every request of a port (a broker's client ports and VIP channel,
//! a name server's port): each access control the server runs ([`RequestCheck`]) judges the
//! request, and one that refuses it answers for all, so a refused request never reaches its
//! processor and changes nothing.

use std::net::IpAddr;
use std::sync::Arc;

use remoting::acl::ACCESS_KEY;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};

use crate::files::AclFiles;

/// Why a request was refused: the response code and remark its client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: i32,
    pub remark: String,
}

/// One access control's judgement of a request from `ip`.
pub trait RequestCheck: Send + Sync {
    fn check(&self, request: &RemotingCommand, ip: IpAddr) -> Result<(), Refused>;
}

/// ACL 1.0 answers SYSTEM_ERROR with RocketMQ's AclException text.
impl RequestCheck for AclFiles {
    fn check(&self, request: &RemotingCommand, ip: IpAddr) -> Result<(), Refused> {
        self.tables().check(request, ip).map_err(|refusal| Refused {
            code: response::SYSTEM_ERROR,
            remark: format!("org.apache.rocketmq.acl.common.AclException: {refusal}"),
        })
    }
}

pub struct AclGuard<P> {
    inner: Arc<P>,
    checks: Vec<Arc<dyn RequestCheck>>,
}

impl<P> AclGuard<P> {
    pub fn new(inner: Arc<P>, checks: Vec<Arc<dyn RequestCheck>>) -> Self {
        AclGuard { inner, checks }
    }
}

impl<P: RequestProcessor> RequestProcessor for AclGuard<P> {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let ip = conn.remote_addr().ip();
        let Some(Refused { code, remark }) = self
            .checks
            .iter()
            .find_map(|check| check.check(&request, ip).err())
        else {
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
