//! `apache.rocketmq.v2.MessagingService` over the broker: each call is served by the room
//! that owns it (routes, clients, produce, consume). Every answer carries a `Status`; the
//! gRPC call itself fails only for what RocketMQ's proxy fails it for (a Telemetry stream
//! without a client id).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use grpc::v2::messaging_service_server::MessagingService;
use grpc::v2::{self, settings::PubSub, telemetry_command::Command, Code};
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;

use super::clients::{self, GrpcClients};
use super::relay::MasterRelay;
use super::{authorize, consume, convert, lite, offsets, produce, pull, route, status};
use crate::context::BrokerContext;

/// Commands a Telemetry stream may have waiting to be written to its client.
const TELEMETRY_QUEUE: usize = 16;

type Answer<T> = Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub struct GrpcService {
    ctx: Arc<BrokerContext>,
    clients: Arc<GrpcClients>,
    relay: Arc<MasterRelay>,
}

impl GrpcService {
    pub fn new(ctx: Arc<BrokerContext>, relay: Arc<MasterRelay>) -> GrpcService {
        GrpcService {
            ctx,
            clients: Arc::new(GrpcClients::default()),
            relay,
        }
    }

    /// ACL's verdict on `request` needing `needs` (nothing to check with ACL off).
    fn authorize<T>(&self, request: &Request<T>, needs: &[(String, u8)]) -> Result<(), Status> {
        authorize::check(
            guards(&self.ctx),
            &authorize::rpc_name::<T>(),
            request.metadata(),
            peer(request).ip(),
            needs,
        )
    }

    /// What a long-polling call may spend: the time its deadline leaves, and the client's
    /// request timeout from its settings (see [`consume::poll_time_ms`]).
    fn polling_budget<T>(&self, request: &Request<T>) -> (Option<i64>, i64) {
        let request_timeout_ms = client_id(request)
            .and_then(|id| self.clients.settings(&id))
            .and_then(|settings| settings.request_timeout)
            .map_or(DEFAULT_REQUEST_TIMEOUT_MS, |t| convert::duration_ms(&t));
        (call_timeout_ms(request.metadata()), request_timeout_ms)
    }
}

fn guards(ctx: &BrokerContext) -> authorize::Guards<'_> {
    authorize::Guards {
        plain: ctx.acl.as_deref(),
        users: ctx.auth_gate.as_deref(),
    }
}

fn client_id<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("x-mq-client-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

fn peer<T>(request: &Request<T>) -> SocketAddr {
    request
        .remote_addr()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// A client's request timeout when its settings name none (the 5.x clients' default).
const DEFAULT_REQUEST_TIMEOUT_MS: i64 = 3_000;

/// The call's timeout from its `grpc-timeout` header (digits and a unit: H, M, S, m, u, n).
fn call_timeout_ms(metadata: &tonic::metadata::MetadataMap) -> Option<i64> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let amount: i64 = digits.parse().ok()?;
    let ms = match unit {
        "H" => amount.checked_mul(3_600_000)?,
        "M" => amount.checked_mul(60_000)?,
        "S" => amount.checked_mul(1_000)?,
        "m" => amount,
        "u" => amount / 1_000,
        "n" => amount / 1_000_000,
        _ => return None,
    };
    Some(ms)
}

/// A long-polling call's whole answer, as its response stream.
fn streamed<T: Send + 'static>(responses: Vec<T>) -> Response<BoxStream<T>> {
    Response::new(Box::pin(futures::stream::iter(
        responses.into_iter().map(Ok),
    )))
}

#[tonic::async_trait]
impl MessagingService for GrpcService {
    async fn query_route(
        &self,
        request: Request<v2::QueryRouteRequest>,
    ) -> Answer<v2::QueryRouteResponse> {
        self.authorize(&request, &authorize::route(request.get_ref()))?;
        Ok(Response::new(
            route::query_route(&self.ctx, request.get_ref()).await,
        ))
    }

