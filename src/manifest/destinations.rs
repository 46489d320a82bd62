//! Where each secret lands, so that no two are written to one place: two sinks can name the
//! same destination (one file by two paths, one Vault secret, one AWS secret), and a secret
//! name written there twice would silently keep only the last value.

use super::code::Code;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::diagnostic::Diagnostic;
use crate::model::{self, DesiredEndpoint, Project, SinkConfig};

/// One place a secret is stored, as far as the configuration tells.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Destination {
    /// The entry `name` in a local file (a `dotenv` or `json` sink), its path resolved.
    File { path: PathBuf, name: String },
    /// The entry `name` of the KV v2 secret at `path`, `{name}` already replaced.
    Vault {
        address: String,
        mount: String,
        path: String,
        name: String,
    },
    /// The Secrets Manager secret `id` (prefix and name).
    Aws {
        region: Option<String>,
        endpoint_url: Option<String>,
        id: String,
    },
    /// Any other sink (a command, or one the project file could not declare): only the same
    /// sink and name are known to be the same place.
    Named { sink: String, name: String },
}

impl Destination {
    /// What two different sinks that share this destination have in common, in words. A file
    /// inside the config directory is shown the way the directory was given.
    fn shared(&self, project: Option<&Project>) -> String {
        match self {
            Destination::File { path, .. } => {
                let shown = project
                    .and_then(|p| Some(p.dir.join(path.strip_prefix(resolve(&p.dir)).ok()?)))
                    .unwrap_or_else(|| path.clone());
                format!("both write the file {}", shown.display())
            }
            Destination::Vault {
                address,
                mount,
                path,
                ..
            } => format!("both write the Vault secret {mount}/{path} at {address}"),
            Destination::Aws { id, .. } => format!("both write the AWS secret `{id}`"),
            Destination::Named { .. } => "they are the same sink".to_owned(),
        }
    }
}

/// Where `name` goes in the sink `sink` of `project`.
fn destination(project: Option<&Project>, sink: &str, name: &str) -> Destination {
    let named = || Destination::Named {
        sink: sink.to_owned(),
        name: name.to_owned(),
    };
    let Some((dir, config)) = project.and_then(|p| Some((&p.dir, p.sinks.get(sink)?))) else {
        return named();
    };
    match config {
        SinkConfig::Dotenv { path } | SinkConfig::Json { path } => Destination::File {
            path: resolve(&dir.join(path)),
            name: name.to_owned(),
        },
        // The same trimming as the vault sink does before it builds its URLs.
        SinkConfig::Vault {
            address,
            mount,
            path,
            ..
        } => Destination::Vault {
            address: normal_url(address),
            mount: mount.trim_matches('/').to_owned(),
            path: path.trim_matches('/').replace("{name}", name),
            name: name.to_owned(),
        },
        SinkConfig::AwsSecretsManager {
            region,
            endpoint_url,
            prefix,
        } => Destination::Aws {
            region: region.clone(),
            endpoint_url: endpoint_url.as_deref().map(normal_url),
            id: format!("{prefix}{name}"),
        },
        SinkConfig::Command { .. } => named(),
    }
}

/// A URL with its host lower-cased, default port and trailing `/` dropped.
fn normal_url(url: &str) -> String {
    let parsed = url::Url::parse(url).map_or_else(|_| url.to_owned(), String::from);
    parsed.trim_end_matches('/').to_owned()
}

/// `path` made absolute and free of `.` and `..`: its longest existing ancestor through the
/// file system (which resolves symbolic links), the rest, which does not exist yet, lexically.
///
/// A link to a file not written yet is followed too: writing through it creates its target.
pub fn resolve(path: &Path) -> PathBuf {
    resolve_within(path, 40)
}

/// [`resolve`], following at most `links` links that lead to nothing yet (a loop ends).
fn resolve_within(path: &Path, links: u32) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let components: Vec<Component> = absolute.components().collect();
    let Some((existing, mut resolved)) = (1..=components.len()).rev().find_map(|existing| {
        let prefix: PathBuf = components[..existing].iter().collect();
        std::fs::canonicalize(&prefix)
            .ok()
            .map(|resolved| (existing, resolved))
    }) else {
        return absolute;
    };
    for (i, component) in components.iter().enumerate().skip(existing) {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(part) => resolved.push(part),
            _ => {}
        }
        // A link to something not there yet (a file or a directory): writing through it
        // creates its target, so that is where this path leads.
        let is_link = std::fs::symlink_metadata(&resolved).is_ok_and(|m| m.is_symlink());
        if let (true, true, Ok(target)) = (is_link, links > 0, std::fs::read_link(&resolved)) {
            let mut next = resolved.parent().map(Path::to_path_buf).unwrap_or_default();
            next.push(target);
            next.extend(&components[i + 1..]);
            return resolve_within(&next, links - 1);
        }
    }
    resolved
}

/// One secret an endpoint stores: the sink, the name, and the field that names it.
pub(super) struct Stored<'e> {
    pub(super) endpoint: &'e DesiredEndpoint,
    sink: &'e str,
    pub(super) name: &'e str,
    pub(super) field: String,
    /// What the secret is, when it is not the signing secret: ` as the private key of `k1``.
    role: String,
}

/// The signing secret and every generated private key of `endpoint`.
pub(super) fn stored(endpoint: &DesiredEndpoint) -> Vec<Stored<'_>> {
    let spec = &endpoint.signing_secret;
    let mut out = vec![Stored {
        endpoint,
        sink: &spec.sink,
        name: &spec.name,
        field: format!("endpoints.{}.signing_secret.name", endpoint.key),
        role: String::new(),
    }];
    for (i, key) in endpoint.encryption_keys.iter().enumerate() {
        if let model::KeyMaterial::Generate { private_key_name } = &key.material {
            out.push(Stored {
                endpoint,
                sink: &spec.sink,
                name: private_key_name,
                field: format!(
                    "endpoints.{}.encryption_keys[{i}].private_key_name",
                    endpoint.key
                ),
                role: format!(" as the private key of `{}`", key.key_id),
            });
        }
    }
    out
}

