//! What a hostile server or file can put in front of kayle-sync's output, and what is shown.

use proptest::prelude::*;
use pulldown_cmark::{Event, Options, Parser, Tag};

use super::*;

const OSC8_LINK: &str = "\u{1b}]8;;http://evil\u{7}click\u{1b}]8;;\u{7}";

#[test]
fn a_signing_secret_is_scrubbed_even_glued_to_other_letters() {
    let secret = "whsec_0123456789abcdefghijklmnopqrstuv";
    for text in [
        format!("your secret is {secret}"),
        format!("BAD{secret}: no"),
        format!("x_{secret}y"),
    ] {
        let clean = scrub(&text, &[]);
        assert!(!clean.contains("0123456789abcdef"), "{clean}");
        assert!(clean.contains(REDACTED), "{clean}");
    }
}

#[test]
fn only_a_secret_the_scrubber_takes_out_by_its_shape_is_recognized() {
    for secret in ["whsec_0123456789abcdefghijklmnopqrstuv", "whsec_A-b_9"] {
        assert!(is_recognized_signing_secret(secret), "{secret}");
        assert_eq!(scrub(&format!("<{secret}>"), &[]), format!("<{REDACTED}>"));
    }
    for secret in [
        "Zq9xPLmN4rT7vW2yB6cD8fG1hJ3kL5mN",
        "whsec_",
        "whsec_abc def",
        "whsec_abc\u{1b}[31m",
        " whsec_abc",
        "whsec_abc.def",
    ] {
        assert!(!is_recognized_signing_secret(secret), "{secret:?}");
    }
}

#[test]
fn control_characters_are_escaped_visibly_not_dropped() {
    let text = format!("a{OSC8_LINK}\rb\nc\td\u{7f}e\u{9b}f");
    assert_eq!(
        printable(&text),
        "a\\u{1b}]8;;http://evil\\u{7}click\\u{1b}]8;;\\u{7}\\rb\\nc\\td\\u{7f}e\\u{9b}f"
    );
    assert_eq!(
        printable("left\u{202e}txt.exe\u{2028}"),
        "left\\u{202e}txt.exe\\u{2028}"
    );
    assert!(matches!(printable("plain — text"), Cow::Borrowed(_)));
    assert_eq!(printable_lines("one\r\ntwo\n"), "one\\r\ntwo\n");
}

#[test]
fn known_values_are_scrubbed_in_every_form() {
    let token = "secret-token-1234";
    assert_eq!(
        scrub(&format!("key {token} is invalid"), &[token]),
        "key (redacted) is invalid"
    );
    // The client trims the token it sends; a padded one is still found.
    assert_eq!(
        scrub("key secret-token-1234", &[" secret-token-1234\n"]),
        "key (redacted)"
    );
    let pem = "-----BEGIN CUSTOM-----\nAAAAAAAAAAAAAAAAAAAAAAAA\nBBBBBBBBBBBBBBBBBBBBBBBB\n-----END CUSTOM-----\n";
    let echoed = serde_json::json!({ "data": { "K": pem } }).to_string();
    let scrubbed = scrub(&echoed, &[pem]);
    assert!(!scrubbed.contains("AAAAAAAA"), "{scrubbed}");
    assert!(scrubbed.contains("(redacted)"), "{scrubbed}");
    let reflowed = scrub("got AAAAAAAAAAAAAAAAAAAAAAAA then", &[pem]);
    assert_eq!(reflowed, "got (redacted) then");
    // Too short to be a credential: left alone rather than garbling the message.
    assert_eq!(scrub("root cause", &["root"]), "root cause");
}

#[test]
fn credential_shapes_are_scrubbed_without_being_known() {
    let cases = [
        (
            "Authorization: Bearer abc.def-123",
            "Authorization: (redacted)",
        ),
        (
            r#"{"headers":{"authorization":"Bearer abc"},"x":1}"#,
            r#"{"headers":{"authorization":"(redacted)"},"x":1}"#,
        ),
        ("sent bearer eyJhbGciOi.x.y ok", "sent bearer (redacted) ok"),
        ("got Basic dXNlcjpwdw== back", "got Basic (redacted) back"),
        (
            "X-Vault-Token: s.abcdef\nnext",
            "X-Vault-Token: (redacted)\nnext",
        ),
        (
            r#""x-vault-token":"hvs.ABC""#,
            r#""x-vault-token":"(redacted)""#,
        ),
        (
            "secret whsec_abc123, key kk_live_9",
            "secret (redacted), key (redacted)",
        ),
        ("token hvs.CAESIabc-_x!", "token (redacted)!"),
        (
            "Credential=AKID/x, SignedHeaders=host, Signature=9f0e",
            "Credential=AKID/x, SignedHeaders=host, Signature=(redacted)",
        ),
        (
            "see http://user:p%40ss@vault:8200/v1 and https://host/a@b",
            "see http://***@vault:8200/v1 and https://host/a@b",
        ),
    ];
    // Prose is not a credential.
    let prose = [
        "Bearer token missing",
        "Basic authentication is required",
        "the X-Vault-Token header is not set",
        "Authorization failed",
        "stack_kk_x lookk_y",
    ];
    assert_scrubbed(&cases, &prose);
}

