// Package notifytest runs an in-process Pub/Sub emulator (the client's pstest) for tests of bucket
// notifications, at a fixed address so that it can be restarted the way the kit's emulator restarts: empty.
package notifytest

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
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

// Misroute puts a listener in front of the emulator and points PUBSUB_EMULATOR_HOST at it. Connections it
// accepts before it has answered one request reach a server that is not Pub/Sub: it speaks HTTP/2 and
// answers every request 404 (as this kit's sandbox does for an address nothing routes yet, and as whatever
// a node's default route leads to does before kube-proxy has programmed a new Service). Later connections
// reach the emulator. It returns the number of requests answered 404 so far.
func (e *Emulator) Misroute() func() int64 {
	e.t.Helper()
	ln, err := net.Listen("tcp", freeAddr(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	var answered atomic.Int64
	wrong := &connListener{conns: make(chan net.Conn), addr: ln.Addr()}
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &h2c, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		answered.Add(1)
		w.WriteHeader(http.StatusNotFound)
	})}
	go func() { _ = srv.Serve(wrong) }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if answered.Load() == 0 {
				wrong.conns <- c
				continue
			}
			go proxy(c, e.Addr)
		}
	}()
	e.t.Cleanup(func() { _ = ln.Close(); _ = srv.Close() })
	e.t.Setenv("PUBSUB_EMULATOR_HOST", ln.Addr().String())
	return answered.Load
}

func proxy(c net.Conn, addr string) {
	defer c.Close()
	up, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(up, c) }()
	_, _ = io.Copy(c, up)
}

// connListener is a net.Listener whose connections are handed to it.
type connListener struct {
	conns chan net.Conn
	addr  net.Addr
	once  sync.Once
	done  chan struct{}
}

func (l *connListener) Accept() (net.Conn, error) {
	l.once.Do(l.init)
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) init() { l.done = make(chan struct{}) }

func (l *connListener) Close() error {
	l.once.Do(l.init)
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
