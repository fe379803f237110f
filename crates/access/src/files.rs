//! The ACL files of a broker, where RocketMQ keeps them: `$ROCKETMQ_HOME/conf/plain_acl.yml`
//! (created empty when missing) and every `*.yml` / `*.yaml` under `$ROCKETMQ_HOME/conf/acl/`.
//! They are read at start-up (a bad file stops it), looked at again every 5 seconds and
//! reloaded when one changed (a bad file is then logged and the tables in force are kept),
//! and rewritten by the ACL admin requests, each write bumping its file's `dataVersion`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

use super::address::AddressPattern;
use super::perm;
use super::plain::{
    resource_entry, Account, DataVersion, PlainAclError, PlainAclFile, MIN_KEY_LEN,
};
use super::tables::AclTables;

/// How often the files are looked at for changes (RocketMQ's watcher: 5 s).
pub const WATCH_INTERVAL: Duration = Duration::from_secs(5);
/// Most files read from `conf/acl/` (a directory full of files must not stall a reload).
const MAX_FILES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum AclFileError {
    #[error("cannot read ACL file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bad ACL file {path}: {source}")]
    Bad {
        path: String,
        #[source]
        source: PlainAclError,
    },
}

struct Loaded {
    files: Vec<(PathBuf, PlainAclFile, Option<SystemTime>)>,
    tables: Arc<AclTables>,
}

pub struct AclFiles {
    home: PathBuf,
    default_file: PathBuf,
    loaded: RwLock<Loaded>,
    /// Serialises admin writes with each other and with reloads.
    write_lock: Mutex<()>,
}

/// An account as UPDATE_AND_CREATE_ACL_CONFIG gives it: absent fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub access_key: String,
    pub secret_key: Option<String>,
    pub white_remote_address: Option<String>,
    pub admin: Option<bool>,
    pub default_topic_perm: Option<String>,
    pub default_group_perm: Option<String>,
    pub topic_perms: Option<Vec<String>>,
    pub group_perms: Option<Vec<String>>,
}

