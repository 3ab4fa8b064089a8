//! What a message may show of a URL. A URL given to shepherd (`--gitlab-url`,
//! `--github-url`, `--prometheus-url`, `--state`, the Unleash `[flags] url`, any other) may
//! carry user info, `user:password@`, and a PostgreSQL URL a `password=` parameter. Every
//! message, log line and link shepherd writes shows such a URL through `url`, which leaves
//! the user info out and the password parameter as `***`. (Tokens, which come from the
//! environment, are taken out of messages by `tracker::retry::redact`.)

/// `text`, a URL, as messages show it: without user info (`https://bot:secret@host/x` →
/// `https://host/x`) and with the value of every `password=` query parameter as `***`.
/// The rest is kept exactly as written, so that a URL that does not parse (a bad port, no
/// scheme) is still shown, and still without its user info.
pub fn url(text: &str) -> String {
    let without_user = without_user_info(text);
    let (without_user, fragment) = without_user
        .find('#')
        .map_or((without_user.as_str(), ""), |f| without_user.split_at(f));
    let shown = match without_user.find('?') {
        Some(q) => {
            let (base, query) = without_user.split_at(q + 1);
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{base}{}", pairs.join("&"))
        }
        None => without_user.to_string(),
    };
    format!("{shown}{fragment}")
}

/// `text` without its user info. A URL that parses with an authority (`scheme://…`) loses
/// what comes before the last `@` of the authority (up to the first `/`, `?` or `#`), as
/// the parser and reqwest read it. Anything else that holds an `@` (a password with a `/`
/// or `?` that breaks the URL, no scheme) loses everything up to its last `@`: more than
/// the user info, perhaps, but never less.
fn without_user_info(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let rest = &text[start..];
    let parses = start > 0 && url::Url::parse(text).is_ok();
    let end = if parses {
        rest.find(['/', '?', '#']).unwrap_or(rest.len())
    } else {
        rest.len()
    };
    match rest[..end].rfind('@') {
        Some(at) => format!("{}{}", &text[..start], &rest[at + 1..]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_and_passwords_never_show() {
        for (given, shown) in [
            (
                "https://bot:s3cret@gitlab.example.com",
                "https://gitlab.example.com",
            ),
            ("http://user:PASS@127.0.0.1:9/api", "http://127.0.0.1:9/api"),
            ("https://TOKEN@api.github.com", "https://api.github.com"),
            ("postgres://u:secret@h:5432/db", "postgres://h:5432/db"),
            ("postgres://u@h/db", "postgres://h/db"),
            (
                "postgres://u:secret@h:notaport/db",
                "postgres://h:notaport/db",
            ),
            (
                "postgres://h/db?user=u&password=secret",
                "postgres://h/db?user=u&password=***",
            ),
            (
                "postgres://h/db?PASSWORD=secret&x=1",
                "postgres://h/db?PASSWORD=***&x=1",
            ),
            ("mysql://u:p@ss@h/db", "mysql://h/db"),
            ("user:PASS@host", "host"),
            ("http://u:p@h?password=q#f", "http://h?password=***#f"),
            // A password that breaks the URL is not shown either.
            ("http://u:p?ss@h/x", "http://h/x"),
            ("http://u:pa/ss@h/x", "http://h/x"),
            ("http://u:p#ss@h", "http://h"),
            (
                "postgres://u:pa/ss@db:notaport/x",
                "postgres://db:notaport/x",
            ),
            // No user info: exactly as written.
            (
                "https://gitlab.example.com/gitlab/",
                "https://gitlab.example.com/gitlab/",
            ),
            ("http://h/a@b", "http://h/a@b"),
            ("sqlite:state.db", "sqlite:state.db"),
            ("", ""),
        ] {
            assert_eq!(url(given), shown, "{given}");
        }
    }
}
