//! [`WorkspaceStore`](amp_core::store::WorkspaceStore) on SQL.

/// Implements [`WorkspaceStore`](amp_core::store::WorkspaceStore) for a store type with a `pool`.
macro_rules! impl_workspace_store {
    ($stores:ty) => {
        #[async_trait::async_trait]
        impl amp_core::store::WorkspaceStore for $stores {
            async fn create_workspace(&self, w: amp_core::Workspace) -> amp_core::Result<()> {
                // The workspace and its owner's membership appear together or not at all.
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                let missing_creator = format!("user {}", w.created_by);
                sqlx::query(
                    "INSERT INTO workspaces (id, name, context, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(w.id.as_uuid())
                .bind(&w.name)
                .bind(&w.context)
                .bind(w.created_by.as_uuid())
                .bind(rows::ms(w.created_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| error::db_error(e, &format!("workspace {} already exists", w.id), &missing_creator))?;
                sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, added_at) VALUES ($1, $2, $3, $4)")
                    .bind(w.id.as_uuid())
                    .bind(w.created_by.as_uuid())
                    .bind(rows::enum_text(&amp_core::WorkspaceRole::Owner)?)
                    .bind(rows::ms(w.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| error::db_error(e, "membership already exists", &missing_creator))?;
                tx.commit().await.map_err(error::internal)
            }

            async fn get_workspace(
                &self,
                id: amp_core::WorkspaceId,
            ) -> amp_core::Result<Option<amp_core::Workspace>> {
                let row: Option<rows::WorkspaceRow> =
                    sqlx::query_as("SELECT id, name, context, created_by, created_at FROM workspaces WHERE id = $1")
                        .bind(id.as_uuid())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(error::internal)?;
                row.map(rows::workspace).transpose()
            }

            async fn update_workspace(&self, w: &amp_core::Workspace) -> amp_core::Result<()> {
                let done = sqlx::query("UPDATE workspaces SET name = $2, context = $3 WHERE id = $1")
                    .bind(w.id.as_uuid())
                    .bind(&w.name)
                    .bind(&w.context)
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(amp_core::Error::not_found(format!("workspace {}", w.id)));
                }
                Ok(())
            }

            async fn delete_workspace(&self, id: amp_core::WorkspaceId) -> amp_core::Result<bool> {
                // Memberships go with it (ON DELETE CASCADE).
                let done = sqlx::query("DELETE FROM workspaces WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn upsert_member(&self, m: amp_core::Membership) -> amp_core::Result<()> {
                sqlx::query(
                    "INSERT INTO memberships (workspace_id, user_id, role, added_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(m.workspace.as_uuid())
                .bind(m.user.as_uuid())
                .bind(rows::enum_text(&m.role)?)
                .bind(rows::ms(m.added_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    error::db_error(e, "membership", &format!("workspace {} or user {}", m.workspace, m.user))
                })?;
                Ok(())
            }

            async fn remove_member(
                &self,
                workspace: amp_core::WorkspaceId,
                user: amp_core::UserId,
            ) -> amp_core::Result<bool> {
                let done = sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                    .bind(workspace.as_uuid())
                    .bind(user.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn member_role(
                &self,
                workspace: amp_core::WorkspaceId,
                user: amp_core::UserId,
            ) -> amp_core::Result<Option<amp_core::WorkspaceRole>> {
                let role: Option<String> =
                    sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                        .bind(workspace.as_uuid())
                        .bind(user.as_uuid())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(error::internal)?;
                role.map(|r| rows::enum_from_text(&r)).transpose()
            }

            async fn list_members(
                &self,
                workspace: amp_core::WorkspaceId,
            ) -> amp_core::Result<Vec<amp_core::Membership>> {
                let rows: Vec<rows::MembershipRow> = sqlx::query_as(
                    "SELECT workspace_id, user_id, role, added_at FROM memberships WHERE workspace_id = $1 \
                     ORDER BY added_at, seq",
                )
                .bind(workspace.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::membership).collect()
            }

            async fn list_workspaces_for(
                &self,
                user: amp_core::UserId,
            ) -> amp_core::Result<Vec<(amp_core::Workspace, amp_core::WorkspaceRole)>> {
                let rows: Vec<(uuid::Uuid, String, Option<String>, uuid::Uuid, i64, String)> = sqlx::query_as(
                    "SELECT w.id, w.name, w.context, w.created_by, w.created_at, m.role \
                     FROM memberships m JOIN workspaces w ON w.id = m.workspace_id \
                     WHERE m.user_id = $1 ORDER BY w.name, w.id",
                )
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter()
                    .map(|(id, name, context, by, at, role)| {
                        Ok((rows::workspace((id, name, context, by, at))?, rows::enum_from_text(&role)?))
                    })
                    .collect()
            }
        }
    };
}
