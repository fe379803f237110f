//! Metadata files: written whole to a temporary file, fsynced and renamed over the old one,
//! so a crash leaves either the old or the new content, never a torn file.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::MetaError;

/// Directory under `storePathRootDir` holding the metadata files, as in RocketMQ.
pub const CONFIG_DIR: &str = "config";
pub const TOPICS_FILE: &str = "topics.json";
pub const CONSUMER_OFFSET_FILE: &str = "consumerOffset.json";
pub const SUBSCRIPTION_GROUP_FILE: &str = "subscriptionGroup.json";
pub const MESSAGE_REQUEST_MODE_FILE: &str = "messageRequestMode.json";

/// Metadata files larger than this are refused at load (they would be absurdly large for
/// the bounded tables that write them).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

pub fn config_dir(store_root: &Path) -> PathBuf {
    store_root.join(CONFIG_DIR)
}

fn io_error(path: &Path, source: std::io::Error) -> MetaError {
    MetaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), MetaError> {
    write_with_mode(path, bytes, 0o666)
}

/// [`write_atomically`] for a file only the broker's user may read (it holds secrets).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), MetaError> {
    write_with_mode(path, bytes, 0o600)
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), MetaError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("metadata");
    let tmp = dir.join(format!(".{file_name}.tmp"));
    // A leftover temporary file keeps its old mode: start from none.
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(|e| io_error(&tmp, e))?;
    file.write_all(bytes).map_err(|e| io_error(&tmp, e))?;
    file.sync_all().map_err(|e| io_error(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))?;
    // The rename itself is durable only once the directory is synced.
    if let Ok(dir_handle) = fs::File::open(dir) {
        let _ = dir_handle.sync_all();
    }
    Ok(())
}

/// The file's bytes, or `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, MetaError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    if len > MAX_FILE_BYTES {
        return Err(MetaError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{len} bytes is over the {MAX_FILE_BYTES}-byte limit"),
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    Ok(Some(bytes))
}

/// Decodes a metadata file: standard JSON as we write it, or fastjson's dialect (unquoted
/// numeric keys) as a Java broker writes it, so an existing store can be carried over.
pub fn decode<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, MetaError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(MetaError::Corrupt {
            path: path.to_path_buf(),
            reason: "file is empty".into(),
        });
    }
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(strict) => remoting::body::fastjson::decode(bytes).map_err(|_| MetaError::Corrupt {
            path: path.to_path_buf(),
            reason: strict.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config").join("x.json");
        assert!(read_optional(&path).unwrap().is_none());
        write_atomically(&path, b"{\"a\":1}").unwrap();
        write_atomically(&path, b"{\"a\":2}").unwrap();
        assert_eq!(read_optional(&path).unwrap().unwrap(), b"{\"a\":2}");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn java_style_unquoted_keys_decode() {
        let path = Path::new("consumerOffset.json");
        let table: std::collections::BTreeMap<String, std::collections::BTreeMap<i32, i64>> =
            decode(path, br#"{"T@G":{0:5,1:7}}"#).unwrap();
        assert_eq!(table["T@G"][&1], 7);
        assert!(decode::<serde_json::Value>(path, b"  ").is_err());
        assert!(decode::<serde_json::Value>(path, b"{nope").is_err());
    }
}
