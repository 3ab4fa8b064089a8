//! Who runs shepherd, where `--actor` does not say.

/// Who runs this command, for what a person does on the local tracker (`--actor` unset):
/// `$USER`, else `$LOGNAME`, else the name of the process's user in `/etc/passwd`, else
/// `uid N` — never a name that is not theirs.
pub(super) fn login_name() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Some(name) = std::env::var(var).ok().filter(|n| !n.trim().is_empty()) {
            return name;
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"));
    let Some(uid) = uid.and_then(|l| l.split_whitespace().next()) else {
        return "unknown user".to_string();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)? == uid && !name.is_empty()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}
