//! Whether this broker is the master of its group (takes writes) or a slave.
//!
//! A standalone broker is always master with the configured `brokerId` (normally 0). In a
//! replicated group the raft leader becomes master (brokerId 0) and followers become slaves
//! (brokerId = their `dLegerSelfId` digits + 1); processors consult this on every write so
//! a slave answers with a code clients retry elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Slave,
}

/// The current role and the broker id registered with name servers; changed atomically
/// as one word so readers never see a master with a slave's id.
#[derive(Debug)]
pub struct RoleState {
    word: AtomicU64,
}

const SLAVE_BIT: u64 = 1 << 63;

impl RoleState {
    pub fn new(role: Role, broker_id: u64) -> Self {
        RoleState {
            word: AtomicU64::new(Self::pack(role, broker_id)),
        }
    }

    fn pack(role: Role, broker_id: u64) -> u64 {
        let id = broker_id & !SLAVE_BIT;
        match role {
            Role::Master => id,
            Role::Slave => id | SLAVE_BIT,
        }
    }

    pub fn role(&self) -> Role {
        if self.word.load(Ordering::Acquire) & SLAVE_BIT != 0 {
            Role::Slave
        } else {
            Role::Master
        }
    }

    pub fn is_master(&self) -> bool {
        self.role() == Role::Master
    }

    /// The id to register with: 0 for a master of a replicated group.
    pub fn broker_id(&self) -> u64 {
        self.word.load(Ordering::Acquire) & !SLAVE_BIT
    }

    /// Switches role; returns whether anything changed.
    pub fn set(&self, role: Role, broker_id: u64) -> bool {
        let new = Self::pack(role, broker_id);
        self.word.swap(new, Ordering::AcqRel) != new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_and_id_change_together() {
        let state = RoleState::new(Role::Master, 0);
        assert!(state.is_master());
        assert_eq!(state.broker_id(), 0);
        assert!(state.set(Role::Slave, 2));
        assert_eq!((state.role(), state.broker_id()), (Role::Slave, 2));
        assert!(!state.set(Role::Slave, 2));
    }
}
