//! End-to-end, compatibility and fault tests over real processes.