    async fn heartbeat(
        &self,
        request: Request<v2::HeartbeatRequest>,
    ) -> Answer<v2::HeartbeatResponse> {
        self.authorize(
            &request,
            &authorize::of_group(request.get_ref().group.as_ref()),
        )?;
        let status = match client_id(&request) {
            None => status::of(Code::ClientIdRequired, "x-mq-client-id is missing"),
            Some(_) if !clients::is_known_type(request.get_ref().client_type) => {
                status::of(Code::UnrecognizedClientType, "unknown client type")
            }
            Some(id) if self.clients.settings(&id).is_none() => status::of(
                Code::UnrecognizedClientType,
                "cannot find client settings for this client",
            ),
            Some(_) => status::ok(),
        };
        Ok(Response::new(v2::HeartbeatResponse { status }))
    }

    async fn send_message(
        &self,
        request: Request<v2::SendMessageRequest>,
    ) -> Answer<v2::SendMessageResponse> {
        self.authorize(&request, &authorize::send(request.get_ref()))?;
        let producer = peer(&request);
        if client_id(&request).is_none() {
            return Ok(Response::new(v2::SendMessageResponse {
                status: status::of(Code::ClientIdRequired, "x-mq-client-id is missing"),
                entries: Vec::new(),
            }));
        }
        let answer =
            produce::send_message(&self.ctx, &self.relay, producer, request.into_inner()).await;
        Ok(Response::new(answer))
    }

    async fn query_assignment(
        &self,
        request: Request<v2::QueryAssignmentRequest>,
    ) -> Answer<v2::QueryAssignmentResponse> {
        self.authorize(&request, &authorize::assignment(request.get_ref()))?;
        Ok(Response::new(
            route::query_assignment(&self.ctx, request.get_ref()).await,
        ))
    }

    type ReceiveMessageStream = BoxStream<v2::ReceiveMessageResponse>;

    async fn receive_message(
        &self,
        request: Request<v2::ReceiveMessageRequest>,
    ) -> Answer<Self::ReceiveMessageStream> {
        self.authorize(&request, &authorize::receive(request.get_ref()))?;
        let (remaining_ms, request_timeout_ms) = self.polling_budget(&request);
        let lite_client = client_id(&request).filter(|id| self.clients.is_lite(id));
        let responses = consume::receive(
            &self.ctx,
            &self.relay,
            request.into_inner(),
            remaining_ms,
            request_timeout_ms,
            lite_client,
        )
        .await;
        Ok(streamed(responses))
    }

    async fn ack_message(
        &self,
        request: Request<v2::AckMessageRequest>,
    ) -> Answer<v2::AckMessageResponse> {
        let r = request.get_ref();
        self.authorize(
            &request,
            &authorize::consumed(r.group.as_ref(), r.topic.as_ref()),
        )?;
        Ok(Response::new(
            consume::ack(&self.ctx, &self.relay, request.into_inner()).await,
        ))
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        request: Request<v2::ForwardMessageToDeadLetterQueueRequest>,
    ) -> Answer<v2::ForwardMessageToDeadLetterQueueResponse> {
        let r = request.get_ref();
        self.authorize(
            &request,
            &authorize::consumed(r.group.as_ref(), r.topic.as_ref()),
        )?;
        Ok(Response::new(
            consume::forward_to_dead_letter_queue(&self.ctx, &self.relay, request.into_inner())
                .await,
        ))
    }

    type PullMessageStream = BoxStream<v2::PullMessageResponse>;

    async fn pull_message(
        &self,
        request: Request<v2::PullMessageRequest>,
    ) -> Answer<Self::PullMessageStream> {
        let r = request.get_ref();
        let topic = r.message_queue.as_ref().and_then(|q| q.topic.as_ref());
        self.authorize(&request, &authorize::consumed(r.group.as_ref(), topic))?;
        let (remaining_ms, request_timeout_ms) = self.polling_budget(&request);
        let responses = pull::pull(
            &self.ctx,
            request.into_inner(),
            remaining_ms,
            request_timeout_ms,
        )
        .await;
        Ok(streamed(responses))
    }

