//! Connection strings (kept secret) and connecting.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

use crate::error::{Error, Result};

/// A PostgreSQL connection string, read from the environment or given by the host.
///
/// It may hold a password, so it is never printed: `Debug` and [`PgUrl::target`] show only user,
/// hosts, ports and database.
#[derive(Clone)]
pub struct PgUrl {
    config: Config,
    target: String,
}

impl PgUrl {
    /// Parses a connection string (`postgres://user:password@host:port/db` or `host=... user=...`).
    /// `origin` names where it came from, for the error message (the string is never repeated).
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let config = Config::from_str(text.trim()).map_err(|e| Error::InvalidUrl {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        if config.get_hosts().is_empty() {
            return Err(Error::InvalidUrl {
                origin: origin.to_string(),
                reason: "no host given".into(),
            });
        }
        let target = describe_target(&config);
        Ok(PgUrl { config, target })
    }

    /// Reads the connection string from the environment variable `env`.
    ///
    /// Errors: [`Error::MissingUrl`] when unset or empty, [`Error::InvalidUrl`] when it does not
    /// parse.
    pub fn from_env(env: &str) -> Result<Self> {
        match std::env::var(env) {
            Ok(v) if !v.trim().is_empty() => PgUrl::parse(&v, &format!("${env}")),
            _ => Err(Error::MissingUrl {
                env: env.to_string(),
            }),
        }
    }

    /// The same server with `application_name` set (shown in `pg_stat_activity`), so an operator
    /// can tell which node a connection belongs to.
    pub fn with_application_name(&self, name: &str) -> PgUrl {
        let mut config = self.config.clone();
        config.application_name(name);
        PgUrl {
            config,
            target: self.target.clone(),
        }
    }

    /// `user@host:port/db`, without the password: safe to log and show.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The parsed client configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Opens a connection and drives it on the current tokio runtime. The connection task ends
    /// when the returned client is dropped.
    ///
    /// With `sslmode=require` in the connection string the connection uses TLS (feature `tls`;
    /// see [`crate::tls`]); without the feature such a string is refused with [`Error::Tls`].
    pub async fn connect(&self, application_name: &str) -> Result<Client> {
        let mut config = self.config.clone();
        if config.get_application_name().is_none() {
            config.application_name(application_name);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let failed = |source| Error::Connect {
            target: self.target.clone(),
            source,
        };
        if config.get_ssl_mode() == SslMode::Require {
            #[cfg(feature = "tls")]
            {
                let tls = crate::tls::MakeRustls::from_env()?;
                let (client, connection) = config.connect(tls).await.map_err(failed)?;
                drive(connection, self.target.clone());
                return Ok(client);
            }
            #[cfg(not(feature = "tls"))]
            return Err(Error::Tls {
                reason: "the connection string asks for sslmode=require, but this selfmon was \
                         built without TLS support (feature `tls` of selfmon-postgres, \
                         `postgres-tls` of selfmon)"
                    .into(),
            });
        }
        // `prefer` (the default) and `disable` connect in plain text; see `crate::tls` for why.
        config.ssl_mode(SslMode::Disable);
        let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
        drive(connection, self.target.clone());
        Ok(client)
    }
}

/// Drives a connection on the current runtime until its client is dropped or it fails.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>, target: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            // The server is named by its host and port only: a connection string without a
            // password reads like its description, and a host's stderr (now printed by the CLI)
            // ends up in journald and cron mail.
            tracing::warn!(server = %server_of(&target), %error, "PostgreSQL connection ended");
        }
    });
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgUrl")
            .field("target", &self.target)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `host:port` of a [`describe_target`] description (no scheme, user or database).
fn server_of(target: &str) -> &str {
    let rest = target.strip_prefix("postgres://").unwrap_or(target);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split_once('/').map_or(rest, |(s, _)| s)
}

fn describe_target(config: &Config) -> String {
    let user = config.get_user().unwrap_or("");
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect();
    let db = config.get_dbname().unwrap_or(user);
    if user.is_empty() {
        format!("postgres://{}/{db}", hosts.join(","))
    } else {
        format!("postgres://{user}@{}/{db}", hosts.join(","))
    }
}

/// Quotes an SQL identifier (`my"table` → `"my""table"`).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks a schema or table name from configuration: 1 to 63 bytes, no NUL.
pub(crate) fn check_ident(field: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(Error::InvalidOption {
            field,
            reason: format!(
                "{} is not a PostgreSQL identifier (1 to 63 bytes, no NUL)",
                selfmon_core::text::quoted(name)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_warning_names_the_server_by_host_and_port_only() {
        assert_eq!(
            server_of("postgres://selfmon@127.0.0.1:37075/postgres"),
            "127.0.0.1:37075"
        );
        assert_eq!(
            server_of("postgres://db1:5432,db2:5432/app"),
            "db1:5432,db2:5432"
        );
    }

    use super::*;

    #[test]
    fn debug_and_target_never_show_the_password() {
        let url = PgUrl::parse("postgres://alice:s3cr3t-pw@db.local:5433/logs", "test").unwrap();
        let shown = format!("{url:?} {}", url.target());
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert_eq!(url.target(), "postgres://alice@db.local:5433/logs");
    }

    #[test]
    fn a_bad_string_is_refused_without_repeating_it() {
        let err = PgUrl::parse("postgres://alice:s3cr3t-pw@db.local:notaport/x", "$PG")
            .unwrap_err()
            .to_string();
        assert!(err.contains("$PG") && !err.contains("s3cr3t-pw"), "{err}");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = PgUrl::from_env("SELFMON_TEST_SURELY_UNSET_VARIABLE_1234")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SELFMON_TEST_SURELY_UNSET_VARIABLE_1234"),
            "{err}"
        );
    }

    #[cfg(not(feature = "tls"))]
    #[tokio::test]
    async fn sslmode_require_without_the_tls_feature_is_refused_naming_the_feature() {
        let url = PgUrl::parse("postgres://u:pw-9@127.0.0.1:1/db?sslmode=require", "t").unwrap();
        let e = url.connect("selfmon-test").await.unwrap_err();
        assert!(matches!(e, Error::Tls { .. }), "{e}");
        assert!(
            e.to_string().contains("`tls`") && !e.to_string().contains("pw-9"),
            "{e}"
        );
    }

    #[test]
    fn identifiers_are_quoted_and_checked() {
        assert_eq!(quote_ident("my\"t"), "\"my\"\"t\"");
        assert!(check_ident("table", "").is_err());
        assert!(check_ident("table", &"x".repeat(64)).is_err());
        assert!(check_ident("table", "logs").is_ok());
    }
}
