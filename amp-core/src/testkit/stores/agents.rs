use super::new_user;
use crate::error::ErrorKind;
use crate::ids::{AgentId, DataSourceId, FileId, ModelId, UserId, WorkspaceId};
use crate::people::{AgentConfig, AgentVisibility};
use crate::store::Stores;
use crate::testkit::now_ms;

fn agent(owner: UserId, name: &str, visibility: AgentVisibility) -> AgentConfig {
    let now = now_ms();
    AgentConfig {
        id: AgentId::new(),
        owner,
        name: name.into(),
        description: format!("{name} helps"),
        instructions: "Cite your sources.".into(),
        model: Some(ModelId::new("gpt-4o")),
        fallbacks: vec![ModelId::new("local")],
        temperature: Some(0.25),
        max_tokens: Some(512),
        files: vec![FileId::new()],
        workspaces: vec![WorkspaceId::new()],
        data_sources: vec![DataSourceId::new()],
        visibility,
        retrieval: crate::people::AgentRetrieval {
            mode: Some(crate::config::RetrievalMode::Keyword),
            vector_weight: None,
            keyword_weight: Some(2.5),
        },
        created_at: now,
        updated_at: now,
    }
}

/// Checks every promise of [`AgentStore`](crate::store::AgentStore).
pub async fn agents(stores: &Stores) {
    let s = &stores.agents;
    let (me, other) = (new_user(stores).await, new_user(stores).await);
    let (team, elsewhere) = (WorkspaceId::new(), WorkspaceId::new());
    let mine = agent(me, "b-researcher", AgentVisibility::Private);
    let shared = agent(other, "a-analyst", AgentVisibility::Workspace(team));
    let private = agent(other, "c-secret", AgentVisibility::Private);
    let far = agent(other, "d-far", AgentVisibility::Workspace(elsewhere));
    for a in [&mine, &shared, &private, &far] {
        s.create_agent(a.clone()).await.unwrap();
    }
    assert_eq!(
        s.get_agent(mine.id).await.unwrap(),
        Some(mine.clone()),
        "[agents] every field reads back intact"
    );
    assert_eq!(s.get_agent(AgentId::new()).await.unwrap(), None);
    let err = s.create_agent(mine.clone()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "[agents] a duplicate agent id must be Conflict");

    let ids = |v: Vec<AgentConfig>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_agents(me, &[team]).await.unwrap()),
        vec![shared.id, mine.id],
        "[agents] own agents plus those shared into the given workspaces, by name"
    );
    assert_eq!(
        ids(s.list_agents(me, &[]).await.unwrap()),
        vec![mine.id],
        "[agents] without workspaces, only own agents"
    );

    let mut changed = mine.clone();
    changed.instructions = "Answer in French.".into();
    changed.temperature = None;
    changed.fallbacks.clear();
    changed.visibility = AgentVisibility::Workspace(team);
    changed.updated_at = now_ms();
    s.update_agent(&changed).await.unwrap();
    assert_eq!(
        s.get_agent(mine.id).await.unwrap(),
        Some(changed),
        "[agents] update must replace every field"
    );
    let err = s.update_agent(&agent(me, "ghost", AgentVisibility::Private)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "[agents] updating a missing agent must be NotFound");

    assert!(s.delete_agent(mine.id).await.unwrap(), "[agents] deleting reports it existed");
    assert_eq!(s.get_agent(mine.id).await.unwrap(), None);
    assert!(!s.delete_agent(mine.id).await.unwrap(), "[agents] deleting twice reports false");
}
