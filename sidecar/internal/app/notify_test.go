package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/filesync/filesync/sidecar/internal/metrics"
	"github.com/filesync/filesync/sidecar/internal/notify/notifytest"
)

// The scenarios of --notifications with the real clients: the sidecar's storage client against an
// in-process fake-gcs-server that publishes its object events (finalize, delete, archive, metadataUpdate)
// to an in-process pstest, which the sidecar's Pub/Sub client subscribes to (PUBSUB_EMULATOR_HOST).

const (
	testProject = "test-project"
	testTopic   = "projects/test-project/topics/media"
)

type stack struct {
	t      *testing.T
	gcs    *fakestorage.Server
	ps     *notifytest.Emulator
	dir    string
	addr   string
	cancel context.CancelFunc
	done   chan error
	stderr *syncWriter
	drop   atomic.Value // string: an object whose notifications pstest loses
}

// newStack starts pstest (with the topic unless noTopic) and fake-gcs-server publishing to it.
func newStack(t *testing.T, noTopic bool) *stack {
	t.Helper()
	s := &stack{t: t, dir: t.TempDir()}
	s.drop.Store("")
	s.ps = notifytest.Start(t, pstest.ServerReactorOption{FuncName: "Publish", Reactor: dropper{s}})
	if !noTopic {
		s.ps.CreateTopic(testTopic)
	}
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true, EventOptions: fakestorage.EventManagerOptions{
		ProjectID: testProject, TopicName: "media",
		NotifyOn: fakestorage.EventNotificationOptions{Finalize: true, Delete: true, MetadataUpdate: true, Archive: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcs.Stop)
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "media"})
	s.gcs = gcs
	return s
}

// dropper loses the publishes of notifications about one object (as if the service had lost them).
type dropper struct{ s *stack }

func (d dropper) React(req any) (bool, any, error) {
	pr, ok := req.(*pubsubpb.PublishRequest)
	drop, _ := d.s.drop.Load().(string)
	if !ok || drop == "" {
		return false, nil, nil
	}
	ids := make([]string, len(pr.Messages))
	for i, m := range pr.Messages {
		if m.Attributes["objectId"] != drop {
			return false, nil, nil
		}
		ids[i] = "lost-" + strconv.Itoa(i)
	}
	return true, &pubsubpb.PublishResponse{MessageIds: ids}, nil
}

// start runs the sidecar on gs://media/p with notifications.
func (s *stack) start(args ...string) {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	s.stderr = &syncWriter{}
	env := Env{Args: append([]string{"--dir", s.dir, "--remote", "gs://media/p", "--notifications", testTopic,
		"--listen", "127.0.0.1:0", "--settle", "0s", "--log-format", "text"}, args...),
		Getenv: func(string) string { return "" }, Stdout: io.Discard, Stderr: s.stderr, Version: "test",
		ClientOptions: []option.ClientOption{option.WithHTTPClient(s.gcs.HTTPClient())},
		Listening:     func(addr string) { listening <- addr }}
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- Run(ctx, env) }()
	select {
	case s.addr = <-listening:
	case err := <-s.done:
		s.t.Fatalf("exited: %v", err)
	}
	s.t.Cleanup(func() { _ = s.stop() })
}

func (s *stack) stop() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		return err
	case <-time.After(60 * time.Second):
		s.t.Fatal("shutdown did not finish")
		return nil
	}
}

func (s *stack) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get("http://" + s.addr + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of one series of /metrics (name with its labels, as printed).
func (s *stack) metric(series string) float64 {
	s.t.Helper()
	_, body := s.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatal(err)
			}
			return f
		}
	}
	s.t.Fatalf("no series %s in /metrics", series)
	return 0
}

// handled is the number of notifications applied or ignored.
func (s *stack) handled() float64 {
	n := s.metric("filesync_notify_events_applied_total")
	for _, r := range metrics.NotifyIgnoreReasons {
		n += s.metric(`filesync_notify_events_ignored_total{reason="` + r + `"}`)
	}
	return n
}

