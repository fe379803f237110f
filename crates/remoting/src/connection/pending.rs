//! Invocations awaiting a response, by opaque: how a response read from the socket finds
//! the caller that sent its request. Either side of a connection may invoke, so the table
//! belongs to the connection, not to the client.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use tokio::sync::oneshot;

use crate::command::{next_opaque, RemotingCommand};

use super::error::CallError;

/// Attempts to find an opaque not already pending before giving up.
const OPAQUE_ATTEMPTS_MAX: usize = 16;

/// Waiters by opaque.
pub(super) type Waiters = HashMap<i32, Waiter, BuildHasherDefault<OpaqueHasher>>;

/// Invocations awaiting a response, by opaque. `closed` is set under the same lock that
/// registration takes, so no waiter can be added after the table was failed.
pub(super) struct PendingTable {
    closed: bool,
    next_registration: u64,
    waiters: Waiters,
    max_pending: usize,
}

/// Hashes the opaque of a pending invocation. Every invocation inserts and removes one
/// entry, so SipHash showed up in profiles; a multiplicative hash is enough because the
/// keys are ids this side hands out (`next_opaque`, sequential), never ones a peer
/// chooses: a peer's responses only look entries up.
#[derive(Default)]
pub(super) struct OpaqueHasher(u64);

impl Hasher for OpaqueHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_i32(&mut self, value: i32) {
        // Fibonacci hashing spreads sequential ids over the low bits (the bucket) and the
        // top bits (hashbrown's tag) alike.
        self.0 = u64::from(value as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(super) struct Waiter {
    registration: u64,
    reply: oneshot::Sender<RemotingCommand>,
}

impl PendingTable {
    /// An open table holding at most `max_pending` waiters.
    pub(super) fn new(max_pending: usize) -> Self {
        PendingTable {
            closed: false,
            next_registration: 0,
            waiters: HashMap::default(),
            max_pending,
        }
    }

    /// Number of invocations awaiting a response.
    pub(super) fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Registers a waiter for `request`'s opaque, giving the request a fresh opaque if its
    /// own is already awaited. Returns the registration number that [`forget`](Self::forget)
    /// needs.
    pub(super) fn register(
        &mut self,
        request: &mut RemotingCommand,
        reply: oneshot::Sender<RemotingCommand>,
    ) -> Result<u64, CallError> {
        if self.closed {
            return Err(CallError::ConnectionClosed);
        }
        if self.waiters.len() >= self.max_pending {
            return Err(CallError::TooManyPending {
                limit: self.max_pending,
            });
        }
        // A caller may reuse a request (a retry) while the first attempt is still awaited.
        let mut attempts = 0;
        while self.waiters.contains_key(&request.opaque) {
            attempts += 1;
            if attempts > OPAQUE_ATTEMPTS_MAX {
                return Err(CallError::TooManyPending {
                    limit: self.max_pending,
                });
            }
            request.opaque = next_opaque();
        }
        self.next_registration += 1;
        let registration = self.next_registration;
        self.waiters.insert(
            request.opaque,
            Waiter {
                registration,
                reply,
            },
        );
        Ok(registration)
    }

    /// Takes the waiter of `opaque`, if anyone still awaits it.
    pub(super) fn take(&mut self, opaque: i32) -> Option<oneshot::Sender<RemotingCommand>> {
        self.waiters.remove(&opaque).map(|waiter| waiter.reply)
    }

    /// Removes the waiter of `opaque` if it is still the one `registration` added: the
    /// opaque may since have been answered and reused by another invocation.
    pub(super) fn forget(&mut self, opaque: i32, registration: u64) {
        if self
            .waiters
            .get(&opaque)
            .is_some_and(|waiter| waiter.registration == registration)
        {
            self.waiters.remove(&opaque);
        }
    }

    /// Refuses later registrations and hands back every waiter. Dropping them (outside the
    /// lock) wakes each caller with `ConnectionClosed`.
    pub(super) fn close(&mut self) -> Waiters {
        self.closed = true;
        std::mem::take(&mut self.waiters)
    }
}
