// Against a server someone else started: MALIPO_ADDRESS ("host:port") and MALIPO_API_KEY
// (tests/clients/test_go_client.py sets them). Breaks are real: a TCP proxy in front of the
// server drops and refuses connections.
package malipo_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	paymentsv1 "malipo.dev/clients/go/gen/malipo/payments/v1"
	"malipo.dev/clients/go/malipo"
)

func server(t *testing.T) (string, string) {
	address, key := os.Getenv("MALIPO_ADDRESS"), os.Getenv("MALIPO_API_KEY")
	if address == "" || key == "" {
		t.Fatal("set MALIPO_ADDRESS and MALIPO_API_KEY")
	}
	return address, key
}

// sent records what each attempt of a unary call carried: key, deadline, time.
type sent struct {
	mu       sync.Mutex
	keys     []string
	timeouts []time.Duration
	at       []time.Time
}

func (s *sent) interceptor(ctx context.Context, method string, req, reply any,
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	s.mu.Lock()
	keyed, _ := req.(interface{ GetIdempotencyKey() string })
	if keyed != nil {
		s.keys = append(s.keys, keyed.GetIdempotencyKey())
	} else {
		s.keys = append(s.keys, "")
	}
	deadline, _ := ctx.Deadline()
	s.timeouts = append(s.timeouts, time.Until(deadline))
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (s *sent) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

func connect(t *testing.T, target string, options malipo.Options,
	interceptors ...grpc.UnaryClientInterceptor) *malipo.Client {
	_, key := server(t)
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(interceptors...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client, err := malipo.New(conn, key, options)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func create(key, phone string) *paymentsv1.CreatePaymentRequest {
	return &paymentsv1.CreatePaymentRequest{IdempotencyKey: key, Provider: "simulator",
		Amount:   &paymentsv1.Money{AmountMinor: 1000, Currency: "KES"},
		Customer: &paymentsv1.Customer{PhoneNumber: phone}}
}

// withKey lists this tenant's payments made with key: exactly one when no retry paid twice.
func withKey(t *testing.T, key string) []string {
	address, _ := server(t)
	client := connect(t, address, malipo.Options{})
	listed, err := client.ListPayments(context.Background(),
		&paymentsv1.ListPaymentsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range listed.Payments {
		if p.IdempotencyKey == key {
			ids = append(ids, p.Id)
		}
	}
	return ids
}

// relay is a TCP proxy to the server; down drops every connection and refuses new ones.
type relay struct {
	listener    net.Listener
	mu          sync.Mutex
	refusing    bool
	conns       map[net.Conn]bool
	connections int
}

func newRelay(t *testing.T) *relay {
	target, _ := server(t)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{listener: listener, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { listener.Close(); r.down() })
	go func() {
		for {
			inbound, err := listener.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			if r.refusing {
				r.mu.Unlock()
				inbound.Close()
				continue
			}
			r.connections++
			outbound, err := net.Dial("tcp", target)
			if err != nil {
				r.mu.Unlock()
				inbound.Close()
				continue
			}
			r.conns[inbound], r.conns[outbound] = true, true
			r.mu.Unlock()
			go func() { io.Copy(outbound, inbound); outbound.Close(); inbound.Close() }()
			go func() { io.Copy(inbound, outbound); outbound.Close(); inbound.Close() }()
		}
	}()
	return r
}

func (r *relay) address() string { return r.listener.Addr().String() }

func (r *relay) accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connections
}

func (r *relay) down() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusing = true
	for c := range r.conns {
		c.Close()
	}
	r.conns = map[net.Conn]bool{}
}

func (r *relay) up() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusing = false
}

func TestEveryUnaryAttemptHasTheDefaultDeadline(t *testing.T) {
	address, _ := server(t)
	record := &sent{}
	client := connect(t, address, malipo.Options{}, record.interceptor)
	short := connect(t, address, malipo.Options{Timeout: 2 * time.Second}, record.interceptor)
	ctx := context.Background()
	if _, err := client.ListProviders(ctx, &paymentsv1.ListProvidersRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := short.ListProviders(ctx, &paymentsv1.ListProvidersRequest{}); err != nil {
		t.Fatal(err)
	}
	if d := record.timeouts[0]; d <= 2*time.Second || d > malipo.DefaultTimeout {
		t.Fatalf("default deadline: %v", d)
	}
	if d := record.timeouts[1]; d <= 0 || d > 2*time.Second {
		t.Fatalf("2 s deadline: %v", d)
	}
}

func TestALostAnswerIsRetriedWithTheSameKeyAfterRetryInfoAndPaysOnce(t *testing.T) {
	address, _ := server(t)
	record := &sent{}
	lost, err := status.New(codes.Unavailable, "answer lost (test)").
		WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	// The server does the work, then the first answer is lost with the server's RetryInfo.
	loseFirst := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil && record.count() == 1 {
			return lost.Err()
		}
		return err
	}
	client := connect(t, address, malipo.Options{Retry: &malipo.RetryPolicy{Attempts: 3,
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, Multiplier: 2}},
		record.interceptor, loseFirst)
	created, err := client.CreatePayment(context.Background(), create("", "+254712345600"))
	if err != nil {
		t.Fatal(err)
	}
	key := created.Payment.IdempotencyKey
	if !strings.HasPrefix(key, "mc-") || len(record.keys) != 2 || record.keys[0] != key ||
		record.keys[1] != key {
		t.Fatalf("keys sent %v, payment's %q", record.keys, key)
	}
	// A lower bound only: the backoff alone (at most 10 ms) would retry far sooner.
	if gap := record.at[1].Sub(record.at[0]); gap < time.Second {
		t.Fatalf("retried after %v, before RetryInfo's 1 s", gap)
	}
	if ids := withKey(t, key); len(ids) != 1 || ids[0] != created.Payment.Id {
		t.Fatalf("payments with the key: %v", ids)
	}
}

func TestCallsMadeWhileTheServerCannotBeReachedAreRetriedWithTheSameKey(t *testing.T) {
	r := newRelay(t)
	record := &sent{}
	// One retry: grpc-go redials only after its own backoff (about 1 s) and fails calls at
	// once meanwhile, so it succeeds only because a retry waits for the connection.
	client := connect(t, r.address(), malipo.Options{Retry: &malipo.RetryPolicy{Attempts: 2,
		InitialBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, Multiplier: 2}},
		record.interceptor)
	r.down()
	key := malipo.NewIdempotencyKey()
	done := make(chan error, 1)
	var created *paymentsv1.CreatePaymentResponse
	go func() {
		var err error
		created, err = client.CreatePayment(context.Background(), create(key, "+254712345600"))
		done <- err
	}()
	for record.count() < 2 { // the first attempt failed; the retry waits
		time.Sleep(10 * time.Millisecond)
	}
	r.up()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	record.mu.Lock()
	for _, k := range record.keys {
		if k != key {
			t.Fatalf("keys sent %v, want %q each time", record.keys, key)
		}
	}
	record.mu.Unlock()
	if ids := withKey(t, key); len(ids) != 1 || ids[0] != created.Payment.Id {
		t.Fatalf("payments with the key: %v", ids)
	}
}

func TestErrorsCarryTheirDecodedDetailsAndAreNotRetried(t *testing.T) {
	address, _ := server(t)
	record := &sent{}
	client := connect(t, address, malipo.Options{}, record.interceptor)
	ctx := context.Background()
	key := malipo.NewIdempotencyKey()
	if _, err := client.CreatePayment(ctx, create(key, "+254712345600")); err != nil {
		t.Fatal(err)
	}
	other := create(key, "+254712345600")
	other.Amount.AmountMinor = 5
	_, err := client.CreatePayment(ctx, other)
	details := malipo.Details(err)
	if status.Code(err) != codes.AlreadyExists || details.Reason() != "IDEMPOTENCY_KEY_REUSED" ||
		details.ErrorInfo.GetDomain() != "malipo.dev" || details.RetryInfo != nil {
		t.Fatalf("%v: %+v", err, details)
	}
	if record.count() != 2 {
		t.Fatalf("%d calls, want one each", record.count())
	}
	bad := create("", "+254712345600")
	bad.Amount.Currency = "XYZ"
	_, err = client.CreatePayment(ctx, bad)
	found := false
	for _, v := range malipo.Details(err).BadRequest.GetFieldViolations() {
		found = found || v.Field == "amount.currency"
	}
	if status.Code(err) != codes.InvalidArgument || !found {
		t.Fatalf("%v: %+v", err, malipo.Details(err))
	}
}

func TestWatchResumesAfterABrokenConnection(t *testing.T) {
	address, _ := server(t)
	r := newRelay(t)
	direct := connect(t, address, malipo.Options{})
	client := connect(t, r.address(), malipo.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The OTP scenario (phone ending 03) waits in ACTION_REQUIRED until confirmed.
	created, err := direct.CreatePayment(ctx, create(malipo.NewIdempotencyKey(), "+254712345603"))
	if err != nil {
		t.Fatal(err)
	}
	id := created.Payment.Id
	zero := int64(0)
	watch := malipo.WatchOptions{Filter: &paymentsv1.StatusFilter{PaymentId: id},
		AfterSequence: &zero}
	var seen []*paymentsv1.StatusEvent
	err = client.Watch(ctx, watch, func(event *paymentsv1.StatusEvent) error {
		seen = append(seen, event)
		if event.NewStatus == paymentsv1.Status_STATUS_ACTION_REQUIRED {
			r.down() // the watch breaks; the payment moves on while it is away
			_, err := direct.ConfirmPayment(ctx, &paymentsv1.ConfirmPaymentRequest{
				IdempotencyKey: malipo.NewIdempotencyKey(), PaymentId: id, Otp: "123456"})
			r.up()
			return err
		}
		if event.NewStatus == paymentsv1.Status_STATUS_SUCCEEDED {
			return malipo.StopWatch
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.accepted() < 2 {
		t.Fatalf("the watch did not reconnect (%d connections)", r.accepted())
	}
	var replay []int64
	err = direct.Watch(ctx, watch, func(event *paymentsv1.StatusEvent) error {
		replay = append(replay, event.Sequence)
		if event.NewStatus == paymentsv1.Status_STATUS_SUCCEEDED {
			return malipo.StopWatch
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(replay) || len(seen) < 2 ||
		seen[len(seen)-2].NewStatus != paymentsv1.Status_STATUS_ACTION_REQUIRED {
		t.Fatalf("seen %v, replay %v", seen, replay)
	}
	for i := range seen {
		if seen[i].Sequence != replay[i] {
			t.Fatalf("seen %v, replay %v", seen, replay)
		}
	}
}

func TestWaitFinalReturnsThePaymentOnceFinal(t *testing.T) {
	address, _ := server(t)
	client := connect(t, address, malipo.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := client.CreatePayment(ctx, create(malipo.NewIdempotencyKey(), "+254712345600"))
	if err != nil {
		t.Fatal(err)
	}
	final, err := client.WaitFinal(ctx, created.Payment.Id)
	if err != nil || final.Id != created.Payment.Id ||
		final.Status != paymentsv1.Status_STATUS_SUCCEEDED {
		t.Fatalf("%v: %v", err, final)
	}
}

func TestAHandlersErrorEndsTheWatchEvenWithAGrpcStatus(t *testing.T) {
	address, _ := server(t)
	client := connect(t, address, malipo.Options{})
	created, err := client.CreatePayment(context.Background(),
		create(malipo.NewIdempotencyKey(), "+254712345600"))
	if err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	mine := status.Error(codes.Unavailable, "the handler's own (test)")
	calls := 0
	err = client.Watch(context.Background(), malipo.WatchOptions{AfterSequence: &zero,
		Filter: &paymentsv1.StatusFilter{PaymentId: created.Payment.Id}},
		func(*paymentsv1.StatusEvent) error { calls++; return mine })
	if err != mine || calls != 1 {
		t.Fatalf("%v after %d calls", err, calls)
	}
}

func TestWatchGivesUpAfterMaxReconnectsWhenNothingAnswers(t *testing.T) {
	r := newRelay(t)
	r.down()
	client := connect(t, r.address(), malipo.Options{})
	zero := int64(0)
	err := client.Watch(context.Background(), malipo.WatchOptions{AfterSequence: &zero,
		MaxReconnects: 2}, func(*paymentsv1.StatusEvent) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 reconnections") {
		t.Fatalf("%v", err)
	}
	if errors.Is(err, malipo.StopWatch) {
		t.Fatal("not a stop")
	}
}
