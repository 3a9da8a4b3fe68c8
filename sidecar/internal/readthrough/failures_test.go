package readthrough

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// errUnservable stands for what Fetch refuses: a gzip-encoded object, a file/folder clash, a checksum
// that never matches.
var errUnservable = errors.New("stored with Content-Encoding: gzip")

// TestFailedLookupIsRememberedAndWarnedOnce: 200 requests for an object that exists but cannot be served
// cost one lookup and one WARN line, not one each; the path is looked up again after MissTTL, and warned
// about again only once a lookup of it did not fail the same way.
func TestFailedLookupIsRememberedAndWarnedOnce(t *testing.T) {
	now := mtime
	var logs bytes.Buffer
	s := newSite(t, Options{Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	s.bucket.failing["uploads/gz.svg"] = errUnservable
	for range 200 {
		r := s.get("/uploads/gz.svg")
		wantStatus(t, r, http.StatusBadGateway)
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("a failure without no-store: %v", r.Header)
		}
	}
	warns := func() int { return strings.Count(logs.String(), "level=WARN") }
	if n, w := s.bucket.calls.Load(), warns(); n != 1 || w != 1 || s.counts[ResultError] != 200 {
		t.Fatalf("200 requests for an unservable object: %d lookups, %d WARN lines, counted %v; want 1, 1 and 200 errors\n%s", n, w, s.counts, logs.String())
	}
	now = now.Add(DefaultMissTTL)
	wantStatus(t, s.get("/uploads/gz.svg"), http.StatusBadGateway)
	if n, w := s.bucket.calls.Load(), warns(); n != 2 || w != 1 {
		t.Errorf("after MissTTL: %d lookups (want 2), %d WARN lines (want still 1: the same failure)", n, w)
	}
	// Fixed in the bucket: served; a later failure is a new episode, warned about again.
	now = now.Add(DefaultMissTTL)
	delete(s.bucket.failing, "uploads/gz.svg")
	s.bucket.objects["uploads/gz.svg"] = "<svg/>"
	wantStatus(t, s.get("/uploads/gz.svg"), http.StatusOK)
	s.bucket.failing["uploads/other.jpg"] = errUnservable
	wantStatus(t, s.get("/uploads/other.jpg"), http.StatusBadGateway)
	if w := warns(); w != 2 {
		t.Errorf("a second path's failure: %d WARN lines, want 2", w)
	}
}

// TestFailedLookupsDrawOnTheMissBudget: failures are charged like misses: 10,000 distinct paths whose
// objects cannot be served cost at most the burst of lookups while the clock stands still, and the rest
// are answered from the peers' side (404 here: there are none).
func TestFailedLookupsDrawOnTheMissBudget(t *testing.T) {
	now := mtime
	s := newSite(t, Options{Now: func() time.Time { return now }})
	for i := range 10000 {
		s.bucket.failing[fmt.Sprintf("uploads/gz/%05d.svg", i)] = errUnservable
	}
	for i := range 10000 {
		if r := s.get(fmt.Sprintf("/uploads/gz/%05d.svg", i)); r.StatusCode != http.StatusBadGateway && r.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d", r.StatusCode)
		}
	}
	if got := s.bucket.calls.Load(); int(got) != s.h.Bound(0) {
		t.Fatalf("10,000 unservable paths cost %d lookups, want the burst %d", got, s.h.Bound(0))
	}
	now = now.Add(time.Second)
	for i := range 10000 {
		s.get(fmt.Sprintf("/uploads/gz/%05d.svg", i))
	}
	if got, bound := s.bucket.calls.Load(), s.h.Bound(time.Second); int(got) > bound {
		t.Fatalf("after 1 s: %d lookups, bound %d", got, bound)
	}
}
