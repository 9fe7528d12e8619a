//! TLS to PostgreSQL, read from the URL as libpq (`psql`) reads it: `sslmode` and
//! `sslrootcert`, or `PGSSLMODE` and `PGSSLROOTCERT`.
//!
//! sqlx does the handshake (rustls, with the system's trusted roots); this module closes
//! the gaps between its reading of the URL and libpq's, and says in the user's words why
//! a connection over TLS, or one without it, was refused.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// What stops a connection to PostgreSQL before or during its TLS handshake.
#[derive(Debug, thiserror::Error)]
pub enum PgTlsError {
    #[error(
        "cannot read the root certificate file {path} (`sslrootcert`): {source}; name the \
         PEM file of the authority that signed the server's certificate"
    )]
    RootCertUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`sslrootcert=system` trusts the system's authorities only with \
         `sslmode=verify-full` (as libpq has it), not with `sslmode={mode}`"
    )]
    WeakModeForSystemRoots { mode: &'static str },
    #[error("the TLS handshake with PostgreSQL at {host} failed: the server's certificate {why}")]
    CertificateRefused { host: String, why: String },
    #[error(
        "the server at {host} takes no TLS (its `ssl` setting is off), and `sslmode={mode}` \
         asks for it: turn `ssl` on in its postgresql.conf, or connect with `sslmode=prefer`"
    )]
    ServerWithoutTls { host: String, mode: &'static str },
    #[error(
        "the server at {host} takes this connection only over TLS (its pg_hba.conf has a \
         `hostssl` line for it, and none without TLS), and `sslmode=disable` asks for none: \
         use `sslmode=require`, or `verify-full` with `sslrootcert`"
    )]
    ServerWantsTls { host: String },
}

/// The options of the PostgreSQL URL `url`, with TLS as libpq would make it:
/// - a root certificate named (`sslrootcert`), or `~/.postgresql/root.crt` present, makes
///   `sslmode=require` check the server's certificate, as `verify-ca` does;
/// - `sslrootcert=system` trusts the system's authorities alone, and checks the server's
///   name (`verify-full`) unless a weaker `sslmode` is asked for, which is refused;
/// - `allow` connects wherever libpq's would (sqlx's never tries TLS);
/// - a root certificate file that cannot be read is said to be so here, naming it (sqlx
///   said only "No such file or directory" once connecting).
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    install_crypto_provider();
    let options = PgConnectOptions::from_str(url)?;
    let mode = options.get_ssl_mode();
    let root = root_cert(url);
    if root.as_deref() == Some(Path::new("system")) {
        if mode_named(url) && !matches!(mode, PgSslMode::VerifyFull) {
            return Err(configuration(PgTlsError::WeakModeForSystemRoots {
                mode: mode_name(mode),
            }));
        }
        // No certificate of its own beside the system's, which sqlx always trusts.
        return Ok(options
            .ssl_root_cert_from_pem(Vec::new())
            .ssl_mode(PgSslMode::VerifyFull));
    }
    // sqlx takes `allow` (plain text, TLS if the server refuses that) as `disable`, and
    // fails where libpq would try TLS next: `prefer` connects wherever `allow` would.
    if matches!(mode, PgSslMode::Allow) {
        return Ok(options.ssl_mode(PgSslMode::Prefer));
    }
    // The modes that do not check the server's certificate read no root certificate.
    if !matches!(
        mode,
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
    ) {
        return Ok(options);
    }
    let Some(path) = root.or_else(default_root_cert) else {
        return Ok(options);
    };
    // Read once, here, where a file that cannot be read is named: sqlx is given its bytes.
    let pem = std::fs::read(&path)
        .map_err(|source| configuration(PgTlsError::RootCertUnreadable { path, source }))?;
    let options = options.ssl_root_cert_from_pem(pem);
    Ok(if matches!(mode, PgSslMode::Require) {
        options.ssl_mode(PgSslMode::VerifyCa)
    } else {
        options
    })
}

