//! The API's rules for endpoint fields, checked offline, as pure functions.

use super::reader::utf16_len;

/// The longest URL the API accepts.
pub const MAX_URL_CHARS: usize = 2048;
/// The longest display name the API accepts, in UTF-16 code units after trimming.
pub const MAX_NAME_UNITS: usize = 120;
const FORBIDDEN_SUFFIXES: [&str; 6] = [
    ".local",
    ".localhost",
    ".localdomain",
    ".internal",
    ".lan",
    ".home.arpa",
];

/// A broken rule: what is wrong and, when there is one, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub message: String,
    pub hint: Option<String>,
}

fn broken(message: impl Into<String>, hint: Option<&str>) -> Broken {
    Broken {
        message: message.into(),
        hint: hint.map(str::to_owned),
    }
}

/// The URL meant by one whose scheme is mistyped (`htps//host/x`, `https:/host/x`,
/// `htps://host/x`) or left out (`host.example/x`): `https://host/x`.
fn scheme_typo(text: &str) -> Option<String> {
    let split = ["://", "//", ":/", ":"]
        .iter()
        .find_map(|separator| text.split_once(separator));
    let (target, rest) = match split {
        Some((scheme, rest))
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic()) =>
        {
            let scheme = scheme.to_ascii_lowercase();
            let target = super::reader::did_you_mean(&scheme, &["https", "http"])?;
            // Plain http only when it was spelt so; a misspelling means the usual https.
            (if scheme == "http" { target } else { "https" }, rest)
        }
        None if text
            .split('/')
            .next()
            .is_some_and(|host| host.contains('.')) =>
        {
            ("https", text)
        }
        _ => return None,
    };
    let meant = format!("{target}://{}", rest.trim_start_matches('/'));
    (meant != text && url::Url::parse(&meant).is_ok()).then_some(meant)
}

/// Checks a webhook URL the way the server does.
pub fn check_url(text: &str) -> Result<(), Broken> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(broken(
            format!("the URL is longer than {MAX_URL_CHARS} characters"),
            None,
        ));
    }
    if text.trim() != text {
        return Err(broken(
            "the URL starts or ends with whitespace",
            Some("the server stores the URL verbatim; remove the whitespace"),
        ));
    }
    let url = url::Url::parse(text).map_err(|err| match scheme_typo(text) {
        Some(meant) => Broken {
            message: "not a valid URL: it does not start with https://".to_owned(),
            hint: Some(format!("did you mean {meant}?")),
        },
        None => broken(format!("not a valid URL: {err}"), None),
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(broken(
            "the URL must not carry a user name or password",
            Some("authenticate deliveries with the signing secret instead"),
        ));
    }
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() && ip.octets() == [127, 0, 0, 1] => {
            "127.0.0.1".to_owned()
        }
        Some(url::Host::Ipv4(_)) => {
            return Err(broken(
                "IP address hosts are refused (127.0.0.1 excepted, for development)",
                Some("use a DNS name"),
            ));
        }
        Some(url::Host::Ipv6(_)) => {
            return Err(broken(
                "IPv6 address hosts are refused",
                Some("use a DNS name"),
            ));
        }
        None => return Err(broken("the URL has no host", None)),
    };
    let local = host == "localhost" || host == "127.0.0.1";
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        "http" => {
            return Err(broken(
                "http:// is allowed only for localhost and 127.0.0.1",
                Some("use https://"),
            ));
        }
        other => {
            return Err(Broken {
                message: format!("the scheme must be https, not `{other}`"),
                hint: scheme_typo(text).map(|meant| format!("did you mean {meant}?")),
            });
        }
    }
    if !local {
        if !host.contains('.') {
            return Err(broken(
                format!("the host `{host}` has no dot"),
                Some("use a fully qualified domain name"),
            ));
        }
        if let Some(suffix) = FORBIDDEN_SUFFIXES.iter().find(|s| host.ends_with(*s)) {
            return Err(broken(
                format!("hosts ending in `{suffix}` are refused"),
                Some("the server delivers only to public hosts"),
            ));
        }
    }
    Ok(())
}

/// Trims and checks a display name.
pub fn check_name(name: &str) -> Result<String, Broken> {
    let trimmed = name.trim();
    let units = utf16_len(trimmed);
    if units == 0 {
        return Err(broken(
            "the name is empty",
            Some("leave `name` out (or write `name: null`) for no name"),
        ));
    }
    if units > MAX_NAME_UNITS {
        return Err(broken(
            format!("the name is {units} UTF-16 units long; the limit is {MAX_NAME_UNITS}"),
            None,
        ));
    }
    Ok(trimmed.to_owned())
}

/// Trims and checks one label.
pub fn check_label(label: &str, prefix: &str) -> Result<String, Broken> {
    let trimmed = label.trim();
    let units = utf16_len(trimmed);
    if units == 0 {
        return Err(broken("the label is empty", None));
    }
    if units > crate::model::MAX_LABEL_UNITS {
        return Err(broken(
            format!(
                "the label is {units} UTF-16 units long; the limit is {}",
                crate::model::MAX_LABEL_UNITS
            ),
            None,
        ));
    }
    // The API compares labels ignoring case, so `KAYLE-SYNC:web` would clash with ours.
    let reserved = trimmed.to_lowercase().starts_with(&prefix.to_lowercase());
    if reserved {
        return Err(broken(
            format!("labels starting with `{prefix}` are reserved for kayle-sync"),
            Some(
                "kayle-sync adds its identity label itself; change `label_prefix` if you need this label",
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules_follow_the_server() {
        assert!(check_url("https://hooks.example.com/x").is_ok());
        assert!(check_url("http://localhost:3000/x").is_ok());
        assert!(check_url("http://127.0.0.1:3000/x").is_ok());
        assert!(check_url("http://hooks.example.com/x").is_err());
        assert!(check_url("https://10.0.0.1/x").is_err());
        assert!(check_url("https://[::1]/x").is_err());
        assert!(check_url("https://user:pw@hooks.example.com/").is_err());
        assert!(check_url("https://intranet/x").is_err());
        assert!(check_url("https://printer.local/x").is_err());
        assert!(check_url("https://a.home.arpa/x").is_err());
        assert!(check_url("ftp://hooks.example.com/x").is_err());
        assert!(check_url(&format!("https://hooks.example.com/{}", "a".repeat(2048))).is_err());
    }

    #[test]
    fn names_and_labels_count_utf16_after_trimming() {
        assert_eq!(check_name("  Hi  ").unwrap(), "Hi");
        assert!(check_name(&"😀".repeat(60)).is_ok());
        assert!(check_name(&"😀".repeat(61)).is_err());
        assert!(check_label(&"😀".repeat(21), "kayle-sync:").is_err());
        assert!(check_label("kayle-sync:x", "kayle-sync:").is_err());
    }
}
