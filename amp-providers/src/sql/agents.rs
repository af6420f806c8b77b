//! [`AgentStore`](amp_core::store::AgentStore) on SQL.

/// Implements [`AgentStore`](amp_core::store::AgentStore) for a store type with a `pool`.
macro_rules! impl_agent_store {
    ($stores:ty) => {
        #[async_trait::async_trait]
        impl amp_core::store::AgentStore for $stores {
            async fn create_agent(&self, a: amp_core::AgentConfig) -> amp_core::Result<()> {
                sqlx::query(
                    "INSERT INTO agents (id, owner_id, name, description, instructions, model, fallbacks, \
                     temperature, max_tokens, files, workspaces, data_sources, visible_workspace, created_at, \
                     updated_at, retrieval) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                )
                .bind(a.id.as_uuid())
                .bind(a.owner.as_uuid())
                .bind(&a.name)
                .bind(&a.description)
                .bind(&a.instructions)
                .bind(a.model.as_ref().map(|m| m.as_str()))
                .bind(sqlx::types::Json(&a.fallbacks))
                .bind(a.temperature)
                .bind(a.max_tokens.map(i64::from))
                .bind(sqlx::types::Json(&a.files))
                .bind(sqlx::types::Json(&a.workspaces))
                .bind(sqlx::types::Json(&a.data_sources))
                .bind($crate::sql::visible_workspace(&a.visibility))
                .bind(rows::ms(a.created_at))
                .bind(rows::ms(a.updated_at))
                .bind(sqlx::types::Json(&a.retrieval))
                .execute(&self.pool)
                .await
                .map_err(|e| error::db_error(e, &format!("agent {} already exists", a.id), &format!("user {}", a.owner)))?;
                Ok(())
            }

            async fn get_agent(&self, id: amp_core::AgentId) -> amp_core::Result<Option<amp_core::AgentConfig>> {
                let row: Option<rows::AgentRow> = sqlx::query_as(
                    "SELECT id, owner_id, name, description, instructions, model, fallbacks, temperature, \
                     max_tokens, files, workspaces, data_sources, visible_workspace, created_at, updated_at, retrieval \
                     FROM agents WHERE id = $1",
                )
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                row.map(rows::agent).transpose()
            }

            async fn update_agent(&self, a: &amp_core::AgentConfig) -> amp_core::Result<()> {
                let done = sqlx::query(
                    "UPDATE agents SET name = $2, description = $3, instructions = $4, model = $5, fallbacks = $6, \
                     temperature = $7, max_tokens = $8, files = $9, workspaces = $10, data_sources = $11, \
                     visible_workspace = $12, updated_at = $13, retrieval = $14 WHERE id = $1",
                )
                .bind(a.id.as_uuid())
                .bind(&a.name)
                .bind(&a.description)
                .bind(&a.instructions)
                .bind(a.model.as_ref().map(|m| m.as_str()))
                .bind(sqlx::types::Json(&a.fallbacks))
                .bind(a.temperature)
                .bind(a.max_tokens.map(i64::from))
                .bind(sqlx::types::Json(&a.files))
                .bind(sqlx::types::Json(&a.workspaces))
                .bind(sqlx::types::Json(&a.data_sources))
                .bind($crate::sql::visible_workspace(&a.visibility))
                .bind(rows::ms(a.updated_at))
                .bind(sqlx::types::Json(&a.retrieval))
                .execute(&self.pool)
                .await
                .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(amp_core::Error::not_found(format!("agent {}", a.id)));
                }
                Ok(())
            }

            async fn delete_agent(&self, id: amp_core::AgentId) -> amp_core::Result<bool> {
                let done = sqlx::query("DELETE FROM agents WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_agents(
                &self,
                user: amp_core::UserId,
                workspaces: &[amp_core::WorkspaceId],
            ) -> amp_core::Result<Vec<amp_core::AgentConfig>> {
                let mut sql = String::from(
                    "SELECT id, owner_id, name, description, instructions, model, fallbacks, temperature, \
                     max_tokens, files, workspaces, data_sources, visible_workspace, created_at, updated_at, retrieval \
                     FROM agents WHERE owner_id = $1",
                );
                if !workspaces.is_empty() {
                    sql.push_str(&format!(" OR visible_workspace IN ({})", rows::placeholders(2, workspaces.len())));
                }
                sql.push_str(" ORDER BY name, id");
                let mut query = sqlx::query_as::<_, rows::AgentRow>(sqlx::AssertSqlSafe(sql)).bind(user.as_uuid());
                for w in workspaces {
                    query = query.bind(w.as_uuid());
                }
                let rows = query.fetch_all(&self.pool).await.map_err(error::internal)?;
                rows.into_iter().map(rows::agent).collect()
            }
        }
    };
}
