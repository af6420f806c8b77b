//! [`WorkspaceStore`](amp_core::store::WorkspaceStore) on SQL.

/// Implements [`WorkspaceStore`](amp_core::store::WorkspaceStore) for a store type with a `pool`.
macro_rules! impl_workspace_store {
    ($stores:ty, $db:ty) => {
        impl $stores {
        /// Takes the workspace's row lock (PostgreSQL) or the database's write lock
        /// (SQLite) until the transaction ends; `false` when there is no such workspace.
        /// Membership changes take it, so those of one workspace run one after another, and
        /// so does everything that puts something into a workspace, as its delete does, so
        /// the two never interleave.
        pub(crate) async fn lock_live_workspace(
            tx: &mut sqlx::Transaction<'_, $db>,
            workspace: amp_core::WorkspaceId,
        ) -> amp_core::Result<bool> {
            let done = sqlx::query("UPDATE workspaces SET name = name WHERE id = $1")
                .bind(workspace.as_uuid())
                .execute(&mut **tx)
                .await
                .map_err(error::internal)?;
            Ok(done.rows_affected() == 1)
        }

        /// [`Self::lock_live_workspace`], `NotFound` when there is none.
        async fn lock_workspace(
            tx: &mut sqlx::Transaction<'_, $db>,
            workspace: amp_core::WorkspaceId,
        ) -> amp_core::Result<()> {
            if Self::lock_live_workspace(tx, workspace).await? {
                Ok(())
            } else {
                Err(amp_core::Error::not_found(format!("workspace {workspace}")))
            }
        }

        async fn upsert_member_in(
            tx: &mut sqlx::Transaction<'_, $db>,
            m: &amp_core::Membership,
        ) -> amp_core::Result<()> {
            sqlx::query(
                "INSERT INTO memberships (workspace_id, user_id, role, added_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role",
            )
            .bind(m.workspace.as_uuid())
            .bind(m.user.as_uuid())
            .bind(rows::enum_text(&m.role)?)
            .bind(rows::ms(m.added_at))
            .execute(&mut **tx)
            .await
            .map_err(|e| error::db_error(e, "membership", &format!("workspace {} or user {}", m.workspace, m.user)))?;
            Ok(())
        }

        /// `Conflict` (and the transaction is dropped, so rolled back) if no owner is left.
        async fn ensure_owner_left(
            tx: &mut sqlx::Transaction<'_, $db>,
            workspace: amp_core::WorkspaceId,
        ) -> amp_core::Result<()> {
            let owners: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = $2")
                    .bind(workspace.as_uuid())
                    .bind(rows::enum_text(&amp_core::WorkspaceRole::Owner)?)
                    .fetch_one(&mut **tx)
                    .await
                    .map_err(error::internal)?;
            if owners == 0 {
                return Err(amp_core::Error::conflict(
                    "a workspace needs an owner: make someone else owner first, or delete it",
                ));
            }
            Ok(())
        }
        }

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
                // One transaction, the workspace locked first (shares lock it too): a file
                // shared or a conversation started while the delete ran goes back to its
                // owner instead of pointing at a workspace that is gone. Memberships and
                // invitations go with it (ON DELETE CASCADE).
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                if !Self::lock_live_workspace(&mut tx, id).await? {
                    return Ok(false);
                }
                for sql in [
                    "UPDATE files SET workspace_id = NULL WHERE workspace_id = $1",
                    "UPDATE conversations SET workspace_id = NULL WHERE workspace_id = $1",
                    "DELETE FROM workspaces WHERE id = $1",
                ] {
                    sqlx::query(sql).bind(id.as_uuid()).execute(&mut *tx).await.map_err(error::internal)?;
                }
                tx.commit().await.map_err(error::internal)?;
                Ok(true)
            }

            async fn upsert_member(&self, m: amp_core::Membership) -> amp_core::Result<()> {
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                Self::lock_workspace(&mut tx, m.workspace).await?;
                Self::upsert_member_in(&mut tx, &m).await?;
                Self::ensure_owner_left(&mut tx, m.workspace).await?;
                tx.commit().await.map_err(error::internal)
            }

            async fn remove_member(
                &self,
                workspace: amp_core::WorkspaceId,
                user: amp_core::UserId,
            ) -> amp_core::Result<bool> {
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                Self::lock_workspace(&mut tx, workspace).await?;
                let done = sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                    .bind(workspace.as_uuid())
                    .bind(user.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(error::internal)?;
                Self::ensure_owner_left(&mut tx, workspace).await?;
                tx.commit().await.map_err(error::internal)?;
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

            async fn upsert_invitation(&self, i: amp_core::Invitation) -> amp_core::Result<()> {
                sqlx::query(
                    "INSERT INTO invitations (workspace_id, email, role, invited_by, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, email) DO UPDATE SET \
                     role = excluded.role, invited_by = excluded.invited_by, created_at = excluded.created_at, \
                     expires_at = excluded.expires_at",
                )
                .bind(i.workspace.as_uuid())
                .bind(i.email.trim().to_lowercase())
                .bind(rows::enum_text(&i.role)?)
                .bind(i.invited_by.as_uuid())
                .bind(rows::ms(i.created_at))
                .bind(rows::ms(i.expires_at))
                .execute(&self.pool)
                .await
                .map_err(|e| error::db_error(e, "invitation", &format!("workspace {}", i.workspace)))?;
                Ok(())
            }

            async fn list_invitations(
                &self,
                workspace: amp_core::WorkspaceId,
            ) -> amp_core::Result<Vec<amp_core::Invitation>> {
                let rows: Vec<rows::InvitationRow> = sqlx::query_as(
                    "SELECT workspace_id, email, role, invited_by, created_at, expires_at FROM invitations \
                     WHERE workspace_id = $1 ORDER BY created_at, email",
                )
                .bind(workspace.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::invitation).collect()
            }

            async fn invitations_for(&self, email: &str) -> amp_core::Result<Vec<amp_core::Invitation>> {
                let rows: Vec<rows::InvitationRow> = sqlx::query_as(
                    "SELECT workspace_id, email, role, invited_by, created_at, expires_at FROM invitations \
                     WHERE email = $1 ORDER BY created_at, workspace_id",
                )
                .bind(email.trim().to_lowercase())
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::invitation).collect()
            }

            async fn delete_invitation(&self, workspace: amp_core::WorkspaceId, email: &str) -> amp_core::Result<bool> {
                let done = sqlx::query("DELETE FROM invitations WHERE workspace_id = $1 AND email = $2")
                    .bind(workspace.as_uuid())
                    .bind(email.trim().to_lowercase())
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn accept_invitation(
                &self,
                workspace: amp_core::WorkspaceId,
                email: &str,
                user: amp_core::UserId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<Option<amp_core::Membership>> {
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                let role: Option<(String, i64)> = sqlx::query_as(
                    "DELETE FROM invitations WHERE workspace_id = $1 AND email = $2 RETURNING role, expires_at",
                )
                .bind(workspace.as_uuid())
                .bind(email.trim().to_lowercase())
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::internal)?;
                let Some((role, expires_at)) = role else { return Ok(None) };
                if expires_at <= rows::ms(at) {
                    // The lapsed invitation goes; nobody joins.
                    tx.commit().await.map_err(error::internal)?;
                    return Ok(None);
                }
                let existing = sqlx::query_scalar::<_, String>(
                    "SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2",
                )
                .bind(workspace.as_uuid())
                .bind(user.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::internal)?;
                let role: amp_core::WorkspaceRole = match existing {
                    // Already a member: an invitation never lowers a role.
                    Some(current) => {
                        let current: amp_core::WorkspaceRole = rows::enum_from_text(&current)?;
                        let invited: amp_core::WorkspaceRole = rows::enum_from_text(&role)?;
                        if current.allows(invited) { current } else { invited }
                    }
                    None => rows::enum_from_text(&role)?,
                };
                let membership = amp_core::Membership { workspace, user, role, added_at: at };
                Self::upsert_member_in(&mut tx, &membership).await?;
                tx.commit().await.map_err(error::internal)?;
                Ok(Some(membership))
            }
        }
    };
}
