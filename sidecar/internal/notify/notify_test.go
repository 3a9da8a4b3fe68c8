package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/eventually"
	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/notify/notifytest"
	"github.com/filesync/filesync/sidecar/internal/notify/topic"
)

const testTopic = "projects/test-project/topics/media"

// recorder is an Apply that records what it was asked, and can fail.
type recorder struct {
	mu      sync.Mutex
	applied []Change
	fail    map[Change]int // fail this change this many more times
}

func (r *recorder) apply(_ context.Context, c Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[c] > 0 {
		r.fail[c]--
		return errors.New("injected failure")
	}
	r.applied = append(r.applied, c)
	return nil
}

func (r *recorder) changes() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Change(nil), r.applied...)
}

type harness struct {
	t          *testing.T
	em         *notifytest.Emulator
	n          *Notifier
	m          *metrics.Metrics
	rec        *recorder
	reconciles chan struct{}
	cancel     context.CancelFunc
	done       chan struct{}
}

func newHarness(t *testing.T, em *notifytest.Emulator) *harness {
	t.Helper()
	h := &harness{t: t, em: em, m: metrics.New(), rec: &recorder{fail: map[Change]int{}}, reconciles: make(chan struct{}, 16)}
	tn, err := topic.Parse(testTopic)
	if err != nil {
		t.Fatal(err)
	}
	h.n, err = New(context.Background(), Options{Topic: tn, Scope: Scope{Bucket: "media", Prefix: "wp"}, Pod: "web-0",
		Apply: h.rec.apply, Reconcile: func() { h.reconciles <- struct{}{} }, Metrics: h.m,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Retry: backoff.Policy{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// run subscribes and receives until the test ends.
func (h *harness) run() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.n.Subscribe(ctx); err != nil {
		h.t.Fatal(err)
	}
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); _ = h.n.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// deliver publishes one notification and waits until it has been acked.
func (h *harness) deliver(attrs map[string]string) {
	h.t.Helper()
	id := h.em.Server.Publish(testTopic, []byte("{}"), attrs)
	eventually.True(h.t, 10*time.Second, "notification "+id+" acked", func() bool {
		m := h.em.Server.Message(id)
		return m != nil && m.Acks > 0
	})
}

func ev(typ, object string, gen, overwrittenBy int64) map[string]string {
	a := map[string]string{"eventType": typ, "bucketId": "media", "objectId": object, "objectGeneration": fmt.Sprint(gen),
		"payloadFormat": "JSON_API_V1"}
	if overwrittenBy != 0 {
		a["overwrittenByGeneration"] = fmt.Sprint(overwrittenBy)
	}
	return a
}

// TestSubscriptionIsOwnFilteredAndExpiring: the subscription is this pod's, on the topic, filtered to the
// bucket and prefix, expires after a day unused, and is deleted by Close.
func TestSubscriptionIsOwnFilteredAndExpiring(t *testing.T) {
	em := notifytest.Start(t)
	em.CreateTopic(testTopic)
	h := newHarness(t, em)
	if err := h.n.Subscribe(context.Background()); err != nil {
		t.Fatal(err)
	}
	sub, err := em.Subscription(h.n.Name())
	if err != nil {
		t.Fatal(err)
	}
	if sub.Topic != testTopic || sub.Filter != `attributes.bucketId = "media" AND hasPrefix(attributes.objectId, "wp/")` ||
		sub.GetExpirationPolicy().GetTtl().AsDuration() != 24*time.Hour || sub.AckDeadlineSeconds != 60 {
		t.Fatalf("subscription %v", sub)
	}
	if !h.n.Subscribed() || testutil.ToFloat64(h.m.NotifySubscribed) != 1 {
		t.Fatal("not reported as subscribed")
	}
	if err := h.n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := em.Subscription(h.n.Name()); err == nil {
		t.Fatal("Close left the subscription behind")
	}
}

// TestFilterKeepsOtherBucketsAndPrefixesOut: the subscription's filter (not only the handler) drops other
// buckets' and other prefixes' notifications.
func TestFilterKeepsOtherBucketsAndPrefixesOut(t *testing.T) {
	em := notifytest.Start(t)
	em.CreateTopic(testTopic)
	h := newHarness(t, em)
	h.run()
	other := ev(Finalize, "wp/a.jpg", 1, 0)
	other["bucketId"] = "other"
	em.Server.Publish(testTopic, nil, other)
	em.Server.Publish(testTopic, nil, ev(Finalize, "wpx/a.jpg", 1, 0))
	h.deliver(ev(Finalize, "wp/a.jpg", 2, 0))
	if got := h.rec.changes(); len(got) != 1 || got[0] != (Change{Path: "a.jpg", Generation: 2}) {
		t.Fatalf("applied %v", got)
	}
	if n := testutil.ToFloat64(h.m.NotifyReceived); n != 1 {
		t.Fatalf("received %v notifications; the filter should have dropped two", n)
	}
}

// TestReorderedAndDuplicatedEvents: notifications that arrive late or twice are acked without being
// applied; a delete applies only to the generation it names.
func TestReorderedAndDuplicatedEvents(t *testing.T) {
	em := notifytest.Start(t)
	em.CreateTopic(testTopic)
	h := newHarness(t, em)
	h.run()
	for _, a := range []map[string]string{
		ev(Finalize, "wp/a.jpg", 3, 0),
		ev(Finalize, "wp/a.jpg", 2, 0), // late
		ev(Finalize, "wp/a.jpg", 3, 0), // again
		ev(Delete, "wp/a.jpg", 2, 0),   // the delete of an older generation: a.jpg@3 stays
		ev(Finalize, "wp/b.jpg", 1, 0),
		ev(Delete, "wp/b.jpg", 1, 0),
		ev(Delete, "wp/b.jpg", 1, 0), // again
		// The finalize of a deleted generation: late on GCS, an ACL change on fake-gcs-server (which sends
		// DELETE+FINALIZE of the same generation). Handed on: the loop checks the bucket either way.
		ev(Finalize, "wp/b.jpg", 1, 0),
		ev(MetadataUpdate, "wp/a.jpg", 3, 0),
	} {
		h.deliver(a)
	}
	want := []Change{{Path: "a.jpg", Generation: 3}, {Path: "b.jpg", Generation: 1}, {Path: "b.jpg", Generation: 1, Deleted: true},
		{Path: "b.jpg", Generation: 1}, {Path: "a.jpg", Generation: 3, Metadata: true}}
	if got := h.rec.changes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("applied %v\nwant    %v", got, want)
	}
	for reason, n := range map[string]float64{"stale": 2, "duplicate": 2} {
		if got := testutil.ToFloat64(h.m.NotifyIgnored.WithLabelValues(reason)); got != n {
			t.Errorf("ignored{%s} = %v, want %v", reason, got, n)
		}
	}
	if got := testutil.ToFloat64(h.m.NotifyApplied); got != 5 {
		t.Errorf("applied = %v", got)
	}
}

// TestOverwritePairInBothOrders: an overwrite is a FINALIZE of the new generation and a DELETE of the old
// one carrying overwrittenByGeneration, published concurrently; in either order nothing is deleted.
func TestOverwritePairInBothOrders(t *testing.T) {
	for _, order := range []string{"finalize first", "delete first"} {
		t.Run(order, func(t *testing.T) {
			em := notifytest.Start(t)
			em.CreateTopic(testTopic)
			h := newHarness(t, em)
			h.run()
			pair := []map[string]string{ev(Finalize, "wp/a.jpg", 8, 0), ev(Delete, "wp/a.jpg", 7, 8)}
			if order == "delete first" {
				pair[0], pair[1] = pair[1], pair[0]
			}
			for _, a := range pair {
				h.deliver(a)
			}
			if got := h.rec.changes(); len(got) != 1 || got[0] != (Change{Path: "a.jpg", Generation: 8}) {
				t.Fatalf("applied %v, want only the finalize of generation 8", got)
			}
			if got := testutil.ToFloat64(h.m.NotifyIgnored.WithLabelValues("overwritten")); got != 1 {
				t.Fatalf("ignored{overwritten} = %v", got)
			}
		})
	}
}

// TestAckOnlyAfterApply: a notification whose apply fails is nacked and delivered again until it applies.
func TestAckOnlyAfterApply(t *testing.T) {
	em := notifytest.Start(t)
	em.CreateTopic(testTopic)
	h := newHarness(t, em)
	c := Change{Path: "a.jpg", Generation: 4}
	h.rec.fail[c] = 2
	h.run()
	id := em.Server.Publish(testTopic, nil, ev(Finalize, "wp/a.jpg", 4, 0))
	eventually.True(t, 20*time.Second, "the notification applied", func() bool { return len(h.rec.changes()) == 1 })
	eventually.True(t, 10*time.Second, "the notification acked", func() bool { return em.Server.Message(id).Acks > 0 })
	if m := em.Server.Message(id); m.Deliveries < 3 {
		t.Fatalf("delivered %d times; two failures should have made it three", m.Deliveries)
	}
	if got := testutil.ToFloat64(h.m.NotifyApplied); got != 1 {
		t.Fatalf("applied = %v", got)
	}
}

// TestMissingTopicRetries: without the topic, Subscribe says so (in /readyz's reason too) and keeps
// trying; it succeeds once the topic exists.
func TestMissingTopicRetries(t *testing.T) {
	em := notifytest.Start(t)
	h := newHarness(t, em)
	done := make(chan error, 1)
	go func() { done <- h.n.Subscribe(context.Background()) }()
	eventually.True(t, 10*time.Second, "the reason in Waiting", func() bool {
		return strings.Contains(h.n.Waiting(), "topic "+testTopic+" does not exist")
	})
	if h.n.Subscribed() {
		t.Fatal("subscribed without a topic")
	}
	em.CreateTopic(testTopic)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not succeed once the topic existed")
	}
	if _, err := em.Subscription(h.n.Name()); err != nil {
		t.Fatal(err)
	}
}

// TestSubscribeStopsWithContext: a Subscribe that cannot succeed returns when its context is done.
func TestSubscribeStopsWithContext(t *testing.T) {
	em := notifytest.Start(t)
	h := newHarness(t, em)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := h.n.Subscribe(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe = %v, want the context's error", err)
	}
}

// TestEmulatorRestartRecreatesAndReconciles: the emulator restarts and loses the subscription; the
// notifier creates it again, then asks for a full listing, and later notifications arrive.
func TestEmulatorRestartRecreatesAndReconciles(t *testing.T) {
	em := notifytest.Start(t)
	em.CreateTopic(testTopic)
	h := newHarness(t, em)
	h.run()
	h.deliver(ev(Finalize, "wp/a.jpg", 1, 0))
	em.Restart()
	em.CreateTopic(testTopic) // the emulator image creates its topics at start
	select {
	case <-h.reconciles:
	case <-time.After(30 * time.Second):
		t.Fatal("no reconcile after the emulator restarted")
	}
	if _, err := em.Subscription(h.n.Name()); err != nil {
		t.Fatalf("subscription not recreated: %v", err)
	}
	if got := testutil.ToFloat64(h.m.NotifyRecreations); got != 1 {
		t.Fatalf("recreations = %v", got)
	}
	if got := testutil.ToFloat64(h.m.NotifyReconciles); got != 1 {
		t.Fatalf("reconcile listings = %v", got)
	}
	h.deliver(ev(Finalize, "wp/b.jpg", 1, 0))
	if got := h.rec.changes(); len(got) != 2 || got[1].Path != "b.jpg" {
		t.Fatalf("applied %v", got)
	}
}

// TestEndpointThatIsNotPubSubIsReconnected: the first connections reach a server that answers every call
// with HTTP 404 (a pod that starts with the emulator's Service, before the Service is routed). gRPC keeps
// such a connection for ever; Subscribe connects afresh and succeeds once the address leads to Pub/Sub.
func TestEndpointThatIsNotPubSubIsReconnected(t *testing.T) {
	em := notifytest.Start(t)
	em.CreateTopic(testTopic)
	answered := em.Misroute()
	h := newHarness(t, em)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.n.Subscribe(ctx); err != nil {
		t.Fatalf("Subscribe = %v, after %d calls answered 404", err, answered())
	}
	if answered() == 0 {
		t.Fatal("no call reached the server that is not Pub/Sub: the test did not test anything")
	}
	if _, err := em.Subscription(h.n.Name()); err != nil {
		t.Fatal(err)
	}
}