    async fn update_offset(
        &self,
        request: Request<v2::UpdateOffsetRequest>,
    ) -> Answer<v2::UpdateOffsetResponse> {
        let r = request.get_ref();
        let topic = r.message_queue.as_ref().and_then(|q| q.topic.as_ref());
        self.authorize(&request, &authorize::consumed(r.group.as_ref(), topic))?;
        Ok(Response::new(
            offsets::update(&self.ctx, &self.relay, request.into_inner()).await,
        ))
    }

    async fn get_offset(
        &self,
        request: Request<v2::GetOffsetRequest>,
    ) -> Answer<v2::GetOffsetResponse> {
        let r = request.get_ref();
        let topic = r.message_queue.as_ref().and_then(|q| q.topic.as_ref());
        self.authorize(&request, &authorize::consumed(r.group.as_ref(), topic))?;
        Ok(Response::new(
            offsets::get(&self.ctx, &self.relay, request.get_ref()).await,
        ))
    }

    async fn query_offset(
        &self,
        request: Request<v2::QueryOffsetRequest>,
    ) -> Answer<v2::QueryOffsetResponse> {
        let topic = request
            .get_ref()
            .message_queue
            .as_ref()
            .and_then(|q| q.topic.as_ref());
        self.authorize(&request, &authorize::read(topic))?;
        Ok(Response::new(offsets::query(&self.ctx, request.get_ref())))
    }

    async fn end_transaction(
        &self,
        request: Request<v2::EndTransactionRequest>,
    ) -> Answer<v2::EndTransactionResponse> {
        self.authorize(&request, &authorize::end_transaction(request.get_ref()))?;
        if client_id(&request).is_none() {
            return Ok(Response::new(v2::EndTransactionResponse {
                status: status::of(Code::ClientIdRequired, "x-mq-client-id is missing"),
            }));
        }
        Ok(Response::new(
            produce::end_transaction(&self.ctx, &self.relay, request.into_inner()).await,
        ))
    }

    type TelemetryStream = BoxStream<v2::TelemetryCommand>;

