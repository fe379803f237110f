//! The HTTP side: the page and its assets, and the JSON API the page calls.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use client::{Admin, ClientOptions};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::changes::{self, Changer, Credentials, Leader, NewTopic, Reset, SignedIn};
use crate::config::DashboardConfig;
use crate::error::ApiError;
use crate::limits::SignInLimiter;
use crate::sessions::{self, Account, Sessions};
use crate::views;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// The longest a page's data may take to gather.
const CALL_BUDGET: Duration = Duration::from_secs(30);
/// Request bodies are small forms.
const MAX_BODY_BYTES: usize = 64 * 1024;

struct Dashboard {
    /// Reads, signed with the configured keys when given.
    reader: Admin,
    config: DashboardConfig,
    sessions: Sessions,
    sign_ins: SignInLimiter,
}

type Shared = Arc<Dashboard>;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} (server.address/server.port): {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Binds the configured address and port.
pub async fn bind(config: &DashboardConfig) -> Result<TcpListener, ServeError> {
    let addr = if config.address.contains(':') && !config.address.starts_with('[') {
        format!("[{}]:{}", config.address, config.port)
    } else {
        format!("{}:{}", config.address, config.port)
    };
    TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves the dashboard on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    config: DashboardConfig,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let mut options = ClientOptions::new(&config.namesrv());
    if let (Some(ak), Some(sk)) = (&config.access_key, &config.secret_key) {
        options = options.with_credentials(ak, sk);
    }
    let reader = Admin::start(options)?;
    let state = Arc::new(Dashboard {
        reader: reader.clone(),
        config,
        sessions: Sessions::default(),
        sign_ins: SignInLimiter::default(),
    });
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    reader.shutdown();
    served.map_err(ServeError::from)
}

fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/session", get(session))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/cluster", get(cluster))
        .route("/api/throughput", get(throughput))
        .route("/api/topics", get(topics).post(create_topic))
        .route("/api/topics/{topic}", get(topic))
        .route("/api/groups", get(groups))
        .route("/api/groups/{group}", get(group))
        .route("/api/groups/{group}/reset", post(reset_offsets))
        .route("/api/messages", get(messages))
        .route("/api/brokers/{broker}/leader", post(transfer_leader))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Runs a call against the cluster within [`CALL_BUDGET`].
async fn bounded<T: Serialize>(
    call: impl Future<Output = Result<T, ApiError>>,
) -> Result<Json<T>, ApiError> {
    match tokio::time::timeout(CALL_BUDGET, call).await {
        Ok(result) => result.map(Json),
        Err(_) => Err(ApiError::Timeout(CALL_BUDGET.as_secs())),
    }
}

fn account(state: &Dashboard, headers: &HeaderMap) -> Option<Account> {
    let cookie = headers.get(header::COOKIE)?.to_str().ok();
    state.sessions.account(sessions::token_of(cookie)?)
}

fn changer(state: &Dashboard, headers: &HeaderMap) -> Result<Changer, ApiError> {
    Changer::for_account(
        &state.reader,
        &state.config.namesrv(),
        state.config.acl_enabled,
        account(state, headers),
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionView {
    acl_enabled: bool,
    user: Option<String>,
    admin: bool,
}

async fn session(State(state): State<Shared>, headers: HeaderMap) -> Json<SessionView> {
    let account = account(&state, &headers);
    Json(SessionView {
        acl_enabled: state.config.acl_enabled,
        // With ACL off everyone may change everything.
        admin: !state.config.acl_enabled || account.as_ref().is_some_and(|a| a.admin),
        user: account.map(|a| a.access_key),
    })
}

async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Json(credentials): Json<Credentials>,
) -> Result<Response, ApiError> {
    if !state.config.acl_enabled {
        return Err(ApiError::BadRequest(
            "ACL is off (rocketmq.config.aclEnabled): no sign-in is needed".into(),
        ));
    }
    let ip = peer.ip();
    if let Err(wait) = state.sign_ins.admit(ip) {
        tracing::warn!(%ip, "dashboard sign-in refused: too many failed attempts");
        return Err(ApiError::TooManyAttempts(wait.as_secs().max(1)));
    }
    let checked = tokio::time::timeout(
        CALL_BUDGET,
        changes::sign_in(&state.config.namesrv(), credentials),
    )
    .await
    .map_err(|_| ApiError::Timeout(CALL_BUDGET.as_secs()))
    .and_then(|checked| checked);
    let checked = match checked {
        Ok(checked) => {
            state.sign_ins.succeeded(ip);
            checked
        }
        Err(ApiError::SignInNeeded(reason)) => {
            state.sign_ins.failed(ip);
            return Err(ApiError::SignInNeeded(reason));
        }
        Err(other) => return Err(other),
    };
    let signed_in = SignedIn {
        user: checked.access_key.clone(),
        admin: checked.admin,
    };
    tracing::info!(user = %signed_in.user, admin = signed_in.admin, "dashboard sign-in");
    let token = state.sessions.sign_in(checked);
    let cookie = format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/",
        sessions::COOKIE
    );
    let mut response = Json(signed_in).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

async fn logout(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|value| value.to_str().ok());
    if let Some(token) = sessions::token_of(cookie) {
        state.sessions.sign_out(token);
    }
    let mut response = Json(serde_json::json!({})).into_response();
    let expired = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        sessions::COOKIE
    );
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn cluster(State(state): State<Shared>) -> Result<Json<views::ClusterView>, ApiError> {
    bounded(views::cluster(&state.reader)).await
}

