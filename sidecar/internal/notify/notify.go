// Package notify learns the bucket's changes from GCS bucket notifications on Pub/Sub instead of listing
// the bucket: it creates this sidecar's own subscription on the topic (before the first listing, so no
// change falls between the two), receives the notifications, decides what each one means (decide) and
// hands the change to the sync loop, acking a notification only once the change was applied. When the
// stream fails or the subscription is gone it creates the subscription again and asks for a full listing;
// on shutdown it deletes the subscription. It is the only package that imports the Pub/Sub client.
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/filesync/filesync/sidecar/internal/backoff"
	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/notify/topic"
)

// Subscription settings. The expiration is the service's minimum: a subscription left behind by a pod
// that never got its SIGTERM (a node lost) is deleted by Pub/Sub after a day without a subscriber. The ack
// deadline covers a pass (the client extends it while a change is being applied); nacked notifications are
// redelivered with backoff, not at once.
const (
	Expiration  = 24 * time.Hour
	AckDeadline = 60 * time.Second
	minRetry    = time.Second
	maxRetry    = time.Minute
)

// Options configure a Notifier.
type Options struct {
	Topic topic.Name
	Scope Scope
	// Pod names the subscription (POD_NAME; the host name if empty).
	Pod string
	// Apply applies one change and returns once a pass has applied it or found it unnecessary
	// (syncer.ApplyRemote); the notification is acked only when it returns nil.
	Apply func(context.Context, Change) error
	// Reconcile asks for a full listing pass soon, without blocking (syncer.Reconcile).
	Reconcile func()
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	// Retry is the backoff between attempts to create the subscription or to receive again (default
	// backoff.Default).
	Retry backoff.Policy
}

// Notifier owns one subscription.
type Notifier struct {
	opt Options
	// client is replaced by Subscribe when the endpoint does not serve Pub/Sub (redial): it belongs to the
	// goroutine that calls Subscribe, Run and Close, one after the other.
	client *pubsub.Client
	name   string // projects/P/subscriptions/ID
	known  *tracker

	subscribed atomic.Bool   // the subscription exists (as far as we know)
	lastErr    atomic.Value  // string: why the subscription could not be created, for /readyz
	created    atomic.Uint64 // subscriptions created (the first one included)
}

// New returns a Notifier with a client for the topic's project. Nothing is created until Subscribe.
func New(ctx context.Context, opt Options) (*Notifier, error) {
	if opt.Retry == (backoff.Policy{}) {
		opt.Retry = backoff.Default
	}
	client, err := dial(ctx, opt.Topic.Project)
	if err != nil {
		return nil, err
	}
	n := &Notifier{opt: opt, client: client, known: newTracker(),
		name: "projects/" + opt.Topic.Project + "/subscriptions/" + SubscriptionID(opt.Pod)}
	n.lastErr.Store("")
	return n, nil
}

// dial creates a client for the project. PUBSUB_EMULATOR_HOST and Application Default Credentials are
// handled by the client itself. gRPC's reconnect backoff is capped at 5 s (default 120 s): after an outage
// (an emulator restarted, a network blip) the stream fails over, and a lost subscription is noticed, within
// seconds of the service being back.
func dial(ctx context.Context, project string) (*pubsub.Client, error) {
	client, err := pubsub.NewClient(ctx, project, option.WithGRPCDialOption(grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           grpcbackoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
		MinConnectTimeout: 5 * time.Second,
	})))
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	return client, nil
}

// redial replaces the client with a new one, on new connections. gRPC keeps a connection that works at
// the HTTP/2 level even when whatever answers is not Pub/Sub (every call Unimplemented: an HTTP 404), so
// without this such a connection is kept for ever. That happens when the first connection is made before
// the network routes the endpoint: a pod that starts with the emulator's Service, before kube-proxy has
// programmed it, reaches whatever the node's default route leads to.
func (n *Notifier) redial(ctx context.Context) {
	client, err := dial(ctx, n.opt.Topic.Project)
	if err != nil {
		n.opt.Log.Error("cannot create a new Pub/Sub client; keeping the old one", "err", err)
		return
	}
	_ = n.client.Close()
	n.client = client
}

