//! A password in the connection string never appears in an error message (with its whole source
//! chain), in `Debug` output of the URL, the stores or the errors, or in the core error a host
//! sees — on the failures a real server produces.

mod support;

use selfmon_core::{Component, LogSource, ScanLedger};
use selfmon_postgres::{PgLogSource, PgLogSourceOptions, PgStateStore, PgStateStoreOptions, PgUrl};
use support::test_db;

const SECRET: &str = "Zq9-never-shown-7Xw";

/// Everything a host could print about an error: its message, each source's message, and Debug.
fn everything_shown(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("{e}\n{e:?}\n");
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    out
}

fn assert_hidden(what: &str, shown: &str) {
    assert!(
        !shown.contains(SECRET),
        "{what} shows the password:\n{shown}"
    );
}

/// The test server's address with `SECRET` as password (the test server trusts loopback, so the
/// password is accepted and ignored) and `db` as database.
fn with_secret(url: &PgUrl, db: &str) -> String {
    let c = url.config();
    let host = match &c.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let user = c.get_user().unwrap_or("postgres");
    format!("postgres://{user}:{SECRET}@{host}:{port}/{db}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_never_appears_in_errors_or_debug_output() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let mut shown = Vec::new();

    // The server refuses: no such database.
    let url = PgUrl::parse(&with_secret(&db.url, "no_such_db_for_selfmon"), "$TEST").unwrap();
    shown.push(("the URL's Debug", format!("{url:?} {}", url.target())));
    let e = PgStateStore::connect(url.clone(), PgStateStoreOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no_such_db_for_selfmon"), "{e}");
    shown.push(("a refused state-store connection", everything_shown(&e)));
    let core = e.into_core(Component::StateStore);
    shown.push(("the same as a core error", everything_shown(&core)));
    let e = PgLogSource::connect(url, PgLogSourceOptions::default())
        .await
        .unwrap_err();
    shown.push(("a refused log-source connection", everything_shown(&e)));

    // Nobody listens on the port.
    let closed =
        with_secret(&db.url, "x").replace(&format!(":{}/", db.url.config().get_ports()[0]), ":1/");
    let e = PgStateStore::connect(
        PgUrl::parse(&closed, "$TEST").unwrap(),
        PgStateStoreOptions::default(),
    )
    .await
    .unwrap_err();
    shown.push(("a connection refused by the OS", everything_shown(&e)));

    // Key=value form, and a string that does not parse.
    let kv = format!("host=127.0.0.1 port=1 user=u password={SECRET} dbname=x connect_timeout=2");
    let e = PgStateStore::connect(PgUrl::parse(&kv, "$TEST").unwrap(), Default::default())
        .await
        .unwrap_err();
    shown.push(("a key=value string", everything_shown(&e)));
    let e = PgUrl::parse(&format!("postgres://u:{SECRET}@h:port/db"), "$TEST").unwrap_err();
    shown.push(("an unparsable string", everything_shown(&e)));

    // Connected (the password accepted): the stores' Debug, and errors of a live connection.
    let app = format!("selfmon-secret-{}", db.schema);
    let dbname = db
        .url
        .config()
        .get_dbname()
        .unwrap_or("postgres")
        .to_string();
    let url = PgUrl::parse(&with_secret(&db.url, &dbname), "$TEST")
        .unwrap()
        .with_application_name(&app);
    let store = PgStateStore::connect(url.clone(), db.state_options())
        .await
        .expect("connect with the password in the URL");
    let source = PgLogSource::connect(url.clone(), db.log_options())
        .await
        .expect("connect the source");
    shown.push(("the stores' Debug", format!("{store:?}\n{source:?}")));
    let e = PgLogSource::connect(
        url.clone(),
        PgLogSourceOptions {
            table: "no_such_table".into(),
            ..db.log_options()
        },
    )
    .await
    .unwrap_err();
    shown.push(("a missing table", everything_shown(&e)));

    // The server cuts every connection: the errors of the calls that meet it.
    let cut: i64 = db
        .client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("terminate")
        .get(0);
    assert!(cut >= 2, "both connections were cut ({cut})");
    if let Err(e) = source.read_after(0, 10).await {
        shown.push(("a read on a cut connection", everything_shown(&e)));
    }
    if let Err(e) = store.last_successful_cursor().await {
        shown.push(("a state call on a cut connection", everything_shown(&e)));
    }

    for (what, text) in &shown {
        assert_hidden(what, text);
    }
    // The tests above really exercised Display and Debug of real errors.
    assert!(shown.len() >= 9, "{}", shown.len());
}
