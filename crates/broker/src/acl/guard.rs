//! The check in front of every request on the client ports (and the VIP channel): a
//! request ACL refuses is answered SYSTEM_ERROR with RocketMQ's AclException text and
//! never reaches its processor, so it changes nothing.

use std::sync::Arc;

use remoting::acl::ACCESS_KEY;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};

use super::files::AclFiles;

pub struct AclGuard<P> {
    inner: Arc<P>,
    files: Arc<AclFiles>,
}

impl<P> AclGuard<P> {
    pub fn new(inner: Arc<P>, files: Arc<AclFiles>) -> Self {
        AclGuard { inner, files }
    }
}

impl<P: RequestProcessor> RequestProcessor for AclGuard<P> {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let checked = self.files.tables().check(&request, conn.remote_addr().ip());
        match checked {
            Ok(()) => self.inner.process(conn, request).await,
            Err(refusal) => {
                tracing::warn!(code = request.code, peer = %conn.remote_addr(),
                    access_key = request.ext_field(ACCESS_KEY).unwrap_or(""),
                    reason = %refusal, "request refused by ACL");
                if request.is_oneway() {
                    return None;
                }
                Some(
                    RemotingCommand::response_to(&request, response::SYSTEM_ERROR).with_remark(
                        format!("org.apache.rocketmq.acl.common.AclException: {refusal}"),
                    ),
                )
            }
        }
    }

    fn connection_opened(&self, conn: &ConnectionHandle) {
        self.inner.connection_opened(conn)
    }

    fn connection_closed(&self, conn: &ConnectionHandle) {
        self.inner.connection_closed(conn)
    }
}
