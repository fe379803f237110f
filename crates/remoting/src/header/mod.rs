//! Typed request/response headers and their conversion to and from `extFields`.
//!
//! RocketMQ flattens every custom-header field to a string in `extFields`, skipping absent
//! (null) values; the receiver parses them back. Each header type implements
//! [`CommandHeader`] for that round trip.
//!
//! - [`send`]: SEND_MESSAGE (long keys) and SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE (`a`..`n`).
//! - [`pull`]: PULL_MESSAGE / LITE_PULL_MESSAGE.
//! - [`pop`]: POP consumption: pop, ack, change invisible time, notification.
//! - [`offset`]: consumer offsets and queue offset queries.
//! - [`query`]: VIEW_MESSAGE_BY_ID and QUERY_MESSAGE.
//! - [`client`]: heartbeats, client registration, send-back, broker-to-client calls.
//! - [`transaction`]: END_TRANSACTION and CHECK_TRANSACTION_STATE.
//! - [`admin`]: topic and subscription-group administration, stats.
//! - [`namesrv`]: broker registration, routes, KV config.
//!
//! Values are parsed as Java does, a little more leniently: numbers may carry surrounding
//! whitespace, booleans are true only for `true` in any case (Java's `parseBoolean`), and
//! an empty string for an optional number counts as absent. Unknown keys, including the
//! 5.x base fields (`ns`, `nsd`, `bname`, `oway`, `lo`; see [`RpcBase`]), are ignored.

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

/// A scalar that travels as one ext-field string.
pub trait HeaderValue: Sized {
    fn to_header_string(&self) -> String;
    /// `None` when the text is not a valid value.
    fn parse_header(text: &str) -> Option<Self>;
    /// Whether an empty string means "absent" for an optional field of this type.
    fn empty_is_absent() -> bool {
        true
    }
}

impl HeaderValue for String {
    fn to_header_string(&self) -> String {
        self.clone()
    }
    fn parse_header(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
    fn empty_is_absent() -> bool {
        false
    }
}

macro_rules! integer_header_value {
    ($($int:ty),*) => {$(
        impl HeaderValue for $int {
            fn to_header_string(&self) -> String {
                self.to_string()
            }
            fn parse_header(text: &str) -> Option<Self> {
                text.trim().parse().ok()
            }
        }
    )*};
}
integer_header_value!(i16, i32, i64, u16, u32, u64);

impl HeaderValue for bool {
    fn to_header_string(&self) -> String {
        self.to_string()
    }
    /// Java's `Boolean.parseBoolean`: only `true` (any case) is true, everything else false.
    fn parse_header(text: &str) -> Option<Self> {
        Some(text.trim().eq_ignore_ascii_case("true"))
    }
}

/// How one field of a header reads and writes itself: required for plain types, optional
/// for `Option<T>`.
pub trait HeaderField: Sized {
    fn read_field(ext: &ExtFields, key: &'static str) -> Result<Self, HeaderError>;
    fn write_field(&self, ext: &mut ExtFields, key: &'static str);
}

fn parse_value<T: HeaderValue>(key: &'static str, text: &str) -> Result<T, HeaderError> {
    T::parse_header(text).ok_or_else(|| HeaderError::Invalid {
        field: key,
        value: text.to_owned(),
    })
}

impl<T: HeaderValue> HeaderField for T {
    fn read_field(ext: &ExtFields, key: &'static str) -> Result<Self, HeaderError> {
        let text = ext.get(key).ok_or(HeaderError::Missing(key))?;
        parse_value(key, text)
    }
    fn write_field(&self, ext: &mut ExtFields, key: &'static str) {
        ext.insert_static(key, self.to_header_string());
    }
}

impl<T: HeaderValue> HeaderField for Option<T> {
    fn read_field(ext: &ExtFields, key: &'static str) -> Result<Self, HeaderError> {
        match ext.get(key) {
            None => Ok(None),
            Some(text) if text.trim().is_empty() && T::empty_is_absent() => Ok(None),
            Some(text) => parse_value(key, text).map(Some),
        }
    }
    fn write_field(&self, ext: &mut ExtFields, key: &'static str) {
        if let Some(value) = self {
            ext.insert_static(key, value.to_header_string());
        }
    }
}

/// Reads a field that Java declares with a default: absent (or empty) means the default.
pub fn read_or<T: HeaderValue>(
    ext: &ExtFields,
    key: &'static str,
    default: T,
) -> Result<T, HeaderError> {
    Ok(Option::<T>::read_field(ext, key)?.unwrap_or(default))
}

/// Declares a header struct and its [`CommandHeader`] impl. Each field names its ext key;
/// `Option<T>` fields are optional, others required unless given `=> default`:
///
/// ```
/// remoting::command_header! {
///     /// A made-up request.
///     pub struct ExampleRequestHeader {
///         topic: String = "topic",
///         queue_id: i32 = "queueId",
///         committed: bool = "committed" => true,
///         tag: Option<String> = "tag",
///     }
/// }
/// ```
#[macro_export]
macro_rules! command_header {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident : $ty:ty = $key:literal $(=> $default:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        impl $crate::header::CommandHeader for $name {
            #[allow(unused_variables)]
            fn to_ext_fields(&self, ext: &mut $crate::ExtFields) {
                $( $crate::header::HeaderField::write_field(&self.$field, ext, $key); )*
            }

            #[allow(unused_variables)]
            fn from_ext_fields(ext: &$crate::ExtFields) -> Result<Self, $crate::header::HeaderError> {
                Ok($name {
                    $( $field: $crate::command_header!(@read ext, $key, $ty $(, $default)?), )*
                })
            }
        }
    };
    (@read $ext:ident, $key:literal, $ty:ty) => {
        <$ty as $crate::header::HeaderField>::read_field($ext, $key)?
    };
    (@read $ext:ident, $key:literal, $ty:ty, $default:expr) => {
        $crate::header::read_or::<$ty>($ext, $key, $default)?
    };
}

pub mod admin;
pub mod client;
pub mod namesrv;
pub mod offset;
pub mod pop;
pub mod pull;
pub mod query;
pub mod reply;
pub mod send;
pub mod transaction;

command_header! {
    /// The optional base fields of 5.x requests (`RpcRequestHeader`). Parse them from the
    /// same `extFields` when a processor cares (e.g. `bname` for static topics).
    pub struct RpcBase {
        namespace: Option<String> = "ns",
        namespaced: Option<bool> = "nsd",
        broker_name: Option<String> = "bname",
        oneway: Option<bool> = "oway",
        logical: Option<bool> = "lo",
    }
}

command_header! {
    /// For requests and responses that carry no header fields.
    pub struct EmptyHeader {}
}

/// Builds the `extFields` of `header` in a new map.
pub fn to_ext_map<H: CommandHeader>(header: &H) -> ExtFields {
    let mut ext = ExtFields::new();
    header.to_ext_fields(&mut ext);
    ext
}

#[cfg(test)]
mod tests;
