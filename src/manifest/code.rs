//! The stable codes of diagnostics: the closed set scripts and tests may rely on.

use std::fmt;

/// What kind of problem a [`super::Diagnostic`] is, as a stable kebab-case name (`as_str`).
/// `docs/diagnostics.md` lists every code with its description; a test keeps it current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// An `aws-secrets-manager` sink's `endpoint_url` is not an allowed endpoint.
    AwsEndpointNotAllowed,
    /// An encryption key gives more than one source (`file`, `generate`).
    ConflictingKeySource,
    /// A variable named to hold a credential is not one kayle-sync may read.
    CredentialEnvNotAllowed,
    /// Two manifests declare the same endpoint key.
    DuplicateEndpoint,
    /// Two encryption keys of one endpoint have the same `key_id`.
    DuplicateKeyId,
    /// An endpoint declares the same label twice (ignoring case).
    DuplicateLabel,
    /// Both `kayle-sync.yaml` and `kayle-sync.yml` exist.
    DuplicateProjectFile,
    /// Two endpoints store a secret under the same name in one sink.
    DuplicateSecretName,
    /// `subscribed_event_types` is an empty list.
    EmptyEventTypes,
    /// A manifest or the project file is empty.
    EmptyFile,
    /// A file is larger than kayle-sync reads.
    FileTooLarge,
    /// A generated key needs a sink kayle-sync can read back.
    GenerateNeedsReadableSink,
    /// A URL a credential is sent to is plain http to another machine.
    InsecureUrl,
    /// `adopt` is not an endpoint id.
    InvalidAdopt,
    /// `api.url` is not a usable API address.
    InvalidApiUrl,
    /// A variable name is not a valid environment variable name.
    InvalidEnvName,
    /// An endpoint key is not lowercase letters, digits and `-`.
    InvalidKey,
    /// An encryption key's `key_id` is not valid.
    InvalidKeyId,
    /// A label is empty, too long or uses the reserved prefix.
    InvalidLabel,
    /// `label_prefix` is empty or too long.
    InvalidLabelPrefix,
    /// An endpoint's `name` is blank or too long.
    InvalidName,
    /// `undelivered_payload_retention_hours` is not a value the API accepts.
    InvalidRetention,
    /// A secret name cannot be stored in its sink.
    InvalidSecretName,
    /// A sink name is not valid.
    InvalidSinkName,
    /// A URL is not valid.
    InvalidUrl,
    /// A value is not allowed (an empty one, say).
    InvalidValue,
    /// A key file holds no recognizable public key.
    KeyFileInvalid,
    /// A key file cannot be read.
    KeyFileUnreadable,
    /// A key file holds a key that is not RSA.
    KeyNotRsa,
    /// An endpoint key makes its identity label too long.
    KeyTooLong,
    /// A key file holds an RSA key under 2048 bits.
    KeyTooSmall,
    /// A required field is missing.
    MissingField,
    /// An encryption key gives no source (`file` or `generate`).
    MissingKeySource,
    /// There is no `kayle-sync.yaml` in the directory.
    MissingProjectFile,
    /// A file holds more than one YAML document.
    MultipleDocuments,
    /// A `kayle-sync.yaml` below the config directory.
    NestedProjectFile,
    /// An enabled endpoint declares no encryption key (a warning).
    NoEncryptionKey,
    /// An endpoint names no sink and there is no default.
    NoSink,
    /// The config directory is not a directory.
    NotADirectory,
    /// Something in the directory is not a regular file, and is skipped (a warning).
    NotARegularFile,
    /// A file is not UTF-8.
    NotUtf8,
    /// A number is outside the range allowed.
    OutOfRange,
    /// A key file holds a private key.
    PrivateKeyRefused,
    /// `signing_secret.rotation` makes the secret-state label too long.
    RotationTooLarge,
    /// Two secrets of one endpoint have the same name.
    SecretNameClash,
    /// A symlink resolves to itself.
    SymlinkLoop,
    /// An endpoint declares more labels than the API keeps.
    TooManyLabels,
    /// A field that goes only with another setting (`private_key_name` without `generate`).
    UnexpectedField,
    /// An event type the API does not know.
    UnknownEventType,
    /// A field kayle-sync does not know.
    UnknownField,
    /// A sink name that the project file does not declare.
    UnknownSink,
    /// A sink `type` kayle-sync does not know.
    UnknownSinkType,
    /// A directory cannot be read.
    UnreadableDirectory,
    /// A file cannot be read.
    UnreadableFile,
    /// A value of the wrong type.
    WrongType,
    /// A YAML alias (`*name`), which kayle-sync does not accept.
    YamlAlias,
    /// A YAML mapping repeats a key.
    YamlDuplicateKey,
    /// A YAML merge key (`<<`), which kayle-sync does not accept.
    YamlMergeKey,
    /// The file is not valid YAML.
    YamlSyntax,
    /// A tab where YAML needs spaces.
    YamlTab,
    /// The YAML is nested or sized past what kayle-sync reads.
    YamlTooComplex,
}

