"""WebhookService: endpoint RPCs, converted at the edge like PaymentService (api/servicer.py).

Runs behind the same gRPC edge (api/edge.py): authentication, limits, metrics, error table.
"""

from __future__ import annotations

from collections.abc import Callable

from malipo.api.convert import timestamp
from malipo.api.edge import caller_tenant
from malipo.api.errors import Context
from malipo.app import webhooks
from malipo.app.webhooks import EndpointState, WebhookEndpoint, WebhookEndpoints
from malipo.payments.v1 import webhooks_pb2 as pb
from malipo.payments.v1 import webhooks_pb2_grpc as pb_grpc

_STATE_TO = {
    EndpointState.ACTIVE: pb.WEBHOOK_ENDPOINT_STATE_ACTIVE,
    EndpointState.FAILING: pb.WEBHOOK_ENDPOINT_STATE_FAILING,
}


def endpoint_to_proto(e: WebhookEndpoint) -> pb.WebhookEndpoint:
    message = pb.WebhookEndpoint(
        id=e.id, url=e.url, description=e.description, state=_STATE_TO[e.state],
        delivered_through=e.cursor, attempts=e.attempts, last_error=e.last_error,
        next_attempt_at=timestamp(e.next_attempt_at), created_at=timestamp(e.created_at),
        from_config=e.from_config)
    if e.failing_since is not None:
        message.failing_since.CopyFrom(timestamp(e.failing_since))
    return message


class WebhookServicer(pb_grpc.WebhookServiceServicer):
    def __init__(self, endpoints: WebhookEndpoints, new_secret: Callable[[], str], *,
                 private_networks: bool = False) -> None:
        self._endpoints = endpoints
        self._new_secret = new_secret
        self._private_networks = private_networks

    async def CreateWebhookEndpoint(self, request: pb.CreateWebhookEndpointRequest,
                                    context: Context) -> pb.CreateWebhookEndpointResponse:
        cmd = webhooks.CreateEndpoint(caller_tenant(), request.idempotency_key, request.url,
                                      request.description)
        stored = await webhooks.create_endpoint(self._endpoints, cmd, self._new_secret,
                                                private_networks=self._private_networks)
        return pb.CreateWebhookEndpointResponse(endpoint=endpoint_to_proto(stored.endpoint),
                                                secret=stored.secret)

    async def ListWebhookEndpoints(self, request: pb.ListWebhookEndpointsRequest,
                                   context: Context) -> pb.ListWebhookEndpointsResponse:
        found = await webhooks.list_endpoints(self._endpoints, caller_tenant())
        return pb.ListWebhookEndpointsResponse(endpoints=[endpoint_to_proto(e) for e in found])

    async def DeleteWebhookEndpoint(self, request: pb.DeleteWebhookEndpointRequest,
                                    context: Context) -> pb.DeleteWebhookEndpointResponse:
        await webhooks.delete_endpoint(self._endpoints, caller_tenant(), request.endpoint_id)
        return pb.DeleteWebhookEndpointResponse()

    async def RedeliverWebhooks(self, request: pb.RedeliverWebhooksRequest,
                                context: Context) -> pb.RedeliverWebhooksResponse:
        endpoint = await webhooks.redeliver(self._endpoints, caller_tenant(),
                                            request.endpoint_id, request.from_sequence)
        return pb.RedeliverWebhooksResponse(endpoint=endpoint_to_proto(endpoint))