fn io_error(path: &Path, source: std::io::Error) -> AclFileError {
    AclFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl AclFiles {
    /// Reads the files under `home` (RocketMQ's `ROCKETMQ_HOME`).
    pub fn open(home: &Path) -> Result<AclFiles, AclFileError> {
        let default_file = home.join("conf").join("plain_acl.yml");
        if !default_file.exists() {
            if let Some(dir) = default_file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
            }
            std::fs::write(&default_file, PlainAclFile::default().to_yaml())
                .map_err(|e| io_error(&default_file, e))?;
        }
        let files = read_all(home, &default_file)?;
        let tables = Arc::new(AclTables::build(files.iter().map(|(_, f, _)| f)));
        Ok(AclFiles {
            home: home.to_path_buf(),
            default_file,
            loaded: RwLock::new(Loaded { files, tables }),
            write_lock: Mutex::new(()),
        })
    }

    pub fn tables(&self) -> Arc<AclTables> {
        Arc::clone(&self.loaded.read().tables)
    }

    /// Reloads every file when one was added, removed or modified since the last load.
    pub fn reload_if_changed(&self) {
        let _writing = self.write_lock.lock();
        let paths = list_files(&self.home, &self.default_file);
        let unchanged = {
            let loaded = self.loaded.read();
            loaded.files.len() == paths.len()
                && loaded
                    .files
                    .iter()
                    .zip(&paths)
                    .all(|((path, _, mtime), now)| path == now && *mtime == modified(now))
        };
        if unchanged {
            return;
        }
        match read_all(&self.home, &self.default_file) {
            Ok(files) => {
                let tables = Arc::new(AclTables::build(files.iter().map(|(_, f, _)| f)));
                *self.loaded.write() = Loaded { files, tables };
                tracing::info!("ACL files reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "ACL files changed but cannot be used; the rules in force stay");
            }
        }
    }

    /// Looks for changes every [`WATCH_INTERVAL`] until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let files = Arc::clone(&self);
            let _ = tokio::task::spawn_blocking(move || files.reload_if_changed()).await;
        }
    }

    /// The default file's version and every file's (GET_BROKER_CLUSTER_ACL_INFO).
    pub fn versions(&self) -> (DataVersion, Vec<(String, DataVersion)>) {
        let loaded = self.loaded.read();
        let default = loaded
            .files
            .iter()
            .find(|(path, _, _)| *path == self.default_file)
            .map(|(_, f, _)| f.data_version)
            .unwrap_or_default();
        let all = loaded
            .files
            .iter()
            .map(|(path, f, _)| (path.display().to_string(), f.data_version))
            .collect();
        (default, all)
    }

    /// Creates the account, or changes the fields `update` gives of an existing one (in the
    /// file that holds it).
    pub fn update_account(&self, update: AccountUpdate) -> Result<(), String> {
        let entries = update.topic_perms.iter().flatten();
        for entry in entries.chain(update.group_perms.iter().flatten()) {
            check_entry(entry)?;
        }
        for p in [&update.default_topic_perm, &update.default_group_perm]
            .into_iter()
            .flatten()
        {
            if !perm::is_valid_name(p) {
                return Err(format!(
                    "`{p}` is not a permission: use DENY, PUB, SUB or PUB|SUB"
                ));
            }
        }
        if let Some(address) = &update.white_remote_address {
            AddressPattern::parse(address)?;
        }
        self.change(|files, default_file| {
            let holder = files
                .iter_mut()
                .find(|(_, f, _)| f.accounts.iter().any(|a| a.access_key == update.access_key));
            let (path, file) = match holder {
                Some((path, file, _)) => (path.clone(), file),
                None => {
                    let (path, file, _) = files
                        .iter_mut()
                        .find(|(p, _, _)| p == default_file)
                        .ok_or("the default ACL file is not loaded")?;
                    file.accounts.push(Account {
                        access_key: update.access_key.clone(),
                        secret_key: String::new(),
                        white_remote_address: None,
                        admin: false,
                        default_topic_perm: None,
                        default_group_perm: None,
                        topic_perms: Vec::new(),
                        group_perms: Vec::new(),
                    });
                    (path.clone(), file)
                }
            };
            let Some(account) = file
                .accounts
                .iter_mut()
                .find(|a| a.access_key == update.access_key)
            else {
                return Err("the account vanished while being updated".into());
            };
            let update = update.clone();
            if let Some(secret) = update.secret_key.filter(|s| !s.is_empty()) {
                account.secret_key = secret;
            }
            if let Some(address) = update.white_remote_address.filter(|s| !s.is_empty()) {
                account.white_remote_address = Some(address);
            }
            if let Some(admin) = update.admin {
                account.admin = admin;
            }
            if let Some(p) = update.default_topic_perm.filter(|s| !s.is_empty()) {
                account.default_topic_perm = Some(p);
            }
            if let Some(p) = update.default_group_perm.filter(|s| !s.is_empty()) {
                account.default_group_perm = Some(p);
            }
            if let Some(entries) = update.topic_perms {
                account.topic_perms = entries;
            }
            if let Some(entries) = update.group_perms {
                account.group_perms = entries;
            }
            if account.secret_key.len() < MIN_KEY_LEN || account.access_key.len() < MIN_KEY_LEN {
                return Err(format!(
                    "accessKey and secretKey must be longer than {} characters",
                    MIN_KEY_LEN - 1
                ));
            }
            account.validate().map_err(|e| e.to_string())?;
            Ok(path)
        })
    }

    pub fn delete_account(&self, access_key: &str) -> Result<(), String> {
        self.change(|files, _| {
            for (path, file, _) in files.iter_mut() {
                let before = file.accounts.len();
                file.accounts.retain(|a| a.access_key != access_key);
                if file.accounts.len() != before {
                    return Ok(path.clone());
                }
            }
            Err(format!("no account with accessKey {access_key}"))
        })
    }

    /// Replaces the global whitelist of `file` (the default file when `None`), which must be
    /// one of the loaded files.
    pub fn update_global_white(
        &self,
        addresses: Vec<String>,
        file: Option<&str>,
    ) -> Result<(), String> {
        for address in &addresses {
            AddressPattern::parse(address)?;
        }
        self.change(|files, default_file| {
            let target = match file.filter(|f| !f.trim().is_empty()) {
                Some(f) => PathBuf::from(f.trim()),
                None => default_file.to_path_buf(),
            };
            let (path, file, _) =
                files
                    .iter_mut()
                    .find(|(p, _, _)| *p == target)
                    .ok_or_else(|| {
                        format!("{} is not one of this broker's ACL files", target.display())
                    })?;
            file.global_white_remote_addresses = addresses.clone();
            Ok(path.clone())
        })
    }

    /// Applies `edit` to a copy of the files; the file it names is written (its version
    /// bumped) and the tables rebuilt. Nothing changes when `edit` fails.
    fn change(
        &self,
        edit: impl FnOnce(
            &mut Vec<(PathBuf, PlainAclFile, Option<SystemTime>)>,
            &Path,
        ) -> Result<PathBuf, String>,
    ) -> Result<(), String> {
        let _writing = self.write_lock.lock();
        let mut files = self.loaded.read().files.clone();
        let changed = edit(&mut files, &self.default_file)?;
        let Some((path, file, mtime)) = files.iter_mut().find(|(p, _, _)| *p == changed) else {
            return Err("the changed file is not loaded".into());
        };
        file.data_version = DataVersion {
            counter: file.data_version.counter + 1,
            timestamp: now_ms(),
        };
        write_atomically(path, &file.to_yaml()).map_err(|e| e.to_string())?;
        *mtime = modified(path);
        let tables = Arc::new(AclTables::build(files.iter().map(|(_, f, _)| f)));
        *self.loaded.write() = Loaded { files, tables };
        Ok(())
    }
}

