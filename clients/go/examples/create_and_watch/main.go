// Create a KES 1,500.00 collection and watch it until it is final (the README's example).
//
//	go run ./examples/create_and_watch 127.0.0.1:50051 "$MALIPO_API_KEY"
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	paymentsv1 "malipo.dev/clients/go/gen/malipo/payments/v1"
)

var final = map[paymentsv1.Status]bool{
	paymentsv1.Status_STATUS_SUCCEEDED: true, paymentsv1.Status_STATUS_FAILED: true,
	paymentsv1.Status_STATUS_CANCELLED: true, paymentsv1.Status_STATUS_REVERSED: true,
}

func createAndWatch(target, apiKey, orderID string) error {
	// snippet:start
	conn, err := grpc.Dial(target, grpc.WithInsecure()) // plaintext: local use only
	if err != nil {
		return err
	}
	defer conn.Close()
	client := paymentsv1.NewPaymentServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+apiKey)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	created, err := client.CreatePayment(ctx, &paymentsv1.CreatePaymentRequest{
		IdempotencyKey: "order-" + orderID, // yours, stored with the order
		Provider:       "simulator",
		Amount:         &paymentsv1.Money{AmountMinor: 150000, Currency: "KES"},
		Customer:       &paymentsv1.Customer{PhoneNumber: "+254712345600"},
	})
	if err != nil {
		return err
	}
	after := int64(0)
	stream, err := client.WatchStatus(ctx, &paymentsv1.WatchStatusRequest{
		AfterSequence: &after,
		Filter:        &paymentsv1.StatusFilter{PaymentId: created.Payment.Id},
	})
	if err != nil {
		return err
	}
	for {
		message, err := stream.Recv()
		if err != nil {
			return err // io.EOF included: the stream ended before a final status
		}
		event := message.GetEvent()
		if event == nil {
			continue // a heartbeat
		}
		fmt.Printf("#%d %s -> %s\n", event.Sequence, event.OldStatus, event.NewStatus)
		if final[event.NewStatus] {
			return nil
		}
	}
	// snippet:end
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: create_and_watch HOST:PORT API_KEY")
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		log.Fatal(err)
	}
	if err := createAndWatch(os.Args[1], os.Args[2], hex.EncodeToString(id)); err != nil && !errors.Is(err, io.EOF) {
		log.Fatal(err)
	}
}
