//! [`TemplateMemory`] for [`PgStateStore`]: the learned-template document.

use super::*;
use selfmon_core::TemplateMemory;

#[async_trait]
impl TemplateMemory for PgStateStore {
    async fn load_template_state(&self) -> selfmon_core::Result<Option<String>> {
        let sql = format!(
            "SELECT state FROM {}.selfmon_template_state WHERE id = 1",
            self.inner.s
        );
        core(
            async {
                with_conn!(self, |c| {
                    c.query_opt(&sql, &[])
                        .await
                        .map_err(Error::query("loading learned templates"))?
                        .map(|r| r.col(0))
                        .transpose()
                })
            }
            .await,
        )
    }

    async fn save_template_state(&self, state: &str) -> selfmon_core::Result<()> {
        let s = self.inner.s.clone();
        let state = state.to_string();
        core(
            async {
                fenced!(self, "saving learned templates", |tx| {
                    tx.execute(
                        &format!(
                            "INSERT INTO {s}.selfmon_template_state (id, state) VALUES (1, $1)
                         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state"
                        ),
                        &[&state],
                    )
                    .await
                    .map_err(Error::query("saving learned templates"))?;
                    Ok(())
                })
            }
            .await,
        )
    }
}