impl Code {
    /// Every code, in name order.
    pub const ALL: [Code; 61] = [
        Code::AwsEndpointNotAllowed,
        Code::ConflictingKeySource,
        Code::CredentialEnvNotAllowed,
        Code::DuplicateEndpoint,
        Code::DuplicateKeyId,
        Code::DuplicateLabel,
        Code::DuplicateProjectFile,
        Code::DuplicateSecretName,
        Code::EmptyEventTypes,
        Code::EmptyFile,
        Code::FileTooLarge,
        Code::GenerateNeedsReadableSink,
        Code::InsecureUrl,
        Code::InvalidAdopt,
        Code::InvalidApiUrl,
        Code::InvalidEnvName,
        Code::InvalidKey,
        Code::InvalidKeyId,
        Code::InvalidLabel,
        Code::InvalidLabelPrefix,
        Code::InvalidName,
        Code::InvalidRetention,
        Code::InvalidSecretName,
        Code::InvalidSinkName,
        Code::InvalidUrl,
        Code::InvalidValue,
        Code::KeyFileInvalid,
        Code::KeyFileUnreadable,
        Code::KeyNotRsa,
        Code::KeyTooLong,
        Code::KeyTooSmall,
        Code::MissingField,
        Code::MissingKeySource,
        Code::MissingProjectFile,
        Code::MultipleDocuments,
        Code::NestedProjectFile,
        Code::NoEncryptionKey,
        Code::NoSink,
        Code::NotADirectory,
        Code::NotARegularFile,
        Code::NotUtf8,
        Code::OutOfRange,
        Code::PrivateKeyRefused,
        Code::RotationTooLarge,
        Code::SecretNameClash,
        Code::SymlinkLoop,
        Code::TooManyLabels,
        Code::UnexpectedField,
        Code::UnknownEventType,
        Code::UnknownField,
        Code::UnknownSink,
        Code::UnknownSinkType,
        Code::UnreadableDirectory,
        Code::UnreadableFile,
        Code::WrongType,
        Code::YamlAlias,
        Code::YamlDuplicateKey,
        Code::YamlMergeKey,
        Code::YamlSyntax,
        Code::YamlTab,
        Code::YamlTooComplex,
    ];