async fn throughput(State(state): State<Shared>) -> Result<Json<views::Throughput>, ApiError> {
    bounded(views::throughput(&state.reader)).await
}

#[derive(Deserialize)]
struct TopicsQuery {
    #[serde(default)]
    system: bool,
}

async fn topics(
    State(state): State<Shared>,
    Query(query): Query<TopicsQuery>,
) -> Result<Json<views::TopicList>, ApiError> {
    bounded(views::topics(&state.reader, query.system)).await
}

async fn topic(
    State(state): State<Shared>,
    Path(topic): Path<String>,
) -> Result<Json<views::TopicDetail>, ApiError> {
    bounded(views::topic(&state.reader, &topic)).await
}

async fn groups(State(state): State<Shared>) -> Result<Json<views::GroupList>, ApiError> {
    bounded(views::groups(&state.reader)).await
}

async fn group(
    State(state): State<Shared>,
    Path(group): Path<String>,
) -> Result<Json<views::GroupDetail>, ApiError> {
    bounded(views::group(&state.reader, &group)).await
}

#[derive(Deserialize)]
struct MessagesQuery {
    id: Option<String>,
    topic: Option<String>,
    key: Option<String>,
}

async fn messages(
    State(state): State<Shared>,
    Query(query): Query<MessagesQuery>,
) -> Result<Json<views::Messages>, ApiError> {
    let topic = query
        .topic
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match (query.id.as_deref().map(str::trim), query.key.as_deref()) {
        (Some(id), _) if !id.is_empty() => {
            bounded(views::message_by_id(&state.reader, topic, id)).await
        }
        (_, Some(key)) if !key.is_empty() => {
            let topic = topic
                .ok_or_else(|| ApiError::BadRequest("a lookup by key needs the topic".into()))?;
            bounded(views::messages_by_key(&state.reader, topic, key)).await
        }
        _ => Err(ApiError::BadRequest(
            "give a message id, or a topic and a key".into(),
        )),
    }
}

async fn create_topic(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(new): Json<NewTopic>,
) -> Result<Json<changes::Done>, ApiError> {
    let changer = changer(&state, &headers)?;
    let topic = new.topic.clone();
    let done = bounded(changes::create_topic(&changer, new)).await?;
    tracing::info!(%topic, user = ?account(&state, &headers).map(|a| a.access_key), "topic created from the dashboard");
    Ok(done)
}

async fn reset_offsets(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(group): Path<String>,
    Json(reset): Json<Reset>,
) -> Result<Json<changes::Done>, ApiError> {
    let changer = changer(&state, &headers)?;
    bounded(changes::reset_offsets(&changer, &group, reset)).await
}

async fn transfer_leader(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(broker): Path<String>,
    Json(leader): Json<Leader>,
) -> Result<Json<changes::Done>, ApiError> {
    let changer = changer(&state, &headers)?;
    bounded(changes::transfer_leader(&changer, &broker, leader)).await
}
