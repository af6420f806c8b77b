//! Every store trait on SQLite and on PostgreSQL passes the same conformance kits.
//!
//! PostgreSQL runs against the server `scripts/test.sh` starts and names in
//! `AMP_TEST_POSTGRES_URL`; the kits write only fresh ids, so tests share the database.

use std::sync::Arc;

use amp_core::testkit;
use amp_providers::sql::{PoolOptions, PostgresStores, SqliteStores};

fn postgres_url() -> String {
    std::env::var("AMP_TEST_POSTGRES_URL").expect(
        "AMP_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL",
    )
}

#[tokio::test]
async fn sqlite_stores_keep_every_store_promise() {
    let dir = tempfile::tempdir().unwrap();
    let stores =
        Arc::new(SqliteStores::open(&dir.path().join("amp.db"), &PoolOptions::default()).await.unwrap());
    testkit::stores::all(&stores.stores()).await;
}

#[tokio::test]
async fn postgres_stores_keep_every_store_promise() {
    let stores = Arc::new(PostgresStores::connect(&postgres_url(), &PoolOptions::default()).await.unwrap());
    testkit::stores::all(&stores.stores()).await;
}

#[tokio::test]
async fn sqlite_data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/amp.db");
    let first = Arc::new(SqliteStores::open(&path, &PoolOptions::default()).await.unwrap());
    let stores = first.clone().stores();
    let user = stores
        .users
        .create_user(amp_core::store::NewUser::active("durable@example.test", "D"))
        .await
        .unwrap();
    first.close().await;
    drop(stores);
    let reopened = Arc::new(SqliteStores::open(&path, &PoolOptions::default()).await.unwrap()).stores();
    assert_eq!(
        reopened.users.get_user(user.id).await.unwrap().map(|u| u.email).as_deref(),
        Some("durable@example.test")
    );
}

