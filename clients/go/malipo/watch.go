package malipo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	paymentsv1 "malipo.dev/clients/go/gen/malipo/payments/v1"
)

// StopWatch, returned by a Watch handler, ends the watch without an error.
var StopWatch = errors.New("malipo: stop watching")

// WatchOptions of Watch. AfterSequence nil means "from now on": events committed while the
// first connection is being made are then not replayed, so pass a cursor (0, or a payment's
// LastEventSequence) to be sure to see everything.
type WatchOptions struct {
	Filter        *paymentsv1.StatusFilter
	AfterSequence *int64
	IdleTimeout   time.Duration // 0: one minute; the server sends heartbeats more often
	MaxReconnects int           // failed reconnections in a row before giving up; 0: never
}

// Watch calls handle with each status event after the cursor until handle returns an
// error (StopWatch: nil is returned) or ctx ends. When the stream breaks (server restart,
// network, no message within IdleTimeout) it reconnects with the last sequence seen, so
// nothing is missed and nothing repeated.
func (c *Client) Watch(ctx context.Context, options WatchOptions,
	handle func(*paymentsv1.StatusEvent) error) error {
	idle := options.IdleTimeout
	if idle == 0 {
		idle = time.Minute
	}
	backoff := DefaultRetry
	backoff.MaxBackoff = 2 * time.Second
	var cursor *int64
	if options.AfterSequence != nil {
		after := *options.AfterSequence
		cursor = &after
	}
	failures := 0
	for {
		err := c.watchOnce(ctx, options.Filter, &cursor, idle, &failures, handle)
		var stopped handlerError
		if errors.As(err, &stopped) {
			if errors.Is(stopped.err, StopWatch) {
				return nil
			}
			return stopped.err // the handler's own error, even one with a gRPC status
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !retryable(status.Code(err)) {
			return err
		}
		failures++
		if options.MaxReconnects > 0 && failures > options.MaxReconnects {
			return fmt.Errorf("malipo: WatchStatus: gave up after %d reconnections: %w",
				options.MaxReconnects, err)
		}
		if err := sleep(ctx, waitBeforeRetry(backoff, failures, err)); err != nil {
			return ctx.Err()
		}
	}
}

// handlerError is what the handler returned: it ends the watch, never a reconnection.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }

// watchOnce reads one stream until it breaks; nil when it ended or fell idle (reconnect).
func (c *Client) watchOnce(ctx context.Context, filter *paymentsv1.StatusFilter,
	cursor **int64, idle time.Duration, failures *int,
	handle func(*paymentsv1.StatusEvent) error) error {
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(idle, cancel)
	defer timer.Stop()
	request := &paymentsv1.WatchStatusRequest{Filter: filter}
	if *cursor != nil {
		after := **cursor
		request.AfterSequence = &after
	}
	stream, err := c.WatchStatus(streamCtx, request)
	if err != nil {
		return err
	}
	for {
		message, err := stream.Recv()
		if err != nil {
			if ctx.Err() == nil && streamCtx.Err() != nil {
				return status.Error(codes.Unavailable, "no message within the idle timeout")
			}
			if ctx.Err() == nil && status.Code(err) == codes.Canceled {
				return status.Error(codes.Unavailable, err.Error())
			}
			if errors.Is(err, io.EOF) {
				return nil // the server ended the stream (shutting down): reconnect
			}
			return err
		}
		timer.Reset(idle)
		*failures = 0
		if event := message.GetEvent(); event != nil {
			if *cursor != nil && event.Sequence <= **cursor {
				continue
			}
			sequence := event.Sequence
			*cursor = &sequence
			if err := handle(event); err != nil {
				return handlerError{err}
			}
		} else if beat := message.GetHeartbeat(); beat != nil &&
			(*cursor == nil || beat.Sequence > **cursor) {
			// The server examined the log up to here for this stream: resuming from it
			// skips only events that did not match the filter.
			sequence := beat.Sequence
			*cursor = &sequence
		}
	}
}

// Final statuses: a payment never leaves them (except SUCCEEDED, which a refund may reverse).
var Final = map[paymentsv1.Status]bool{
	paymentsv1.Status_STATUS_SUCCEEDED: true, paymentsv1.Status_STATUS_FAILED: true,
	paymentsv1.Status_STATUS_CANCELLED: true, paymentsv1.Status_STATUS_REVERSED: true,
}

// WaitFinal watches one payment until it reaches a final status and returns it then.
func (c *Client) WaitFinal(ctx context.Context, paymentID string) (*paymentsv1.Payment, error) {
	zero := int64(0)
	err := c.Watch(ctx, WatchOptions{Filter: &paymentsv1.StatusFilter{PaymentId: paymentID},
		AfterSequence: &zero}, func(event *paymentsv1.StatusEvent) error {
		if Final[event.NewStatus] {
			return StopWatch
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	got, err := c.GetPayment(ctx, &paymentsv1.GetPaymentRequest{PaymentId: paymentID})
	if err != nil {
		return nil, err
	}
	return got.Payment, nil
}
