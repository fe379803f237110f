//! The name server's KV config (PUT_KV_CONFIG, GET_KV_CONFIG, DELETE_KV_CONFIG,
//! GET_KVLIST_BY_NAMESPACE): string values by namespace and key, kept in `kvConfigPath`
//! (RocketMQ's default `$HOME/namesrv/kvConfig.json`) in RocketMQ's own layout,
//! `{"configTable":{"<namespace>":{"<key>":"<value>"}}}`, so either server reads the
//! other's file.
//!
//! As RocketMQ's `KVConfigManager`: a missing or empty file is an empty config, each change
//! rewrites the whole file, and a namespace whose last key is deleted stays (empty). Unlike
//! it, a change is answered only once it is on disk: the file is written to a temporary
//! beside it, fsynced, renamed over it and the directory fsynced, so a crash leaves the old
//! or the new table, never a torn one; a change that cannot be written is refused and
//! leaves the table as it was. A file that is not such JSON stops start-up.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

/// Bounds on the table (PUT_KV_CONFIG comes from admin tools); a loaded file may hold more.
pub const MAX_KV_ENTRIES: usize = 10_000;
pub const MAX_KV_VALUE_BYTES: usize = 64 * 1024;

/// Values by key, by namespace.
pub type KvTable = BTreeMap<String, BTreeMap<String, String>>;

/// `kvConfig.json` (RocketMQ's `KVConfigSerializeWrapper`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KvConfigFile {
    #[serde(default)]
    config_table: Option<KvTable>,
}

#[derive(Debug, thiserror::Error)]
pub enum KvConfigError {
    #[error("cannot read the KV config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the KV config {} is not RocketMQ's kvConfig.json ({{\"configTable\":{{namespace:{{key:value}}}}}}); \
         fix or remove it: {source}",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the KV config {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("value of {0} bytes is larger than the limit of {MAX_KV_VALUE_BYTES}")]
    ValueTooLarge(usize),
    #[error("kv config full: it holds the limit of {MAX_KV_ENTRIES} entries")]
    Full,
}

/// The table and the file behind it. Reads never wait for the disk.
#[derive(Debug)]
pub struct KvConfig {
    path: PathBuf,
    table: RwLock<KvTable>,
    /// Serialises changes, so files are written in the order changes are made.
    writes: Mutex<()>,
}

impl KvConfig {
    /// Reads `path`; a missing or empty (blank) file is an empty config.
    pub fn load(path: impl Into<PathBuf>) -> Result<KvConfig, KvConfigError> {
        let path = path.into();
        let table = match fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => KvTable::new(),
            Ok(bytes) => serde_json::from_slice::<KvConfigFile>(&bytes)
                .map_err(|source| KvConfigError::Corrupt {
                    path: path.clone(),
                    source,
                })?
                .config_table
                .unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => KvTable::new(),
            Err(source) => return Err(KvConfigError::Read { path, source }),
        };
        Ok(KvConfig {
            path,
            table: RwLock::new(table),
            writes: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries over all namespaces.
    pub fn len(&self) -> usize {
        self.table.read().values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, namespace: &str, key: &str) -> Option<String> {
        self.table.read().get(namespace)?.get(key).cloned()
    }

    /// A namespace's entries; `None` when the namespace was never created (one whose keys
    /// were all deleted is empty, not `None`, as in RocketMQ).
    pub fn namespace(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.table.read().get(namespace).cloned()
    }

    /// Sets a value and writes the file; blocks on the disk.
    pub fn put(&self, namespace: &str, key: &str, value: String) -> Result<(), KvConfigError> {
        if value.len() > MAX_KV_VALUE_BYTES {
            return Err(KvConfigError::ValueTooLarge(value.len()));
        }
        let _serial = self.writes.lock();
        let mut table = self.table.read().clone();
        let entries: usize = table.values().map(BTreeMap::len).sum();
        let ns = table.entry(namespace.to_owned()).or_default();
        if !ns.contains_key(key) && entries >= MAX_KV_ENTRIES {
            return Err(KvConfigError::Full);
        }
        if ns.get(key) == Some(&value) {
            return Ok(());
        }
        ns.insert(key.to_owned(), value);
        self.install(table)
    }

    /// Removes a value (its namespace stays) and writes the file; blocks on the disk.
    pub fn delete(&self, namespace: &str, key: &str) -> Result<(), KvConfigError> {
        let _serial = self.writes.lock();
        let mut table = self.table.read().clone();
        let removed = table
            .get_mut(namespace)
            .is_some_and(|ns| ns.remove(key).is_some());
        if !removed {
            return Ok(());
        }
        self.install(table)
    }

    /// Writes `table` to the file, then makes it the one readers see.
    fn install(&self, table: KvTable) -> Result<(), KvConfigError> {
        let file = KvConfigFile {
            config_table: Some(table),
        };
        write_atomically(&self.path, &file).map_err(|source| KvConfigError::Write {
            path: self.path.clone(),
            source,
        })?;
        *self.table.write() = file.config_table.unwrap_or_default();
        Ok(())
    }
}

/// Temporary file beside `path`, fsync, rename over `path`, fsync the directory.
fn write_atomically(path: &Path, file: &KvConfigFile) -> io::Result<()> {
    let bytes = serde_json::to_vec(file).map_err(io::Error::other)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut out = fs::File::create(&tmp)?;
        out.write_all(&bytes)?;
        out.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_a_reload_in_rocketmqs_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("namesrv").join("kvConfig.json");
        let kv = KvConfig::load(&path).unwrap();
        assert!(kv.is_empty());
        assert!(!path.exists(), "nothing is written before a change");

        kv.put("ORDER_TOPIC_CONFIG", "T", "broker-a:4".into())
            .unwrap();
        kv.put("NS", "k", "v1".into()).unwrap();
        kv.put("NS", "k", "v2".into()).unwrap();
        kv.put("NS", "gone", "x".into()).unwrap();
        kv.delete("NS", "gone").unwrap();
        kv.delete("NS", "never-there").unwrap();
        kv.delete("NoSuchNamespace", "k").unwrap();
        assert_eq!(kv.get("NS", "k").as_deref(), Some("v2"));

        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            r#"{"configTable":{"NS":{"k":"v2"},"ORDER_TOPIC_CONFIG":{"T":"broker-a:4"}}}"#
        );
        assert!(!dir.path().join("namesrv/kvConfig.json.tmp").exists());

        let again = KvConfig::load(&path).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(
            again.get("ORDER_TOPIC_CONFIG", "T").as_deref(),
            Some("broker-a:4")
        );
        assert_eq!(again.get("NS", "gone"), None);
    }

