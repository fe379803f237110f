//! The name server: where brokers register and clients find topic routes.
