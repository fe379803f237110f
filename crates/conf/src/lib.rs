//! RocketMQ's `key=value` configuration files (`namesrv.conf`, `broker.conf`): read once,
//! each value turned into its type where the key is known, with the line it came from in
//! every error. The name server, the broker and the store each own their keys.
//!
//! Java reads them with `java.util.Properties`; operators write them by hand. This reader
//! accepts what they write in practice: `#` and `!` comments, blank lines, `key=value` or
//! `key: value` or `key value`, surrounding whitespace. Line continuations and unicode escapes
//! are not supported (no RocketMQ config needs them); such lines are kept verbatim.
//! Later occurrences of a key override earlier ones, as with `Properties.load`.

mod metrics_exporter;
mod server_limits;
pub use metrics_exporter::{ExporterType, MetricsExporter};
pub use server_limits::ServerLimits;

use std::path::Path;

/// One `key=value` setting and the line it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PropertiesError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is larger than {max_bytes} bytes")]
    TooLarge { path: String, max_bytes: u64 },
}

/// Config files are small; refusing huge ones keeps a wrong path (a log, a device) from
/// being slurped into memory.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// Reads and parses a config file.
pub fn read_file(path: &Path) -> Result<Vec<Setting>, PropertiesError> {
    let shown = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|source| PropertiesError::Read {
        path: shown.clone(),
        source,
    })?;
    if metadata.len() > MAX_CONFIG_FILE_BYTES {
        return Err(PropertiesError::TooLarge {
            path: shown,
            max_bytes: MAX_CONFIG_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| PropertiesError::Read {
        path: shown,
        source,
    })?;
    Ok(parse(&String::from_utf8_lossy(&bytes)))
}

/// Parses the text of a config file.
pub fn parse(text: &str) -> Vec<Setting> {
    let mut settings = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split_at = line.find(['=', ':', ' ', '\t']);
        let (key, value) = match split_at {
            Some(at) => {
                let key = &line[..at];
                let rest = line[at..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                (key.trim(), rest.trim())
            }
            None => (line, ""),
        };
        settings.push(Setting {
            key: key.to_string(),
            value: value.to_string(),
            line: number + 1,
        });
    }
    settings
}

/// Why a setting's value is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: `{key}={value}`: {reason}")]
pub struct BadSetting {
    pub key: String,
    pub value: String,
    pub line: usize,
    pub reason: String,
}

impl Setting {
    pub fn bad(&self, reason: impl Into<String>) -> BadSetting {
        BadSetting {
            key: self.key.clone(),
            value: self.value.clone(),
            line: self.line,
            reason: reason.into(),
        }
    }

    pub fn parse_u64(&self) -> Result<u64, BadSetting> {
        self.value
            .parse()
            .map_err(|_| self.bad("expected a non-negative integer"))
    }

    pub fn parse_i64(&self) -> Result<i64, BadSetting> {
        self.value
            .parse()
            .map_err(|_| self.bad("expected an integer"))
    }

    pub fn parse_u16(&self) -> Result<u16, BadSetting> {
        self.value
            .parse()
            .map_err(|_| self.bad("expected an integer between 0 and 65535"))
    }

    pub fn parse_u32(&self) -> Result<u32, BadSetting> {
        self.value
            .parse()
            .map_err(|_| self.bad("expected a non-negative 32-bit integer"))
    }

    /// Java's `Boolean.parseBoolean` treats anything but "true" as false; an operator who
    /// writes `yes` or `1` almost certainly meant true, so those are rejected instead of
    /// silently read as false.
    pub fn parse_bool(&self) -> Result<bool, BadSetting> {
        match self.value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.bad("expected true or false")),
        }
    }

    /// An integer within `min..=max`.
    pub fn in_range(&self, min: u64, max: u64) -> Result<u64, BadSetting> {
        let v = self.parse_u64()?;
        if v < min || v > max {
            return Err(self.bad(format!("must be between {min} and {max}")));
        }
        Ok(v)
    }

    /// The value, which must not be empty.
    pub fn non_empty(&self) -> Result<String, BadSetting> {
        if self.value.is_empty() {
            Err(self.bad("must not be empty"))
        } else {
            Ok(self.value.clone())
        }
    }

    pub fn parse_ratio(&self) -> Result<f64, BadSetting> {
        match self.value.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
            _ => Err(self.bad("expected a number between 0 and 1")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_operators_write() {
        let text = "# comment\n! also comment\n\nlistenPort=9876\n  brokerName : broker-a \nflag true\nempty=\nbare\n";
        let got: Vec<(String, String)> =
            parse(text).into_iter().map(|s| (s.key, s.value)).collect();
        let want = [
            ("listenPort", "9876"),
            ("brokerName", "broker-a"),
            ("flag", "true"),
            ("empty", ""),
            ("bare", ""),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn values_keep_separators_after_the_first() {
        let settings = parse("dLegerPeers=n0-127.0.0.1:40911;n1-127.0.0.1:40912\n");
        assert_eq!(settings[0].value, "n0-127.0.0.1:40911;n1-127.0.0.1:40912");
    }

    #[test]
    fn bad_values_name_the_line() {
        let settings = parse("a=1\nlistenPort=nope\n");
        let err = settings[1].parse_u16().unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("listenPort=nope"));
        assert!(settings[0].parse_bool().is_err());
    }

    #[test]
    fn oversize_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.conf");
        std::fs::write(&path, vec![b'#'; MAX_CONFIG_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            read_file(&path),
            Err(PropertiesError::TooLarge { .. })
        ));
    }
}