// SubscriptionID is filesync-POD-RANDOM: the pod's name (made valid, shortened) and 8 random hex digits,
// so a pod restarted with the same name never shares a subscription with its predecessor.
func SubscriptionID(pod string) string {
	var b strings.Builder
	for _, c := range pod {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 200 {
		name = name[:200]
	}
	if name == "" {
		name = "pod"
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return "filesync-" + name + "-" + hex.EncodeToString(suffix)
}

// Name is the subscription's full name.
func (n *Notifier) Name() string { return n.name }

// Filter is the subscription's filter: this bucket, and objects under the prefix.
func (n *Notifier) Filter() string { return Filter(n.opt.Scope) }

// Filter returns the Pub/Sub filter that selects scope's notifications.
func Filter(s Scope) string {
	f := `attributes.bucketId = "` + quote(s.Bucket) + `"`
	if s.Prefix != "" {
		f += ` AND hasPrefix(attributes.objectId, "` + quote(s.Prefix+"/") + `")`
	}
	return f
}

func quote(s string) string { return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) }

// Subscribed reports whether the subscription exists (as far as the last call knew).
func (n *Notifier) Subscribed() bool { return n.subscribed.Load() }

// Waiting says why there is no subscription yet, for /readyz.
func (n *Notifier) Waiting() string {
	msg := "creating the Pub/Sub subscription " + n.name + " on " + n.opt.Topic.String()
	if e, _ := n.lastErr.Load().(string); e != "" {
		msg += ": " + e
	}
	return msg
}

// Subscribe creates the subscription, retrying with backoff until it exists or ctx is done. Each failure
// is one ERROR line saying what is missing (the topic, a permission) and when it is tried again.
func (n *Notifier) Subscribe(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := n.create(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := n.opt.Retry.Delay(attempt)
		n.lastErr.Store(err.Error())
		unimplemented := status.Code(err) == codes.Unimplemented
		n.opt.Log.Error("cannot create the Pub/Sub subscription; retrying", "subscription", n.name,
			"topic", n.opt.Topic.String(), "err", err, "attempt", attempt, "retry_in", d.Round(time.Millisecond),
			"reconnect", unimplemented)
		if unimplemented {
			n.redial(ctx)
		}
		if !backoff.Sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// create creates the subscription; one that exists already (a retry after a lost reply) is kept.
func (n *Notifier) create(ctx context.Context) error {
	_, err := n.client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:               n.name,
		Topic:              n.opt.Topic.String(),
		Filter:             n.Filter(),
		AckDeadlineSeconds: int32(AckDeadline / time.Second),
		ExpirationPolicy:   &pubsubpb.ExpirationPolicy{Ttl: durationpb.New(Expiration)},
		RetryPolicy:        &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(minRetry), MaximumBackoff: durationpb.New(maxRetry)},
		Labels:             map[string]string{"app": "filesync"},
	})
	switch status.Code(err) {
	case codes.OK:
		n.created.Add(1)
	case codes.AlreadyExists:
	case codes.NotFound:
		return fmt.Errorf("topic %s does not exist (create it, and the bucket's notification to it): %w", n.opt.Topic, err)
	case codes.PermissionDenied:
		return fmt.Errorf("permission denied: the pod's service account needs pubsub.subscriptions.create on project %s and pubsub.topics.attachSubscription on %s: %w",
			n.opt.Topic.Project, n.opt.Topic, err)
	default:
		return fmt.Errorf("create subscription: %w", err)
	}
	n.subscribed.Store(true)
	n.lastErr.Store("")
	n.opt.Metrics.NotifySubscribed.Set(1)
	n.opt.Log.Info("subscribed to bucket notifications", "subscription", n.name, "topic", n.opt.Topic.String(),
		"filter", n.Filter())
	return nil
}

// receiveStreams is how many StreamingPull streams a sidecar receives on (the client's default is one).
// A burst (a plugin of 400 files is 400 notifications or more) arrives as fast as the service hands it
// out; the Pub/Sub emulator (pstest) hands each stream one message per 10 ms tick, so one stream takes
// 400 notifications in 4-10 s and four take them in a quarter of that. The handler and the flow control
// (MaxOutstandingMessages) are shared by the streams: more of them changes no ordering guarantee (there
// is none) and costs one connection each.
const receiveStreams = 4