func (s *stack) lists() float64 { return s.metric(`filesync_gcs_requests_total{op="list"}`) }

// put writes an object as another replica would (through the JSON API, so fake-gcs-server notifies).
func (s *stack) put(name, content string) {
	s.t.Helper()
	w := s.gcs.Client().Bucket("media").Object(name).NewWriter(context.Background())
	if _, err := io.WriteString(w, content); err != nil {
		s.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) del(name string) {
	s.t.Helper()
	if err := s.gcs.Client().Bucket("media").Object(name).Delete(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// local returns the file's content, or "<absent>".
func (s *stack) local(rel string) string {
	b, err := os.ReadFile(filepath.Join(s.dir, rel))
	if err != nil {
		return "<absent>"
	}
	return string(b)
}

func (s *stack) waitLocal(rel, want string) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.local(rel) != want {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s is %q, want %q\n%s", rel, s.local(rel), want, s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncWriter is the sidecar's stderr, read by the test while the sidecar writes it.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestNotificationsPropagateWithoutListing: with notifications the bucket is listed once, at start;
// new objects, overwrites (whose FINALIZE and DELETE fake-gcs-server publishes in either order) and
// deletes reach the directory without another listing, and duplicated or late notifications change
// nothing.
func TestNotificationsPropagateWithoutListing(t *testing.T) {
	s := newStack(t, false)
	s.put("p/before.txt", "made before the sidecar started")
	s.start("--max-delete", "100") // no delete guard: the notifications' own rules must keep a.txt
	waitReady(t, s.addr)
	s.waitLocal("before.txt", "made before the sidecar started")
	lists := s.lists()
	gets, applied := s.metric(`filesync_gcs_requests_total{op="get"}`), s.metric("filesync_notify_events_applied_total")

	s.put("p/a.txt", "a1")
	s.waitLocal("a.txt", "a1")
	for i := 2; i <= 6; i++ { // overwrites: a FINALIZE and a DELETE with overwrittenByGeneration each
		s.put("p/a.txt", "a"+strconv.Itoa(i))
		s.waitLocal("a.txt", "a"+strconv.Itoa(i))
	}
	s.put("p/dir/b.txt", "b")
	s.waitLocal("dir/b.txt", "b")
	s.del("p/dir/b.txt")
	s.waitLocal("dir/b.txt", "<absent>")

	// Late and duplicated notifications, published by hand: the delete of the live generation (what
	// fake-gcs-server sends for an ACL change), a finalize of an old generation, a delete of one.
	attrs, err := s.gcs.Client().Bucket("media").Object("p/a.txt").Attrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	handled := s.handled()
	for _, a := range []map[string]string{
		{"eventType": "OBJECT_DELETE", "objectGeneration": strconv.FormatInt(attrs.Generation, 10)},
		{"eventType": "OBJECT_FINALIZE", "objectGeneration": "1"},
		{"eventType": "OBJECT_DELETE", "objectGeneration": "1"},
	} {
		a["bucketId"], a["objectId"] = "media", "p/a.txt"
		s.ps.Server.Publish(testTopic, nil, a)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.handled() < handled+3 {
		if time.Now().After(deadline) {
			t.Fatal("the late notifications were not handled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := s.local("a.txt"); got != "a6" {
		t.Fatalf("a.txt is %q after late notifications, want a6\n%s", got, s.stderr)
	}
	// The sidecar's own upload comes back as a notification too, and needs nothing.
	if err := os.WriteFile(filepath.Join(s.dir, "mine.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		if _, err := s.gcs.GetObject("media", "p/mine.txt"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("mine.txt not uploaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.lists(); got != lists {
		t.Fatalf("the bucket was listed %v times after start, want 0 (notifications only)", got-lists)
	}
	appliedNow := s.metric("filesync_notify_events_applied_total") - applied
	if appliedNow < 8 {
		t.Fatalf("applied %v notifications", appliedNow)
	}
	// A notified change costs at most one metadata get (none when the loop knew it: its own upload).
	got := s.metric(`filesync_gcs_requests_total{op="get"}`) - gets
	t.Logf("after start: %v list requests, %v metadata gets, %v reads for %v applied notifications", s.lists()-lists, got,
		s.metric(`filesync_gcs_requests_total{op="read"}`), appliedNow)
	if got > appliedNow {
		t.Fatalf("%v metadata gets for %v applied notifications", got, appliedNow)
	}
	if got := s.metric(`filesync_notify_events_ignored_total{reason="overwritten"}`); got != 5 {
		t.Fatalf("ignored %v overwritten deletes, want 5", got)
	}
	if s.local("before.txt") == "<absent>" {
		t.Fatal("before.txt was deleted")
	}
}

// TestLostNotificationIsCaughtByReconcile: a change whose notification never arrives is found by the
// listing every --reconcile-interval.
func TestLostNotificationIsCaughtByReconcile(t *testing.T) {
	s := newStack(t, false)
	s.start("--reconcile-interval", "1s")
	waitReady(t, s.addr)
	lists := s.lists()
	s.drop.Store("p/lost.txt")
	s.put("p/lost.txt", "never notified")
	s.waitLocal("lost.txt", "never notified")
	if got := s.metric("filesync_notify_events_received_total"); got != 0 {
		t.Fatalf("received %v notifications; the lost one should not have arrived", got)
	}
	if s.lists() <= lists {
		t.Fatal("found without a listing?")
	}
}

// TestEmulatorRestartIsSurvived: the emulator restarts and loses the subscription, and a change made
// meanwhile is never notified; the sidecar creates its subscription again, lists the bucket (finding the
// change), deletes nothing, and later changes arrive by notification again.
func TestEmulatorRestartIsSurvived(t *testing.T) {
	s := newStack(t, false)
	s.start()
	waitReady(t, s.addr)
	s.put("p/a.txt", "a")
	s.waitLocal("a.txt", "a")
	lists := s.lists()

	s.ps.Restart()
	s.ps.CreateTopic(testTopic) // as the emulator image does at start
	s.put("p/meanwhile.txt", "published to a topic nobody subscribes to")
	s.waitLocal("meanwhile.txt", "published to a topic nobody subscribes to")
	if got := s.metric("filesync_notify_subscription_recreations_total"); got != 1 {
		t.Fatalf("recreations = %v\n%s", got, s.stderr)
	}
	if got := s.metric("filesync_notify_reconcile_listings_total"); got != 1 {
		t.Fatalf("reconcile listings = %v", got)
	}
	if s.lists() <= lists {
		t.Fatal("no listing after the subscription was recreated")
	}
	if s.local("a.txt") != "a" {
		t.Fatal("a.txt was lost")
	}
	if subs := s.ps.Subscriptions(testProject); len(subs) != 1 {
		t.Fatalf("subscriptions after the restart: %v", subs)
	}
	s.put("p/after.txt", "after")
	s.waitLocal("after.txt", "after")
	if s.local("a.txt") != "a" || s.local("meanwhile.txt") == "<absent>" {
		t.Fatal("a file was deleted")
	}
}

// TestSIGTERMDeletesTheSubscription: the subscription is this pod's and lives as long as it does.
func TestSIGTERMDeletesTheSubscription(t *testing.T) {
	s := newStack(t, false)
	s.start()
	waitReady(t, s.addr)
	subs := s.ps.Subscriptions(testProject)
	if len(subs) != 1 || !strings.HasPrefix(subs[0], "projects/test-project/subscriptions/filesync-") {
		t.Fatalf("subscriptions %v", subs)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("run: %v\n%s", err, s.stderr)
	}
	if subs := s.ps.Subscriptions(testProject); len(subs) != 0 {
		t.Fatalf("subscriptions left after SIGTERM: %v", subs)
	}
}

// TestNotReadyUntilSubscribed: without the topic the sidecar does not crash: /healthz stays 200, /readyz
// 503 saying what is missing, and nothing is listed (the subscription must come before the first
// listing); once the topic exists it subscribes, lists and becomes ready.
func TestNotReadyUntilSubscribed(t *testing.T) {
	s := newStack(t, true)
	s.put("p/a.txt", "a")
	s.start()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stderr.String(), "cannot create the Pub/Sub subscription") {
		if time.Now().After(deadline) {
			t.Fatalf("no error line:\n%s", s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := s.get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d while retrying the subscription", code)
	}
	code, body := s.get("/readyz")
	if code != 503 || !strings.Contains(body, "topic "+testTopic+" does not exist") {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	if got := s.lists(); got != 0 {
		t.Fatalf("listed %v times before the subscription existed", got)
	}
	s.ps.CreateTopic(testTopic)
	waitReady(t, s.addr)
	s.waitLocal("a.txt", "a")
}

// TestNotifiedMtimeChangeReachesTheFile (P1): `rclone touch` on an object (a metadata patch: the same
// generation, a new goog-reserved-file-mtime) is published as a METADATA_UPDATE; the sidecar applies it
// (one get, no listing, no download) and the file takes the new mtime.
func TestNotifiedMtimeChangeReachesTheFile(t *testing.T) {
	s := newStack(t, false)
	s.start()
	waitReady(t, s.addr)
	s.put("p/a.jpg", "photo")
	s.waitLocal("a.jpg", "photo")
	lists, reads := s.lists(), s.metric(`filesync_gcs_requests_total{op="read"}`)
	touched := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	if _, err := s.gcs.Client().Bucket("media").Object("p/a.jpg").Update(context.Background(), storage.ObjectAttrsToUpdate{
		Metadata: map[string]string{"goog-reserved-file-mtime": strconv.FormatInt(touched.Unix(), 10)}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		fi, err := os.Stat(filepath.Join(s.dir, "a.jpg"))
		if err == nil && fi.ModTime().Equal(touched) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a.jpg mtime %v, want %v\n%s", fi.ModTime(), touched, s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.lists() != lists || s.metric(`filesync_gcs_requests_total{op="read"}`) != reads {
		t.Fatalf("the metadata update cost %v lists and %v reads, want none", s.lists()-lists, s.metric(`filesync_gcs_requests_total{op="read"}`)-reads)
	}
}

// TestNotifiedNewObjectsNeedNoLookup (issue 21): a FINALIZE's payload (fake-gcs-server sends the object
// resource, JSON_API_V1, as GCS does) tells the object's generation, size, CRC32C and mtime, so a new
// object costs a receiver one read and no metadata get; every file still gets the bytes and the mtime the
// object carries.
func TestNotifiedNewObjectsNeedNoLookup(t *testing.T) {
	s := newStack(t, false)
	s.start()
	waitReady(t, s.addr)
	gets, reads := s.metric(`filesync_gcs_requests_total{op="get"}`), s.metric(`filesync_gcs_requests_total{op="read"}`)
	mtime := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	const n = 20
	for i := range n {
		w := s.gcs.Client().Bucket("media").Object(fmt.Sprintf("p/plugin/f%02d.php", i)).NewWriter(context.Background())
		w.Metadata = map[string]string{"goog-reserved-file-mtime": strconv.FormatInt(mtime.Unix()+int64(i), 10)}
		if _, err := fmt.Fprintf(w, "<?php // file %d", i); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		rel := fmt.Sprintf("plugin/f%02d.php", i)
		s.waitLocal(rel, fmt.Sprintf("<?php // file %d", i))
		fi, err := os.Stat(filepath.Join(s.dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if want := mtime.Add(time.Duration(i) * time.Second); !fi.ModTime().Equal(want) {
			t.Fatalf("%s mtime %v, want %v", rel, fi.ModTime(), want)
		}
	}
	if got := s.metric(`filesync_gcs_requests_total{op="get"}`) - gets; got != 0 {
		t.Fatalf("%v metadata gets for %d new objects, want 0 (their notifications describe them)", got, n)
	}
	if got := s.metric(`filesync_gcs_requests_total{op="read"}`) - reads; got != n {
		t.Fatalf("%v reads for %d new objects, want %d", got, n, n)
	}
}
