// Command pubsub-emulator serves the Pub/Sub API in memory for the kit: the Go client's own fake,
// cloud.google.com/go/pubsub/v2/pstest, with the topics named by -topics created at start. It is what
// fake-gcs-server publishes bucket notifications to and what the sidecars subscribe to in the kind
// example and the e2e (PUBSUB_EMULATOR_HOST). Everything lives in memory: a restart loses every topic
// (created again from -topics), subscription and message, as the sidecars must survive.
//
// With -wait-for ADDRESS it serves nothing: it waits until the Pub/Sub API at ADDRESS answers and has every
// topic of -topics, then exits 0. That is fake-gcs-server's init container: its publisher keeps its first
// connection for ever, and a connection made before the cluster routes the emulator's Service reaches
// whatever the node's default route leads to (in this kit's sandbox, a server that answers every call 404),
// so every notification would be lost.
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
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	addr := flag.String("address", "0.0.0.0:8085", "host:port to serve the Pub/Sub gRPC API on")
	topics := flag.String("topics", "", "comma-separated topics to create at start: projects/PROJECT/topics/TOPIC,...")
	waitFor := flag.String("wait-for", "", "serve nothing: wait until the Pub/Sub API at this host:port has every topic of -topics, then exit")
	flag.Parse()
	if *waitFor != "" {
		if len(names(*topics)) == 0 {
			fmt.Fprintln(os.Stderr, "pubsub-emulator: -wait-for needs -topics (the topics to wait for)")
			os.Exit(2)
		}
		wait(*waitFor, names(*topics))
		return
	}
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
	for _, t := range names(topics) {
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

func names(topics string) []string {
	var out []string
	for _, t := range strings.Split(topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// wait returns once every topic exists at addr. Each attempt is made on a new connection, so that one
// which reached the wrong server is never used twice; each failure is logged.
func wait(addr string, topics []string) {
	start := time.Now()
	for {
		err := check(addr, topics)
		if err == nil {
			log.Printf("the Pub/Sub API at %s has %s (waited %s)", addr, strings.Join(topics, ", "), time.Since(start).Round(time.Millisecond))
			return
		}
		log.Printf("waiting for the Pub/Sub API at %s: %v", addr, err)
		time.Sleep(time.Second)
	}
}

func check(addr string, topics []string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	pub := pubsubpb.NewPublisherClient(conn)
	for _, t := range topics {
		if _, err := pub.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: t}, grpc.WaitForReady(true)); err != nil {
			return fmt.Errorf("topic %s: %w", t, err)
		}
	}
	return nil
}