// Run receives notifications until ctx is done. Subscribe must have succeeded. When the stream ends
// (the subscription is gone, e.g. an emulator restarted, or the service failed), it creates the
// subscription again (retrying with backoff), then asks for a full listing: notifications published while
// there was no subscription are lost, and the listing, made after the new subscription exists, finds
// their changes.
func (n *Notifier) Run(ctx context.Context) error {
	for failures := 0; ; {
		// A new Subscriber each time: Subscribe may have replaced the client.
		sub := n.client.Subscriber(n.name)
		sub.ReceiveSettings.MaxOutstandingMessages = 1000
		sub.ReceiveSettings.NumGoroutines = receiveStreams
		sub.ReceiveSettings.ShutdownOptions = &pubsub.ShutdownOptions{Timeout: 2 * time.Second,
			Behavior: pubsub.ShutdownBehaviorNackImmediately}
		start := time.Now()
		err := sub.Receive(ctx, n.handle)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			failures = 0
		}
		failures++
		gone := status.Code(err) == codes.NotFound
		n.opt.Log.Warn("the notification stream ended; creating the subscription again, then listing the bucket",
			"subscription", n.name, "err", err, "subscription_gone", gone)
		n.subscribed.Store(false)
		n.opt.Metrics.NotifySubscribed.Set(0)
		if !backoff.Sleep(ctx, n.opt.Retry.Delay(failures)) {
			return nil
		}
		before := n.created.Load()
		if err := n.Subscribe(ctx); err != nil {
			return nil // ctx done
		}
		if n.created.Load() > before {
			n.opt.Metrics.NotifyRecreations.Inc()
		}
		n.opt.Metrics.NotifyReconciles.Inc()
		n.opt.Reconcile()
	}
}

// handle decides what one notification means, applies it, and acks it once applied (nacks it when the
// apply failed, so it is delivered again).
func (n *Notifier) handle(ctx context.Context, m *pubsub.Message) {
	n.opt.Metrics.NotifyReceived.Inc()
	e, err := ParseEvent(m.Attributes)
	if err != nil {
		n.ignore(m, "malformed")
		n.opt.Log.Warn("ignoring a notification that is not a GCS object event", "err", err, "id", m.ID)
		return
	}
	path, _ := n.opt.Scope.Path(e.Object)
	k, has := n.known.get(path)
	c, reason := decide(n.opt.Scope, k, has, e)
	if reason != "" {
		n.ignore(m, reason)
		n.opt.Log.Debug("notification needs nothing", "event", e.Type, "object", e.Object, "generation", e.Generation,
			"reason", reason)
		return
	}
	if c, err = withPayload(c, e, m.Attributes, m.Data); err != nil {
		n.opt.Log.Debug("the notification's payload is not used: the object is looked up", "object", e.Object,
			"generation", e.Generation, "err", err)
	}
	if err := n.opt.Apply(ctx, c); err != nil {
		m.Nack()
		if ctx.Err() == nil {
			n.opt.Log.Warn("applying a notification failed; it will be delivered again", "event", e.Type,
				"object", e.Object, "generation", e.Generation, "err", err)
		}
		return
	}
	n.known.record(c)
	n.opt.Metrics.NotifyApplied.Inc()
	m.Ack()
}

func (n *Notifier) ignore(m *pubsub.Message, reason string) {
	n.opt.Metrics.NotifyIgnored.WithLabelValues(reason).Inc()
	m.Ack()
}

// Close deletes the subscription (within ctx) and closes the client. Call it after Run has returned.
func (n *Notifier) Close(ctx context.Context) error {
	defer n.client.Close()
	n.subscribed.Store(false)
	n.opt.Metrics.NotifySubscribed.Set(0)
	err := n.client.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: n.name})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("delete subscription %s: %w", n.name, err)
	}
	n.opt.Log.Info("deleted the Pub/Sub subscription", "subscription", n.name)
	return nil
}
