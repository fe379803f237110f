//! `ExtFields`: a command's custom-header fields, flattened to strings.
//!
//! A header has a dozen or two short fields, and every request and response builds one
//! map and reads it once. A `HashMap<String, String>` spends most of that on allocation
//! (a table plus a string per key) and SipHash; this map is one sorted vector whose keys
//! are borrowed `'static` names whenever the key is a well-known header field, so the
//! usual header costs one allocation for the entries plus one per value.
//!
//! Maps built from decoded frames are filled in bulk (sorted once, `O(n log n)`) so a
//! header with very many fields cannot make decoding quadratic; single `insert`s shift the
//! vector and are meant for the few fields a header writer adds.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// A key: a borrowed well-known name or an owned one.
type Key = Cow<'static, str>;

/// Custom-header fields of a command, keyed by field name, iterated in key order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExtFields {
    /// Sorted by key; keys are unique.
    entries: Vec<(Key, String)>,
}

impl ExtFields {
    /// An empty map.
    pub fn new() -> Self {
        ExtFields::default()
    }

    /// An empty map with room for `capacity` fields.
    pub fn with_capacity(capacity: usize) -> Self {
        ExtFields {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(known, _)| known.as_ref().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        let at = self.position(key).ok()?;
        self.entries.get(at).map(|(_, value)| value)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        self.insert_key(intern(key), value)
    }

    /// Sets a field whose name is a constant (what header writers do): the name is not
    /// copied.
    pub fn insert_static(&mut self, key: &'static str, value: String) -> Option<String> {
        self.insert_key(Cow::Borrowed(key), value)
    }

    fn insert_key(&mut self, key: Key, value: String) -> Option<String> {
        match self.position(&key) {
            Ok(at) => self
                .entries
                .get_mut(at)
                .map(|(_, old)| std::mem::replace(old, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.position(key).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// Removes every field.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The fields in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            entries: self.entries.iter(),
        }
    }

    /// The names in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(key, _)| key.as_ref())
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(_, value)| value)
    }

    /// The map that applying `operations` in order would leave (`Some` sets a key, `None`
    /// removes it), built in `O(n log n)`: what decoders use, since a peer chooses `n`.
    pub(crate) fn from_operations(mut operations: Vec<(Key, Option<String>)>) -> Self {
        if operations.iter().all(|(_, value)| value.is_some()) {
            // Without removals only the last value of each key matters; the conversion
            // reuses the vector (same element size).
            return ExtFields::from_entries(
                operations
                    .into_iter()
                    .map(|(key, value)| (key, value.unwrap_or_default()))
                    .collect(),
            );
        }
        // A stable sort keeps each key's operations in their original order, so the last
        // of a run decides.
        operations.sort_by(|a, b| a.0.cmp(&b.0));
        let mut entries = Vec::with_capacity(operations.len());
        let mut operations = operations.into_iter().peekable();
        while let Some((key, value)) = operations.next() {
            if operations.peek().is_some_and(|(next, _)| *next == key) {
                continue;
            }
            if let Some(value) = value {
                entries.push((key, value));
            }
        }
        ExtFields { entries }
    }

    /// The map of `entries` (the last of repeated keys wins), sorting them in place: the
    /// decoders' path when no field was null.
    pub(crate) fn from_entries(mut entries: Vec<(Key, String)>) -> Self {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` keeps the first of a run; move each later value into it first.
        entries.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                std::mem::swap(&mut later.1, &mut kept.1);
                true
            } else {
                false
            }
        });
        ExtFields { entries }
    }
}

/// The key as a borrowed constant when it is a well-known header field name.
pub(crate) fn intern(key: String) -> Key {
    match known_key(&key) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(key),
    }
}

/// The `'static` copy of a well-known field name: the SEND_MESSAGE_V2 letters and the
/// fields of sends, pulls and their answers, which make up nearly all traffic.
pub(crate) fn known_key(key: &str) -> Option<&'static str> {
    macro_rules! known {
        ($($name:literal),* $(,)?) => {
            match key {
                $($name => Some($name),)*
                _ => None,
            }
        };
    }
    known!(
        "a",
        "b",
        "c",
        "d",
        "e",
        "f",
        "g",
        "h",
        "i",
        "j",
        "k",
        "l",
        "m",
        "n",
        "msgId",
        "queueId",
        "queueOffset",
        "transactionId",
        "batchUniqId",
        "recallHandle",
        "MSG_REGION",
        "TRACE_ON",
        "topic",
        "consumerGroup",
        "producerGroup",
        "maxMsgNums",
        "sysFlag",
        "commitOffset",
        "suspendTimeoutMillis",
        "subscription",
        "subVersion",
        "expressionType",
        "maxMsgBytes",
        "requestSource",
        "proxyForwardClientId",
        "suggestWhichBrokerId",
        "nextBeginOffset",
        "minOffset",
        "maxOffset",
        "offsetDelta",
        "topicSysFlag",
        "groupSysFlag",
        "forbiddenType",
        "bname",
        "ns",
        "nsd",
        "oway",
        "lo",
        "defaultTopic",
        "defaultTopicQueueNums",
        "bornTimestamp",
        "flag",
        "properties",
        "reconsumeTimes",
        "unitMode",
        "batch",
        "maxReconsumeTimes",
        "offset",
        "clientID",
    )
}

impl fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over the fields in key order.
pub struct Iter<'a> {
    entries: std::slice::Iter<'a, (Key, String)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a String);

    fn next(&mut self) -> Option<Self::Item> {
        self.entries
            .next()
            .map(|(key, value)| (key.as_ref(), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a ExtFields {
    type Item = (&'a str, &'a String);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for ExtFields {
    type Item = (String, String);
    type IntoIter =
        std::iter::Map<std::vec::IntoIter<(Key, String)>, fn((Key, String)) -> (String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries
            .into_iter()
            .map(|(key, value)| (key.into_owned(), value))
    }
}

impl FromIterator<(String, String)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        ExtFields::from_entries(
            pairs
                .into_iter()
                .map(|(key, value)| (intern(key), value))
                .collect(),
        )
    }
}

impl Extend<(String, String)> for ExtFields {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl<const N: usize> From<[(String, String); N]> for ExtFields {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// `ext["key"]`, as on a `HashMap`: panics when the key is absent, so only for callers
/// that know it is there (tests); decoders use [`ExtFields::get`].
impl std::ops::Index<&str> for ExtFields {
    type Output = String;

    fn index(&self, key: &str) -> &String {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no extFields entry {key:?}"),
        }
    }
}

impl Serialize for ExtFields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, value) in self {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut ext = ExtFields::new();
        assert_eq!(ext.insert("topic".into(), "T".into()), None);
        assert_eq!(ext.insert_static("queueId", "1".into()), None);
        assert_eq!(ext.insert("custom".into(), "x".into()), None);
        assert_eq!(ext.insert("topic".into(), "U".into()), Some("T".into()));
        assert_eq!(ext.get("topic").map(String::as_str), Some("U"));
        assert!(ext.contains_key("custom"));
        assert_eq!(ext.len(), 3);
        assert_eq!(
            ext.keys().collect::<Vec<_>>(),
            ["custom", "queueId", "topic"]
        );
        assert_eq!(ext.remove("custom"), Some("x".into()));
        assert_eq!(ext.remove("custom"), None);
        assert_eq!(ext.get("custom"), None);
        assert_eq!(format!("{ext:?}"), r#"{"queueId": "1", "topic": "U"}"#);
        let same: ExtFields = [
            ("topic".to_owned(), "U".to_owned()),
            ("queueId".into(), "1".into()),
        ]
        .into();
        assert_eq!(ext, same);
    }

    #[derive(Debug, Clone)]
    enum Operation {
        Set(String, String),
        Remove(String),
    }

    fn operation() -> impl Strategy<Value = Operation> {
        let key = prop_oneof![Just("a".to_owned()), Just("topic".to_owned()), "[a-d]{0,2}"];
        prop_oneof![
            3 => (key.clone(), "[x-z]{0,2}").prop_map(|(k, v)| Operation::Set(k, v)),
            1 => key.prop_map(Operation::Remove),
        ]
    }

    proptest! {
        #[test]
        fn every_way_of_building_matches_a_btree_map(operations in proptest::collection::vec(operation(), 0..24)) {
            let mut reference = BTreeMap::new();
            let mut one_by_one = ExtFields::new();
            let mut bulk = Vec::new();
            let mut sets = Vec::new();
            for operation in &operations {
                match operation.clone() {
                    Operation::Set(key, value) => {
                        prop_assert_eq!(
                            one_by_one.insert(key.clone(), value.clone()),
                            reference.insert(key.clone(), value.clone())
                        );
                        bulk.push((intern(key.clone()), Some(value.clone())));
                        sets.push((key, value));
                    }
                    Operation::Remove(key) => {
                        prop_assert_eq!(one_by_one.remove(&key), reference.remove(&key));
                        bulk.push((intern(key), None));
                    }
                }
            }
            let expected: Vec<(&str, &String)> = reference.iter().map(|(k, v)| (k.as_str(), v)).collect();
            prop_assert_eq!(one_by_one.iter().collect::<Vec<_>>(), expected.clone());
            let bulk = ExtFields::from_operations(bulk);
            prop_assert_eq!(bulk.iter().collect::<Vec<_>>(), expected);
            prop_assert_eq!(&bulk, &one_by_one);

            let mut last_set = BTreeMap::new();
            for (key, value) in &sets {
                last_set.insert(key.clone(), value.clone());
            }
            let collected: ExtFields = sets.into_iter().collect();
            let expected: Vec<(&str, &String)> = last_set.iter().map(|(k, v)| (k.as_str(), v)).collect();
            prop_assert_eq!(collected.iter().collect::<Vec<_>>(), expected);
        }
    }
}