fn check_entry(entry: &str) -> Result<(), String> {
    let valid = entry
        .split_once('=')
        .is_some_and(|(name, p)| !name.trim().is_empty() && perm::is_valid_name(p));
    if !valid {
        return Err(format!(
            "`{entry}` is not a resource permission: use name=DENY, name=PUB, name=SUB or name=PUB|SUB"
        ));
    }
    resource_entry(entry).map(|_| ()).map_err(|e| e.to_string())
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("yml.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The default file first, then `conf/acl/**.{yml,yaml}` in name order.
fn list_files(home: &Path, default_file: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![home.join("conf").join("acl")];
    // Bounded: at most MAX_FILES files, and each directory is visited once.
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml")
                && found.len() < MAX_FILES
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found.retain(|p| p != default_file);
    let mut files = vec![default_file.to_path_buf()];
    files.extend(found);
    files
}

fn read_all(
    home: &Path,
    default_file: &Path,
) -> Result<Vec<(PathBuf, PlainAclFile, Option<SystemTime>)>, AclFileError> {
    list_files(home, default_file)
        .into_iter()
        .map(|path| {
            let mtime = modified(&path);
            let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
            let file = PlainAclFile::parse(&text).map_err(|source| AclFileError::Bad {
                path: path.display().to_string(),
                source,
            })?;
            Ok((path, file, mtime))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_changes_are_written_and_a_bad_edit_keeps_the_rules() {
        let home = tempfile::tempdir().unwrap();
        let files = AclFiles::open(home.path()).unwrap();
        files
            .update_account(AccountUpdate {
                access_key: "newAccount".into(),
                secret_key: Some("newSecret".into()),
                topic_perms: Some(vec!["T=PUB".into()]),
                ..AccountUpdate::default()
            })
            .unwrap();
        let written = std::fs::read_to_string(home.path().join("conf/plain_acl.yml")).unwrap();
        let parsed = PlainAclFile::parse(&written).unwrap();
        assert_eq!(parsed.accounts[0].access_key, "newAccount");
        assert_eq!(parsed.data_version.counter, 1);
        assert!(files
            .update_account(AccountUpdate {
                access_key: "newAccount".into(),
                topic_perms: Some(vec!["T=WRITE".into()]),
                ..AccountUpdate::default()
            })
            .is_err());
        assert!(files
            .update_account(AccountUpdate {
                access_key: "short".into(),
                secret_key: Some("short".into()),
                ..AccountUpdate::default()
            })
            .is_err());
        files
            .update_global_white(vec!["10.1.*.*".into()], None)
            .unwrap();
        assert_eq!(files.versions().0.counter, 2);
        files.delete_account("newAccount").unwrap();
        assert!(files.delete_account("newAccount").is_err());

        // A hand edit that breaks the file is refused at reload; the rules stay.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(home.path().join("conf/plain_acl.yml"), "accounts: [broken").unwrap();
        files.reload_if_changed();
        assert_eq!(files.versions().0.counter, 3);
        // A file added under conf/acl/ is read at the next look.
        std::fs::create_dir_all(home.path().join("conf/acl")).unwrap();
        std::fs::write(
            home.path().join("conf/plain_acl.yml"),
            PlainAclFile::default().to_yaml(),
        )
        .unwrap();
        std::fs::write(
            home.path().join("conf/acl/team.yml"),
            "accounts:\n  - accessKey: teamAccount\n    secretKey: teamSecret\n",
        )
        .unwrap();
        files.reload_if_changed();
        assert_eq!(files.versions().1.len(), 2);
    }
}
