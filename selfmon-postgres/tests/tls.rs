//! TLS (feature `tls`) against the test server, which `.ci/install-postgres.sh` starts with a
//! certificate from a throwaway CA (`SELFMON_TEST_PG_TLS_ROOT_CERT`): a real handshake, a
//! verified certificate, and a refusal when the CA is not trusted.
#![cfg(feature = "tls")]

mod support;

use selfmon_postgres::tls::ROOT_CERT_ENV;
use selfmon_postgres::{Error, PgLogSource, PgStateStore, PgUrl};
use support::test_db;

const ROOT_ENV: &str = "SELFMON_TEST_PG_TLS_ROOT_CERT";

fn require_tls(url: &PgUrl) -> PgUrl {
    let mut text = String::new();
    let c = url.config();
    let host = match &c.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    text.push_str(&format!(
        "host={host} port={} user={} dbname={} password=tls-secret-Qx7 sslmode=require",
        c.get_ports().first().copied().unwrap_or(5432),
        c.get_user().unwrap_or("postgres"),
        c.get_dbname().unwrap_or("postgres"),
    ));
    PgUrl::parse(&text, "the test").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_verifies_the_server_certificate_and_encrypts() {
    let Some(db) = test_db().await else { return };
    let Some(root) = std::env::var_os(ROOT_ENV) else {
        selfmon_core::testing::tool::skip_missing_tool(
            "postgres-tls",
            &format!("{ROOT_ENV} is unset (.ci/install-postgres.sh sets it when openssl exists)"),
        );
        return;
    };
    let url = require_tls(&db.url);

    // Only the public roots: the throwaway CA is not trusted, the handshake is refused.
    std::env::remove_var(ROOT_CERT_ENV);
    let e = url.connect("selfmon-tls-test").await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    let shown = format!("{e} {e:?} {:?}", std::error::Error::source(&e));
    assert!(!shown.contains("tls-secret-Qx7"), "{shown}");

    // A file that holds no certificate is named.
    let dir = tempfile_dir();
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    std::env::set_var(ROOT_CERT_ENV, &junk);
    let e = url.connect("selfmon-tls-test").await.unwrap_err();
    assert!(
        matches!(e, Error::Tls { .. }) && e.to_string().contains(ROOT_CERT_ENV),
        "{e}"
    );

    // The CA trusted: a verified, encrypted session, for the stores too.
    std::env::set_var(ROOT_CERT_ENV, &root);
    let client = url.connect("selfmon-tls-test").await.expect("TLS connect");
    let encrypted: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted, "the session is encrypted");
    let mut opts = db.state_options();
    opts.statement_timeout_ms = 5_000;
    let store = PgStateStore::connect(url.clone(), opts)
        .await
        .expect("state store over TLS");
    assert_eq!(
        store.schema_version().await.unwrap(),
        selfmon_postgres::SCHEMA_VERSION
    );
    db.create_logs().await;
    let source = PgLogSource::connect(url, db.log_options())
        .await
        .expect("log source over TLS");
    assert!(source.highest_id().await.unwrap().is_none());
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("selfmon-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
