//! [`TemplateMemory`] for [`SqliteStateStore`]: one row of learned templates.

use async_trait::async_trait;
use rusqlite::OptionalExtension;
use selfmon_core::TemplateMemory;

use super::SqliteStateStore;
use crate::error::Error;

#[async_trait]
impl TemplateMemory for SqliteStateStore {
    async fn load_template_state(&self) -> selfmon_core::Result<Option<String>> {
        self.run_core(|conn| {
            conn.query_row(
                "SELECT state FROM selfmon_template_state WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(Error::sqlite("reading the template state"))
        })
        .await
    }

    async fn save_template_state(&self, state: &str) -> selfmon_core::Result<()> {
        let state = state.to_string();
        let saved_at = self.now_text();
        self.run_core(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO selfmon_template_state (id, state, updated_at)
                 VALUES (1, ?1, ?2)",
                rusqlite::params![state, saved_at],
            )
            .map_err(Error::sqlite("saving the template state"))?;
            Ok(())
        })
        .await
    }
}