    #[test]
    fn a_namespace_emptied_by_deletes_stays() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvConfig::load(dir.path().join("kv.json")).unwrap();
        assert_eq!(kv.namespace("NS"), None);
        kv.put("NS", "k", "v".into()).unwrap();
        kv.delete("NS", "k").unwrap();
        assert_eq!(kv.namespace("NS"), Some(BTreeMap::new()));
        let again = KvConfig::load(dir.path().join("kv.json")).unwrap();
        assert_eq!(again.namespace("NS"), Some(BTreeMap::new()));
    }

    #[test]
    fn reads_a_file_rocketmq_wrote_and_takes_empty_files_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kvConfig.json");
        // fastjson's output, with a field this server does not know.
        fs::write(
            &path,
            r#"{"configTable":{"ORDER_TOPIC_CONFIG":{"TopicA":"broker-a:8;broker-b:8"}},"x":1}"#,
        )
        .unwrap();
        let kv = KvConfig::load(&path).unwrap();
        assert_eq!(
            kv.get("ORDER_TOPIC_CONFIG", "TopicA").as_deref(),
            Some("broker-a:8;broker-b:8")
        );
        for empty in ["", " \n", "{}", r#"{"configTable":null}"#] {
            fs::write(&path, empty).unwrap();
            assert!(KvConfig::load(&path).unwrap().is_empty(), "{empty:?}");
        }
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kvConfig.json");
        for bad in [
            "{\"configTable\":{\"NS\":{\"k\":\"v\"}",
            "not json",
            r#"{"configTable":{"NS":["k"]}}"#,
            r#"{"configTable":{"NS":{"k":1}}}"#,
        ] {
            fs::write(&path, bad).unwrap();
            let err = KvConfig::load(&path).unwrap_err();
            assert!(matches!(err, KvConfigError::Corrupt { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("kvConfig.json"), "{err}");
        }
    }

    #[test]
    fn an_unwritable_change_is_refused_and_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvConfig::load(dir.path().join("sub").join("kvConfig.json")).unwrap();
        // The file's directory became a regular file: nothing can be written there (a
        // permission bit would not stop root).
        fs::write(dir.path().join("sub"), "").unwrap();
        let err = kv.put("NS", "k", "v".into()).unwrap_err();
        assert!(matches!(err, KvConfigError::Write { .. }), "{err}");
        assert_eq!(kv.get("NS", "k"), None);
    }

    #[test]
    fn limits_on_values_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvConfig::load(dir.path().join("kv.json")).unwrap();
        assert!(matches!(
            kv.put("NS", "big", "x".repeat(MAX_KV_VALUE_BYTES + 1)),
            Err(KvConfigError::ValueTooLarge(_))
        ));
        let full: BTreeMap<String, String> = (0..MAX_KV_ENTRIES)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        *kv.table.write() = [("NS".to_owned(), full)].into();
        assert!(matches!(
            kv.put("Other", "k", "v".into()),
            Err(KvConfigError::Full)
        ));
        // Replacing an existing entry is still allowed.
        kv.put("NS", "k0", "v".into()).unwrap();
        assert_eq!(kv.get("NS", "k0").as_deref(), Some("v"));
    }
}
