//! A throwaway schema per test on the server named by `SELFMON_TEST_PG_URL` (started by
//! `.ci/install-postgres.sh`), so tests run in parallel without seeing each other's rows.
#![allow(dead_code)]

use selfmon_core::LogRecord;
use selfmon_postgres::{PgLogSourceOptions, PgUrl};
use tokio_postgres::{Client, GenericClient};

/// The variable naming the test server.
pub const URL_ENV: &str = "SELFMON_TEST_PG_URL";

/// A fresh schema on the test server.
pub struct TestDb {
    /// The server.
    pub url: PgUrl,
    /// The schema this test owns.
    pub schema: String,
    /// An admin connection (search_path set to the schema).
    pub client: Client,
}

/// Connects to the test server and creates a fresh schema, or reports a visible skip (`None`).
pub async fn test_db() -> Option<TestDb> {
    let url = match PgUrl::from_env(URL_ENV) {
        Ok(url) => url,
        Err(e) => {
            selfmon_core::testing::tool::skip_missing_tool(
                "postgres",
                &format!("{e} (run .ci/install-postgres.sh)"),
            );
            return None;
        }
    };
    let client = url
        .connect("selfmon-test")
        .await
        .expect("connect to the test server");
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}"
        ))
        .await
        .expect("create schema");
    Some(TestDb {
        url,
        schema,
        client,
    })
}

impl TestDb {
    /// Another connection with the search path set to this schema.
    pub async fn connect(&self) -> Client {
        let c = self.url.connect("selfmon-test").await.expect("connect");
        c.batch_execute(&format!("SET search_path TO {}", self.schema))
            .await
            .expect("search path");
        c
    }

    /// Log-source options pointing at this schema's `logs`.
    pub fn log_options(&self) -> PgLogSourceOptions {
        PgLogSourceOptions {
            schema: self.schema.clone(),
            horizon_wait_ms: 200,
            ..Default::default()
        }
    }

    /// Creates the cluster `logs` table.
    pub async fn create_logs(&self) {
        self.client
            .batch_execute(selfmon_postgres::LOGS_TABLE_DDL)
            .await
            .expect("create logs");
    }
}

/// Inserts records (ids come from the sequence, in order) with the given node.
pub async fn insert(client: &impl GenericClient, records: &[LogRecord], node: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    for r in records {
        let extra = if r.extra_data.is_null() {
            None
        } else {
            Some(r.extra_data.to_string())
        };
        let row = client
            .query_one(
                "INSERT INTO logs (timestamp, level, source, message, correlation_id, user_id,
                 request_path, extra_data, node_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING id",
                &[
                    &r.timestamp,
                    &r.level.as_str(),
                    &r.source,
                    &r.message,
                    &r.correlation_id,
                    &r.user_id,
                    &r.request_path,
                    &extra,
                    &node,
                ],
            )
            .await
            .expect("insert log row");
        ids.push(i64::from(row.get::<_, i32>(0)));
    }
    ids
}