/// Reports every secret written to a destination that an earlier declaration (in file, line
/// and column order) already writes to.
pub fn check_unique(
    project: Option<&Project>,
    endpoints: &BTreeMap<String, DesiredEndpoint>,
    problems: &mut Vec<Diagnostic>,
) {
    let mut in_order: Vec<&DesiredEndpoint> = endpoints.values().collect();
    in_order.sort_by(|a, b| {
        let place = |e: &DesiredEndpoint| (e.source.file.clone(), e.source.line, e.source.column);
        place(a).cmp(&place(b))
    });
    let mut seen: BTreeMap<Destination, Stored> = BTreeMap::new();
    for secret in in_order.into_iter().flat_map(stored) {
        let destination = destination(project, secret.sink, secret.name);
        let Some(first) = seen.get(&destination) else {
            seen.insert(destination, secret);
            continue;
        };
        let (name, sink) = (secret.name, secret.sink);
        let (other, role, place) = (&first.endpoint.key, &first.role, &first.endpoint.source);
        let (message, hint) = if first.sink == sink {
            (
                format!(
                    "`{name}` in sink `{sink}` is also written by endpoint `{other}`{role} ({place})"
                ),
                "give each secret its own name",
            )
        } else {
            (
                format!(
                    "`{name}` in sink `{sink}` is also written by endpoint `{other}`{role} ({place}) to sink `{}`: {}",
                    first.sink,
                    destination.shared(project)
                ),
                "give each secret its own name, or point the two sinks at different places",
            )
        };
        problems.push(
            Diagnostic::error(
                Code::DuplicateSecretName,
                Some(secret.endpoint.source.clone()),
                message,
            )
            .field(secret.field)
            .hint(hint),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_lexically_where_they_do_not_exist() {
        let root = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(root.path()).unwrap();
        let resolved = resolve(&root.path().join("a/./b/../../c/kayle.env"));
        assert_eq!(resolved, real.join("c/kayle.env"));
        assert_eq!(resolve(Path::new("/../x/../y")), Path::new("/y"));
    }

    #[test]
    fn a_link_to_a_directory_not_made_yet_is_followed() {
        let root = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(root.path()).unwrap();
        std::os::unix::fs::symlink("out", root.path().join("lnkdir")).unwrap();
        assert_eq!(
            resolve(&root.path().join("lnkdir/real.env")),
            real.join("out/real.env")
        );
        // A loop of links ends.
        std::os::unix::fs::symlink("loop-b", root.path().join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", root.path().join("loop-b")).unwrap();
        let _ = resolve(&root.path().join("loop-a/x.env"));
    }

    #[test]
    fn symbolic_links_are_followed_where_they_exist() {
        let root = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(root.path()).unwrap();
        std::fs::create_dir(root.path().join("secrets")).unwrap();
        std::os::unix::fs::symlink("secrets", root.path().join("link")).unwrap();
        std::os::unix::fs::symlink(
            real.join("secrets/kayle.env"),
            root.path().join("alias.env"),
        )
        .unwrap();
        let file = real.join("secrets/kayle.env");
        // The link's target does not exist yet: the directory link is still followed.
        assert_eq!(resolve(&root.path().join("link/kayle.env")), file);
        std::fs::write(&file, "").unwrap();
        assert_eq!(resolve(&root.path().join("alias.env")), file);
        assert_eq!(
            resolve(&root.path().join("link/../secrets/kayle.env")),
            file
        );
    }

    #[test]
    fn vault_and_aws_destinations_compare_what_the_sinks_send() {
        let vault = |address: &str, mount: &str, path: &str, name: &str| {
            let config = SinkConfig::Vault {
                address: address.into(),
                mount: mount.into(),
                path: path.into(),
                token_env: "T".into(),
            };
            destination_of(config, name)
        };
        assert_eq!(
            vault(
                "http://Vault.example:80/",
                "/secret/",
                "/kayle/{name}/",
                "A"
            ),
            vault("http://vault.example", "secret", "kayle/{name}", "A")
        );
        assert_eq!(
            vault("http://v", "secret", "kayle/A", "A"),
            vault("http://v", "secret", "kayle/{name}", "A")
        );
        assert_ne!(
            vault("http://v", "secret", "kayle", "A"),
            vault("http://v", "secret", "kayle", "B")
        );
        let aws = |region: Option<&str>, prefix: &str, name: &str| {
            let config = SinkConfig::AwsSecretsManager {
                region: region.map(Into::into),
                endpoint_url: None,
                prefix: prefix.into(),
            };
            destination_of(config, name)
        };
        assert_eq!(aws(Some("eu"), "a/", "bc"), aws(Some("eu"), "a/b", "c"));
        assert_ne!(aws(Some("eu"), "a/", "b"), aws(None, "a/", "b"));
    }

    fn destination_of(config: SinkConfig, name: &str) -> Destination {
        let project = Project {
            dir: PathBuf::from("/"),
            api: model::ApiConfig {
                url: model::ApiUrl::Sandbox,
                token_env: "T".into(),
            },
            label_prefix: model::DEFAULT_LABEL_PREFIX.into(),
            sinks: [("s".to_owned(), config)].into_iter().collect(),
            reloads: Default::default(),
            default_sink: None,
        };
        destination(Some(&project), "s", name)
    }
}