/// Each of `cases` scrubs to what it pairs with, once and for all (scrubbing again changes
/// nothing); each of `prose` is left as it is.
#[track_caller]
fn assert_scrubbed(cases: &[(&str, &str)], prose: &[&str]) {
    for &(text, wanted) in cases {
        assert_eq!(scrub(text, &[]), wanted, "{text}");
        assert_eq!(scrub(wanted, &[]), wanted, "idempotent: {wanted}");
    }
    for &text in prose {
        assert_eq!(scrub(text, &[]), text);
    }
}

#[test]
fn common_credential_shapes_are_scrubbed() {
    let cases = [
        // GitHub tokens: classic, OAuth, app, and fine-grained.
        (
            "ghp ghp_6EfmMNw4D4LmwBH8DtOKJ0M2BeGwAheqhTBX end",
            "ghp (redacted) end",
        ),
        ("gho_16C7e42F292c6912E7710c838347Ae178B4a!", "(redacted)!"),
        ("x ghs_abcdefghijklmnopqrstuvwxyz0123456789", "x (redacted)"),
        (
            "ghpat github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJ0123456789abcdefghijklmnopq",
            "ghpat (redacted)",
        ),
        // AWS access key ids and secret access keys.
        ("akia AKIAIOSFODNN7EXAMPLE,", "akia (redacted),"),
        ("id=ASIA1YC952RZ9UY2Q5WL", "id=(redacted)"),
        (
            "awssecret 1RWoECqDNDmpnT6clg0JxkzVeQjSPpKHV0M/3Vka\n",
            "awssecret (redacted)\n",
        ),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "(redacted)"),
        // A JWT.
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.I6uEF7MMhrmZ0oQU3NGoegIF6Y0y716wwiM8dl2MMGZ ok",
            "jwt (redacted) ok",
        ),
        // Stripe and Slack.
        ("sk sk_live_rT0plas3ZBwDm1eBIhmW9kpW", "sk (redacted)"),
        ("sk_test_4eC39HqLyjWDarjtT1zdp7dc.", "(redacted)."),
        (
            "slack xoxb-862367499299-843486441839-zhkRFmUL4SvcSMmkFdDvdT8m",
            "slack (redacted)",
        ),
        ("xoxp-1234-5678-abcdefgh", "(redacted)"),
        // Key-value forms, as a URL query, an environment line, JSON and a flag.
        ("password=hunter2 then", "password=(redacted) then"),
        (
            "db?user=a&password=hunter2&x=1",
            "db?user=a&password=(redacted)&x=1",
        ),
        ("DB_PASSWORD = hunter2", "DB_PASSWORD = (redacted)"),
        (
            "AWS_SESSION_TOKEN=FwoGZXIvYXdzSESSION",
            "AWS_SESSION_TOKEN=(redacted)",
        ),
        (
            "client_secret=abc; api_key=k-1",
            "client_secret=(redacted); api_key=(redacted)",
        ),
        (
            r#"{"token": "t0k", "n": 1}"#,
            r#"{"token": "(redacted)", "n": 1}"#,
        ),
        (r#"{\"secret\":\"s3\"}"#, r#"{\"secret\":\"(redacted)\"}"#),
        ("--api-key=abcd1234", "--api-key=(redacted)"),
    ];
    // Near misses are left alone: too short, lowercase hex (a commit), or prose.
    let prose = [
        "ghp_short",
        "see AKIA docs",
        "commit 0123456789abcdef0123456789abcdef01234567",
        "eyJ is how base64 JSON begins",
        "sk_live_ keys",
        "the password was wrong",
        "token: expired",
        "tokens=5",
        "PWD=/home/runner",
    ];
    assert_scrubbed(&cases, &prose);
}

