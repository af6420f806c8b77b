use chrono::Duration;

use super::new_user;
use crate::chat::{Role, Usage};
use crate::conversation::{Conversation, Message};
use crate::document::{ByteRange, Citation, PassageOrigin};
use crate::error::ErrorKind;
use crate::ids::{ChunkId, ConversationId, FileId, MessageId, ModelId, UserId, WorkspaceId};
use crate::store::Stores;
use crate::testkit::now_ms;

fn conversation(owner: UserId, workspace: Option<WorkspaceId>, title: &str) -> Conversation {
    let now = now_ms();
    Conversation {
        id: ConversationId::new(),
        owner,
        workspace,
        title: title.into(),
        agent: None,
        model: None,
        created_at: now,
        updated_at: now,
    }
}

fn message(conversation: ConversationId, role: Role, content: &str) -> Message {
    Message {
        id: MessageId::new(),
        conversation,
        role,
        author: None,
        content: content.into(),
        model: None,
        citations: Vec::new(),
        usage: None,
        created_at: now_ms(),
    }
}

/// Checks every promise of [`ConversationStore`](crate::store::ConversationStore).
pub async fn conversations(stores: &Stores) {
    let s = &stores.conversations;
    let (owner, other) = (new_user(stores).await, new_user(stores).await);
    let workspace = WorkspaceId::new();
    let live = crate::people::Workspace {
        id: workspace,
        name: "kit".into(),
        context: None,
        created_by: owner,
        created_at: now_ms(),
    };
    stores.workspaces.create_workspace(live).await.unwrap();
    let err =
        s.create_conversation(conversation(owner, Some(WorkspaceId::new()), "nowhere")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "[conversations] no conversation in a workspace that does not exist"
    );

    let mut convs = Vec::new();
    for i in 0..5 {
        let c = conversation(owner, None, &format!("chat {i}"));
        s.create_conversation(c.clone()).await.unwrap();
        convs.push(c);
    }
    let in_ws = conversation(owner, Some(workspace), "team chat");
    s.create_conversation(in_ws.clone()).await.unwrap();
    s.create_conversation(conversation(other, None, "not yours")).await.unwrap();

    assert_eq!(
        s.get_conversation(convs[0].id).await.unwrap(),
        Some(convs[0].clone()),
        "[conversations] reads back intact"
    );
    assert_eq!(s.get_conversation(ConversationId::new()).await.unwrap(), None);

    let page1 = s.list_conversations(owner, None, 3).await.unwrap();
    let ids: Vec<_> = page1.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        vec![convs[4].id, convs[3].id, convs[2].id],
        "[conversations] own conversations, newest first"
    );
    let page2 = s.list_conversations(owner, ids.last().copied(), 3).await.unwrap();
    let ids2: Vec<_> = page2.iter().map(|c| c.id).collect();
    assert_eq!(
        ids2,
        vec![convs[1].id, convs[0].id],
        "[conversations] `before` pages on, excluding workspace chats"
    );
    let ws = s.list_workspace_conversations(workspace, None, 10).await.unwrap();
    assert_eq!(ws, vec![in_ws.clone()], "[conversations] a workspace's conversations");

    let mut renamed = convs[0].clone();
    renamed.title = "renamed".into();
    renamed.model = Some(ModelId::new("local"));
    renamed.updated_at = now_ms() + Duration::seconds(1);
    s.update_conversation(&renamed).await.unwrap();
    assert_eq!(
        s.get_conversation(renamed.id).await.unwrap(),
        Some(renamed.clone()),
        "[conversations] update must persist"
    );
    let err = s.update_conversation(&conversation(owner, None, "ghost")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "[conversations] updating a missing conversation must be NotFound"
    );

    let later = now_ms() + Duration::seconds(2);
    assert!(
        s.share_conversation(convs[2].id, workspace, later).await.unwrap(),
        "[conversations] sharing a personal conversation must succeed"
    );
    let shared = s.get_conversation(convs[2].id).await.unwrap().unwrap();
    assert_eq!(
        (shared.workspace, shared.updated_at),
        (Some(workspace), later),
        "[conversations] sharing must persist the workspace and time"
    );
    assert!(
        !s.share_conversation(convs[2].id, WorkspaceId::new(), later).await.unwrap(),
        "[conversations] a conversation already in a workspace must not move"
    );
    assert!(
        !s.share_conversation(ConversationId::new(), workspace, later).await.unwrap(),
        "[conversations] sharing a missing conversation must report false"
    );

    let c = convs[1].id;
    // Ids are time-ordered: the question must be made before the answer.
    let mut question = message(c, Role::User, "Capital of France?");
    question.author = Some(owner);
    let mut answer = message(c, Role::Assistant, "Paris [1].");
    answer.model = Some(ModelId::new("local"));
    answer.usage = Some(Usage { prompt_tokens: 12, completion_tokens: 3 });
    answer.citations = vec![Citation {
        source: 1,
        origin: PassageOrigin::File { file: FileId::new(), chunk: ChunkId::new() },
        page: Some(2),
        byte_range: ByteRange { start: 10, end: 42 },
        snippet: "Paris is the capital".into(),
    }];
    let mut msgs = vec![question, answer, message(c, Role::User, "thanks")];
    // Written after the conversation's last change, a second apart, so the bump is visible.
    for (i, m) in msgs.iter_mut().enumerate() {
        m.created_at = convs[1].updated_at + Duration::seconds(i as i64 + 1);
    }
    for m in &msgs {
        s.append_message(m.clone()).await.unwrap();
    }
    let listed = s.list_messages(c, None, 10).await.unwrap();
    assert_eq!(listed, msgs, "[conversations] messages read back intact (citations, usage), oldest first");
    let after = s.list_messages(c, Some(msgs[0].id), 1).await.unwrap();
    assert_eq!(after, vec![msgs[1].clone()], "[conversations] `after` and `limit` page messages");
    let recent = s.recent_messages(c, 2).await.unwrap();
    assert_eq!(recent, msgs[1..].to_vec(), "[conversations] the newest messages, oldest first");
    let bumped = s.get_conversation(c).await.unwrap().unwrap();
    assert_eq!(
        bumped.updated_at, msgs[2].created_at,
        "[conversations] appending must bump updated_at to the newest message"
    );

    let err = s.append_message(message(ConversationId::new(), Role::User, "orphan")).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "[conversations] appending to a missing conversation must be NotFound"
    );

    assert!(s.delete_conversation(c).await.unwrap(), "[conversations] deleting reports it existed");
    assert_eq!(s.get_conversation(c).await.unwrap(), None);
    assert!(
        s.list_messages(c, None, 10).await.unwrap().is_empty(),
        "[conversations] deleting must delete the messages"
    );
    assert!(!s.delete_conversation(c).await.unwrap(), "[conversations] deleting twice reports false");
}
