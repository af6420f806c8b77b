//! [`UserStore`](amp_core::store::UserStore) and [`CredentialStore`](amp_core::store::CredentialStore) on SQL.

/// Implements the account traits for a store type whose `pool` field is a sqlx pool.
macro_rules! impl_user_stores {
    ($stores:ty) => {
        #[async_trait::async_trait]
        impl amp_core::store::UserStore for $stores {
            async fn create_user(&self, new: amp_core::store::NewUser) -> amp_core::Result<amp_core::User> {
                let email = new.email.trim().to_owned();
                if email.is_empty() || !email.contains('@') {
                    return Err(amp_core::Error::invalid_input("email must be an address"));
                }
                let mut user = amp_core::User {
                    id: amp_core::UserId::new(),
                    email,
                    display_name: new.display_name,
                    preferences: amp_core::Preferences::default(),
                    created_at: $crate::sql::now_ms(),
                    email_verified: new.email_verified,
                    status: new.status,
                    admin: false,
                };
                // The account and the installation's claim are written together: of two
                // first registrations at once, exactly one commits the claim.
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                sqlx::query(
                    "INSERT INTO users (id, email, display_name, preferences, created_at, email_verified, status, admin) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE)",
                )
                .bind(user.id.as_uuid())
                .bind(&user.email)
                .bind(&user.display_name)
                .bind(sqlx::types::Json(&user.preferences))
                .bind(rows::ms(user.created_at))
                .bind(user.email_verified)
                .bind(user.status.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| error::db_error(e, "an account with this email already exists", "user"))?;
                if new.claims_installation {
                    let claimed = sqlx::query(
                        "INSERT INTO installation_claim (id, user_id, claimed_at) VALUES (1, $1, $2) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(user.id.as_uuid())
                    .bind(rows::ms(user.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(error::internal)?;
                    if claimed.rows_affected() == 1 {
                        sqlx::query("UPDATE users SET admin = TRUE, status = 'active' WHERE id = $1")
                            .bind(user.id.as_uuid())
                            .execute(&mut *tx)
                            .await
                            .map_err(error::internal)?;
                        user.admin = true;
                        user.status = amp_core::AccountStatus::Active;
                    }
                }
                tx.commit().await.map_err(|e| error::db_error(e, "an account with this email already exists", "user"))?;
                Ok(user)
            }

            async fn get_user(&self, id: amp_core::UserId) -> amp_core::Result<Option<amp_core::User>> {
                let row: Option<rows::UserRow> = sqlx::query_as(
                    "SELECT id, email, display_name, preferences, created_at, email_verified, status, admin FROM users WHERE id = $1",
                )
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                row.map(rows::user).transpose()
            }

            async fn find_user_by_email(&self, email: &str) -> amp_core::Result<Option<amp_core::User>> {
                let row: Option<rows::UserRow> = sqlx::query_as(
                    "SELECT id, email, display_name, preferences, created_at, email_verified, status, admin FROM users \
                     WHERE lower(email) = lower($1)",
                )
                .bind(email.trim())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                row.map(rows::user).transpose()
            }

            async fn update_preferences(
                &self,
                id: amp_core::UserId,
                preferences: amp_core::Preferences,
            ) -> amp_core::Result<amp_core::User> {
                let row: Option<rows::UserRow> = sqlx::query_as(
                    "UPDATE users SET preferences = $2 WHERE id = $1 \
                     RETURNING id, email, display_name, preferences, created_at, email_verified, status, admin",
                )
                .bind(id.as_uuid())
                .bind(sqlx::types::Json(&preferences))
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                row.map(rows::user).transpose()?.ok_or_else(|| amp_core::Error::not_found(format!("user {id}")))
            }

            async fn set_status(&self, id: amp_core::UserId, status: amp_core::AccountStatus) -> amp_core::Result<()> {
                let done = sqlx::query("UPDATE users SET status = $2 WHERE id = $1")
                    .bind(id.as_uuid())
                    .bind(status.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(amp_core::Error::not_found(format!("user {id}")));
                }
                Ok(())
            }

            async fn set_admin(&self, id: amp_core::UserId, admin: bool) -> amp_core::Result<()> {
                let done = sqlx::query("UPDATE users SET admin = $2 WHERE id = $1")
                    .bind(id.as_uuid())
                    .bind(admin)
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(amp_core::Error::not_found(format!("user {id}")));
                }
                Ok(())
            }

            async fn mark_email_verified(&self, id: amp_core::UserId, email: &str) -> amp_core::Result<bool> {
                let done = sqlx::query(
                    "UPDATE users SET email_verified = TRUE WHERE id = $1 AND lower(email) = lower($2)",
                )
                .bind(id.as_uuid())
                .bind(email.trim())
                .execute(&self.pool)
                .await
                .map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_users(
                &self,
                q: &amp_core::store::UserQuery,
            ) -> amp_core::Result<Vec<amp_core::User>> {
                let rows: Vec<rows::UserRow> = sqlx::query_as(
                    "SELECT id, email, display_name, preferences, created_at, email_verified, status, admin FROM users \
                     WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
                )
                .bind(q.status.map(|s| s.as_str()))
                .bind(q.after.map(|a| a.as_uuid()))
                .bind(i64::from(q.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::user).collect()
            }
        }

        #[async_trait::async_trait]
        impl amp_core::store::CredentialStore for $stores {
            async fn set_password_hash(&self, user: amp_core::UserId, hash: &str) -> amp_core::Result<()> {
                sqlx::query(
                    "INSERT INTO passwords (user_id, hash) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash",
                )
                .bind(user.as_uuid())
                .bind(hash)
                .execute(&self.pool)
                .await
                .map_err(|e| error::db_error(e, "password", &format!("user {user}")))?;
                Ok(())
            }

            async fn password_hash(&self, user: amp_core::UserId) -> amp_core::Result<Option<String>> {
                sqlx::query_scalar("SELECT hash FROM passwords WHERE user_id = $1")
                    .bind(user.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(error::internal)
            }

            async fn link_identity(
                &self,
                user: amp_core::UserId,
                identity: &amp_core::store::ExternalIdentity,
            ) -> amp_core::Result<()> {
                // Linking twice to the same user is a no-op; to another user it is a conflict.
                let linked: Option<uuid::Uuid> = sqlx::query_scalar(
                    "INSERT INTO identities (issuer, subject, user_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (issuer, subject) DO UPDATE SET user_id = identities.user_id \
                     RETURNING user_id",
                )
                .bind(&identity.issuer)
                .bind(&identity.subject)
                .bind(user.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| error::db_error(e, "identity", &format!("user {user}")))?;
                match linked {
                    Some(owner) if owner == user.as_uuid() => Ok(()),
                    _ => Err(amp_core::Error::conflict("this external identity is linked to another account")),
                }
            }

            async fn find_user_by_identity(
                &self,
                identity: &amp_core::store::ExternalIdentity,
            ) -> amp_core::Result<Option<amp_core::UserId>> {
                let id: Option<uuid::Uuid> =
                    sqlx::query_scalar("SELECT user_id FROM identities WHERE issuer = $1 AND subject = $2")
                        .bind(&identity.issuer)
                        .bind(&identity.subject)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(error::internal)?;
                Ok(id.map(amp_core::UserId::from_uuid))
            }

            async fn insert_api_key(&self, key: amp_core::store::ApiKeyRecord) -> amp_core::Result<()> {
                sqlx::query(
                    "INSERT INTO api_keys (id, user_id, name, prefix, hash, created_at, revoked_at, scopes, minted_by, daily_token_budget) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(key.id.as_uuid())
                .bind(key.user.as_uuid())
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(&key.hash)
                .bind(rows::ms(key.created_at))
                .bind(key.revoked_at.map(rows::ms))
                .bind(key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","))
                .bind(key.minted_by.map(|c| c.to_string()))
                .bind(key.daily_token_budget.map(|b| i64::try_from(b).unwrap_or(i64::MAX)))
                .execute(&self.pool)
                .await
                .map_err(|e| error::db_error(e, "this API key already exists", &format!("user {}", key.user)))?;
                Ok(())
            }

            async fn find_api_key(&self, hash: &str) -> amp_core::Result<Option<amp_core::store::ApiKeyRecord>> {
                let row: Option<rows::ApiKeyRow> = sqlx::query_as(
                    "SELECT id, user_id, name, prefix, hash, created_at, revoked_at, scopes, minted_by, daily_token_budget FROM api_keys WHERE hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                row.map(rows::api_key).transpose()
            }

            async fn list_api_keys(
                &self,
                user: amp_core::UserId,
            ) -> amp_core::Result<Vec<amp_core::store::ApiKeyRecord>> {
                let rows: Vec<rows::ApiKeyRow> = sqlx::query_as(
                    "SELECT id, user_id, name, prefix, hash, created_at, revoked_at, scopes, minted_by, daily_token_budget FROM api_keys \
                     WHERE user_id = $1 ORDER BY created_at, id",
                )
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(error::internal)?;
                rows.into_iter().map(rows::api_key).collect()
            }

            async fn revoke_api_key(
                &self,
                user: amp_core::UserId,
                id: amp_core::ApiKeyId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<()> {
                let done = sqlx::query(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND user_id = $2",
                )
                .bind(id.as_uuid())
                .bind(user.as_uuid())
                .bind(rows::ms(at))
                .execute(&self.pool)
                .await
                .map_err(error::internal)?;
                if done.rows_affected() == 0 {
                    return Err(amp_core::Error::not_found(format!("API key {id}")));
                }
                Ok(())
            }

            async fn revoke_api_keys_of(
                &self,
                user: amp_core::UserId,
                at: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<u64> {
                let done = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                    .bind(user.as_uuid())
                    .bind(rows::ms(at))
                    .execute(&self.pool)
                    .await
                    .map_err(error::internal)?;
                Ok(done.rows_affected())
            }

            async fn insert_email_token(&self, token: amp_core::store::EmailToken) -> amp_core::Result<()> {
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                sqlx::query("DELETE FROM email_tokens WHERE user_id = $1")
                    .bind(token.user.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(error::internal)?;
                sqlx::query("INSERT INTO email_tokens (hash, user_id, email, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(&token.hash)
                    .bind(token.user.as_uuid())
                    .bind(&token.email)
                    .bind(rows::ms(token.expires_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| error::db_error(e, "this token already exists", &format!("user {}", token.user)))?;
                tx.commit().await.map_err(error::internal)
            }

            async fn take_email_token(
                &self,
                hash: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<Option<amp_core::store::EmailToken>> {
                let row: Option<(String, uuid::Uuid, String, i64)> = sqlx::query_as(
                    "DELETE FROM email_tokens WHERE hash = $1 RETURNING hash, user_id, email, expires_at",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::internal)?;
                let Some((hash, user, email, expires_at)) = row else { return Ok(None) };
                let expires_at = rows::time(expires_at)?;
                Ok((expires_at > now).then(|| amp_core::store::EmailToken {
                    hash,
                    user: amp_core::UserId::from_uuid(user),
                    email,
                    expires_at,
                }))
            }

            async fn claim_once(
                &self,
                kind: &str,
                id: &str,
                expires_at: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<bool> {
                let mut tx = self.pool.begin().await.map_err(error::internal)?;
                sqlx::query("DELETE FROM one_time_ids WHERE expires_at <= $1")
                    .bind(rows::ms(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(error::internal)?;
                let done = sqlx::query(
                    "INSERT INTO one_time_ids (kind, id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(kind)
                .bind(id)
                .bind(rows::ms(expires_at))
                .execute(&mut *tx)
                .await
                .map_err(error::internal)?;
                tx.commit().await.map_err(error::internal)?;
                Ok(done.rows_affected() == 1)
            }

            async fn take_once(
                &self,
                kind: &str,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> amp_core::Result<bool> {
                let row: Option<(i64,)> =
                    sqlx::query_as("DELETE FROM one_time_ids WHERE kind = $1 AND id = $2 RETURNING expires_at")
                        .bind(kind)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(error::internal)?;
                Ok(row.is_some_and(|(expires_at,)| expires_at > rows::ms(now)))
            }
        }
    };
}
