//! The real gateway, served over TCP on `127.0.0.1:0`, for end-to-end tests.

use std::sync::Arc;

use actors::{ActorConfig, ActorRuntime, Workspace};

use crate::TempLog;

/// A running server; stops when dropped.
pub struct TestServer {
    pub base: String,
    pub log: TempLog,
    pub ws: Workspace,
    task: tokio::task::JoinHandle<()>,
    views: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        let log = TempLog::new();
        let runtime = Arc::new(ActorRuntime::start(2).expect("actor runtime"));
        let ws = Workspace::new(log.store(), runtime, ActorConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let views = actors::views::queue_views::QueueViews::new();
        let views_task = tokio::spawn(views.clone().run(ws.store.clone()));
        let app = gateway::router(gateway::AppState::new(ws.clone(), views));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base,
            log,
            ws,
            task,
            views: views_task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        self.views.abort();
    }
}
