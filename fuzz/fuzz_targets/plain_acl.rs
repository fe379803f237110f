//! An operator's plain_acl.yml (ACL 1.0): any text gives accounts or a clear error, and
//! what parses writes back to the same accounts.
#![no_main]

use broker::acl::plain::PlainAclFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(file) = PlainAclFile::parse(&text) {
        let again = PlainAclFile::parse(&file.to_yaml());
        assert_eq!(again.as_ref().ok(), Some(&file), "{text:?}");
    }
});
