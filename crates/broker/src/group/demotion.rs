//! A master that loses leadership while it keeps running (a leadership transfer, `mqadmin
//! removeGroupMember` of the master, a partition it comes back from) forwards the sends
//! that still reach it to the new master for `masterShutdownForwardMs`, as a stopping
//! master does ([`super::handoff`]): producers whose routes still name it see no failed
//! send while their route poll catches up.

use std::sync::Arc;

use store::ReplicaStatus;
use tokio::sync::watch;
use tracing::info;

use super::handoff::{HandoffPhase, HANDOFF_TIMEOUT};
use crate::context::BrokerContext;
use crate::registration::NameServerRegistrar;

/// Follows this member's replica status; each time it stops being a writable master while
/// the broker runs, sends wait for the name servers to list the new master (bounded) and
/// then go on to it for `masterShutdownForwardMs`, or until this member is master again.
pub async fn forward_after_demotion(
    ctx: Arc<BrokerContext>,
    registrar: Arc<NameServerRegistrar>,
    mut status: watch::Receiver<ReplicaStatus>,
) {
    let mut was_master = status.borrow_and_update().writable;
    loop {
        tokio::select! {
            changed = status.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = ctx.shutdown.cancelled() => return,
        }
        let master = status.borrow_and_update().writable;
        let demoted = was_master && !master;
        was_master = master;
        if !demoted {
            continue;
        }
        ctx.handoff.note_demotion();
        if !ctx.handoff.set_after_demotion(HandoffPhase::HandingOff) {
            continue;
        }
        let new_master = registrar
            .wait_for_other_master(&ctx, HANDOFF_TIMEOUT)
            .await
            .filter(|_| !status.borrow().writable);
        let Some(new_master) = new_master else {
            ctx.handoff.set_after_demotion(HandoffPhase::Idle);
            continue;
        };
        let linger = ctx.config.master_shutdown_forward;
        info!(%new_master, linger_ms = linger.as_millis() as u64,
            "no longer master: forwarding sends to the new master while clients' routes refresh");
        if !ctx
            .handoff
            .set_after_demotion(HandoffPhase::Forwarding(new_master))
        {
            continue;
        }
        let promoted = status.wait_for(|s| s.writable);
        tokio::select! {
            _ = tokio::time::sleep(linger) => {}
            _ = promoted => {}
            _ = ctx.shutdown.cancelled() => {}
        }
        was_master = status.borrow_and_update().writable;
        ctx.handoff.set_after_demotion(HandoffPhase::Idle);
    }
}
