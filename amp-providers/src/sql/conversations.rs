//! [`ConversationStore`](amp_core::store::ConversationStore) on SQL.

/// Implements [`ConversationStore`](amp_core::store::ConversationStore) for a store type with a `pool`.
macro_rules! impl_conversation_store {
    ($stores:ty) => {
        #[async_trait::async_trait]
        impl amp_core::store::ConversationStore for $stores {
            async fn create_conversation(&self, c: amp_core::conversation::Conversation) -> amp_core::Result<()> {
                // A conversation in a workspace locks it, so a delete running at the same time
                // either hands it back to its owner or this finds no workspace.
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                if let Some(workspace) = c.workspace
                    && !Self::lock_live_workspace(&mut tx, workspace).await?
                {
                    return Err(amp_core::Error::not_found(format!("workspace {workspace}")));
                }
                sqlx::query(
                    "INSERT INTO conversations \
                     (id, owner_id, workspace_id, title, agent_id, model, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(c.id.as_uuid())
                .bind(c.owner.as_uuid())
                .bind(c.workspace.map(|w| w.as_uuid()))
                .bind(&c.title)
                .bind(c.agent.map(|a| a.as_uuid()))
                .bind(c.model.as_ref().map(|m| m.as_str()))
                .bind(rows::ms(c.created_at))
                .bind(rows::ms(c.updated_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| error::db_error(e, "this conversation already exists", &format!("user {}", c.owner)))?;
                tx.commit().await.map_err(error::internal)
            }

            async fn get_conversation(
                &self,
                id: amp_core::ConversationId,
            ) -> amp_core::Result<Option<amp_core::conversation::Conversation>> {
                let row: Option<rows::ConversationRow> = sqlx::query_as(
                    "SELECT id, owner_id, workspace_id, title, agent_id, model, created_at, updated_at \
                     FROM conversations WHERE id = $1",
                )
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                row.map(rows::conversation).transpose()
            }

            async fn update_conversation(
                &self,
                c: &amp_core::conversation::Conversation,
            ) -> amp_core::Result<()> {
                let done = sqlx::query(
                    "UPDATE conversations SET title = $2, agent_id = $3, model = $4, updated_at = $5 WHERE id = $1",
                )
                .bind(c.id.as_uuid())
                .bind(&c.title)
                .bind(c.agent.map(|a| a.as_uuid()))
                .bind(c.model.as_ref().map(|m| m.as_str()))
                .bind(rows::ms(c.updated_at))
                .execute(&self.pool)
                .await
                .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(amp_core::Error::not_found(format!("conversation {}", c.id)));
                }
                Ok(())
            }

            async fn share_conversation(
                &self,
                id: amp_core::ConversationId,
                workspace: amp_core::WorkspaceId,
                updated_at: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<bool> {
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                if !Self::lock_live_workspace(&mut tx, workspace).await? {
                    return Ok(false);
                }
                let done = sqlx::query(
                    "UPDATE conversations SET workspace_id = $2, updated_at = $3 \
                     WHERE id = $1 AND workspace_id IS NULL",
                )
                .bind(id.as_uuid())
                .bind(workspace.as_uuid())
                .bind(rows::ms(updated_at))
                .execute(&mut *tx)
                .await
                .map_err(error::internal)?;
                tx.commit().await.map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_conversations(
                &self,
                owner: amp_core::UserId,
                before: Option<amp_core::ConversationId>,
                limit: u32,
            ) -> amp_core::Result<Vec<amp_core::conversation::Conversation>> {
                let rows: Vec<rows::ConversationRow> = sqlx::query_as(
                    "SELECT id, owner_id, workspace_id, title, agent_id, model, created_at, updated_at \
                     FROM conversations WHERE owner_id = $1 AND workspace_id IS NULL \
                     AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                )
                .bind(owner.as_uuid())
                .bind(before.map(|b| b.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::conversation).collect()
            }

            async fn list_workspace_conversations(
                &self,
                workspace: amp_core::WorkspaceId,
                before: Option<amp_core::ConversationId>,
                limit: u32,
            ) -> amp_core::Result<Vec<amp_core::conversation::Conversation>> {
                let rows: Vec<rows::ConversationRow> = sqlx::query_as(
                    "SELECT id, owner_id, workspace_id, title, agent_id, model, created_at, updated_at \
                     FROM conversations WHERE workspace_id = $1 \
                     AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                )
                .bind(workspace.as_uuid())
                .bind(before.map(|b| b.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::conversation).collect()
            }

            async fn delete_conversation(&self, id: amp_core::ConversationId) -> amp_core::Result<bool> {
                // Messages go with it (ON DELETE CASCADE).
                let done = sqlx::query("DELETE FROM conversations WHERE id = $1")
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn append_message(&self, m: amp_core::conversation::Message) -> amp_core::Result<()> {
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                sqlx::query(
                    "INSERT INTO messages \
                     (id, conversation_id, role, author_id, content, model, citations, usage, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(m.id.as_uuid())
                .bind(m.conversation.as_uuid())
                .bind(rows::enum_text(&m.role)?)
                .bind(m.author.map(|a| a.as_uuid()))
                .bind(&m.content)
                .bind(m.model.as_ref().map(|x| x.as_str()))
                .bind(sqlx::types::Json(&m.citations))
                .bind(m.usage.as_ref().map(sqlx::types::Json))
                .bind(rows::ms(m.created_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    error::db_error(e, "this message already exists", &format!("conversation {}", m.conversation))
                })?;
                sqlx::query("UPDATE conversations SET updated_at = $2 WHERE id = $1 AND updated_at < $2")
                    .bind(m.conversation.as_uuid())
                    .bind(rows::ms(m.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(error::internal)?;
                tx.commit().await.map_err(error::internal)
            }

            async fn list_messages(
                &self,
                conversation: amp_core::ConversationId,
                after: Option<amp_core::MessageId>,
                limit: u32,
            ) -> amp_core::Result<Vec<amp_core::conversation::Message>> {
                let rows: Vec<rows::MessageRow> = sqlx::query_as(
                    "SELECT id, conversation_id, role, author_id, content, model, citations, usage, created_at \
                     FROM messages WHERE conversation_id = $1 AND ($2 IS NULL OR id > $2) \
                     ORDER BY id LIMIT $3",
                )
                .bind(conversation.as_uuid())
                .bind(after.map(|a| a.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::message).collect()
            }

            async fn recent_messages(
                &self,
                conversation: amp_core::ConversationId,
                limit: u32,
            ) -> amp_core::Result<Vec<amp_core::conversation::Message>> {
                let rows: Vec<rows::MessageRow> = sqlx::query_as(
                    "SELECT id, conversation_id, role, author_id, content, model, citations, usage, created_at \
                     FROM messages WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(conversation.as_uuid())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                let mut messages: Vec<_> = rows.into_iter().map(rows::message).collect::<amp_core::Result<_>>()?;
                messages.reverse();
                Ok(messages)
            }
        }
    };
}