#[tokio::test]
async fn on_a_fresh_database_exactly_one_of_two_first_accounts_claims_the_installation() {
    use amp_core::store::NewUser;
    let dir = tempfile::tempdir().unwrap();
    let stores =
        Arc::new(SqliteStores::open(&dir.path().join("amp.db"), &PoolOptions::default()).await.unwrap())
            .stores();
    let claim = |email: &str| NewUser {
        claims_installation: true,
        status: amp_core::AccountStatus::Pending,
        ..NewUser::active(email, "First")
    };
    let (a, b) = tokio::join!(
        stores.users.create_user(claim("a@example.test")),
        stores.users.create_user(claim("b@example.test"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(usize::from(a.admin) + usize::from(b.admin), 1);
    let loser = if a.admin { b } else { a };
    assert_eq!(loser.status, amp_core::AccountStatus::Pending);
}

fn event() -> amp_core::audit::NewAuditEvent {
    amp_core::audit::NewAuditEvent {
        actor: None,
        action: amp_core::audit::AuditAction::LoginFailed,
        target: "user:unknown".into(),
        workspace: None,
        success: false,
        client_addr: None,
        detail: serde_json::json!({}),
    }
}

#[tokio::test]
async fn the_audit_log_refuses_updates_deletes_and_truncation_at_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amp.db");
    let stores = Arc::new(SqliteStores::open(&path, &PoolOptions::default()).await.unwrap()).stores();
    stores.audit.append(event()).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    assert!(sqlx::query("DELETE FROM audit_log").execute(&pool).await.is_err(), "delete must be refused");
    assert!(
        sqlx::query("UPDATE audit_log SET success = 1").execute(&pool).await.is_err(),
        "update must be refused"
    );

    let pg_stores =
        Arc::new(PostgresStores::connect(&postgres_url(), &PoolOptions::default()).await.unwrap()).stores();
    let mine = pg_stores.audit.append(event()).await.unwrap();
    let pg = sqlx::PgPool::connect(&postgres_url()).await.unwrap();
    let seq = i64::try_from(mine.seq).unwrap();
    let deleted = sqlx::query("DELETE FROM audit_log WHERE seq = $1").bind(seq).execute(&pg).await;
    assert!(deleted.is_err(), "delete must be refused on PostgreSQL too");
    let updated =
        sqlx::query("UPDATE audit_log SET success = true WHERE seq = $1").bind(seq).execute(&pg).await;
    assert!(updated.is_err(), "update must be refused on PostgreSQL too");
    let truncated = sqlx::query("TRUNCATE audit_log").execute(&pg).await;
    assert!(truncated.is_err(), "truncate must be refused on PostgreSQL");
    assert!(
        pg_stores
            .audit
            .query(&amp_core::audit::AuditQuery { limit: 1, ..Default::default() })
            .await
            .unwrap()
            .len()
            == 1
    );
}

/// The operator's least-privilege setup (`scripts/postgres-app-role.sql`), run with psql as
/// an operator would: AMP works as a role that owns nothing, and that role cannot change,
/// empty or unprotect the audit log.
#[tokio::test]
async fn amp_runs_as_a_role_that_can_only_append_to_the_audit_log() {
    use amp_core::{ChunkId, FileId, SearchFilter, UserId, VectorEntry, VectorIndex, Visibility};
    use amp_providers::PgVectorIndex;

    let owner_url = postgres_url();
    // The owner migrates, and makes the vector table the deployment uses.
    PostgresStores::connect(&owner_url, &PoolOptions::default()).await.unwrap();
    PgVectorIndex::open(sqlx::PgPool::connect(&owner_url).await.unwrap(), 5).await.unwrap();

    let role = format!("amp_app_{}", uuid::Uuid::new_v4().simple());
    let psql = std::env::var("AMP_TEST_PSQL").unwrap_or_else(|_| "psql".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/postgres-app-role.sql");
    let out = std::process::Command::new(&psql)
        .args(["-q", "-X", &owner_url, "-v", &format!("app_role={role}"), "-f", script])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "the role script failed: {}", String::from_utf8_lossy(&out.stderr));
    let app_url = owner_url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    assert_ne!(app_url, owner_url, "the test URL names the postgres user");

    // AMP as the role: every store promise holds, vectors are written and found.
    let stores = Arc::new(PostgresStores::connect(&app_url, &PoolOptions::default()).await.unwrap()).stores();
    testkit::stores::all(&stores).await;
    let app_pool = sqlx::PgPool::connect(&app_url).await.unwrap();
    let index = PgVectorIndex::open(app_pool.clone(), 5).await.unwrap();
    let owner = UserId::new();
    let entry = VectorEntry {
        chunk: ChunkId::new(),
        file: FileId::new(),
        visibility: Visibility { owner, workspace: None },
        vector: vec![1.0, 0.0, 0.0, 0.0, 0.0],
    };
    index.upsert(vec![entry.clone()]).await.unwrap();
    let hits = index.search(&entry.vector, &SearchFilter::owner(owner), 1).await.unwrap();
    assert_eq!(hits.len(), 1);

    // The audit log: appended and read, never changed, emptied or unprotected.
    let mine = stores.audit.append(event()).await.unwrap();
    let seq = i64::try_from(mine.seq).unwrap();
    for sql in ["DELETE FROM audit_log WHERE seq = $1", "UPDATE audit_log SET success = false WHERE seq = $1"]
    {
        let err = sqlx::query(sql).bind(seq).execute(&app_pool).await.unwrap_err().to_string();
        assert!(err.contains("permission denied"), "{sql}: {err}");
    }
    for sql in [
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "DROP TABLE audit_log",
        "DELETE FROM _sqlx_migrations",
    ] {
        let err = sqlx::query(sql).execute(&app_pool).await.unwrap_err().to_string();
        assert!(err.contains("permission denied") || err.contains("must be owner"), "{sql}: {err}");
    }
}
