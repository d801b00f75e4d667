//! Errors a person can act on, at the CLI's edge: one line of cause, one of what to do, and
//! the SDK's own detail only with `--verbose`.
//!
//! AWS calls fail through [`crate::aws::failed`], which classifies the SDK's error into a
//! [`Trouble`]: no credentials anywhere in the chain, an endpoint that refuses connections,
//! expired or invalid credentials, access denied (with AWS's message, which names the action
//! and the resource), or anything else (AWS's code and message).

use std::fmt;

/// A failure the CLI explains: what happened, what to do, and the detail behind it.
#[derive(Debug)]
pub struct Explained {
    pub cause: String,
    pub todo: Option<String>,
    /// The SDK's full error text (`--verbose`).
    pub detail: Option<String>,
}

impl fmt::Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cause)
    }
}

impl std::error::Error for Explained {}

impl Explained {
    pub fn new(cause: impl Into<String>, todo: impl Into<String>) -> Explained {
        Explained {
            cause: cause.into(),
            todo: Some(todo.into()),
            detail: None,
        }
    }
}

/// What kind of failure an AWS call met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// The credential chain found nothing: no environment keys, profile, SSO session, or
    /// instance or container role.
    NoCredentials,
    /// The endpoint did not answer (refused, unresolvable, timed out).
    Unreachable,
    /// AWS refused the credentials as expired.
    Expired { code: String },
    /// AWS does not know the credentials (wrong key, wrong secret, deleted user).
    InvalidCredentials { code: String },
    /// The identity may not do this; AWS's message names the action and the resource.
    AccessDenied { message: String },
    /// Anything else: AWS's code and message, or the SDK's text.
    Other,
}

const EXPIRED: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "TokenRefreshRequired",
];
const INVALID: &[&str] = &[
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidToken",
];
const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "UnauthorizedAccess",
];

/// Whether AWS's error code says the identity may not do this.
pub fn is_access_denied(code: Option<&str>) -> bool {
    code.is_some_and(|c| DENIED.contains(&c))
}

/// Classifies a failure from the service's error code (when AWS answered) and the chain of
/// sources behind it (when it did not).
pub fn classify(
    code: Option<&str>,
    message: Option<&str>,
    chain: &[String],
    io_refused: bool,
) -> Trouble {
    if let Some(code) = code {
        if EXPIRED.contains(&code) {
            return Trouble::Expired { code: code.into() };
        }
        if INVALID.contains(&code) {
            return Trouble::InvalidCredentials { code: code.into() };
        }
        if is_access_denied(Some(code)) {
            return Trouble::AccessDenied {
                message: message.unwrap_or(code).to_owned(),
            };
        }
        return Trouble::Other;
    }
    let text = chain.join(": ").to_ascii_lowercase();
    // The SDK's credential chain reports "no credentials"/"failed to load credentials" in
    // the source chain of a dispatch failure (it runs while signing the request).
    if text.contains("credentials") && !text.contains("expired") {
        return Trouble::NoCredentials;
    }
    if io_refused
        || text.contains("connection refused")
        || text.contains("dns error")
        || text.contains("timed out")
        || text.contains("timeout")
    {
        return Trouble::Unreachable;
    }
    Trouble::Other
}

/// The one-line cause and the line of what to do for a failed call.
pub fn explain(
    what: &str,
    trouble: &Trouble,
    endpoint: Option<&str>,
    region: Option<&str>,
    fallback: &str,
) -> (String, Option<String>) {
    match trouble {
        Trouble::NoCredentials => (
            format!("{what}: no AWS credentials found (looked in the environment, the shared config and credentials files with their profiles and SSO sessions, and instance or container roles)"),
            Some("set AWS_PROFILE (run `aws sso login --profile NAME` first for an SSO profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; for the local emulator, export what `scripts/local-pipeline --keep-running` prints (AWS_ENDPOINT_URL and its keys)".into()),
        ),
        Trouble::Unreachable => match endpoint {
            Some(url) => (
                format!("{what}: cannot reach {url} (AWS_ENDPOINT_URL): nothing answers there"),
                Some("start the local emulator (`scripts/local-pipeline --keep-running` prints its address) and point AWS_ENDPOINT_URL at it, or unset AWS_ENDPOINT_URL to reach AWS".into()),
            ),
            None => (
                format!(
                    "{what}: cannot reach AWS in region {}",
                    region.unwrap_or("(unknown)")
                ),
                Some("check the network and any proxy (HTTPS_PROXY), and the stage's region (`region` in pipeline.yaml)".into()),
            ),
        },
        Trouble::Expired { code } => (
            format!("{what}: the AWS credentials have expired ({code})"),
            Some("renew them: `aws sso login` for an SSO profile, or fetch new temporary keys and export them again".into()),
        ),
        Trouble::InvalidCredentials { code } => (
            format!("{what}: AWS does not accept these credentials ({code})"),
            Some("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile in use (AWS_PROFILE); against the local emulator, use keys it issued".into()),
        ),
        // KMS applies a new key's tags and aliases to authorization up to five minutes late
        // (KMS developer guide, "Use tags to control access to KMS keys"); the deploy policy
        // reaches the stage's key through its alias, so a first call right after the stage
        // was created may be refused and then allowed.
        Trouble::AccessDenied { message } if message.contains(" kms:") => (
            format!("{what}: access denied: {message}"),
            Some("if the stage was created in the last five minutes, retry: KMS applies a new key's alias to authorization up to five minutes late; otherwise grant this identity that action (`deployer policy --stage STAGE`)".into()),
        ),
        Trouble::AccessDenied { message } => (
            format!("{what}: access denied: {message}"),
            Some("grant this identity that action on that resource; `deployer policy --stage STAGE` prints everything a deploy identity needs".into()),
        ),
        Trouble::Other => (format!("{what}: {fallback}"), None),
    }
}

