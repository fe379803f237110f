//! ACL 1.0 permissions: RocketMQ's bits (DENY 1, ANY 2, PUB 4, SUB 8), their names in
//! `plain_acl.yml` (`DENY`, `PUB`, `SUB`, `PUB|SUB`), and the check of a needed permission
//! against an owned one.

pub const DENY: u8 = 1;
pub const ANY: u8 = 2;
pub const PUB: u8 = 4;
pub const SUB: u8 = 8;

/// A permission as `plain_acl.yml` spells it; anything else (absent, misspelt, lower case)
/// is DENY, as in RocketMQ.
pub fn parse(text: Option<&str>) -> u8 {
    match text.map(str::trim) {
        Some("PUB") => PUB,
        Some("SUB") => SUB,
        Some("PUB|SUB") | Some("SUB|PUB") => PUB | SUB,
        _ => DENY,
    }
}

/// Whether `text` names a permission exactly (admin updates refuse the rest rather than
/// store a DENY nobody asked for).
pub fn is_valid_name(text: &str) -> bool {
    matches!(text.trim(), "PUB" | "SUB" | "PUB|SUB" | "SUB|PUB" | "DENY")
}

pub fn name(perm: u8) -> &'static str {
    match perm {
        PUB => "PUB",
        SUB => "SUB",
        p if p == PUB | SUB => "PUB|SUB",
        _ => "DENY",
    }
}

/// Whether `owned` grants `needed`.
pub fn allows(needed: u8, owned: u8) -> bool {
    if owned & DENY != 0 {
        return false;
    }
    if needed & ANY != 0 {
        return owned & (PUB | SUB) != 0;
    }
    needed & owned != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_checks() {
        assert_eq!(parse(Some(" PUB|SUB ")), PUB | SUB);
        assert_eq!(parse(Some("pub")), DENY);
        assert_eq!(parse(Some("PUB | SUB")), DENY);
        assert_eq!(parse(None), DENY);
        assert!(allows(PUB, PUB | SUB));
        assert!(!allows(PUB, SUB));
        assert!(!allows(SUB, DENY));
        assert!(allows(ANY, SUB));
        assert!(!allows(ANY, DENY));
        assert_eq!(name(parse(Some("SUB|PUB"))), "PUB|SUB");
    }
}
