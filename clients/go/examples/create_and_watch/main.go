// Create a KES 1,500.00 collection and watch it until it is final (the README's example).
//
//	go run ./examples/create_and_watch 127.0.0.1:50051 "$MALIPO_API_KEY"
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	paymentsv1 "malipo.dev/clients/go/gen/malipo/payments/v1"
	"malipo.dev/clients/go/malipo"
)

func createAndWatch(target, apiKey, orderID string) error {
	// snippet:start
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials())) // plaintext: local use only
	if err != nil {
		return err
	}
	defer conn.Close()
	client, err := malipo.New(conn, apiKey, malipo.Options{}) // key, deadlines, safe retries
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
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
	after := int64(0) // reconnects and resumes from the last sequence seen
	watch := malipo.WatchOptions{AfterSequence: &after,
		Filter: &paymentsv1.StatusFilter{PaymentId: created.Payment.Id}}
	return client.Watch(ctx, watch, func(event *paymentsv1.StatusEvent) error {
		fmt.Printf("#%d %s -> %s\n", event.Sequence, event.OldStatus, event.NewStatus)
		if malipo.Final[event.NewStatus] {
			return malipo.StopWatch
		}
		return nil
	})
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
	if err := createAndWatch(os.Args[1], os.Args[2], hex.EncodeToString(id)); err != nil {
		log.Fatal(err)
	}
}
