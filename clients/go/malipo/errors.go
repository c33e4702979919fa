package malipo

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// ErrorDetails are the google.rpc details the server attaches to an error (see
// service/malipo/api/errors.py): ErrorInfo with the reason on every error, BadRequest with
// the fields at fault on INVALID_ARGUMENT, RetryInfo on UNAVAILABLE and
// RESOURCE_EXHAUSTED. Nil where none was sent.
type ErrorDetails struct {
	ErrorInfo  *errdetails.ErrorInfo
	BadRequest *errdetails.BadRequest
	RetryInfo  *errdetails.RetryInfo
}

// Details decodes the details of err (empty for nil, or an error without a gRPC status).
func Details(err error) ErrorDetails {
	var found ErrorDetails
	s, ok := status.FromError(err)
	if !ok || s == nil {
		return found
	}
	for _, detail := range s.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			if found.ErrorInfo == nil {
				found.ErrorInfo = d
			}
		case *errdetails.BadRequest:
			if found.BadRequest == nil {
				found.BadRequest = d
			}
		case *errdetails.RetryInfo:
			if found.RetryInfo == nil {
				found.RetryInfo = d
			}
		}
	}
	return found
}

// Reason is ErrorInfo's machine-readable reason ("IDEMPOTENCY_KEY_REUSED", ...), or "".
func (d ErrorDetails) Reason() string { return d.ErrorInfo.GetReason() }

// RetryDelay is the server's minimum wait before a retry, when it gave one.
func (d ErrorDetails) RetryDelay() (time.Duration, bool) {
	if d.RetryInfo == nil || d.RetryInfo.RetryDelay == nil {
		return 0, false
	}
	return d.RetryInfo.RetryDelay.AsDuration(), true
}