/// Prints an error of the CLI: its cause, what to do, and with `verbose` the detail.
pub fn print(e: &anyhow::Error, verbose: bool) {
    match e.chain().find_map(|c| c.downcast_ref::<Explained>()) {
        Some(x) => {
            // Context added above the explained error (the stage, the step) goes first.
            let context: Vec<String> = e
                .chain()
                .take_while(|c| c.downcast_ref::<Explained>().is_none())
                .map(|c| c.to_string())
                .collect();
            if context.is_empty() {
                eprintln!("error: {}", x.cause);
            } else {
                eprintln!("error: {}: {}", context.join(": "), x.cause);
            }
            if let Some(todo) = &x.todo {
                eprintln!("  to do: {todo}");
            }
            match (&x.detail, verbose) {
                (Some(d), true) => eprintln!("  detail: {d}"),
                (Some(_), false) => eprintln!("  (--verbose shows the SDK's detail)"),
                _ => {}
            }
        }
        None => eprintln!("error: {}", chain_once(e)),
    }
}

/// The error and its causes, joined by `: `, each cause left out when the text before it
/// already says it: an error whose message includes its source (`bad input: {0}` over the
/// input error) would otherwise print that source twice in one line.
pub fn chain_once(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 27: a malformed ETL input's message was printed twice in one line.
    #[test]
    fn a_cause_the_message_already_holds_is_printed_once() {
        let input = etl::error::InputError {
            place: etl::error::Place {
                file: "a/students.json".into(),
                line: 3,
                column: 7,
                record: Some(1),
            },
            problem: "expected `,` or `]`".into(),
        };
        let e = anyhow::Error::new(etl::error::EtlError::from(input)).context("the ETL failed");
        let text = chain_once(&e);
        assert_eq!(text.matches("expected `,` or `]`").count(), 1, "{text}");
        assert!(text.starts_with("the ETL failed: bad input: "), "{text}");
        assert!(
            format!("{e:#}").matches("expected `,`").count() == 2,
            "the doubling it fixes"
        );
    }

    #[test]
    fn service_codes_decide_before_the_chain() {
        assert_eq!(
            classify(Some("ExpiredToken"), Some("x"), &[], false),
            Trouble::Expired {
                code: "ExpiredToken".into()
            }
        );
        assert_eq!(
            classify(
                Some("AccessDenied"),
                Some("User: u is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::b/k"),
                &[],
                false
            ),
            Trouble::AccessDenied {
                message: "User: u is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::b/k".into()
            }
        );
        assert_eq!(
            classify(Some("ValidationError"), Some("credentials"), &[], false),
            Trouble::Other
        );
        let (_, todo) = explain(
            "publishing",
            &Trouble::AccessDenied {
                message: "User: u is not authorized to perform: kms:GenerateDataKey on resource: k"
                    .into(),
            },
            None,
            None,
            "x",
        );
        assert!(todo.unwrap().contains("five minutes"));
    }

    #[test]
    fn the_chain_tells_missing_credentials_from_an_unreachable_endpoint() {
        let no_creds = [
            "dispatch failure".into(),
            "no credentials in the chain".into(),
        ];
        assert_eq!(
            classify(None, None, &no_creds, false),
            Trouble::NoCredentials
        );
        let refused = [
            "dispatch failure".into(),
            "io error".into(),
            "Connection refused (os error 111)".into(),
        ];
        assert_eq!(classify(None, None, &refused, false), Trouble::Unreachable);
        assert_eq!(
            classify(None, None, &["x".into()], true),
            Trouble::Unreachable
        );
        assert_eq!(classify(None, None, &["x".into()], false), Trouble::Other);
    }
}
