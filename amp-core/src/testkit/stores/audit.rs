use std::collections::BTreeSet;

use serde_json::json;

use super::new_user;
use crate::audit::{AuditAction, AuditQuery, NewAuditEvent};
use crate::ids::{UserId, WorkspaceId};
use crate::store::Stores;

fn event(actor: Option<UserId>, action: AuditAction, workspace: Option<WorkspaceId>) -> NewAuditEvent {
    NewAuditEvent {
        actor,
        action,
        target: "file:kit".into(),
        workspace,
        success: action != AuditAction::LoginFailed,
        client_addr: Some("127.0.0.1".into()),
        detail: json!({ "kit": true }),
    }
}

/// Checks every promise of [`AuditLog`](crate::store::AuditLog).
pub async fn audit(stores: &Stores) {
    let log = &stores.audit;
    let actor = new_user(stores).await;
    let ws = WorkspaceId::new();
    let written = [
        event(Some(actor), AuditAction::LoginFailed, None),
        event(Some(actor), AuditAction::Login, None),
        event(Some(actor), AuditAction::MemberChanged, Some(ws)),
        event(Some(actor), AuditAction::Deleted, Some(ws)),
    ];
    let mut seqs = Vec::new();
    for e in &written {
        let stored = log.append(e.clone()).await.unwrap();
        assert_eq!(&stored.event, e, "[audit] the record must be stored as given");
        seqs.push(stored.seq);
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "[audit] seq must increase in append order");

    let by_actor =
        log.query(&AuditQuery { actor: Some(actor), limit: 10, ..AuditQuery::default() }).await.unwrap();
    let got: Vec<_> = by_actor.iter().map(|e| e.seq).collect();
    assert_eq!(
        got,
        seqs.iter().rev().copied().collect::<Vec<_>>(),
        "[audit] an actor's records, newest first"
    );

    let in_ws =
        log.query(&AuditQuery { workspace: Some(ws), limit: 10, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(
        in_ws.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![seqs[3], seqs[2]],
        "[audit] a workspace's records"
    );

    let failed = AuditQuery {
        actor: Some(actor),
        action: Some(AuditAction::LoginFailed),
        limit: 10,
        ..AuditQuery::default()
    };
    let failed = log.query(&failed).await.unwrap();
    assert_eq!(failed.len(), 1, "[audit] filters combine");
    assert!(!failed[0].event.success);

    let page =
        AuditQuery { actor: Some(actor), before_seq: Some(seqs[2]), limit: 1, ..AuditQuery::default() };
    let page = log.query(&page).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![seqs[1]],
        "[audit] before_seq and limit page backwards"
    );

    let concurrent = new_user(stores).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(event(Some(concurrent), AuditAction::DataSourceRead, None)).await.unwrap().seq
        }));
    }
    let mut seen = BTreeSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap());
    }
    assert_eq!(seen.len(), 10, "[audit] concurrent appends must get distinct seq numbers");
    let stored = log
        .query(&AuditQuery { actor: Some(concurrent), limit: 100, ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(stored.len(), 10, "[audit] no concurrent append may be lost");
}