#[test]
fn credentials_in_the_environment_are_known_by_their_names() {
    let vars = [
        ("GITHUB_TOKEN", "gh-token-value-1"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret-value-2"),
        ("MY_CLIENT_SECRET", "client-secret-3"),
        ("DB_PASSWORD", "db-password-4"),
        ("GOOGLE_APPLICATION_CREDENTIALS_JSON", "gcp-credential-5"),
        ("KAYLE_API_KEY", "kayle-api-key-6"),
        // Not credentials: the names say so, or the value is too short to be one.
        ("HOME", "/home/runner/work"),
        ("AWS_REGION", "us-east-1-long"),
        ("SHORT_TOKEN", "abc1234"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/token"),
        ("KEYBOARD_LAYOUT", "us-international"),
    ];
    let values = environment::credential_values(
        vars.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let mut wanted: Vec<&str> = vars[..6].iter().map(|(_, v)| *v).collect();
    wanted.sort_unstable();
    let mut got: Vec<&str> = values.iter().map(String::as_str).collect();
    got.sort_unstable();
    assert_eq!(got, wanted);
}

#[test]
fn private_keys_are_scrubbed_whole_or_cut_short() {
    let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nabc=\n-----END PRIVATE KEY-----";
    assert_eq!(scrub(&format!("a {key} b"), &[]), "a (redacted) b");
    let rsa = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEvQIBADANBgkq\\nhkiG9w0";
    assert_eq!(
        scrub(&format!(r#"{{"v":"{rsa}"}}"#), &[]),
        r#"{"v":"(redacted)"}"#
    );
    // Cut short, the key ends where its base64 lines do: the next line is kept whole.
    let cut =
        "pem -----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0=\ndb_url https://x/\nnext";
    assert_eq!(scrub(cut, &[]), "pem (redacted)\ndb_url https://x/\nnext");
    let header_only = "pem -----BEGIN RSA PRIVATE KEY-----\n    db_url x";
    assert_eq!(scrub(header_only, &[]), "pem (redacted)\n    db_url x");
    let public = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh\n-----END PUBLIC KEY-----";
    assert_eq!(scrub(public, &[]), public);
}

#[test]
fn a_urls_credentials_are_known_as_sent_and_found_encoded() {
    assert_eq!(
        url_credentials("https://us%40er:p%3Ass@host/"),
        vec!["p:ss".to_owned(), "us@er:p:ss".to_owned()]
    );
    assert!(url_credentials("https://host/").is_empty());
    let known = url_credentials("http://kayle-user:pw-in-url-42@host");
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    assert_eq!(
        scrub("key a2F5bGUtdXNlcjpwdy1pbi11cmwtNDI= refused", &known),
        "key (redacted) refused"
    );
}

#[test]
fn url_userinfo_is_hidden() {
    assert_eq!(
        scrub_url("https://user:pass@api.example.com/v1?x=1"),
        "https://***@api.example.com/v1?x=1"
    );
    assert_eq!(scrub_url("https://token@host"), "https://***@host");
    assert_eq!(scrub_url("http://127.0.0.1:8200"), "http://127.0.0.1:8200");
    assert_eq!(scrub_url("http://host/\u{1b}[2J"), "http://host/\\u{1b}[2J");
}

#[test]
fn markdown_text_is_escaped_and_code_spans_are_fenced_longer() {
    assert_eq!(
        markdown_text("![x](http://evil/i.png) <b> a|b"),
        "\\!\\[x\\](http://evil/i.png) \\<b\\> a\\|b"
    );
    assert_eq!(code_span("whe_1"), "`whe_1`");
    assert_eq!(code_span("a``b"), "```a``b```");
    assert_eq!(code_span("`x"), "`` `x ``");
    assert_eq!(code_span(""), "` `");
    assert_eq!(code_span("a\nb"), "`a\\nb`");
}

/// The inline events of `markdown` as a GitHub-flavoured reader sees them.
fn events(markdown: &str) -> Vec<Event<'_>> {
    Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .collect()
}

fn hostile() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z `\\[\\]()!<>|*_~&#$\\\\:/.\u{1b}\r\n]{0,24}").unwrap()
}

proptest! {
    #[test]
    fn cleaning_leaves_no_control_character_and_is_idempotent(text in hostile()) {
        let once = safe_line(&text);
        prop_assert!(!once.chars().any(char::is_control), "{once:?}");
        prop_assert_eq!(safe_line(&once), once.clone());
        prop_assert_eq!(untrusted(&once, &["whsec_abcdef"]), once);
    }

    #[test]
    fn a_code_span_holds_exactly_its_text(text in hostile()) {
        let markdown = format!("before {} after", code_span(&text));
        let code: Vec<String> = events(&markdown)
            .into_iter()
            .filter_map(|event| match event {
                Event::Code(code) => Some(code.into_string()),
                Event::Start(Tag::Link { .. } | Tag::Image { .. }) | Event::Html(_)
                | Event::InlineHtml(_) => Some("markup".to_owned()),
                _ => None,
            })
            .collect();
        let clean = safe_line(&text);
        let wanted = if clean.is_empty() { " ".to_owned() } else { clean };
        prop_assert_eq!(code, vec![wanted], "{}", markdown);
    }

    #[test]
    fn markdown_text_reads_back_as_its_text(text in hostile()) {
        let markdown = format!("x {} x", markdown_text(&text));
        let mut read = String::new();
        for event in events(&markdown) {
            match event {
                Event::Text(text) => read.push_str(&text),
                Event::Start(Tag::Paragraph) | Event::End(_) => {}
                other => prop_assert!(false, "{other:?} in {markdown}"),
            }
        }
        prop_assert_eq!(read, format!("x {} x", safe_line(&text)));
    }
}