    /// The stable name, e.g. `wrong-type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::AwsEndpointNotAllowed => "aws-endpoint-not-allowed",
            Code::ConflictingKeySource => "conflicting-key-source",
            Code::CredentialEnvNotAllowed => "credential-env-not-allowed",
            Code::DuplicateEndpoint => "duplicate-endpoint",
            Code::DuplicateKeyId => "duplicate-key-id",
            Code::DuplicateLabel => "duplicate-label",
            Code::DuplicateProjectFile => "duplicate-project-file",
            Code::DuplicateSecretName => "duplicate-secret-name",
            Code::EmptyEventTypes => "empty-event-types",
            Code::EmptyFile => "empty-file",
            Code::FileTooLarge => "file-too-large",
            Code::GenerateNeedsReadableSink => "generate-needs-readable-sink",
            Code::InsecureUrl => "insecure-url",
            Code::InvalidAdopt => "invalid-adopt",
            Code::InvalidApiUrl => "invalid-api-url",
            Code::InvalidEnvName => "invalid-env-name",
            Code::InvalidKey => "invalid-key",
            Code::InvalidKeyId => "invalid-key-id",
            Code::InvalidLabel => "invalid-label",
            Code::InvalidLabelPrefix => "invalid-label-prefix",
            Code::InvalidName => "invalid-name",
            Code::InvalidRetention => "invalid-retention",
            Code::InvalidSecretName => "invalid-secret-name",
            Code::InvalidSinkName => "invalid-sink-name",
            Code::InvalidUrl => "invalid-url",
            Code::InvalidValue => "invalid-value",
            Code::KeyFileInvalid => "key-file-invalid",
            Code::KeyFileUnreadable => "key-file-unreadable",
            Code::KeyNotRsa => "key-not-rsa",
            Code::KeyTooLong => "key-too-long",
            Code::KeyTooSmall => "key-too-small",
            Code::MissingField => "missing-field",
            Code::MissingKeySource => "missing-key-source",
            Code::MissingProjectFile => "missing-project-file",
            Code::MultipleDocuments => "multiple-documents",
            Code::NestedProjectFile => "nested-project-file",
            Code::NoEncryptionKey => "no-encryption-key",
            Code::NoSink => "no-sink",
            Code::NotADirectory => "not-a-directory",
            Code::NotARegularFile => "not-a-regular-file",
            Code::NotUtf8 => "not-utf8",
            Code::OutOfRange => "out-of-range",
            Code::PrivateKeyRefused => "private-key-refused",
            Code::RotationTooLarge => "rotation-too-large",
            Code::SecretNameClash => "secret-name-clash",
            Code::SymlinkLoop => "symlink-loop",
            Code::TooManyLabels => "too-many-labels",
            Code::UnexpectedField => "unexpected-field",
            Code::UnknownEventType => "unknown-event-type",
            Code::UnknownField => "unknown-field",
            Code::UnknownSink => "unknown-sink",
            Code::UnknownSinkType => "unknown-sink-type",
            Code::UnreadableDirectory => "unreadable-directory",
            Code::UnreadableFile => "unreadable-file",
            Code::WrongType => "wrong-type",
            Code::YamlAlias => "yaml-alias",
            Code::YamlDuplicateKey => "yaml-duplicate-key",
            Code::YamlMergeKey => "yaml-merge-key",
            Code::YamlSyntax => "yaml-syntax",
            Code::YamlTab => "yaml-tab",
            Code::YamlTooComplex => "yaml-too-complex",
        }
    }

    /// What the code means, in a line.
    pub fn description(self) -> &'static str {
        match self {
            Code::AwsEndpointNotAllowed => {
                "an `aws-secrets-manager` sink's `endpoint_url` is not an allowed endpoint"
            }
            Code::ConflictingKeySource => {
                "an encryption key gives more than one source (`file`, `generate`)"
            }
            Code::CredentialEnvNotAllowed => {
                "a variable named to hold a credential is not one kayle-sync may read"
            }
            Code::DuplicateEndpoint => "two manifests declare the same endpoint key",
            Code::DuplicateKeyId => "two encryption keys of one endpoint have the same `key_id`",
            Code::DuplicateLabel => "an endpoint declares the same label twice (ignoring case)",
            Code::DuplicateProjectFile => "both `kayle-sync.yaml` and `kayle-sync.yml` exist",
            Code::DuplicateSecretName => {
                "two endpoints store a secret under the same name in one sink"
            }
            Code::EmptyEventTypes => "`subscribed_event_types` is an empty list",
            Code::EmptyFile => "a manifest or the project file is empty",
            Code::FileTooLarge => "a file is larger than kayle-sync reads",
            Code::GenerateNeedsReadableSink => {
                "a generated key needs a sink kayle-sync can read back"
            }
            Code::InsecureUrl => "a URL a credential is sent to is plain http to another machine",
            Code::InvalidAdopt => "`adopt` is not an endpoint id",
            Code::InvalidApiUrl => "`api.url` is not a usable API address",
            Code::InvalidEnvName => "a variable name is not a valid environment variable name",
            Code::InvalidKey => "an endpoint key is not lowercase letters, digits and `-`",
            Code::InvalidKeyId => "an encryption key's `key_id` is not valid",
            Code::InvalidLabel => "a label is empty, too long or uses the reserved prefix",
            Code::InvalidLabelPrefix => "`label_prefix` is empty or too long",
            Code::InvalidName => "an endpoint's `name` is blank or too long",
            Code::InvalidRetention => {
                "`undelivered_payload_retention_hours` is not a value the API accepts"
            }
            Code::InvalidSecretName => "a secret name cannot be stored in its sink",
            Code::InvalidSinkName => "a sink name is not valid",
            Code::InvalidUrl => "a URL is not valid",
            Code::InvalidValue => "a value is not allowed (an empty one, say)",
            Code::KeyFileInvalid => "a key file holds no recognizable public key",
            Code::KeyFileUnreadable => "a key file cannot be read",
            Code::KeyNotRsa => "a key file holds a key that is not RSA",
            Code::KeyTooLong => "an endpoint key makes its identity label too long",
            Code::KeyTooSmall => "a key file holds an RSA key under 2048 bits",
            Code::MissingField => "a required field is missing",
            Code::MissingKeySource => "an encryption key gives no source (`file` or `generate`)",
            Code::MissingProjectFile => "there is no `kayle-sync.yaml` in the directory",
            Code::MultipleDocuments => {
                "the project file holds more than one YAML document (a manifest may hold several)"
            }
            Code::NestedProjectFile => "a `kayle-sync.yaml` below the config directory",
            Code::NoEncryptionKey => "an enabled endpoint declares no encryption key (a warning)",
            Code::NoSink => "an endpoint names no sink and there is no default",
            Code::NotADirectory => "the config directory is not a directory",
            Code::NotARegularFile => {
                "something in the directory is not a regular file, and is skipped (a warning)"
            }
            Code::NotUtf8 => "a file is not UTF-8",
            Code::OutOfRange => "a number is outside the range allowed",
            Code::PrivateKeyRefused => "a key file holds a private key",
            Code::RotationTooLarge => {
                "`signing_secret.rotation` makes the secret-state label too long"
            }
            Code::SecretNameClash => "two secrets of one endpoint have the same name",
            Code::SymlinkLoop => "a symlink resolves to itself",
            Code::TooManyLabels => "an endpoint declares more labels than the API keeps",
            Code::UnexpectedField => {
                "a field that goes only with another setting (`private_key_name` without `generate`)"
            }
            Code::UnknownEventType => "an event type the API does not know",
            Code::UnknownField => "a field kayle-sync does not know",
            Code::UnknownSink => "a sink name that the project file does not declare",
            Code::UnknownSinkType => "a sink `type` kayle-sync does not know",
            Code::UnreadableDirectory => "a directory cannot be read",
            Code::UnreadableFile => "a file cannot be read",
            Code::WrongType => "a value of the wrong type",
            Code::YamlAlias => "a YAML alias (`*name`), which kayle-sync does not accept",
            Code::YamlDuplicateKey => "a YAML mapping repeats a key",
            Code::YamlMergeKey => "a YAML merge key (`<<`), which kayle-sync does not accept",
            Code::YamlSyntax => "the file is not valid YAML",
            Code::YamlTab => "a tab where YAML needs spaces",
            Code::YamlTooComplex => "the YAML is nested or sized past what kayle-sync reads",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
