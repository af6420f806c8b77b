//! The retrieval scope: a chat reads the caller's own files, plus exactly one workspace's
//! when it runs inside that workspace, on real SQLite stores.

use std::sync::Arc;

use amp_agents::session::{DeviceLogin, Registration};
use amp_agents::{Principal, SessionAgent};
use amp_core::config::AuthConfig;
use amp_core::{ErrorKind, FileId, SearchFilter, Secret, UserId, Visibility, WorkspaceId, WorkspaceRole};
use amp_providers::sql::{PoolOptions, SqliteStores};
use amp_providers::{MemoryEventBus, MemoryRateLimiter};

struct Fixture {
    agent: SessionAgent,
    stores: amp_core::Stores,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sql =
        Arc::new(SqliteStores::open(&dir.path().join("amp.db"), &PoolOptions::default()).await.unwrap());
    let config = AuthConfig {
        jwt_secret: Some(Secret::new("test-signing-key-".repeat(3))),
        registration: amp_core::config::RegistrationMode::Open,
        ..AuthConfig::default()
    };
    let events = Arc::new(MemoryEventBus::new(&amp_core::config::EventBusConfig::default()));
    let stores = sql.stores();
    let agent =
        SessionAgent::new(stores.clone(), Arc::new(MemoryRateLimiter::new()), events, config).unwrap();
    Fixture { agent, stores, _dir: dir }
}

async fn person(agent: &SessionAgent, email: &str) -> Principal {
    let password = "correct horse battery";
    let registration = Registration { email: email.into(), password: password.into(), display_name: None };
    agent.register(registration, None).await.unwrap();
    let pair = agent.login(email, password, DeviceLogin::default()).await.unwrap();
    agent.authenticate(&pair.access_token).await.unwrap()
}

fn reads(filter: &SearchFilter, owner: UserId, workspace: Option<WorkspaceId>) -> bool {
    filter.matches(&Visibility { owner, workspace }, FileId::new())
}

#[tokio::test]
async fn a_workspace_chat_reads_that_workspaces_files_only() {
    let f = fixture().await;
    let me = person(&f.agent, "me@example.test").await;
    let colleague = person(&f.agent, "colleague@example.test").await;
    let ws = f.agent.create_workspace(&colleague, "Research", None).await.unwrap().id;
    f.agent.set_member(&colleague, ws, "me@example.test", WorkspaceRole::Viewer).await.unwrap();
    assert_eq!(
        f.agent.retrieval_scope(&me, Some(ws)).await.unwrap_err().kind(),
        ErrorKind::NotFound,
        "invited only"
    );
    f.stores.users.mark_email_verified(me.user, "me@example.test").await.unwrap();
    f.agent.accept_invitation(&me, ws).await.unwrap();
    let other_ws = f.agent.create_workspace(&me, "Private", None).await.unwrap().id;

    let scope = f.agent.retrieval_scope(&me, Some(ws)).await.unwrap();
    assert!(!reads(&scope, me.user, None), "not the caller's private files: every member reads the answer");
    assert!(reads(&scope, colleague.user, Some(ws)), "the workspace's files");
    assert!(reads(&scope, me.user, Some(ws)), "the caller's files shared into it");
    assert!(!reads(&scope, me.user, Some(other_ws)), "not the caller's files in another workspace");
    assert!(!reads(&scope, colleague.user, None), "another member's private files");
    assert!(!reads(&scope, colleague.user, Some(other_ws)), "another workspace's files");
    assert!(!reads(&scope, UserId::new(), Some(WorkspaceId::new())), "strangers' files");
}

#[tokio::test]
async fn a_personal_chat_reads_only_the_callers_files() {
    let f = fixture().await;
    let me = person(&f.agent, "me@example.test").await;
    let ws = f.agent.create_workspace(&me, "Research", None).await.unwrap().id;

    let scope = f.agent.retrieval_scope(&me, None).await.unwrap();
    assert_eq!(scope, SearchFilter::owner(me.user));
    assert!(reads(&scope, me.user, None));
    assert!(!reads(&scope, UserId::new(), Some(ws)), "workspaces are not searched outside them");
}

#[tokio::test]
async fn a_non_member_gets_not_found_for_a_workspace_scope() {
    let f = fixture().await;
    let owner = person(&f.agent, "owner@example.test").await;
    let outsider = person(&f.agent, "outsider@example.test").await;
    let ws = f.agent.create_workspace(&owner, "Research", None).await.unwrap().id;

    let err = f.agent.retrieval_scope(&outsider, Some(ws)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = f.agent.retrieval_scope(&outsider, Some(WorkspaceId::new())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
