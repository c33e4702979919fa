// Package malipo is a small helper over the generated PaymentService client, with what the
// Python helper (clients/python/src/malipo/client) adds: the API key on every call, a
// deadline on every attempt of a unary call, retries of UNAVAILABLE and DEADLINE_EXCEEDED
// that reuse the idempotency key and wait at least the server's google.rpc.RetryInfo delay,
// decoded google.rpc error details (Details), and Watch, which reconnects and resumes from
// the last sequence by itself.
package malipo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	paymentsv1 "malipo.dev/clients/go/gen/malipo/payments/v1"
)

// DefaultTimeout bounds each attempt of a unary call.
const DefaultTimeout = 10 * time.Second

// RetryPolicy says how often and how patiently to retry; Attempts counts the first call.
type RetryPolicy struct {
	Attempts       int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	Multiplier     float64
}

// DefaultRetry is the Python helper's policy.
var DefaultRetry = RetryPolicy{Attempts: 4, InitialBackoff: 200 * time.Millisecond,
	MaxBackoff: 3 * time.Second, Multiplier: 2}

// Options of New; the zero value gives the defaults.
type Options struct {
	Timeout time.Duration // per attempt of a unary call; 0: DefaultTimeout
	Retry   *RetryPolicy  // nil: DefaultRetry
}

// Client is the generated PaymentServiceClient with the helper's behaviour on every call,
// plus Watch and WaitFinal.
type Client struct {
	paymentsv1.PaymentServiceClient
}

// New wraps a connection made with grpc.NewClient for the tenant whose key is apiKey. The
// connection's own interceptors run on every attempt; closing it is the caller's.
func New(cc grpc.ClientConnInterface, apiKey string, options Options) (*Client, error) {
	behaviour := &helped{cc: cc, apiKey: apiKey, timeout: options.Timeout, policy: DefaultRetry}
	if behaviour.timeout == 0 {
		behaviour.timeout = DefaultTimeout
	}
	if options.Retry != nil {
		behaviour.policy = *options.Retry
	}
	if behaviour.policy.Attempts < 1 {
		return nil, errors.New("malipo: RetryPolicy.Attempts counts the first call: at least 1")
	}
	return &Client{PaymentServiceClient: paymentsv1.NewPaymentServiceClient(behaviour)}, nil
}

// helped is the connection as the generated client sees it: every call gets the API key,
// and unary calls a deadline per attempt, safe retries and a key when they have none.
type helped struct {
	cc      grpc.ClientConnInterface
	apiKey  string
	timeout time.Duration
	policy  RetryPolicy
}

func (h *helped) auth(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+h.apiKey)
}

func (h *helped) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string,
	opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return h.cc.NewStream(h.auth(ctx), desc, method, opts...)
}

func (h *helped) Invoke(ctx context.Context, method string, args, reply any,
	opts ...grpc.CallOption) error {
	ctx = h.auth(ctx)
	args = withKey(args)
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, h.timeout)
		callOptions := opts
		if attempt > 1 {
			// After a lost connection grpc-go redials only after its own backoff and fails
			// calls meanwhile: a retry waits for the connection (within its deadline).
			callOptions = append(append([]grpc.CallOption{}, opts...), grpc.WaitForReady(true))
		}
		err := h.cc.Invoke(attemptCtx, method, args, reply, callOptions...)
		cancel()
		if err == nil || attempt >= h.policy.Attempts || ctx.Err() != nil ||
			!retryable(status.Code(err)) {
			return err
		}
		if err := sleep(ctx, waitBeforeRetry(h.policy, attempt, err)); err != nil {
			return err
		}
	}
}

// Both can mean "the server did it but the answer was lost": retrying is safe only because
// every attempt carries the same idempotency key.
func retryable(code codes.Code) bool {
	return code == codes.Unavailable || code == codes.DeadlineExceeded
}

// waitBeforeRetry is the full-jitter exponential backoff before retry number retry
// (1-based), but never less than the server's RetryInfo delay.
func waitBeforeRetry(policy RetryPolicy, retry int, err error) time.Duration {
	ceiling := math.Min(float64(policy.MaxBackoff),
		float64(policy.InitialBackoff)*math.Pow(policy.Multiplier, float64(retry-1)))
	wait := time.Duration(mathrand.Float64() * ceiling)
	if asked, ok := Details(err).RetryDelay(); ok && asked > wait {
		return asked
	}
	return wait
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-timer.C:
		return nil
	}
}

// NewIdempotencyKey is a fresh random key. Prefer your own, derived from your record (an
// order id) and stored before the call: a generated key protects one call only.
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("mc-%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// withKey is the request as given, or a copy with a generated key when it has an empty
// idempotency_key: every retry of this call then sends that same key.
func withKey(req any) any {
	m, ok := req.(proto.Message)
	if !ok {
		return req
	}
	field := m.ProtoReflect().Descriptor().Fields().ByName("idempotency_key")
	if field == nil || m.ProtoReflect().Get(field).String() != "" {
		return req
	}
	keyed := proto.Clone(m)
	keyed.ProtoReflect().Set(field, protoreflect.ValueOfString(NewIdempotencyKey()))
	return keyed
}
