// Package notifytest runs an in-process Pub/Sub emulator (the client's pstest) for tests of bucket
// notifications, at a fixed address so that it can be restarted the way the kit's emulator restarts: empty.
package notifytest

import (
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
)

// Emulator is a pstest server that PUBSUB_EMULATOR_HOST points every client of the test at.
type Emulator struct {
	t      *testing.T
	Addr   string
	Server *pstest.Server
	opts   []pstest.ServerReactorOption
}

// Start starts the emulator on a free 127.0.0.1 port in 47000-47999 (the range this kit's tests use) and
// sets PUBSUB_EMULATOR_HOST for the test (so the test cannot run in parallel with others).
func Start(t *testing.T, opts ...pstest.ServerReactorOption) *Emulator {
	t.Helper()
	e := &Emulator{t: t, Addr: freeAddr(t), opts: opts}
	e.Server = pstest.NewServerWithAddress(e.Addr, opts...)
	t.Setenv("PUBSUB_EMULATOR_HOST", e.Addr)
	t.Cleanup(func() { _ = e.Server.Close() })
	return e
}

func freeAddr(t *testing.T) string {
	t.Helper()
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(47000+rand.N(1000)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port in 47000-47999")
	return ""
}

// CreateTopic creates a topic (projects/P/topics/T).
func (e *Emulator) CreateTopic(name string) {
	e.t.Helper()
	if _, err := e.Server.GServer.CreateTopic(context.Background(), &pubsubpb.Topic{Name: name}); err != nil {
		e.t.Fatal(err)
	}
}

// Restart stops the emulator and starts an empty one at the same address (with the same reactors): every
// topic, subscription and message is gone.
func (e *Emulator) Restart() {
	e.t.Helper()
	_ = e.Server.Close()
	e.Server = pstest.NewServerWithAddress(e.Addr, e.opts...)
}

// Subscription returns a subscription by its full name.
func (e *Emulator) Subscription(name string) (*pubsubpb.Subscription, error) {
	return e.Server.GServer.GetSubscription(context.Background(), &pubsubpb.GetSubscriptionRequest{Subscription: name})
}

// Subscriptions returns the full names of the project's subscriptions.
func (e *Emulator) Subscriptions(project string) []string {
	e.t.Helper()
	res, err := e.Server.GServer.ListSubscriptions(context.Background(), &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + project})
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, s := range res.Subscriptions {
		names = append(names, s.Name)
	}
	return names
}
