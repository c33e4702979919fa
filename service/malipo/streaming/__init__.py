"""The event log's moving parts: the relay that numbers events, the hub that fans them out."""

from malipo.streaming.hub import EventHub, HubStats
from malipo.streaming.relay import EventRelay
from malipo.streaming.retention import EventRetention

__all__ = ["EventHub", "EventRelay", "EventRetention", "HubStats"]