/// `error`, a failure to connect with `options`, in the user's words where TLS is why.
pub fn explained(options: &PgConnectOptions, error: sqlx::Error) -> sqlx::Error {
    let host = options.get_host().to_owned();
    let mode = options.get_ssl_mode();
    match &error {
        sqlx::Error::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref()) {
            Some(rustls::Error::InvalidCertificate(refused)) => {
                tls(PgTlsError::CertificateRefused {
                    why: certificate_refused(refused, &host),
                    host,
                })
            }
            _ => error,
        },
        sqlx::Error::Tls(e) if e.to_string() == "server does not support TLS" => {
            tls(PgTlsError::ServerWithoutTls {
                host,
                mode: mode_name(mode),
            })
        }
        sqlx::Error::Database(e)
            if matches!(mode, PgSslMode::Disable)
                && e.code().as_deref() == Some("28000")
                && e.message().ends_with("no encryption") =>
        {
            configuration(PgTlsError::ServerWantsTls { host })
        }
        _ => error,
    }
}

/// Why rustls refused the server's certificate, and what to do.
fn certificate_refused(refused: &rustls::CertificateError, host: &str) -> String {
    use rustls::CertificateError as E;
    match refused {
        E::UnknownIssuer => "was signed by no authority this connection trusts (the system's, \
             and the one `sslrootcert` names, if it names one): name the PEM file of the \
             one that signed it in `sslrootcert`"
            .to_owned(),
        E::NotValidForName | E::NotValidForNameContext { .. } => format!(
            "does not name the host {host}, which `sslmode=verify-full` checks: connect by \
             a name the certificate holds, or use `sslmode=verify-ca`"
        ),
        E::Expired | E::ExpiredContext { .. } => "has expired".to_owned(),
        E::NotValidYet | E::NotValidYetContext { .. } => "is not valid yet".to_owned(),
        other => format!("was refused: {other:?}"),
    }
}

/// `sslrootcert` (or libpq's other spellings sqlx takes) of `url`, else `PGSSLROOTCERT`.
fn root_cert(url: &str) -> Option<PathBuf> {
    url_parameter(url, &["sslrootcert", "ssl-root-cert", "ssl-ca"])
        .or_else(|| std::env::var("PGSSLROOTCERT").ok())
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// libpq's root certificate when none is named: `~/.postgresql/root.crt`, if it is there.
fn default_root_cert() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("HOME")?).join(".postgresql/root.crt");
    path.is_file().then_some(path)
}

/// Whether `url` (or `PGSSLMODE`) asks for an `sslmode`, rather than taking the default.
fn mode_named(url: &str) -> bool {
    url_parameter(url, &["sslmode", "ssl-mode"]).is_some()
        || std::env::var_os("PGSSLMODE").is_some()
}

fn url_parameter(url: &str, names: &[&str]) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| names.contains(&name.as_ref()))
        .map(|(_, value)| value.into_owned())
}

fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

fn configuration(error: PgTlsError) -> sqlx::Error {
    sqlx::Error::Configuration(Box::new(error))
}

fn tls(error: PgTlsError) -> sqlx::Error {
    sqlx::Error::Tls(Box::new(error))
}

/// Makes aws-lc-rs (the provider reqwest uses) the process's rustls CryptoProvider, once.
/// rustls is built with both aws-lc-rs (reqwest's) and ring (sqlx's), so it cannot pick
/// one itself, and panics where a caller asks for the process's: sqlx does, checking a
/// certificate without its name (`sslmode=verify-ca`).
fn install_crypto_provider() {
    // Err: one is installed already (an earlier connection's), which is what is wanted.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "postgres://crawler@db.internal/crawl";

    fn refusal(url: &str) -> String {
        connect_options(url)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn system_roots_check_the_name_and_refuse_a_weaker_mode_asked_for() {
        let options = connect_options(&format!("{URL}?sslrootcert=system")).expect("options");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
        assert!(
            refusal(&format!("{URL}?sslrootcert=system&sslmode=require"))
                .contains("not with `sslmode=require`")
        );
    }

    #[test]
    fn a_root_certificate_that_cannot_be_read_is_named() {
        let said = refusal(&format!(
            "{URL}?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt"
        ));
        assert!(
            said.contains("cannot read the root certificate file /nonexistent/ca.crt"),
            "{said}"
        );
        // A mode that checks no certificate reads none, as libpq's.
        assert!(connect_options(&format!(
            "{URL}?sslmode=prefer&sslrootcert=/nonexistent/ca.crt"
        ))
        .is_ok());
    }
}
