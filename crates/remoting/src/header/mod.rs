//! Typed request/response headers and their conversion to and from `extFields`.
//!
//! RocketMQ flattens every custom-header field to a string in `extFields`, skipping absent
//! (null) values; the receiver parses them back. Each header type implements
//! [`CommandHeader`] for that round trip.

use crate::ExtFields;

/// A typed header carried in a command's `extFields`.
pub trait CommandHeader: Sized {
    /// Flattens the header into `extFields` entries; absent optional fields are omitted.
    fn to_ext_fields(&self, ext: &mut ExtFields);

    /// Parses the header, failing on a missing required field or an unparsable value.
    fn from_ext_fields(ext: &ExtFields) -> Result<Self, HeaderError>;
}

/// Why `extFields` do not make a valid header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("missing required header field `{0}`")]
    Missing(&'static str),
    #[error("header field `{field}` has invalid value `{value}`")]
    Invalid { field: &'static str, value: String },
}