    async fn telemetry(
        &self,
        request: Request<Streaming<v2::TelemetryCommand>>,
    ) -> Answer<Self::TelemetryStream> {
        // Who the stream is from is known at its start; what its settings name, per command.
        self.authorize(&request, &[])?;
        let (metadata, ip) = (request.metadata().clone(), peer(&request).ip());
        let Some(id) = client_id(&request) else {
            let refused = v2::TelemetryCommand {
                status: status::of(Code::ClientIdRequired, "x-mq-client-id is missing"),
                command: None,
            };
            return Ok(Response::new(Box::pin(futures::stream::iter([Ok(
                refused,
            )]))));
        };
        let mut inbound = request.into_inner();
        let (mut outbound, answers) = futures::channel::mpsc::channel(TELEMETRY_QUEUE);
        let (ctx, clients) = (Arc::clone(&self.ctx), Arc::clone(&self.clients));
        tokio::spawn(async move {
            loop {
                let command = tokio::select! {
                    next = inbound.message() => match next {
                        Ok(Some(command)) => command,
                        Ok(None) => break,
                        Err(e) => {
                            debug!(client = %id, error = %e, "telemetry stream ended");
                            break;
                        }
                    },
                    _ = ctx.shutdown.cancelled() => break,
                };
                let Some(Command::Settings(reported)) = command.command else {
                    continue;
                };
                let needs = authorize::settings(&reported);
                let rpc = authorize::rpc_name::<v2::TelemetryCommand>();
                if let Err(refused) = authorize::check(guards(&ctx), &rpc, &metadata, ip, &needs) {
                    let _ = futures::SinkExt::send(&mut outbound, Err(refused)).await;
                    break;
                }
                let answer = match clients.settle(&ctx, &id, reported) {
                    Ok(settings) => {
                        if let Some(PubSub::Publishing(publishing)) = &settings.pub_sub {
                            let groups = publishing.topics.iter().map(|t| t.name.clone()).collect();
                            ctx.grpc_producers.register(&id, groups, &outbound);
                        }
                        v2::TelemetryCommand {
                            status: status::ok(),
                            command: Some(Command::Settings(settings)),
                        }
                    }
                    Err(refusal) => v2::TelemetryCommand {
                        status: refusal,
                        command: None,
                    },
                };
                if futures::SinkExt::send(&mut outbound, Ok(answer))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            ctx.grpc_producers.forget(&id, &outbound);
        });
        Ok(Response::new(answers.boxed()))
    }

    async fn notify_client_termination(
        &self,
        request: Request<v2::NotifyClientTerminationRequest>,
    ) -> Answer<v2::NotifyClientTerminationResponse> {
        self.authorize(
            &request,
            &authorize::of_group(request.get_ref().group.as_ref()),
        )?;
        let Some(id) = client_id(&request) else {
            return Ok(Response::new(v2::NotifyClientTerminationResponse {
                status: status::of(Code::ClientIdRequired, "x-mq-client-id is missing"),
            }));
        };
        let status = match self.clients.forget(&id) {
            Some(settings) if settings.client_type.is_some_and(clients::is_lite_type) => {
                let (group, topic) = clients::subscribed(&settings);
                lite::unsubscribe_all(&self.ctx, &self.relay, id, group, topic).await
            }
            Some(_) => status::ok(),
            None => status::of(Code::UnrecognizedClientType, "unknown client"),
        };
        Ok(Response::new(v2::NotifyClientTerminationResponse {
            status,
        }))
    }

    async fn change_invisible_duration(
        &self,
        request: Request<v2::ChangeInvisibleDurationRequest>,
    ) -> Answer<v2::ChangeInvisibleDurationResponse> {
        let r = request.get_ref();
        self.authorize(
            &request,
            &authorize::consumed(r.group.as_ref(), r.topic.as_ref()),
        )?;
        Ok(Response::new(
            consume::change_invisible_duration(&self.ctx, &self.relay, request.into_inner()).await,
        ))
    }

    async fn recall_message(
        &self,
        request: Request<v2::RecallMessageRequest>,
    ) -> Answer<v2::RecallMessageResponse> {
        self.authorize(&request, &authorize::recall(request.get_ref()))?;
        let requester = peer(&request);
        let answer = produce::recall(&self.ctx, &self.relay, requester, request.into_inner()).await;
        Ok(Response::new(answer))
    }

    async fn sync_lite_subscription(
        &self,
        request: Request<v2::SyncLiteSubscriptionRequest>,
    ) -> Answer<v2::SyncLiteSubscriptionResponse> {
        let r = request.get_ref();
        self.authorize(
            &request,
            &authorize::consumed(r.group.as_ref(), r.topic.as_ref()),
        )?;
        let Some(id) = client_id(&request) else {
            return Ok(Response::new(v2::SyncLiteSubscriptionResponse {
                status: status::of(Code::ClientIdRequired, "x-mq-client-id is missing"),
            }));
        };
        Ok(Response::new(
            lite::sync(&self.ctx, &self.relay, id, request.into_inner()).await,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calls_timeout_is_read_from_its_grpc_timeout_header() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert_eq!(call_timeout_ms(&metadata), None);
        for (header, ms) in [
            ("8S", Some(8_000)),
            ("2500m", Some(2_500)),
            ("1M", Some(60_000)),
            ("3000000u", Some(3_000)),
            ("12", None),
            ("S", None),
            ("9x", None),
        ] {
            metadata.insert("grpc-timeout", header.parse().unwrap());
            assert_eq!(call_timeout_ms(&metadata), ms, "{header}");
        }
    }
}
