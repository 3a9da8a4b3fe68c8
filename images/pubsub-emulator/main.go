// Command pubsub-emulator serves the Pub/Sub API in memory for the kit: the Go client's own fake,
// cloud.google.com/go/pubsub/v2/pstest, with the topics named by -topics created at start. It is what
// fake-gcs-server publishes bucket notifications to and what the sidecars subscribe to in the kind
// example and the e2e (PUBSUB_EMULATOR_HOST). Everything lives in memory: a restart loses every topic
// (created again from -topics), subscription and message, as the sidecars must survive.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	addr := flag.String("address", "0.0.0.0:8085", "host:port to serve the Pub/Sub gRPC API on")
	topics := flag.String("topics", "", "comma-separated topics to create at start: projects/PROJECT/topics/TOPIC,...")
	flag.Parse()
	if err := run(*addr, *topics); err != nil {
		fmt.Fprintln(os.Stderr, "pubsub-emulator:", err)
		os.Exit(1)
	}
}

func run(addr, topics string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := pstest.NewServerWithAddress(addr)
	defer srv.Close()
	for _, t := range strings.Split(topics, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if _, err := srv.GServer.CreateTopic(ctx, &pubsubpb.Topic{Name: t}); err != nil {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
		log.Printf("created topic %s", t)
	}
	log.Printf("serving the Pub/Sub API on %s", srv.Addr)
	<-ctx.Done()
	log.Printf("stopping")
	return nil
}
