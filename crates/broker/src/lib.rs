//! The broker: request processors over the message store.
